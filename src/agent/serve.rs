//! Serving: the main thread's part once start-up is done. It tells systemd the agent is
//! ready, then waits for events: a reload (SIGHUP) re-reads the local config, a stop ends
//! the poll and heartbeat threads and gives the job in flight a bounded time to finish.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::files::AgentFiles;

use super::reload;
use super::shutdown::{Event, StopReason};
use super::startup::Running;
use super::status::unix_now;
use super::summary::status_line;
use super::watch::{ThreadWatch, fail_point};

/// Serves until a stop is requested; returns why it stopped.
pub fn serve(running: Running, files: &AgentFiles) -> StopReason {
    // `running` (and with it the PID file) is held until this returns.
    let ctx = &running.ctx;
    let (secret_id, board, notifier) = (&ctx.secret_id, &ctx.board, &ctx.notifier);
    let _main_watch = ThreadWatch::new("the main thread", ctx.clone());
    let status = || {
        let state = board.state();
        status_line(&board.health(), state.last_rotation.as_ref(), unix_now())
    };
    notifier.ready(&status());

    fail_point("main");
    let mut reloads_seen = 0;
    let reason = loop {
        match ctx.shutdown.wait_event(&mut reloads_seen) {
            Event::Stop(reason) => break reason,
            Event::Reload => {
                notifier.reloading();
                let _ = reload::reload(secret_id, &files.local_config().path, &running.source);
                notifier.reloaded(&status());
            }
        }
    };
    notifier.stopping(&match board.job_running_for() {
        Some(_) => "stopping; finishing the job in flight".to_owned(),
        None => "stopping".to_owned(),
    });
    log::info!("secret {secret_id}: stopping ({reason}); letting any rotation in flight finish");
    let grace = running.timing.stop_grace();
    // A crashed thread never gets here: watch.rs ends the process from its panic.
    let _ = running.poller.join();
    let _ = running.heartbeat.join();
    if reason == StopReason::WorkerHung {
        // The worker is blocked inside a database driver; it ends with the process.
        return reason;
    }
    // Every database call ends within its timeout, but a job against a hung database makes
    // several in a row; the stop waits for one call's worth, then leaves the rotation to
    // the journal (the next start finishes it).
    if !wait_finished(&running.worker, grace) {
        log::warn!(
            "secret {secret_id}: the database job did not end within {} s of the stop; exiting now, any rotation in flight stays journaled and the next start finishes it",
            grace.as_secs()
        );
        return reason;
    }
    let _ = running.worker.join();
    reason
}

/// Waits until `thread` has finished, for at most `limit`.
fn wait_finished(thread: &JoinHandle<()>, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while !thread.is_finished() {
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}
