//! The private current-thread runtime an async driver (tokio-postgres, mongodb) runs on
//! for one job, the [`Session`] that holds it with the driver's client and ends both with
//! the job, and the bound on every call made on it: the agent's own threads stay plain
//! threads, and an idle agent keeps no driver threads.

use std::time::Duration;

use tokio::runtime::Runtime;

use super::error::{FailureKind, ProviderError};
use super::inflight::CallMark;
use super::target::Target;
use crate::secret::Secret;

/// A runtime for one job; dropped with the job.
pub fn job_runtime(target: &Target, action: &str) -> Result<Runtime, ProviderError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            ProviderError::new(
                target,
                FailureKind::Database,
                action,
                format!("cannot start the driver's runtime: {e}"),
            )
        })
}

/// An async driver's client, as a [`Session`] holds it.
pub trait DriverClient: Sized {
    /// How long the end of a job may wait: for [`DriverClient::goodbye`], and then for the
    /// runtime's blocking threads (a name lookup stuck in one must not hold the worker up).
    const SHUTDOWN_GRACE: Duration;

    /// Ends the client's sessions on the server, driven by `runtime`; by default the client
    /// is only dropped, which closes its connection.
    fn goodbye(self, runtime: &Runtime) {
        let _ = runtime;
    }
}

/// A driver's client and the job runtime that drives it. Dropped with the job: the client
/// says goodbye, then the runtime stops, so no driver thread or task outlives the job.
pub struct Session<C: DriverClient> {
    /// `None` only while dropping.
    client: Option<C>,
    /// `None` only while dropping.
    runtime: Option<Runtime>,
}

impl<C: DriverClient> Session<C> {
    pub fn new(client: C, runtime: Runtime) -> Self {
        Session {
            client: Some(client),
            runtime: Some(runtime),
        }
    }

    pub fn client(&self) -> &C {
        self.client.as_ref().expect("client present until drop")
    }

    pub fn runtime(&self) -> &Runtime {
        self.runtime.as_ref().expect("runtime present until drop")
    }
}

impl<C: DriverClient> Drop for Session<C> {
    fn drop(&mut self) {
        let (Some(client), Some(runtime)) = (self.client.take(), self.runtime.take()) else {
            return;
        };
        client.goodbye(&runtime);
        runtime.shutdown_timeout(C::SHUTDOWN_GRACE);
    }
}

/// Runs `call` to completion on `runtime` for at most `budget`, marking the call in flight
/// ([`CallMark`]) while it waits; `None` when the budget ran out first.
pub fn block_on_bounded<T>(
    runtime: &Runtime,
    budget: Duration,
    call: impl IntoFuture<Output = T>,
) -> Option<T> {
    let _mark = CallMark::start();
    // The timer is made inside the runtime: tokio's timers need its context.
    runtime
        .block_on(async { tokio::time::timeout(budget, call).await })
        .ok()
}

/// Runs `login` on a job runtime made for it and shut down after it (within `grace`):
/// the drift check's one login for the async drivers, with nothing kept afterwards.
pub fn login_on_own_runtime(
    target: &Target,
    username: &str,
    password: &Secret,
    grace: Duration,
    login: fn(&Runtime, &Target, &str, &Secret) -> Result<(), ProviderError>,
) -> Result<(), ProviderError> {
    let runtime = job_runtime(target, &format!("logging in as \"{username}\""))?;
    let result = login(&runtime, target, username, password);
    runtime.shutdown_timeout(grace);
    result
}
