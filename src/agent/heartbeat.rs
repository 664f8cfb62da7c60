//! The heartbeat thread: every heartbeat interval, tells the server whether the agent is
//! healthy, from the status board. It runs beside the worker, so a slow rotation never
//! silences it. It doubles as the watchdog that stops an agent whose worker is stuck. On the way out it sends one last heartbeat if the agent is unhealthy, so
//! the dashboard shows the error rather than a stale "healthy".

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::api::{ApiClient, HeartbeatStatus};

use super::shutdown::{Shutdown, StopReason};
use super::status::StatusBoard;
use super::watch::{ThreadWatch, fail_point};

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
            .spawn(move || self.run())
    }

    fn run(self) {
        let _watch = ThreadWatch::new(
            "the heartbeat thread",
            self.board.clone(),
            self.shutdown.clone(),
        );
        while !self.shutdown.wait_timeout(self.interval) {
            fail_point("heartbeat");
            Self::beat(&self.api, &self.board, &self.secret_id);
            self.stop_if_worker_stuck();
        }
        if matches!(self.board.health(), HeartbeatStatus::Error(_)) {
            Self::beat(&self.api, &self.board, &self.secret_id);
        }
    }

    /// The watchdog: a job running for twice its deadline is stuck inside a driver (a
    /// server that accepts connections and never answers). The agent exits so the service
    /// manager restarts it; the journal lets the new process finish the rotation.
    fn stop_if_worker_stuck(&self) {
        if let Some(running) = self.board.job_running_for()
            && running > self.board.job_deadline() * 2
        {
            log::error!(
                "secret {}: a database job has been stuck for {} s; exiting so the agent restarts",
                self.secret_id,
                running.as_secs()
            );
            self.shutdown.request(StopReason::WorkerHung);
        }
    }
}
