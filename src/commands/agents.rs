//! One agent's state as the agent's files under `agents/` show it: the local config, the
//! PID file's lock, the state file the agent keeps (last heartbeat, last rotation) and
//! any rotation journal. `list` prints these entries as a table, JSON or metrics;
//! `status` judges one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use log::Level;
use serde::Serialize;

use super::local::{self, AgentProcess};
use super::printable::printable;
use crate::agent::status::{HeartbeatRecord, Outcome, RotationRecord, StateFile};
use crate::files::{AgentFiles, agents_dir, check_secret_id, official_agents_dir};
use crate::localconfig::LocalConfig;
use crate::logging::say;
use crate::providers::{self, ProviderKind};

/// One agent, as `list -o json` prints it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentEntry {
    pub secret_id: String,
    /// Provider type, from the local config or the state file; empty when unknown.
    pub provider: String,
    /// `host:port`; empty when unknown.
    pub endpoint: String,
    pub running: bool,
    /// PID of the running agent (or of a stale PID file).
    pub pid: Option<u32>,
    /// Whether a local config (`configure`) exists.
    pub configured: bool,
    /// A rotation journal exists: a rotation started and has not been finished.
    pub unfinished_rotation: bool,
    pub last_heartbeat: Option<HeartbeatRecord>,
    pub last_rotation: Option<RotationRecord>,
    /// Rotations finished per outcome, from the state file.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rotations: BTreeMap<Outcome, u64>,
    /// The `SIKKERKEY_HOME` the agent's files are in, when it is another user's (found
    /// through their service); empty for agents under our own.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub home: String,
}

/// Secret ids that have any agent file.
fn secret_ids(dir: &Path) -> BTreeSet<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeSet::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|name| {
            [".state.json", ".json", ".pid", ".journal"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix).map(str::to_owned))
        })
        .filter(|id| check_secret_id(id).is_ok())
        .collect()
}

/// The local config's `host:port`; port 0 is the provider's default.
fn endpoint(host: &str, port: u16, provider: &str) -> String {
    let port = match port {
        0 => provider
            .parse::<ProviderKind>()
            .map(|k| k.default_port())
            .unwrap_or(0),
        p => p,
    };
    providers::endpoint(host, port)
}

/// The entry of one secret's files.
pub fn entry(files: &AgentFiles) -> AgentEntry {
    // The files may hold any text: every warning is escaped for the terminal.
    let warn = |text: &str| say(Level::Warn, &format!("warning: {}", printable(text)));
    let config_path = files.local_config();
    if let Some(w) = config_path.warning() {
        warn(&w);
    }
    let config = LocalConfig::load(&config_path.path).unwrap_or_else(|e| {
        warn(&e.to_string());
        None
    });
    let state = match StateFile::load(&files.state()) {
        Ok(s) => s.unwrap_or_default(),
        Err(e) => {
            warn(&e.to_string());
            StateFile::default()
        }
    };
    let process = local::agent_process(files);
    let (provider, endpoint) = match &config {
        Some(c) if !c.connection.db.host.is_empty() => (
            c.provider_type.clone(),
            endpoint(
                &c.connection.db.host,
                c.connection.db.port,
                &c.provider_type,
            ),
        ),
        _ => (state.provider_type.clone(), state.endpoint.clone()),
    };
    AgentEntry {
        secret_id: files.secret_id().to_owned(),
        provider,
        endpoint,
        running: matches!(process, AgentProcess::Running(_)),
        pid: process.pid(),
        configured: config_path.path.exists(),
        unfinished_rotation: files.journal().exists(),
        last_heartbeat: state.last_heartbeat,
        last_rotation: state.last_rotation,
        rotations: state.rotations,
        home: files
            .dir()
            .parent()
            .map(|h| h.display().to_string())
            .unwrap_or_default(),
    }
}

/// The agents under `home`; with `official`, also those with only a local config where
/// the official CLI keeps it ([`official_agents_dir`]).
pub fn entries_in(home: &Path, official: bool) -> Vec<AgentEntry> {
    let dir = agents_dir(home);
    let mut ids = secret_ids(&dir);
    if official && let Some(theirs) = official_agents_dir(&dir) {
        ids.extend(
            secret_ids(&theirs)
                .into_iter()
                .filter(|id| theirs.join(format!("{id}.json")).exists()),
        );
    }
    ids.iter()
        .filter_map(|id| AgentFiles::new(home, id).ok())
        .map(|files| entry(&files))
        .collect()
}
