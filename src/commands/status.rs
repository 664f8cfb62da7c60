//! `status --secret ID`: one agent on one screen, for people and for monitoring. The first
//! line and the exit code follow the monitoring-plugin convention (Nagios, Icinga, Sensu:
//! 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, also for a bad command line), with performance
//! data after a `|`; `-o json` gives the same facts to scripts.

use super::CommandError;
use super::agents::{self, AgentEntry};
use super::local;
use super::printable::printable;
use crate::agent::status::{Outcome, StateFile};
use crate::agent::summary::human_age;
use crate::api::Health;
use crate::cli::OutputFormat;
use crate::clock::{format_utc, unix_now};
use crate::settings::Settings;

/// A Nagios service state; the discriminant is the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Nagios {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl Nagios {
    pub fn code(self) -> i32 {
        self as i32
    }

    pub fn word(self) -> &'static str {
        match self {
            Nagios::Ok => "OK",
            Nagios::Warning => "WARNING",
            Nagios::Critical => "CRITICAL",
            Nagios::Unknown => "UNKNOWN",
        }
    }
}

/// How many heartbeat intervals may pass before a heartbeat counts as stale.
const STALE_AFTER_INTERVALS: u64 = 3;

/// The verdict and why, from what the agent's files say.
pub fn assess(
    entry: &AgentEntry,
    state: &StateFile,
    now: u64,
    any_files: bool,
) -> (Nagios, String) {
    if !any_files {
        return (
            Nagios::Unknown,
            format!(
                "no agent files for secret {} on this machine",
                entry.secret_id
            ),
        );
    }
    if !entry.running {
        let why = if entry.unfinished_rotation {
            "not running, with an unfinished rotation (start it to finish the rotation)"
        } else {
            "not running"
        };
        return (Nagios::Critical, why.into());
    }
    let interval_ms = match state.heartbeat_interval_ms {
        0 => 30_000,
        ms => ms,
    };
    let stale_after = stale_after(state);
    let Some(hb) = &entry.last_heartbeat else {
        return (
            Nagios::Warning,
            "running, starting up (no heartbeat yet)".into(),
        );
    };
    let age = now.saturating_sub(hb.at);
    if hb.at < state.started_at {
        return (
            Nagios::Warning,
            "running, starting up (no heartbeat since the start)".into(),
        );
    }
    if hb.status != Health::Healthy {
        return (Nagios::Critical, format!("unhealthy: {}", hb.error));
    }
    if age > stale_after {
        return (
            Nagios::Critical,
            format!(
                "last heartbeat {} ago (expected every {} s): the agent may be stuck",
                human_age(age),
                interval_ms / 1000
            ),
        );
    }
    if !hb.delivered {
        return (
            Nagios::Warning,
            "healthy, but SikkerKey did not receive the last heartbeat".into(),
        );
    }
    if let Some(r) = &entry.last_rotation
        && r.outcome == Outcome::Rejected
    {
        return (
            Nagios::Warning,
            format!(
                "healthy, but the last rotation {} was rejected: {}",
                r.rotation_id, r.error
            ),
        );
    }
    (Nagios::Ok, "running and healthy".into())
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// Seconds after which a heartbeat counts as stale (CRITICAL).
fn stale_after(state: &StateFile) -> u64 {
    let interval_ms = match state.heartbeat_interval_ms {
        0 => 30_000,
        ms => ms,
    };
    // Timestamps are whole seconds: allow a few seconds of slack on short intervals.
    (interval_ms * STALE_AFTER_INTERVALS).div_ceil(1000).max(5)
}

/// Performance data after the `|` of the plugin line: the heartbeat's age against its
/// critical threshold, and the rotation counters.
pub fn perfdata(entry: &AgentEntry, state: &StateFile, now: u64) -> String {
    let mut parts = Vec::new();
    if let Some(hb) = &entry.last_heartbeat {
        parts.push(format!(
            "last_heartbeat_age={}s;;{};0",
            now.saturating_sub(hb.at),
            stale_after(state)
        ));
    }
    for outcome in Outcome::FINISHED {
        let n = state.rotations.get(&outcome).copied().unwrap_or(0);
        parts.push(format!("rotations_{outcome}={n}c;;;0"));
    }
    parts.join(" ")
}

/// Prints the screen (or, with `-o json`, one JSON object); the verdict is the exit code
/// (`main` maps it, not through `Exit`). Text from the files is escaped before printing.
pub fn run(
    secret: &str,
    format: OutputFormat,
    settings: &Settings,
) -> Result<Nagios, CommandError> {
    let files = local::files(secret, settings)?;
    let any_files = [
        files.local_config().path,
        files.pid(),
        files.state(),
        files.journal(),
    ]
    .iter()
    .any(|p| p.exists());
    let entry = agents::entry(&files);
    let state = StateFile::load_or_default(&files.state());
    let now = unix_now();
    let (verdict, why) = assess(&entry, &state, now, any_files);
    let rotation = crate::agent::summary::rotation_phrase(entry.last_rotation.as_ref(), now);
    if format == OutputFormat::Json {
        let report = serde_json::json!({
            "secretId": secret,
            "state": verdict.word(),
            "exitCode": verdict.code(),
            "summary": why,
            "running": entry.running,
            "pid": entry.pid,
            "startedAt": (state.started_at > 0).then_some(state.started_at),
            "lastHeartbeat": entry.last_heartbeat,
            "lastHeartbeatAgeSeconds": entry.last_heartbeat.as_ref().map(|h| now.saturating_sub(h.at)),
            "staleAfterSeconds": stale_after(&state),
            "lastRotation": entry.last_rotation,
            "rotations": state.rotations,
            "unfinishedRotation": entry.unfinished_rotation,
            "provider": entry.provider,
            "endpoint": entry.endpoint,
            "configured": entry.configured,
        });
        let json = serde_json::to_string_pretty(&report).expect("a JSON value always serializes");
        println!("{}", super::printable::json_for_terminal(json));
        return Ok(verdict);
    }
    println!(
        "SIKKERKEY AGENT {} - {secret}: {}; {} | {}",
        verdict.word(),
        printable(&why),
        printable(&rotation),
        perfdata(&entry, &state, now)
    );
    let running = match (entry.running, entry.pid) {
        (true, Some(pid)) if state.started_at > 0 => format!(
            "yes, PID {pid}, up {}",
            human_age(now.saturating_sub(state.started_at))
        ),
        (true, Some(pid)) => format!("yes, PID {pid}"),
        (false, Some(pid)) => format!("no (stale PID file for PID {pid})"),
        _ => "no".into(),
    };
    let heartbeat = match &entry.last_heartbeat {
        None => "none".into(),
        Some(h) => format!(
            "{} at {} ({} ago){}{}",
            h.status,
            format_utc(h.at),
            human_age(now.saturating_sub(h.at)),
            if h.delivered { "" } else { ", not delivered" },
            if h.error.is_empty() {
                String::new()
            } else {
                format!(": {}", h.error)
            }
        ),
    };
    let last_rotation = match &entry.last_rotation {
        None => "none".into(),
        Some(r) => format!(
            "{} {} at {} ({} ago){}",
            r.rotation_id,
            r.outcome,
            format_utc(r.at),
            human_age(now.saturating_sub(r.at)),
            if r.error.is_empty() {
                String::new()
            } else {
                format!(": {}", r.error)
            }
        ),
    };
    let counts: Vec<String> = state
        .rotations
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let rows = [
        ("running", running),
        ("health", heartbeat),
        ("last rotation", last_rotation),
        (
            "rotations",
            if counts.is_empty() {
                "none".into()
            } else {
                counts.join(", ")
            },
        ),
        (
            "journal",
            if entry.unfinished_rotation {
                format!(
                    "present: a rotation is in flight or unfinished ({})",
                    files.journal().display()
                )
            } else {
                "none".into()
            },
        ),
        (
            "database",
            format!("{} {}", entry.provider, entry.endpoint)
                .trim()
                .to_owned(),
        ),
        ("local config", yes_no(entry.configured).into()),
    ];
    for (k, v) in rows {
        println!("  {:<14} {}", format!("{k}:"), printable(&v));
    }
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::status::{HeartbeatRecord, RotationRecord};

    fn entry(running: bool, hb: Option<(&str, u64, bool)>) -> AgentEntry {
        AgentEntry {
            secret_id: "sk_1".into(),
            provider: String::new(),
            endpoint: String::new(),
            running,
            pid: Some(1),
            configured: false,
            unfinished_rotation: false,
            last_heartbeat: hb.map(|(s, at, delivered)| HeartbeatRecord {
                at,
                status: if s == "healthy" {
                    Health::Healthy
                } else {
                    Health::Error
                },
                error: String::new(),
                delivered,
            }),
            last_rotation: None,
            rotations: Default::default(),
            home: String::new(),
        }
    }

    #[test]
    fn verdicts() {
        let state = StateFile {
            heartbeat_interval_ms: 30_000,
            started_at: 10,
            ..StateFile::default()
        };
        let v = |e: &AgentEntry, now| assess(e, &state, now, true).0;
        assert_eq!(
            v(&entry(true, Some(("healthy", 100, true))), 120),
            Nagios::Ok
        );
        assert_eq!(
            v(&entry(true, Some(("healthy", 100, true))), 200),
            Nagios::Critical
        );
        assert_eq!(
            v(&entry(true, Some(("error", 100, true))), 101),
            Nagios::Critical
        );
        assert_eq!(
            v(&entry(true, Some(("healthy", 100, false))), 101),
            Nagios::Warning
        );
        assert_eq!(v(&entry(true, None), 11), Nagios::Warning);
        assert_eq!(
            v(&entry(false, Some(("healthy", 100, true))), 101),
            Nagios::Critical
        );
        assert_eq!(
            assess(&entry(false, None), &state, 1, false).0,
            Nagios::Unknown
        );
        let mut rejected = entry(true, Some(("healthy", 100, true)));
        rejected.last_rotation = Some(RotationRecord {
            rotation_id: "r".into(),
            outcome: Outcome::Rejected,
            at: 90,
            error: "x".into(),
        });
        assert_eq!(v(&rejected, 101), Nagios::Warning);
    }
}
