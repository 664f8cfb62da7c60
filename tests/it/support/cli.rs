//! Running the agent binary as a one-shot command (`configure`, `test`, `list`, ...) and
//! reading what it printed and the files it left under SIKKERKEY_HOME.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::assertions::{Exit, assert_exit};

pub const BIN: &str = env!("CARGO_BIN_EXE_sikkerkey-agent");

/// What a finished command printed and how it exited.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Panics with everything the command printed unless it exited with `code`.
    #[track_caller]
    pub fn expect(self, code: Exit) -> Out {
        assert_exit(
            Some(self.code),
            code,
            &format!("stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr),
        );
        self
    }
}

/// Runs `command` to the end with stdin closed.
pub fn run(mut command: Command) -> Out {
    let out = command
        .stdin(Stdio::null())
        .output()
        .expect("run sikkerkey-agent");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The binary with nothing from the developer's environment but PATH, and `home` as
/// SIKKERKEY_HOME.
pub fn bare(home: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("SIKKERKEY_HOME", home);
    c
}

/// `configure`'s arguments for a secret on `provider` at `host` with `admin_user`, the
/// flags every configured secret has, then `extra`. The admin password goes in
/// `SIKKERKEY_ADMIN_PASS` ([`configure_ok`]), as an operator should pass it.
pub fn configure_args<'a>(
    secret: &'a str,
    provider: &'a str,
    host: &'a str,
    admin_user: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "configure",
        "--secret",
        secret,
        "--provider",
        provider,
        "--host",
        host,
        "--admin-user",
        admin_user,
    ];
    args.extend_from_slice(extra);
    args
}

/// Runs a `configure` command with `admin_pass` in `SIKKERKEY_ADMIN_PASS`; it must succeed.
#[track_caller]
pub fn configure_ok(mut configure: Command, admin_pass: &str) {
    configure.env("SIKKERKEY_ADMIN_PASS", admin_pass);
    run(configure).expect(Exit::Ok);
}

/// A file's permission bits.
pub fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `<home>/agents/<secret>.<ext>`: the agent's config, PID, state and journal files.
pub fn agent_file(home: &Path, secret: &str, ext: &str) -> PathBuf {
    home.join("agents").join(format!("{secret}.{ext}"))
}

/// A port where nothing listens (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
