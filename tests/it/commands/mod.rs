//! The management commands through the real binary, one file per command as in
//! src/commands/: each one's success path and its bad input, with a temp SIKKERKEY_HOME,
//! stand-ins for the service managers, and, where a command talks to a database, the
//! PostgreSQL test cluster. Here: the fixtures several commands' tests share.

mod configure;
mod install;
mod list;
mod remove;
#[cfg(feature = "postgres")]
mod start;
mod stop;
mod test;

use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::cli::{self, agent_file, bare};
use crate::support::{AgentProcess, Endpoint, FakeControlPlane, Fault, Machine, SOON, wait_until};

/// A PID no process has: a child that already exited and was reaped.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

fn write_pid(home: &Path, secret: &str, pid: u32) {
    let path = agent_file(home, secret, "pid");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, format!("{pid}\n")).unwrap();
}

/// A real agent that stays up without a database: the control plane answers every sync
/// config request with 503, so the agent holds its PID file and keeps retrying until a
/// signal stops it.
struct IdleAgent {
    _cp: FakeControlPlane,
    machine: Machine,
    agent: AgentProcess,
}

impl IdleAgent {
    fn start(secret: &str) -> IdleAgent {
        let cp = FakeControlPlane::start();
        let machine = Machine::new(&cp);
        cp.inject(Endpoint::SyncConfig, Fault::Status(503), 100_000);
        let agent = machine.spawn_agent(secret);
        let pid_file = agent_file(machine.home.path(), secret, "pid");
        let pid = agent.pid();
        wait_until(SOON, "the agent writes its PID file", || {
            std::fs::read_to_string(&pid_file).is_ok_and(|t| t.trim() == pid.to_string())
        });
        IdleAgent {
            _cp: cp,
            machine,
            agent,
        }
    }

    fn home(&self) -> &Path {
        self.machine.home.path()
    }
}

/// `configure` for `secret` on host db.internal with admin sk_admin, then `extra`.
fn configure_args<'a>(secret: &'a str, provider: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    cli::configure_args(secret, provider, "db.internal", "sk_admin", extra)
}

/// `configure` for `secret` (host db.internal, admin sk_admin) with the admin password
/// from the environment; it must succeed.
fn configure_ok(home: &Path, secret: &str, provider: &str, admin_pass: &str) {
    cli::configure_ok(
        bare(home, &configure_args(secret, provider, &[])),
        admin_pass,
    );
}

/// python3 for the terminal and plist checks: required under CI, else a printed skip.
fn python3() -> Option<&'static str> {
    let found = Command::new("python3")
        .arg("-c")
        .arg("import plistlib, pty")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Some("python3");
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "python3 (with plistlib and pty) is required in CI"
    );
    eprintln!("SKIPPED: python3 with plistlib and pty is not installed");
    None
}

/// The same commands against the PostgreSQL test cluster.
#[cfg(feature = "postgres")]
mod with_postgres {
    use serde_json::json;

    use crate::support::cli::{self, closed_port};
    use crate::support::db::postgres::Pg;
    use crate::support::world::{Database, World};

    /// Points the server's sync config at a port where no database listens, with a wrong
    /// admin: any success must come from the local config.
    pub fn break_server_connection(w: &World) {
        let port = closed_port();
        w.cp.with_secret(&w.secret, |s| {
            s.connection = json!({"host": "127.0.0.1", "port": port, "database": "postgres",
                "adminUser": "not_the_admin", "adminPass": "not-the-password", "projectReference": ""});
        });
    }

    /// `configure` for `w.secret` with the test cluster's details, the admin password
    /// through the environment.
    pub fn configure(w: &World, admin_user: &str, admin_pass: &str, extra: &[&str]) {
        let (host, port) = w.db.endpoint();
        let port = port.to_string();
        let flags = [&["--port", &port, "--database", "postgres"], extra].concat();
        let args = cli::configure_args(&w.secret, "postgresql", &host, admin_user, &flags);
        cli::configure_ok(w.machine.command(&args), admin_pass);
    }

    pub fn admin(pg: &Pg) -> (String, String) {
        let c = pg.connection("h", 1);
        (
            c["adminUser"].as_str().unwrap().to_owned(),
            c["adminPass"].as_str().unwrap().to_owned(),
        )
    }
}
