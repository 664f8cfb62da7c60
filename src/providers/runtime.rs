//! The private current-thread runtime an async driver (tokio-postgres, mongodb) runs on
//! for one job, and the bound on every call made on it: the agent's own threads stay
//! plain threads, and an idle agent keeps no driver threads.

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
