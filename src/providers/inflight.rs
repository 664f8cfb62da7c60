//! How long the database call now in flight has been waiting for an answer, so the
//! heartbeat can say "database not answering for N s" while the worker is still blocked in
//! the call, not only after it timed out.
//!
//! One agent process runs one worker, which makes one database call at a time; a
//! process-wide slot is therefore exact, and keeps this plumbing out of every provider's
//! and the engine's signatures. Providers mark each call with [`CallMark::start`].

use std::sync::Mutex;
use std::time::{Duration, Instant};

static STARTED: Mutex<Option<Instant>> = Mutex::new(None);

fn slot() -> std::sync::MutexGuard<'static, Option<Instant>> {
    STARTED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Marks a database call as in flight until dropped.
pub struct CallMark(());

impl CallMark {
    pub fn start() -> CallMark {
        *slot() = Some(Instant::now());
        CallMark(())
    }
}

impl Drop for CallMark {
    fn drop(&mut self) {
        *slot() = None;
    }
}

/// How long the call in flight has waited, if one is in flight.
pub fn waiting_for() -> Option<Duration> {
    slot().map(|s| s.elapsed())
}
