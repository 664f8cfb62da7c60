//! What every integration test shares: temp dirs, a machine identity, the agent process,
//! waiting for a condition with a deadline, and service discovery that fails loudly in CI.
//! Beside it: the fake control plane, a TCP proxy that can cut a database off, fake
//! database servers that play a man-in-the-middle (`mitm.rs`), the test databases
//! (`db/`), one scenario's world, one-shot commands and named assertions.
//! The bench and the demo include this directory and nothing else from tests/.

#![allow(dead_code)]

pub mod assertions;
pub mod cli;
pub mod connect_proxy;
pub mod db;
pub mod fake_cp;
pub mod mitm;
pub mod private_ca;
pub mod proxy;
pub mod world;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub use fake_cp::{Endpoint, FakeControlPlane, Fault, SecretState};

/// Generous bound for anything the agent should do within a few poll intervals.
pub const SOON: Duration = Duration::from_secs(30);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A name unique to this test process and call: `{prefix}_{pid}_{n}`.
pub fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// Random printable text, for passwords.
pub fn random_text(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).unwrap();
    bytes.iter().map(|b| (b'a' + b % 26) as char).collect()
}

/// A directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        let p = std::env::temp_dir().join(unique_name(&format!("ska-{prefix}")));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls `cond` until it holds; panics naming `what` after `deadline`.
pub fn wait_until(deadline: Duration, what: &str, cond: impl FnMut() -> bool) {
    wait_until_or_report(deadline, what, cond, String::new);
}

/// [`wait_until`], adding `report()` (taken at the moment of failure) to the panic.
pub fn wait_until_or_report(
    deadline: Duration,
    what: &str,
    mut cond: impl FnMut() -> bool,
    report: impl FnOnce() -> String,
) {
    let end = Instant::now() + deadline;
    loop {
        if cond() {
            return;
        }
        if Instant::now() > end {
            panic!(
                "timed out after {deadline:?} waiting for: {what}\n{}",
                report()
            );
        }
        thread::sleep(Duration::from_millis(25));
    }
}

/// The value of a service's environment variable. Missing: under CI (env `CI` set) the
/// test fails; elsewhere it prints why it skips and returns `None`.
pub fn require_env(var: &str, service: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "{service} is required in CI but {var} is not set; run the tests through `make test`"
                );
            }
            eprintln!(
                "SKIPPED: {service} not available ({var} not set); run `make test` to start it"
            );
            None
        }
    }
}

/// A machine identity in its own SIKKERKEY_HOME, registered with a fake control plane.
pub struct Machine {
    pub id: String,
    pub home: TempDir,
    pub api_url: String,
}

impl Machine {
    pub fn new(cp: &FakeControlPlane) -> Self {
        let home = TempDir::new("home");
        let id = unique_name("machine");
        fake_cp::write_identity(cp, home.path(), &id);
        Machine {
            id,
            home,
            api_url: cp.url(),
        }
    }

    pub fn agents_dir(&self) -> PathBuf {
        self.home.path().join("agents")
    }

    pub fn journal(&self, secret_id: &str) -> PathBuf {
        self.agents_dir().join(format!("{secret_id}.journal"))
    }

    /// A command for the agent binary with this machine's environment and short intervals.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sikkerkey-agent"));
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("SIKKERKEY_HOME", self.home.path())
            .env("SIKKERKEY_API_URL", &self.api_url)
            .env("SIKKERKEY_AGENT_POLL_MS", "150")
            .env("SIKKERKEY_AGENT_HEARTBEAT_MS", "250")
            .env("SIKKERKEY_AGENT_HTTP_TIMEOUT_MS", "3000")
            .env("SIKKERKEY_AGENT_DB_TIMEOUT_MS", "5000")
            .env("SIKKERKEY_LOG", "trace");
        c
    }

    /// `binary agent start --secret ID` the way the official CLI is run (and our agent can be
    /// run alike): only PATH, HOME and this machine's home and API URL in the environment,
    /// no test knobs, stdin closed.
    pub fn official_style_command(
        &self,
        binary: impl AsRef<std::ffi::OsStr>,
        secret_id: &str,
    ) -> Command {
        let mut c = Command::new(binary);
        c.args(["agent", "start", "--secret", secret_id])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("SIKKERKEY_HOME", self.home.path())
            .env("SIKKERKEY_API_URL", &self.api_url)
            .stdin(Stdio::null());
        c
    }

    pub fn spawn_agent(&self, secret_id: &str) -> AgentProcess {
        AgentProcess::spawn(self.command(&["start", "--secret", secret_id]))
    }
}

/// Appends everything read from `pipe` to `out` on a thread of its own, until end of file:
/// a child's output stays readable while it runs, and is whole once the thread is joined.
pub fn collect_output(
    mut pipe: impl Read + Send + 'static,
    out: Arc<Mutex<String>>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A running agent whose stdout and stderr are collected.
pub struct AgentProcess {
    child: Child,
    output: Arc<Mutex<String>>,
    readers: Vec<thread::JoinHandle<()>>,
    status: Option<ExitStatus>,
}

impl AgentProcess {
    pub fn spawn(mut command: Command) -> Self {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start the agent binary");
        let output = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        let pipes: Vec<Box<dyn Read + Send>> = vec![
            Box::new(child.stdout.take().unwrap()),
            Box::new(child.stderr.take().unwrap()),
        ];
        for pipe in pipes {
            readers.push(collect_output(pipe, output.clone()));
        }
        AgentProcess {
            child,
            output,
            readers,
            status: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// The output plus, while the process runs, each thread's name, state and kernel wait
    /// channel: what a failed wait needs to show where the agent is stuck.
    pub fn report(&self) -> String {
        let mut report = self.output();
        let pid = self.child.id();
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            report.push_str("--- threads (name state wchan) ---\n");
            for task in tasks.flatten() {
                let p = task.path();
                let read = |f: &str| {
                    std::fs::read_to_string(p.join(f))
                        .unwrap_or_default()
                        .trim()
                        .to_owned()
                };
                let stat = read("stat");
                let state = stat
                    .rsplit_once(')')
                    .map(|(_, r)| r.trim_start().chars().next().unwrap_or('?'))
                    .unwrap_or('?');
                report.push_str(&format!("{} {state} {}\n", read("comm"), read("wchan")));
            }
        }
        report
    }

    /// Waits until `cond` holds; on timeout the panic shows this agent's output and threads.
    pub fn wait_until(&self, deadline: Duration, what: &str, cond: impl FnMut() -> bool) {
        wait_until_or_report(deadline, what, cond, || self.report());
    }

    /// Waits until the output contains `text`.
    pub fn wait_for_output(&mut self, text: &str, deadline: Duration) {
        let end = Instant::now() + deadline;
        while !self.output().contains(text) {
            if Instant::now() > end || self.try_status().is_some() {
                panic!("agent never printed {text:?}; output:\n{}", self.report());
            }
            thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().unwrap();
        }
        self.status
    }

    /// Waits for the process to exit; panics with its output after `deadline`.
    pub fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        let end = Instant::now() + deadline;
        loop {
            if let Some(s) = self.try_status() {
                for r in self.readers.drain(..) {
                    let _ = r.join();
                }
                return s;
            }
            if Instant::now() > end {
                panic!(
                    "agent did not exit within {deadline:?}; output:\n{}",
                    self.report()
                );
            }
            thread::sleep(Duration::from_millis(25));
        }
    }

    /// Waits (up to [`SOON`]) for the process to exit and checks its exit code.
    #[track_caller]
    pub fn expect_exit(&mut self, expected: assertions::Exit) {
        let status = self.wait_exit(SOON);
        assertions::assert_exit(status.code(), expected, &self.report());
    }

    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{signal} failed");
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        if self.try_status().is_none() {
            self.signal("TERM");
        }
        self.wait_exit(Duration::from_secs(30))
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        self.wait_exit(Duration::from_secs(10));
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if self.try_status().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
