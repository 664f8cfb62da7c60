//! The worker thread: receives jobs over a channel and runs them one at a time through the
//! rotation engine. It is the only thread that touches a database. Dropping every sender
//! ends it; a panic in it marks the agent unhealthy and stops the process.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};
use std::thread;
use std::time::Instant;

use crate::api::SyncConfig;
use crate::memory;
use crate::providers::ProviderError;

use super::rotation::RotationEngine;
use super::shutdown::{Shutdown, StopReason};
use super::status::StatusBoard;

/// Work for the worker.
pub enum Job {
    /// Test the database connection and the admin's privileges; answer on the channel.
    Check(SyncSender<Result<(), ProviderError>>),
    /// Act on a freshly fetched sync config.
    Sync {
        config: Box<SyncConfig>,
        fetched_at: Instant,
    },
}

/// Marks the agent as broken if the worker unwinds.
struct PanicReporter {
    board: Arc<StatusBoard>,
    shutdown: Arc<Shutdown>,
}

impl Drop for PanicReporter {
    fn drop(&mut self) {
        if thread::panicking() {
            self.board.set_worker_dead("the rotation worker crashed; restarting the agent will finish any rotation in flight".into());
            self.shutdown.request(StopReason::WorkerCrashed);
        }
    }
}

pub fn spawn(
    mut engine: RotationEngine,
    jobs: Receiver<Job>,
    board: Arc<StatusBoard>,
    shutdown: Arc<Shutdown>,
    test_panic_at: Option<String>,
) -> std::io::Result<thread::JoinHandle<()>> {
    thread::Builder::new().name("worker".into()).spawn(move || {
        let _reporter = PanicReporter {
            board: board.clone(),
            shutdown,
        };
        for job in jobs {
            board.job_started();
            match job {
                Job::Check(reply) => {
                    let _ = reply.send(engine.check());
                }
                Job::Sync { config, fetched_at } => {
                    fail_point(test_panic_at.as_deref(), "worker-sync");
                    engine.handle_sync(&config, fetched_at);
                }
            }
            // The job's driver, TLS and runtime are gone; so should their pages be.
            memory::release();
            board.job_finished();
        }
    })
}

/// Test hook: `SIKKERKEY_AGENT_TEST_PANIC=<name>` (passed in as `armed`) panics at the
/// named point, so tests can check what a crashed worker does. Debug builds only.
fn fail_point(armed: Option<&str>, name: &str) {
    if cfg!(debug_assertions) && armed == Some(name) {
        panic!("test fail point {name}");
    }
}
