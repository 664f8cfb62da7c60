//! Putting a database back: [`Engine::restore_snapshot`], the one way a journal's snapshot
//! is restored, whether by a rollback (rotate.rs), a settlement or the 404/403 undo
//! (settle.rs); and [`Engine::make_live_value_work`], which settles a user on the live
//! value.
//!
//! A created user (snapshot `Absent`) is dropped only when the secret's live value does
//! not log in as it: someone may have made it the live user meanwhile. When the live value
//! cannot be read (the secret is gone or access was revoked, or the server is down), that
//! cannot be ruled out, so the user is not dropped: the restore fails, the journal stays,
//! and the error names the user. Dropping is the one restore step nothing can take back,
//! and an app may already log in as the user (a confirmation the server processed but
//! whose answer was lost). A stored verifier is put back without the live value; a
//! snapshot "use the live value" cannot be restored without it.

use crate::providers::{FailureKind, Provider, ProviderError, StoredCredential};
use crate::secret::Credential;

use super::{Engine, StepError};
use crate::agent::journal::{JournalEntry, Snapshot};
use crate::agent::summary::short_id;

impl Engine {
    /// Puts the journal's snapshot back on the journaled user and checks that it took.
    pub(super) fn restore_snapshot(
        &self,
        db: &mut dyn Provider,
        entry: &JournalEntry,
    ) -> Result<(), StepError> {
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
                // Created by the rotation, so dropped: unless the live value logs in as it.
                match self.live_credential(user) {
                    Ok(cred)
                        if cred.username == *user
                            && db.verify_login(user, &cred.password).is_ok() =>
                    {
                        log::warn!(
                            "secret {}: not dropping \"{user}\", which the rotation created: the secret's live value logs in as it",
                            self.settings.secret_id
                        );
                        return Ok(());
                    }
                    // A live value that names no usable credential logs in as nobody.
                    Ok(_) | Err(StepError::Value(_)) => {}
                    Err(e) => {
                        return Err(StepError::Mismatch(format!(
                            "not dropping \"{user}\", which the rotation created: the secret's live value cannot be read to check that it does not log in as \"{user}\" ({e}); drop the user by hand if nothing uses it"
                        )));
                    }
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
                let cred = self.live_credential(user).map_err(|e| match e {
                    StepError::Api(e) => StepError::Mismatch(format!(
                        "the previous password of \"{user}\" is to come from the secret's live value, which cannot be read now ({e})"
                    )),
                    other => other,
                })?;
                self.refuse_other_user(entry, &cred.username)?;
                db.set_password(user, &cred.password)?;
                let login = db.verify_login(user, &cred.password);
                self.accept_if_login_impossible(user, login)
            }
        }
    }

    /// A rollback or settlement puts a credential back on the user the journal says was
    /// rotated, never on another one: a live value naming a different user is refused.
    pub(super) fn refuse_other_user(
        &self,
        entry: &JournalEntry,
        live_user: &str,
    ) -> Result<(), StepError> {
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

    /// Logs in with the live value and, only if that is refused, sets it.
    pub(super) fn make_live_value_work(
        &self,
        db: &mut dyn Provider,
        cred: &Credential,
    ) -> Result<(), StepError> {
        match db.verify_login(&cred.username, &cred.password) {
            Ok(()) => Ok(()),
            Err(e) if e.kind == FailureKind::AuthRejected => {
                log::info!(
                    "secret {}: putting the live value back into the database for \"{}\"",
                    self.settings.secret_id,
                    cred.username
                );
                db.set_password(&cred.username, &cred.password)?;
                let login = db.verify_login(&cred.username, &cred.password);
                self.accept_if_login_impossible(&cred.username, login)
            }
            Err(e) => Err(e.into()),
        }
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
                    self.settings.secret_id
                );
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}
