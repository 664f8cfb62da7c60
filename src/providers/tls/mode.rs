//! How much TLS a connection demands, in libpq's `sslmode` words, and each provider's
//! default.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::providers::kind::ProviderKind;

/// How much TLS a connection demands, modelled on libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// Plaintext only.
    #[default]
    Disable,
    /// TLS when the server offers it in-band (PostgreSQL, MySQL), without checking the
    /// certificate; plaintext otherwise.
    Prefer,
    /// TLS or nothing; the certificate is not checked.
    Require,
    /// TLS with the certificate chain checked against the CA; the host name is not.
    VerifyCa,
    /// TLS with the chain and the host name (or IP address) checked.
    VerifyFull,
}

impl TlsMode {
    pub const ALL: [TlsMode; 5] = [
        TlsMode::Disable,
        TlsMode::Prefer,
        TlsMode::Require,
        TlsMode::VerifyCa,
        TlsMode::VerifyFull,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Disable => "disable",
            TlsMode::Prefer => "prefer",
            TlsMode::Require => "require",
            TlsMode::VerifyCa => "verify-ca",
            TlsMode::VerifyFull => "verify-full",
        }
    }

    /// Whether the certificate chain is checked.
    pub fn verifies(self) -> bool {
        matches!(self, TlsMode::VerifyCa | TlsMode::VerifyFull)
    }

    /// The provider's mode when nothing is configured: in-band negotiation where the
    /// protocol has it; off where TLS is a separate port or server mode; Supabase asks
    /// for TLS on every connection.
    pub fn default_for(kind: ProviderKind) -> TlsMode {
        match kind {
            ProviderKind::Postgresql | ProviderKind::Mysql => TlsMode::Prefer,
            ProviderKind::PostgresqlSupabase => TlsMode::Require,
            ProviderKind::Redis | ProviderKind::Mongodb => TlsMode::Disable,
        }
    }
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TlsMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TlsMode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown TLS mode \"{}\"; known modes: disable, prefer, require, verify-ca, verify-full",
                    s.escape_debug()
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_round_trip_and_unknown_lists_known() {
        for m in TlsMode::ALL {
            assert_eq!(m.as_str().parse::<TlsMode>().unwrap(), m);
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.as_str()));
        }
        let e = "verify_full".parse::<TlsMode>().unwrap_err();
        assert!(
            e.contains("verify-full") && e.contains("verify_full"),
            "{e}"
        );
    }
}
