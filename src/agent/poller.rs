//! The poll thread: fetches the sync config every poll interval and hands it to the worker
//! when the worker is idle. Transient failures back off with jitter and show in the
//! heartbeat; 404/403 and 409 stop the agent.

use std::sync::mpsc::{SyncSender, TrySendError};
use std::thread;
use std::time::{Duration, Instant};

use crate::api::ErrorClass;

use super::Context;
use super::shutdown::StopReason;
use super::worker::Job;

/// What a [`Poller`] is built from.
pub struct PollerSettings {
    pub ctx: Context,
    /// Interval from the sync config, unless the test override is set.
    pub interval: Duration,
    /// The test-only override of every later sync config's interval.
    pub interval_override: Option<Duration>,
    pub jobs: SyncSender<Job>,
}

/// The poll thread's state; see the module doc. `settings.interval` is the current
/// interval: a later sync config may change it.
pub struct Poller {
    settings: PollerSettings,
}

impl Poller {
    pub fn new(settings: PollerSettings) -> Self {
        Poller { settings }
    }

    pub fn spawn(self) -> std::io::Result<thread::JoinHandle<()>> {
        thread::Builder::new()
            .name("poll".into())
            .spawn(move || self.run())
    }

    fn run(mut self) {
        let mut failures: u32 = 0;
        let mut delay = self.settings.interval;
        while !self.settings.ctx.shutdown.wait_timeout(delay) {
            match self
                .settings
                .ctx
                .api
                .sync_config(&self.settings.ctx.secret_id)
            {
                Ok(config) => {
                    if failures > 0 {
                        log::info!(
                            "secret {}: control plane reachable again",
                            self.settings.ctx.secret_id
                        );
                    }
                    failures = 0;
                    self.settings.ctx.board.set_poll_error(None);
                    let interval = self
                        .settings
                        .interval_override
                        .unwrap_or_else(|| config.poll_interval());
                    if interval != self.settings.interval {
                        log::info!(
                            "secret {}: poll interval is now {} s",
                            self.settings.ctx.secret_id,
                            interval.as_secs()
                        );
                        self.settings.interval = interval;
                    }
                    delay = self.settings.interval;
                    match self.settings.jobs.try_send(Job::Sync {
                        config: Box::new(config),
                        fetched_at: Instant::now(),
                    }) {
                        Ok(()) => {}
                        Err(TrySendError::Full(_)) => log::debug!(
                            "secret {}: worker busy; poll result dropped",
                            self.settings.ctx.secret_id
                        ),
                        Err(TrySendError::Disconnected(_)) => break,
                    }
                }
                Err(e) => match e.class() {
                    class @ (ErrorClass::Terminal | ErrorClass::Locked) => {
                        // A deleted secret is a clean stop; a lock held elsewhere is not.
                        let (level, reason) = if class == ErrorClass::Terminal {
                            (log::Level::Info, StopReason::SecretGone)
                        } else {
                            (log::Level::Error, StopReason::Locked)
                        };
                        let ctx = &self.settings.ctx;
                        log::log!(level, "secret {}: {e}; the agent exits", ctx.secret_id);
                        ctx.shutdown.request(reason);
                        break;
                    }
                    ErrorClass::Retryable | ErrorClass::Other => {
                        failures += 1;
                        delay = backoff(self.settings.interval, failures);
                        let msg = format!("poll failed: {e}");
                        log::warn!(
                            "secret {}: {msg}{}; next try in {} ms",
                            self.settings.ctx.secret_id,
                            source_suffix(&e),
                            delay.as_millis()
                        );
                        self.settings.ctx.board.set_poll_error(Some(msg));
                    }
                },
            }
        }
    }
}

fn source_suffix(e: &dyn std::error::Error) -> String {
    e.source().map(|s| format!(" ({s})")).unwrap_or_default()
}

/// The wait after `failures` consecutive failed polls: doubling from the interval, capped
/// at three intervals, with ±20 % jitter so many agents do not retry in step.
pub fn backoff(interval: Duration, failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(2);
    let base = (interval * factor).min(interval * 3);
    let mut r = [0u8; 2];
    let _ = getrandom::fill(&mut r);
    let jitter = (u16::from_le_bytes(r) as f64 / u16::MAX as f64) * 0.4 - 0.2;
    base.mul_f64(1.0 + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let i = Duration::from_secs(10);
        for failures in 1..20 {
            let d = backoff(i, failures);
            assert!(
                d >= i.mul_f64(0.8) && d <= (i * 3).mul_f64(1.2),
                "{failures}: {d:?}"
            );
        }
        assert!(backoff(i, 3) > i * 2);
    }
}
