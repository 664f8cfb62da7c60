//! Every thread of the agent is watched: a panic in the poll, heartbeat or worker thread
//! marks the agent unhealthy and stops the process with exit 70, so a live process never
//! silently stops polling or reporting. A panic on the main thread, which no one else
//! would report, sends the error heartbeat itself and exits 70 at once. The service
//! manager's restart then finishes any journaled rotation.

use std::sync::Arc;
use std::thread;

use crate::exit::Exit;

use super::Context;
use super::shutdown::{Shutdown, StopReason};
use super::status::StatusBoard;

/// Held for the life of a thread's body; reports the thread's death if it unwinds.
pub struct ThreadWatch {
    what: &'static str,
    board: Arc<StatusBoard>,
    shutdown: Arc<Shutdown>,
}

impl ThreadWatch {
    /// `what` names the thread's job in the heartbeat, e.g. "the poll thread".
    pub fn new(what: &'static str, board: Arc<StatusBoard>, shutdown: Arc<Shutdown>) -> Self {
        ThreadWatch {
            what,
            board,
            shutdown,
        }
    }
}

impl Drop for ThreadWatch {
    fn drop(&mut self) {
        if thread::panicking() {
            log::error!(
                "{} crashed; the agent exits so that it is restarted",
                self.what
            );
            self.board.set_worker_dead(format!(
                "{} crashed; restarting the agent will finish any rotation in flight",
                self.what
            ));
            self.shutdown.request(StopReason::WorkerCrashed);
        }
    }
}

/// Held by the main thread while the agent runs. If the main thread unwinds, the other
/// threads cannot be relied on to say so before the process ends: this marks the agent
/// dead, sends that heartbeat itself (`last_word`), and exits 70 at once.
pub struct MainThreadWatch {
    ctx: Context,
    last_word: fn(&Context),
}

impl MainThreadWatch {
    pub fn new(ctx: Context, last_word: fn(&Context)) -> Self {
        MainThreadWatch { ctx, last_word }
    }
}

impl Drop for MainThreadWatch {
    fn drop(&mut self) {
        if !thread::panicking() {
            return;
        }
        log::error!("the main thread crashed; the agent exits so that it is restarted");
        self.ctx.board.set_worker_dead(
            "the main thread crashed; restarting the agent will finish any rotation in flight"
                .to_owned(),
        );
        self.ctx.notifier.stopping("the main thread crashed");
        (self.last_word)(&self.ctx);
        std::process::exit(Exit::WorkerCrashed.code());
    }
}

/// Test hook: `SIKKERKEY_AGENT_TEST_PANIC=<name>` (passed in as `armed`) panics at the
/// named point, so tests can check what a crashed thread does. Debug builds only.
pub fn fail_point(armed: Option<&str>, name: &str) {
    if cfg!(debug_assertions) && armed == Some(name) {
        panic!("test fail point {name}");
    }
}
