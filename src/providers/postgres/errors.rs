//! What a PostgreSQL failure means: a password request the guard refused, a failed TLS
//! handshake, or the server's SQLSTATE, mapped to the one [`ProviderError`].

use tokio_postgres::error::SqlState;

use super::auth_guard::UnsafePasswordRequest;
use crate::providers::error::{FailureKind, ProviderError, Refusal};
use crate::providers::target::Target;
use crate::providers::tls::{self, TlsMode};

/// What went wrong with TLS, when the failure is about TLS at all.
fn tls_failure(target: &Target, e: &tokio_postgres::Error) -> Option<String> {
    if target.tls.mode == TlsMode::Disable {
        return None;
    }
    tls::explain_failure(e, &target.host, target.tls.mode)
}

/// The guard's refusal, when it ended the connection, explained with the target's settings.
fn refused_password(target: &Target, e: &tokio_postgres::Error) -> Option<String> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(refused) = s
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<UnsafePasswordRequest>())
        {
            let channel = if refused.over_tls {
                tls::Unverified::Tls
            } else {
                tls::Unverified::Plaintext
            };
            return Some(tls::password_refusal(
                refused.describe(),
                channel,
                &target.tls,
                "; or connect over the server's Unix socket (--host /var/run/postgresql); or have the role log in with SCRAM (pg_hba method scram-sha-256, its password set again under password_encryption = 'scram-sha-256'), which reveals nothing",
            ));
        }
        source = s.source();
    }
    None
}

/// What a refused login's SQLSTATE says: 28P01 is a wrong password (or a role that does
/// not exist: the server does not say which), 28000 a role that may not log in (NOLOGIN)
/// or a `pg_hba.conf` entry that refuses it.
fn refusal(code: &SqlState) -> Option<Refusal> {
    if *code == SqlState::INVALID_PASSWORD {
        Some(Refusal::BadPassword)
    } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
        Some(Refusal::NotPermitted)
    } else {
        None
    }
}

pub fn error(target: &Target, action: &str, e: &tokio_postgres::Error) -> ProviderError {
    if let Some(why) = refused_password(target, e) {
        return ProviderError::new(target, FailureKind::Tls, action, why);
    }
    if let Some(r) = e.as_db_error().and_then(|db| refusal(db.code())) {
        let db = e.as_db_error().expect("checked above");
        return ProviderError::new(
            target,
            FailureKind::AuthRejected,
            action,
            format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        )
        .with_refusal(r);
    }
    let (kind, detail) = match e.as_db_error() {
        Some(db) => {
            let kind = match *db.code() {
                SqlState::INVALID_PASSWORD | SqlState::INVALID_AUTHORIZATION_SPECIFICATION => {
                    FailureKind::AuthRejected
                }
                SqlState::INSUFFICIENT_PRIVILEGE => FailureKind::Privilege,
                SqlState::QUERY_CANCELED | SqlState::LOCK_NOT_AVAILABLE => FailureKind::Timeout,
                _ => FailureKind::Database,
            };
            (
                kind,
                format!("{} (SQLSTATE {})", db.message(), db.code().code()),
            )
        }
        None => match tls_failure(target, e) {
            Some(explained) => (FailureKind::Tls, explained),
            None => {
                let mut detail = e.to_string();
                let mut source = std::error::Error::source(e);
                while let Some(s) = source {
                    detail.push_str(": ");
                    detail.push_str(&s.to_string());
                    source = s.source();
                }
                (FailureKind::Unreachable, detail)
            }
        },
    };
    ProviderError::new(target, kind, action, detail)
}
