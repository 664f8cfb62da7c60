//! Process settings: every `SIKKERKEY_*` environment variable is read here, once, by
//! `main`, and handed down as values. No other module reads a `SIKKERKEY_*` variable, so
//! this file is the complete list (README.md documents each one). A leaf: it parses
//! text and imports only `secret`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::secret::Secret;

/// What the environment says. No `Debug`: it holds the admin password of `configure`.
#[derive(Default)]
pub struct Settings {
    /// `SIKKERKEY_HOME`: the identity and the agent's state directory (else `~/.sikkerkey`).
    pub home: Option<PathBuf>,
    /// `SIKKERKEY_VAULT`: which vault's identity to use (alias or id).
    pub vault: Option<String>,
    /// `SIKKERKEY_API_URL`: overrides the identity's `apiUrl`.
    pub api_url: Option<String>,
    /// `SIKKERKEY_LOG`: our log level (`error` ... `trace`); the raw text, `main` parses it.
    pub log: Option<String>,
    /// `SIKKERKEY_LOG_FORMAT`: `text`, `json` or `journal`; the raw text, `logging` parses it.
    pub log_format: Option<String>,
    /// `SIKKERKEY_ADMIN_PASS`: the admin password for `configure`.
    pub admin_pass: Option<Secret>,
    /// `SIKKERKEY_SERVICE_PLATFORM`: `systemd`, `launchd` or `windows` instead of this OS's.
    pub service_platform: Option<String>,
    /// `SIKKERKEY_SERVICE_DIR`: where `install` writes the unit or plist.
    pub service_dir: Option<PathBuf>,
    /// `SIKKERKEY_CA_FILE`: a PEM file of CAs the control-plane client trusts as well.
    pub ca_file: Option<PathBuf>,
    /// `SIKKERKEY_STOP_TIMEOUT_MS`: how long `stop` and `remove --force` wait (default 60 s).
    pub stop_timeout: Duration,
    /// Knobs that exist only so tests run in seconds; see [`TestKnobs`].
    pub test: TestKnobs,
}

/// Test-only knobs: `SIKKERKEY_AGENT_*`. They shorten intervals and timeouts, or make the
/// worker crash on purpose. Production leaves them unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestKnobs {
    /// `SIKKERKEY_AGENT_POLL_MS`: overrides the server's poll interval (and its 5 s floor).
    pub poll: Option<Duration>,
    /// `SIKKERKEY_AGENT_HEARTBEAT_MS`: the heartbeat interval (default 30 s).
    pub heartbeat: Option<Duration>,
    /// `SIKKERKEY_AGENT_HTTP_TIMEOUT_MS`: HTTP connect and total timeout.
    pub http_timeout: Option<Duration>,
    /// `SIKKERKEY_AGENT_DB_TIMEOUT_MS`: database connect and statement timeout.
    pub db_timeout: Option<Duration>,
    /// `SIKKERKEY_AGENT_JOB_DEADLINE_MS`: when a running job turns the heartbeat to error.
    pub job_deadline: Option<Duration>,
    /// `SIKKERKEY_AGENT_TEST_PANIC`: the worker panics at this named point (debug builds).
    pub panic_at: Option<String>,
}

const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(60);

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Settings {
        Settings::from_vars(std::env::vars_os())
    }

    /// Reads `SIKKERKEY_*` variables from `vars`; others are ignored. Empty values count
    /// as unset; a number that does not parse leaves the default.
    pub fn from_vars(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Settings {
        let mut s = Settings {
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            ..Settings::default()
        };
        for (name, value) in vars {
            let Some(name) = name.to_str() else { continue };
            if !name.starts_with("SIKKERKEY_") || value.is_empty() {
                continue;
            }
            let text = || value.to_str().map(str::to_owned);
            let ms = || {
                text()
                    .and_then(|t| t.trim().parse::<u64>().ok())
                    .map(Duration::from_millis)
            };
            match name {
                "SIKKERKEY_HOME" => s.home = Some(PathBuf::from(&value)),
                "SIKKERKEY_VAULT" => s.vault = text(),
                "SIKKERKEY_API_URL" => s.api_url = text(),
                "SIKKERKEY_LOG" => s.log = text(),
                "SIKKERKEY_LOG_FORMAT" => s.log_format = text(),
                "SIKKERKEY_ADMIN_PASS" => s.admin_pass = text().map(Secret::new),
                "SIKKERKEY_SERVICE_PLATFORM" => s.service_platform = text(),
                "SIKKERKEY_SERVICE_DIR" => s.service_dir = Some(PathBuf::from(&value)),
                "SIKKERKEY_CA_FILE" => s.ca_file = Some(PathBuf::from(&value)),
                "SIKKERKEY_STOP_TIMEOUT_MS" => {
                    s.stop_timeout = ms().unwrap_or(DEFAULT_STOP_TIMEOUT)
                }
                "SIKKERKEY_AGENT_POLL_MS" => s.test.poll = ms(),
                "SIKKERKEY_AGENT_HEARTBEAT_MS" => s.test.heartbeat = ms(),
                "SIKKERKEY_AGENT_HTTP_TIMEOUT_MS" => s.test.http_timeout = ms(),
                "SIKKERKEY_AGENT_DB_TIMEOUT_MS" => s.test.db_timeout = ms(),
                "SIKKERKEY_AGENT_JOB_DEADLINE_MS" => s.test.job_deadline = ms(),
                "SIKKERKEY_AGENT_TEST_PANIC" => s.test.panic_at = text(),
                _ => {}
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Settings {
        Settings::from_vars(pairs.iter().map(|(k, v)| (k.into(), v.into())))
    }

    #[test]
    fn variables_land_in_their_fields_and_empty_means_unset() {
        let s = vars(&[
            ("SIKKERKEY_HOME", "/h"),
            ("SIKKERKEY_VAULT", ""),
            ("SIKKERKEY_ADMIN_PASS", "pw"),
            ("SIKKERKEY_STOP_TIMEOUT_MS", "250"),
            ("SIKKERKEY_AGENT_POLL_MS", " 40 "),
            ("SIKKERKEY_AGENT_HEARTBEAT_MS", "soon"),
            ("HOME", "/elsewhere"),
        ]);
        assert_eq!(s.home, Some(PathBuf::from("/h")));
        assert_eq!(s.vault, None);
        assert_eq!(s.admin_pass.as_ref().map(|p| p.expose()), Some("pw"));
        assert_eq!(s.stop_timeout, Duration::from_millis(250));
        assert_eq!(s.test.poll, Some(Duration::from_millis(40)));
        assert_eq!(s.test.heartbeat, None);
        assert_eq!(vars(&[]).stop_timeout, DEFAULT_STOP_TIMEOUT);
    }
}
