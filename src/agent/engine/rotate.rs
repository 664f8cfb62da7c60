//! A new pending rotation: snapshot → journal → apply → verify → confirm, or roll back →
//! reject. Nothing in the database changes before the journal is on disk; once it is, the
//! rotation ends confirmed, rejected with the snapshot restored, or (a confirmation or a
//! rollback that did not go through) journaled for the next poll to settle.

use std::time::{Duration, Instant};

use crate::api::PendingRotation;
use crate::providers::{Provider, StoredCredential};
use crate::secret::{Credential, Secret, scrub};

use super::{Engine, StepError, journaled_target, ms};
use crate::agent::journal::{JournalEntry, Phase, Snapshot};
use crate::agent::status::Outcome;
use crate::agent::summary::short_id;

/// Whether a rotation's apply step starts fresh or resumes one a previous process left in
/// the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Start {
    Fresh,
    Resumed,
}

/// How long the database steps of one rotation took.
#[derive(Debug, Clone, Copy)]
pub(super) struct PhaseTimes {
    apply: Duration,
    verify: Duration,
}

impl Engine {
    /// A new pending rotation: snapshot, journal, apply, verify, confirm (or roll back and reject).
    pub(super) fn rotate(
        &mut self,
        pending: &PendingRotation,
        managed_username: &str,
    ) -> Result<Outcome, StepError> {
        let _log_scope = crate::logging::rotation_scope(&pending.id);
        let short = short_id(&pending.id);
        log::info!(
            "secret {}: pending rotation {short} found; applying to {} at {}",
            self.settings.secret_id,
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
            &self.settings.secret_id,
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

    /// What the rollback will put back: the stored verifier, "no such user", or (when the
    /// admin cannot read it) the live value, which must then be readable and usable now.
    fn take_snapshot(&self, db: &mut dyn Provider, username: &str) -> Result<Snapshot, StepError> {
        match db.read_stored(username)? {
            StoredCredential::Absent => Ok(Snapshot::Absent),
            StoredCredential::Stored(value) => Ok(Snapshot::Stored {
                value: Secret::new(value),
            }),
            StoredCredential::Unreadable { reason } => {
                log::info!(
                    "secret {}: {reason}; the rollback will use the live value",
                    self.settings.secret_id
                );
                self.live_credential(username)?;
                Ok(Snapshot::LiveValue)
            }
        }
    }

    /// From phase `Applying`: apply the new password, verify it, confirm.
    pub(super) fn apply_verify_confirm(
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
        let wrong = Secret::new(crate::hex::lower(&wrong));
        if db.verify_login(username, &wrong).is_ok() {
            log::warn!(
                "secret {}: {} at {} accepted a wrong password for \"{username}\" (trust authentication?); verification cannot prove the new password works",
                self.settings.secret_id,
                self.settings.target.kind.display_name(),
                self.settings.target.endpoint()
            );
        }
    }

    /// From phase `Confirming`: tell the server; once it has heard, the journal goes. If it
    /// cannot be told, the journal stays and the next poll settles the rotation.
    pub(super) fn confirm(
        &mut self,
        entry: JournalEntry,
        times: Option<PhaseTimes>,
    ) -> Result<Outcome, StepError> {
        let short = short_id(&entry.rotation_id);
        let started = Instant::now();
        match self.send_confirm(&entry.rotation_id) {
            Ok(()) => {
                let confirm = started.elapsed();
                self.settings.journal.clear()?;
                self.finish(&entry.rotation_id, Outcome::Confirmed, "");
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
                    self.settings.secret_id
                );
                Ok(Outcome::Confirmed)
            }
            Err(e) => {
                let msg = format!(
                    "rotation {short} is applied and verified but the confirmation did not go through ({e}); the new password stays in the database and the journal, and the next poll settles it with the server"
                );
                log::error!("secret {}: {msg}", self.settings.secret_id);
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
            self.settings.secret_id,
            short_id(rotation_id)
        );
        self.report_failure(&format!(
            "rotation {} rejected: {error}",
            short_id(rotation_id)
        ));
        let result = self.send_reject(rotation_id, &error);
        self.finish(rotation_id, Outcome::Rejected, &error);
        result?;
        Ok(Outcome::Rejected)
    }

    /// Puts the old credential back, checks it, then rejects. The journal stays until both
    /// the database is restored and the server has acknowledged.
    pub(super) fn roll_back_and_reject(
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
            self.settings.secret_id,
            short_id(&entry.rotation_id),
            entry.error
        );
        self.restore_and_reject(db, entry)
    }

    /// From phase `Rejecting`: restore the snapshot, tell the server (once), and clear the
    /// journal when both are done.
    pub(super) fn restore_and_reject(
        &mut self,
        db: &mut dyn Provider,
        mut entry: JournalEntry,
    ) -> Result<Outcome, StepError> {
        let restored = self.restore_snapshot(db, &entry);
        let mut error = entry.error.clone();
        match &restored {
            Ok(()) => log::info!(
                "secret {}: database back on the previous credential of \"{}\"",
                self.settings.secret_id,
                entry.username
            ),
            Err(e) => {
                error = format!("{error}; rollback failed too: {e}");
                log::error!(
                    "secret {}: rollback failed: {e}; will retry",
                    self.settings.secret_id
                );
            }
        }
        if !entry.rejected {
            self.report_failure(&format!(
                "rotation {} rejected: {error}",
                short_id(&entry.rotation_id)
            ));
            self.send_reject(&entry.rotation_id, &error)?;
            entry.rejected = true;
            self.finish(&entry.rotation_id, Outcome::Rejected, &error);
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
}
