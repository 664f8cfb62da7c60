//! What a MySQL or MariaDB failure means: the server's error codes the provider acts on,
//! and the one mapping of a client error to a [`ProviderError`], which keeps the server's
//! message but never a password.

use super::client::Error as ClientError;
use crate::providers::error::{FailureKind, ProviderError, Refusal};
use crate::providers::target::Target;
use crate::providers::tls;
use crate::secret::{Secret, scrub};

/// Server error codes the provider acts on (shared by MySQL and MariaDB unless noted).
pub mod code {
    pub const DBACCESS_DENIED: u16 = 1044;
    pub const ACCESS_DENIED: u16 = 1045;
    /// MariaDB's refusal when no account matches the client's host at all.
    pub const ACCESS_DENIED_NO_PASSWORD: u16 = 1698;
    pub const BAD_DB: u16 = 1049;
    pub const PARSE_ERROR: u16 = 1064;
    pub const TABLEACCESS_DENIED: u16 = 1142;
    pub const COLUMNACCESS_DENIED: u16 = 1143;
    pub const NO_SUCH_TABLE: u16 = 1146;
    pub const LOCK_WAIT_TIMEOUT: u16 = 1205;
    pub const SPECIFIC_ACCESS_DENIED: u16 = 1227;
    pub const WRONG_STRING_LENGTH: u16 = 1470;
    pub const MUST_CHANGE_PASSWORD: u16 = 1820;
    pub const NOT_VALID_PASSWORD: u16 = 1819;
    pub const MUST_CHANGE_PASSWORD_LOGIN: u16 = 1862;
    /// MariaDB's max_statement_time.
    pub const STATEMENT_TIMEOUT: u16 = 1969;
    /// MySQL's max_execution_time.
    pub const QUERY_TIMEOUT: u16 = 3024;
    pub const ACCOUNT_LOCKED_MYSQL: u16 = 3118;
    /// MySQL's FAILED_LOGIN_ATTEMPTS / PASSWORD_LOCK_TIME lock.
    pub const PASSWORD_LOCKED_MYSQL: u16 = 3955;
    /// MariaDB's max_password_errors block (until FLUSH PRIVILEGES or ALTER USER).
    pub const USER_BLOCKED_MARIADB: u16 = 4150;
    pub const ACCOUNT_LOCKED_MARIADB: u16 = 4151;
}

pub fn host_list(hosts: &[String]) -> String {
    hosts
        .iter()
        .map(|h| format!("\"{h}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn malformed(detail: String) -> ClientError {
    ClientError::Protocol(detail)
}

pub fn server_code(e: &ClientError) -> Option<u16> {
    match e {
        ClientError::Server { code, .. } => Some(*code),
        _ => None,
    }
}

pub fn server_message(e: &ClientError) -> String {
    match e {
        ClientError::Server { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

pub fn is_access_denied(e: &ClientError) -> bool {
    matches!(
        server_code(e),
        Some(
            code::TABLEACCESS_DENIED
                | code::COLUMNACCESS_DENIED
                | code::SPECIFIC_ACCESS_DENIED
                | code::DBACCESS_DENIED
        )
    )
}

/// Whether an I/O error is a socket timeout (which Linux reports as `WouldBlock`).
fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    )
}

/// What the agent's other ways to let a MySQL login reveal the password are.
const MYSQL_ALTERNATIVES: &str = "; or run the agent on the database host, where 'user'@'localhost' accounts log in over the server's Unix socket; or give the account mysql_native_password or ed25519, whose logins reveal nothing, or let one verified login put a caching_sha2_password account in the server's cache";

/// Maps a client error to the provider error, keeping the server's message but never a
/// password: parse errors quote the statement, so their text is dropped.
pub fn error(target: &Target, action: &str, e: &ClientError, secrets: &[&Secret]) -> ProviderError {
    let mode = target.tls.mode;
    let tls_error = |reason: String| ProviderError::new(target, FailureKind::Tls, action, reason);
    let (kind, detail) = match e {
        ClientError::Server {
            code: c,
            state,
            message,
        } => {
            let kind = match *c {
                code::ACCESS_DENIED
                | code::ACCESS_DENIED_NO_PASSWORD
                | code::ACCOUNT_LOCKED_MYSQL
                | code::PASSWORD_LOCKED_MYSQL
                | code::USER_BLOCKED_MARIADB
                | code::ACCOUNT_LOCKED_MARIADB
                | code::MUST_CHANGE_PASSWORD
                | code::MUST_CHANGE_PASSWORD_LOGIN => FailureKind::AuthRejected,
                code::TABLEACCESS_DENIED
                | code::COLUMNACCESS_DENIED
                | code::SPECIFIC_ACCESS_DENIED
                | code::DBACCESS_DENIED => FailureKind::Privilege,
                code::LOCK_WAIT_TIMEOUT | code::STATEMENT_TIMEOUT | code::QUERY_TIMEOUT => {
                    FailureKind::Timeout
                }
                code::WRONG_STRING_LENGTH | code::NOT_VALID_PASSWORD => FailureKind::InvalidInput,
                _ => FailureKind::Database,
            };
            let message = if *c == code::PARSE_ERROR {
                "the server could not parse the statement (its text is withheld because it may hold a password)".to_owned()
            } else {
                scrub(message, secrets)
            };
            (kind, format!("{message} (error {c}, SQLSTATE {state})"))
        }
        // A failed handshake, or no TLS where it was demanded: the server never saw a login.
        ClientError::Tls(io) => {
            let explained = if is_timeout(io) {
                tls::explain_text("TLS handshake timed out", &target.host, mode)
            } else {
                tls::explain_failure(io, &target.host, mode)
            };
            return tls_error(
                explained
                    .unwrap_or_else(|| format!("TLS ({mode}) to {} failed: {io}", target.host)),
            );
        }
        ClientError::NoTls => {
            return tls_error(
                tls::explain_text("server does not support TLS", &target.host, mode)
                    .expect("a known phrase"),
            );
        }
        // The server asked for what would reveal the password; nothing was sent.
        ClientError::Refused { request, over_tls } => {
            let channel = if *over_tls {
                tls::Unverified::Tls
            } else {
                tls::Unverified::Plaintext
            };
            return tls_error(tls::password_refusal(
                request,
                channel,
                &target.tls,
                MYSQL_ALTERNATIVES,
            ));
        }
        ClientError::UnsupportedAuth(why) => (FailureKind::Database, why.clone()),
        ClientError::Io(io) if is_timeout(io) => (
            FailureKind::Timeout,
            format!(
                "no answer within {} s ({})",
                target.timeouts.statement.as_secs_f32(),
                scrub(&io.to_string(), secrets)
            ),
        ),
        ClientError::ConnectTimeout(_) => (
            FailureKind::Unreachable,
            format!(
                "no connection within {} s",
                target.timeouts.connect.as_secs_f32()
            ),
        ),
        ClientError::Connect(_) | ClientError::Io(_) | ClientError::Protocol(_) => {
            (FailureKind::Unreachable, scrub(&e.to_string(), secrets))
        }
    };
    let error = ProviderError::new(target, kind, action, detail);
    match server_code(e).and_then(refusal) {
        Some(r) if kind == FailureKind::AuthRejected => error.with_refusal(r),
        _ => error,
    }
}

/// What a refused login's code says about the password. 1045 is also what a login gets
/// when no account matches its host; the drift watch asks the admin before acting on it.
fn refusal(code: u16) -> Option<Refusal> {
    match code {
        code::ACCESS_DENIED => Some(Refusal::BadPassword),
        code::ACCOUNT_LOCKED_MYSQL
        | code::PASSWORD_LOCKED_MYSQL
        | code::USER_BLOCKED_MARIADB
        | code::ACCOUNT_LOCKED_MARIADB
        | code::MUST_CHANGE_PASSWORD
        | code::MUST_CHANGE_PASSWORD_LOGIN => Some(Refusal::NotPermitted),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::kind::ProviderKind;
    use crate::providers::mysql::auth;
    use crate::providers::target::DbTimeouts;

    fn target() -> Target {
        Target {
            kind: ProviderKind::Mysql,
            host: "db".into(),
            port: 3306,
            database: String::new(),
            admin_user: "root".into(),
            admin_pass: Secret::new("adminpw"),
            project_reference: String::new(),
            timeouts: DbTimeouts::default(),
            tls: Default::default(),
        }
    }

    fn server(code: u16, message: &str) -> ClientError {
        ClientError::Server {
            state: "28000".into(),
            message: message.into(),
            code,
        }
    }

    #[test]
    fn server_errors_map_to_what_the_engine_acts_on() {
        let t = target();
        let kind = |code| error(&t, "x", &server(code, "m"), &[]).kind;
        assert_eq!(kind(code::ACCESS_DENIED), FailureKind::AuthRejected);
        assert_eq!(
            kind(code::ACCOUNT_LOCKED_MARIADB),
            FailureKind::AuthRejected
        );
        assert_eq!(kind(code::TABLEACCESS_DENIED), FailureKind::Privilege);
        assert_eq!(kind(code::STATEMENT_TIMEOUT), FailureKind::Timeout);
        assert_eq!(kind(code::WRONG_STRING_LENGTH), FailureKind::InvalidInput);
        assert_eq!(kind(1396), FailureKind::Database);
        let io = ClientError::Io(std::io::Error::from(std::io::ErrorKind::WouldBlock));
        assert_eq!(error(&t, "x", &io, &[]).kind, FailureKind::Timeout);
        let refused =
            ClientError::Connect(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(error(&t, "x", &refused, &[]).kind, FailureKind::Unreachable);
        let unsafe_request = ClientError::Refused {
            request: auth::FULL_AUTHENTICATION,
            over_tls: false,
        };
        let e = error(&t, "x", &unsafe_request, &[]);
        assert_eq!(e.kind, FailureKind::Tls);
        assert!(
            e.detail.contains("verify-full") && e.detail.contains("plaintext"),
            "{}",
            e.detail
        );
    }

    #[test]
    fn error_text_never_carries_the_password() {
        let t = target();
        let pw = Secret::new("s3cr'et\\pw");
        let e = error(
            &t,
            "x",
            &server(code::PARSE_ERROR, "near 's3cr''et\\\\pw' at line 1"),
            &[&pw],
        );
        assert!(!e.detail.contains("s3cr"), "{}", e.detail);
        let e = error(
            &t,
            "x",
            &server(1819, "password s3cr'et\\pw is weak"),
            &[&pw],
        );
        assert!(!e.detail.contains("s3cr'et"), "{}", e.detail);
        assert_eq!(e.kind, FailureKind::InvalidInput);
    }
}
