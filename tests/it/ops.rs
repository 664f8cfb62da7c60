//! What operators see and script against: journald priority prefixes and JSON log lines,
//! `status` with Nagios exit codes, `list -o prometheus` parsed by a real parser, and the
//! day-2 commands (idempotent stop/remove/uninstall, help, typos, the password prompt).

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::scenarios::{SOON, secret_value};
use crate::support::{
    Endpoint, FakeControlPlane, Fault, Machine, SecretState, TempDir, random_text, unique_name,
    wait_until,
};

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
    let secret = unique_name("sk");
    cp.add_secret(
        &secret,
        SecretState::new(
            "postgresql",
            serde_json::json!({"host": "127.0.0.1", "port": 1, "database": "x",
                               "adminUser": "a", "adminPass": "b", "projectReference": ""}),
            "app",
            &secret_value("app", "pw"),
        ),
    );
    secret
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
    let Some(pg) = crate::postgres::Pg::from_env() else {
        return;
    };
    let w = crate::scenarios::World::plain(&pg);
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
        let rotation = format!("rot_json_{via_flag}");
        let new_pw = format!("new-{}", random_text(16));
        w.cp.set_pending(&w.secret, &rotation, &secret_value(&w.user, &new_pw));
        wait_until(SOON, "confirmed", || {
            w.cp.confirms(&w.secret).contains(&rotation)
        });
        agent.wait_for("journal cleared", |_| !w.journal_exists());
        let text = agent.stop();
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
