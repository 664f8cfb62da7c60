//! Where and as whom the agent administers one database, and the bounds on every call.

use std::time::Duration;

use super::kind::ProviderKind;
use super::tls::{self, TlsMode, TlsSettings, TlsStatus};
use crate::secret::Secret;

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
            connect: crate::defaults::DB_CONNECT,
            statement: crate::defaults::DB_STATEMENT,
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

/// `host:port` as messages and `list` show it, an IPv6 address in brackets.
pub fn endpoint(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl Target {
    /// `host:port`, for messages.
    pub fn endpoint(&self) -> String {
        endpoint(&self.host, self.port)
    }

    /// What a connection negotiates, for drivers that do not show their TLS session
    /// (Redis, MongoDB): plaintext when no TLS is asked for, else what a handshake of our
    /// own with the same settings says ([`tls::probe`]).
    pub fn probe_tls(&self) -> TlsStatus {
        if !self.tls.demands_tls() {
            return TlsStatus::Plaintext;
        }
        tls::probe(&self.host, self.port, &self.tls, self.timeouts.connect)
            .unwrap_or(TlsStatus::Unknown)
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
}
