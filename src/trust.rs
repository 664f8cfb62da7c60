//! Which certificate authorities the control-plane client trusts, decided once at start-up:
//! the system's trust store (as the official agent does), so an agent behind a
//! TLS-inspecting proxy or a private CA works the way every other program on the host does.
//!
//! - `SSL_CERT_FILE` / `SSL_CERT_DIR` replace the system store (OpenSSL's and Go's meaning).
//! - `SIKKERKEY_CA_FILE` adds the CAs in one PEM file to whatever else is trusted.
//! - Where the system has no CA bundle at all (a minimal container image), the Mozilla root
//!   set compiled into the binary is used instead.
//!
//! Only certificate loading lives here; `api/` hands the result to the HTTP client.

use std::fmt;
use std::path::{Path, PathBuf};

/// The agent's own variable for an extra CA file (read by `settings.rs`, named in messages).
pub const CA_FILE_VAR: &str = "SIKKERKEY_CA_FILE";
const SSL_CERT_FILE: &str = "SSL_CERT_FILE";
const SSL_CERT_DIR: &str = "SSL_CERT_DIR";

/// The trust anchors for control-plane connections.
pub struct TrustRoots {
    /// DER certificates to trust; empty means the bundled root set.
    pub certificates: Vec<Vec<u8>>,
    /// For the start-up log line: where the anchors came from.
    pub description: String,
}

impl TrustRoots {
    pub fn bundled(&self) -> bool {
        self.certificates.is_empty()
    }
}

/// A trust setting that names a file the agent cannot use.
#[derive(Debug)]
pub struct TrustError {
    /// The environment variable that named the file.
    pub variable: &'static str,
    pub path: PathBuf,
    pub reason: String,
}

impl fmt::Display for TrustError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot use the CA certificates in {}={}: {} (point it at a readable PEM file of CA certificates, or unset it)",
            self.variable,
            self.path.display(),
            self.reason
        )
    }
}

impl std::error::Error for TrustError {}

/// Reads the trust anchors the environment asks for (see the module documentation), plus
/// the CAs in `ca_file` (`SIKKERKEY_CA_FILE`). A variable that is set must be usable:
/// empty, unreadable, or holding no certificate is an error naming it, never a quiet
/// fallback to another store.
pub fn load(ca_file: Option<&Path>) -> Result<TrustRoots, TrustError> {
    let file = named_path(SSL_CERT_FILE)?;
    let dirs = named_path(SSL_CERT_DIR)?;
    let (mut certificates, mut description) = if file.is_none() && dirs.is_none() {
        let system = rustls_native_certs::load_native_certs();
        if !system.errors.is_empty() {
            log::debug!(
                "reading the system trust store: {}",
                reasons(&system.errors, "")
            );
        }
        let certificates: Vec<Vec<u8>> = system.certs.iter().map(|c| c.to_vec()).collect();
        let description = format!("the system trust store ({})", count(certificates.len()));
        (certificates, description)
    } else {
        // Asked for by name: what is named replaces the system store, and every part of
        // it must load.
        let mut certificates = Vec::new();
        let mut named = Vec::new();
        if let Some(path) = &file {
            let loaded = rustls_native_certs::load_certs_from_paths(Some(path), None);
            if loaded.certs.is_empty() || !loaded.errors.is_empty() {
                return Err(TrustError {
                    variable: SSL_CERT_FILE,
                    path: path.clone(),
                    reason: reasons(&loaded.errors, "it holds no PEM certificate"),
                });
            }
            certificates.extend(loaded.certs.iter().map(|c| c.to_vec()));
            named.push(format!("{SSL_CERT_FILE}={}", path.display()));
        }
        if let Some(list) = &dirs {
            for dir in std::env::split_paths(list).filter(|d| !d.as_os_str().is_empty()) {
                let loaded = rustls_native_certs::load_certs_from_paths(None, Some(&dir));
                if !loaded.errors.is_empty() {
                    return Err(TrustError {
                        variable: SSL_CERT_DIR,
                        path: dir,
                        reason: reasons(&loaded.errors, ""),
                    });
                }
                certificates.extend(loaded.certs.iter().map(|c| c.to_vec()));
            }
            named.push(format!("{SSL_CERT_DIR}={}", list.display()));
        }
        certificates.sort();
        certificates.dedup();
        if certificates.is_empty() {
            return Err(TrustError {
                variable: SSL_CERT_DIR,
                path: dirs.unwrap_or_default(),
                reason: "it holds no PEM certificate".into(),
            });
        }
        let description = format!("{} ({})", named.join(" "), count(certificates.len()));
        (certificates, description)
    };
    if certificates.is_empty() {
        description = "the bundled Mozilla root set (no system trust store found)".into();
    }
    if let Some(path) = ca_file.map(Path::to_path_buf) {
        let extra = rustls_native_certs::load_certs_from_paths(Some(&path), None);
        if extra.certs.is_empty() || !extra.errors.is_empty() {
            return Err(TrustError {
                variable: CA_FILE_VAR,
                path,
                reason: reasons(&extra.errors, "it holds no PEM certificate"),
            });
        }
        if certificates.is_empty() {
            // The bundled set cannot be combined with loaded certificates: a private CA or
            // an inspecting proxy's CA is then all there is to trust, which is what it signs.
            description = format!("{CA_FILE_VAR}={} only", path.display());
        } else {
            description.push_str(&format!(" and {CA_FILE_VAR}={}", path.display()));
        }
        certificates.extend(extra.certs.iter().map(|c| c.to_vec()));
    }
    Ok(TrustRoots {
        certificates,
        description,
    })
}

/// The path a trust variable names; set but empty is an error (OpenSSL would read an empty
/// path and trust nothing; skipping it would trust another store than the one asked for).
fn named_path(variable: &'static str) -> Result<Option<PathBuf>, TrustError> {
    match std::env::var_os(variable) {
        None => Ok(None),
        Some(v) if v.is_empty() => Err(TrustError {
            variable,
            path: PathBuf::new(),
            reason: "it is set but empty".into(),
        }),
        Some(v) => Ok(Some(PathBuf::from(v))),
    }
}

fn count(cas: usize) -> String {
    match cas {
        1 => "1 CA".into(),
        n => format!("{n} CAs"),
    }
}

fn reasons(errors: &[rustls_native_certs::Error], none: &str) -> String {
    if errors.is_empty() {
        return none.to_owned();
    }
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}
