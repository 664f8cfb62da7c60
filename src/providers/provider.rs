//! The [`Provider`] trait: one database's user management as the rotation engine needs
//! it, with the policy every database shares in its provided methods, and the values it
//! answers with (a stored credential for rollback, what the admin sees about a refused
//! user).

use super::error::{FailureKind, ProviderError};
use super::target::Target;
use super::tls::TlsStatus;
use crate::secret::Secret;

/// What a user's credential looked like before a rotation, read back from the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredCredential {
    /// The user does not exist.
    Absent,
    /// The stored verifier or hash, in a provider-specific text form that
    /// [`Provider::restore_stored`] accepts back.
    Stored(String),
    /// The database will not show it to this admin (or cannot store it back).
    Unreadable { reason: String },
}

/// What the admin sees about a user whose login was refused, without logging in as it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefusalFacts {
    pub password: PasswordMatch,
    /// Why the database refuses the user whatever the password (`role "app" is NOLOGIN`),
    /// when the admin can see it.
    pub obstacle: Option<String>,
}

/// Whether the database's stored verifier or hash is the one of a given password.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PasswordMatch {
    /// The admin cannot read it, or it is of a kind the agent cannot compute.
    #[default]
    Unknown,
    /// The user does not exist.
    Absent,
    Matches,
    Differs,
}

/// One database's user management, as the rotation engine needs it. Implementations hold
/// an admin connection; [`Provider::login`] always opens a fresh one.
///
/// A provider says only what differs between databases. The policy they share lives in
/// the provided methods, which implementations do not override: input is checked by
/// [`Provider::validate`] (the shared rules, then the [`Provider::input_problem`] hook),
/// a new password goes in through [`Provider::put_password`] (create or change, as the
/// caller's snapshot says), and every error that could echo a password is redacted.
pub trait Provider {
    /// Where this provider is connected, for error messages.
    fn target(&self) -> &Target;

    /// Checks that the admin may create users and change passwords; the error names the
    /// missing privilege.
    fn check_admin(&mut self) -> Result<(), ProviderError>;

    /// The account name the database uses for `username` (Redis: empty means `default`).
    fn account_name<'a>(&self, username: &'a str) -> &'a str {
        username
    }

    /// Why this database cannot take `username` or `password` byte for byte, beyond the
    /// rules every database shares; `None` when it can.
    fn input_problem(&self, _username: &str, _password: &Secret) -> Option<String> {
        None
    }

    fn user_exists(&mut self, username: &str) -> Result<bool, ProviderError>;

    /// Checks that the admin may change this existing user's password, beyond what
    /// `check_admin` covers (PostgreSQL 16+ also wants ADMIN OPTION on the role). A user
    /// that does not exist yet passes: creating it needs only what `check_admin` checked.
    fn check_can_manage(&mut self, _username: &str) -> Result<(), ProviderError> {
        Ok(())
    }

    /// The user's stored credential, for rollback without plaintext.
    fn read_stored(&mut self, username: &str) -> Result<StoredCredential, ProviderError>;

    /// Creates the user with this password. Called only through [`Provider::put_password`].
    fn create_user(&mut self, username: &str, password: &Secret) -> Result<(), ProviderError>;

    /// Changes an existing user's password. Called only through [`Provider::put_password`].
    fn change_password(&mut self, username: &str, password: &Secret) -> Result<(), ProviderError>;

    /// Puts back a credential returned by [`Provider::read_stored`].
    fn restore_stored(&mut self, username: &str, stored: &str) -> Result<(), ProviderError>;

    /// Removes a user that a failed rotation created.
    fn drop_user(&mut self, username: &str) -> Result<(), ProviderError>;

    /// Logs in as `username` on a fresh connection. Called only through
    /// [`Provider::verify_login`].
    fn login(&self, username: &str, password: &Secret) -> Result<(), ProviderError>;

    /// Rejects a username or password this database cannot take byte for byte, before
    /// anything is read or changed. The one place an `InvalidInput` error is built.
    fn validate(&self, username: &str, password: &Secret) -> Result<(), ProviderError> {
        let account = self.account_name(username);
        let problem = common_input_problem(account, password)
            .map(str::to_owned)
            .or_else(|| self.input_problem(account, password));
        match problem {
            None => Ok(()),
            Some(problem) => Err(ProviderError::new(
                self.target(),
                FailureKind::InvalidInput,
                "checking the new credential",
                problem,
            )),
        }
    }

    /// Sets the password of a user that `exists` (as the caller's snapshot says) or creates
    /// it: validated first, and the error never carries the password.
    fn put_password(
        &mut self,
        username: &str,
        password: &Secret,
        exists: bool,
    ) -> Result<(), ProviderError> {
        self.validate(username, password)?;
        let result = if exists {
            self.change_password(username, password)
        } else {
            self.create_user(username, password)
        };
        result.map_err(|e| e.redacted(&[password]))
    }

    /// Sets the user's password, creating the user when it does not exist yet.
    fn set_password(&mut self, username: &str, password: &Secret) -> Result<(), ProviderError> {
        self.validate(username, password)?;
        let exists = self.user_exists(username)?;
        self.put_password(username, password, exists)
    }

    /// Logs in as `username` on a fresh connection. `Ok` means authenticated; a wrong
    /// password is `FailureKind::AuthRejected`. The error never carries the password.
    fn verify_login(&self, username: &str, password: &Secret) -> Result<(), ProviderError> {
        self.login(username, password)
            .map_err(|e| e.redacted(&[password]))
    }

    /// What the admin connection negotiated, for `test`.
    fn tls_status(&mut self) -> TlsStatus {
        TlsStatus::Unknown
    }

    /// After a login as `username` with `password` was refused: what the admin sees that
    /// explains it (does the stored verifier match `password`; is the account disabled,
    /// locked or expired), without logging in as the user, so it costs no failed login.
    /// The default knows only whether the user exists.
    fn explain_refusal(
        &mut self,
        username: &str,
        _password: &Secret,
    ) -> Result<RefusalFacts, ProviderError> {
        Ok(RefusalFacts {
            password: if self.user_exists(username)? {
                PasswordMatch::Unknown
            } else {
                PasswordMatch::Absent
            },
            obstacle: None,
        })
    }
}

/// The rules every database shares: a non-empty name, and no NUL in name or password.
fn common_input_problem(username: &str, password: &Secret) -> Option<&'static str> {
    if username.is_empty() {
        Some("the username is empty")
    } else if username.contains('\0') {
        Some("the username contains a NUL byte")
    } else if password.is_empty() {
        Some("the password is empty")
    } else if password.expose().contains('\0') {
        Some("the password contains a NUL byte, which the database cannot store")
    } else {
        None
    }
}
