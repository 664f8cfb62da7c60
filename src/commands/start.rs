//! `start`: loads the identity, installs the signal handlers and runs the agent.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::CommandError;
use crate::agent::shutdown::{Shutdown, StopReason};
use crate::agent::{self, AgentError, Timing};
use crate::api::{ApiClient, HttpTimeouts};
use crate::exit;
use crate::files::AgentFiles;
use crate::identity::{self, Identity};

/// Reads a duration in milliseconds from a test-only environment variable.
fn env_ms(name: &str) -> Option<Duration> {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_millis)
}

/// Timing from the defaults, shortened by the `SIKKERKEY_AGENT_*_MS` variables that tests set.
pub fn timing_from_env() -> (Timing, HttpTimeouts) {
    let mut timing = Timing::default();
    let mut http = HttpTimeouts::default();
    timing.poll_override = env_ms("SIKKERKEY_AGENT_POLL_MS");
    if let Some(d) = env_ms("SIKKERKEY_AGENT_HEARTBEAT_MS") {
        timing.heartbeat = d;
    }
    if let Some(d) = env_ms("SIKKERKEY_AGENT_DB_TIMEOUT_MS") {
        timing.db.connect = d;
        timing.db.statement = d;
    }
    if let Some(d) = env_ms("SIKKERKEY_AGENT_JOB_DEADLINE_MS") {
        timing.job_deadline = d;
    }
    // The drift check: SIKKERKEY_DRIFT_CHECK_SECONDS (0 turns it off), and
    // SIKKERKEY_DRIFT_REPAIR=off to only detect and report; tests shorten it in ms.
    if let Some(secs) = std::env::var("SIKKERKEY_DRIFT_CHECK_SECONDS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        timing.drift.interval = (secs > 0).then(|| Duration::from_secs(secs));
    }
    if let Some(d) = env_ms("SIKKERKEY_AGENT_DRIFT_MS") {
        timing.drift.interval = Some(d);
    }
    if let Ok(v) = std::env::var("SIKKERKEY_DRIFT_REPAIR") {
        timing.drift.repair = !matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "off" | "0" | "false" | "no" | "detect-only"
        );
    }
    if let Some(d) = env_ms("SIKKERKEY_AGENT_HTTP_TIMEOUT_MS") {
        http.connect = d;
        http.total = d;
    }
    (timing, http)
}

/// First SIGINT/SIGTERM asks for a clean stop; a second one exits at once.
fn install_signal_handlers(shutdown: Arc<Shutdown>) -> Result<(), CommandError> {
    let count = AtomicU32::new(0);
    ctrlc::set_handler(move || {
        if count.fetch_add(1, Ordering::SeqCst) == 0 {
            shutdown.request(StopReason::Signal);
        } else {
            eprintln!("second signal: exiting now");
            std::process::exit(130);
        }
    })
    .map_err(|e| {
        CommandError::new(
            exit::FAILURE,
            format!("cannot install signal handlers: {e}"),
        )
    })
}

pub fn run(secret: &str) -> Result<i32, CommandError> {
    let home = identity::sikkerkey_home().map_err(|e| CommandError::new(exit::CONFIG, e))?;
    let files = AgentFiles::new(&home, secret).map_err(|e| CommandError::new(exit::USAGE, e))?;
    let identity = Identity::load(&home).map_err(|e| CommandError::new(exit::CONFIG, e))?;
    log::info!(
        "machine {} (vault {}), API {}",
        identity.machine_id,
        identity.vault_id,
        identity.api_url
    );
    let (timing, http) = timing_from_env();
    let api = ApiClient::new(identity, http);
    let shutdown = Arc::new(Shutdown::new());
    install_signal_handlers(shutdown.clone())?;
    match agent::run(api, &files, timing, shutdown) {
        Ok(StopReason::Signal) => {
            log::info!("secret {secret}: agent stopped");
            Ok(exit::OK)
        }
        Ok(StopReason::SecretGone) => Ok(exit::OK),
        Ok(StopReason::Locked) => Ok(exit::LOCKED),
        Ok(StopReason::WorkerHung) => {
            log::error!(
                "secret {secret}: the database stopped answering in the middle of a job; restart the agent to finish any rotation in flight"
            );
            Ok(exit::WORKER_CRASHED)
        }
        Ok(StopReason::WorkerCrashed) => {
            log::error!(
                "secret {secret}: the rotation worker crashed; restart the agent to finish any rotation in flight"
            );
            Ok(exit::WORKER_CRASHED)
        }
        Err(e) => {
            let code = match &e {
                AgentError::Locked(_) => exit::LOCKED,
                AgentError::SecretGone(_) => exit::SECRET_GONE,
                AgentError::Database(_) => exit::DATABASE,
                AgentError::Provider(_) | AgentError::Config(_) | AgentError::LocalConfig(_) => {
                    exit::CONFIG
                }
                AgentError::AlreadyRunning { .. } => exit::FAILURE,
                AgentError::Api(_) | AgentError::Io { .. } => exit::FAILURE,
            };
            Err(CommandError::new(code, e))
        }
    }
}
