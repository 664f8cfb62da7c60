//! The drift check, the engine's I/O side of `drift_watch.rs` (which has the rules): an
//! idle agent, nothing journaled, logs in with the live value when a check is due. Refused:
//! the admin says why; only a wrong password is repaired, by setting the live value through
//! the journaled path without a login; the next check, at the next poll, logs in to prove
//! it. Whatever is reported goes to the log once and to every heartbeat until it is gone.

use std::time::Instant;

use crate::api::SyncConfig;
use crate::providers::{FailureKind, Refusal, StoredCredential};
use crate::secret::{Credential, Secret};

use super::drift_watch::{self, Step};
use super::{DRIFT_REPAIR_ID, Engine, StepError, journaled_target};
use crate::agent::journal::{JournalEntry, Snapshot};

impl Engine {
    /// Idle, nothing journaled: the drift check, when due. One login with the live value
    /// at most.
    pub(super) fn check_drift_if_due(&mut self, sync: &SyncConfig) -> Result<(), StepError> {
        let now = Instant::now();
        if !self.drift.due(now) {
            return Ok(());
        }
        let secret_id = self.settings.secret_id.clone();
        let cred = match self.live_credential(&sync.managed_username) {
            Ok(cred) => cred,
            Err(StepError::Api(e)) => {
                log::warn!("secret {secret_id}: drift check skipped: {e}");
                self.drift.check_skipped(now);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let target = self.settings.target.clone();
        let databases = &self.settings.databases;
        let cause = format!(
            "drift: {} at {} refuses the secret's live value for \"{}\"",
            target.kind.display_name(),
            target.endpoint(),
            cred.username
        );
        if self.drift.ask_admin_first() {
            // A refusal the admin could see: ask it again rather than fail another login.
            match databases.explain_refusal(&target, &cred.username, &cred.password) {
                Ok(facts) => match self.drift.admin_says(&facts, now) {
                    Some(Step::Nothing) => return Ok(()),
                    Some(Step::Repair) => {
                        let verdict = drift_watch::judge(Refusal::BadPassword, Some(&facts), false);
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
        let refused = match databases.verify_only(&target, &cred.username, &cred.password) {
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
                    self.settings.board.set_worker_error(None);
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
        let facts = match databases.explain_refusal(&target, &cred.username, &cred.password) {
            Ok(facts) => Some(facts),
            Err(e) => {
                log::debug!(
                    "secret {secret_id}: drift check: the admin cannot look at \"{}\": {e}",
                    cred.username
                );
                None
            }
        };
        let verdict = drift_watch::judge(
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
        let settings = &self.settings;
        settings.board.set_worker_error(Some(report.to_owned()));
        if changed {
            log::error!("secret {}: {report}", settings.secret_id);
            settings
                .board
                .send_heartbeat(settings.cp.as_ref(), &settings.secret_id);
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
                    self.settings.secret_id,
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
            &self.settings.secret_id,
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
}
