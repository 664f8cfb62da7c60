//! The rotation engine: turns a sync config into database changes and control-plane calls
//! so that every rotation ends confirmed (database = new value) or rejected (database = old
//! value), and so that whatever the journal says was in flight is finished first.
//!
//! This file holds the engine's state and [`Engine::handle_sync`], which dispatches a job
//! to the concern that handles it, each in a file of its own:
//! - `rotate.rs`: a new pending rotation: snapshot → journal → apply → verify → confirm,
//!   or roll back → reject;
//! - `settle.rs`: what the journal holds: a journaled rotation reconciled with what the
//!   server says now, the 404/403 undo, a damaged journal;
//! - `restore.rs`: the one [`Engine::restore_snapshot`] the rollback, the settlement and
//!   the undo share, and making the live value log in;
//! - `ack.rs`: the confirm and reject calls and their retries;
//! - `drift.rs`: the idle check that the live value still logs in (its rules, pure, in
//!   `drift_watch.rs`).
//!
//! The engine talks to the server through [`ControlPlane`] and opens databases through
//! [`Databases`], so its unit tests (`tests/`) run every journal phase against fakes.
//! It runs on the worker thread only; it is the only code that drives a `Provider`.

mod ack;
mod databases;
mod drift;
pub mod drift_watch;
mod restore;
mod rotate;
mod settle;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::api::{ApiError, SyncConfig};
use crate::localconfig::TargetSource;
use crate::providers::{Provider, ProviderError, Target};
use crate::secret::{Credential, FieldNames, Secret, ValueError, credential_from_value};

use super::control_plane::ControlPlane;
use super::journal::{Journal, JournalError, JournaledTarget, Loaded};
use super::shutdown::Shutdown;
use super::status::{Outcome, RotationRecord, StatusBoard, unix_now};

pub use ack::ACK_BACKOFF;
pub use databases::{Databases, Drivers};
pub use drift_watch::DriftPolicy;
use drift_watch::DriftWatch;

/// Why a step of a rotation failed. The message is what the server and the log are told.
#[derive(Debug)]
pub enum StepError {
    Api(ApiError),
    Db(ProviderError),
    Journal(JournalError),
    Value(ValueError),
    /// A check after a change found the database not as expected.
    Mismatch(String),
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepError::Api(e) => write!(f, "{e}"),
            StepError::Db(e) => write!(f, "{e}"),
            StepError::Journal(e) => {
                write!(f, "{e}")?;
                if let Some(s) = std::error::Error::source(e) {
                    write!(f, ": {s}")?;
                }
                Ok(())
            }
            StepError::Value(e) => write!(f, "{e}"),
            StepError::Mismatch(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for StepError {}

/// `?` turns each layer's error into the step error that wraps it.
macro_rules! step_error_from {
    ($($variant:ident($error:ty)),* $(,)?) => {$(
        impl From<$error> for StepError {
            fn from(e: $error) -> Self {
                StepError::$variant(e)
            }
        }
    )*};
}

step_error_from!(
    Api(ApiError),
    Db(ProviderError),
    Journal(JournalError),
    Value(ValueError),
);

/// What an [`Engine`] is built from.
pub struct EngineSettings {
    /// The server: live values, confirm and reject, and the heartbeat a drift report sends.
    pub cp: Arc<dyn ControlPlane>,
    /// How databases are opened: the real drivers, or a test's fake.
    pub databases: Box<dyn Databases>,
    pub secret_id: String,
    /// What the heartbeat reports; the engine sets its worker error and records rotations.
    pub board: Arc<StatusBoard>,
    /// A stop cuts the waits between acknowledgement retries short.
    pub shutdown: Arc<Shutdown>,
    /// The start-up target and field names.
    pub target: Target,
    pub fields: FieldNames,
    pub journal: Journal,
    /// Where fresh connection details come from; `None` keeps the start-up target.
    pub source: Option<TargetSource>,
    /// How drift is watched for.
    pub drift: DriftPolicy,
    /// The wait before a confirm or reject is sent again, doubling ([`ACK_BACKOFF`]).
    pub ack_backoff: Duration,
}

/// The rotation id a drift repair journals under: no rotation on the server has it, so a
/// restart that finds it settles the database on the live value.
pub const DRIFT_REPAIR_ID: &str = "drift-repair";

/// How often a running agent prunes set-aside damaged journals.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Everything a rotation needs, owned by the worker thread. `settings.target` and
/// `settings.fields` follow connection-detail changes in later sync configs.
pub struct Engine {
    settings: EngineSettings,
    /// The last rotation this process finished, and when: a sync config fetched before
    /// then may still show it as pending.
    finished: Option<(String, Instant)>,
    checked_any_password_works: bool,
    /// The last job failed: idle polls re-check the database before reporting healthy.
    unhealthy: bool,
    /// When the current job reached the worker, for the timing in the log.
    job_started: Instant,
    /// Drift: when the next check is due and what is reported meanwhile (drift_watch.rs).
    drift: DriftWatch,
    /// When set-aside damaged journals were last pruned.
    pruned_at: Option<Instant>,
}

impl Engine {
    pub fn new(settings: EngineSettings) -> Self {
        Engine {
            drift: DriftWatch::new(settings.drift, Instant::now()),
            pruned_at: None,
            settings,
            finished: None,
            checked_any_password_works: false,
            unhealthy: false,
            job_started: Instant::now(),
        }
    }

    /// The start-up check: the admin can log in and manage users.
    pub fn check(&self) -> Result<(), ProviderError> {
        let mut db = self.open()?;
        db.check_admin()
    }

    /// Acts on one sync config: first finish what the journal holds, then start a new
    /// pending rotation. Returns how the last rotation it acted on ended (`None`: nothing
    /// was pending). Errors are reported to the status board and logged once; the next
    /// poll tries again.
    ///
    /// A reported problem stays until a later job succeeds and a fresh database check
    /// passes, so a 30 s heartbeat cannot miss it and "healthy" means the database works.
    /// A rejection or an outstanding acknowledgement is such a problem; each was logged
    /// where it happened.
    pub fn handle_sync(&mut self, sync: &SyncConfig, fetched_at: Instant) -> Option<Outcome> {
        self.job_started = Instant::now();
        let board = self.settings.board.clone();
        match self.act_on_sync(sync, fetched_at) {
            Ok(outcome @ Some(Outcome::Rejected | Outcome::AwaitingAck)) => outcome,
            Ok(outcome) if self.drift.report().is_some() => {
                board.set_worker_error(self.drift.report().map(str::to_owned));
                outcome
            }
            Ok(outcome) => {
                if !self.unhealthy {
                    board.set_worker_error(None);
                    return outcome;
                }
                match self.check() {
                    Ok(()) => {
                        log::info!(
                            "secret {}: database check passes again",
                            self.settings.secret_id
                        );
                        self.unhealthy = false;
                        board.set_worker_error(None);
                    }
                    Err(e) => board.set_worker_error(Some(format!("database check failed: {e}"))),
                }
                outcome
            }
            Err(e) => {
                let msg = e.to_string();
                log::error!(
                    "secret {}: {msg}; will try again on the next poll",
                    self.settings.secret_id
                );
                self.report_failure(&msg);
                None
            }
        }
    }

    /// The dispatch: the journal (damaged: settle.rs; an entry: settle.rs), then a pending
    /// rotation (rotate.rs), else the drift check when due (drift.rs).
    fn act_on_sync(
        &mut self,
        sync: &SyncConfig,
        fetched_at: Instant,
    ) -> Result<Option<Outcome>, StepError> {
        self.update_target(sync);
        self.prune_damaged_journals_if_due();
        let mut outcome = None;
        let journaled = match self.settings.journal.load_for(&self.settings.secret_id)? {
            Loaded::Entry(entry) => Some(*entry),
            Loaded::Damaged { why } => {
                self.recover_from_damaged_journal(sync, &why)?;
                None
            }
            Loaded::Empty => None,
        };
        if let Some(entry) = journaled {
            let settled = self.reconcile(entry, sync)?;
            outcome = Some(settled);
            // A rejection ends the job, as does an acknowledgement still outstanding:
            // this sync config was fetched before the server heard, so a rotation it
            // shows as pending is not news.
            if matches!(settled, Outcome::Rejected | Outcome::AwaitingAck)
                || self.settings.journal.load()?.is_some()
            {
                return Ok(outcome);
            }
        }
        let Some(pending) = sync.pending() else {
            if outcome.is_none() {
                self.check_drift_if_due(sync)?;
            }
            return Ok(outcome);
        };
        if let Some((id, at)) = &self.finished
            && *id == pending.id
            && fetched_at <= *at
        {
            return Ok(outcome);
        }
        self.rotate(&pending, &sync.managed_username).map(Some)
    }

    /// Adopts the connection details of `sync` when they differ from the current ones.
    fn update_target(&mut self, sync: &SyncConfig) {
        let Some(source) = &self.settings.source else {
            return;
        };
        match source.resolve(sync) {
            Ok((target, fields))
                if target != self.settings.target || fields != self.settings.fields =>
            {
                log::info!(
                    "secret {}: connection details changed; now {} at {} as admin \"{}\"",
                    self.settings.secret_id,
                    target.kind.display_name(),
                    target.endpoint(),
                    target.admin_user
                );
                self.settings.target = target;
                self.settings.fields = fields;
            }
            Ok(_) => {}
            Err(e) => log::warn!(
                "secret {}: keeping the previous connection details; the new sync config is unusable: {e}",
                self.settings.secret_id
            ),
        }
    }

    /// Set-aside damaged journals are pruned at the first job and hourly after it
    /// (`journal::DAMAGED_RETENTION`).
    fn prune_damaged_journals_if_due(&mut self) {
        if self.pruned_at.is_some_and(|at| at.elapsed() < PRUNE_EVERY) {
            return;
        }
        self.pruned_at = Some(Instant::now());
        let retention = super::journal::DAMAGED_RETENTION;
        for path in self.settings.journal.prune_damaged(unix_now()) {
            log::info!(
                "secret {}: deleted {}, a damaged journal older than the retention (the newest {} and {} days are kept)",
                self.settings.secret_id,
                path.display(),
                retention.keep,
                retention.max_age.as_secs() / 86_400
            );
        }
    }

    fn open(&self) -> Result<Box<dyn Provider>, ProviderError> {
        self.settings.databases.open(&self.settings.target)
    }

    /// The credential a secret value describes; `user_if_unnamed` when the value names no
    /// user, and when that is empty too, the database's implicit user (Redis: `default`).
    fn credential(&self, value: &Secret, user_if_unnamed: &str) -> Result<Credential, ValueError> {
        let fallback = match user_if_unnamed {
            "" => self
                .settings
                .target
                .kind
                .implicit_user()
                .unwrap_or_default(),
            named => named,
        };
        credential_from_value(value.expose(), &self.settings.fields, fallback)
    }

    /// The secret's live value, read from the server now, as the credential it describes
    /// ([`Engine::credential`]). A failed read is [`StepError::Api`], a value that names
    /// no usable credential [`StepError::Value`].
    fn live_credential(&self, user_if_unnamed: &str) -> Result<Credential, StepError> {
        let live = self.settings.cp.live_value(&self.settings.secret_id)?;
        Ok(self.credential(&live, user_if_unnamed)?)
    }

    /// Marks the agent unhealthy before the server hears of a failure, so that no heartbeat
    /// sent after the server recorded the rejection can still say "healthy".
    fn report_failure(&mut self, message: &str) {
        self.unhealthy = true;
        self.settings
            .board
            .set_worker_error(Some(message.to_owned()));
    }

    /// Records a finished rotation: for the state file, and so that a stale sync config
    /// showing it as pending does not start it again.
    fn finish(&mut self, rotation_id: &str, outcome: Outcome, error: &str) {
        self.finished = Some((rotation_id.to_owned(), Instant::now()));
        self.settings.board.record_rotation(RotationRecord {
            rotation_id: rotation_id.to_owned(),
            outcome,
            at: unix_now(),
            error: error.to_owned(),
        });
    }
}

/// Where a rotation runs, for its journal entry.
fn journaled_target(target: &Target) -> JournaledTarget {
    JournaledTarget {
        provider: target.kind.as_str().to_owned(),
        host: target.host.clone(),
        port: target.port,
        database: target.database.clone(),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
