//! The effective TLS settings of one target: where they come from (the local config's
//! `tls` object, else libpq's `PGSSL*` environment for PostgreSQL, else the provider's
//! default), the combinations refused because they would authenticate nothing, and what
//! they mean for a connection (trust anchors, the rustls configuration, whether a login
//! may reveal the password).

use std::path::PathBuf;

use rustls::ClientConfig;
use serde::{Deserialize, Serialize};

use super::anchors::TrustAnchors;
use super::files::{self, ClientIdentity, TlsError};
use super::mode::TlsMode;
use super::verifiers;
use crate::providers::kind::ProviderKind;

/// The `tls` object of `agents/{id}.json`, beside `connection` (which keeps the official
/// CLI's fields, so that CLI can still read the file).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LocalTls {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<TlsMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
}

/// Where the effective settings came from, for `test` and error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsOrigin {
    #[default]
    ProviderDefault,
    LocalConfig,
    /// libpq's `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`.
    Environment,
}

impl TlsOrigin {
    pub fn describe(self) -> &'static str {
        match self {
            TlsOrigin::ProviderDefault => "the provider's default",
            TlsOrigin::LocalConfig => "the local config",
            TlsOrigin::Environment => "PGSSL* environment variables",
        }
    }
}

/// The effective TLS settings of one target. No secrets: paths only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    pub mode: TlsMode,
    /// Trust anchors for the verify modes, and nothing else; `None`: the system's store
    /// (`verify-full` only).
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain for mutual TLS.
    pub cert_file: Option<PathBuf>,
    /// Its private key; the certificate file itself when it holds both.
    pub key_file: Option<PathBuf>,
    pub origin: TlsOrigin,
}

const PG_ENV: [&str; 4] = ["PGSSLMODE", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY"];

impl TlsSettings {
    /// The settings for a target of `kind`: the local config's `tls` object when present,
    /// else (PostgreSQL only) libpq's environment, else the provider's default. A CA file
    /// without a mode means `verify-full`. `env` reads an environment variable.
    pub fn resolve(
        kind: ProviderKind,
        local: Option<&LocalTls>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<TlsSettings, String> {
        let is_pg = matches!(
            kind,
            ProviderKind::Postgresql | ProviderKind::PostgresqlSupabase
        );
        let env = |name: &str| env(name).filter(|v| !v.is_empty());
        let mut s = TlsSettings::default();
        let mode = if let Some(l) = local {
            s.origin = TlsOrigin::LocalConfig;
            s.ca_file = l.ca_file.clone();
            s.cert_file = l.cert_file.clone();
            s.key_file = l.key_file.clone();
            l.mode
        } else if is_pg && PG_ENV.iter().any(|v| env(v).is_some()) {
            s.origin = TlsOrigin::Environment;
            let root = env("PGSSLROOTCERT");
            // libpq 16+: "system" is the system's trust store (ours without a file), and
            // it makes verify-full the default and every weaker mode an error.
            let system = root.as_deref() == Some("system");
            s.ca_file = root.filter(|_| !system).map(PathBuf::from);
            s.cert_file = env("PGSSLCERT").map(PathBuf::from);
            s.key_file = env("PGSSLKEY").map(PathBuf::from);
            let mode = match env("PGSSLMODE").as_deref() {
                None => None,
                // libpq's "allow" tries plaintext first; TLS when offered is the safer reading.
                Some("allow") => Some(TlsMode::Prefer),
                // libpq: `require` with a root certificate present checks the chain.
                Some("require") if s.ca_file.is_some() => Some(TlsMode::VerifyCa),
                Some(v) => Some(v.parse().map_err(|e| format!("PGSSLMODE: {e}"))?),
            };
            match mode {
                Some(weak) if system && weak != TlsMode::VerifyFull => {
                    return Err(format!(
                        "PGSSLMODE={} may not be used with PGSSLROOTCERT=system (as in libpq 16 and later): anyone can get a certificate from a public CA for a name they control, so only verify-full, which checks the name, authenticates the server; set PGSSLMODE=verify-full or unset it",
                        env("PGSSLMODE").unwrap_or_default()
                    ));
                }
                None if system => Some(TlsMode::VerifyFull),
                other => other,
            }
        } else {
            None
        };
        s.mode = mode.unwrap_or(if s.ca_file.is_some() {
            TlsMode::VerifyFull
        } else {
            TlsMode::default_for(kind)
        });
        if s.key_file.is_none() {
            s.key_file = s.cert_file.clone();
        }
        s.check_combination(kind)?;
        Ok(s)
    }

    /// Refuses settings that would silently not do what they say.
    pub fn check_combination(&self, kind: ProviderKind) -> Result<(), String> {
        let from = self.origin.describe();
        if self.mode == TlsMode::Disable && (self.ca_file.is_some() || self.cert_file.is_some()) {
            return Err(format!(
                "TLS mode disable (from {from}) with a CA or client certificate file: choose a TLS mode (verify-full checks the server)"
            ));
        }
        if self.ca_file.is_some() && !self.mode.verifies() {
            return Err(format!(
                "a TLS CA file is checked only in modes verify-ca and verify-full, but the mode (from {from}) is {}",
                self.mode
            ));
        }
        if self.mode == TlsMode::VerifyCa && self.ca_file.is_none() {
            let (ca, full) = match self.origin {
                TlsOrigin::Environment => ("PGSSLROOTCERT=FILE", "PGSSLMODE=verify-full"),
                _ => ("--tls-ca-file FILE", "--tls verify-full"),
            };
            return Err(format!(
                "TLS mode verify-ca (from {from}) needs a CA file: against the system's trust store it would accept a certificate for any name from any public CA, which anyone can get, so it would authenticate nothing; give the CA that signed the server's certificate ({ca}), or use {full}, which checks the name"
            ));
        }
        if self.key_file.is_some() && self.cert_file.is_none() {
            return Err(format!(
                "a TLS client key without a client certificate (from {from}); give both"
            ));
        }
        if self.mode == TlsMode::Prefer
            && matches!(kind, ProviderKind::Redis | ProviderKind::Mongodb)
        {
            return Err(format!(
                "{} cannot negotiate TLS on a plaintext connection, so mode prefer (from {from}) means nothing there; use disable, require, verify-ca or verify-full",
                kind.display_name()
            ));
        }
        if kind == ProviderKind::Mongodb && self.mode == TlsMode::VerifyCa {
            return Err(format!(
                "the MongoDB driver checks the host name whenever it checks the certificate chain, so verify-ca (from {from}) is not available; use verify-full (or require)"
            ));
        }
        if kind == ProviderKind::Mongodb
            && self.cert_file.is_some()
            && self.cert_file != self.key_file
        {
            return Err(
                "the MongoDB driver reads the client certificate and its key from one PEM file; put both in one file and give it as --tls-cert-file (and --tls-key-file, if at all)"
                    .into(),
            );
        }
        Ok(())
    }

    /// Whether a connection with these settings is encrypted or refused.
    pub fn demands_tls(&self) -> bool {
        !matches!(self.mode, TlsMode::Disable | TlsMode::Prefer)
    }

    /// Reads and parses every file named, so a bad path or a file of the wrong kind shows
    /// up at `configure` and at connection time, with the file named.
    pub fn check_files(&self) -> Result<(), TlsError> {
        if self.mode.verifies() {
            self.trust_anchors()?;
        }
        self.client_identity()?;
        Ok(())
    }

    /// The certificates the verify modes trust, and nothing else: the CA file's, or the
    /// system's store when there is no CA file ([`TrustAnchors::load`]).
    pub fn trust_anchors(&self) -> Result<TrustAnchors, TlsError> {
        TrustAnchors::load(self.ca_file.as_deref())
    }

    /// The trust anchors as PEM text, for drivers that take a root certificate file or
    /// buffer rather than a rustls configuration (Redis, MongoDB): the same certificates
    /// [`TlsSettings::client_config`] trusts.
    pub fn trust_anchors_pem(&self) -> Result<Vec<u8>, TlsError> {
        Ok(self.trust_anchors()?.to_pem())
    }

    /// Whether a connection made with these settings has shown that the peer is the
    /// database: only the verify modes do. On any other connection a login must not reveal
    /// the password (a cleartext or MD5 request, MySQL's full authentication).
    pub fn authenticates_server(&self) -> bool {
        self.mode.verifies()
    }

    /// The setting that would make a connection verified, in the words of where the
    /// settings came from.
    pub fn how_to_verify(&self) -> &'static str {
        match self.origin {
            TlsOrigin::Environment => {
                "PGSSLMODE=verify-full with PGSSLROOTCERT=FILE (the CA that signed the server's certificate) or PGSSLROOTCERT=system"
            }
            _ => {
                "--tls verify-full --tls-ca-file FILE (the CA that signed the server's certificate; without a file, the system's trust store)"
            }
        }
    }

    fn client_identity(&self) -> Result<Option<ClientIdentity>, TlsError> {
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => files::client_identity(cert, key).map(Some),
            _ => Ok(None),
        }
    }

    /// The rustls configuration this mode stands for: `prefer`/`require` accept any
    /// certificate (the handshake's signatures are still checked), `verify-ca` checks the
    /// chain, `verify-full` the chain and the name.
    pub fn client_config(&self) -> Result<ClientConfig, TlsError> {
        verifiers::client_config(
            self.mode,
            || self.trust_anchors(),
            || self.client_identity(),
        )
    }

    /// What `test` says about the certificate check: exactly which anchors the chain was
    /// checked against (read again, so the count is what a connection now would trust).
    pub fn verification(&self) -> String {
        let anchors = match self.trust_anchors() {
            Ok(a) => a.describe(),
            Err(e) => format!("trust anchors unreadable: {e}"),
        };
        match self.mode {
            TlsMode::VerifyFull => {
                format!("certificate verified: chain ({anchors}) and host name")
            }
            TlsMode::VerifyCa => {
                format!("certificate verified: chain ({anchors}); host name not checked")
            }
            _ => "certificate not verified (use verify-full to check it)".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    use super::*;
    use crate::providers::tls::anchors::AnchorSource;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_follow_the_provider() {
        let mode = |k| TlsSettings::resolve(k, None, &no_env).unwrap().mode;
        assert_eq!(mode(ProviderKind::Postgresql), TlsMode::Prefer);
        assert_eq!(mode(ProviderKind::Mysql), TlsMode::Prefer);
        assert_eq!(mode(ProviderKind::PostgresqlSupabase), TlsMode::Require);
        assert_eq!(mode(ProviderKind::Redis), TlsMode::Disable);
        assert_eq!(mode(ProviderKind::Mongodb), TlsMode::Disable);
        // A CA file alone means: check the server against it.
        let local = LocalTls {
            ca_file: Some("/ca.pem".into()),
            ..Default::default()
        };
        let s =
            TlsSettings::resolve(ProviderKind::PostgresqlSupabase, Some(&local), &no_env).unwrap();
        assert_eq!(
            (s.mode, s.origin),
            (TlsMode::VerifyFull, TlsOrigin::LocalConfig)
        );
    }

    #[test]
    fn libpq_environment_applies_to_postgres_only_and_yields_to_the_local_config() {
        let env = |k: &str| match k {
            "PGSSLMODE" => Some("verify-ca".to_owned()),
            "PGSSLROOTCERT" => Some("/etc/ca.pem".to_owned()),
            _ => None,
        };
        let s = TlsSettings::resolve(ProviderKind::Postgresql, None, &env).unwrap();
        assert_eq!(s.mode, TlsMode::VerifyCa);
        assert_eq!(s.ca_file.as_deref(), Some(Path::new("/etc/ca.pem")));
        assert_eq!(s.origin, TlsOrigin::Environment);
        assert_eq!(
            TlsSettings::resolve(ProviderKind::Mysql, None, &env)
                .unwrap()
                .mode,
            TlsMode::Prefer
        );
        let local = LocalTls {
            mode: Some(TlsMode::Require),
            ..Default::default()
        };
        assert_eq!(
            TlsSettings::resolve(ProviderKind::Postgresql, Some(&local), &env)
                .unwrap()
                .mode,
            TlsMode::Require
        );
        let bad = |k: &str| (k == "PGSSLMODE").then(|| "sometimes".to_owned());
        let e = TlsSettings::resolve(ProviderKind::Postgresql, None, &bad).unwrap_err();
        assert!(e.contains("PGSSLMODE") && e.contains("sometimes"), "{e}");
        // libpq reads `require` with a root certificate as verify-ca.
        let req = |k: &str| match k {
            "PGSSLMODE" => Some("require".to_owned()),
            "PGSSLROOTCERT" => Some("/etc/ca.pem".to_owned()),
            _ => None,
        };
        assert_eq!(
            TlsSettings::resolve(ProviderKind::Postgresql, None, &req)
                .unwrap()
                .mode,
            TlsMode::VerifyCa
        );
    }

    #[test]
    fn pgsslrootcert_system_means_verify_full_as_in_libpq_16() {
        let env = |mode: Option<&'static str>| {
            move |k: &str| match k {
                "PGSSLROOTCERT" => Some("system".to_owned()),
                "PGSSLMODE" => mode.map(str::to_owned),
                _ => None,
            }
        };
        let s = TlsSettings::resolve(ProviderKind::Postgresql, None, &env(None)).unwrap();
        assert_eq!((s.mode, s.ca_file), (TlsMode::VerifyFull, None));
        let s = TlsSettings::resolve(ProviderKind::Postgresql, None, &env(Some("verify-full")))
            .unwrap();
        assert_eq!(s.mode, TlsMode::VerifyFull);
        for weak in ["disable", "allow", "prefer", "require", "verify-ca"] {
            let e =
                TlsSettings::resolve(ProviderKind::Postgresql, None, &env(Some(weak))).unwrap_err();
            assert!(
                e.contains(&format!("PGSSLMODE={weak}")) && e.contains("verify-full"),
                "{e}"
            );
        }
    }

    #[test]
    fn verify_ca_without_a_ca_file_authenticates_nothing_and_is_refused() {
        for kind in [
            ProviderKind::Postgresql,
            ProviderKind::Mysql,
            ProviderKind::Redis,
        ] {
            let local = LocalTls {
                mode: Some(TlsMode::VerifyCa),
                ..Default::default()
            };
            let e = TlsSettings::resolve(kind, Some(&local), &no_env).unwrap_err();
            assert!(
                e.contains("needs a CA file") && e.contains("--tls-ca-file"),
                "{e}"
            );
        }
        let env = |k: &str| (k == "PGSSLMODE").then(|| "verify-ca".to_owned());
        let e = TlsSettings::resolve(ProviderKind::Postgresql, None, &env).unwrap_err();
        assert!(e.contains("PGSSLROOTCERT=FILE"), "{e}");
        // verify-full without a file is the system's store, with the name checked.
        let local = LocalTls {
            mode: Some(TlsMode::VerifyFull),
            ..Default::default()
        };
        assert!(TlsSettings::resolve(ProviderKind::Mysql, Some(&local), &no_env).is_ok());
    }

    #[test]
    fn a_ca_file_is_the_only_trust_anchor() {
        let dir = std::env::temp_dir().join(format!("ska-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        // A self-signed CA certificate (P-256), made once with openssl for this test.
        std::fs::write(&ca, TEST_CA_PEM).unwrap();
        let s = TlsSettings {
            mode: TlsMode::VerifyCa,
            ca_file: Some(ca.clone()),
            ..Default::default()
        };
        let anchors = s.trust_anchors().unwrap();
        assert_eq!(anchors.store.len(), 1);
        assert_eq!(anchors.source, AnchorSource::CaFile(ca.clone()));
        assert!(s.verification().contains("1 certificate; no other roots"));
        // The PEM handed to drivers that take one holds exactly that certificate.
        let pem = s.trust_anchors_pem().unwrap();
        let back: Vec<_> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back, anchors.certs);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    const TEST_CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBljCCATugAwIBAgIULNzHUy0VKTCOfwGprjivu3UiJfIwCgYIKoZIzj0EAwIw
FzEVMBMGA1UEAwwMdW5pdCB0ZXN0IENBMCAXDTI2MTIwNDE1MTkxM1oYDzIxMjYx
MTEwMTUxOTEzWjAXMRUwEwYDVQQDDAx1bml0IHRlc3QgQ0EwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAATbySh4Ab5TgklPN6/BnS3p6OWRLF9qBDidNg8j6mzy3Y8b
mmObL+iTDR3LqXz3izDe96FXZgp9K/gCmHv0XZ7Vo2MwYTAdBgNVHQ4EFgQUVDyp
3xGDmTCfUEIK2uUvZwWFUAowHwYDVR0jBBgwFoAUVDyp3xGDmTCfUEIK2uUvZwWF
UAowDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAgQwCgYIKoZIzj0EAwID
SQAwRgIhAJiR7v+Mv50ctdVUlXXFrkC52B0hektAwc8Yo3yY/5E8AiEAqvMb9aXQ
qzlsWmD2Dd+RU3ohR/f9uqn2SeXQPR+llho=
-----END CERTIFICATE-----
";

    #[test]
    fn contradictory_settings_are_refused() {
        let r = |k, mode, ca: Option<&str>, cert: Option<&str>, key: Option<&str>| {
            let l = LocalTls {
                mode,
                ca_file: ca.map(PathBuf::from),
                cert_file: cert.map(PathBuf::from),
                key_file: key.map(PathBuf::from),
            };
            TlsSettings::resolve(k, Some(&l), &no_env)
        };
        use ProviderKind::*;
        assert!(r(Postgresql, Some(TlsMode::Disable), Some("/ca"), None, None).is_err());
        assert!(r(Postgresql, Some(TlsMode::Require), Some("/ca"), None, None).is_err());
        assert!(r(Postgresql, None, None, None, Some("/key")).is_err());
        assert!(r(Redis, Some(TlsMode::Prefer), None, None, None).is_err());
        assert!(
            r(
                Mongodb,
                Some(TlsMode::Require),
                None,
                Some("/c"),
                Some("/k")
            )
            .is_err()
        );
        assert!(r(Mongodb, Some(TlsMode::VerifyCa), None, None, None).is_err());
        let s = r(Mongodb, Some(TlsMode::Require), None, Some("/ck"), None).unwrap();
        assert_eq!(s.key_file.as_deref(), Some(Path::new("/ck")));
        assert!(
            r(
                Mysql,
                Some(TlsMode::VerifyFull),
                Some("/ca"),
                Some("/c"),
                Some("/k")
            )
            .is_ok()
        );
    }

    #[test]
    fn missing_files_are_named() {
        let s = TlsSettings {
            mode: TlsMode::VerifyFull,
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        let e = s.check_files().unwrap_err().to_string();
        assert!(
            e.contains("/nonexistent/ca.pem") && e.contains("CA file"),
            "{e}"
        );
    }
}
