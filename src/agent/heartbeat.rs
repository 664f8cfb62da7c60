//! The heartbeat thread: every heartbeat interval, tells the server whether the agent is
//! healthy, from the status board. It runs beside the worker, so a slow rotation never
//! silences it. It doubles as the watchdog that stops an agent whose worker is stuck. On the way out it sends one last heartbeat if the agent is unhealthy, so
//! the dashboard shows the error rather than a stale "healthy".

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::api::{ApiClient, HeartbeatStatus};

use super::sd_notify::Notifier;
use super::shutdown::{Shutdown, StopReason};
use super::status::{StatusBoard, unix_now};
use super::summary::status_line;

pub struct Heartbeat {
    pub api: Arc<ApiClient>,
    pub secret_id: String,
    pub interval: Duration,
    pub board: Arc<StatusBoard>,
    pub shutdown: Arc<Shutdown>,
    /// systemd: `WATCHDOG=1` while this loop runs, `STATUS=` after each heartbeat.
    pub notifier: Arc<Notifier>,
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

    /// Tells systemd how the agent is doing, in the words of `systemctl status`.
    pub fn notify_status(notifier: &Notifier, board: &StatusBoard) {
        if notifier.enabled() {
            let state = board.state();
            notifier.status(&status_line(
                &board.health(),
                state.last_rotation.as_ref(),
                unix_now(),
            ));
        }
    }

    fn run(self) {
        // systemd wants WATCHDOG=1 at least every WatchdogSec; ping at twice that rate,
        // and never less often than we heartbeat.
        let tick = match self.notifier.watchdog_interval() {
            Some(w) => self.interval.min(w / 2),
            None => self.interval,
        };
        let mut last_beat = Instant::now();
        while !self.shutdown.wait_timeout(tick) {
            if self
                .board
                .job_running_for()
                .is_none_or(|d| d <= self.board.job_deadline() * 2)
            {
                self.notifier.watchdog();
            }
            if last_beat.elapsed() + Duration::from_millis(1) < self.interval {
                continue;
            }
            last_beat = Instant::now();
            Self::beat(&self.api, &self.board, &self.secret_id);
            Self::notify_status(&self.notifier, &self.board);
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
