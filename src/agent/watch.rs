//! Every thread of the agent is watched: a panic in the poll, heartbeat or worker thread,
//! or in the main thread while the agent runs, marks the agent unhealthy, sends that as a
//! last heartbeat and ends the process with exit 70, so a live process never silently
//! stops polling or reporting. The service manager's restart then finishes any journaled
//! rotation.
//!
//! The binary is built with `panic = "abort"` (Cargo.toml), so nothing unwinds and no
//! destructor runs after a panic: the work is done by a panic hook, on the panicking
//! thread, before the process would abort. (A panic where no watch is held, e.g. in the
//! main thread before the agent runs, aborts the process: a signal, which the service
//! manager restarts too.) Nor is any panic caught any more: one in a driver's task on the
//! worker's job runtime, which tokio used to turn into an error, is the worker's crash.

use std::cell::RefCell;
use std::sync::mpsc;
use std::sync::{Once, OnceLock};
use std::thread;
use std::time::Duration;

use crate::exit::Exit;

use super::context::Context;

/// How long the last heartbeat may take before the process exits without it. It is sent
/// from a thread of its own: the panic may have left a lock held that the request needs.
const LAST_WORD: Duration = Duration::from_secs(20);

thread_local! {
    /// The watch of this thread, if it is one of the agent's watched threads.
    static WATCHED: RefCell<Option<Watched>> = const { RefCell::new(None) };
}

struct Watched {
    what: &'static str,
    ctx: Context,
}

/// Held for the life of a thread's body (by the main thread, while the agent runs): while
/// it lives, a panic on this thread is reported as the crash of `what` (e.g. "the poll
/// thread") and ends the process.
pub struct ThreadWatch(());

impl ThreadWatch {
    pub fn new(what: &'static str, ctx: Context) -> Self {
        install_hook();
        WATCHED.with(|w| *w.borrow_mut() = Some(Watched { what, ctx }));
        ThreadWatch(())
    }
}

impl Drop for ThreadWatch {
    fn drop(&mut self) {
        WATCHED.with(|w| w.borrow_mut().take());
    }
}

/// Chains our reaction after the default hook, which prints the message and location.
fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            default(info);
            // `try_with`: the thread may be tearing down its thread-locals.
            let watched = WATCHED
                .try_with(|w| w.try_borrow_mut().ok().and_then(|mut w| w.take()))
                .ok()
                .flatten();
            if let Some(watched) = watched {
                watched.crashed();
            }
        }));
    });
}

impl Watched {
    /// Marks the agent dead, says so in a last heartbeat and exits 70. Never returns.
    fn crashed(self) -> ! {
        let Watched { what, ctx } = self;
        log::error!("{what} crashed; the agent exits so that it is restarted");
        ctx.board.set_worker_dead(format!(
            "{what} crashed; restarting the agent will finish any rotation in flight"
        ));
        ctx.notifier.stopping(&format!("{what} crashed"));
        let (done, sent) = mpsc::channel();
        let last = thread::Builder::new()
            .name("last-heartbeat".into())
            .spawn(move || {
                ctx.board.send_heartbeat(ctx.api.as_ref(), &ctx.secret_id);
                let _ = done.send(());
            });
        if last.is_ok() && sent.recv_timeout(LAST_WORD).is_err() {
            log::error!(
                "the last heartbeat was not sent within {} s",
                LAST_WORD.as_secs()
            );
        }
        std::process::exit(Exit::WorkerCrashed.code())
    }
}

/// The one armed fail point of this process, set once at start-up.
static FAIL_POINT: OnceLock<String> = OnceLock::new();

/// Arms the test hook `SIKKERKEY_AGENT_TEST_PANIC=<name>` for the whole process: called
/// once, by `start`, from the settings' test knobs, before any thread runs. A later call
/// changes nothing.
pub fn arm_fail_point(name: Option<String>) {
    if let Some(name) = name {
        let _ = FAIL_POINT.set(name);
    }
}

/// Test hook: panics when the armed fail point is `name`, so tests can check what a
/// crashed thread does. The points: `main`, `poll`, `heartbeat`, `worker-sync`. Debug
/// builds only.
pub fn fail_point(name: &str) {
    if cfg!(debug_assertions) && FAIL_POINT.get().is_some_and(|armed| armed == name) {
        panic!("test fail point {name}");
    }
}
