//! Start-up: everything before the agent serves. In order: the PID file, the local
//! config, the sync config (retrying while the control plane is unreachable), the worker
//! and its database check, the first heartbeat, then the heartbeat thread, the first sync
//! config to the worker (journal first, then any pending rotation) and the poll thread.
//! Each step that fails ends start-up with an [`AgentError`] that names it.

use std::fmt;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::api::{ApiClient, ApiError, ErrorClass, SyncConfig};
use crate::files::AgentFiles;
use crate::localconfig::{LocalConfig, LocalConfigError, TargetError, TargetSource};
use crate::pidfile::{PidFile, PidFileError};
use crate::providers::{FailureKind, ProviderError, Target};
use crate::{fsutil, memory};

use super::context::{Context, Timing};
use super::engine::{Drivers, Engine, EngineSettings};
use super::heartbeat::{Heartbeat, HeartbeatSettings};
use super::journal::Journal;
use super::poller::{self, Poller, PollerSettings};
use super::sd_notify::Notifier;
use super::shutdown::Shutdown;
use super::status::{StateFile, StatusBoard, unix_now};
use super::worker::{self, Job};

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

/// A thread that could not be started.
fn thread_error(what: &str) -> impl FnOnce(std::io::Error) -> AgentError + '_ {
    move |source| AgentError::Io {
        what: format!("start the {what} thread"),
        source,
    }
}

/// The started agent: what the main thread serves with, and the threads it joins.
pub struct Running {
    pub ctx: Context,
    pub timing: Timing,
    /// Where a reload puts the local config it reads.
    pub source: TargetSource,
    pub worker: JoinHandle<()>,
    pub heartbeat: JoinHandle<()>,
    pub poller: JoinHandle<()>,
    /// Held until the agent exits: the lock that says it runs.
    _pid: PidFile,
}

/// What start-up has read before any thread runs.
struct Prepared {
    pid: PidFile,
    sync: SyncConfig,
    source: TargetSource,
    target: Target,
    fields: crate::secret::FieldNames,
}

/// Starts the agent. `Ok(None)`: a stop was requested before start-up finished.
pub fn start_up(
    api: ApiClient,
    files: &AgentFiles,
    timing: Timing,
    shutdown: Arc<Shutdown>,
) -> Result<Option<Running>, AgentError> {
    memory::limit_arenas();
    let secret_id = files.secret_id().to_owned();
    let notifier = Arc::new(Notifier::from_env());
    let api = Arc::new(api);
    let Some(prepared) = prepare(&api, files, &timing, &shutdown, &notifier)? else {
        notifier.stopping("stopped before start-up finished");
        return Ok(None);
    };
    let Prepared {
        pid,
        sync,
        source,
        target,
        fields,
    } = prepared;
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
        .with_slow_call(timing.slow_call()),
    );
    let ctx = Context {
        api: api.clone(),
        secret_id: secret_id.clone(),
        board: board.clone(),
        shutdown: shutdown.clone(),
        notifier: notifier.clone(),
    };
    let engine = Engine::new(EngineSettings {
        cp: api.clone(),
        databases: Box::new(Drivers),
        secret_id: secret_id.clone(),
        board: board.clone(),
        shutdown: shutdown.clone(),
        target: target.clone(),
        fields,
        journal: Journal::new(files.journal()),
        source: Some(source.clone()),
        drift: timing.drift,
        ack_backoff: super::engine::ACK_BACKOFF,
    });
    let (jobs, job_rx) = mpsc::sync_channel::<Job>(0);
    let worker = worker::spawn(engine, job_rx, ctx.clone()).map_err(thread_error("worker"))?;
    if let Err(e) = check_database(&ctx, &target, &jobs, timing.job_deadline) {
        if e.kind != FailureKind::Timeout {
            // A worker stuck in a driver cannot be joined; it ends with the process.
            drop(jobs);
            let _ = worker.join();
        }
        return Err(AgentError::Database(e));
    }
    Heartbeat::beat(&ctx);

    let heartbeat = Heartbeat::new(HeartbeatSettings {
        ctx: ctx.clone(),
        interval: timing.heartbeat,
    })
    .spawn()
    .map_err(thread_error("heartbeat"))?;

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
        jobs,
    })
    .spawn()
    .map_err(thread_error("poll"))?;
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
    Ok(Some(Running {
        ctx,
        timing,
        source,
        worker,
        heartbeat,
        poller,
        _pid: pid,
    }))
}

/// The PID file, the local config and the first sync config; `Ok(None)` when a stop came
/// while the control plane was being waited for.
fn prepare(
    api: &ApiClient,
    files: &AgentFiles,
    timing: &Timing,
    shutdown: &Shutdown,
    notifier: &Notifier,
) -> Result<Option<Prepared>, AgentError> {
    let secret_id = files.secret_id();
    fsutil::ensure_private_dir(files.dir()).map_err(|source| AgentError::Io {
        what: format!("create {}", files.dir().display()),
        source,
    })?;
    let pid = PidFile::acquire(&files.pid(), secret_id).map_err(AgentError::PidFile)?;
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
    log::info!(
        "secret {secret_id}: fetching the sync config from {}",
        api.base_url()
    );
    notifier.status("fetching the sync config");
    let Some(sync) = fetch_sync_config(api, secret_id, shutdown, notifier)? else {
        return Ok(None);
    };
    let source = TargetSource::new(local, timing.db);
    let (target, fields) = source.resolve(&sync).map_err(AgentError::Target)?;
    if let Some(w) = target.cleartext_warning() {
        log::warn!("secret {secret_id}: {w}");
    }
    Ok(Some(Prepared {
        pid,
        sync,
        source,
        target,
        fields,
    }))
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

/// The database check, run on the worker: the admin logs in and may manage users. A
/// failure is reported in a heartbeat before start-up ends with it.
fn check_database(
    ctx: &Context,
    target: &Target,
    jobs: &mpsc::SyncSender<Job>,
    deadline: Duration,
) -> Result<(), ProviderError> {
    let Context {
        secret_id,
        notifier,
        board,
        ..
    } = ctx;
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
        .and_then(|()| wait_answer(&answer, deadline, notifier))
        .unwrap_or_else(|| {
            Err(ProviderError::new(
                target,
                FailureKind::Timeout,
                "checking the connection",
                format!("no answer within {} s", deadline.as_secs()),
            ))
        });
    match checked {
        Ok(()) => {
            log::info!(
                "secret {secret_id}: connection OK; admin \"{}\" can manage users",
                target.admin_user
            );
            Ok(())
        }
        Err(e) => {
            board.set_worker_error(Some(format!("database check failed: {e}")));
            notifier.stopping(&format!("database check failed: {e}"));
            Heartbeat::beat(ctx);
            Err(e)
        }
    }
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

/// `10 s`, or `0.04 s` for the short intervals of tests.
fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}
