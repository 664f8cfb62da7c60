//! The poll thread: fetches the sync config every poll interval and hands it to the worker
//! when the worker is idle. Transient failures back off with jitter and show in the
//! heartbeat; 404/403 and 409 stop the agent.

use std::sync::mpsc::{SyncSender, TrySendError};
use std::thread;
use std::time::{Duration, Instant};

use crate::api::ErrorClass;

use super::context::Context;
use super::shutdown::StopReason;
use super::watch::{ThreadWatch, fail_point};
use super::worker::Job;

/// What a [`Poller`] is built from.
pub struct PollerSettings {
    pub ctx: Context,
    /// Interval from the sync config, unless the test override is set.
    pub interval: Duration,
    /// The test-only override of every later sync config's interval.
    pub interval_override: Option<Duration>,
    /// The `pollIntervalSeconds` of the sync config `interval` came from.
    pub asked_seconds: u64,
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
        let ctx = &self.settings.ctx;
        let _watch = ThreadWatch::new("the poll thread", ctx.clone());
        let mut failures: u32 = 0;
        let mut delay = self.settings.interval;
        // The server's last requested interval, so an out-of-range one is warned about once.
        let mut last_asked = self.settings.asked_seconds;
        while !self.settings.ctx.shutdown.wait_timeout(delay) {
            fail_point("poll");
            // The answer describes the server as it was when the request went out: a
            // rotation the worker finished while it was in flight may still show as
            // pending, and the engine compares with this time, not the arrival.
            let sent_at = Instant::now();
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
                    let (asked, warning) = config.poll_interval_checked();
                    if let Some(w) = warning
                        && config.poll_interval_seconds != last_asked
                    {
                        log::warn!("secret {}: {w}", self.settings.ctx.secret_id);
                    }
                    last_asked = config.poll_interval_seconds;
                    let interval = self.settings.interval_override.unwrap_or(asked);
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
                        fetched_at: sent_at,
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
                        if class == ErrorClass::Terminal {
                            // Waits for the worker: an applied, unconfirmed rotation is
                            // undone first (the server will never promote it).
                            let _ = self.settings.jobs.send(Job::SecretGone);
                        }
                        ctx.shutdown.request(reason);
                        break;
                    }
                    ErrorClass::ClockSkew => {
                        failures += 1;
                        delay = CLOCK_SKEW_RETRY.max(self.settings.interval);
                        let msg = format!("poll failed: {e}");
                        log::error!(
                            "secret {}: {msg}; next try in {} s",
                            self.settings.ctx.secret_id,
                            delay.as_secs()
                        );
                        self.settings.ctx.board.set_poll_error(Some(msg));
                    }
                    ErrorClass::Retryable | ErrorClass::Other => {
                        failures += 1;
                        delay = retry_delay(self.settings.interval);
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

/// How long to wait after a 401 caused by this machine's clock: each refused request counts
/// towards the server's lock-out of this IP, and a clock is not fixed within seconds.
pub const CLOCK_SKEW_RETRY: Duration = Duration::from_secs(300);

fn source_suffix(e: &dyn std::error::Error) -> String {
    e.source().map(|s| format!(" ({s})")).unwrap_or_default()
}

/// The wait after a failed poll: the interval itself, with ±20 % jitter so many agents do
/// not retry in step. Not growing: the interval already paces the requests, and a growing
/// wait made the first poll after an outage up to 3.6 intervals late.
pub fn retry_delay(interval: Duration) -> Duration {
    interval.mul_f64(1.0 + jitter())
}

fn jitter() -> f64 {
    let mut r = [0u8; 2];
    let _ = getrandom::fill(&mut r);
    (u16::from_le_bytes(r) as f64 / u16::MAX as f64) * 0.4 - 0.2
}

/// The wait after `failures` consecutive failed start-up fetches: doubling from `interval`,
/// capped at three intervals, with ±20 % jitter.
pub fn backoff(interval: Duration, failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(2);
    let base = (interval * factor).min(interval * 3);
    base.mul_f64(1.0 + jitter())
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

    #[test]
    fn a_failed_poll_is_retried_within_one_interval_and_a_fifth() {
        let i = Duration::from_secs(10);
        for _ in 0..50 {
            let d = retry_delay(i);
            assert!(d >= i.mul_f64(0.8) && d <= i.mul_f64(1.2), "{d:?}");
        }
    }
}
