//! The agent runtime: start-up (sync config, database check, first heartbeat), then one
//! poll thread, one heartbeat thread and one worker thread until a stop is requested.
//!
//! Start-up order: PID file, sync config (retrying while the control plane is
//! unreachable), database check on the worker, first heartbeat, then the first sync
//! config goes to the worker, which finishes any journaled rotation before a new one.

pub mod drift;
pub mod heartbeat;
pub mod journal;
pub mod poller;
pub mod reload;
pub mod rotation;
pub mod sd_notify;
pub mod shutdown;
pub mod status;
pub mod summary;
pub mod watch;
pub mod worker;

use std::fmt;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::api::{ApiClient, ApiError, ErrorClass, SyncConfig};
use crate::files::AgentFiles;
use crate::localconfig::{LocalConfig, LocalConfigError, TargetError, TargetSource};
use crate::pidfile::PidFileError;
use crate::providers::{DbTimeouts, ProviderError};
use crate::{fsutil, memory, pidfile};

use heartbeat::{Heartbeat, HeartbeatSettings};
use journal::Journal;
use poller::{Poller, PollerSettings};
use rotation::{EngineSettings, RotationEngine};
use sd_notify::Notifier;
use shutdown::{Event, Shutdown, StopReason};
use status::{StateFile, StatusBoard, unix_now};
use watch::{ThreadWatch, fail_point};
use worker::Job;

/// Timing of the runtime. Defaults are the product's; tests shorten them.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Overrides the server's poll interval (and its 5 s floor). Tests only.
    pub poll_override: Option<Duration>,
    pub heartbeat: Duration,
    pub db: DbTimeouts,
    /// A job running longer than this turns the heartbeat to "error".
    pub job_deadline: Duration,
    /// How often an idle agent checks that the live value still logs in, and whether it
    /// repairs what it finds.
    pub drift: rotation::DriftPolicy,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            poll_override: None,
            heartbeat: crate::defaults::HEARTBEAT,
            db: DbTimeouts::default(),
            job_deadline: crate::defaults::JOB_DEADLINE,
            drift: rotation::DriftPolicy::default(),
        }
    }
}

/// What the three threads share: the control plane, the secret they work for, the status
/// board the heartbeat reports, the stop signal, and systemd's notification socket.
#[derive(Clone)]
pub struct Context {
    pub api: Arc<ApiClient>,
    pub secret_id: String,
    pub board: Arc<StatusBoard>,
    pub shutdown: Arc<Shutdown>,
    pub notifier: Arc<Notifier>,
}

/// What `run` needs besides the API and the files.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub timing: Timing,
    /// Test-only: a thread panics at this named point (debug builds only).
    pub test_panic_at: Option<String>,
}

/// Why the agent could not start or keep running.
#[derive(Debug)]
pub enum AgentError {
    /// The sync config could not be fetched at start-up.
    Api(ApiError),
    /// Another machine holds the agent lock.
    Locked(ApiError),
    /// 404/403 at start-up.
    SecretGone(ApiError),
    /// Local config and sync config cannot name a usable database.
    Target(TargetError),
    /// The local config exists but cannot be read.
    LocalConfig(LocalConfigError),
    /// The database check at start-up failed.
    Database(ProviderError),
    /// The PID file: another local agent runs for this secret, or it cannot be written.
    PidFile(PidFileError),
    /// A file or thread could not be created.
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentError::Api(e) | AgentError::Locked(e) | AgentError::SecretGone(e) => {
                write!(f, "{e}")
            }
            AgentError::Target(e) => write!(f, "{e}"),
            AgentError::LocalConfig(e) => write!(f, "{e}"),
            AgentError::Database(e) => write!(f, "database check failed: {e}"),
            AgentError::PidFile(e) => write!(f, "{e}"),
            AgentError::Io { what, .. } => write!(f, "cannot {what}"),
        }
    }
}

impl std::error::Error for AgentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AgentError::Api(e) | AgentError::Locked(e) | AgentError::SecretGone(e) => e.source(),
            AgentError::LocalConfig(e) => e.source(),
            AgentError::PidFile(e) => e.source(),
            AgentError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Fetches the sync config, waiting out transient control-plane failures.
///
/// Under systemd the first retry already reports READY=1 (with the error as its status):
/// waiting for the control plane is part of the agent's normal work, and must not run
/// into the unit's `TimeoutStartSec`.
fn fetch_sync_config(
    api: &ApiClient,
    secret_id: &str,
    shutdown: &Shutdown,
    notifier: &Notifier,
) -> Result<Option<SyncConfig>, AgentError> {
    let mut failures = 0;
    loop {
        match api.sync_config(secret_id) {
            Ok(c) => return Ok(Some(c)),
            Err(e) => match e.class() {
                ErrorClass::Locked => return Err(AgentError::Locked(e)),
                ErrorClass::Terminal => return Err(AgentError::SecretGone(e)),
                ErrorClass::Other => return Err(AgentError::Api(e)),
                ErrorClass::ClockSkew => {
                    // Exiting would have the service manager retry every few seconds.
                    log::error!(
                        "secret {secret_id}: {e}; retrying in {} s",
                        poller::CLOCK_SKEW_RETRY.as_secs()
                    );
                    if shutdown.wait_timeout(poller::CLOCK_SKEW_RETRY) {
                        return Ok(None);
                    }
                }
                ErrorClass::Retryable => {
                    failures += 1;
                    let delay = poller::backoff(Duration::from_secs(2), failures)
                        .min(Duration::from_secs(30));
                    log::warn!(
                        "secret {secret_id}: {e}; retrying in {} s",
                        delay.as_secs().max(1)
                    );
                    notifier.watchdog();
                    notifier.ready(&format!(
                        "waiting for the control plane ({e}); retrying in {} s",
                        delay.as_secs().max(1)
                    ));
                    if shutdown.wait_timeout(delay) {
                        return Ok(None);
                    }
                }
            },
        }
    }
}

/// The heartbeat reports a database call that has waited a third of the statement timeout.
fn slow_call(db: DbTimeouts) -> Duration {
    db.statement / 3
}

/// How long a stop waits for a job in flight: one connect plus one statement, the longest
/// a single database call can take. README's "Stopping" documents this bound.
pub fn stop_grace(db: DbTimeouts) -> Duration {
    db.connect + db.statement + Duration::from_secs(2)
}

/// `10 s`, or `0.04 s` for the short intervals of tests.
fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

/// Waits until `thread` has finished, for at most `limit`.
fn wait_finished(thread: &std::thread::JoinHandle<()>, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while !thread.is_finished() {
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Waits up to `deadline` for the worker's answer, keeping systemd's watchdog fed.
fn wait_answer<T>(
    answer: &mpsc::Receiver<T>,
    deadline: Duration,
    notifier: &Notifier,
) -> Option<T> {
    let end = Instant::now() + deadline;
    loop {
        notifier.watchdog();
        let left = end.saturating_duration_since(Instant::now());
        match answer.recv_timeout(left.min(Duration::from_secs(10))) {
            Ok(v) => return Some(v),
            Err(mpsc::RecvTimeoutError::Timeout) if !left.is_zero() => continue,
            Err(_) => return None,
        }
    }
}

/// Runs the agent for one secret until a stop is requested. Returns why it stopped.
pub fn run(
    api: ApiClient,
    files: &AgentFiles,
    options: RunOptions,
    shutdown: Arc<Shutdown>,
) -> Result<StopReason, AgentError> {
    let RunOptions {
        timing,
        test_panic_at,
    } = options;
    memory::limit_arenas();
    let test_panic_at_threads = test_panic_at.clone();
    let test_panic_at_main = test_panic_at.clone();
    let secret_id = files.secret_id().to_owned();
    let notifier = Arc::new(Notifier::from_env());
    fsutil::ensure_private_dir(files.dir()).map_err(|source| AgentError::Io {
        what: format!("create {}", files.dir().display()),
        source,
    })?;
    let _pid = pidfile::PidFile::acquire(&files.pid(), &secret_id).map_err(AgentError::PidFile)?;
    let config = files.local_config();
    if let Some(w) = config.warning() {
        log::warn!("secret {secret_id}: {w}");
    }
    let local = LocalConfig::load(&config.path).map_err(AgentError::LocalConfig)?;
    if local.is_some() {
        log::info!(
            "secret {secret_id}: using connection details from {}",
            config.path.display()
        );
    }
    let api = Arc::new(api);

    log::info!(
        "secret {secret_id}: fetching the sync config from {}",
        api.base_url()
    );
    notifier.status("fetching the sync config");
    let Some(sync) = fetch_sync_config(&api, &secret_id, &shutdown, &notifier)? else {
        notifier.stopping("stopped before start-up finished");
        return Ok(StopReason::Signal);
    };
    let source = TargetSource::new(local, timing.db);
    let (target, fields) = source.resolve(&sync).map_err(AgentError::Target)?;
    if let Some(w) = target.cleartext_warning() {
        log::warn!("secret {secret_id}: {w}");
    }
    let (asked, warning) = sync.poll_interval_checked();
    if let Some(w) = warning {
        log::warn!("secret {secret_id}: {w}");
    }
    let asked_seconds = sync.poll_interval_seconds;
    let interval = timing.poll_override.unwrap_or(asked);

    let board = Arc::new(
        StatusBoard::new(
            Some(files.state()),
            timing.job_deadline,
            StateFile {
                pid: std::process::id(),
                started_at: unix_now(),
                provider_type: target.kind.as_str().to_owned(),
                endpoint: target.endpoint(),
                heartbeat_interval_ms: timing.heartbeat.as_millis() as u64,
                ..StateFile::load_or_default(&files.state())
            },
        )
        .with_slow_call(slow_call(timing.db)),
    );
    let ctx = Context {
        api: api.clone(),
        secret_id: secret_id.clone(),
        board: board.clone(),
        shutdown: shutdown.clone(),
        notifier: notifier.clone(),
    };
    let engine = RotationEngine::new(EngineSettings {
        ctx: ctx.clone(),
        target: target.clone(),
        fields,
        journal: Journal::new(files.journal()),
        source: Some(source.clone()),
        drift: timing.drift,
    });
    let (jobs, job_rx) = mpsc::sync_channel::<Job>(0);
    let worker = worker::spawn(engine, job_rx, ctx.clone(), test_panic_at).map_err(|source| {
        AgentError::Io {
            what: "start the worker thread".into(),
            source,
        }
    })?;

    notifier.status(&format!(
        "checking the {} connection to {}",
        target.kind.display_name(),
        target.endpoint()
    ));
    log::info!(
        "secret {secret_id}: testing the {} connection to {}",
        target.kind.display_name(),
        target.endpoint()
    );
    let (reply, answer) = mpsc::sync_channel(1);
    let checked = jobs
        .send(Job::Check(reply))
        .ok()
        .and_then(|()| wait_answer(&answer, timing.job_deadline, &notifier))
        .unwrap_or_else(|| {
            Err(ProviderError::new(
                &target,
                crate::providers::FailureKind::Timeout,
                "checking the connection",
                format!("no answer within {} s", timing.job_deadline.as_secs()),
            ))
        });
    if let Err(e) = checked {
        board.set_worker_error(Some(format!("database check failed: {e}")));
        notifier.stopping(&format!("database check failed: {e}"));
        Heartbeat::beat(&ctx);
        if e.kind != crate::providers::FailureKind::Timeout {
            // A worker stuck in a driver cannot be joined; it ends with the process.
            drop(jobs);
            let _ = worker.join();
        }
        return Err(AgentError::Database(e));
    }
    log::info!(
        "secret {secret_id}: connection OK; admin \"{}\" can manage users",
        target.admin_user
    );
    Heartbeat::beat(&ctx);

    let heartbeat = Heartbeat::new(HeartbeatSettings {
        ctx: ctx.clone(),
        interval: timing.heartbeat,
        test_panic_at: test_panic_at_threads.clone(),
    })
    .spawn()
    .map_err(|source| AgentError::Io {
        what: "start the heartbeat thread".into(),
        source,
    })?;

    // The first sync config: finish the journal, then any pending rotation.
    let _ = jobs.send(Job::Sync {
        config: Box::new(sync),
        fetched_at: Instant::now(),
    });

    let poller = Poller::new(PollerSettings {
        ctx: ctx.clone(),
        interval,
        interval_override: timing.poll_override,
        asked_seconds,
        test_panic_at: test_panic_at_threads,
        jobs,
    })
    .spawn()
    .map_err(|source| AgentError::Io {
        what: "start the poll thread".into(),
        source,
    })?;
    let drift = match (timing.drift.interval, timing.drift.repair) {
        (None, _) => "drift check off".to_owned(),
        (Some(d), true) => format!("drift check every {}, repairing", seconds(d)),
        (Some(d), false) => format!("drift check every {}, detect only", seconds(d)),
    };
    log::info!(
        "secret {secret_id}: agent running via {} (polling every {}, heartbeat every {}, {drift})",
        target.kind.display_name(),
        seconds(interval),
        seconds(timing.heartbeat),
    );

    let _main_watch = ThreadWatch::new("the main thread", ctx.clone());
    notifier.ready(&summary::status_line(
        &board.health(),
        board.state().last_rotation.as_ref(),
        unix_now(),
    ));

    fail_point(test_panic_at_main.as_deref(), "main");
    let mut reloads_seen = 0;
    let reason = loop {
        match shutdown.wait_event(&mut reloads_seen) {
            Event::Stop(reason) => break reason,
            Event::Reload => {
                notifier.reloading();
                let _ = reload::reload(&secret_id, &files.local_config().path, &source);
                notifier.reloaded(&summary::status_line(
                    &board.health(),
                    board.state().last_rotation.as_ref(),
                    unix_now(),
                ));
            }
        }
    };
    notifier.stopping(&match board.job_running_for() {
        Some(_) => "stopping; finishing the job in flight".to_owned(),
        None => "stopping".to_owned(),
    });
    log::info!("secret {secret_id}: stopping ({reason}); letting any rotation in flight finish");
    // A crashed thread never gets here: watch.rs ends the process from its panic.
    let _ = poller.join();
    let _ = heartbeat.join();
    if reason == StopReason::WorkerHung {
        // The worker is blocked inside a database driver; it ends with the process.
        return Ok(reason);
    }
    // Every database call ends within its timeout, but a job against a hung database makes
    // several in a row; the stop waits for one call's worth, then leaves the rotation to
    // the journal (the next start finishes it).
    let grace = stop_grace(timing.db);
    if !wait_finished(&worker, grace) {
        log::warn!(
            "secret {secret_id}: the database job did not end within {} s of the stop; exiting now, any rotation in flight stays journaled and the next start finishes it",
            grace.as_secs()
        );
        return Ok(reason);
    }
    let _ = worker.join();
    Ok(reason)
}
