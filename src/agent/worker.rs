//! The worker thread: receives jobs over a channel and runs them one at a time through the
//! rotation engine. It is the only thread that touches a database. Dropping every sender
//! ends it; a panic in it marks the agent unhealthy and stops the process.

use std::sync::mpsc::{Receiver, SyncSender};
use std::thread;
use std::time::Instant;

use crate::api::SyncConfig;
use crate::memory;
use crate::providers::ProviderError;

use super::context::Context;
use super::engine::Engine;
use super::watch::{ThreadWatch, fail_point};

/// Work for the worker.
pub enum Job {
    /// Test the database connection and the admin's privileges; answer on the channel.
    Check(SyncSender<Result<(), ProviderError>>),
    /// The secret is gone or this machine lost access (404/403): undo an applied rotation
    /// the server never promoted, before the agent exits.
    SecretGone,
    /// Act on a freshly fetched sync config.
    Sync {
        config: Box<SyncConfig>,
        fetched_at: Instant,
    },
}

pub fn spawn(
    mut engine: Engine,
    jobs: Receiver<Job>,
    ctx: Context,
) -> std::io::Result<thread::JoinHandle<()>> {
    thread::Builder::new().name("worker".into()).spawn(move || {
        let board = ctx.board.clone();
        let _watch = ThreadWatch::new("the rotation worker", ctx);
        for job in jobs {
            board.job_started();
            match job {
                Job::Check(reply) => {
                    let _ = reply.send(engine.check());
                }
                Job::SecretGone => engine.undo_unconfirmed(),
                Job::Sync { config, fetched_at } => {
                    fail_point("worker-sync");
                    engine.handle_sync(&config, fetched_at);
                }
            }
            // The job's driver, TLS and runtime are gone; so should their pages be.
            memory::release();
            board.job_finished();
        }
    })
}
