//! Telling the server how a rotation ended: the confirm and reject calls, each retried a
//! few times with backoff when the failure is transient (a 5xx, a timeout), so a short
//! outage does not leave a finished rotation unacknowledged until the next poll.

use std::time::Duration;

use crate::api::{ApiError, ErrorClass};

use super::Engine;
use crate::agent::control_plane::ControlPlane;

/// How many times a confirm or reject is sent within one job before waiting for the next poll.
const ACK_ATTEMPTS: u32 = 3;

/// The wait before the second attempt; it doubles before each later one.
pub const ACK_BACKOFF: Duration = Duration::from_millis(500);

impl Engine {
    /// `confirm-rotation`, retried.
    pub(super) fn send_confirm(&self, rotation_id: &str) -> Result<(), ApiError> {
        self.with_retries(|cp, secret| cp.confirm_rotation(secret, rotation_id))
    }

    /// `reject-rotation` with `error` (already scrubbed of passwords), retried.
    pub(super) fn send_reject(&self, rotation_id: &str, error: &str) -> Result<(), ApiError> {
        self.with_retries(|cp, secret| cp.reject_rotation(secret, rotation_id, error))
    }

    /// Sends an acknowledgement, retrying transient failures a few times with backoff. A
    /// stop ends the waiting at once, with the last error.
    fn with_retries(
        &self,
        call: impl Fn(&dyn ControlPlane, &str) -> Result<(), ApiError>,
    ) -> Result<(), ApiError> {
        let settings = &self.settings;
        let mut delay = settings.ack_backoff;
        let mut attempt = 1;
        loop {
            match call(settings.cp.as_ref(), &settings.secret_id) {
                Ok(()) => return Ok(()),
                Err(e) if e.class() == ErrorClass::Retryable && attempt < ACK_ATTEMPTS => {
                    log::warn!(
                        "secret {}: {e}; retrying in {} ms",
                        settings.secret_id,
                        delay.as_millis()
                    );
                    if settings.shutdown.wait_timeout(delay) {
                        return Err(e);
                    }
                    delay *= 2;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}
