//! The databases the agent can rotate passwords in. Each provider file implements
//! [`Provider`] for one database; this module holds what they share: the kinds, the
//! connection target, the stored-credential snapshot, and the one error type of this layer.
//!
//! Only this directory links database drivers. Providers are opened on the worker thread,
//! for one job at a time, and dropped when the job ends, so an idle agent holds no
//! connections and no driver runtimes.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::secret::{Secret, scrub};

pub mod inflight;
#[cfg(feature = "mongodb")]
pub mod mongodb;
#[cfg(feature = "mysql")]
pub mod mysql;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
pub mod tls;

pub use tls::{TlsMode, TlsSettings, TlsStatus};

/// A database family, as named by the sync config's `providerType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    Postgresql,
    PostgresqlSupabase,
    Mysql,
    Redis,
    Mongodb,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 5] = [
        ProviderKind::Postgresql,
        ProviderKind::PostgresqlSupabase,
        ProviderKind::Mysql,
        ProviderKind::Redis,
        ProviderKind::Mongodb,
    ];

    /// The wire name (`providerType`).
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Postgresql => "postgresql",
            ProviderKind::PostgresqlSupabase => "postgresql_supabase",
            ProviderKind::Mysql => "mysql",
            ProviderKind::Redis => "redis",
            ProviderKind::Mongodb => "mongodb",
        }
    }

    pub fn display_name(self) -> &'static str {
        match self {
            ProviderKind::Postgresql => "PostgreSQL",
            ProviderKind::PostgresqlSupabase => "PostgreSQL (Supabase)",
            ProviderKind::Mysql => "MySQL",
            ProviderKind::Redis => "Redis",
            ProviderKind::Mongodb => "MongoDB",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            ProviderKind::Postgresql | ProviderKind::PostgresqlSupabase => 5432,
            ProviderKind::Mysql => 3306,
            ProviderKind::Redis => 6379,
            ProviderKind::Mongodb => 27017,
        }
    }

    /// The user a secret means when neither its value nor the sync config names one:
    /// Redis authenticates `default` when no name is given; the others have no such user.
    pub fn implicit_user(self) -> Option<&'static str> {
        match self {
            ProviderKind::Redis => Some("default"),
            _ => None,
        }
    }

    /// Whether this binary was built with the driver for this kind.
    pub fn is_compiled_in(self) -> bool {
        match self {
            ProviderKind::Postgresql | ProviderKind::PostgresqlSupabase => {
                cfg!(feature = "postgres")
            }
            ProviderKind::Mysql => cfg!(feature = "mysql"),
            ProviderKind::Redis => cfg!(feature = "redis"),
            ProviderKind::Mongodb => cfg!(feature = "mongodb"),
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown `providerType`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownProvider(pub String);

impl fmt::Display for UnknownProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known: Vec<&str> = ProviderKind::ALL.iter().map(|k| k.as_str()).collect();
        write!(
            f,
            "unknown provider type \"{}\"{}; known types: {}",
            self.0,
            crate::suggest::did_you_mean(&self.0, known.iter().copied()),
            known.join(", ")
        )
    }
}

impl std::error::Error for UnknownProvider {}

impl FromStr for ProviderKind {
    type Err = UnknownProvider;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProviderKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownProvider(s.to_owned()))
    }
}

/// Bounds on every database call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbTimeouts {
    pub connect: Duration,
    /// Bound on one statement or command.
    pub statement: Duration,
}

impl Default for DbTimeouts {
    fn default() -> Self {
        DbTimeouts {
            connect: Duration::from_secs(10),
            statement: Duration::from_secs(15),
        }
    }
}

/// Where and as whom the agent administers the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: ProviderKind,
    pub host: String,
    pub port: u16,
    pub database: String,
    pub admin_user: String,
    pub admin_pass: Secret,
    pub project_reference: String,
    pub timeouts: DbTimeouts,
    /// Used by the admin connection and the verify login alike.
    pub tls: TlsSettings,
}

impl Target {
    /// `host:port`, for messages.
    pub fn endpoint(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Why these settings hand a password in clear to whoever answers at a host that is
    /// not this machine, when they do: Redis's `AUTH` carries the password itself, and in
    /// mode `disable` (Redis's default) nothing is encrypted or verified. The other
    /// providers never send a password in clear to an unverified peer (see `tls`).
    pub fn cleartext_warning(&self) -> Option<String> {
        if self.kind != ProviderKind::Redis || self.tls.mode != TlsMode::Disable {
            return None;
        }
        let loopback = self.host.eq_ignore_ascii_case("localhost")
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        (!loopback).then(|| {
            format!(
                "Redis at {}: TLS mode disable sends the admin password (AUTH) and, in every verify and drift login, the managed password in clear to whoever answers at that address; use the server's tls-port with --tls verify-full --tls-ca-file FILE",
                self.endpoint()
            )
        })
    }
}

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
/// asks the admin ([`Provider::explain_refusal`]) before it trusts this.
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

/// Connects as the admin to the target's database.
pub fn open(target: &Target) -> Result<Box<dyn Provider>, ProviderError> {
    match target.kind {
        #[cfg(feature = "postgres")]
        ProviderKind::Postgresql | ProviderKind::PostgresqlSupabase => {
            Ok(Box::new(postgres::Postgres::connect(target)?))
        }
        #[cfg(feature = "mysql")]
        ProviderKind::Mysql => Ok(Box::new(mysql::Mysql::connect(target)?)),
        #[cfg(feature = "redis")]
        ProviderKind::Redis => Ok(Box::new(redis::Redis::connect(target)?)),
        #[cfg(feature = "mongodb")]
        ProviderKind::Mongodb => Ok(Box::new(mongodb::Mongo::connect(target)?)),
        // Reached only in builds without some provider's feature.
        #[allow(unreachable_patterns)]
        other => Err(ProviderError::new(
            target,
            FailureKind::Database,
            "opening a connection",
            format!(
                "this build of sikkerkey-agent has no {} support; rebuild with the \"{}\" feature",
                other.display_name(),
                feature_name(other)
            ),
        )),
    }
}

/// Logs in as `username` with `password`, as cheaply as the database allows (the drift
/// check): PostgreSQL, Redis and MongoDB with that one login and nothing else; MySQL
/// through an admin session, the only way to know which of the user's accounts exist and
/// which path reaches each (a `localhost` account only over the server's socket).
pub fn verify_only(
    target: &Target,
    username: &str,
    password: &Secret,
) -> Result<(), ProviderError> {
    match target.kind {
        #[cfg(feature = "postgres")]
        ProviderKind::Postgresql | ProviderKind::PostgresqlSupabase => {
            postgres::verify_login(target, username, password)
        }
        #[cfg(feature = "redis")]
        ProviderKind::Redis => redis::verify_login(target, username, password),
        #[cfg(feature = "mongodb")]
        ProviderKind::Mongodb => mongodb::verify_login(target, username, password),
        _ => open(target)?.verify_login(username, password),
    }
}

fn feature_name(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Postgresql | ProviderKind::PostgresqlSupabase => "postgres",
        ProviderKind::Mysql => "mysql",
        ProviderKind::Redis => "redis",
        ProviderKind::Mongodb => "mongodb",
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

/// The private current-thread runtime an async driver (tokio-postgres, mongodb) runs on
/// for one job; dropped with the job, so an idle agent keeps no driver threads.
#[cfg(any(feature = "postgres", feature = "mongodb"))]
pub(crate) fn job_runtime(
    target: &Target,
    action: &str,
) -> Result<tokio::runtime::Runtime, ProviderError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            ProviderError::new(
                target,
                FailureKind::Database,
                action,
                format!("cannot start the driver's runtime: {e}"),
            )
        })
}

/// Runs `login` on a job runtime made for it and shut down after it (within `grace`):
/// the drift check's one login for the async drivers, with nothing kept afterwards.
#[cfg(any(feature = "postgres", feature = "mongodb"))]
pub(crate) fn login_on_own_runtime(
    target: &Target,
    username: &str,
    grace: std::time::Duration,
    login: impl FnOnce(&tokio::runtime::Runtime) -> Result<(), ProviderError>,
) -> Result<(), ProviderError> {
    let runtime = job_runtime(target, &format!("logging in as \"{username}\""))?;
    let result = login(&runtime);
    runtime.shutdown_timeout(grace);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_redis_off_this_machine_is_warned_about() {
        let t = |host: &str, mode| Target {
            kind: ProviderKind::Redis,
            host: host.into(),
            port: 6379,
            database: String::new(),
            admin_user: String::new(),
            admin_pass: Secret::new("pw"),
            project_reference: String::new(),
            timeouts: DbTimeouts::default(),
            tls: TlsSettings {
                mode,
                ..Default::default()
            },
        };
        let w = t("redis.internal", TlsMode::Disable)
            .cleartext_warning()
            .unwrap();
        assert!(
            w.contains("redis.internal:6379") && w.contains("in clear"),
            "{w}"
        );
        for host in ["127.0.0.1", "::1", "localhost"] {
            assert_eq!(
                t(host, TlsMode::Disable).cleartext_warning(),
                None,
                "{host}"
            );
        }
        assert_eq!(
            t("redis.internal", TlsMode::VerifyFull).cleartext_warning(),
            None
        );
        let mut pg = t("db.internal", TlsMode::Disable);
        pg.kind = ProviderKind::Postgresql;
        assert_eq!(pg.cleartext_warning(), None);
    }

    #[test]
    fn provider_kinds_round_trip_and_unknown_lists_known() {
        for k in ProviderKind::ALL {
            assert_eq!(k.as_str().parse::<ProviderKind>().unwrap(), k);
        }
        let e = "oracle".parse::<ProviderKind>().unwrap_err().to_string();
        assert!(
            e.contains("oracle") && e.contains("postgresql_supabase") && e.contains("mongodb"),
            "{e}"
        );
    }
}
