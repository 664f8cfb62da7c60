//! What the agent's threads share ([`Context`]) and how fast they run ([`Timing`]).

use std::sync::Arc;
use std::time::Duration;

use crate::api::ApiClient;
use crate::providers::DbTimeouts;

use super::engine::DriftPolicy;
use super::sd_notify::Notifier;
use super::shutdown::Shutdown;
use super::status::StatusBoard;

/// Timing of the runtime. Defaults are the product's; tests shorten them.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Overrides the server's poll interval (and its 5 s floor). Tests only.
    pub poll_override: Option<Duration>,
    pub heartbeat: Duration,
    pub db: DbTimeouts,
    /// A job running longer than this turns the heartbeat to "error".
    pub job_deadline: Duration,
    /// How often an idle agent checks that the live value still logs in, and whether it
    /// repairs what it finds.
    pub drift: DriftPolicy,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            poll_override: None,
            heartbeat: crate::defaults::HEARTBEAT,
            db: DbTimeouts::default(),
            job_deadline: crate::defaults::JOB_DEADLINE,
            drift: DriftPolicy::default(),
        }
    }
}

impl Timing {
    /// The heartbeat reports a database call that has waited a third of the statement
    /// timeout.
    pub fn slow_call(&self) -> Duration {
        self.db.statement / 3
    }

    /// How long a stop waits for a job in flight: one connect plus one statement, the
    /// longest a single database call can take. README's "Stopping" documents this bound.
    pub fn stop_grace(&self) -> Duration {
        self.db.connect + self.db.statement + Duration::from_secs(2)
    }
}

/// What the poll, heartbeat and worker threads (and the main thread's watch) share: the
/// control plane, the secret they work for, the status board the heartbeat reports, the
/// stop signal, and systemd's notification socket.
#[derive(Clone)]
pub struct Context {
    pub api: Arc<ApiClient>,
    pub secret_id: String,
    pub board: Arc<StatusBoard>,
    pub shutdown: Arc<Shutdown>,
    pub notifier: Arc<Notifier>,
}
