//! What monitoring and log pipelines read, checked by the tools that read it: `status`
//! under the monitoring-plugin convention (exit codes, perfdata, `-o json`), `list -o
//! prometheus` through promtool and node_exporter's own textfile collector, every stderr
//! line of a failing run through a JSON parser, and hostile text in the agent's files
//! shown escaped. The agent's files are written here by hand, as a crashed agent, a
//! hostile user or the official CLI would leave them.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::assertions::{Exit, assert_contains, assert_lacks};
use crate::support::cli::{bare, run};
use crate::support::world::unreachable_secret;
use crate::support::{FakeControlPlane, Machine, SOON, TempDir, require_env, set_mode};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Text a state file, a database error or the control plane could carry: a terminal
/// title change, a screen clear, a bell and a forged line.
const HOSTILE: &str = "boom\u{1b}]0;pwned\u{7}\u{1b}[2J\nSIKKERKEY AGENT OK - forged";

/// A stopped agent's files for `secret` under `home`: a local config naming `host`, and
/// a state file with a recent heartbeat and rotation counters.
fn agent_files(home: &Path, secret: &str, host: &str, heartbeat_error: &str) {
    let agents = home.join("agents");
    std::fs::create_dir_all(&agents).unwrap();
    std::fs::write(
        agents.join(format!("{secret}.json")),
        json!({"secretId": secret, "providerType": "postgresql",
               "connection": {"host": host, "port": 5432, "database": "app",
                              "adminUser": "sk_admin", "adminPass": "x"}})
        .to_string(),
    )
    .unwrap();
    // It holds the admin password: private, as `configure` writes it.
    set_mode(&agents.join(format!("{secret}.json")), 0o600);
    let at = now() - 5;
    std::fs::write(
        agents.join(format!("{secret}.state.json")),
        json!({"pid": 0, "startedAt": at - 100, "providerType": "postgresql",
               "endpoint": format!("{host}:5432"), "heartbeatIntervalMs": 30000,
               "lastHeartbeat": {"at": at, "status": if heartbeat_error.is_empty() {"healthy"} else {"error"},
                                 "error": heartbeat_error, "delivered": true},
               "lastRotation": {"rotationId": "rot_1\u{1b}[31m", "outcome": "rejected", "at": at - 50,
                                "error": heartbeat_error},
               "rotations": {"confirmed": 3, "rejected": 1}})
        .to_string(),
    )
    .unwrap();
}

/// Control characters other than the newlines that end lines.
fn raw_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|c| (c.is_control() && *c != '\n') || ('\u{202a}'..='\u{202e}').contains(c))
        .collect()
}

#[test]
fn list_and_status_show_hostile_text_escaped() {
    let home = TempDir::new("hostile");
    agent_files(home.path(), "sk_evil", "db\u{1b}[31mred", HOSTILE);
    for args in [
        vec!["list"],
        vec!["status", "--secret", "sk_evil"],
        vec!["list", "-o", "prometheus"],
    ] {
        let out = run(bare(home.path(), &args));
        assert!(
            raw_controls(&out.stdout).is_empty(),
            "{args:?}:\n{:?}",
            out.stdout
        );
        assert!(
            raw_controls(&out.stderr).is_empty(),
            "{args:?}:\n{:?}",
            out.stderr
        );
        assert!(
            !out.stdout
                .lines()
                .any(|l| l.starts_with("SIKKERKEY AGENT OK")),
            "a forged line: {}",
            out.stdout
        );
        if args[0] != "list" || args.len() == 1 {
            assert_contains(
                &out.stdout,
                "boom\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\nSIKKERKEY",
            );
        }
    }
    // JSON keeps the text as it is: a JSON string cannot break out of itself.
    let out = run(bare(home.path(), &["list", "-o", "json"])).expect(Exit::Ok);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v[0]["lastHeartbeat"]["error"], HOSTILE);
}

#[test]
fn status_follows_the_monitoring_plugin_convention() {
    let home = TempDir::new("status");
    // A bad command line is UNKNOWN (3), never CRITICAL (2).
    for args in [
        vec!["status"],
        vec!["status", "--secret"],
        vec!["status", "--secret", "a", "--secret", "b"],
        vec!["status", "--secret", "a", "--bogus"],
        vec!["status", "--secret", "a", "-o", "yaml"],
    ] {
        let out = run(bare(home.path(), &args));
        assert_eq!(out.code, 3, "{args:?}: {}", out.stderr);
        assert_contains(&out.stderr, "`sikkerkey-agent status --help`");
    }
    let out = run(bare(home.path(), &["status", "--secret", "sk_none"]));
    assert_eq!(out.code, 3, "{}", out.stdout);
    assert!(
        out.stdout.starts_with("SIKKERKEY AGENT UNKNOWN - "),
        "{}",
        out.stdout
    );

    // A stopped agent: CRITICAL, with perfdata after the bar.
    agent_files(home.path(), "sk_stopped", "db.internal", "");
    let out = run(bare(home.path(), &["status", "--secret", "sk_stopped"]));
    assert_eq!(out.code, 2, "{}", out.stdout);
    let first = out.stdout.lines().next().unwrap();
    let (text, perf) = first.split_once(" | ").expect("perfdata after ' | '");
    assert!(
        text.starts_with("SIKKERKEY AGENT CRITICAL - sk_stopped: not running"),
        "{first}"
    );
    let perf: Vec<&str> = perf.split(' ').collect();
    let age = perf[0]
        .strip_prefix("last_heartbeat_age=")
        .and_then(|p| p.split_once("s;;"))
        .unwrap_or_else(|| panic!("{first}"));
    assert!((4..60).contains(&age.0.parse::<u64>().unwrap()), "{first}");
    assert_eq!(
        age.1, "90;0",
        "critical after three 30 s intervals: {first}"
    );
    assert_eq!(
        perf[1..],
        [
            "rotations_confirmed=3c;;;0",
            "rotations_rejected=1c;;;0",
            "rotations_reconciled=0c;;;0"
        ]
    );

    // The same facts for scripts.
    let out = run(bare(
        home.path(),
        &["status", "--secret", "sk_stopped", "-o", "json"],
    ));
    assert_eq!(out.code, 2);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["state"], "CRITICAL");
    assert_eq!(v["exitCode"], 2);
    assert_eq!(v["running"], false);
    assert_eq!(v["rotations"]["confirmed"], 3);
    assert_eq!(v["staleAfterSeconds"], 90);
    assert!(v["lastHeartbeatAgeSeconds"].as_u64().unwrap() < 60);
}

/// `list -o prometheus` as node_exporter's textfile collector reads it: promtool's lint
/// first, then the collector itself serving the file on /metrics.
#[test]
fn prometheus_text_passes_promtool_and_the_textfile_collector() {
    let Some(promtool) = require_env("SKA_PROMTOOL", "promtool (Debian package prometheus)") else {
        return;
    };
    let Some(exporter) = require_env(
        "SKA_NODE_EXPORTER",
        "node_exporter (Debian package prometheus-node-exporter)",
    ) else {
        return;
    };
    let home = TempDir::new("prom");
    agent_files(home.path(), "sk_one", "db1.internal", "");
    agent_files(home.path(), "sk_two", "db\"2\\x", HOSTILE);
    // A configured agent that never ran: its counters exist too, at 0.
    let agents = home.path().join("agents");
    std::fs::write(
        agents.join("sk_new.json"),
        r#"{"secretId":"sk_new","providerType":"redis","connection":{"host":"10.0.0.9","port":6379,"adminUser":"","adminPass":"x"}}"#,
    )
    .unwrap();
    set_mode(&agents.join("sk_new.json"), 0o600);
    let text = run(bare(home.path(), &["list", "-o", "prometheus"]))
        .expect(Exit::Ok)
        .stdout;
    assert_lacks(&text, "# EOF");

    let mut lint = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    lint.stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let lint = lint.wait_with_output().unwrap();
    assert!(
        lint.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );

    // The collector reads *.prom files from a directory; written atomically as README says.
    let dir = TempDir::new("textfile");
    std::fs::write(dir.path().join("sikkerkey.prom"), &text).unwrap();
    let port = crate::support::cli::closed_port();
    let mut collector = Command::new(&exporter)
        .args([
            "--collector.disable-defaults",
            "--collector.textfile",
            &format!("--collector.textfile.directory={}", dir.path().display()),
            &format!("--web.listen-address=127.0.0.1:{port}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut metrics = String::new();
    let end = Instant::now() + SOON;
    while Instant::now() < end {
        if let Ok(body) = http_get(port, "/metrics") {
            metrics = body;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = collector.kill();
    let collector_log = {
        let mut s = String::new();
        let _ = collector.stderr.take().unwrap().read_to_string(&mut s);
        let _ = collector.wait();
        s
    };
    assert!(
        !metrics.is_empty(),
        "node_exporter never answered: {collector_log}"
    );
    let has = |line: &str| metrics.lines().any(|l| l == line);
    for want in [
        "node_textfile_scrape_error 0",
        "# TYPE sikkerkey_agent_rotations_total counter",
        "sikkerkey_agent_rotations_total{outcome=\"rejected\",secret=\"sk_one\"} 1",
        "sikkerkey_agent_rotations_total{outcome=\"reconciled\",secret=\"sk_one\"} 0",
        "sikkerkey_agent_rotations_total{outcome=\"rejected\",secret=\"sk_new\"} 0",
        "sikkerkey_agent_up{endpoint=\"10.0.0.9:6379\",provider=\"redis\",secret=\"sk_new\"} 0",
        "sikkerkey_agent_unfinished_rotation{secret=\"sk_two\"} 0",
    ] {
        assert!(
            has(want),
            "missing {want:?} in\n{metrics}\nfrom\n{text}\n{collector_log}"
        );
    }
    let info = format!(
        "sikkerkey_agent_info{{endpoint=\"db1.internal:5432\",provider=\"postgresql\",secret=\"sk_one\",version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    assert!(has(&info), "missing {info:?} in\n{metrics}");
    assert!(
        metrics.contains("endpoint=\"db\\\"2\\\\x:5432\""),
        "label escaping lost:\n{metrics}"
    );
}

/// A plain HTTP/1.0 GET to 127.0.0.1:`port`; the body when the answer is 200.
fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(std::io::Error::other(head.to_owned()));
    }
    Ok(body.to_owned())
}

/// Every line on stderr is one JSON object in the JSON format: start-up lines, the fatal
/// error that ends the run, and the complaint about a command line or a setting.
#[test]
fn in_json_format_every_stderr_line_is_a_json_object() {
    let cp = FakeControlPlane::start();
    let machine = Machine::new(&cp);
    let secret = unreachable_secret(&cp, "127.0.0.1", crate::support::cli::closed_port());
    let parse_all = |what: &str, stderr: &str| -> Vec<Value> {
        assert!(!stderr.trim().is_empty(), "{what}: nothing on stderr");
        stderr
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap_or_else(|e| {
                    panic!("{what}: not one JSON object ({e}): {l:?}\n{stderr}")
                })
            })
            .collect()
    };
    // A start that fails at the database check: exit 6, the last line says why.
    let out = machine
        .command(&["start", "--secret", &secret, "--log-format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines = parse_all("failing start", &stderr);
    let last = lines.last().unwrap();
    assert_eq!(last["level"], "error", "{stderr}");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("database check failed"),
        "{last}"
    );
    assert!(lines.iter().any(|l| l["level"] == "info"), "{stderr}");

    // Through the variable, a usage error and a bad setting: one object each.
    for (args, var, code) in [
        (vec!["start", "--secert", "x"], None, 2),
        (vec!["status", "--secret"], None, 3),
        (vec!["list"], Some(("SIKKERKEY_LOG", "verbose")), 2),
    ] {
        let mut c = machine.command(&args);
        c.env("SIKKERKEY_LOG_FORMAT", "json");
        if let Some((k, v)) = var {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines = parse_all(&format!("{args:?}"), &stderr);
        assert_eq!(lines.len(), 1, "{stderr}");
        assert_eq!(lines[0]["level"], "error");
    }
    // The flag after a mistake still picks the format of the complaint.
    let out = machine
        .command(&["stop", "--bogus", "--log-format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    parse_all("usage error", &String::from_utf8_lossy(&out.stderr));
}

/// With SIKKERKEY_HOME set, the official CLI keeps local configs in
/// $HOME/.sikkerkey/agents. A config only there is used, with a warning; ours wins when
/// both exist.
#[test]
fn a_local_config_where_the_official_cli_keeps_it_is_found() {
    let tmp = TempDir::new("official-home");
    let home = tmp.path().join("user");
    let sk_home = tmp.path().join("agent-home");
    std::fs::create_dir_all(&sk_home).unwrap();
    agent_files(&home.join(".sikkerkey"), "sk_off", "official.internal", "");
    std::fs::remove_file(home.join(".sikkerkey/agents/sk_off.state.json")).unwrap();
    let cmd = |args: &[&str]| {
        let mut c = bare(&sk_home, args);
        c.env("HOME", &home);
        c
    };
    let out = run(cmd(&["list", "-o", "json"])).expect(Exit::Ok);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v[0]["secretId"], "sk_off", "{}", out.stdout);
    assert_eq!(v[0]["endpoint"], "official.internal:5432");
    assert_eq!(v[0]["configured"], true);
    let official = home.join(".sikkerkey/agents/sk_off.json");
    assert_contains(
        &out.stderr,
        &format!(
            "warning: using the local config {} written by the official CLI",
            official.display()
        ),
    );
    let out = run(cmd(&["test", "--secret", "sk_off"]));
    assert_contains(
        &out.stdout,
        &format!(
            "local config {}: PostgreSQL at official.internal:5432",
            official.display()
        ),
    );
    assert_contains(&out.stderr, "written by the official CLI");

    // Ours first: no warning, our host.
    agent_files(&sk_home, "sk_off", "ours.internal", "");
    let out = run(cmd(&["list", "-o", "json"])).expect(Exit::Ok);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v[0]["endpoint"], "ours.internal:5432");
    assert_lacks(&out.stderr, "official CLI");
}

/// The agent itself, started with only the official location's config: it says so and
/// uses it (the database there is closed, so it stops at the database check).
#[test]
fn start_uses_the_official_location_with_a_warning() {
    let cp = FakeControlPlane::start();
    let machine = Machine::new(&cp);
    let secret = unreachable_secret(&cp, "server.invalid", 1);
    let home = TempDir::new("user");
    let port = crate::support::cli::closed_port();
    let agents = home.path().join(".sikkerkey/agents");
    std::fs::create_dir_all(&agents).unwrap();
    let official = agents.join(format!("{secret}.json"));
    std::fs::write(
        &official,
        json!({"secretId": secret, "providerType": "postgresql",
               "connection": {"host": "127.0.0.1", "port": port, "database": "x",
                              "adminUser": "a", "adminPass": "b"}})
        .to_string(),
    )
    .unwrap();
    set_mode(&official, 0o600);
    let out = machine
        .command(&["start", "--secret", &secret])
        .env("HOME", home.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert_contains(&stderr, "written by the official CLI");
    assert_contains(
        &stderr,
        &format!("using connection details from {}", official.display()),
    );
    assert_contains(&stderr, &format!("127.0.0.1:{port}"));
    assert_lacks(&stderr, "server.invalid");
}
