//! `list`: every agent configured or running on this machine, from the files under
//! `agents/`: the local config, the PID file, the state file the agent keeps (last
//! heartbeat, last rotation) and any rotation journal.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use log::Level;

use super::CommandError;
use super::local::{self, AgentProcess};
use super::printable::printable;
use crate::agent::status::{HeartbeatRecord, Outcome, RotationRecord, StateFile};
use crate::cli::OutputFormat;
use crate::exit::Exit;
use crate::files::{AgentFiles, agents_dir, check_secret_id, official_agents_dir};
use crate::localconfig::LocalConfig;
use crate::logging::say;
use crate::providers::ProviderKind;
use crate::settings::Settings;

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

fn endpoint(host: &str, port: u16, provider: &str) -> String {
    let port = match port {
        0 => provider
            .parse::<ProviderKind>()
            .map(|k| k.default_port())
            .unwrap_or(0),
        p => p,
    };
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

pub fn entry(files: &AgentFiles) -> AgentEntry {
    let config_path = files.local_config();
    if let Some(w) = config_path.warning() {
        say(Level::Warn, &format!("warning: {}", printable(&w)));
    }
    let config = match LocalConfig::load(&config_path.path) {
        Ok(c) => c,
        Err(e) => {
            say(
                Level::Warn,
                &format!("warning: {}", printable(&e.to_string())),
            );
            None
        }
    };
    let state = match StateFile::load(&files.state()) {
        Ok(s) => s.unwrap_or_default(),
        Err(e) => {
            say(
                Level::Warn,
                &format!("warning: {}", printable(&e.to_string())),
            );
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

pub use crate::logging::format_utc;

fn status_text(e: &AgentEntry) -> String {
    let mut s = if e.running {
        "running".to_owned()
    } else {
        "stopped".to_owned()
    };
    if e.unfinished_rotation {
        s.push_str(", rotation unfinished");
    }
    s
}

fn rotation_text(r: &Option<RotationRecord>) -> String {
    match r {
        None => "-".into(),
        Some(r) => format!("{} {} {}", r.rotation_id, r.outcome, format_utc(r.at)),
    }
}

fn heartbeat_text(h: &Option<HeartbeatRecord>) -> String {
    match h {
        None => "-".into(),
        Some(h) => {
            let mut s = format!("{} {}", h.status, format_utc(h.at));
            if !h.delivered {
                s.push_str(" (not delivered)");
            }
            if !h.error.is_empty() {
                s.push_str(": ");
                s.push_str(&h.error);
            }
            s
        }
    }
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_owned()
    }
}

/// The table `list` prints: aligned columns, the free-text heartbeat last.
pub fn table(entries: &[AgentEntry]) -> String {
    let header = [
        "SECRET",
        "PROVIDER",
        "ENDPOINT",
        "STATUS",
        "PID",
        "LAST ROTATION",
        "LAST HEARTBEAT",
    ];
    // Every cell may hold text from a state file, a database or the control plane.
    let rows: Vec<[String; 7]> = entries
        .iter()
        .map(|e| {
            [
                e.secret_id.clone(),
                or_dash(&e.provider),
                or_dash(&e.endpoint),
                status_text(e),
                e.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                rotation_text(&e.last_rotation),
                heartbeat_text(&e.last_heartbeat),
            ]
            .map(|cell| printable(&cell).into_owned())
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let last = cells.len() - 1;
        for (i, cell) in cells.iter().enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push('\n');
    };
    line(&header.map(str::to_owned));
    for row in &rows {
        line(row);
    }
    out
}

/// The agents under `home`; with `official`, also those with only a local config where
/// the official CLI keeps it ([`official_agents_dir`]).
fn entries_in(home: &Path, official: bool) -> Vec<AgentEntry> {
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

pub fn run(format: OutputFormat, settings: &Settings) -> Result<Exit, CommandError> {
    let home = local::home(settings)?;
    let dir = agents_dir(&home);
    let mut entries = entries_in(&home, true);
    for e in &mut entries {
        e.home.clear();
    }
    // Agents other users run as services (their units name their SIKKERKEY_HOME).
    let (others, unreadable) =
        super::service_homes::other_homes(&home, settings.service_dir.as_deref());
    for other in &others {
        entries.extend(entries_in(other, false));
    }
    let metrics = matches!(format, OutputFormat::Prometheus | OutputFormat::OpenMetrics);
    if !unreadable.is_empty() && !metrics {
        say(
            Level::Info,
            &format!(
                "note: services of other users keep agents in {} (not readable; run with sudo to include them)",
                printable(&path_list(&unreadable))
            ),
        );
    }
    match format {
        OutputFormat::Json => {
            let json = serde_json::to_string_pretty(&entries)
                .map_err(|e| CommandError::new(Exit::Failure, e))?;
            println!("{}", super::printable::json_for_terminal(json));
        }
        OutputFormat::Prometheus => print!(
            "{}",
            super::metrics::exposition(&entries, super::metrics::Flavor::Prometheus)
        ),
        OutputFormat::OpenMetrics => print!(
            "{}",
            super::metrics::exposition(&entries, super::metrics::Flavor::OpenMetrics)
        ),
        OutputFormat::Table if entries.is_empty() => {
            println!(
                "no agents are configured or running on this machine (nothing in {})",
                printable(&dir.display().to_string())
            );
        }
        OutputFormat::Table => {
            print!("{}", table(&entries));
            if !others.is_empty() {
                println!(
                    "(includes agents of other users' services, in {})",
                    printable(&path_list(&others))
                );
            }
        }
    }
    Ok(Exit::Ok)
}

/// Paths for a one-line note: "a, b, c".
fn path_list(paths: &[std::path::PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
