//! `list -o prometheus` / `-o openmetrics`: the agents' state as metrics text, to be
//! written to a file for node_exporter's textfile collector (README: a systemd timer
//! recipe). Nothing listens on a socket on the database host: the agent exports nothing.
//!
//! The default is the classic Prometheus text format (0.0.4), the one the textfile
//! collector parses: a counter's family is named with its `_total` suffix there.
//! OpenMetrics (1.0) names the family without it, types the info metric as `info` and
//! ends with `# EOF`. Every rotation outcome has its counter from the start, at 0, so the
//! first rejection is an increase of an existing series rather than a new one that
//! `increase()` would miss.

use std::fmt::Write;

use super::agents::AgentEntry;
use super::printable::printable;
use crate::agent::status::Outcome;
use crate::api::Health;

/// Which text format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Prometheus text format 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

/// A label value: control characters shown escaped, then `\`, `"` and newlines escaped
/// as the formats require.
fn escape(value: &str) -> String {
    printable(value)
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels(e: &AgentEntry, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![("secret", e.secret_id.as_str())];
    pairs.extend_from_slice(extra);
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Gauge,
    Counter,
    Info,
}

/// One metric family: its HELP and TYPE lines and one sample per agent that has a value.
/// `name` is the sample name without the suffix its type adds (`_total`, `_info`).
fn family(
    out: &mut String,
    flavor: Flavor,
    name: &str,
    kind: Type,
    help: &str,
    samples: impl IntoIterator<Item = (String, String)>,
) {
    let suffix = match kind {
        Type::Gauge => "",
        Type::Counter => "_total",
        Type::Info => "_info",
    };
    let (family, type_word) = match (flavor, kind) {
        (Flavor::OpenMetrics, Type::Counter) => (name.to_owned(), "counter"),
        (Flavor::OpenMetrics, Type::Info) => (name.to_owned(), "info"),
        (_, Type::Gauge) => (name.to_owned(), "gauge"),
        (Flavor::Prometheus, Type::Counter) => (format!("{name}{suffix}"), "counter"),
        // The classic format has no info type: a gauge that is always 1.
        (Flavor::Prometheus, Type::Info) => (format!("{name}{suffix}"), "gauge"),
    };
    let _ = writeln!(out, "# HELP {family} {help}");
    let _ = writeln!(out, "# TYPE {family} {type_word}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{suffix}{labels} {value}");
    }
}

/// The exposition for these agents in `flavor`.
pub fn exposition(entries: &[AgentEntry], flavor: Flavor) -> String {
    let mut out = String::new();
    let version = env!("CARGO_PKG_VERSION");
    family(
        &mut out,
        flavor,
        "sikkerkey_agent",
        Type::Info,
        "The agent for the secret: version of this sikkerkey-agent, database provider and endpoint.",
        entries.iter().map(|e| {
            let l = labels(
                e,
                &[
                    ("version", version),
                    ("provider", &e.provider),
                    ("endpoint", &e.endpoint),
                ],
            );
            (l, "1".to_owned())
        }),
    );
    family(
        &mut out,
        flavor,
        "sikkerkey_agent_up",
        Type::Gauge,
        "Whether the agent process for the secret runs on this machine.",
        entries.iter().map(|e| {
            let l = labels(e, &[("provider", &e.provider), ("endpoint", &e.endpoint)]);
            (l, u8::from(e.running).to_string())
        }),
    );
    family(
        &mut out,
        flavor,
        "sikkerkey_agent_healthy",
        Type::Gauge,
        "Whether the agent runs and its last heartbeat reported healthy.",
        entries.iter().map(|e| {
            let healthy = e.running
                && e.last_heartbeat
                    .as_ref()
                    .is_some_and(|h| h.status == Health::Healthy);
            (labels(e, &[]), u8::from(healthy).to_string())
        }),
    );
    family(
        &mut out,
        flavor,
        "sikkerkey_agent_last_heartbeat_timestamp_seconds",
        Type::Gauge,
        "When the agent last sent a heartbeat (Unix time).",
        entries.iter().filter_map(|e| {
            let h = e.last_heartbeat.as_ref()?;
            Some((labels(e, &[]), h.at.to_string()))
        }),
    );
    family(
        &mut out,
        flavor,
        "sikkerkey_agent_last_rotation_timestamp_seconds",
        Type::Gauge,
        "When the last rotation finished (Unix time), labelled with its outcome.",
        entries.iter().filter_map(|e| {
            let r = e.last_rotation.as_ref()?;
            Some((
                labels(e, &[("outcome", r.outcome.as_str())]),
                r.at.to_string(),
            ))
        }),
    );
    family(
        &mut out,
        flavor,
        "sikkerkey_agent_rotations",
        Type::Counter,
        "Rotations finished, by outcome.",
        entries.iter().flat_map(|e| {
            Outcome::FINISHED
                .into_iter()
                .map(|o| {
                    let n = e.rotations.get(&o).copied().unwrap_or(0);
                    (labels(e, &[("outcome", o.as_str())]), n.to_string())
                })
                .collect::<Vec<_>>()
        }),
    );
    family(
        &mut out,
        flavor,
        "sikkerkey_agent_unfinished_rotation",
        Type::Gauge,
        "Whether a rotation journal exists (a rotation in flight or left unfinished).",
        entries
            .iter()
            .map(|e| (labels(e, &[]), u8::from(e.unfinished_rotation).to_string())),
    );
    if flavor == Flavor::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent() -> AgentEntry {
        AgentEntry {
            secret_id: "sk_1".into(),
            provider: "postgresql".into(),
            endpoint: "db\u{1b}[2J\"x\":5432".into(),
            running: true,
            pid: Some(1),
            configured: true,
            unfinished_rotation: false,
            last_heartbeat: None,
            last_rotation: None,
            rotations: [(Outcome::Confirmed, 2)].into_iter().collect(),
            home: String::new(),
        }
    }

    #[test]
    fn counters_start_at_zero_in_both_flavors() {
        let classic = exposition(&[agent()], Flavor::Prometheus);
        assert!(classic.contains("# TYPE sikkerkey_agent_rotations_total counter\n"));
        assert!(
            classic.contains(
                "sikkerkey_agent_rotations_total{secret=\"sk_1\",outcome=\"rejected\"} 0\n"
            )
        );
        assert!(classic.contains(
            "sikkerkey_agent_rotations_total{secret=\"sk_1\",outcome=\"confirmed\"} 2\n"
        ));
        assert!(classic.contains("# TYPE sikkerkey_agent_info gauge\n"));
        assert!(!classic.contains("# EOF"));
        assert!(
            classic.contains("endpoint=\"db\\\\u{1b}[2J\\\"x\\\":5432\""),
            "{classic}"
        );
        let om = exposition(&[agent()], Flavor::OpenMetrics);
        assert!(om.contains("# TYPE sikkerkey_agent_rotations counter\n"));
        assert!(om.contains("# TYPE sikkerkey_agent info\n"));
        assert!(om.ends_with("# EOF\n"));
    }
}
