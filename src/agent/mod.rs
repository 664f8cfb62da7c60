//! The agent runtime: start-up (sync config, database check, first heartbeat), then one
//! poll thread, one heartbeat thread and one worker thread until a stop is requested,
//! while the main thread serves reloads and stops.
//!
//! Start-up order: PID file, sync config (retrying while the control plane is
//! unreachable), database check on the worker, first heartbeat, then the first sync
//! config goes to the worker, which finishes any journaled rotation before a new one.

pub mod context;
pub mod control_plane;
pub mod engine;
pub mod heartbeat;
pub mod journal;
pub mod poller;
pub mod reload;
pub mod sd_notify;
pub mod serve;
pub mod shutdown;
pub mod startup;
pub mod status;
pub mod summary;
pub mod watch;
pub mod worker;

use std::sync::Arc;

use crate::api::ApiClient;
use crate::files::AgentFiles;

pub use context::{Context, Timing};
use shutdown::{Shutdown, StopReason};
pub use startup::AgentError;

/// Runs the agent for one secret until a stop is requested: start-up, then serve.
/// Returns why it stopped.
pub fn run(
    api: ApiClient,
    files: &AgentFiles,
    timing: Timing,
    shutdown: Arc<Shutdown>,
) -> Result<StopReason, AgentError> {
    match startup::start_up(api, files, timing, shutdown)? {
        Some(running) => Ok(serve::serve(running, files)),
        None => Ok(StopReason::Signal),
    }
}
