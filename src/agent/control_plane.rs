//! The control-plane calls the rotation engine and the status board make, as a trait, so
//! the engine's unit tests can answer them from memory (`engine/tests/fakes.rs`) and
//! record what the server was told. `api::ApiClient` is the one real implementation.
//!
//! The poll's `sync-config` is not here: only the poll thread fetches it, and the engine
//! is handed the answer.

use crate::api::{ApiClient, ApiError, HeartbeatStatus};
use crate::secret::Secret;

/// What the agent asks of and tells the server about one secret. Errors are the client's
/// own, so [`ApiError::class`] decides retries the same way for real and fake servers.
pub trait ControlPlane: Send + Sync {
    /// `GET /v1/secret/{id}`: the live value.
    fn live_value(&self, secret_id: &str) -> Result<Secret, ApiError>;

    /// `POST .../agent/confirm-rotation`.
    fn confirm_rotation(&self, secret_id: &str, rotation_id: &str) -> Result<(), ApiError>;

    /// `POST .../agent/reject-rotation`.
    fn reject_rotation(
        &self,
        secret_id: &str,
        rotation_id: &str,
        error: &str,
    ) -> Result<(), ApiError>;

    /// `POST .../agent/heartbeat`.
    fn heartbeat(&self, secret_id: &str, status: &HeartbeatStatus) -> Result<(), ApiError>;
}

impl ControlPlane for ApiClient {
    fn live_value(&self, secret_id: &str) -> Result<Secret, ApiError> {
        ApiClient::live_value(self, secret_id)
    }

    fn confirm_rotation(&self, secret_id: &str, rotation_id: &str) -> Result<(), ApiError> {
        ApiClient::confirm_rotation(self, secret_id, rotation_id)
    }

    fn reject_rotation(
        &self,
        secret_id: &str,
        rotation_id: &str,
        error: &str,
    ) -> Result<(), ApiError> {
        ApiClient::reject_rotation(self, secret_id, rotation_id, error)
    }

    fn heartbeat(&self, secret_id: &str, status: &HeartbeatStatus) -> Result<(), ApiError> {
        ApiClient::heartbeat(self, secret_id, status)
    }
}
