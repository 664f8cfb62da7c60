//! The one error type of the provider layer, and what a failure means to the runtime:
//! [`FailureKind`] for what to do next, [`Refusal`] for what a refused login's code says
//! about the password.

use std::fmt;

use super::kind::ProviderKind;
use super::target::Target;
use crate::secret::{Secret, scrub};

/// What went wrong, in the terms the runtime acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The server could not be reached (refused, DNS, TLS, network timeout).
    Unreachable,
    /// The server refused the login: wrong user or password.
    AuthRejected,
    /// The admin lacks a privilege the agent needs.
    Privilege,
    /// A name or password the database cannot take exactly (empty, NUL, too long).
    InvalidInput,
    /// A statement ran longer than its timeout.
    Timeout,
    /// TLS was demanded and failed: no TLS on the server, or its certificate did not
    /// verify. Nothing was sent but the handshake.
    Tls,
    /// Any other database error.
    Database,
}

/// What the server's answer to a refused login says about the password, from its error
/// code alone. Drift repair acts only on a wrong password; the engine's drift check also
/// asks the admin ([`Provider::explain_refusal`](super::Provider::explain_refusal)) before
/// it trusts this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The password (or the user name) is wrong: PostgreSQL 28P01, MySQL/MariaDB 1045.
    /// Also what a missing user gets: servers do not say which.
    BadPassword,
    /// The account may not log in whatever the password: PostgreSQL 28000 (NOLOGIN, a
    /// `pg_hba.conf` reject), a locked, blocked or expired MySQL/MariaDB account.
    NotPermitted,
    /// The answer does not tell: Redis's WRONGPASS also means a disabled user, MongoDB's
    /// AuthenticationFailed means anything.
    Unclear,
}

/// The one error type of the provider layer. Names the provider, the endpoint, what the
/// agent was doing and, where it helps, what to do about it. Never holds a password.
#[derive(Debug, Clone)]
pub struct ProviderError {
    pub provider: ProviderKind,
    pub endpoint: String,
    pub kind: FailureKind,
    /// What the agent was doing, e.g. "setting the password of role \"app\"".
    pub action: String,
    /// The database's own message.
    pub detail: String,
    /// For a refused login (`AuthRejected`): what the server's code says about the
    /// password; [`ProviderError::refusal`] reads it.
    refusal: Option<Refusal>,
}

impl ProviderError {
    pub fn new(
        target: &Target,
        kind: FailureKind,
        action: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        ProviderError {
            provider: target.kind,
            endpoint: target.endpoint(),
            kind,
            action: action.into(),
            detail: detail.into(),
            refusal: None,
        }
    }

    /// The same error, saying what the server's code tells about the password.
    pub fn with_refusal(mut self, refusal: Refusal) -> Self {
        self.refusal = Some(refusal);
        self
    }

    /// What a refused login's code says: [`Refusal::Unclear`] where the provider did not
    /// classify it; `None` for an error that is no refused login.
    pub fn refusal(&self) -> Option<Refusal> {
        (self.kind == FailureKind::AuthRejected).then(|| self.refusal.unwrap_or(Refusal::Unclear))
    }

    fn hint(&self) -> &'static str {
        match self.kind {
            FailureKind::Unreachable => {
                "; check that the database is running and reachable from this host"
            }
            FailureKind::AuthRejected => "",
            FailureKind::Privilege => "",
            FailureKind::InvalidInput => "; nothing was changed",
            FailureKind::Timeout => {
                "; the database did not answer in time (a lock held by another session, or an overloaded server)"
            }
            FailureKind::Database => "",
            FailureKind::Tls => "; no password was sent",
        }
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at {}: {}: {}{}",
            self.provider.display_name(),
            self.endpoint,
            self.action,
            self.detail,
            self.hint()
        )
    }
}

impl ProviderError {
    /// The same error with every password in `secrets` cut out of the database's message
    /// (some servers echo the statement or the bad argument).
    pub fn redacted(mut self, secrets: &[&Secret]) -> Self {
        self.detail = scrub(&self.detail, secrets);
        self
    }
}

impl std::error::Error for ProviderError {}
