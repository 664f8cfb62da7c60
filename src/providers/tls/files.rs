//! The files TLS settings name: CA certificates and the client's certificate and key,
//! read as PEM, and the one error for a file or setting rustls cannot use.

use std::fmt;
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The certificates in a PEM file; `what` names the file in errors ("CA file").
pub fn read_certs(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| TlsError::file(path, what, e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::file(path, what, format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError::file(path, what, "holds no PEM certificate"));
    }
    Ok(certs)
}

/// A client certificate chain and its private key, for mutual TLS.
pub type ClientIdentity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// The client certificate chain in `cert` and its private key in `key`.
pub fn client_identity(cert: &Path, key: &Path) -> Result<ClientIdentity, TlsError> {
    let chain = read_certs(cert, "client certificate file")?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        TlsError::file(key, "client key file", format!("no private key in it: {e}"))
    })?;
    Ok((chain, key_der))
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
    pub fn file(path: &Path, what: &'static str, reason: impl Into<String>) -> Self {
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
