//! The rotation engine: turns a sync config into database changes and control-plane calls
//! so that every rotation ends confirmed (database = new value) or rejected (database = old
//! value), and so that whatever the journal says was in flight is finished first.
//!
//! Runs on the worker thread only; it is the only code that drives a [`Provider`].

use std::fmt;
use std::time::{Duration, Instant};

use crate::api::{ApiClient, ApiError, ErrorClass, PendingRotation, SyncConfig};
use crate::localconfig::TargetSource;
use crate::providers::{
    self, FailureKind, Provider, ProviderError, Refusal, StoredCredential, Target,
};
use crate::secret::{Credential, FieldNames, Secret, ValueError, credential_from_value, scrub};

use super::Context;
pub use super::drift::DriftPolicy;
use super::drift::{self, DriftWatch, Step};
use super::journal::{
    Journal, JournalEntry, JournalError, JournaledTarget, Loaded, Phase, Snapshot,
};
use super::status::{RotationRecord, unix_now};

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

/// How a job that acted on a rotation ended. A clean rejection is an outcome, not an
/// error: the database is back on the old value and the server knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Applied, verified and confirmed: the database holds the new value.
    Confirmed,
    /// Rejected with the database on the old value (or never touched).
    Rejected,
    /// A journaled rotation the server no longer holds: the database matches the live value.
    Reconciled,
    /// The database is settled but the server has not acknowledged yet; the journal keeps
    /// the rotation and the next poll settles it.
    AwaitingAck,
}

/// How many times a confirm or reject is sent within one job before waiting for the next poll.
const ACK_ATTEMPTS: u32 = 3;

/// What a [`RotationEngine`] is built from.
pub struct EngineSettings {
    pub ctx: Context,
    /// The start-up target and field names.
    pub target: Target,
    pub fields: FieldNames,
    pub journal: Journal,
    /// Where fresh connection details come from; `None` keeps the start-up target.
    pub source: Option<TargetSource>,
    /// How drift is watched for.
    pub drift: DriftPolicy,
}

/// The rotation id a drift repair journals under: no rotation on the server has it, so a
/// restart that finds it settles the database on the live value.
pub const DRIFT_REPAIR_ID: &str = "drift-repair";

/// Everything a rotation needs, owned by the worker thread. `settings.target` and
/// `settings.fields` follow connection-detail changes in later sync configs.
pub struct RotationEngine {
    settings: EngineSettings,
    /// The last rotation this process finished, and when: a sync config fetched before
    /// then may still show it as pending.
    finished: Option<(String, Instant)>,
    checked_any_password_works: bool,
    /// The last job failed: idle polls re-check the database before reporting healthy.
    unhealthy: bool,
    /// When the current job reached the worker, for the timing in the log.
    job_started: Instant,
    /// Drift: when the next check is due and what is reported meanwhile (drift.rs).
    drift: DriftWatch,
    /// When set-aside damaged journals were last pruned.
    pruned_at: Option<Instant>,
}

/// How often a running agent prunes set-aside damaged journals.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Whether a rotation's apply step starts fresh or resumes one a previous process left in
/// the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    Fresh,
    Resumed,
}

/// How long the database steps of one rotation took.
#[derive(Debug, Clone, Copy)]
struct PhaseTimes {
    apply: Duration,
    verify: Duration,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl RotationEngine {
    pub fn new(settings: EngineSettings) -> Self {
        RotationEngine {
            drift: DriftWatch::new(settings.drift, Instant::now()),
            pruned_at: None,
            settings,
            finished: None,
            checked_any_password_works: false,
            unhealthy: false,
            job_started: Instant::now(),
        }
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
                    self.settings.ctx.secret_id,
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
                self.settings.ctx.secret_id
            ),
        }
    }

    fn open(&self) -> Result<Box<dyn Provider>, ProviderError> {
        providers::open(&self.settings.target)
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
        match self.handle_sync_inner(sync, fetched_at) {
            Ok(outcome @ Some(Outcome::Rejected | Outcome::AwaitingAck)) => outcome,
            Ok(outcome) if self.drift.report().is_some() => {
                self.settings
                    .ctx
                    .board
                    .set_worker_error(self.drift.report().map(str::to_owned));
                outcome
            }
            Ok(outcome) => {
                if !self.unhealthy {
                    self.settings.ctx.board.set_worker_error(None);
                    return outcome;
                }
                match self.check() {
                    Ok(()) => {
                        log::info!(
                            "secret {}: database check passes again",
                            self.settings.ctx.secret_id
                        );
                        self.unhealthy = false;
                        self.settings.ctx.board.set_worker_error(None);
                    }
                    Err(e) => self
                        .settings
                        .ctx
                        .board
                        .set_worker_error(Some(format!("database check failed: {e}"))),
                }
                outcome
            }
            Err(e) => {
                let msg = e.to_string();
                log::error!(
                    "secret {}: {msg}; will try again on the next poll",
                    self.settings.ctx.secret_id
                );
                self.report_failure(&msg);
                None
            }
        }
    }

    fn handle_sync_inner(
        &mut self,
        sync: &SyncConfig,
        fetched_at: Instant,
    ) -> Result<Option<Outcome>, StepError> {
        self.update_target(sync);
        self.prune_damaged_journals_if_due();
        let mut outcome = None;
        let journaled = match self
            .settings
            .journal
            .load_for(&self.settings.ctx.secret_id)?
        {
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

    /// Set-aside damaged journals are pruned at the first job and hourly after it
    /// (`journal::DAMAGED_RETENTION`).
    fn prune_damaged_journals_if_due(&mut self) {
        if self.pruned_at.is_some_and(|at| at.elapsed() < PRUNE_EVERY) {
            return;
        }
        self.pruned_at = Some(Instant::now());
        let now = unix_now();
        for path in self.settings.journal.prune_damaged(now) {
            log::info!(
                "secret {}: deleted {}, a damaged journal older than the retention (the newest {} and {} days are kept)",
                self.settings.ctx.secret_id,
                path.display(),
                super::journal::DAMAGED_RETENTION.keep,
                super::journal::DAMAGED_RETENTION.max_age.as_secs() / 86_400
            );
        }
    }

    /// Idle, nothing journaled: the drift check, when due (drift.rs has the rules). One
    /// login with the live value at most. Refused: the admin says why; only a wrong
    /// password is repaired, by setting the live value through the journaled path without
    /// a login; the next check, at the next poll, logs in to prove it. Whatever is
    /// reported goes to the log once and to every heartbeat until it is gone.
    fn check_drift_if_due(&mut self, sync: &SyncConfig) -> Result<(), StepError> {
        let now = Instant::now();
        if !self.drift.due(now) {
            return Ok(());
        }
        let secret_id = self.settings.ctx.secret_id.clone();
        let live = match self.settings.ctx.api.live_value(&secret_id) {
            Ok(v) => v,
            Err(e) => {
                log::warn!("secret {secret_id}: drift check skipped: {e}");
                self.drift.check_skipped(now);
                return Ok(());
            }
        };
        let cred = self.credential(&live, &sync.managed_username)?;
        let target = self.settings.target.clone();
        let cause = format!(
            "drift: {} at {} refuses the secret's live value for \"{}\"",
            target.kind.display_name(),
            target.endpoint(),
            cred.username
        );
        if self.drift.ask_admin_first() {
            // A refusal the admin could see: ask it again rather than fail another login.
            match providers::explain_refusal(&target, &cred.username, &cred.password) {
                Ok(facts) => match self.drift.admin_says(&facts, now) {
                    Some(Step::Nothing) => return Ok(()),
                    Some(Step::Repair) => {
                        let verdict = drift::judge(Refusal::BadPassword, Some(&facts), false);
                        let (step, report, changed) =
                            self.drift.refused(verdict, Some(&facts), &cause, now);
                        self.announce(&report, changed);
                        return self.act_on(step, &cred, &cause, now);
                    }
                    None => {}
                },
                Err(e) => {
                    log::warn!(
                        "secret {secret_id}: drift check: the admin cannot look at \"{}\" ({e}); trying the login",
                        cred.username
                    );
                }
            }
        }
        let refused = match providers::verify_only(&target, &cred.username, &cred.password) {
            Ok(()) => {
                if let Some((repaired, _)) = self.drift.logged_in(now) {
                    if repaired {
                        log::warn!(
                            "secret {secret_id}: drift repaired: {} at {} refused the live value of \"{}\"; it was set again and logs in",
                            target.kind.display_name(),
                            target.endpoint(),
                            cred.username
                        );
                    } else {
                        log::info!(
                            "secret {secret_id}: the live value of \"{}\" logs in again",
                            cred.username
                        );
                    }
                    self.settings.ctx.board.set_worker_error(None);
                }
                return Ok(());
            }
            Err(e) if e.kind == FailureKind::AuthRejected => e,
            // Unreachable, timed out: not drift; the usual error path reports it.
            Err(e) => {
                self.drift.check_skipped(now);
                return Err(e.into());
            }
        };
        let facts = match providers::explain_refusal(&target, &cred.username, &cred.password) {
            Ok(facts) => Some(facts),
            Err(e) => {
                log::debug!(
                    "secret {secret_id}: drift check: the admin cannot look at \"{}\": {e}",
                    cred.username
                );
                None
            }
        };
        let verdict = drift::judge(
            refused.refusal().unwrap_or(Refusal::Unclear),
            facts.as_ref(),
            self.drift.just_repaired(),
        );
        let cause = format!("{cause} ({refused})");
        let (step, report, changed) = self.drift.refused(verdict, facts.as_ref(), &cause, now);
        self.announce(&report, changed);
        self.act_on(step, &cred, &cause, now)
    }

    /// A drift report: logged and sent in a heartbeat at once when it is new, so the
    /// dashboard sees it even when a repair follows at once; every later heartbeat carries
    /// it from the status board.
    fn announce(&mut self, report: &str, changed: bool) {
        self.settings
            .ctx
            .board
            .set_worker_error(Some(report.to_owned()));
        if changed {
            log::error!("secret {}: {report}", self.settings.ctx.secret_id);
            super::heartbeat::Heartbeat::beat(&self.settings.ctx);
        }
    }

    fn act_on(
        &mut self,
        step: Step,
        cred: &Credential,
        cause: &str,
        now: Instant,
    ) -> Result<(), StepError> {
        if step != Step::Repair {
            return Ok(());
        }
        match self.repair_drift(cred) {
            Ok(()) => {
                self.drift.repaired(now);
                log::info!(
                    "secret {}: the live value of \"{}\" was set again; the next poll logs in to check it",
                    self.settings.ctx.secret_id,
                    cred.username
                );
                Ok(())
            }
            Err(e) => {
                let report = format!("{cause}; the repair failed: {e}");
                let changed = self.drift.repair_failed(report.clone(), now);
                self.announce(&report, changed);
                Ok(())
            }
        }
    }

    /// Sets the live value the way a rotation applies a new one: snapshot, journal, set
    /// (creating the user if it is gone). The journal makes a crash mid-repair safe: the
    /// restart finds a rotation the server never heard of and settles on the live value.
    /// No login here: a login refused now would be a second failed one in this check; the
    /// next check's login proves the repair.
    fn repair_drift(&mut self, cred: &Credential) -> Result<(), StepError> {
        let mut db = self.open()?;
        db.validate(&cred.username, &cred.password)?;
        let (snapshot, exists) = match db.read_stored(&cred.username)? {
            StoredCredential::Absent => (Snapshot::Absent, false),
            StoredCredential::Stored(value) => (
                Snapshot::Stored {
                    value: Secret::new(value),
                },
                true,
            ),
            StoredCredential::Unreadable { .. } => (Snapshot::LiveValue, true),
        };
        let mut entry = JournalEntry::new(
            &self.settings.ctx.secret_id,
            DRIFT_REPAIR_ID,
            &cred.username,
            snapshot,
            &cred.password,
        );
        entry.target = Some(journaled_target(&self.settings.target));
        self.settings.journal.save(&mut entry)?;
        let result = db.put_password(&cred.username, &cred.password, exists);
        self.settings.journal.clear()?;
        Ok(result?)
    }

    /// The secret is deleted or this machine's access revoked (404/403) while the journal
    /// holds an applied rotation the server never confirmed: the live value stays what it
    /// was, so put the database back from the journal's snapshot. The live value itself can
    /// no longer be read, so a snapshot of the kind "use the live value" cannot be undone;
    /// that is logged, with the journal kept for a human.
    pub fn undo_unconfirmed(&mut self) {
        let secret_id = self.settings.ctx.secret_id.clone();
        let Ok(Loaded::Entry(entry)) = self.settings.journal.load_for(&secret_id) else {
            return;
        };
        let short = short_id(&entry.rotation_id).to_owned();
        let user = entry.username.clone();
        let result = (|| -> Result<(), StepError> {
            let mut db = self.open_journaled(&entry)?;
            match &entry.snapshot {
                Snapshot::Stored { value } => {
                    db.restore_stored(&user, value.expose())?;
                    match db.read_stored(&user)? {
                        StoredCredential::Stored(now) if now == value.expose() => Ok(()),
                        _ => Err(StepError::Mismatch(format!(
                            "after restoring \"{user}\" the stored credential differs from the snapshot"
                        ))),
                    }
                }
                Snapshot::Absent => Ok(db.drop_user(&user)?),
                Snapshot::LiveValue => Err(StepError::Mismatch(format!(
                    "the previous password of \"{user}\" was to come from the live value, which can no longer be read"
                ))),
            }
        })();
        match result {
            Ok(()) => {
                let _ = self.settings.journal.clear();
                log::warn!(
                    "secret {secret_id}: the secret is gone or access was revoked while rotation {short} was applied but not confirmed; \"{user}\" is back on its previous password"
                );
            }
            Err(e) => log::error!(
                "secret {secret_id}: the secret is gone or access was revoked while rotation {short} was applied but not confirmed, and it could not be undone: {e}; \"{user}\" may hold a password the server never promoted; the journal stays for reference"
            ),
        }
    }

    /// A journal that cannot be used says nothing about what the database holds: make the
    /// live value work (as a drift repair would), and only then move the file aside, so a
    /// failure here leaves it in place to be retried on the next poll.
    fn recover_from_damaged_journal(
        &mut self,
        sync: &SyncConfig,
        why: &str,
    ) -> Result<(), StepError> {
        let secret_id = self.settings.ctx.secret_id.clone();
        log::error!(
            "secret {secret_id}: the rotation journal is unusable: {why}; bringing the database back to the secret's live value before anything else"
        );
        let live = self.settings.ctx.api.live_value(&secret_id)?;
        let cred = self.credential(&live, &sync.managed_username)?;
        let mut db = self.open()?;
        self.make_live_value_work(db.as_mut(), &cred)?;
        let moved_to = self.settings.journal.set_aside()?;
        log::warn!(
            "secret {secret_id}: recovered from the unusable journal: the live value logs in as \"{}\"; the file was moved to {}",
            cred.username,
            moved_to.display()
        );
        Ok(())
    }

    /// The database a journaled rotation ran against: the journal's target when the sync
    /// config now points elsewhere (the admin login still comes from the config).
    fn open_journaled(&self, entry: &JournalEntry) -> Result<Box<dyn Provider>, StepError> {
        let Some(at) = &entry.target else {
            return Ok(self.open()?);
        };
        let kind = at.provider.parse().map_err(|e| {
            StepError::Mismatch(format!(
                "the journal of rotation {} names a provider this agent cannot use: {e}",
                short_id(&entry.rotation_id)
            ))
        })?;
        let current = &self.settings.target;
        let mut target = current.clone();
        target.kind = kind;
        target.host = at.host.clone();
        target.port = at.port;
        target.database = at.database.clone();
        if target != *current {
            log::warn!(
                "secret {}: rotation {} ran against {} at {}, and the sync config now points at {} at {}; finishing it where it ran",
                self.settings.ctx.secret_id,
                short_id(&entry.rotation_id),
                target.kind.display_name(),
                target.endpoint(),
                current.kind.display_name(),
                current.endpoint()
            );
        }
        Ok(providers::open(&target)?)
    }

    /// A new pending rotation: snapshot, journal, apply, verify, confirm (or roll back and reject).
    fn rotate(
        &mut self,
        pending: &PendingRotation,
        managed_username: &str,
    ) -> Result<Outcome, StepError> {
        let _log_scope = crate::logging::rotation_scope(&pending.id);
        let short = short_id(&pending.id);
        log::info!(
            "secret {}: pending rotation {short} found; applying to {} at {}",
            self.settings.ctx.secret_id,
            self.settings.target.kind.display_name(),
            self.settings.target.endpoint()
        );
        let cred = match self.credential(&pending.value, managed_username) {
            Ok(c) => c,
            Err(e) => {
                return self.reject_untouched(
                    &pending.id,
                    &format!("the pending value cannot be used: {e}"),
                    &[],
                );
            }
        };
        let mut db = match self.open() {
            Ok(db) => db,
            Err(e) => {
                return self.reject_untouched(
                    &pending.id,
                    &format!("apply failed: {e}"),
                    &[&cred.password],
                );
            }
        };
        if let Err(e) = db
            .validate(&cred.username, &cred.password)
            .and_then(|()| db.check_can_manage(&cred.username))
        {
            return self.reject_untouched(
                &pending.id,
                &format!("apply failed: {e}"),
                &[&cred.password],
            );
        }
        let snapshot = match self.take_snapshot(db.as_mut(), &cred.username) {
            Ok(s) => s,
            Err(e) => {
                let msg = format!(
                    "cannot snapshot the current credential of \"{}\", so a rollback would be impossible: {e}",
                    cred.username
                );
                return self.reject_untouched(&pending.id, &msg, &[&cred.password]);
            }
        };
        let mut entry = JournalEntry::new(
            &self.settings.ctx.secret_id,
            &pending.id,
            &cred.username,
            snapshot,
            &cred.password,
        );
        entry.target = Some(journaled_target(&self.settings.target));
        if let Err(e) = self.settings.journal.save(&mut entry) {
            return self.reject_untouched(
                &pending.id,
                &format!("cannot write the rotation journal, so nothing was changed: {e}"),
                &[],
            );
        }
        self.apply_verify_confirm(db.as_mut(), entry, &cred, Start::Fresh)
    }

    fn take_snapshot(&self, db: &mut dyn Provider, username: &str) -> Result<Snapshot, StepError> {
        match db.read_stored(username)? {
            StoredCredential::Absent => Ok(Snapshot::Absent),
            StoredCredential::Stored(value) => Ok(Snapshot::Stored {
                value: Secret::new(value),
            }),
            StoredCredential::Unreadable { reason } => {
                log::info!(
                    "secret {}: {reason}; the rollback will use the live value",
                    self.settings.ctx.secret_id
                );
                let live = self
                    .settings
                    .ctx
                    .api
                    .live_value(&self.settings.ctx.secret_id)?;
                self.credential(&live, username)?;
                Ok(Snapshot::LiveValue)
            }
        }
    }

    /// From phase `Applying`: apply the new password, verify it, confirm.
    fn apply_verify_confirm(
        &mut self,
        db: &mut dyn Provider,
        mut entry: JournalEntry,
        cred: &Credential,
        start: Start,
    ) -> Result<Outcome, StepError> {
        let started = Instant::now();
        // The snapshot says whether the user exists, except when a crashed process may
        // have created it after taking the snapshot: then the database says.
        let exists = match (&entry.snapshot, start) {
            (Snapshot::Absent, Start::Fresh) => Ok(false),
            (Snapshot::Absent, Start::Resumed) => db.user_exists(&cred.username),
            _ => Ok(true),
        };
        let applied =
            exists.and_then(|exists| db.put_password(&cred.username, &cred.password, exists));
        if let Err(e) = applied {
            return self.roll_back_and_reject(
                db,
                entry,
                &format!("apply failed: {e}"),
                &[&cred.password],
            );
        }
        let applied = Instant::now();
        if let Err(e) = db.verify_login(&cred.username, &cred.password) {
            return self.roll_back_and_reject(
                db,
                entry,
                &format!("verification failed after apply: {e}"),
                &[&cred.password],
            );
        }
        let times = PhaseTimes {
            apply: applied - started,
            verify: applied.elapsed(),
        };
        self.warn_if_any_password_works(db, &cred.username);
        entry.phase = Phase::Confirming;
        self.settings.journal.save(&mut entry)?;
        self.confirm(entry, Some(times))
    }

    /// A server that accepts any password (trust authentication) makes verification
    /// meaningless; say so once.
    fn warn_if_any_password_works(&mut self, db: &dyn Provider, username: &str) {
        if self.checked_any_password_works {
            return;
        }
        self.checked_any_password_works = true;
        let mut wrong = [0u8; 18];
        if getrandom::fill(&mut wrong).is_err() {
            return;
        }
        let wrong = Secret::new(wrong.iter().map(|b| format!("{b:02x}")).collect::<String>());
        if db.verify_login(username, &wrong).is_ok() {
            log::warn!(
                "secret {}: {} at {} accepted a wrong password for \"{username}\" (trust authentication?); verification cannot prove the new password works",
                self.settings.ctx.secret_id,
                self.settings.target.kind.display_name(),
                self.settings.target.endpoint()
            );
        }
    }

    fn confirm(
        &mut self,
        entry: JournalEntry,
        times: Option<PhaseTimes>,
    ) -> Result<Outcome, StepError> {
        let short = short_id(&entry.rotation_id);
        let started = Instant::now();
        let result =
            self.with_retries(|api, secret| api.confirm_rotation(secret, &entry.rotation_id));
        match result {
            Ok(()) => {
                let confirm = started.elapsed();
                self.settings.journal.clear()?;
                self.finish(&entry.rotation_id, "confirmed", "");
                let timing = times
                    .map(|t| {
                        format!(
                            " (apply {:.1} ms, verify {:.1} ms, confirm {:.1} ms, job {:.1} ms)",
                            ms(t.apply),
                            ms(t.verify),
                            ms(confirm),
                            ms(self.job_started.elapsed())
                        )
                    })
                    .unwrap_or_default();
                log::info!(
                    "secret {}: rotation {short} applied, verified and confirmed{timing}",
                    self.settings.ctx.secret_id
                );
                Ok(Outcome::Confirmed)
            }
            Err(e) => {
                let msg = format!(
                    "rotation {short} is applied and verified but the confirmation did not go through ({e}); the new password stays in the database and the journal, and the next poll settles it with the server"
                );
                log::error!("secret {}: {msg}", self.settings.ctx.secret_id);
                self.report_failure(&msg);
                Ok(Outcome::AwaitingAck)
            }
        }
    }

    /// Rejects a rotation before anything in the database was changed.
    fn reject_untouched(
        &mut self,
        rotation_id: &str,
        error: &str,
        secrets: &[&Secret],
    ) -> Result<Outcome, StepError> {
        let error = scrub(error, secrets);
        log::error!(
            "secret {}: rotation {} rejected: {error}",
            self.settings.ctx.secret_id,
            short_id(rotation_id)
        );
        self.report_failure(&format!(
            "rotation {} rejected: {error}",
            short_id(rotation_id)
        ));
        let result =
            self.with_retries(|api, secret| api.reject_rotation(secret, rotation_id, &error));
        self.finish(rotation_id, "rejected", &error);
        result?;
        Ok(Outcome::Rejected)
    }

    /// Marks the agent unhealthy before the server hears of a failure, so that no heartbeat
    /// sent after the server recorded the rejection can still say "healthy".
    fn report_failure(&mut self, message: &str) {
        self.unhealthy = true;
        self.settings
            .ctx
            .board
            .set_worker_error(Some(message.to_owned()));
    }

    /// Puts the old credential back, checks it, then rejects. The journal stays until both
    /// the database is restored and the server has acknowledged.
    fn roll_back_and_reject(
        &mut self,
        db: &mut dyn Provider,
        mut entry: JournalEntry,
        error: &str,
        secrets: &[&Secret],
    ) -> Result<Outcome, StepError> {
        entry.phase = Phase::Rejecting;
        entry.error = scrub(error, secrets);
        self.settings.journal.save(&mut entry)?;
        log::error!(
            "secret {}: rotation {} failed: {}; rolling back",
            self.settings.ctx.secret_id,
            short_id(&entry.rotation_id),
            entry.error
        );
        self.restore_and_reject(db, entry)
    }

    fn restore_and_reject(
        &mut self,
        db: &mut dyn Provider,
        mut entry: JournalEntry,
    ) -> Result<Outcome, StepError> {
        let restored = self.restore(db, &entry);
        let mut error = entry.error.clone();
        match &restored {
            Ok(()) => log::info!(
                "secret {}: database back on the previous credential of \"{}\"",
                self.settings.ctx.secret_id,
                entry.username
            ),
            Err(e) => {
                error = format!("{error}; rollback failed too: {e}");
                log::error!(
                    "secret {}: rollback failed: {e}; will retry",
                    self.settings.ctx.secret_id
                );
            }
        }
        if !entry.rejected {
            self.report_failure(&format!(
                "rotation {} rejected: {error}",
                short_id(&entry.rotation_id)
            ));
            self.with_retries(|api, secret| {
                api.reject_rotation(secret, &entry.rotation_id, &error)
            })?;
            entry.rejected = true;
            self.finish(&entry.rotation_id, "rejected", &error);
        }
        match restored {
            Ok(()) => {
                self.settings.journal.clear()?;
                Ok(Outcome::Rejected)
            }
            Err(e) => {
                self.settings.journal.save(&mut entry)?;
                Err(e)
            }
        }
    }

    /// Puts the snapshot back and checks that it took.
    fn restore(&self, db: &mut dyn Provider, entry: &JournalEntry) -> Result<(), StepError> {
        let user = &entry.username;
        match &entry.snapshot {
            Snapshot::Stored { value } => {
                db.restore_stored(user, value.expose())?;
                match db.read_stored(user)? {
                    StoredCredential::Stored(now) if now == value.expose() => Ok(()),
                    _ => Err(StepError::Mismatch(format!(
                        "after restoring \"{user}\" the stored credential differs from the snapshot"
                    ))),
                }
            }
            Snapshot::Absent => {
                // Created by the rotation, so dropped by its rollback: unless the live value
                // logs in as it (someone made it the live user meanwhile).
                let live = self
                    .settings
                    .ctx
                    .api
                    .live_value(&self.settings.ctx.secret_id)?;
                if let Ok(cred) = self.credential(&live, user)
                    && cred.username == *user
                    && db.verify_login(user, &cred.password).is_ok()
                {
                    log::warn!(
                        "secret {}: not dropping \"{user}\", which the rotation created: the secret's live value logs in as it",
                        self.settings.ctx.secret_id
                    );
                    return Ok(());
                }
                db.drop_user(user)?;
                if db.user_exists(user)? {
                    return Err(StepError::Mismatch(format!(
                        "user \"{user}\" still exists after the rollback dropped it"
                    )));
                }
                Ok(())
            }
            Snapshot::LiveValue => {
                let live = self
                    .settings
                    .ctx
                    .api
                    .live_value(&self.settings.ctx.secret_id)?;
                let cred = self.credential(&live, user)?;
                self.refuse_other_user(entry, &cred.username)?;
                db.set_password(user, &cred.password)?;
                let login = db.verify_login(user, &cred.password);
                self.accept_if_login_impossible(user, login)
            }
        }
    }

    /// A rollback or settlement puts a credential back on the user the journal says was
    /// rotated, never on another one: a live value naming a different user is refused.
    fn refuse_other_user(&self, entry: &JournalEntry, live_user: &str) -> Result<(), StepError> {
        if live_user == entry.username {
            return Ok(());
        }
        Err(StepError::Mismatch(format!(
            "rotation {} changed user \"{}\" but the secret's live value now names user \"{live_user}\"; the agent will not put \"{live_user}\"'s password on \"{}\". Set the live value back to user \"{}\" (or fix the database by hand and delete the journal)",
            short_id(&entry.rotation_id),
            entry.username,
            entry.username,
            entry.username
        )))
    }

    /// After the live value was set: a login refused even now means the user cannot log in
    /// from this host at all (NOLOGIN, pg_hba or host rules for the app servers only). The
    /// value is in place and its stored form cannot be read back, so the check is
    /// impossible: accept the restore and say so, rather than retrying it forever.
    fn accept_if_login_impossible(
        &self,
        user: &str,
        login: Result<(), ProviderError>,
    ) -> Result<(), StepError> {
        match login {
            Ok(()) => Ok(()),
            Err(e) if e.kind == FailureKind::AuthRejected => {
                log::warn!(
                    "secret {}: the live value was put back on \"{user}\", but \"{user}\" cannot log in from this host at all ({e}); the login check is impossible, so the restore is accepted unchecked. Allow the login (e.g. ALTER ROLE ... LOGIN, or a host rule for this machine) so rotations can be verified",
                    self.settings.ctx.secret_id
                );
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Finishes a journaled rotation against what the server says now.
    fn reconcile(
        &mut self,
        mut entry: JournalEntry,
        sync: &SyncConfig,
    ) -> Result<Outcome, StepError> {
        let _log_scope = crate::logging::rotation_scope(&entry.rotation_id);
        let short = short_id(&entry.rotation_id).to_owned();
        log::info!(
            "secret {}: finishing rotation {short} left in phase {:?}",
            self.settings.ctx.secret_id,
            entry.phase
        );
        let still_pending = sync.pending().filter(|p| p.id == entry.rotation_id);
        let mut db = self.open_journaled(&entry)?;
        match still_pending {
            Some(pending) if !entry.rejected => match entry.phase {
                Phase::Rejecting => self.restore_and_reject(db.as_mut(), entry),
                Phase::Applying | Phase::Confirming => {
                    let cred = match self.credential(&pending.value, &entry.username) {
                        Ok(c) => c,
                        Err(e) => {
                            let msg = format!("the pending value cannot be used: {e}");
                            return self.roll_back_and_reject(db.as_mut(), entry, &msg, &[]);
                        }
                    };
                    if entry.phase == Phase::Confirming
                        && db.verify_login(&cred.username, &cred.password).is_ok()
                    {
                        return self.confirm(entry, None);
                    }
                    entry.phase = Phase::Applying;
                    self.apply_verify_confirm(db.as_mut(), entry, &cred, Start::Resumed)
                }
            },
            _ => {
                // The server no longer holds this rotation: the database must match the live value.
                let live = self
                    .settings
                    .ctx
                    .api
                    .live_value(&self.settings.ctx.secret_id)?;
                let cred = self.credential(&live, &entry.username)?;
                let promoted = entry.applied.matches(&cred.password);
                if cred.username != entry.username {
                    // The rotation changed another user than the live value names: put
                    // that user back from its snapshot (never with this user's password),
                    // then make the live value work for its own user.
                    if entry.snapshot == Snapshot::LiveValue {
                        self.refuse_other_user(&entry, &cred.username)?;
                    }
                    self.restore(db.as_mut(), &entry)?;
                    self.make_live_value_work(db.as_mut(), &cred)?;
                } else if !promoted && entry.snapshot == Snapshot::Absent {
                    self.restore(db.as_mut(), &entry)?;
                } else {
                    self.make_live_value_work(db.as_mut(), &cred)?;
                }
                self.settings.journal.clear()?;
                let outcome = if promoted {
                    Outcome::Confirmed
                } else {
                    Outcome::Reconciled
                };
                if !entry.rejected && entry.rotation_id != DRIFT_REPAIR_ID {
                    let word = if promoted { "confirmed" } else { "reconciled" };
                    self.finish(&entry.rotation_id, word, "");
                }
                log::info!(
                    "secret {}: rotation {short} settled: the database matches the live value ({})",
                    self.settings.ctx.secret_id,
                    if promoted {
                        "the server promoted the new password"
                    } else {
                        "the server kept the old password"
                    }
                );
                Ok(outcome)
            }
        }
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

    /// Logs in with the live value and, only if that is refused, sets it.
    fn make_live_value_work(
        &self,
        db: &mut dyn Provider,
        cred: &Credential,
    ) -> Result<(), StepError> {
        match db.verify_login(&cred.username, &cred.password) {
            Ok(()) => Ok(()),
            Err(e) if e.kind == FailureKind::AuthRejected => {
                log::info!(
                    "secret {}: putting the live value back into the database for \"{}\"",
                    self.settings.ctx.secret_id,
                    cred.username
                );
                db.set_password(&cred.username, &cred.password)?;
                let login = db.verify_login(&cred.username, &cred.password);
                self.accept_if_login_impossible(&cred.username, login)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn finish(&mut self, rotation_id: &str, outcome: &str, error: &str) {
        self.finished = Some((rotation_id.to_owned(), Instant::now()));
        self.settings.ctx.board.record_rotation(RotationRecord {
            rotation_id: rotation_id.to_owned(),
            outcome: outcome.to_owned(),
            at: unix_now(),
            error: error.to_owned(),
        });
    }

    /// Sends an acknowledgement, retrying transient failures a few times with backoff.
    fn with_retries(
        &self,
        call: impl Fn(&ApiClient, &str) -> Result<(), ApiError>,
    ) -> Result<(), ApiError> {
        let mut delay = Duration::from_millis(500);
        let mut attempt = 1;
        loop {
            match call(&self.settings.ctx.api, &self.settings.ctx.secret_id) {
                Ok(()) => return Ok(()),
                Err(e) if e.class() == ErrorClass::Retryable && attempt < ACK_ATTEMPTS => {
                    log::warn!(
                        "secret {}: {e}; retrying in {} ms",
                        self.settings.ctx.secret_id,
                        delay.as_millis()
                    );
                    if self.settings.ctx.shutdown.wait_timeout(delay) {
                        return Err(e);
                    }
                    delay *= 2;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
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

/// The first characters of a rotation id, enough to find it in the dashboard.
pub fn short_id(id: &str) -> &str {
    match id.char_indices().nth(12) {
        Some((i, _)) => &id[..i],
        None => id,
    }
}
