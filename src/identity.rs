//! The machine identity the official CLI bootstraps: where `SIKKERKEY_HOME` is, which vault
//! to use, the Ed25519 key, and the signature every API request carries.
//!
//! File layout and vault selection follow protocol.md so an existing CLI install works as is.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use ed25519_dalek::{Signer as _, SigningKey};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::fsutil::{self, JsonFileError};
use crate::json_problem::JsonProblem;
use crate::secret_file::SecretFileError;

/// Errors finding or loading the identity. Each says which file and what to do.
#[derive(Debug)]
pub enum IdentityError {
    /// No home directory and no `SIKKERKEY_HOME`.
    NoHome,
    /// No vault directory holds an identity.json.
    NoVault { vaults_dir: PathBuf },
    /// Several vaults and none chosen.
    AmbiguousVault { vaults: Vec<String> },
    /// The chosen vault (by env or default) has no identity.json.
    UnknownVault { name: String, vaults: Vec<String> },
    /// A file could not be read.
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// identity.json or cli_global.json is not valid JSON of the expected shape.
    Parse { path: PathBuf, source: JsonProblem },
    /// The private key is readable by group or others, or cannot be read
    /// ([`crate::secret_file`]'s rule).
    Key(SecretFileError),
    /// The private key is not a PKCS#8 PEM Ed25519 key.
    BadKey { path: PathBuf, reason: String },
    /// The API URL is not https (and not loopback http).
    InsecureApiUrl { url: String },
    /// The API URL does not parse, or has parts the agent refuses (user info, a query).
    BadApiUrl { url: String, reason: String },
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityError::NoHome => write!(f, "cannot find a home directory; set SIKKERKEY_HOME"),
            IdentityError::NoVault { vaults_dir } => write!(
                f,
                "no SikkerKey identity found under {}; bootstrap this machine with `sikkerkey connect` and `sikkerkey unlock`, or set SIKKERKEY_HOME",
                vaults_dir.display()
            ),
            IdentityError::AmbiguousVault { vaults } => write!(
                f,
                "several vaults are set up ({}) and none is chosen; set SIKKERKEY_VAULT to one of them or set default_vault in cli_global.json",
                vaults.join(", ")
            ),
            IdentityError::UnknownVault { name, vaults } => write!(
                f,
                "vault \"{name}\" has no identity.json; known vaults: {}",
                if vaults.is_empty() {
                    "none".to_owned()
                } else {
                    vaults.join(", ")
                }
            ),
            IdentityError::Read { path, .. } => write!(f, "cannot read {}", path.display()),
            IdentityError::Parse { path, .. } => write!(f, "{} is not valid", path.display()),
            IdentityError::Key(e) => write!(f, "{e}"),
            IdentityError::BadKey { path, reason } => {
                write!(
                    f,
                    "{} is not a PKCS#8 PEM Ed25519 private key: {reason}",
                    path.display()
                )
            }
            IdentityError::InsecureApiUrl { url } => write!(
                f,
                "refusing API URL \"{url}\": use https:// (plain http:// is allowed only for a loopback host)"
            ),
            IdentityError::BadApiUrl { url, reason } => {
                write!(f, "refusing API URL \"{url}\": {reason}")
            }
        }
    }
}

impl std::error::Error for IdentityError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            IdentityError::Read { source, .. } => Some(source),
            IdentityError::Parse { source, .. } => Some(source),
            IdentityError::Key(e) => e.source(),
            _ => None,
        }
    }
}

impl From<JsonFileError> for IdentityError {
    fn from(e: JsonFileError) -> Self {
        match e {
            JsonFileError::Read { path, source } => IdentityError::Read { path, source },
            JsonFileError::Parse { path, source } => IdentityError::Parse { path, source },
        }
    }
}

/// `$SIKKERKEY_HOME` (passed in as `configured`), else `~/.sikkerkey`.
pub fn sikkerkey_home(configured: Option<&Path>) -> Result<PathBuf, IdentityError> {
    if let Some(h) = configured.filter(|h| !h.as_os_str().is_empty()) {
        return Ok(h.to_owned());
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".sikkerkey"))
        .ok_or(IdentityError::NoHome)
}

/// identity.json as the CLI writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityFile {
    pub machine_id: String,
    #[serde(default)]
    pub machine_name: String,
    #[serde(default)]
    pub vault_id: String,
    #[serde(default)]
    pub api_url: String,
    #[serde(default)]
    pub private_key_path: String,
}

#[derive(Debug, Default, Deserialize)]
struct GlobalConfig {
    #[serde(default)]
    default_vault: String,
    #[serde(default)]
    vault_aliases: BTreeMap<String, String>,
}

/// A loaded identity: who this machine is, where the API is, and its signing key.
pub struct Identity {
    pub machine_id: String,
    pub vault_id: String,
    pub api_url: String,
    signer: RequestSigner,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("machine_id", &self.machine_id)
            .field("vault_id", &self.vault_id)
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Loads the identity of the vault `vault` names (`SIKKERKEY_VAULT`; protocol.md
    /// "Which vault"); `api_url` (`SIKKERKEY_API_URL`) overrides the identity's.
    pub fn load(
        home: &Path,
        vault: Option<&str>,
        api_url: Option<&str>,
    ) -> Result<Identity, IdentityError> {
        let vault_dir = select_vault(home, vault)?;
        let id_path = vault_dir.join("identity.json");
        let file: IdentityFile = fsutil::load_json(&id_path)
            .map_err(IdentityError::from)?
            .ok_or_else(|| IdentityError::Read {
                path: id_path.clone(),
                source: std::io::ErrorKind::NotFound.into(),
            })?;
        let key_path = if file.private_key_path.is_empty() {
            vault_dir.join("private.pem")
        } else {
            let p = PathBuf::from(&file.private_key_path);
            if p.is_absolute() {
                p
            } else {
                vault_dir.join(p)
            }
        };
        let signer = RequestSigner::from_pem_file(&key_path, &file.machine_id)?;
        let api_url = api_url
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| file.api_url.clone());
        let api_url = check_api_url(&api_url)?;
        let vault_id = if file.vault_id.is_empty() {
            vault_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        } else {
            file.vault_id.clone()
        };
        Ok(Identity {
            machine_id: file.machine_id,
            vault_id,
            api_url,
            signer,
        })
    }

    pub fn signer(&self) -> &RequestSigner {
        &self.signer
    }

    pub fn into_signer(self) -> RequestSigner {
        self.signer
    }
}

/// Vault ids that have an identity.json, sorted.
pub fn list_vaults(home: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(home.join("vaults"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("identity.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

/// Picks the vault directory: `SIKKERKEY_VAULT` (alias or id), else `default_vault`, else
/// the only vault there is.
pub fn select_vault(home: &Path, env_choice: Option<&str>) -> Result<PathBuf, IdentityError> {
    let vaults = list_vaults(home);
    let global_path = home.join("cli_global.json");
    let global: GlobalConfig = fsutil::load_json(&global_path)?.unwrap_or_default();
    let chosen = env_choice
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .or_else(|| Some(global.default_vault.clone()).filter(|s| !s.is_empty()));
    let id = match chosen {
        Some(name) => {
            let id = global
                .vault_aliases
                .get(&name)
                .cloned()
                .unwrap_or(name.clone());
            if !vaults.contains(&id) {
                return Err(IdentityError::UnknownVault { name, vaults });
            }
            id
        }
        None => match vaults.len() {
            0 => {
                return Err(IdentityError::NoVault {
                    vaults_dir: home.join("vaults"),
                });
            }
            1 => vaults[0].clone(),
            _ => return Err(IdentityError::AmbiguousVault { vaults }),
        },
    };
    Ok(home.join("vaults").join(id))
}

/// Accepts https URLs, and http only for loopback hosts. Returns the URL without a trailing `/`.
///
/// The URL is split the way RFC 3986 and the HTTP client (`http::Uri`, under ureq) split
/// it, so the host checked is the host connected to: in `http://127.0.0.1:80@evil.example`
/// that is `evil.example` (`api/client.rs` has a test holding the two parsers to the same answer).
/// User info is refused outright (the agent authenticates by signature; credentials in a
/// URL only end up in logs). A path prefix (`https://host/sikkerkey`) is kept: requests go
/// to `{prefix}/v1/...` and the signature covers that whole path.
pub fn check_api_url(url: &str) -> Result<String, IdentityError> {
    let trimmed = url.trim().trim_end_matches('/');
    let bad = |reason: &str| IdentityError::BadApiUrl {
        url: redact_user_info(trimmed),
        reason: reason.to_owned(),
    };
    let parts = UrlParts::split(trimmed).ok_or_else(|| {
        bad("it does not parse as a URL; write it as https://host[:port][/prefix]")
    })?;
    if parts.user_info {
        return Err(bad(
            "it carries user info (`user@` before the host); remove it, the agent signs its requests instead",
        ));
    }
    if parts.query_or_fragment {
        return Err(bad(
            "it has a query or fragment; give only scheme, host, port and path",
        ));
    }
    if parts.host.is_empty() {
        return Err(bad("it has no host"));
    }
    let insecure = || IdentityError::InsecureApiUrl {
        url: trimmed.to_owned(),
    };
    match parts.scheme.to_ascii_lowercase().as_str() {
        "https" => Ok(trimmed.to_owned()),
        "http" => {
            let bare = parts.host.trim_start_matches('[').trim_end_matches(']');
            let loopback = bare.eq_ignore_ascii_case("localhost")
                || bare
                    .parse::<std::net::IpAddr>()
                    .map(|ip| ip.is_loopback())
                    .unwrap_or(false);
            if loopback {
                Ok(trimmed.to_owned())
            } else {
                Err(insecure())
            }
        }
        _ => Err(insecure()),
    }
}

/// The parts of an absolute URL the API URL check looks at (RFC 3986, section 3).
#[derive(Debug, PartialEq, Eq)]
pub struct UrlParts<'a> {
    pub scheme: &'a str,
    /// The authority's host, IPv6 literals with their brackets.
    pub host: &'a str,
    pub user_info: bool,
    pub query_or_fragment: bool,
}

impl<'a> UrlParts<'a> {
    /// `scheme://authority[path][?query][#fragment]`; `None` when there is no `//`.
    pub fn split(url: &'a str) -> Option<UrlParts<'a>> {
        let (scheme, rest) = url.split_once("://")?;
        if scheme.is_empty()
            || !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            return None;
        }
        // The authority ends at the first '/', '?' or '#'; user info ends at its last '@'.
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (user_info, host_port) = match authority.rfind('@') {
            Some(at) => (true, &authority[at + 1..]),
            None => (false, authority),
        };
        let host = if host_port.starts_with('[') {
            &host_port[..host_port.find(']')? + 1]
        } else {
            host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
        };
        Some(UrlParts {
            scheme,
            host,
            user_info,
            query_or_fragment: tail.contains(['?', '#']),
        })
    }
}

/// `url` with anything between `//` and the last `@` of the authority replaced, for messages.
fn redact_user_info(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// The four authentication headers of one request.
#[derive(Debug, Clone)]
pub struct SignedHeaders {
    pub machine_id: String,
    pub timestamp: String,
    pub nonce: String,
    pub signature: String,
}

/// Signs requests with the machine's Ed25519 key.
pub struct RequestSigner {
    key: SigningKey,
    machine_id: String,
}

impl RequestSigner {
    /// Loads a PKCS#8 PEM key, refusing one that group or others can read.
    pub fn from_pem_file(path: &Path, machine_id: &str) -> Result<Self, IdentityError> {
        let bytes = crate::secret_file::read(path, "the identity's private key")
            .map_err(IdentityError::Key)?;
        let pem = String::from_utf8(bytes).map_err(|_| IdentityError::BadKey {
            path: path.to_owned(),
            reason: "it is not text".into(),
        })?;
        let key = SigningKey::from_pkcs8_pem(&pem).map_err(|e| IdentityError::BadKey {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(RequestSigner {
            key,
            machine_id: machine_id.to_owned(),
        })
    }

    pub fn from_key(key: SigningKey, machine_id: &str) -> Self {
        RequestSigner {
            key,
            machine_id: machine_id.to_owned(),
        }
    }

    /// Headers for `METHOD path` with `body`, timestamped now with a fresh nonce.
    pub fn sign(&self, method: &str, path: &str, body: &[u8]) -> SignedHeaders {
        let timestamp = crate::clock::unix_now().to_string();
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).expect("the operating system's random number generator failed");
        let nonce = B64.encode(nonce);
        let message = signing_message(method, path, &timestamp, &nonce, body);
        let signature = B64.encode(self.key.sign(message.as_bytes()).to_bytes());
        SignedHeaders {
            machine_id: self.machine_id.clone(),
            timestamp,
            nonce,
            signature,
        }
    }
}

/// `{METHOD}:{PATH}:{TIMESTAMP}:{NONCE}:{BODY_SHA256_HEX}` (protocol.md).
pub fn signing_message(
    method: &str,
    path: &str,
    timestamp: &str,
    nonce: &str,
    body: &[u8],
) -> String {
    format!("{method}:{path}:{timestamp}:{nonce}:{}", sha256_hex(body))
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    crate::hex::lower(&Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Verifier;

    #[test]
    fn empty_body_hash_matches_protocol() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn signature_verifies_over_the_documented_message() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let signer = RequestSigner::from_key(key.clone(), "m1");
        let h = signer.sign("POST", "/v1/secret/sk_1/agent/heartbeat", b"{}");
        assert_eq!(B64.decode(&h.nonce).unwrap().len(), 16);
        let msg = signing_message(
            "POST",
            "/v1/secret/sk_1/agent/heartbeat",
            &h.timestamp,
            &h.nonce,
            b"{}",
        );
        let sig = ed25519_dalek::Signature::from_slice(&B64.decode(&h.signature).unwrap()).unwrap();
        key.verifying_key().verify(msg.as_bytes(), &sig).unwrap();
    }

    #[test]
    fn api_url_rules() {
        assert!(check_api_url("https://api.sikkerkey.com/").is_ok());
        assert!(check_api_url("http://127.0.0.1:8080").is_ok());
        assert!(check_api_url("http://localhost:1/x").is_ok());
        assert!(check_api_url("http://[::1]:80").is_ok());
        assert!(check_api_url("http://db.internal:80").is_err());
        assert!(check_api_url("http://127.0.0.1.evil.com").is_err());
        assert!(check_api_url("ftp://x").is_err());
        // The host is the one after user info, as the HTTP client reads it.
        assert!(check_api_url("http://127.0.0.1:80@evil.example").is_err());
        assert!(check_api_url("https://user:pw@api.sikkerkey.com").is_err());
        let e = check_api_url("https://user:hunter2@api.sikkerkey.com/x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("user info") && !e.contains("hunter2"), "{e}");
        assert!(check_api_url("https://api.example.com/?x=1").is_err());
        assert_eq!(
            check_api_url("https://api.example.com/sikkerkey/").unwrap(),
            "https://api.example.com/sikkerkey"
        );
    }

    #[test]
    fn vault_selection() {
        let home = std::env::temp_dir().join(format!("ska-vaults-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        assert!(matches!(
            select_vault(&home, None),
            Err(IdentityError::NoVault { .. })
        ));
        for v in ["va", "vb"] {
            std::fs::create_dir_all(home.join("vaults").join(v)).unwrap();
            std::fs::write(home.join("vaults").join(v).join("identity.json"), "{}").unwrap();
        }
        assert!(matches!(
            select_vault(&home, None),
            Err(IdentityError::AmbiguousVault { .. })
        ));
        assert!(select_vault(&home, Some("vb")).unwrap().ends_with("vb"));
        std::fs::write(
            home.join("cli_global.json"),
            r#"{"default_vault":"va","vault_aliases":{"prod":"vb"}}"#,
        )
        .unwrap();
        assert!(select_vault(&home, None).unwrap().ends_with("va"));
        assert!(select_vault(&home, Some("prod")).unwrap().ends_with("vb"));
        assert!(matches!(
            select_vault(&home, Some("nope")),
            Err(IdentityError::UnknownVault { .. })
        ));
        std::fs::remove_dir_all(&home).unwrap();
    }
}
