//! The agent as a systemd service, without a running systemd: a real `NOTIFY_SOCKET` the
//! test listens on (READY, STATUS, WATCHDOG, RELOADING, STOPPING, in the order systemd
//! needs them), SIGHUP reloads while idle and during a rotation, and the generated unit
//! rated by `systemd-analyze security --offline=yes`.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::json;

use crate::support::SOON;
use crate::support::assertions::Exit;
use crate::support::cli;
use crate::support::db::postgres::Pg;
use crate::support::proxy::TcpProxy;
use crate::support::world::{Database, World, assert_password, secret_value};
use crate::support::{AgentProcess, Endpoint, Fault, TempDir, random_text, require_env};

/// A socket in the role of systemd's notify socket: collects every datagram sent to it.
struct NotifySocket {
    _dir: TempDir,
    path: std::path::PathBuf,
    messages: Arc<Mutex<Vec<String>>>,
}

impl NotifySocket {
    fn bind() -> NotifySocket {
        let dir = TempDir::new("notify");
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let seen = messages.clone();
        thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        });
        NotifySocket {
            _dir: dir,
            path,
            messages,
        }
    }

    fn messages(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }

    /// Index of the first message at or after `from` that satisfies `pred`.
    fn find(&self, from: usize, pred: impl Fn(&str) -> bool) -> Option<usize> {
        self.messages()
            .iter()
            .enumerate()
            .skip(from)
            .find(|(_, m)| pred(m))
            .map(|(i, _)| i)
    }

    fn wait_for(
        &self,
        agent: &AgentProcess,
        from: usize,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> usize {
        agent.wait_until(SOON, &format!("notify message: {what}"), || {
            self.find(from, &pred).is_some()
        });
        self.find(from, &pred).unwrap()
    }
}

fn spawn_notified(w: &World, socket: &NotifySocket, watchdog_usec: u64) -> AgentProcess {
    let mut c = w.machine.command(&["start", "--secret", &w.secret]);
    c.env("NOTIFY_SOCKET", &socket.path)
        .env("WATCHDOG_USEC", watchdog_usec.to_string());
    AgentProcess::spawn(c)
}

fn write_local_config(w: &World, pg: &Pg, host: &str, port: u16) {
    let config = json!({
        "secretId": w.secret,
        "providerType": "postgresql",
        "connection": pg.connection(host, port),
    });
    std::fs::create_dir_all(w.machine.agents_dir()).unwrap();
    let path = w.machine.agents_dir().join(format!("{}.json", w.secret));
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    crate::support::set_mode(&path, 0o600);
}

#[test]
fn notify_socket_sees_ready_status_watchdog_reload_and_stopping() {
    let Some(pg) = Pg::open() else { return };
    let w = World::plain(&pg);
    let socket = NotifySocket::bind();
    // WatchdogSec=0.4 s: the agent must ping at least every 0.2 s.
    let mut agent = spawn_notified(&w, &socket, 400_000);

    let ready = socket.wait_for(&agent, 0, "READY=1", |m| m.contains("READY=1"));
    let msgs = socket.messages();
    assert!(
        msgs[ready].contains("STATUS=healthy; no rotation yet"),
        "READY carries the status: {msgs:?}"
    );
    assert!(
        !w.cp.heartbeats(&w.secret).is_empty(),
        "READY=1 came before the first heartbeat"
    );
    assert!(
        msgs[..ready]
            .iter()
            .any(|m| m.contains("STATUS=checking the PostgreSQL connection")),
        "start-up steps are shown before READY: {msgs:?}"
    );
    // Watchdog pings keep coming, several per WatchdogSec.
    let count = |s: &NotifySocket| s.messages().iter().filter(|m| *m == "WATCHDOG=1").count();
    let before = count(&socket);
    agent.wait_until(SOON, "5 more WATCHDOG=1", || count(&socket) >= before + 5);

    let new_pw = format!("new-{}", random_text(16));
    w.cp.set_pending(
        &w.secret,
        "rot_3f2a9b8c7d6e",
        &secret_value(&w.user, &new_pw),
    );
    w.wait_confirmed("rot_3f2a9b8c7d6e", &agent);
    socket.wait_for(&agent, 0, "STATUS with the confirmed rotation", |m| {
        m.starts_with("STATUS=healthy; last rotation rot_3f2a9b8c confirmed")
    });

    let mark = socket.messages().len();
    agent.signal("HUP");
    let reloading = socket.wait_for(&agent, mark, "RELOADING=1", |m| m.contains("RELOADING=1"));
    assert!(socket.messages()[reloading].contains("MONOTONIC_USEC="));
    socket.wait_for(&agent, reloading, "READY=1 after the reload", |m| {
        m.contains("READY=1")
    });
    assert!(agent.try_status().is_none(), "SIGHUP stopped the agent");
    agent.wait_for_output("nothing changed", SOON);

    let mark = socket.messages().len();
    let status = agent.terminate();
    assert!(status.success(), "{status:?}\n{}", agent.output());
    let stopping = socket.find(mark, |m| m.contains("STOPPING=1"));
    assert!(stopping.is_some(), "{:?}", socket.messages());
    assert_password(&pg, &w.user, &new_pw, &w.old_pw);
}

#[test]
fn an_unreachable_control_plane_does_not_hold_up_ready() {
    let Some(pg) = Pg::open() else { return };
    let w = World::plain(&pg);
    w.cp.inject(Endpoint::SyncConfig, Fault::Status(503), 3);
    let socket = NotifySocket::bind();
    let mut agent = spawn_notified(&w, &socket, 60_000_000);
    let first = socket.wait_for(&agent, 0, "READY=1 while retrying", |m| {
        m.contains("READY=1")
    });
    assert!(
        socket.messages()[first].contains("STATUS=waiting for the control plane"),
        "{:?}",
        socket.messages()
    );
    socket.wait_for(&agent, first + 1, "healthy once it answers", |m| {
        m.contains("READY=1\nSTATUS=healthy")
    });
    w.finish_quietly(&mut agent);
}

/// SIGHUP while a rotation waits for its confirmation: the rotation finishes with the
/// details it started with, and the next one uses the reloaded local config.
#[test]
fn sighup_during_a_rotation_keeps_it_and_the_next_job_uses_the_new_config() {
    let Some(pg) = Pg::open() else { return };
    let w = World::plain(&pg);
    let (host, port) = pg.endpoint();
    let proxy = TcpProxy::start(&format!("{host}:{port}"));
    write_local_config(&w, &pg, "127.0.0.1", proxy.port());
    let mut agent = w.machine.spawn_agent(&w.secret);
    w.wait_healthy(&mut agent);

    // The confirmation is held for 3 s: the rotation is in flight during the reload.
    w.cp.inject(Endpoint::Confirm, Fault::Delay(Duration::from_secs(3)), 1);
    let pw1 = format!("one-{}", random_text(16));
    w.cp.set_pending(&w.secret, "rot_during_hup", &secret_value(&w.user, &pw1));
    let journal = w.machine.journal(&w.secret);
    agent.wait_until(SOON, "the rotation waiting for its confirmation", || {
        std::fs::read(&journal)
            .ok()
            .and_then(|j| serde_json::from_slice::<serde_json::Value>(&j).ok())
            .is_some_and(|j| j["phase"] == "confirming")
    });
    write_local_config(&w, &pg, &host, port);
    proxy.cut();
    agent.signal("HUP");
    agent.wait_for_output(&format!("port \"{}\" -> \"{port}\"", proxy.port()), SOON);
    w.wait_confirmed("rot_during_hup", &agent);
    w.wait_journal_cleared(&agent);
    assert_password(&pg, &w.user, &pw1, &w.old_pw);

    // The proxy refuses connections now: only the reloaded config reaches the database.
    let pw2 = format!("two-{}", random_text(16));
    w.cp.set_pending(&w.secret, "rot_after_hup", &secret_value(&w.user, &pw2));
    w.wait_confirmed("rot_after_hup", &agent);
    assert_password(&pg, &w.user, &pw2, &pw1);
    assert!(
        w.cp.rejects(&w.secret).is_empty(),
        "{:?}",
        w.cp.rejects(&w.secret)
    );
    w.finish(agent, &[&w.old_pw, &pw1, &pw2]);
}

#[test]
fn a_broken_local_config_on_sighup_keeps_the_previous_one() {
    let Some(pg) = Pg::open() else { return };
    let w = World::plain(&pg);
    let (host, port) = pg.endpoint();
    write_local_config(&w, &pg, &host, port);
    let mut agent = w.machine.spawn_agent(&w.secret);
    w.wait_healthy(&mut agent);
    let path = w.machine.agents_dir().join(format!("{}.json", w.secret));
    std::fs::write(&path, b"{ not json").unwrap();
    agent.signal("HUP");
    agent.wait_for_output("reload failed, keeping the previous settings", SOON);
    let new_pw = format!("new-{}", random_text(16));
    w.cp.set_pending(&w.secret, "rot_kept", &secret_value(&w.user, &new_pw));
    w.wait_confirmed("rot_kept", &agent);
    w.finish(agent, &[&w.old_pw, &new_pw]);
}

impl World<'_> {
    /// SIGTERM and exit 0, without the leak checks of `finish`.
    fn finish_quietly(&self, agent: &mut AgentProcess) {
        let status = agent.terminate();
        assert!(status.success(), "{status:?}\n{}", agent.output());
    }
}

// ---- the unit file ----

fn generated_unit(dir: &Path, secret: &str) -> std::path::PathBuf {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut install = cli::bare(&home, &["install", "--secret", secret]);
    install
        .env("SIKKERKEY_SERVICE_PLATFORM", "systemd")
        .env("USER", "root");
    let out = cli::run(install).expect(Exit::Ok);
    let path = dir.join(format!("sikkerkey-agent-{secret}.service"));
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

#[test]
fn the_generated_unit_rates_at_most_2_0_in_systemd_analyze_security() {
    let Some(analyze) = require_env("SKA_SYSTEMD_ANALYZE", "systemd-analyze") else {
        return;
    };
    let dir = TempDir::new("unit");
    let unit = generated_unit(dir.path(), "sk_rated");
    let out = Command::new(&analyze)
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&unit)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let score: f64 = text
        .lines()
        .find_map(|l| {
            l.split_once("Overall exposure level for ")?
                .1
                .split_once(": ")?
                .1
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no overall exposure level in:\n{text}"));
    assert!(score <= 2.0, "exposure {score} > 2.0:\n{text}");
    // The unit parses without warnings, too.
    let verify = Command::new(&analyze)
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
        .unwrap();
    let warnings = String::from_utf8_lossy(&verify.stderr);
    assert!(
        !warnings.contains("Unknown key") && !warnings.contains("Failed to parse"),
        "{warnings}"
    );
}

// ---- what the hardening allows, checked against what a real rotation does ----

/// The system calls in a `systemd-analyze syscall-filter` group, nested groups expanded.
fn syscall_group(analyze: &str, group: &str, out: &mut std::collections::BTreeSet<String>) {
    let listing = Command::new(analyze)
        .args(["syscall-filter", "--no-pager", group])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&listing.stdout).into_owned();
    for line in text.lines().skip(1) {
        let word = line.trim();
        if word.is_empty() || word.starts_with('#') {
            continue;
        }
        if word.starts_with('@') {
            syscall_group(analyze, word, out);
        } else {
            out.insert(word.to_owned());
        }
    }
}

/// The unit's `SystemCallFilter=`, `RestrictAddressFamilies=`, `MemoryDenyWriteExecute=`
/// and `ProtectSystem=strict` + `ReadWritePaths=`, checked against a real rotation run
/// under strace: every system call it makes is in the allow list, every socket is
/// AF_INET/AF_INET6/AF_UNIX, no mapping is writable and executable, and nothing is
/// written outside SIKKERKEY_HOME.
#[test]
fn a_real_rotation_stays_inside_the_units_sandbox() {
    let Some(pg) = Pg::open() else { return };
    let Some(analyze) = require_env("SKA_SYSTEMD_ANALYZE", "systemd-analyze") else {
        return;
    };
    let Some(strace) = require_env("SKA_STRACE", "strace") else {
        return;
    };
    let unit_dir = TempDir::new("unit");
    let unit = std::fs::read_to_string(generated_unit(unit_dir.path(), "sk_sandbox")).unwrap();
    let mut allowed = std::collections::BTreeSet::new();
    let mut denied = std::collections::BTreeSet::new();
    for line in unit.lines() {
        if let Some(groups) = line.strip_prefix("SystemCallFilter=") {
            match groups.strip_prefix('~') {
                Some(rest) => rest
                    .split_whitespace()
                    .for_each(|g| syscall_group(&analyze, g, &mut denied)),
                None => groups
                    .split_whitespace()
                    .for_each(|g| syscall_group(&analyze, g, &mut allowed)),
            }
        }
    }
    assert!(
        allowed.contains("openat") && denied.contains("setrlimit"),
        "{allowed:?}"
    );
    for must in [
        "MemoryDenyWriteExecute=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "ProtectSystem=strict",
    ] {
        assert!(unit.contains(must), "the unit lost {must}");
    }

    let w = World::plain(&pg);
    // The agent reaches PostgreSQL over its Unix socket (the cluster's `-k` directory),
    // as on a database host, and the control plane over TCP: both families in one trace.
    let Some(services) = require_env("SKA_SERVICES_DIR", "tests/services/run.sh") else {
        return;
    };
    let socket_dir = format!("{services}/postgres");
    let (_, port) = pg.endpoint();
    assert!(
        Path::new(&format!("{socket_dir}/.s.PGSQL.{port}")).exists(),
        "no PostgreSQL socket in {socket_dir}"
    );
    w.cp.with_secret(&w.secret, |s| s.connection["host"] = json!(socket_dir));
    let trace_dir = TempDir::new("strace");
    let trace = trace_dir.path().join("trace");
    let template = w.machine.command(&["start", "--secret", &w.secret]);
    let mut c = Command::new(&strace);
    c.args(["-f", "-qq", "-s", "256", "-o"])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_sikkerkey-agent"))
        .args(["start", "--secret", &w.secret])
        .env_clear();
    for (k, v) in template.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    let mut traced = AgentProcess::spawn(c);
    w.wait_healthy(&mut traced);
    let new_pw = format!("new-{}", random_text(16));
    w.cp.set_pending(&w.secret, "rot_sandbox", &secret_value(&w.user, &new_pw));
    w.wait_confirmed("rot_sandbox", &traced);
    w.wait_journal_cleared(&traced);
    // SIGTERM to the agent itself (strace would only detach), then reload-free shutdown.
    let pid =
        std::fs::read_to_string(w.machine.agents_dir().join(format!("{}.pid", w.secret))).unwrap();
    assert!(
        Command::new("kill")
            .args(["-TERM", pid.trim()])
            .status()
            .unwrap()
            .success()
    );
    let status = traced.wait_exit(SOON);
    assert!(status.success(), "{status:?}\n{}", traced.output());
    assert_password(&pg, &w.user, &new_pw, &w.old_pw);

    let text = std::fs::read_to_string(&trace).unwrap();
    let home = w.machine.home.path().to_string_lossy().into_owned();
    let mut used = std::collections::BTreeSet::new();
    let mut problems = Vec::new();
    let mut after_exec = false;
    let mut unix_connects = 0;
    for line in text.lines() {
        let rest = line
            .split_once(' ')
            .map(|(_, r)| r.trim_start())
            .unwrap_or("");
        let Some((name, args)) = rest.split_once('(') else {
            continue;
        };
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        if name == "execve" {
            // Everything before the agent's own execve is strace starting it.
            after_exec = true;
            continue;
        }
        if !after_exec {
            continue;
        }
        used.insert(name.to_owned());
        if name == "connect" && args.contains("sun_path=") && args.contains(".s.PGSQL.") {
            unix_connects += 1;
        }
        if name == "socket"
            && !["AF_INET,", "AF_INET6,", "AF_UNIX,"]
                .iter()
                .any(|f| args.starts_with(f))
        {
            problems.push(format!("socket family outside the unit's list: {line}"));
        }
        if matches!(name, "mmap" | "mprotect") && args.contains("PROT_WRITE|PROT_EXEC") {
            problems.push(format!("writable and executable memory: {line}"));
        }
        let writes = name == "openat"
            && ["O_WRONLY", "O_RDWR", "O_CREAT"]
                .iter()
                .any(|f| args.contains(f));
        let changes = matches!(
            name,
            "rename" | "renameat" | "renameat2" | "unlink" | "unlinkat" | "mkdir" | "mkdirat"
        );
        if (writes || changes) && !args.contains(&home) && !args.contains("\"/dev/null\"") {
            problems.push(format!(
                "writes outside SIKKERKEY_HOME (ProtectSystem=strict): {line}"
            ));
        }
    }
    for name in &used {
        if !allowed.contains(name) || denied.contains(name) {
            problems.push(format!(
                "system call {name} is not allowed by the unit's SystemCallFilter="
            ));
        }
    }
    assert!(used.len() > 20, "the trace looks empty: {used:?}");
    assert!(
        unix_connects > 0,
        "the agent never connected to the PostgreSQL Unix socket"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The unit's timeouts are derived from the defaults the agent and its HTTP client really
/// start with.
#[test]
fn the_units_timeouts_rest_on_the_agents_real_defaults() {
    use sikkerkey_agent::service::timeouts::AGENT_DEFAULTS;
    let timing = sikkerkey_agent::agent::Timing::default();
    let http = sikkerkey_agent::api::HttpTimeouts::default();
    assert_eq!(AGENT_DEFAULTS.heartbeat, timing.heartbeat);
    assert_eq!(AGENT_DEFAULTS.job_deadline, timing.job_deadline);
    assert_eq!(AGENT_DEFAULTS.http_total, http.total);
}
