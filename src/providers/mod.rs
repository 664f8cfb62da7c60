//! The databases the agent can rotate passwords in. Each provider file implements
//! [`Provider`] (`provider.rs`) for one database; beside them is what they share: the
//! kinds (`kind.rs`), the connection target (`target.rs`), the one error type of this
//! layer (`error.rs`), database TLS (`tls/`) and the async drivers' runtime
//! (`runtime.rs`). This file opens the provider a target names.
//!
//! Only this directory links database drivers. Providers are opened on the worker thread,
//! for one job at a time, and dropped when the job ends, so an idle agent holds no
//! connections and no driver runtimes.

mod error;
pub mod inflight;
mod kind;
#[cfg(feature = "mongodb")]
pub mod mongodb;
#[cfg(feature = "mysql")]
pub mod mysql;
#[cfg(feature = "postgres")]
pub mod postgres;
mod provider;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(any(feature = "postgres", feature = "mongodb"))]
mod runtime;
mod target;
pub mod tls;

pub use error::{FailureKind, ProviderError, Refusal};
pub use kind::{ProviderKind, UnknownProvider};
pub use provider::{PasswordMatch, Provider, RefusalFacts, StoredCredential};
pub use target::{DbTimeouts, Target, endpoint};
pub use tls::{TlsMode, TlsSettings, TlsStatus};

use crate::secret::Secret;

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
        // The async drivers log in on a runtime made for this one login.
        #[cfg(feature = "postgres")]
        ProviderKind::Postgresql | ProviderKind::PostgresqlSupabase => {
            let grace = postgres::SHUTDOWN_GRACE;
            runtime::login_on_own_runtime(target, username, password, grace, postgres::login_on)
        }
        #[cfg(feature = "mongodb")]
        ProviderKind::Mongodb => {
            let grace = mongodb::SHUTDOWN_GRACE;
            runtime::login_on_own_runtime(target, username, password, grace, mongodb::login_on)
        }
        #[cfg(feature = "redis")]
        ProviderKind::Redis => redis::verify_login(target, username, password),
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
