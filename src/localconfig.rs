//! The local agent config `agents/{secretId}.json` that `configure` writes (same format as
//! the official CLI). When present it overrides the server's connection details; the
//! merge of the two ([`build_target`]) lives here, beside the format it reads.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::api::{Connection, SyncConfig};
use crate::fsutil::{self, JsonFileError};
use crate::providers::{DbTimeouts, ProviderKind, Target, TlsSettings, UnknownProvider};
use crate::secret::FieldNames;
use crate::secret_file::{self, SecretFileError};

/// Connection block of the local config. `Debug` is safe: the password is a [`Secret`].
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct LocalConnection {
    /// The same fields as the sync config's, at the same level of the JSON.
    #[serde(flatten)]
    pub db: Connection,
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
    /// It cannot be read, or others may read it ([`crate::secret_file`]: it holds the
    /// admin password).
    File(SecretFileError),
    /// It is not a local config.
    Json(JsonFileError),
}

impl fmt::Display for LocalConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocalConfigError::File(e @ SecretFileError::TooOpen { .. }) => write!(f, "{e}"),
            LocalConfigError::File(e) => {
                write!(f, "cannot read local agent config {}", e.path().display())
            }
            LocalConfigError::Json(e) => write!(
                f,
                "local agent config {} is not valid JSON of the expected shape; fix it or run `configure` again",
                e.path().display()
            ),
        }
    }
}

impl std::error::Error for LocalConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LocalConfigError::File(e) => e.source(),
            LocalConfigError::Json(e) => e.source(),
        }
    }
}

impl LocalConfig {
    /// Reads the config at `path`; `Ok(None)` when there is none. Refused when group or
    /// others may read it, as every file holding a credential is.
    pub fn load(path: &Path) -> Result<Option<LocalConfig>, LocalConfigError> {
        let Some(bytes) = secret_file::read_optional(path, "local agent config")
            .map_err(LocalConfigError::File)?
        else {
            return Ok(None);
        };
        let text = String::from_utf8(bytes).map_err(|e| {
            LocalConfigError::File(SecretFileError::Read {
                what: "local agent config",
                path: path.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()),
            })
        })?;
        fsutil::parse_json(path, &text)
            .map(Some)
            .map_err(LocalConfigError::Json)
    }
}

/// Local config and sync config together cannot name a usable database.
#[derive(Debug)]
pub enum TargetError {
    /// A provider type this agent does not know.
    UnknownProvider(UnknownProvider),
    /// The local config names another provider than the server.
    ProviderMismatch { local: String, server: String },
    /// The provider is known but this build lacks its driver.
    NotCompiledIn(ProviderKind),
    /// Neither config names a database host.
    NoHost,
    /// The TLS settings (local config or PGSSL* variables) contradict themselves.
    Tls(String),
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::UnknownProvider(e) => write!(f, "{e}"),
            TargetError::ProviderMismatch { local, server } => write!(
                f,
                "the local agent config says provider \"{local}\" but SikkerKey says \"{server}\"; fix the local config with `configure` or remove it"
            ),
            TargetError::NotCompiledIn(kind) => write!(
                f,
                "this build of sikkerkey-agent has no {} support; use a build with all providers",
                kind.display_name()
            ),
            TargetError::NoHost => f.write_str(
                "no database host in the sync config or the local config; set one with `configure --host`",
            ),
            TargetError::Tls(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for TargetError {}

/// What [`crate::secret_file`]'s messages call a TLS client key (or a combined certificate
/// and key file).
pub const TLS_KEY: &str = "TLS client key";

/// Builds the database target from the sync config, with the local config's connection
/// details (when present and non-empty) taking precedence.
pub fn build_target(
    sync: &SyncConfig,
    local: Option<&LocalConfig>,
    db: DbTimeouts,
) -> Result<(Target, FieldNames), TargetError> {
    let server_kind = sync.provider_type.trim();
    let kind: ProviderKind = match local
        .map(|l| l.provider_type.trim())
        .filter(|t| !t.is_empty())
    {
        Some(local_kind) => {
            if !server_kind.is_empty() && server_kind != local_kind {
                return Err(TargetError::ProviderMismatch {
                    local: local_kind.to_owned(),
                    server: server_kind.to_owned(),
                });
            }
            local_kind.parse().map_err(TargetError::UnknownProvider)?
        }
        None => server_kind.parse().map_err(TargetError::UnknownProvider)?,
    };
    if !kind.is_compiled_in() {
        return Err(TargetError::NotCompiledIn(kind));
    }
    let s = &sync.connection;
    let pick = |local: Option<&str>, server: &str| {
        local.filter(|v| !v.is_empty()).unwrap_or(server).to_owned()
    };
    let l = local.map(|l| &l.connection.db);
    let port = l.map(|l| l.port).filter(|p| *p != 0).unwrap_or(s.port);
    let admin_pass = match l.filter(|l| !l.admin_pass.is_empty()) {
        Some(l) => l.admin_pass.clone(),
        None => s.admin_pass.clone(),
    };
    let target = Target {
        kind,
        host: pick(l.map(|l| l.host.as_str()), &s.host),
        port: if port == 0 { kind.default_port() } else { port },
        database: pick(l.map(|l| l.database.as_str()), &s.database),
        admin_user: pick(l.map(|l| l.admin_user.as_str()), &s.admin_user),
        admin_pass,
        project_reference: pick(
            l.map(|l| l.project_reference.as_str()),
            &s.project_reference,
        ),
        timeouts: db,
        // The local config's tls object, else libpq's PGSSL* (PostgreSQL), else the default.
        tls: TlsSettings::resolve(kind, local.and_then(|l| l.tls.as_ref()), &|name| {
            std::env::var(name).ok()
        })
        .map_err(TargetError::Tls)?,
    };
    if target.host.is_empty() {
        return Err(TargetError::NoHost);
    }
    if let Some(key) = &target.tls.key_file {
        secret_file::check(key, TLS_KEY).map_err(|e| TargetError::Tls(e.to_string()))?;
    }
    let overrides = local.map(|l| &l.connection);
    let fields = FieldNames::with_overrides(
        overrides.map(|o| o.username_field.as_str()),
        overrides.map(|o| o.password_field.as_str()),
    );
    Ok((target, fields))
}

/// Turns each sync config into the database target, so that connection details changed
/// in the dashboard (a new admin password, say) take effect without a restart. The local
/// config, read at start-up and again on SIGHUP (`agent::reload`), keeps precedence;
/// clones share it.
#[derive(Debug, Clone)]
pub struct TargetSource {
    pub local: Arc<RwLock<Option<LocalConfig>>>,
    pub db: DbTimeouts,
}

impl TargetSource {
    pub fn new(local: Option<LocalConfig>, db: DbTimeouts) -> Self {
        TargetSource {
            local: Arc::new(RwLock::new(local)),
            db,
        }
    }

    pub fn resolve(&self, sync: &SyncConfig) -> Result<(Target, FieldNames), TargetError> {
        let local = self.local.read().unwrap_or_else(|e| e.into_inner());
        build_target(sync, local.as_ref(), self.db)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file is shared with the official CLI: the same keys, flat, in the same order.
    #[test]
    fn the_file_format_round_trips_unchanged() {
        let text = r#"{
  "secretId": "sk_1",
  "providerType": "mysql",
  "connection": {
    "host": "db",
    "port": 3307,
    "database": "app",
    "adminUser": "root",
    "adminPass": "pw",
    "projectReference": "",
    "usernameField": "user"
  },
  "pollIntervalSeconds": 15
}"#;
        let config: LocalConfig = serde_json::from_str(text).unwrap();
        assert_eq!(config.connection.db.port, 3307);
        assert_eq!(config.connection.db.admin_pass.expose(), "pw");
        assert_eq!(config.connection.username_field, "user");
        assert_eq!(serde_json::to_string_pretty(&config).unwrap(), text);
    }
}
