//! A stop request every thread can wait on: a `Mutex` + `Condvar` so that the poll and
//! heartbeat sleeps end the moment a signal arrives, instead of after their interval.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Why the agent is stopping; becomes the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// SIGINT or SIGTERM.
    Signal,
    /// The secret was deleted or access revoked (404/403 on a poll).
    SecretGone,
    /// Another machine took the agent lock (409 on a poll).
    Locked,
    /// A job outlived twice its deadline (a database that accepts connections but never
    /// answers); the stuck worker cannot be joined, so the process exits and restarts.
    WorkerHung,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StopReason::Signal => "asked to stop by a signal",
            StopReason::SecretGone => "the secret is gone or access was revoked",
            StopReason::Locked => "another machine holds the agent lock",
            StopReason::WorkerHung => "a database job hung",
        })
    }
}

#[derive(Debug, Default)]
pub struct Shutdown {
    reason: Mutex<Option<StopReason>>,
    changed: Condvar,
    /// SIGHUPs received: the main thread re-reads the local config for each new one.
    reloads: AtomicU64,
}

/// What the main thread wakes up for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Stop(StopReason),
    Reload,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every thread to stop. The first reason given wins.
    pub fn request(&self, reason: StopReason) {
        let mut r = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if r.is_none() {
            *r = Some(reason);
        }
        self.changed.notify_all();
    }

    pub fn reason(&self) -> Option<StopReason> {
        *self.reason.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_requested(&self) -> bool {
        self.reason().is_some()
    }

    /// Sleeps up to `timeout`; returns `true` at once when a stop is requested.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut r = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        while r.is_none() {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            r = self
                .changed
                .wait_timeout(r, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// Asks the main thread to re-read the local config (SIGHUP).
    pub fn request_reload(&self) {
        let _r = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        self.reloads.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_all();
    }

    /// Blocks until a stop or a reload newer than `*seen` is requested. A stop wins.
    pub fn wait_event(&self, seen: &mut u64) -> Event {
        let mut r = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(reason) = *r {
                return Event::Stop(reason);
            }
            let now = self.reloads.load(Ordering::SeqCst);
            if now != *seen {
                *seen = now;
                return Event::Reload;
            }
            r = self.changed.wait(r).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Blocks until a stop is requested and returns its reason.
    pub fn wait(&self) -> StopReason {
        let mut r = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(reason) = *r {
                return reason;
            }
            r = self.changed.wait(r).unwrap_or_else(|e| e.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_request_ends_a_long_wait_at_once() {
        let s = Arc::new(Shutdown::new());
        let s2 = s.clone();
        let t = std::thread::spawn(move || s2.wait_timeout(Duration::from_secs(600)));
        s.request(StopReason::Signal);
        assert!(t.join().unwrap());
        s.request(StopReason::Locked);
        assert_eq!(s.reason(), Some(StopReason::Signal));
        assert!(!Shutdown::new().wait_timeout(Duration::from_millis(1)));
    }

    #[test]
    fn a_reload_wakes_the_main_thread_and_a_stop_wins() {
        let s = Shutdown::new();
        let mut seen = 0;
        s.request_reload();
        assert_eq!(s.wait_event(&mut seen), Event::Reload);
        s.request_reload();
        s.request(StopReason::Signal);
        assert_eq!(s.wait_event(&mut seen), Event::Stop(StopReason::Signal));
    }
}
