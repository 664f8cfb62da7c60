//! `list`: every agent configured or running on this machine, as a table, JSON or
//! metrics (`metrics.rs`); the entries come from `agents.rs`.

use log::Level;

use super::CommandError;
use super::agents::{AgentEntry, entries_in};
use super::local;
use super::printable::printable;
use crate::agent::status::{HeartbeatRecord, RotationRecord};
use crate::cli::OutputFormat;
use crate::clock::format_utc;
use crate::exit::Exit;
use crate::files::agents_dir;
use crate::logging::say;
use crate::settings::Settings;

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
