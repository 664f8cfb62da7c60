//! What the journal holds, settled before anything new: a journaled rotation finished
//! against what the server says now ([`Engine::reconcile`]), the 404/403 undo of an
//! applied rotation the server will never promote ([`Engine::undo_unconfirmed`]), and a
//! journal that cannot be used at all ([`Engine::recover_from_damaged_journal`]). Each
//! puts a snapshot back through the one `restore_snapshot` (restore.rs).

use crate::api::SyncConfig;
use crate::providers::Provider;

use super::rotate::Start;
use super::{DRIFT_REPAIR_ID, Engine, StepError};
use crate::agent::journal::{JournalEntry, Loaded, Phase, Snapshot};
use crate::agent::status::Outcome;
use crate::agent::summary::short_id;

impl Engine {
    /// Finishes a journaled rotation against what the server says now.
    pub(super) fn reconcile(
        &mut self,
        mut entry: JournalEntry,
        sync: &SyncConfig,
    ) -> Result<Outcome, StepError> {
        let _log_scope = crate::logging::rotation_scope(&entry.rotation_id);
        let short = short_id(&entry.rotation_id).to_owned();
        log::info!(
            "secret {}: finishing rotation {short} left in phase {:?}",
            self.settings.secret_id,
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
                let cred = self.live_credential(&entry.username)?;
                let promoted = entry.applied.matches(&cred.password);
                if cred.username != entry.username {
                    // The rotation changed another user than the live value names: put
                    // that user back from its snapshot (never with this user's password),
                    // then make the live value work for its own user.
                    if entry.snapshot == Snapshot::LiveValue {
                        self.refuse_other_user(&entry, &cred.username)?;
                    }
                    self.restore_snapshot(db.as_mut(), &entry)?;
                    self.make_live_value_work(db.as_mut(), &cred)?;
                } else if !promoted && entry.snapshot == Snapshot::Absent {
                    self.restore_snapshot(db.as_mut(), &entry)?;
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
                    self.finish(&entry.rotation_id, outcome, "");
                }
                log::info!(
                    "secret {}: rotation {short} settled: the database matches the live value ({})",
                    self.settings.secret_id,
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

    /// The secret is deleted or this machine's access revoked (404/403) while the journal
    /// holds an applied rotation the server never confirmed: the live value stays what it
    /// was, so put the database back from the journal's snapshot, the way a rollback does
    /// (restore.rs says what happens when the live value cannot be read). A drift repair
    /// is not undone. Nothing is sent to the server; what cannot be undone is logged, with
    /// the journal kept for a human.
    pub fn undo_unconfirmed(&mut self) {
        let secret_id = self.settings.secret_id.clone();
        let Ok(Loaded::Entry(entry)) = self.settings.journal.load_for(&secret_id) else {
            return;
        };
        if entry.rotation_id == DRIFT_REPAIR_ID {
            // A repair sets the live value itself: there is no unpromoted password to take
            // back, and its snapshot is the drifted one. A later start settles the journal.
            log::warn!(
                "secret {secret_id}: the secret is gone or access was revoked while a drift repair of \"{}\" was journaled; it set the live value, so there is nothing to undo: the database is left as it is and the journal stays",
                entry.username
            );
            return;
        }
        let short = short_id(&entry.rotation_id).to_owned();
        let user = entry.username.clone();
        let result = self
            .open_journaled(&entry)
            .and_then(|mut db| self.restore_snapshot(db.as_mut(), &entry));
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
    pub(super) fn recover_from_damaged_journal(
        &mut self,
        sync: &SyncConfig,
        why: &str,
    ) -> Result<(), StepError> {
        let secret_id = self.settings.secret_id.clone();
        log::error!(
            "secret {secret_id}: the rotation journal is unusable: {why}; bringing the database back to the secret's live value before anything else"
        );
        let cred = self.live_credential(&sync.managed_username)?;
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
                self.settings.secret_id,
                short_id(&entry.rotation_id),
                target.kind.display_name(),
                target.endpoint(),
                current.kind.display_name(),
                current.endpoint()
            );
        }
        Ok(self.settings.databases.open(&target)?)
    }
}
