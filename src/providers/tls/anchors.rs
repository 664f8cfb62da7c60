//! The one trust decision every provider's verify modes share: exactly the certificates
//! in the CA file, or, without one, the system's store; as a rustls root store for the
//! drivers that take one and as PEM for those that take files.

use std::path::{Path, PathBuf};

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;

use super::files::{TlsError, read_certs};

/// Where the trusted certificates came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnchorSource {
    CaFile(PathBuf),
    System,
}

/// The certificates a verifying connection trusts.
pub struct TrustAnchors {
    pub store: RootCertStore,
    /// The certificates as read, for drivers that want them as PEM.
    pub certs: Vec<CertificateDer<'static>>,
    pub source: AnchorSource,
}

impl TrustAnchors {
    /// The CA file's certificates, or the system's store when there is no CA file. An
    /// empty system store is an error (it would refuse every server), never a silent
    /// switch to another set of roots.
    pub fn load(ca_file: Option<&Path>) -> Result<TrustAnchors, TlsError> {
        let (certs, source) = match ca_file {
            Some(path) => (
                read_certs(path, "CA file")?,
                AnchorSource::CaFile(path.to_owned()),
            ),
            None => (
                rustls_native_certs::load_native_certs().certs,
                AnchorSource::System,
            ),
        };
        let mut store = RootCertStore::empty();
        let (added, _) = store.add_parsable_certificates(certs.iter().cloned());
        if added == 0 {
            return Err(match ca_file {
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

    /// The certificates as PEM text, for drivers that take a root certificate file or
    /// buffer rather than a rustls configuration (Redis, MongoDB).
    pub fn to_pem(&self) -> Vec<u8> {
        use base64::Engine;
        let mut pem = Vec::new();
        for cert in &self.certs {
            let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
            pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
            for line in b64.as_bytes().chunks(64) {
                pem.extend_from_slice(line);
                pem.push(b'\n');
            }
            pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
        }
        pem
    }

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
