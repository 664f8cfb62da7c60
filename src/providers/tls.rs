//! Database TLS: one vocabulary for every provider (libpq's `sslmode` names), where the
//! settings come from (local config, libpq's environment, the provider's default), the
//! rustls client configuration each mode stands for, and the words for a failed handshake.
//!
//! One trust decision for every provider: with a CA file, exactly the certificates in that
//! file are trusted (no bundled or system roots beside them); without one, `verify-full`
//! trusts the system's store and checks the name, and `verify-ca` is refused, since a chain
//! to any public root for any name authenticates nothing. The drivers differ in how they
//! take TLS settings; each provider hands its driver the trust anchors decided here
//! ([`TlsSettings::client_config`], [`TlsSettings::trust_anchors_pem`]).
//!
//! Whatever the driver, a handshake completes (and, in the verify modes, the certificate is
//! checked) before any credential is sent, and no mode but `prefer` ever falls back to
//! plaintext. What a login may reveal on a connection that is *not* verified is decided by
//! [`TlsSettings::authenticates_server`] and explained by [`password_refusal`].

use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use serde::{Deserialize, Serialize};

use super::ProviderKind;

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
    /// system's store when there is no CA file. An empty system store is an error (it would
    /// refuse every server), never a silent switch to another set of roots.
    pub fn trust_anchors(&self) -> Result<TrustAnchors, TlsError> {
        let (certs, source) = match &self.ca_file {
            Some(path) => (
                read_certs(path, "CA file")?,
                AnchorSource::CaFile(path.clone()),
            ),
            None => (
                rustls_native_certs::load_native_certs().certs,
                AnchorSource::System,
            ),
        };
        let mut store = RootCertStore::empty();
        let (added, _) = store.add_parsable_certificates(certs.iter().cloned());
        if added == 0 {
            return Err(match &self.ca_file {
                Some(path) => TlsError::file(
                    path,
                    "CA file",
                    "none of its certificates can serve as a trust anchor",
                ),
                None => TlsError::Setup(
                    "the system's trust store is empty (no CA certificates where SSL_CERT_FILE, SSL_CERT_DIR or the system's default locations point); give the CA that signed the server's certificate with --tls-ca-file".into(),
                ),
            });
        }
        Ok(TrustAnchors {
            store,
            certs,
            source,
        })
    }

    /// The trust anchors as PEM text, for drivers that take a root certificate file or
    /// buffer rather than a rustls configuration (Redis, MongoDB): the same certificates
    /// [`TlsSettings::client_config`] trusts.
    pub fn trust_anchors_pem(&self) -> Result<Vec<u8>, TlsError> {
        use base64::Engine;
        let anchors = self.trust_anchors()?;
        let mut pem = Vec::new();
        for cert in &anchors.certs {
            let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
            pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
            for line in b64.as_bytes().chunks(64) {
                pem.extend_from_slice(line);
                pem.push(b'\n');
            }
            pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
        }
        Ok(pem)
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

    fn client_identity(
        &self,
    ) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, TlsError> {
        let (Some(cert), Some(key)) = (&self.cert_file, &self.key_file) else {
            return Ok(None);
        };
        let chain = read_certs(cert, "client certificate file")?;
        let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
            TlsError::file(key, "client key file", format!("no private key in it: {e}"))
        })?;
        Ok(Some((chain, key_der)))
    }

    /// The rustls configuration this mode stands for: `prefer`/`require` accept any
    /// certificate (the handshake's signatures are still checked), `verify-ca` checks the
    /// chain, `verify-full` the chain and the name.
    pub fn client_config(&self) -> Result<ClientConfig, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?;
        let builder = match self.mode {
            TlsMode::VerifyFull => builder.with_root_certificates(self.trust_anchors()?.store),
            TlsMode::VerifyCa => {
                let inner = WebPkiServerVerifier::builder_with_provider(
                    Arc::new(self.trust_anchors()?.store),
                    provider.clone(),
                )
                .build()
                .map_err(|e| TlsError::Setup(e.to_string()))?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnly { inner }))
            }
            TlsMode::Disable | TlsMode::Prefer | TlsMode::Require => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate { provider })),
        };
        match self.client_identity()? {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| TlsError::Setup(format!("the client certificate and key: {e}"))),
            None => Ok(builder.with_no_client_auth()),
        }
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

/// Where the trusted certificates came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnchorSource {
    CaFile(PathBuf),
    System,
}

/// The certificates a verifying connection trusts: the one decision every provider uses.
pub struct TrustAnchors {
    pub store: RootCertStore,
    /// The certificates as read, for drivers that want them as PEM.
    pub certs: Vec<CertificateDer<'static>>,
    pub source: AnchorSource,
}

impl TrustAnchors {
    /// "only CA /etc/ca.pem (1 certificate)" or "the system's trust store, 146 CAs".
    pub fn describe(&self) -> String {
        let n = self.store.len();
        match &self.source {
            AnchorSource::CaFile(path) => format!(
                "only CA {} ({n} certificate{}; no other roots)",
                path.display(),
                if n == 1 { "" } else { "s" }
            ),
            AnchorSource::System => format!("the system's trust store, {n} CAs"),
        }
    }
}

fn read_certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| TlsError::file(path, what, e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::file(path, what, format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError::file(path, what, "holds no PEM certificate"));
    }
    Ok(certs)
}

/// A TLS setting that cannot be turned into a client configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsError {
    /// A file named in the settings is missing, unreadable or of the wrong kind.
    File {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    /// rustls refused the configuration.
    Setup(String),
}

impl TlsError {
    fn file(path: &Path, what: &'static str, reason: impl Into<String>) -> Self {
        TlsError::File {
            path: path.to_owned(),
            what,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::File { path, what, reason } => {
                write!(f, "TLS {what} {}: {reason}", path.display())
            }
            TlsError::Setup(reason) => write!(f, "cannot set up TLS: {reason}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// `verify-ca`: the chain must lead to a trusted CA; the name in it is not compared.
#[derive(Debug)]
struct ChainOnly {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `prefer` and `require`: encryption without authentication of the server, as libpq
/// does in these modes. The handshake's signatures are still checked.
#[derive(Debug)]
struct AnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The kind of connection on which a request for the password was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unverified {
    /// No TLS (mode `disable`, or `prefer` against a server without TLS).
    Plaintext,
    /// TLS whose certificate was not checked (`prefer`, `require`).
    Tls,
}

/// Why the agent would not answer a request that reveals the password (`request`, in the
/// protocol's words), on a connection of kind `channel` made with `settings`, and what
/// would allow it: the setting that verifies the server, then `alternative` (the
/// provider's other ways, each starting with "; or").
pub fn password_refusal(
    request: &str,
    channel: Unverified,
    settings: &TlsSettings,
    alternative: &str,
) -> String {
    let over = match channel {
        Unverified::Plaintext if settings.mode == TlsMode::Prefer => {
            "a plaintext connection (mode prefer, and the server said it has no TLS)".to_owned()
        }
        Unverified::Plaintext => format!("a plaintext connection (mode {})", settings.mode),
        Unverified::Tls => format!(
            "a TLS connection whose certificate was not checked (mode {})",
            settings.mode
        ),
    };
    format!(
        "the server asked for {request}; refused, because on {over} nothing shows that the peer is the database, and whoever answers at this address (anyone in the network path) would learn the password; to allow it, verify the server: {}{alternative}",
        settings.how_to_verify()
    )
}

/// Why a TLS connection failed, in words an operator acts on; `None` when `error` (or
/// anything in its source chain) is not about TLS. Reads rustls's error where the driver
/// keeps it, else the driver's text.
pub fn explain_failure(
    error: &(dyn std::error::Error + 'static),
    host: &str,
    mode: TlsMode,
) -> Option<String> {
    let mut text = String::new();
    let mut current = Some(error);
    while let Some(e) = current {
        let rustls_error = e.downcast_ref::<rustls::Error>().or_else(|| {
            e.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(r) = rustls_error {
            return Some(explain_rustls(r, host, mode));
        }
        text.push_str(&format!("{e} {e:?} "));
        current = e.source();
    }
    explain_text(&text, host, mode)
}

/// [`explain_failure`] for drivers that only keep the text of the TLS error.
pub fn explain_text(text: &str, host: &str, mode: TlsMode) -> Option<String> {
    let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    let reason = if has(&["UnknownIssuer", "unknown issuer", "UnknownCA", "unknown ca"]) {
        unknown_ca()
    } else if has(&[
        "NotValidForName",
        "not valid for name",
        "CertNotValidForName",
    ]) {
        name_mismatch(host)
    } else if has(&["Expired", "expired"]) && has(&["certificate", "Certificate"]) {
        "the server's certificate has expired (or the clock here is wrong)".to_owned()
    } else if has(&["NotValidYet"]) {
        "the server's certificate is not valid yet (or the clock here is wrong)".to_owned()
    } else if has(&[
        "server does not support TLS",
        "server does not have this capability",
        "does not support SSL",
    ]) {
        format!("the server does not offer TLS, and mode {mode} never falls back to plaintext")
    } else if has(&[
        "InvalidContentType",
        "corrupt message",
        "CorruptMessage",
        "TLS handshake timed out",
    ]) {
        "the server did not answer in TLS: is this its TLS port, and is TLS on there?".to_owned()
    } else if has(&["unexpected end of file", "UnexpectedEof"]) {
        // A plaintext mongod closes the connection on a ClientHello.
        "the server did not answer in TLS (it closed the connection in the handshake): is this its TLS port, and is TLS on there?".to_owned()
    } else if has(&[
        "CertificateRequired",
        "certificate required",
        "HandshakeFailure",
        "BadCertificate",
        "bad certificate",
        "peer sent no certificates",
    ]) {
        "the server refused the handshake (does it demand a client certificate? give --tls-cert-file and --tls-key-file)".to_owned()
    } else if has(&["InvalidCertificate", "invalid peer certificate"]) {
        "the server's certificate is invalid".to_owned()
    } else {
        return None;
    };
    Some(format!("TLS ({mode}) to {host} failed: {reason}"))
}

fn unknown_ca() -> String {
    "the server's certificate is not signed by a trusted CA (unknown CA; give the CA that signed it with --tls-ca-file)".to_owned()
}

fn name_mismatch(host: &str) -> String {
    format!(
        "the server's certificate is not valid for \"{host}\" (name mismatch; connect by a name or address the certificate lists)"
    )
}

fn explain_rustls(e: &rustls::Error, host: &str, mode: TlsMode) -> String {
    let reason = match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => unknown_ca(),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                name_mismatch(host)
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the server's certificate has expired (or the clock here is wrong)".to_owned()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the server's certificate is not valid yet (or the clock here is wrong)".to_owned()
            }
            other => format!("the server's certificate is invalid: {other:?}"),
        },
        other => {
            return explain_text(&format!("{other} {other:?}"), host, mode)
                .unwrap_or_else(|| format!("TLS ({mode}) to {host} failed: {other}"));
        }
    };
    format!("TLS ({mode}) to {host} failed: {reason}")
}

/// What a connection negotiated, for `test`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsStatus {
    /// Not encrypted.
    Plaintext,
    /// Encrypted; the protocol (e.g. "TLSv1.3") and cipher suite when known.
    Encrypted {
        protocol: String,
        cipher: Option<String>,
    },
    /// The provider cannot tell.
    Unknown,
}

impl TlsStatus {
    /// One line for `test`: protocol and whether the certificate was verified.
    pub fn describe(&self, settings: &TlsSettings) -> String {
        let origin = format!("mode {} from {}", settings.mode, settings.origin.describe());
        match self {
            TlsStatus::Plaintext => {
                format!("not encrypted ({origin}); passwords cross the network in the clear")
            }
            TlsStatus::Encrypted { protocol, cipher } => format!(
                "{protocol}{} ({origin}); {}",
                cipher
                    .as_ref()
                    .map(|c| format!(", {c}"))
                    .unwrap_or_default(),
                settings.verification()
            ),
            TlsStatus::Unknown => format!("{origin}; the negotiated protocol is not known"),
        }
    }
}

/// Why [`probe`] got no TLS session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeFailure {
    /// No TCP connection (or no address): not a TLS matter.
    Connect(String),
    /// The handshake failed or went unanswered; explained in operator's words.
    Handshake(String),
}

/// For drivers that do not show their TLS session (Redis, MongoDB): plaintext when the
/// target asks for no TLS, else what a handshake of our own with the same settings says
/// the server negotiates.
pub fn probe_target(target: &super::Target) -> TlsStatus {
    if !target.tls.demands_tls() {
        return TlsStatus::Plaintext;
    }
    probe(
        &target.host,
        target.port,
        &target.tls,
        target.timeouts.connect,
    )
    .unwrap_or(TlsStatus::Unknown)
}

/// Opens a TCP connection to a server that speaks TLS from the first byte (Redis on its
/// `tls-port`, MongoDB), completes a handshake with `settings`, and says what was
/// negotiated. Sends nothing but the handshake: for `test`, and to explain a driver's
/// failure that does not say whether the handshake was answered.
pub fn probe(
    host: &str,
    port: u16,
    settings: &TlsSettings,
    timeout: Duration,
) -> Result<TlsStatus, ProbeFailure> {
    let connect = |e: std::io::Error| ProbeFailure::Connect(e.to_string());
    let config = settings
        .client_config()
        .map_err(|e| ProbeFailure::Handshake(e.to_string()))?;
    let name = ServerName::try_from(host.to_owned()).map_err(|_| {
        ProbeFailure::Handshake(format!(
            "\"{host}\" is not a host name or IP address TLS can check"
        ))
    })?;
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(connect)?
        .next()
        .ok_or_else(|| ProbeFailure::Connect(format!("{host} has no address")))?;
    let mut tcp = TcpStream::connect_timeout(&addr, timeout).map_err(connect)?;
    tcp.set_read_timeout(Some(timeout)).map_err(connect)?;
    tcp.set_write_timeout(Some(timeout)).map_err(connect)?;
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name)
        .map_err(|e| ProbeFailure::Handshake(e.to_string()))?;
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut tcp) {
            let timed_out = matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            );
            let explained = if timed_out {
                explain_text("TLS handshake timed out", host, settings.mode)
            } else {
                explain_failure(&e, host, settings.mode)
            };
            return Err(ProbeFailure::Handshake(explained.unwrap_or_else(|| {
                format!("TLS ({}) to {host} failed: {e}", settings.mode)
            })));
        }
    }
    let status = TlsStatus::Encrypted {
        protocol: conn
            .protocol_version()
            .map(|v| match v {
                rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
                rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
                other => format!("{other:?}"),
            })
            .unwrap_or_default(),
        cipher: conn
            .negotiated_cipher_suite()
            .and_then(|c| c.suite().as_str().map(str::to_owned)),
    };
    conn.send_close_notify();
    let _ = conn.complete_io(&mut tcp);
    let _ = tcp.flush();
    let mut sink = [0u8; 1];
    let _ = tcp.read(&mut sink);
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

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
    fn failures_are_named() {
        let host = "db.example";
        let e = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let io = std::io::Error::other(e);
        let text = explain_failure(&io, host, TlsMode::VerifyFull).unwrap();
        assert!(
            text.contains("unknown CA") && text.contains(host) && text.contains("verify-full"),
            "{text}"
        );
        let text = explain_text(
            "invalid peer certificate: NotValidForName",
            host,
            TlsMode::VerifyFull,
        )
        .unwrap();
        assert!(text.contains("name mismatch"), "{text}");
        let text =
            explain_text("invalid peer certificate: Expired", host, TlsMode::VerifyCa).unwrap();
        assert!(
            text.contains("expired") && text.contains("verify-ca"),
            "{text}"
        );
        assert!(explain_text("connection refused", host, TlsMode::Require).is_none());
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
