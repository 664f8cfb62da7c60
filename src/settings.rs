//! Process settings: every `SIKKERKEY_*` environment variable is read here, once, by
//! `main`, and handed down as values. No other module reads a `SIKKERKEY_*` variable, so
//! this file is the complete list (README.md documents each one). A leaf: it parses
//! text and imports only `secret`.

use std::ffi::OsString;
use std::fmt;
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
    /// `SIKKERKEY_DRIFT_CHECK_SECONDS`: how often an idle agent checks that the live value
    /// still logs in (default 60; 0 turns the check off).
    pub drift_check_seconds: Option<u64>,
    /// `SIKKERKEY_DRIFT_REPAIR`: `off` (or `detect-only`, `false`, `no`, `0`) only reports
    /// a drift; `on` (or `repair`, `true`, `yes`, `1`), or unset, repairs it; anything else
    /// is an error.
    pub drift_repair: bool,
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
    /// `SIKKERKEY_AGENT_TEST_PANIC`: a thread panics at this named point (debug builds).
    pub panic_at: Option<String>,
    /// `SIKKERKEY_AGENT_DRIFT_MS`: the drift check interval.
    pub drift: Option<Duration>,
    /// `SIKKERKEY_AGENT_DRIFT_REPAIR_WINDOW_MS`: the window the drift repair cap counts
    /// repairs in (default one hour).
    pub drift_repair_window: Option<Duration>,
}

const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// The words `SIKKERKEY_DRIFT_REPAIR` accepts, for each meaning.
pub const DRIFT_REPAIR_ON: [&str; 5] = ["on", "repair", "true", "yes", "1"];
pub const DRIFT_REPAIR_OFF: [&str; 5] = ["off", "detect-only", "false", "no", "0"];

/// A variable whose value the agent does not understand. Settings fail closed: a value
/// that is not one of the accepted ones stops the command (exit 2) rather than meaning
/// the default, so a typo never silently turns a safety off or on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    pub variable: String,
    /// The value as given (lossily, when it is not UTF-8). Never a password: the only
    /// variable that holds one takes any text.
    pub value: String,
    /// What the variable accepts.
    pub accepted: String,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}={:?} is not a value the agent understands; it accepts {} (or unset it for the default)",
            self.variable, self.value, self.accepted
        )
    }
}

impl std::error::Error for SettingsError {}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Settings, SettingsError> {
        Settings::from_vars(std::env::vars_os())
    }

    /// Reads `SIKKERKEY_*` variables from `vars`; others are ignored. Empty values count
    /// as unset; any other value that is not one the variable accepts is an error.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Result<Settings, SettingsError> {
        let mut s = Settings {
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            drift_repair: true,
            ..Settings::default()
        };
        for (name, value) in vars {
            let Some(name) = name.to_str() else { continue };
            if !name.starts_with("SIKKERKEY_") || value.is_empty() {
                continue;
            }
            let bad = |accepted: &str| SettingsError {
                variable: name.to_owned(),
                value: value.to_string_lossy().into_owned(),
                accepted: accepted.to_owned(),
            };
            let text = || {
                value
                    .to_str()
                    .map(str::to_owned)
                    .ok_or_else(|| bad("UTF-8 text"))
            };
            let number = |accepted: &str| {
                value
                    .to_str()
                    .and_then(|t| t.trim().parse::<u64>().ok())
                    .ok_or_else(|| bad(accepted))
            };
            let ms = || number("a whole number of milliseconds").map(Duration::from_millis);
            match name {
                "SIKKERKEY_HOME" => s.home = Some(PathBuf::from(&value)),
                "SIKKERKEY_VAULT" => s.vault = Some(text()?),
                "SIKKERKEY_API_URL" => s.api_url = Some(text()?),
                "SIKKERKEY_LOG" => s.log = Some(text()?),
                "SIKKERKEY_LOG_FORMAT" => s.log_format = Some(text()?),
                "SIKKERKEY_ADMIN_PASS" => {
                    // Never echoed: a password that is not UTF-8 is named, not shown.
                    let pass = value.to_str().ok_or_else(|| SettingsError {
                        value: "<not UTF-8>".into(),
                        ..bad("UTF-8 text")
                    })?;
                    s.admin_pass = Some(Secret::new(pass));
                }
                "SIKKERKEY_SERVICE_PLATFORM" => s.service_platform = Some(text()?),
                "SIKKERKEY_SERVICE_DIR" => s.service_dir = Some(PathBuf::from(&value)),
                "SIKKERKEY_CA_FILE" => s.ca_file = Some(PathBuf::from(&value)),
                "SIKKERKEY_STOP_TIMEOUT_MS" => s.stop_timeout = ms()?,
                "SIKKERKEY_AGENT_POLL_MS" => s.test.poll = Some(ms()?),
                "SIKKERKEY_AGENT_HEARTBEAT_MS" => s.test.heartbeat = Some(ms()?),
                "SIKKERKEY_AGENT_HTTP_TIMEOUT_MS" => s.test.http_timeout = Some(ms()?),
                "SIKKERKEY_AGENT_DB_TIMEOUT_MS" => s.test.db_timeout = Some(ms()?),
                "SIKKERKEY_AGENT_JOB_DEADLINE_MS" => s.test.job_deadline = Some(ms()?),
                "SIKKERKEY_AGENT_TEST_PANIC" => s.test.panic_at = Some(text()?),
                "SIKKERKEY_AGENT_DRIFT_MS" => s.test.drift = Some(ms()?),
                "SIKKERKEY_AGENT_DRIFT_REPAIR_WINDOW_MS" => {
                    s.test.drift_repair_window = Some(ms()?)
                }
                "SIKKERKEY_DRIFT_CHECK_SECONDS" => {
                    s.drift_check_seconds =
                        Some(number("a whole number of seconds (0 turns the check off)")?)
                }
                "SIKKERKEY_DRIFT_REPAIR" => {
                    let word = text()?.trim().to_ascii_lowercase();
                    s.drift_repair = if DRIFT_REPAIR_ON.contains(&word.as_str()) {
                        true
                    } else if DRIFT_REPAIR_OFF.contains(&word.as_str()) {
                        false
                    } else {
                        return Err(bad(&format!(
                            "{} (repair) or {} (detect-only)",
                            DRIFT_REPAIR_ON.join(", "),
                            DRIFT_REPAIR_OFF.join(", ")
                        )));
                    };
                }
                _ => {}
            }
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
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
            ("SIKKERKEY_DRIFT_REPAIR", ""),
            ("HOME", "/elsewhere"),
        ])
        .unwrap();
        assert_eq!(s.home, Some(PathBuf::from("/h")));
        assert_eq!(s.vault, None);
        assert_eq!(s.admin_pass.as_ref().map(|p| p.expose()), Some("pw"));
        assert_eq!(s.stop_timeout, Duration::from_millis(250));
        assert_eq!(s.test.poll, Some(Duration::from_millis(40)));
        assert!(s.drift_repair);
        let none = vars(&[]).unwrap();
        assert_eq!(none.stop_timeout, DEFAULT_STOP_TIMEOUT);
        assert!(none.drift_repair);
        assert!(
            !vars(&[("SIKKERKEY_DRIFT_REPAIR", "Detect-Only")])
                .unwrap()
                .drift_repair
        );
        assert!(
            vars(&[("SIKKERKEY_DRIFT_REPAIR", "on")])
                .unwrap()
                .drift_repair
        );
        assert_eq!(
            vars(&[("SIKKERKEY_DRIFT_CHECK_SECONDS", "0")])
                .unwrap()
                .drift_check_seconds,
            Some(0)
        );
    }

    #[test]
    fn a_value_the_agent_does_not_understand_is_an_error_naming_what_it_accepts() {
        for (name, value, accepted) in [
            ("SIKKERKEY_DRIFT_REPAIR", "disabled", "detect-only"),
            (
                "SIKKERKEY_DRIFT_CHECK_SECONDS",
                "off",
                "whole number of seconds",
            ),
            (
                "SIKKERKEY_DRIFT_CHECK_SECONDS",
                "-5",
                "whole number of seconds",
            ),
            ("SIKKERKEY_STOP_TIMEOUT_MS", "1m", "milliseconds"),
            ("SIKKERKEY_AGENT_HEARTBEAT_MS", "soon", "milliseconds"),
        ] {
            let e = vars(&[(name, value)])
                .err()
                .unwrap_or_else(|| panic!("{name}={value}"));
            let text = e.to_string();
            assert!(text.starts_with(&format!("{name}={value:?}")), "{text}");
            assert!(text.contains(accepted), "{text}");
        }
        use std::os::unix::ffi::OsStringExt;
        let e = Settings::from_vars([(
            OsString::from("SIKKERKEY_ADMIN_PASS"),
            OsString::from_vec(b"pw\xff-secret".to_vec()),
        )])
        .err()
        .unwrap();
        assert!(!e.to_string().contains("secret"), "{e}");
    }
}
