//! `start`: loads the identity, installs the signal handlers and runs the agent.

use std::sync::Arc;
use std::time::Duration;

use super::CommandError;
use crate::agent::shutdown::{Shutdown, StopReason};
use crate::agent::{self, AgentError, Timing};
use crate::api::{ApiClient, HttpTimeouts};
use crate::exit::Exit;
use crate::files::AgentFiles;
use crate::identity::{self, Identity};
use crate::settings::{Settings, TestKnobs};

/// Timing from the defaults, shortened by the test-only knobs.
pub fn timing(knobs: &TestKnobs) -> (Timing, HttpTimeouts) {
    let mut timing = Timing::default();
    let mut http = HttpTimeouts::default();
    timing.poll_override = knobs.poll;
    if let Some(d) = knobs.heartbeat {
        timing.heartbeat = d;
    }
    if let Some(d) = knobs.db_timeout {
        timing.db.connect = d;
        timing.db.statement = d;
    }
    if let Some(d) = knobs.job_deadline {
        timing.job_deadline = d;
    }
    if let Some(d) = knobs.drift {
        timing.drift.interval = Some(d);
    }
    if let Some(d) = knobs.drift_repair_window {
        timing.drift.repair_window = d;
    }
    if let Some(d) = knobs.http_timeout {
        http.connect = d;
        http.total = d;
    }
    (timing, http)
}

pub fn run(secret: &str, settings: &Settings) -> Result<Exit, CommandError> {
    let home = identity::sikkerkey_home(settings.home.as_deref())
        .map_err(|e| CommandError::new(Exit::Config, e))?;
    let files = AgentFiles::new(&home, secret).map_err(|e| CommandError::new(Exit::Usage, e))?;
    crate::logging::set_secret(secret);
    let identity = Identity::load(
        &home,
        settings.vault.as_deref(),
        settings.api_url.as_deref(),
    )
    .map_err(|e| CommandError::new(Exit::Config, e))?;
    log::info!(
        "machine {} (vault {}), API {}",
        identity.machine_id,
        identity.vault_id,
        identity.api_url
    );
    let (mut timing, http) = timing(&settings.test);
    if let Some(secs) = settings.drift_check_seconds {
        timing.drift.interval = (secs > 0).then(|| Duration::from_secs(secs));
    }
    if settings.test.drift.is_some() {
        timing.drift.interval = settings.test.drift;
    }
    timing.drift.repair = settings.drift_repair;
    let api = ApiClient::new(identity, http, settings.ca_file.as_deref())
        .map_err(|e| CommandError::new(Exit::Config, e))?;
    let shutdown = Arc::new(Shutdown::new());
    super::signals::spawn(shutdown.clone()).map_err(|e| {
        CommandError::new(
            Exit::Failure,
            format!("cannot start the signal thread: {e}"),
        )
    })?;
    agent::watch::arm_fail_point(settings.test.panic_at.clone());
    match agent::run(api, &files, timing, shutdown) {
        Ok(StopReason::Signal) => {
            log::info!("secret {secret}: agent stopped");
            Ok(Exit::Ok)
        }
        Ok(StopReason::SecretGone) => Ok(Exit::Ok),
        Ok(StopReason::Locked) => Ok(Exit::Locked),
        Ok(StopReason::WorkerHung) => {
            log::error!(
                "secret {secret}: the database stopped answering in the middle of a job; restart the agent to finish any rotation in flight"
            );
            Ok(Exit::WorkerCrashed)
        }
        Err(e) => {
            let code = match &e {
                AgentError::Locked(_) => Exit::Locked,
                AgentError::SecretGone(_) => Exit::SecretGone,
                AgentError::Database(_) => Exit::Database,
                AgentError::Target(_) | AgentError::LocalConfig(_) => Exit::Config,
                AgentError::PidFile(_) => Exit::Failure,
                AgentError::Api(_) | AgentError::Io { .. } => Exit::Failure,
            };
            Err(CommandError::new(code, e))
        }
    }
}
