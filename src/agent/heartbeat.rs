//! The heartbeat thread: every heartbeat interval, tells the server whether the agent is
//! healthy, from the status board. It runs beside the worker, so a slow rotation never
//! silences it. On the way out it sends one last heartbeat if the agent is unhealthy, so
//! the dashboard shows the error rather than a stale "healthy".

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::api::{ApiClient, HeartbeatStatus};

use super::shutdown::Shutdown;
use super::status::StatusBoard;

pub struct Heartbeat {
    pub api: Arc<ApiClient>,
    pub secret_id: String,
    pub interval: Duration,
    pub board: Arc<StatusBoard>,
    pub shutdown: Arc<Shutdown>,
}

impl Heartbeat {
    /// Sends one heartbeat now and records it.
    pub fn beat(api: &ApiClient, board: &StatusBoard, secret_id: &str) {
        let status = board.health();
        let delivered = match api.heartbeat(secret_id, &status) {
            Ok(()) => true,
            Err(e) => {
                log::warn!("secret {secret_id}: {e}");
                false
            }
        };
        board.record_heartbeat(&status, delivered);
    }

    pub fn spawn(self) -> std::io::Result<thread::JoinHandle<()>> {
        thread::Builder::new()
            .name("heartbeat".into())
            .spawn(move || {
                while !self.shutdown.wait_timeout(self.interval) {
                    Self::beat(&self.api, &self.board, &self.secret_id);
                }
                if matches!(self.board.health(), HeartbeatStatus::Error(_)) {
                    Self::beat(&self.api, &self.board, &self.secret_id);
                }
            })
    }
}
