//! `make bench`: what a rotation and an idle minute cost, for our static binary and for the
//! official agent, against the real local databases and the fake control plane.
//!
//! Not a timed test: it prints tables (and writes them to `SKA_BENCH_OUT`) so a change can
//! be compared with the baseline under `bench/`. Run through `make bench`, which builds the
//! static binary and starts the services with tests/services/run.sh.
//!
//! Adding a provider is one line in [`providers`]: the integration tests' `Database`
//! implementation already knows how to create a user and what the connection JSON is.

#[path = "../tests/it/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sikkerkey_agent::providers::{
    self, DbTimeouts, FailureKind, Provider, ProviderKind, Target, TlsMode, TlsSettings,
};
use sikkerkey_agent::secret::Secret;
use support::private_ca::{Issued, PrivateCa};
use support::world::{Database, WeakAdmin, World, assert_password, secret_value};
use support::{AgentProcess, Endpoint, FakeControlPlane, random_text};

/// One database kind to measure: the plaintext test server, and (when the run started
/// it) the TLS-only server of the same kind with the run's CA.
struct Subject {
    name: &'static str,
    plain: Box<dyn Database>,
    tls: Option<TlsDb>,
}

impl Subject {
    /// Where `agent` connects: ours over TLS (verify-full) when there is a TLS server,
    /// as in production; the official agent to the plaintext server (the bench gives
    /// it no database TLS settings).
    fn db(&self, agent: Agent) -> &dyn Database {
        match (agent, &self.tls) {
            (Agent::Ours, Some(t)) => t,
            _ => self.plain.as_ref(),
        }
    }

    fn connection_kind(&self, agent: Agent) -> &'static str {
        match (agent, &self.tls) {
            (Agent::Ours, Some(_)) => "TLS, verify-full",
            _ => "plaintext",
        }
    }
}

/// The databases to measure (those tests/services/run.sh started).
fn providers() -> Vec<Subject> {
    type Found = Option<Box<dyn Database>>;
    type Entry = (&'static str, fn() -> Found, fn() -> Option<TlsDb>);
    let table: Vec<Entry> = vec![
        #[cfg(feature = "postgres")]
        (
            "PostgreSQL",
            || support::db::postgres::Pg::open().map(|d| Box::new(d) as _),
            || TlsDb::from_env("PGTLS", ProviderKind::Postgresql, "postgres"),
        ),
        #[cfg(feature = "mysql")]
        (
            "MariaDB",
            || support::db::mysql::My::open().map(|d| Box::new(d) as _),
            || TlsDb::from_env("MYSQLTLS", ProviderKind::Mysql, ""),
        ),
        // The TLS tests start a TLS redis-server per check; run.sh exports none.
        #[cfg(feature = "redis")]
        (
            "Redis",
            || support::db::redis::RedisServer::open().map(|d| Box::new(d) as _),
            || None,
        ),
        #[cfg(feature = "mongodb")]
        (
            "MongoDB",
            || support::db::mongodb::Mongo::open().map(|d| Box::new(d) as _),
            || TlsDb::from_env("MONGOTLS", ProviderKind::Mongodb, ""),
        ),
    ];
    table
        .into_iter()
        .filter_map(|(name, find, tls)| {
            find().map(|plain| Subject {
                name,
                plain,
                tls: tls(),
            })
        })
        .collect()
}

/// A TLS-only test server (tests/services/tls/), seen through the agent's own providers
/// with verify-full and the run's CA: it creates and checks users the way the agent
/// connects, so the bench needs no TLS client of its own per database.
struct TlsDb {
    kind: ProviderKind,
    host: String,
    port: u16,
    admin_user: String,
    admin_pass: String,
    database: String,
    ca: PathBuf,
}

impl TlsDb {
    /// `SKA_{prefix}_HOST`, `_PORT`, `_ADMIN_USER`, `_ADMIN_PASS` and `SKA_TLS_CA`, as
    /// tests/services/run.sh exports them; `None` when the run has no such server.
    #[cfg_attr(
        not(any(feature = "postgres", feature = "mysql", feature = "mongodb")),
        allow(dead_code)
    )]
    fn from_env(prefix: &str, kind: ProviderKind, database: &str) -> Option<TlsDb> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let server = |name: &str| var(&format!("SKA_{prefix}_{name}"));
        Some(TlsDb {
            kind,
            host: server("HOST")?,
            port: server("PORT")?.parse().ok()?,
            admin_user: server("ADMIN_USER")?,
            admin_pass: server("ADMIN_PASS")?,
            database: database.to_owned(),
            ca: var("SKA_TLS_CA")?.into(),
        })
    }

    fn tls(&self) -> TlsSettings {
        TlsSettings {
            mode: TlsMode::VerifyFull,
            ca_file: Some(self.ca.clone()),
            ..Default::default()
        }
    }

    fn admin(&self) -> Box<dyn Provider> {
        let target = Target {
            kind: self.kind,
            host: self.host.clone(),
            port: self.port,
            database: self.database.clone(),
            admin_user: self.admin_user.clone(),
            admin_pass: Secret::new(&self.admin_pass),
            project_reference: String::new(),
            timeouts: DbTimeouts {
                connect: Duration::from_secs(10),
                statement: Duration::from_secs(15),
            },
            tls: self.tls(),
        };
        providers::open(&target)
            .unwrap_or_else(|e| panic!("admin login to the {:?} TLS server: {e}", self.kind))
    }

    /// `configure` writes the local config that makes our agent use TLS to this server.
    fn configure(&self, s: &Settings, w: &World) {
        let port = self.port.to_string();
        let ca = self.ca.display().to_string();
        let mut flags = vec![
            "--port",
            &port,
            "--tls",
            "verify-full",
            "--tls-ca-file",
            &ca,
        ];
        if !self.database.is_empty() {
            flags.extend(["--database", &self.database]);
        }
        let provider = self.kind.as_str();
        let args =
            support::cli::configure_args(&w.secret, provider, &self.host, &self.admin_user, &flags);
        let home = w.machine.home.path();
        let out = Command::new(&s.agent)
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("SIKKERKEY_HOME", home)
            .env("SIKKERKEY_API_URL", &w.machine.api_url)
            .env("SSL_CERT_FILE", &s.tls.ca.cert)
            .env("SIKKERKEY_ADMIN_PASS", &self.admin_pass)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "configure --tls verify-full failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Database for TlsDb {
    fn provider_type(&self) -> &'static str {
        self.kind.as_str()
    }
    fn endpoint(&self) -> (String, u16) {
        (self.host.clone(), self.port)
    }
    fn connection(&self, host: &str, port: u16) -> serde_json::Value {
        serde_json::json!({"host": host, "port": port, "database": self.database,
            "adminUser": self.admin_user, "adminPass": self.admin_pass, "projectReference": ""})
    }
    fn admin_password(&self) -> String {
        self.admin_pass.clone()
    }
    fn create_user(&self, name: &str, password: &str) {
        self.admin()
            .set_password(name, &Secret::new(password))
            .unwrap_or_else(|e| panic!("create {name} over TLS: {e}"));
    }
    fn drop_user(&self, name: &str) {
        let _ = self.admin().drop_user(name);
    }
    fn can_login(&self, name: &str, password: &str) -> bool {
        match self.admin().verify_login(name, &Secret::new(password)) {
            Ok(()) => true,
            Err(e) if e.kind == FailureKind::AuthRejected => false,
            Err(e) => panic!("login as {name} over TLS: {e}"),
        }
    }
    fn block_login(&self, _: &str) {
        unreachable!("the bench does not block logins")
    }
    fn unblock_login(&self, _: &str) {
        unreachable!("the bench does not block logins")
    }
    fn hostile_name(&self) -> String {
        unreachable!("the bench uses plain names")
    }
    fn weak_admin(&self) -> WeakAdmin {
        unreachable!("the bench has no weak admin")
    }
}

/// Knobs, from the environment so `make bench` can pass them through.
struct Settings {
    /// The control plane serves HTTPS, as in production, with a certificate from this
    /// run's CA; both agents trust it through SSL_CERT_FILE.
    tls: ControlPlaneTls,
    agent: PathBuf,
    official: Option<PathBuf>,
    rotations: usize,
    official_rotations: usize,
    idle: Duration,
    out: Option<PathBuf>,
}

impl Settings {
    /// `cargo bench` passes `--bench`; anything else (`cargo test --all-targets`) gets a
    /// smoke run: the debug binary, two rotations, one idle second, no official agent.
    fn from_env() -> Self {
        if !std::env::args().any(|a| a == "--bench") {
            return Settings {
                tls: ControlPlaneTls::new(),
                agent: PathBuf::from(env!("CARGO_BIN_EXE_sikkerkey-agent")),
                official: None,
                rotations: 2,
                official_rotations: 0,
                idle: Duration::from_secs(1),
                out: None,
            };
        }
        let num = |var: &str, default: usize| {
            std::env::var(var)
                .ok()
                .map(|v| {
                    v.parse()
                        .unwrap_or_else(|_| panic!("{var}={v} is not a number"))
                })
                .unwrap_or(default)
        };
        let agent = PathBuf::from(std::env::var("SKA_BENCH_AGENT").expect(
            "SKA_BENCH_AGENT (the static release binary) is not set; run this through `make bench`",
        ));
        assert!(
            agent.is_file(),
            "{} does not exist; run `make static` first",
            agent.display()
        );
        Settings {
            tls: ControlPlaneTls::new(),
            agent,
            official: std::env::var_os("SKA_OFFICIAL_AGENT")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            rotations: num("SKA_BENCH_ROTATIONS", 50),
            official_rotations: num("SKA_BENCH_OFFICIAL_ROTATIONS", 20),
            idle: Duration::from_secs(num("SKA_BENCH_IDLE_SECS", 30) as u64),
            out: std::env::var_os("SKA_BENCH_OUT").map(PathBuf::from),
        }
    }
}

/// A CA for this run and the fake control plane's certificate (127.0.0.1) signed by it.
struct ControlPlaneTls {
    ca: PrivateCa,
    server: Issued,
}

impl ControlPlaneTls {
    fn new() -> Self {
        let ca = PrivateCa::new("ska-bench-ca");
        let server = ca.issue("control-plane", "IP:127.0.0.1,DNS:localhost");
        ControlPlaneTls { ca, server }
    }
}

impl Settings {
    /// A world whose fake control plane speaks HTTPS, with `agent`'s database: for ours
    /// the TLS server when there is one, with the local config that says verify-full.
    fn world<'a>(&self, subject: &'a Subject, agent: Agent) -> World<'a> {
        let db = subject.db(agent);
        let cp = FakeControlPlane::start_tls(&self.tls.server.cert, &self.tls.server.key);
        let w = World::with_control_plane(
            db,
            cp,
            db.plain_name(),
            format!("old-{}", random_text(16)),
            false,
        );
        if let (Agent::Ours, Some(tls)) = (agent, &subject.tls) {
            tls.configure(self, &w);
        }
        w
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Agent {
    Ours,
    Official,
}

impl Agent {
    fn name(self) -> &'static str {
        match self {
            Agent::Ours => "sikkerkey-agent",
            Agent::Official => "official 4.2.0",
        }
    }

    /// The agent for `w`'s secret. `fast` polls every 100 ms (ours only; the official
    /// agent cannot poll faster than every 5 s); otherwise the product's timings.
    fn spawn(self, s: &Settings, w: &World, fast: bool) -> AgentProcess {
        let binary = match self {
            Agent::Ours => s.agent.as_os_str(),
            Agent::Official => s.official.as_ref().expect("official agent").as_os_str(),
        };
        let mut cmd = w.machine.official_style_command(binary, &w.secret);
        cmd.env("SSL_CERT_FILE", &s.tls.ca.cert);
        if fast && self == Agent::Ours {
            cmd.env("SIKKERKEY_AGENT_POLL_MS", "100");
        }
        AgentProcess::spawn(cmd)
    }
}

/// What /proc says about a process at one moment.
#[derive(Clone, Default)]
struct ProcSample {
    at: Option<Instant>,
    rss_kib: u64,
    /// The part of RSS that is the process's own memory; the rest is mapped file pages
    /// (the binary itself), clean and shared with the page cache.
    anon_kib: u64,
    /// Proportional set size: RSS with each shared page divided among its sharers.
    pss_kib: u64,
    hwm_kib: u64,
    cpu_ticks: u64,
    /// Run time of each live thread (id, ns) from /proc/PID/task/*/schedstat: CPU time at
    /// nanosecond resolution, where utime/stime count 10 ms ticks.
    run_ns: Option<Vec<(u32, u64)>>,
    threads: usize,
}

/// Each thread's run time in ns; `None` when the kernel has no schedstat.
fn thread_run_ns(pid: u32) -> Option<Vec<(u32, u64)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let entry = entry.ok()?;
        let tid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let text = std::fs::read_to_string(entry.path().join("schedstat")).ok()?;
        out.push((tid, text.split_whitespace().next()?.parse().ok()?));
    }
    out.sort_unstable();
    Some(out)
}

/// CPU ms between two samples: from the threads' run times when the same threads lived
/// at both ends (a thread that ended would take its time with it), else from the ticks.
fn cpu_ms_between(b: &ProcSample, a: &ProcSample, tick: f64) -> (f64, &'static str) {
    if let (Some(before), Some(after)) = (&b.run_ns, &a.run_ns) {
        let same = before.len() == after.len() && before.iter().zip(after).all(|(x, y)| x.0 == y.0);
        if same {
            let ns: u64 = before
                .iter()
                .zip(after)
                .map(|(x, y)| y.1.saturating_sub(x.1))
                .sum();
            return (ns as f64 / 1e6, "schedstat");
        }
    }
    ((a.cpu_ticks - b.cpu_ticks) as f64 / tick * 1000.0, "ticks")
}

fn sample(pid: u32) -> ProcSample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("process {pid} is gone: {e}"));
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let pss_kib = rollup
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after "(comm)": state is [0], utime [11], stime [12].
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    let ticks = |i: usize| fields[i].parse::<u64>().unwrap();
    ProcSample {
        at: Some(Instant::now()),
        rss_kib: kib("VmRSS:"),
        anon_kib: kib("RssAnon:"),
        pss_kib,
        hwm_kib: kib("VmHWM:"),
        cpu_ticks: ticks(11) + ticks(12),
        run_ns: thread_run_ns(pid),
        threads: std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .count(),
    }
}

fn clock_ticks_per_second() -> f64 {
    command_output("getconf", &["CLK_TCK"])
        .trim()
        .parse()
        .unwrap_or(100.0)
}

fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// Median and 95th percentile (nearest rank).
#[derive(Clone, Copy)]
struct Summary {
    p50: f64,
    p95: f64,
}

fn summarize(values: &[f64]) -> Option<Summary> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Some(Summary {
        p50: rank(0.50),
        p95: rank(0.95),
    })
}

fn show(s: Option<Summary>) -> String {
    match s {
        Some(s) => format!("{:.1} / {:.1}", s.p50, s.p95),
        None => "n/a".into(),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Waits for `what` without the 25 ms granularity of `support::wait_until`: latencies
/// here are a few milliseconds.
fn wait_fine(deadline: Duration, what: impl Fn() -> String, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {}", what());
        std::thread::sleep(Duration::from_micros(500));
    }
}

// ---- idle ----

struct IdleResult {
    provider: &'static str,
    agent: Agent,
    /// One rotation ran before the window (so its driver code and buffers were used).
    rotated: bool,
    startup_cpu_ms: f64,
    cpu_ms: f64,
    /// Where `cpu_ms` came from: "schedstat" (ns) or "ticks" (10 ms).
    cpu_source: &'static str,
    window: Duration,
    rss_kib: u64,
    anon_kib: u64,
    pss_kib: u64,
    hwm_kib: u64,
    threads: usize,
    calls: usize,
}

/// Starts every agent at once with the product's timings (poll every 10 s, heartbeat
/// every 30 s), twice per provider: one left alone once healthy, one that first applies
/// a rotation. Waits until each reported healthy (and confirmed its rotation), then
/// leaves them alone for `idle`.
fn measure_idle<'a>(
    s: &Settings,
    subjects: &'a [Subject],
    tick: f64,
    failures: &mut Vec<String>,
) -> Vec<IdleResult> {
    let mut running = Vec::new();
    for subject in subjects {
        let name = &subject.name;
        for agent in agents(s) {
            for rotated in [false, true] {
                let what = format!(
                    "{name}, idle{}",
                    if rotated { " after a rotation" } else { "" }
                );
                let started = attempt(agent, &what, failures, || {
                    let w: World<'a> = s.world(subject, agent);
                    let mut process = agent.spawn(s, &w, false);
                    w.wait_healthy(&mut process);
                    if rotated {
                        w.cp.set_pending(
                            &w.secret,
                            &format!("idle-{}", random_text(7)),
                            &secret_value(&w.user, &random_text(20)),
                        );
                    }
                    (w, process)
                });
                if let Some((w, process)) = started {
                    running.push((*name, agent, rotated, w, process));
                }
            }
        }
    }
    // The rotations were made pending as each agent started; they run in parallel.
    let mut settled = Vec::new();
    for (name, agent, rotated, w, process) in running {
        let what = format!("{name}, the rotation before the idle window");
        let ok = !rotated
            || attempt(agent, &what, failures, || {
                process.wait_until(
                    Duration::from_secs(60),
                    &format!("{}: {what}", agent.name()),
                    || !w.cp.confirms(&w.secret).is_empty() || !w.cp.rejects(&w.secret).is_empty(),
                );
                assert!(w.cp.rejects(&w.secret).is_empty(), "{what} was rejected");
            })
            .is_some();
        if ok {
            settled.push((name, agent, rotated, w, process));
        }
    }
    let running = settled;
    let before: Vec<(ProcSample, usize)> = running
        .iter()
        .map(|(_, _, _, w, p)| (sample(p.pid()), total_calls(w)))
        .collect();
    eprintln!(
        "[bench] idle: {} agent(s) running; measuring for {} s",
        running.len(),
        s.idle.as_secs()
    );
    std::thread::sleep(s.idle);
    let mut results = Vec::new();
    for ((name, agent, rotated, w, mut process), (b, calls0)) in running.into_iter().zip(before) {
        let a = sample(process.pid());
        assert!(
            process.try_status().is_none(),
            "{} exited while idle; output:\n{}",
            agent.name(),
            process.output()
        );
        let (cpu_ms, cpu_source) = cpu_ms_between(&b, &a, tick);
        results.push(IdleResult {
            provider: name,
            agent,
            rotated,
            startup_cpu_ms: b.cpu_ticks as f64 / tick * 1000.0,
            cpu_ms,
            cpu_source,
            window: a.at.unwrap() - b.at.unwrap(),
            rss_kib: a.rss_kib,
            anon_kib: a.anon_kib,
            pss_kib: a.pss_kib,
            hwm_kib: a.hwm_kib,
            threads: a.threads,
            calls: total_calls(&w) - calls0,
        });
        stop(agent, &w, process);
    }
    results
}

/// Runs `f`. A panic is a failure of our agent and goes on; for the official agent, which
/// need not cope with every test server, it becomes a line under "Not measured".
fn attempt<T>(
    agent: Agent,
    what: &str,
    failures: &mut Vec<String>,
    f: impl FnOnce() -> T,
) -> Option<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => Some(v),
        Err(e) if agent == Agent::Official => {
            let text = e
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| e.downcast_ref::<&str>().copied())
                .unwrap_or("panic");
            let first: String = text
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(200)
                .collect();
            failures.push(format!("{}, {what}: {first}", agent.name()));
            None
        }
        Err(e) => std::panic::resume_unwind(e),
    }
}

fn total_calls(w: &World) -> usize {
    [
        Endpoint::Secret,
        Endpoint::SyncConfig,
        Endpoint::Heartbeat,
        Endpoint::Confirm,
        Endpoint::Reject,
    ]
    .into_iter()
    .map(|e| w.cp.calls(e))
    .sum()
}

fn agents(s: &Settings) -> Vec<Agent> {
    let mut v = vec![Agent::Ours];
    if s.official.is_some() {
        v.push(Agent::Official);
    }
    v
}

fn stop(agent: Agent, w: &World, mut process: AgentProcess) {
    let status = process.terminate();
    if agent == Agent::Ours {
        assert!(
            status.success(),
            "our agent exited with {status}; output:\n{}",
            process.output()
        );
    }
    assert!(
        w.cp.unauthorized().is_empty(),
        "{} earned 401s: {:?}",
        agent.name(),
        w.cp.unauthorized()
    );
}

// ---- rotations ----

/// The phase times our agent logs for one rotation, in ms.
#[derive(Default)]
struct Logged {
    apply: Vec<f64>,
    verify: Vec<f64>,
    confirm: Vec<f64>,
    job: Vec<f64>,
}

struct RotationResult {
    provider: &'static str,
    agent: Agent,
    n: usize,
    logged: Option<Logged>,
    /// From the sync config that carried the rotation leaving the fake control plane to
    /// the confirm arriving there.
    fetch_to_confirm: Vec<f64>,
    /// From the rotation becoming pending to the confirm (includes waiting for the poll).
    pending_to_confirm: Vec<f64>,
    rss_after_kib: u64,
    hwm_kib: u64,
    threads_after: usize,
}

fn measure_rotations(s: &Settings, subject: &Subject, agent: Agent, n: usize) -> RotationResult {
    let provider = subject.name;
    let db = subject.db(agent);
    let w = s.world(subject, agent);
    w.cp.with_secret(&w.secret, |st| st.poll_interval_seconds = 5);
    let mut process = agent.spawn(s, &w, true);
    w.wait_healthy(&mut process);
    eprintln!("[bench] {provider}: {n} rotations through {}", agent.name());
    let mut fetch_to_confirm = Vec::new();
    let mut pending_to_confirm = Vec::new();
    let mut ids = Vec::new();
    let (mut previous, mut current) = (String::new(), w.old_pw.clone());
    for i in 0..n {
        // Letters only: the official agent puts passwords into a libpq DSN unquoted.
        let password = random_text(20);
        // The first 12 characters are what our agent logs as the rotation's short id.
        let id = format!("r{i:04}-{}", random_text(7));
        let fetches = w.cp.calls(Endpoint::SyncConfig);
        w.cp.set_pending(&w.secret, &id, &secret_value(&w.user, &password));
        let pending_at = Instant::now();
        let mut fetched_at = None;
        wait_fine(
            Duration::from_secs(60),
            || format!("rotation {id} confirmed; output:\n{}", process.output()),
            || {
                if fetched_at.is_none() && w.cp.calls(Endpoint::SyncConfig) > fetches {
                    fetched_at = Some(Instant::now());
                }
                let rejects = w.cp.rejects(&w.secret);
                assert!(
                    rejects.is_empty(),
                    "rotation rejected: {rejects:?}; output:\n{}",
                    process.output()
                );
                w.cp.confirms(&w.secret).len() > i
            },
        );
        let confirmed_at = Instant::now();
        pending_to_confirm.push(ms(confirmed_at - pending_at));
        if let Some(f) = fetched_at {
            fetch_to_confirm.push(ms(confirmed_at - f));
        }
        ids.push(id);
        (previous, current) = (current, password);
    }
    if agent == Agent::Ours
        && let Some(last) = ids.last()
    {
        // The agent logs after the confirm is acknowledged, so the line may trail it.
        process.wait_for_output(&timing_marker(last), Duration::from_secs(10));
    }
    let after = sample(process.pid());
    assert_password(db, &w.user, &current, &previous);
    let logged = (agent == Agent::Ours).then(|| parse_log(&process.output(), &ids));
    stop(agent, &w, process);
    RotationResult {
        provider,
        agent,
        n,
        logged,
        fetch_to_confirm,
        pending_to_confirm,
        rss_after_kib: after.rss_kib,
        hwm_kib: after.hwm_kib,
        threads_after: after.threads,
    }
}

/// The start of our agent's timing line; it logs the first 12 characters of the id.
fn timing_marker(rotation_id: &str) -> String {
    let short: String = rotation_id.chars().take(12).collect();
    format!("rotation {short} applied, verified and confirmed (")
}

/// Finds `rotation <short id> applied, verified and confirmed (apply X ms, verify Y ms,
/// confirm Z ms, job T ms)` for every rotation.
fn parse_log(output: &str, ids: &[String]) -> Logged {
    let mut logged = Logged::default();
    for id in ids {
        let marker = timing_marker(id);
        let line = output
            .lines()
            .find(|l| l.contains(&marker))
            .unwrap_or_else(|| {
                panic!("no line with {marker:?} in the agent's output; has the log line changed?\n{output}")
            });
        let inner = line.split(&marker).nth(1).unwrap().trim_end_matches(')');
        let mut parts = inner.split(", ").map(|p| {
            let (name, rest) = p.split_once(' ').unwrap();
            let value: f64 = rest
                .trim_end_matches(" ms")
                .parse()
                .unwrap_or_else(|_| panic!("cannot read {p:?} in {line:?}"));
            (name, value)
        });
        for (want, into) in [
            ("apply", &mut logged.apply),
            ("verify", &mut logged.verify),
            ("confirm", &mut logged.confirm),
            ("job", &mut logged.job),
        ] {
            match parts.next() {
                Some((name, value)) if name == want => into.push(value),
                _ => panic!("expected {want} in {line:?}"),
            }
        }
    }
    logged
}

/// A login as the managed user from this process: the floor that "verify" cannot beat.
fn login_floor(db: &dyn Database, n: usize) -> Vec<f64> {
    let user = db.plain_name();
    let password = random_text(20);
    db.create_user(&user, &password);
    let times = (0..n)
        .map(|_| {
            let t = Instant::now();
            assert!(db.can_login(&user, &password));
            ms(t.elapsed())
        })
        .collect();
    db.drop_user(&user);
    times
}

// ---- report ----

fn machine_info() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let commit = command_output("git", &["describe", "--always", "--dirty"]);
    format!(
        "- date: {}\n- machine: {} CPUs ({}), kernel {}, {} MiB RAM\n- load average at start: {}\n- rustc: {}\n- commit: {}\n",
        command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu,
        kernel.trim(),
        mem_total_mib(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        command_output("rustc", &["-V"]),
        commit,
    )
}

fn mem_total_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0, |k| k / 1024)
}

fn binary_line(name: &str, path: &Path) -> String {
    let size = std::fs::metadata(path).map_or(0, |m| m.len());
    let kind = command_output("file", &["-b", &path.to_string_lossy()]);
    let linking = [
        "static-pie linked",
        "statically linked",
        "dynamically linked",
    ]
    .into_iter()
    .find(|k| kind.contains(k))
    .unwrap_or("?");
    let stripped = if kind.contains("not stripped") {
        "not stripped"
    } else if kind.contains("stripped") {
        "stripped"
    } else {
        "?"
    };
    format!(
        "| {name} | {} | {:.2} MiB | {linking}, {stripped} |\n",
        size,
        size as f64 / 1048576.0
    )
}

/// The budgets (README, Size and speed): a third of the official agent, next to what the official agent
/// measured in the same run; a missed budget says by how much.
fn budgets(report: &mut String, s: &Settings, idle: &[IdleResult], rotations: &[RotationResult]) {
    let mib = |kib: u64| kib as f64 / 1024.0;
    // `decimals`: the precision the figures are printed with.
    let verdict = |measured: f64, limit: f64, unit: &str, decimals: usize| {
        if measured <= limit {
            "within".to_owned()
        } else {
            format!("OVER by {:.decimals$} {unit}", measured - limit)
        }
    };
    writeln!(
        report,
        "\n## Budgets\n\n| budget | {} | {} | |\n|---|---:|---:|---|",
        Agent::Ours.name(),
        Agent::Official.name()
    )
    .unwrap();
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len()) as f64 / 1048576.0;
    let ours = size(&s.agent);
    let official = s
        .official
        .as_deref()
        .map_or("n/a".to_owned(), |o| format!("{:.2} MiB", size(o)));
    writeln!(
        report,
        "| static binary ≤ 4 MiB (this build's providers) | {ours:.2} MiB | {official} | {} |",
        verdict(ours, 4.0, "MiB", 2)
    )
    .unwrap();
    let find = |provider: &str, agent: Agent, rotated: bool| {
        idle.iter()
            .find(|r| r.provider == provider && r.agent == agent && r.rotated == rotated)
    };
    let share = |r: &IdleResult| r.cpu_ms / ms(r.window) * 100.0;
    for r in idle.iter().filter(|r| r.agent == Agent::Ours) {
        let o = find(r.provider, Agent::Official, r.rotated);
        let when = if r.rotated { ", after a rotation" } else { "" };
        let other = |f: &dyn Fn(&IdleResult) -> String| o.map_or("n/a".to_owned(), f);
        let memory = [
            ("idle RSS", 4.0, r.rss_kib, o.map(|o| o.rss_kib)),
            ("anonymous RSS", 1.0, r.anon_kib, o.map(|o| o.anon_kib)),
        ];
        for (what, limit, ours, official) in memory {
            writeln!(
                report,
                "| {}{when}: {what} ≤ {limit} MiB | {:.2} MiB | {} | {} |",
                r.provider,
                mib(ours),
                official.map_or("n/a".to_owned(), |k| format!("{:.2} MiB", mib(k))),
                verdict(mib(ours), limit, "MiB", 2)
            )
            .unwrap();
        }
        // Without an official figure for this provider, the README's 0.1 % of one core.
        let (limit, what) = match o {
            Some(o) => (share(o), "≤ the official agent's"),
            None => (0.1, "≤ 0.1 % of one core (no official figure)"),
        };
        writeln!(
            report,
            "| {}{when}: idle CPU {what} | {:.3} % | {} | {} |",
            r.provider,
            share(r),
            other(&|o| format!("{:.3} %", share(o))),
            // As printed: equal figures at the table's precision are not "over".
            verdict(
                (share(r) * 1000.0).round() / 1000.0,
                (limit * 1000.0).round() / 1000.0,
                "% of a core",
                3
            )
        )
        .unwrap();
    }
    for r in rotations {
        let Some(l) = &r.logged else { continue };
        let in_db: Vec<f64> = l.apply.iter().zip(&l.verify).map(|(a, v)| a + v).collect();
        if let (Some(db), Some(job)) = (summarize(&in_db), summarize(&l.job)) {
            writeln!(
                report,
                "| {}: apply + verify, share of the job (medians) | {:.0} % ({:.1} of {:.1} ms) | see notes |",
                r.provider,
                db.p50 / job.p50 * 100.0,
                db.p50,
                job.p50
            )
            .unwrap();
        }
    }
}

fn main() {
    let s = Settings::from_env();
    let dbs = providers();
    if dbs.is_empty() {
        // Each provider's from_env already said why (and panicked under CI).
        eprintln!("[bench] SKIPPED: no database is running; run this through `make bench`");
        return;
    }
    if s.official.is_none() {
        eprintln!("[bench] SKA_OFFICIAL_AGENT is not set: measuring our agent only");
    }
    let tick = clock_ticks_per_second();
    let mut report = String::new();
    writeln!(report, "# sikkerkey-agent benchmark\n").unwrap();
    report.push_str(&machine_info());
    writeln!(
        report,
        "\nControl plane: the fake one over HTTPS (TLS 1.3, a certificate from a CA made for this run), trusted by both agents through SSL_CERT_FILE, as production is HTTPS."
    )
    .unwrap();

    writeln!(
        report,
        "\n## Database connections\n\nOur agent reaches each database over TLS (verify-full against the run's CA, set with `configure --tls verify-full --tls-ca-file`) where tests/services/run.sh started a TLS-only server of that kind, as production should; the official agent, which the bench gives no database TLS settings, reaches the plaintext server.\n\n| provider | {} | {} |\n|---|---|---|",
        Agent::Ours.name(),
        Agent::Official.name()
    )
    .unwrap();
    for subject in &dbs {
        writeln!(
            report,
            "| {} | {} | {} |",
            subject.name,
            subject.connection_kind(Agent::Ours),
            subject.connection_kind(Agent::Official)
        )
        .unwrap();
    }

    writeln!(report, "\n## Binary\n").unwrap();
    writeln!(
        report,
        "| agent | bytes | size | linking |\n|---|---:|---:|---|"
    )
    .unwrap();
    report.push_str(&binary_line(Agent::Ours.name(), &s.agent));
    if let Some(o) = &s.official {
        report.push_str(&binary_line(Agent::Official.name(), o));
    }

    let mut failures = Vec::new();
    let idle = measure_idle(&s, &dbs, tick, &mut failures);
    writeln!(
        report,
        "\n## Idle\n\nStarted with the product's timings (poll every 10 s, heartbeat every 30 s); measured for {} s from the first healthy heartbeat, or from the confirm of one rotation. CPU in the window is the sum of the threads' run time from /proc/PID/task/*/schedstat (nanoseconds), or, marked \"(ticks)\", utime+stime from /proc/PID/stat in 10 ms ticks when a thread started or ended in the window; start-up CPU is in ticks. RSS is VmRSS from /proc/PID/status; \"of which anonymous\" is RssAnon, the process's own memory, the rest being pages of its executable (clean, shared with the page cache); peak is VmHWM.\n",
        s.idle.as_secs()
    )
    .unwrap();
    writeln!(
        report,
        "| provider | agent | before the window | RSS KiB | of which anonymous | PSS KiB | peak RSS KiB | CPU ms in window | % of one core | threads | HTTP calls in window | start-up CPU ms |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    .unwrap();
    for r in &idle {
        writeln!(
            report,
            "| {} | {} | {} | {} | {} | {} | {} | {:.1}{} | {:.3} | {} | {} | {:.0} |",
            r.provider,
            r.agent.name(),
            if r.rotated {
                "one rotation"
            } else {
                "start-up only"
            },
            r.rss_kib,
            r.anon_kib,
            r.pss_kib,
            r.hwm_kib,
            r.cpu_ms,
            if r.cpu_source == "ticks" {
                " (ticks)"
            } else {
                ""
            },
            r.cpu_ms / ms(r.window) * 100.0,
            r.threads,
            r.calls,
            r.startup_cpu_ms
        )
        .unwrap();
    }

    let mut rotations = Vec::new();
    let mut floors = Vec::new();
    for subject in &dbs {
        let name = subject.name;
        floors.push((
            name,
            subject.connection_kind(Agent::Ours),
            summarize(&login_floor(subject.db(Agent::Ours), 20)),
        ));
        rotations.push(measure_rotations(&s, subject, Agent::Ours, s.rotations));
        if s.official.is_some() {
            let what = format!("{name}, rotations");
            rotations.extend(attempt(Agent::Official, &what, &mut failures, || {
                measure_rotations(&s, subject, Agent::Official, s.official_rotations)
            }));
        }
    }
    writeln!(
        report,
        "\n## Rotation latency\n\nmedian / p95 in ms. apply, verify, confirm and job come from our agent's log line (job = the sync config reaching the worker to the confirm acknowledged). fetch→confirm is seen from the fake control plane: the sync config carrying the rotation leaves it, the confirm arrives; it is the one number both agents share. Our agent polls every 100 ms here, the official one every 5 s (its floor), so pending→confirm mostly measures the poll interval.\n"
    )
    .unwrap();
    writeln!(
        report,
        "| provider | agent | n | apply | verify | confirm | job | fetch→confirm | pending→confirm | RSS after KiB | peak RSS KiB | threads |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    .unwrap();
    for r in &rotations {
        let l = r.logged.as_ref();
        let col = |f: fn(&Logged) -> &Vec<f64>| show(l.and_then(|l| summarize(f(l))));
        writeln!(
            report,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.provider,
            r.agent.name(),
            r.n,
            col(|l| &l.apply),
            col(|l| &l.verify),
            col(|l| &l.confirm),
            col(|l| &l.job),
            show(summarize(&r.fetch_to_confirm)),
            show(summarize(&r.pending_to_confirm)),
            r.rss_after_kib,
            r.hwm_kib,
            r.threads_after,
        )
        .unwrap();
    }
    writeln!(
        report,
        "\nA bare login as the managed user from the bench process (fresh connection, full authentication), the floor for verify:\n"
    )
    .unwrap();
    writeln!(
        report,
        "| provider | connection | login ms (median / p95, n = 20) |\n|---|---|---:|"
    )
    .unwrap();
    for (name, connection, floor) in &floors {
        writeln!(report, "| {name} | {connection} | {} |", show(*floor)).unwrap();
    }

    if !failures.is_empty() {
        writeln!(report, "\n## Not measured\n").unwrap();
        for f in &failures {
            writeln!(report, "- {f}").unwrap();
        }
    }
    budgets(&mut report, &s, &idle, &rotations);
    println!("\n{report}");
    if let Some(out) = &s.out {
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(out, &report).unwrap();
        eprintln!("[bench] written to {}", out.display());
    }
}
