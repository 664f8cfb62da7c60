//! The local agent config `agents/{secretId}.json` that `configure` writes (same format as
//! the official CLI). When present it overrides the server's connection details.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// Connection block of the local config. `Debug` is safe: the password is a [`Secret`].
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct LocalConnection {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub admin_user: String,
    #[serde(with = "crate::secret::serde_secret")]
    pub admin_pass: Secret,
    pub project_reference: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username_field: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub password_field: String,
}

/// `agents/{secretId}.json`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct LocalConfig {
    pub secret_id: String,
    pub provider_type: String,
    pub connection: LocalConnection,
    #[serde(skip_serializing_if = "is_zero")]
    pub poll_interval_seconds: u64,
    /// Database TLS; absent in files the official CLI writes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<crate::providers::tls::LocalTls>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// A local config that exists but cannot be used.
#[derive(Debug)]
pub enum LocalConfigError {
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

impl fmt::Display for LocalConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocalConfigError::Read { path, .. } => {
                write!(f, "cannot read local agent config {}", path.display())
            }
            LocalConfigError::Parse { path, .. } => write!(
                f,
                "local agent config {} is not valid JSON of the expected shape; fix it or run `configure` again",
                path.display()
            ),
        }
    }
}

impl std::error::Error for LocalConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LocalConfigError::Read { source, .. } => Some(source),
            LocalConfigError::Parse { source, .. } => Some(source),
        }
    }
}

impl LocalConfig {
    /// Reads the config at `path`; `Ok(None)` when there is none.
    pub fn load(path: &Path) -> Result<Option<LocalConfig>, LocalConfigError> {
        let text = crate::fsutil::read_optional(path).map_err(|source| LocalConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        text.map(|t| {
            serde_json::from_str(&t).map_err(|source| LocalConfigError::Parse {
                path: path.to_owned(),
                source,
            })
        })
        .transpose()
    }
}
