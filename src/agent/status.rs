//! What the agent knows about its own health, shared by its threads: the last poll error,
//! the last worker error, whether a job is running (and since when), and the outcome of the
//! last rotation. The heartbeat reports from it; `list` reads the copy kept in the state file.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::api::{Health, HeartbeatStatus};
use crate::fsutil;

use super::control_plane::ControlPlane;

/// How a job that acted on a rotation ended. A clean rejection is an outcome, not an
/// error: the database is back on the old value and the server knows. The state file
/// records the finished ones by their serde names (`confirmed`, `rejected`,
/// `reconciled`); the variants are declared in the order of those names, which is the
/// order of the state file's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// Applied, verified and confirmed: the database holds the new value.
    Confirmed,
    /// A journaled rotation the server no longer holds: the database matches the live value.
    Reconciled,
    /// Rejected with the database on the old value (or never touched).
    Rejected,
    /// The database is settled but the server has not acknowledged yet; the journal keeps
    /// the rotation and the next poll settles it. Not a finished rotation: never recorded.
    AwaitingAck,
}

impl Outcome {
    /// Every outcome a finished rotation is recorded with ([`RotationRecord::outcome`]), so
    /// `list -o prometheus` can start each counter at 0.
    pub const FINISHED: [Outcome; 3] = [Outcome::Confirmed, Outcome::Rejected, Outcome::Reconciled];

    /// The serde name: what the state file, `list` and the metrics labels say.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Confirmed => "confirmed",
            Outcome::Reconciled => "reconciled",
            Outcome::Rejected => "rejected",
            Outcome::AwaitingAck => "awaitingAck",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The last rotation this agent finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RotationRecord {
    pub rotation_id: String,
    /// One of [`Outcome::FINISHED`]; `reconciled`: finished after a restart or a server reset.
    pub outcome: Outcome,
    pub at: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// The last heartbeat sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatRecord {
    pub at: u64,
    pub status: Health,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// Whether the server accepted it.
    pub delivered: bool,
}

/// The state file `agents/{id}.state.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StateFile {
    pub pid: u32,
    pub started_at: u64,
    pub provider_type: String,
    pub endpoint: String,
    /// The running agent's heartbeat interval, so `status` can tell a stale heartbeat.
    #[serde(skip_serializing_if = "is_zero")]
    pub heartbeat_interval_ms: u64,
    pub last_heartbeat: Option<HeartbeatRecord>,
    pub last_rotation: Option<RotationRecord>,
    /// Rotations finished per outcome, over every run (for `list -o prometheus`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rotations: BTreeMap<Outcome, u64>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl StateFile {
    /// The state file at `path`; `Ok(None)` when there is none.
    pub fn load(path: &std::path::Path) -> Result<Option<StateFile>, fsutil::JsonFileError> {
        fsutil::load_json(path)
    }

    /// The state file at `path`, or an empty one when it is missing or unusable (said
    /// with a warning: the file is informational and the agent rewrites it).
    pub fn load_or_default(path: &std::path::Path) -> StateFile {
        Self::load(path)
            .unwrap_or_else(|e| {
                log::warn!("ignoring the state file: {e}");
                None
            })
            .unwrap_or_default()
    }
}

#[derive(Debug, Default)]
struct Inner {
    poll_error: Option<String>,
    worker_error: Option<String>,
    worker_dead: Option<String>,
    job_started: Option<Instant>,
    file: StateFile,
}

/// Shared health and history of one running agent.
#[derive(Debug)]
pub struct StatusBoard {
    inner: Mutex<Inner>,
    state_path: Option<PathBuf>,
    /// A job running longer than this makes the heartbeat report an error.
    job_deadline: Duration,
    /// A database call waiting longer than this makes the heartbeat report an error.
    slow_call: Duration,
}

/// A database call unanswered for this long is reported, unless set otherwise.
const SLOW_CALL: Duration = Duration::from_secs(5);

pub use crate::clock::unix_now;

impl StatusBoard {
    pub fn new(state_path: Option<PathBuf>, job_deadline: Duration, file: StateFile) -> Self {
        let board = StatusBoard {
            inner: Mutex::new(Inner {
                file,
                ..Inner::default()
            }),
            state_path,
            job_deadline,
            slow_call: SLOW_CALL,
        };
        board.persist(&board.lock());
        board
    }

    /// Reports a database call that has waited longer than `d` (default 5 s).
    pub fn with_slow_call(mut self, d: Duration) -> Self {
        self.slow_call = d;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn persist(&self, inner: &Inner) {
        if let Some(path) = &self.state_path {
            let text = serde_json::to_vec_pretty(&inner.file).expect("state always serializes");
            if let Err(e) = fsutil::write_atomic(path, &text, fsutil::PRIVATE) {
                log::warn!("cannot write state file {}: {e}", path.display());
            }
        }
    }

    pub fn set_poll_error(&self, message: Option<String>) {
        self.lock().poll_error = message;
    }

    pub fn set_worker_error(&self, message: Option<String>) {
        self.lock().worker_error = message;
    }

    pub fn set_worker_dead(&self, message: String) {
        self.lock().worker_dead = Some(message);
    }

    pub fn job_started(&self) {
        self.lock().job_started = Some(Instant::now());
    }

    /// How long the current job has been running, if one is.
    pub fn job_running_for(&self) -> Option<Duration> {
        self.lock().job_started.map(|s| s.elapsed())
    }

    pub fn job_deadline(&self) -> Duration {
        self.job_deadline
    }

    pub fn job_finished(&self) {
        self.lock().job_started = None;
    }

    pub fn record_rotation(&self, record: RotationRecord) {
        let mut inner = self.lock();
        *inner.file.rotations.entry(record.outcome).or_default() += 1;
        inner.file.last_rotation = Some(record);
        self.persist(&inner);
    }

    /// A copy of what the state file holds.
    pub fn state(&self) -> StateFile {
        self.lock().file.clone()
    }

    pub fn record_heartbeat(&self, status: &HeartbeatStatus, delivered: bool) {
        let mut inner = self.lock();
        inner.file.last_heartbeat = Some(HeartbeatRecord {
            at: unix_now(),
            status: status.health(),
            error: status.message().to_owned(),
            delivered,
        });
        self.persist(&inner);
    }

    /// Sends one heartbeat now, saying [`StatusBoard::health`], and records it. A failed
    /// send is logged and recorded as not delivered; the next heartbeat tries again.
    pub fn send_heartbeat(&self, cp: &dyn ControlPlane, secret_id: &str) {
        let status = self.health();
        let delivered = match cp.heartbeat(secret_id, &status) {
            Ok(()) => true,
            Err(e) => {
                log::warn!("secret {secret_id}: {e}");
                false
            }
        };
        self.record_heartbeat(&status, delivered);
    }

    /// What the next heartbeat says: the most serious problem known, or healthy.
    pub fn health(&self) -> HeartbeatStatus {
        let inner = self.lock();
        if let Some(dead) = &inner.worker_dead {
            return HeartbeatStatus::Error(dead.clone());
        }
        if let Some(started) = inner.job_started {
            let running = started.elapsed();
            if running > self.job_deadline {
                return HeartbeatStatus::Error(format!(
                    "a rotation job has been running for {} s; the database may be hung",
                    running.as_secs()
                ));
            }
        }
        if let Some(waiting) = crate::providers::inflight::waiting_for()
            && waiting > self.slow_call
        {
            let at = if inner.file.endpoint.is_empty() {
                String::new()
            } else {
                format!(" at {}", inner.file.endpoint)
            };
            return HeartbeatStatus::Error(format!(
                "database{at} not answering for {} s; the call is abandoned after the statement timeout and retried on the next poll",
                waiting.as_secs()
            ));
        }
        match inner.worker_error.as_ref().or(inner.poll_error.as_ref()) {
            Some(e) => HeartbeatStatus::Error(e.clone()),
            None => HeartbeatStatus::Healthy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_problem_wins() {
        let b = StatusBoard::new(None, Duration::from_secs(60), StateFile::default());
        assert_eq!(b.health(), HeartbeatStatus::Healthy);
        b.set_poll_error(Some("poll".into()));
        assert_eq!(b.health(), HeartbeatStatus::Error("poll".into()));
        b.set_worker_error(Some("db".into()));
        assert_eq!(b.health(), HeartbeatStatus::Error("db".into()));
        b.set_worker_dead("panicked".into());
        assert_eq!(b.health(), HeartbeatStatus::Error("panicked".into()));
    }

    /// `list` reads state files written before the outcome and health were enums.
    #[test]
    fn state_files_keep_their_words() {
        let text = r#"{"pid":1,"startedAt":5,"providerType":"postgresql","endpoint":"h:5432",
            "lastHeartbeat":{"at":9,"status":"error","error":"x","delivered":true},
            "lastRotation":{"rotationId":"rot_1","outcome":"reconciled","at":7},
            "rotations":{"confirmed":2,"reconciled":1,"rejected":3}}"#;
        let state: StateFile = serde_json::from_str(text).unwrap();
        assert_eq!(state.last_heartbeat.as_ref().unwrap().status, Health::Error);
        assert_eq!(
            state.last_rotation.as_ref().unwrap().outcome,
            Outcome::Reconciled
        );
        assert_eq!(state.rotations[&Outcome::Rejected], 3);
        let again: serde_json::Value = serde_json::to_value(&state).unwrap();
        let before: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(again, before);
        // The counters keep their order on disk.
        let written = serde_json::to_string(&state.rotations).unwrap();
        assert_eq!(written, r#"{"confirmed":2,"reconciled":1,"rejected":3}"#);
        for o in Outcome::FINISHED {
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
    }

    #[test]
    fn a_job_past_its_deadline_is_an_error() {
        let b = StatusBoard::new(None, Duration::ZERO, StateFile::default());
        b.job_started();
        std::thread::sleep(Duration::from_millis(2));
        assert!(matches!(b.health(), HeartbeatStatus::Error(m) if m.contains("running")));
        b.job_finished();
        assert_eq!(b.health(), HeartbeatStatus::Healthy);
    }
}
