//! What operators see and script against: journald priority prefixes and JSON log lines,
//! `status` with Nagios exit codes, `list -o prometheus` parsed by a real parser, and the
//! day-2 commands (idempotent stop/remove/uninstall, help, typos, the password prompt).

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::SOON;
use crate::support::cli::configure_args;
use crate::support::world::unreachable_secret;
use crate::support::{Endpoint, FakeControlPlane, Fault, Machine, TempDir, wait_until};

/// The agent with stderr going to a file, as systemd connects it to the journal.
struct FileLogged {
    child: Child,
    log: std::path::PathBuf,
    _dir: TempDir,
}

impl FileLogged {
    fn spawn(mut c: Command, journal: bool) -> FileLogged {
        let dir = TempDir::new("log");
        let log = dir.path().join("stderr");
        let file = File::create(&log).unwrap();
        if journal {
            let meta = file.metadata().unwrap();
            c.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
        }
        let child = c
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap();
        FileLogged {
            child,
            log,
            _dir: dir,
        }
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_for(&self, what: &str, cond: impl Fn(&str) -> bool) {
        wait_until(SOON, what, || cond(&self.text()));
    }

    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let end = std::time::Instant::now() + SOON;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < end,
                "agent did not exit\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let end = std::time::Instant::now() + SOON;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{status:?}\n{}", self.text());
                return self.text();
            }
            assert!(
                std::time::Instant::now() < end,
                "agent did not stop\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

/// A secret whose database is never reached: enough for the control-plane side.
fn idle_secret(cp: &FakeControlPlane) -> String {
    unreachable_secret(cp, "127.0.0.1", 1)
}

#[test]
fn under_journald_every_line_has_its_priority_and_no_timestamp() {
    let cp = FakeControlPlane::start();
    let machine = Machine::new(&cp);
    let secret = idle_secret(&cp);
    // The control plane fails twice (warnings), then the database check fails: errors,
    // and the exit code 6 with the final `error:` line.
    cp.inject(Endpoint::SyncConfig, Fault::Status(503), 2);
    let mut agent = FileLogged::spawn(machine.command(&["start", "--secret", &secret]), true);
    let status = agent.wait_exit();
    assert_eq!(status.code(), Some(6), "{}", agent.text());
    let text = agent.text();
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines {
        let ok = ["<3>", "<4>", "<6>", "<7>"]
            .iter()
            .any(|p| line.starts_with(p));
        assert!(ok, "a line without a priority prefix: {line:?}\n{text}");
        assert!(
            !line[3..].starts_with("20"),
            "our own timestamp under journald: {line:?}"
        );
    }
    for p in ["<3>", "<4>", "<6>"] {
        assert!(
            lines.iter().any(|l| l.starts_with(p)),
            "no {p} line:\n{text}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<4>") && l.contains("503")),
        "the control-plane failure is a warning:\n{text}"
    );
}

#[test]
fn a_journal_stream_that_is_not_our_stderr_keeps_the_text_format() {
    let cp = FakeControlPlane::start();
    let machine = Machine::new(&cp);
    let secret = idle_secret(&cp);
    cp.inject(Endpoint::SyncConfig, Fault::Status(503), 1000);
    let mut c = machine.command(&["start", "--secret", &secret]);
    c.env("JOURNAL_STREAM", "1:1");
    let agent = FileLogged::spawn(c, false);
    agent.wait_for("a warning", |t| t.contains("WARN"));
    let text = agent.stop();
    assert!(text.lines().all(|l| l.starts_with("20")), "{text}");
}

#[cfg(feature = "postgres")]
#[test]
fn json_lines_name_the_secret_and_the_rotation() {
    let Some(pg) = crate::support::db::postgres::Pg::open() else {
        return;
    };
    let w = crate::support::world::World::plain(&pg);
    for via_flag in [false, true] {
        let mut c = if via_flag {
            w.machine
                .command(&["start", "--log-format", "json", "--secret", &w.secret])
        } else {
            let mut c = w.machine.command(&["start", "--secret", &w.secret]);
            c.env("SIKKERKEY_LOG_FORMAT", "json");
            c
        };
        c.env("SIKKERKEY_LOG", "debug");
        let agent = FileLogged::spawn(c, false);
        agent.wait_for("running", |t| t.contains("agent running"));
        // The start-up line states what is in force, in seconds.
        assert!(
            agent.text().contains(
                "(polling every 0.15 s, heartbeat every 0.25 s, drift check every 60 s, repairing)"
            ),
            "{}",
            agent.text()
        );
        let rotation = format!("rot_json_{via_flag}");
        let new_pw = format!("new-{}", crate::support::random_text(16));
        w.cp.set_pending(
            &w.secret,
            &rotation,
            &crate::support::world::secret_value(&w.user, &new_pw),
        );
        wait_until(SOON, "confirmed", || {
            w.cp.confirms(&w.secret).contains(&rotation)
        });
        agent.wait_for("journal cleared", |_| !w.journal_exists());
        let text = agent.stop();
        assert!(
            text.contains("SIGTERM: stopping cleanly")
                && text.contains("stopping (asked to stop by a signal)"),
            "the stop names the signal:\n{text}"
        );
        let mut with_rotation = 0;
        for line in text.lines() {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\n{text}"));
            assert!(
                v["time"].as_str().is_some_and(|t| t.ends_with('Z')),
                "{line}"
            );
            assert!(
                ["error", "warn", "info", "debug", "trace"].contains(&v["level"].as_str().unwrap()),
                "{line}"
            );
            assert!(v["message"].is_string(), "{line}");
            if v["message"].as_str().unwrap().contains("pending rotation") {
                assert_eq!(v["secret"], w.secret.as_str(), "{line}");
            }
            if v["rotation"] == rotation.as_str() {
                with_rotation += 1;
            }
            assert!(!line.contains(&new_pw), "password in the log: {line}");
        }
        assert!(
            with_rotation >= 2,
            "lines of the rotation carry its id:\n{text}"
        );
    }
}

/// A control plane that sends a value of the wrong type (a password as a JSON number) gets
/// an error that says where its answer is wrong, never what the answer holds: serde's own
/// message would quote the number, and with it the password.
#[test]
fn a_malformed_answer_is_reported_without_its_values() {
    let cp = FakeControlPlane::start();
    let machine = Machine::new(&cp);
    let secret = idle_secret(&cp);
    for (body, hidden) in [
        (
            r#"{"providerType":"postgresql","connection":{"adminPass":80512349871}}"#,
            "80512349871",
        ),
        (
            r#"{"pendingRotationId":"rot_1","pendingValue":61803398874}"#,
            "61803398874",
        ),
        (r#"{"providerType":"postgresql","#, "postgresql"),
    ] {
        cp.inject(Endpoint::SyncConfig, Fault::Body(body), 1);
        let mut agent = FileLogged::spawn(machine.command(&["start", "--secret", &secret]), false);
        let status = agent.wait_exit();
        let text = agent.text();
        assert!(!status.success(), "{text}");
        assert!(
            !text.contains(hidden),
            "the answer's content reached the log:\n{text}"
        );
        assert!(
            text.contains("unexpected answer from the server: the JSON has")
                && text.contains("at line 1, column"),
            "the error says where the answer is wrong:\n{text}"
        );
    }
}

#[test]
fn an_unknown_log_level_or_format_is_an_error() {
    let cp = FakeControlPlane::start();
    let machine = Machine::new(&cp);
    for (var, value, expected) in [
        (
            "SIKKERKEY_LOG",
            "verbose",
            "SIKKERKEY_LOG=\"verbose\" is not a log level",
        ),
        (
            "SIKKERKEY_LOG_FORMAT",
            "xml",
            "SIKKERKEY_LOG_FORMAT \"xml\" is not a log format",
        ),
    ] {
        let out = machine.command(&["list"]).env(var, value).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{stderr}");
    }
}

// ---- status and metrics ----

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run_cmd(mut c: Command) -> Out {
    let out = c.stdin(Stdio::null()).output().unwrap();
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[cfg(feature = "postgres")]
fn status(machine: &Machine, secret: &str) -> Out {
    run_cmd(machine.command(&["status", "--secret", secret]))
}

/// Parses OpenMetrics text (`list -o openmetrics`) with prometheus_client's strict parser; prints one line per
/// sample: `name{k=v,...} value`, labels sorted.
#[cfg(feature = "postgres")]
fn parse_openmetrics(python: &str, text: &str) -> Vec<String> {
    let script = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        print(f"{family.type} {s.name}{{{labels}}} {float(s.value)}")
"#;
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client refused the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[cfg(feature = "postgres")]
#[test]
fn status_exit_codes_follow_nagios_and_prometheus_text_parses() {
    let Some(pg) = crate::support::db::postgres::Pg::open() else {
        return;
    };
    let Some(python) = crate::support::require_env("SKA_PROM_PYTHON", "prometheus_client") else {
        return;
    };
    let w = crate::support::world::World::plain(&pg);
    // Unknown: nothing of this secret on the machine.
    let out = status(&w.machine, &w.secret);
    assert_eq!(out.code, Some(3), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.starts_with("SIKKERKEY AGENT UNKNOWN - "),
        "{}",
        out.stdout
    );

    // OK: running and healthy, after a confirmed rotation.
    let mut agent = w.start();
    let new_pw = format!("new-{}", crate::support::random_text(16));
    w.cp.set_pending(
        &w.secret,
        "rot_status",
        &crate::support::world::secret_value(&w.user, &new_pw),
    );
    w.wait_confirmed("rot_status", &agent);
    w.wait_journal_cleared(&agent);
    agent.wait_until(SOON, "status OK", || {
        status(&w.machine, &w.secret).code == Some(0)
    });
    let out = status(&w.machine, &w.secret);
    assert!(
        out.stdout.starts_with(&format!(
            "SIKKERKEY AGENT OK - {}: running and healthy; last rotation rot_status confirmed",
            w.secret
        )),
        "{}",
        out.stdout
    );
    for field in [
        "running:",
        "health:",
        "last rotation:",
        "journal:",
        "rotations:",
    ] {
        assert!(out.stdout.contains(field), "{}", out.stdout);
    }
    assert!(
        out.stdout.contains(&format!("PID {}", agent.pid())),
        "{}",
        out.stdout
    );

    let text = run_cmd(w.machine.command(&["list", "-o", "openmetrics"])).stdout;
    let samples = parse_openmetrics(&python, &text);
    let has = |line: &str| samples.iter().any(|s| s == line);
    let s = &w.secret;
    let (host, port) = crate::support::world::Database::endpoint(&pg);
    for want in [
        format!(
            "gauge sikkerkey_agent_up{{endpoint={host}:{port},provider=postgresql,secret={s}}} 1.0"
        ),
        format!("gauge sikkerkey_agent_healthy{{secret={s}}} 1.0"),
        format!("counter sikkerkey_agent_rotations_total{{outcome=confirmed,secret={s}}} 1.0"),
        format!("gauge sikkerkey_agent_unfinished_rotation{{secret={s}}} 0.0"),
    ] {
        assert!(has(&want), "missing {want:?} in {samples:#?}\n{text}");
    }
    for family in [
        "sikkerkey_agent_last_heartbeat_timestamp_seconds",
        "sikkerkey_agent_last_rotation_timestamp_seconds",
    ] {
        assert!(
            samples
                .iter()
                .any(|l| l.contains(family) && !l.ends_with(" 0.0")),
            "{family} missing: {samples:#?}"
        );
    }

    // Critical: the control plane fails, so the heartbeat reports an error.
    w.cp.inject(Endpoint::SyncConfig, Fault::Status(500), 100_000);
    agent.wait_until(SOON, "status CRITICAL while erroring", || {
        let out = status(&w.machine, &w.secret);
        out.code == Some(2) && out.stdout.contains("unhealthy")
    });
    let out = status(&w.machine, &w.secret);
    assert!(
        out.stdout.contains("CRITICAL") && out.stdout.contains("unhealthy"),
        "{}",
        out.stdout
    );
    let text = run_cmd(w.machine.command(&["list", "-o", "openmetrics"])).stdout;
    assert!(
        parse_openmetrics(&python, &text)
            .contains(&format!("gauge sikkerkey_agent_healthy{{secret={s}}} 0.0")),
        "{text}"
    );
    w.cp.clear_faults();

    // Critical: stopped.
    let status_code = agent.terminate();
    assert!(status_code.success());
    let out = status(&w.machine, &w.secret);
    assert_eq!(out.code, Some(2), "{}", out.stdout);
    assert!(
        out.stdout.contains("CRITICAL") && out.stdout.contains("not running"),
        "{}",
        out.stdout
    );
    let text = run_cmd(w.machine.command(&["list", "-o", "openmetrics"])).stdout;
    assert!(
        parse_openmetrics(&python, &text)
            .iter()
            .any(|l| l.starts_with("gauge sikkerkey_agent_up{")
                && l.contains(s)
                && l.ends_with(" 0.0")),
        "{text}"
    );
}

#[test]
fn list_as_root_finds_agents_other_users_installed_as_services() {
    let cp = FakeControlPlane::start();
    let me = Machine::new(&cp);
    let other = TempDir::new("otherhome");
    let units = TempDir::new("units");
    // The other user's agent: a local config in their home and their unit.
    let agents = other.path().join("agents");
    std::fs::create_dir_all(&agents).unwrap();
    std::fs::write(
        agents.join("sk_theirs.json"),
        r#"{"secretId":"sk_theirs","providerType":"redis","connection":{"host":"10.0.0.9","port":6379,"adminUser":"","adminPass":"x"}}"#,
    )
    .unwrap();
    // It holds the admin password: private, as `configure` writes it.
    crate::support::set_mode(&agents.join("sk_theirs.json"), 0o600);
    let unit = run_cmd({
        let mut c = me.command(&["install", "--secret", "sk_theirs"]);
        c.env("SIKKERKEY_HOME", other.path())
            .env("SIKKERKEY_SERVICE_PLATFORM", "systemd")
            .env("USER", "root");
        c
    });
    assert_eq!(unit.code, Some(0), "{}", unit.stderr);
    std::fs::write(
        units.path().join("sikkerkey-agent-sk_theirs.service"),
        &unit.stdout,
    )
    .unwrap();
    let mut c = me.command(&["list", "-o", "json"]);
    c.env("SIKKERKEY_SERVICE_DIR", units.path());
    let out = run_cmd(c);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    let theirs = v
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["secretId"] == "sk_theirs")
        .unwrap_or_else(|| panic!("the other user's agent is not listed: {}", out.stdout));
    assert_eq!(theirs["home"], other.path().to_str().unwrap());
    assert_eq!(theirs["endpoint"], "10.0.0.9:6379");
}

// ---- day-2 commands ----

#[test]
fn help_typos_and_version_point_at_the_fix() {
    let cp = FakeControlPlane::start();
    let m = Machine::new(&cp);
    for cmd in [
        "start",
        "stop",
        "status",
        "list",
        "remove",
        "uninstall",
        "test",
    ] {
        let out = run_cmd(m.command(&[cmd, "--help"]));
        assert_eq!(out.code, Some(0));
        assert!(
            out.stdout.contains("Environment:\n  SIKKERKEY_HOME")
                && out.stdout.contains("Exit codes:\n  0"),
            "{cmd} --help:\n{}",
            out.stdout
        );
    }
    let out = run_cmd(m.command(&["stop", "--help"]));
    assert!(out.stdout.contains("was not running"), "{}", out.stdout);
    let out = run_cmd(m.command(&["status"]));
    assert_eq!(
        out.code,
        Some(3),
        "a bad command line is UNKNOWN to a monitoring system"
    );
    assert!(
        out.stderr
            .contains("missing required option --secret; run `sikkerkey-agent status --help`"),
        "{}",
        out.stderr
    );
    let mut c = m.command(&configure_args("sk_x", "postgres", "db", "a", &[]));
    c.env("SIKKERKEY_ADMIN_PASS", "pw");
    let out = run_cmd(c);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("did you mean \"postgresql\"?"),
        "{}",
        out.stderr
    );
    let out = run_cmd(m.command(&["strat", "--secret", "x"]));
    assert!(
        out.stderr.contains("did you mean \"start\"?"),
        "{}",
        out.stderr
    );
    let out = run_cmd(m.command(&["--version"]));
    assert!(
        out.stdout.contains("providers: ") && out.stdout.contains("postgresql"),
        "{}",
        out.stdout
    );
}

#[test]
fn test_without_a_local_config_never_takes_the_agent_lock() {
    let cp = FakeControlPlane::start();
    let machine = Machine::new(&cp);
    let secret = idle_secret(&cp);
    let out = run_cmd(machine.command(&["test", "--secret", &secret]));
    assert_eq!(out.code, Some(7), "{}", out.stdout);
    assert!(out.stdout.contains("--use-server-config"), "{}", out.stdout);
    assert_eq!(
        cp.calls(Endpoint::SyncConfig),
        0,
        "test fetched the sync config"
    );
    // Asked explicitly, it fetches it and warns that this registers the machine.
    let out = run_cmd(machine.command(&["test", "--secret", &secret, "--use-server-config"]));
    assert_eq!(cp.calls(Endpoint::SyncConfig), 1);
    assert!(
        out.stderr.contains("registers this machine"),
        "{}",
        out.stderr
    );
    // How the HTTP client was set up is not a check: it stays out of the report.
    assert!(!out.stderr.contains("control plane"), "{}", out.stderr);
}

/// Ctrl+C at the password prompt, on a real terminal (`script` gives `sh` a pty): the
/// agent dies of SIGINT and `stty` shows echo on again.
#[test]
fn ctrl_c_at_the_password_prompt_restores_echo() {
    let Some(script) = crate::support::require_env("SKA_SCRIPT", "script (util-linux)") else {
        return;
    };
    let home = TempDir::new("tty");
    let bin = env!("CARGO_BIN_EXE_sikkerkey-agent");
    let shell = format!(
        "trap 'echo got-sigint' INT; stty echo; \
         SIKKERKEY_HOME='{}' '{bin}' configure --secret sk_tty --provider mysql --host db --admin-user root; \
         echo \"rc=$?\"; stty -a | tr ' ' '\\n' | grep -x -e echo -e -echo | sed 's/^/stty:/'",
        home.path().display()
    );
    let mut child = Command::new(&script)
        .args(["-qfec", &shell, "/dev/null"])
        .env_remove("SIKKERKEY_ADMIN_PASS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = crate::support::collect_output(child.stdout.take().unwrap(), seen.clone());
    wait_until(SOON, "the password prompt", || {
        seen.lock().unwrap().contains("admin password for \"root\"")
    });
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"\x03").unwrap();
        stdin.flush().unwrap();
        // Keep stdin open until the shell is done, so `script` does not hang up early.
        wait_until(SOON, "stty output", || {
            seen.lock().unwrap().contains("stty:")
        });
    }
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let text = seen.lock().unwrap().clone();
    assert!(
        text.contains("rc=130"),
        "configure did not die of SIGINT:\n{text}"
    );
    assert!(
        text.contains("stty:echo"),
        "echo is off after Ctrl+C:\n{text}"
    );
    assert!(!text.contains("stty:-echo"), "{text}");
    assert!(status.success() || status.code().is_some(), "{status:?}");
    assert!(!home.path().join("agents/sk_tty.json").exists());
}

#[test]
fn stop_remove_and_uninstall_with_nothing_to_do_exit_0() {
    let cp = FakeControlPlane::start();
    let m = Machine::new(&cp);
    let units = TempDir::new("units");
    for args in [
        vec!["stop", "--secret", "sk_none"],
        vec!["remove", "--secret", "sk_none"],
        vec!["uninstall", "--secret", "sk_none"],
    ] {
        let mut c = m.command(&args);
        c.env("SIKKERKEY_SERVICE_PLATFORM", "systemd")
            .env("SIKKERKEY_SERVICE_DIR", units.path())
            .env("USER", "root");
        let out = run_cmd(c);
        assert_eq!(out.code, Some(0), "{args:?}: {}{}", out.stdout, out.stderr);
        assert!(
            out.stdout.contains("nothing to"),
            "{args:?}: {}",
            out.stdout
        );
    }
}
