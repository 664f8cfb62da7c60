//! Running the agent as a system service, so nobody writes a unit file by hand: what the
//! service looks like ([`ServiceSpec`]), how each platform spells it ([`render`], pure),
//! and putting it in place and starting or removing it ([`install`], I/O).
//!
//! Names match the official CLI (`sikkerkey-agent-{id}.service`,
//! `com.sikkerkey.agent.{id}.plist`, `SikkerKeyAgent_{id}`), so either tool can remove a
//! service the other installed.

pub mod carried_env;
pub mod install;
pub mod render;
pub mod template;
pub mod timeouts;

use std::fmt;
use std::path::PathBuf;

use crate::files::check_secret_id;

/// A service manager the agent can be installed under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Systemd,
    Launchd,
    Windows,
}

impl Platform {
    pub fn parse(name: &str) -> Result<Platform, ServiceError> {
        match name {
            "systemd" | "linux" => Ok(Platform::Systemd),
            "launchd" | "macos" | "darwin" => Ok(Platform::Launchd),
            "windows" | "nssm" => Ok(Platform::Windows),
            other => Err(ServiceError::UnknownPlatform(other.to_owned())),
        }
    }

    /// The platform this binary was built for.
    pub fn native() -> Result<Platform, ServiceError> {
        if cfg!(target_os = "linux") {
            Ok(Platform::Systemd)
        } else if cfg!(target_os = "macos") {
            Ok(Platform::Launchd)
        } else if cfg!(target_os = "windows") {
            Ok(Platform::Windows)
        } else {
            Err(ServiceError::UnsupportedOs(std::env::consts::OS))
        }
    }
}

/// Everything a service definition is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    pub secret_id: String,
    /// Absolute path of the agent binary.
    pub exe: String,
    /// `SIKKERKEY_HOME` for the service: the identity and the agent's state directory.
    pub home: String,
    /// The account the service runs as (systemd).
    pub user: String,
    /// `SIKKERKEY_VAULT` at install time, so a machine with several vaults keeps its choice.
    pub vault: Option<String>,
    /// Proxy and CA variables set at install time ([`carried_env`]).
    pub network: Vec<(&'static str, String)>,
}

impl ServiceSpec {
    /// Checks every value before it goes into a file another program parses: no control
    /// characters (a newline would end a unit-file line), absolute paths, a plain user name.
    pub fn new(
        secret_id: &str,
        exe: &str,
        home: &str,
        user: &str,
        vault: Option<&str>,
    ) -> Result<ServiceSpec, ServiceError> {
        check_secret_id(secret_id).map_err(|e| ServiceError::BadValue {
            what: "secret id",
            reason: e.to_string(),
        })?;
        for (what, value) in [
            ("agent binary path", exe),
            ("SIKKERKEY_HOME", home),
            ("user name", user),
            ("SIKKERKEY_VAULT", vault.unwrap_or("")),
        ] {
            if value.chars().any(char::is_control) {
                return Err(ServiceError::BadValue {
                    what,
                    reason: format!("{value:?} contains a control character"),
                });
            }
        }
        for (what, value) in [("agent binary path", exe), ("SIKKERKEY_HOME", home)] {
            if !value.starts_with('/') {
                return Err(ServiceError::BadValue {
                    what,
                    reason: format!("\"{value}\" is not an absolute path"),
                });
            }
        }
        let user_ok = !user.is_empty()
            && !user.starts_with('-')
            && user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@' | '$'));
        if !user_ok {
            return Err(ServiceError::BadValue {
                what: "user name",
                reason: format!("\"{user}\" is not a user name systemd accepts"),
            });
        }
        let home = match home.trim_end_matches('/') {
            "" => "/",
            trimmed => trimmed,
        };
        Ok(ServiceSpec {
            secret_id: secret_id.to_owned(),
            exe: exe.to_owned(),
            home: home.to_owned(),
            user: user.to_owned(),
            vault: vault.filter(|v| !v.is_empty()).map(str::to_owned),
            network: Vec::new(),
        })
    }

    /// Adds the proxy and CA variables the service should run with, checked like every
    /// other value.
    pub fn with_network(
        mut self,
        network: Vec<(&'static str, String)>,
    ) -> Result<ServiceSpec, ServiceError> {
        for (what, value) in &network {
            if value.chars().any(char::is_control) {
                return Err(ServiceError::BadValue {
                    what,
                    reason: format!("{value:?} contains a control character"),
                });
            }
        }
        self.network = network;
        Ok(self)
    }

    /// The environment the service runs with.
    pub fn environment(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![("SIKKERKEY_HOME", self.home.clone())];
        if let Some(v) = &self.vault {
            env.push(("SIKKERKEY_VAULT", v.clone()));
        }
        env.extend(self.network.iter().cloned());
        env
    }

    /// Where launchd and NSSM send the agent's output.
    pub fn log_path(&self) -> String {
        format!(
            "{}/agents/{}.log",
            if self.home == "/" { "" } else { &self.home },
            self.secret_id
        )
    }

    pub fn systemd_unit_name(&self) -> String {
        format!("sikkerkey-agent-{}.service", self.secret_id)
    }

    pub fn launchd_label(&self) -> String {
        format!("com.sikkerkey.agent.{}", self.secret_id)
    }

    pub fn windows_service_name(&self) -> String {
        format!("SikkerKeyAgent_{}", self.secret_id.replace('-', "_"))
    }
}

/// Why a service could not be rendered, installed or removed.
#[derive(Debug)]
pub enum ServiceError {
    /// `SIKKERKEY_SERVICE_PLATFORM` names no platform we know.
    UnknownPlatform(String),
    /// Built for an OS without a supported service manager.
    UnsupportedOs(&'static str),
    /// A value cannot go into a service definition safely.
    BadValue { what: &'static str, reason: String },
    /// The user to run the service as, or their home, could not be found.
    NoUser(String),
    /// launchd user agents belong to the user; installing them as root misplaces them.
    LaunchdAsRoot,
    /// Writing or deleting a file failed.
    Io {
        what: String,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The service manager is not installed (not on PATH).
    ToolMissing { program: String, hint: String },
    /// A service manager command exited with an error.
    ToolFailed {
        command: String,
        status: String,
        /// The last line it printed, which usually says why.
        said: String,
    },
    /// `install --now` failed and took back what it had done.
    RolledBack {
        cause: Box<ServiceError>,
        /// The undo steps that worked.
        undone: Vec<String>,
        /// The undo steps that failed, with why.
        not_undone: Vec<String>,
        /// What is in place now.
        left: String,
    },
    /// `uninstall` deleted the definition but the service manager failed.
    Incomplete {
        done: String,
        failed: Vec<ServiceError>,
        hint: String,
    },
    /// No service definition exists to remove.
    NotInstalled {
        secret_id: String,
        looked_at: String,
    },
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceError::UnknownPlatform(p) => {
                write!(
                    f,
                    "unknown service platform \"{p}\" in SIKKERKEY_SERVICE_PLATFORM; use systemd, launchd or windows"
                )
            }
            ServiceError::UnsupportedOs(os) => write!(
                f,
                "no supported service manager on {os}; run `sikkerkey-agent start --secret ID` under your own supervisor"
            ),
            ServiceError::BadValue { what, reason } => write!(
                f,
                "cannot put the {what} into a service definition: {reason}"
            ),
            ServiceError::NoUser(reason) => write!(f, "{reason}"),
            ServiceError::LaunchdAsRoot => write!(
                f,
                "launchd agents belong to your user: run `install` without sudo so it goes to your ~/Library/LaunchAgents"
            ),
            ServiceError::Io { what, path, source } => {
                write!(f, "cannot {what} {}", path.display())?;
                if source.kind() == std::io::ErrorKind::PermissionDenied {
                    write!(f, " (permission denied; run with sudo)")?;
                }
                Ok(())
            }
            ServiceError::ToolMissing { program, hint } => {
                write!(f, "`{program}` was not found on PATH; {hint}")
            }
            ServiceError::ToolFailed {
                command,
                status,
                said,
            } => {
                write!(f, "`{command}` failed ({status})")?;
                if !said.is_empty() {
                    write!(f, ": {}", said.trim())?;
                }
                Ok(())
            }
            ServiceError::RolledBack {
                cause,
                undone,
                not_undone,
                left,
            } => {
                write!(f, "{cause}; ")?;
                if !undone.is_empty() {
                    write!(f, "rolled back ({}); ", undone.join(", "))?;
                }
                if !not_undone.is_empty() {
                    write!(f, "could not undo: {}; ", not_undone.join("; "))?;
                }
                write!(f, "{left}")
            }
            ServiceError::Incomplete { done, failed, hint } => {
                let failed: Vec<String> = failed.iter().map(|e| e.to_string()).collect();
                write!(f, "{done}, but {}; {hint}", failed.join("; "))
            }
            ServiceError::NotInstalled {
                secret_id,
                looked_at,
            } => {
                write!(
                    f,
                    "no service is installed for secret {secret_id} (looked for {looked_at})"
                )
            }
        }
    }
}

impl ServiceError {
    /// Whether this is a failed command whose command line starts with `prefix`.
    pub fn command_started_with(&self, prefix: &str) -> bool {
        matches!(self, ServiceError::ToolFailed { command, .. } if command.starts_with(prefix))
    }
}

impl std::error::Error for ServiceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServiceError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_would_break_a_definition_are_refused() {
        let ok = ServiceSpec::new("sk_1", "/bin/a", "/h", "ann", None);
        assert!(ok.is_ok());
        assert!(ServiceSpec::new("../x", "/bin/a", "/h", "ann", None).is_err());
        assert!(
            ServiceSpec::new("sk_1", "/bin/a\nExecStartPre=/bin/evil", "/h", "ann", None).is_err()
        );
        assert!(ServiceSpec::new("sk_1", "bin/a", "/h", "ann", None).is_err());
        assert!(ServiceSpec::new("sk_1", "/bin/a", "relative", "ann", None).is_err());
        assert!(ServiceSpec::new("sk_1", "/bin/a", "/h", "ann smith", None).is_err());
        assert!(ServiceSpec::new("sk_1", "/bin/a", "/h", "-x", None).is_err());
        assert!(ServiceSpec::new("sk_1", "/bin/a", "/h", "ann", Some("v\n")).is_err());
    }

    #[test]
    fn names_match_the_official_cli() {
        let s = ServiceSpec::new("sk_a-b", "/bin/a", "/h/", "ann", Some("")).unwrap();
        assert_eq!(s.systemd_unit_name(), "sikkerkey-agent-sk_a-b.service");
        assert_eq!(s.launchd_label(), "com.sikkerkey.agent.sk_a-b");
        assert_eq!(s.windows_service_name(), "SikkerKeyAgent_sk_a_b");
        assert_eq!(s.home, "/h");
        assert_eq!(s.vault, None);
        assert_eq!(s.log_path(), "/h/agents/sk_a-b.log");
    }
}
