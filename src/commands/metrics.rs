//! `list -o prometheus`: the agents' state as OpenMetrics text, to be written to a file for
//! node_exporter's textfile collector (e.g. from a systemd timer or cron). Nothing listens
//! on a socket on the database host: the agent itself exports nothing.

use std::fmt::Write;

use super::list::AgentEntry;

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
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

/// One metric family: its HELP and TYPE lines and one sample per agent that has a value.
fn family(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: impl IntoIterator<Item = (String, String)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let suffix = if kind == "counter" { "_total" } else { "" };
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{suffix}{labels} {value}");
    }
}

/// The OpenMetrics exposition for these agents, ending in `# EOF`.
pub fn openmetrics(entries: &[AgentEntry]) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "sikkerkey_agent_up",
        "gauge",
        "Whether the agent process for the secret runs on this machine.",
        entries.iter().map(|e| {
            let l = labels(e, &[("provider", &e.provider), ("endpoint", &e.endpoint)]);
            (l, u8::from(e.running).to_string())
        }),
    );
    family(
        &mut out,
        "sikkerkey_agent_healthy",
        "gauge",
        "Whether the agent runs and its last heartbeat reported healthy.",
        entries.iter().map(|e| {
            let healthy = e.running
                && e.last_heartbeat
                    .as_ref()
                    .is_some_and(|h| h.status == "healthy");
            (labels(e, &[]), u8::from(healthy).to_string())
        }),
    );
    family(
        &mut out,
        "sikkerkey_agent_last_heartbeat_timestamp_seconds",
        "gauge",
        "When the agent last sent a heartbeat (Unix time).",
        entries.iter().filter_map(|e| {
            let h = e.last_heartbeat.as_ref()?;
            Some((labels(e, &[]), h.at.to_string()))
        }),
    );
    family(
        &mut out,
        "sikkerkey_agent_last_rotation_timestamp_seconds",
        "gauge",
        "When the last rotation finished (Unix time), labelled with its outcome.",
        entries.iter().filter_map(|e| {
            let r = e.last_rotation.as_ref()?;
            Some((labels(e, &[("outcome", &r.outcome)]), r.at.to_string()))
        }),
    );
    family(
        &mut out,
        "sikkerkey_agent_rotations",
        "counter",
        "Rotations finished, by outcome.",
        entries.iter().flat_map(|e| {
            e.rotations
                .iter()
                .map(|(outcome, n)| (labels(e, &[("outcome", outcome)]), n.to_string()))
                .collect::<Vec<_>>()
        }),
    );
    family(
        &mut out,
        "sikkerkey_agent_unfinished_rotation",
        "gauge",
        "Whether a rotation journal exists (a rotation in flight or left unfinished).",
        entries
            .iter()
            .map(|e| (labels(e, &[]), u8::from(e.unfinished_rotation).to_string())),
    );
    out.push_str("# EOF\n");
    out
}
