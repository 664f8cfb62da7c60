//! The heartbeat thread: every heartbeat interval, tells the server whether the agent is
//! healthy, from the status board. It runs beside the worker, so a slow rotation never
//! silences it. It doubles as the watchdog that stops an agent whose worker is stuck. On
//! the way out it sends one last heartbeat if the agent is unhealthy, so
//! the dashboard shows the error rather than a stale "healthy".

use std::thread;
use std::time::{Duration, Instant};

use crate::api::HeartbeatStatus;

use super::context::Context;
use super::sd_notify::Notifier;
use super::shutdown::StopReason;
use super::status::{StatusBoard, unix_now};
use super::summary::status_line;
use super::watch::{ThreadWatch, fail_point};

/// What a [`Heartbeat`] is built from.
pub struct HeartbeatSettings {
    pub ctx: Context,
    pub interval: Duration,
}

/// The heartbeat thread's state; see the module doc.
pub struct Heartbeat {
    settings: HeartbeatSettings,
}

impl Heartbeat {
    pub fn new(settings: HeartbeatSettings) -> Self {
        Heartbeat { settings }
    }

    /// Sends one heartbeat now and records it.
    pub fn beat(ctx: &Context) {
        ctx.board.send_heartbeat(ctx.api.as_ref(), &ctx.secret_id);
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
        let ctx = &self.settings.ctx;
        let _watch = ThreadWatch::new("the heartbeat thread", ctx.clone());
        let interval = self.settings.interval;
        // systemd wants WATCHDOG=1 at least every WatchdogSec; ping at twice that rate,
        // and never less often than we heartbeat.
        let tick = match ctx.notifier.watchdog_interval() {
            Some(w) => interval.min(w / 2),
            None => interval,
        };
        let mut last_beat = Instant::now();
        while !ctx.shutdown.wait_timeout(tick) {
            if ctx
                .board
                .job_running_for()
                .is_none_or(|d| d <= ctx.board.job_deadline() * 2)
            {
                ctx.notifier.watchdog();
            }
            if last_beat.elapsed() + Duration::from_millis(1) < interval {
                continue;
            }
            last_beat = Instant::now();
            fail_point("heartbeat");
            Self::beat(ctx);
            Self::notify_status(&ctx.notifier, &ctx.board);
            self.stop_if_worker_stuck();
        }
        if matches!(self.settings.ctx.board.health(), HeartbeatStatus::Error(_)) {
            Self::beat(&self.settings.ctx);
        }
    }

    /// The watchdog: a job running for twice its deadline is stuck inside a driver (a
    /// server that accepts connections and never answers). The agent exits so the service
    /// manager restarts it; the journal lets the new process finish the rotation.
    fn stop_if_worker_stuck(&self) {
        if let Some(running) = self.settings.ctx.board.job_running_for()
            && running > self.settings.ctx.board.job_deadline() * 2
        {
            log::error!(
                "secret {}: a database job has been stuck for {} s; exiting so the agent restarts",
                self.settings.ctx.secret_id,
                running.as_secs()
            );
            self.settings.ctx.shutdown.request(StopReason::WorkerHung);
        }
    }
}
