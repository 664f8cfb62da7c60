//! Log lines operators can filter. Three formats:
//! - `text` (a terminal): `2026-03-02T10:15:04Z INFO  message`;
//! - `journal` (under systemd, `JOURNAL_STREAM` naming our stderr): `<6>message`, the
//!   syslog priority prefix journald turns into the entry's priority, and no timestamp of
//!   our own (journald adds one), so `journalctl -p warning` finds warnings and errors;
//! - `json` (`SIKKERKEY_LOG_FORMAT=json` or `--log-format json`): one object a line with
//!   `time`, `level`, `secret`, `rotation` (while a rotation is handled) and `message`.
//!
//! `SIKKERKEY_LOG` names the level; a value that is not a level is an error rather than a
//! silent fallback, so a typo cannot hide the debug output someone asked for.

use std::cell::RefCell;
use std::ffi::OsString;
use std::fmt;
use std::io::Write;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use log::{Level, LevelFilter};

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Journal,
    Json,
}

/// Level and format, decided once at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSettings {
    pub level: LevelFilter,
    pub format: LogFormat,
    /// Prefix each line with `<N>` for journald (journal format, or JSON under journald).
    pub priority_prefix: bool,
}

/// A log setting that makes no sense.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettingError(String);

impl fmt::Display for LogSettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LogSettingError {}

pub fn parse_level(value: &str) -> Result<LevelFilter, LogSettingError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "off" => Ok(LevelFilter::Off),
        "error" => Ok(LevelFilter::Error),
        "warn" | "warning" => Ok(LevelFilter::Warn),
        "info" | "" => Ok(LevelFilter::Info),
        "debug" => Ok(LevelFilter::Debug),
        "trace" => Ok(LevelFilter::Trace),
        _ => Err(LogSettingError(format!(
            "SIKKERKEY_LOG=\"{}\" is not a log level; use error, warn, info, debug or trace",
            value.escape_debug()
        ))),
    }
}

fn parse_format(value: &str, source: &str) -> Result<Option<LogFormat>, LogSettingError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "auto" => Ok(None),
        "text" => Ok(Some(LogFormat::Text)),
        "journal" => Ok(Some(LogFormat::Journal)),
        "json" => Ok(Some(LogFormat::Json)),
        _ => Err(LogSettingError(format!(
            "{source} \"{}\" is not a log format; use text, json or journal",
            value.escape_debug()
        ))),
    }
}

impl LogSettings {
    /// From the flag (`--log-format`), `SIKKERKEY_LOG`, `SIKKERKEY_LOG_FORMAT`, and whether
    /// stderr is connected to the journal. The flag wins over the variable; without
    /// either, the journal format is used under journald and text elsewhere.
    pub fn decide(
        flag: Option<&str>,
        level: Option<&str>,
        format: Option<&str>,
        stderr_is_journal: bool,
    ) -> Result<LogSettings, LogSettingError> {
        let level = match level {
            Some(l) => parse_level(l)?,
            None => LevelFilter::Info,
        };
        let from_env = match format {
            Some(f) => parse_format(f, "SIKKERKEY_LOG_FORMAT")?,
            None => None,
        };
        let chosen = match flag {
            Some(f) => parse_format(f, "--log-format")?,
            None => None,
        }
        .or(from_env);
        let format = chosen.unwrap_or(if stderr_is_journal {
            LogFormat::Journal
        } else {
            LogFormat::Text
        });
        Ok(LogSettings {
            level,
            format,
            priority_prefix: format == LogFormat::Journal
                || (format == LogFormat::Json && stderr_is_journal),
        })
    }
}

/// Whether `JOURNAL_STREAM` ("device:inode") names our stderr, as systemd documents: a
/// variable inherited by a process whose stderr was redirected does not count.
pub fn stderr_is_journal(journal_stream: Option<&str>) -> bool {
    let Some((dev, ino)) = journal_stream.and_then(|v| v.split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.trim().parse::<u64>(), ino.trim().parse::<u64>()) else {
        return false;
    };
    // SAFETY: fstat fills the stat buffer we own for fd 2, or fails.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(2, &mut st) } != 0 {
        return false;
    }
    st.st_dev as u64 == dev && st.st_ino as u64 == ino
}

/// Takes `--log-format VALUE` / `--log-format=VALUE` out of the arguments, wherever it is
/// (before or after the command), so every command accepts it.
pub fn take_format_flag(
    args: Vec<OsString>,
) -> Result<(Option<String>, Vec<OsString>), LogSettingError> {
    let mut flag = None;
    let mut rest = Vec::with_capacity(args.len());
    let mut iter = args.into_iter();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            rest.push(arg);
            rest.extend(iter);
            break;
        }
        match arg.to_str() {
            Some("--log-format") => match iter.next().and_then(|v| v.into_string().ok()) {
                Some(v) => flag = Some(v),
                None => {
                    return Err(LogSettingError(
                        "missing value for --log-format (text, json or journal)".into(),
                    ));
                }
            },
            Some(a) if a.starts_with("--log-format=") => {
                flag = Some(a["--log-format=".len()..].to_owned());
            }
            _ => rest.push(arg),
        }
    }
    Ok((flag, rest))
}

/// The secret this process runs the agent for, for the `secret` field of JSON lines.
static SECRET: OnceLock<String> = OnceLock::new();

pub fn set_secret(secret_id: &str) {
    let _ = SECRET.set(secret_id.to_owned());
}

thread_local! {
    static ROTATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// While alive, log lines from this thread carry `rotation_id`.
pub struct RotationScope {
    previous: Option<String>,
}

pub fn rotation_scope(rotation_id: &str) -> RotationScope {
    let previous = ROTATION.with(|r| r.borrow_mut().replace(rotation_id.to_owned()));
    RotationScope { previous }
}

impl Drop for RotationScope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        ROTATION.with(|r| *r.borrow_mut() = previous);
    }
}

/// syslog priority of a level: 3 error, 4 warning, 6 info, 7 debug (and trace).
pub fn priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// Days since 1970-01-01 as (year, month, day), by Howard Hinnant's algorithm.
fn civil_date(days: u64) -> (i64, i64, i64) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Now as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn now_rfc3339() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (year, month, day) = civil_date(secs / 86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60,
        now.subsec_millis()
    )
}

/// One JSON line (without the newline).
pub fn json_line(level: Level, message: &str) -> String {
    let secret = SECRET.get();
    // "secret sk_x: ..." is redundant next to the secret field.
    let message = secret
        .and_then(|s| message.strip_prefix(&format!("secret {s}: ")))
        .unwrap_or(message);
    let rotation = ROTATION.with(|r| r.borrow().clone());
    let q = |s: &str| serde_json::to_string(s).expect("a string always serializes");
    let mut line = format!(
        "{{\"time\":{},\"level\":{}",
        q(&now_rfc3339()),
        q(&level.as_str().to_ascii_lowercase())
    );
    if let Some(s) = secret {
        line.push_str(&format!(",\"secret\":{}", q(s)));
    }
    if let Some(r) = rotation {
        line.push_str(&format!(",\"rotation\":{}", q(&r)));
    }
    line.push_str(&format!(",\"message\":{}}}", q(message)));
    line
}

static PRIORITY_PREFIX: OnceLock<bool> = OnceLock::new();

/// What to put before a line written to stderr directly (the final `error:` of `main`),
/// so journald files it at priority 3 like the logged errors.
pub fn error_prefix() -> &'static str {
    if PRIORITY_PREFIX.get().copied().unwrap_or(false) {
        "<3>"
    } else {
        ""
    }
}

/// Installs the logger. Our own lines at `settings.level`; every dependency capped at
/// warn whatever the setting, because driver debug output can carry SQL text.
pub fn init(settings: LogSettings) {
    let level = settings.level;
    let _ = PRIORITY_PREFIX.set(settings.priority_prefix);
    env_logger::Builder::new()
        .filter_level(LevelFilter::Warn.min(level))
        .filter_module("sikkerkey_agent", level)
        .format(move |buf, record| {
            let prefix = if settings.priority_prefix {
                format!("<{}>", priority(record.level()))
            } else {
                String::new()
            };
            match settings.format {
                LogFormat::Json => {
                    let line = json_line(record.level(), &record.args().to_string());
                    writeln!(buf, "{prefix}{line}")
                }
                LogFormat::Journal => {
                    // journald reads one entry per line: each line gets the priority.
                    let text = record.args().to_string();
                    for line in text.lines() {
                        writeln!(buf, "{prefix}{line}")?;
                    }
                    Ok(())
                }
                LogFormat::Text => {
                    let ts = buf.timestamp_seconds();
                    writeln!(buf, "{ts} {:<5} {}", record.level(), record.args())
                }
            }
        })
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_formats() {
        let d = |flag, level, format, journal| LogSettings::decide(flag, level, format, journal);
        let s = d(None, None, None, false).unwrap();
        assert_eq!((s.level, s.format), (LevelFilter::Info, LogFormat::Text));
        let s = d(None, Some("WARN"), None, true).unwrap();
        assert_eq!(
            (s.level, s.format, s.priority_prefix),
            (LevelFilter::Warn, LogFormat::Journal, true)
        );
        let s = d(Some("json"), None, Some("text"), true).unwrap();
        assert_eq!((s.format, s.priority_prefix), (LogFormat::Json, true));
        assert_eq!(
            d(None, None, Some("json"), false).unwrap().format,
            LogFormat::Json
        );
        let e = d(None, Some("verbose"), None, false).unwrap_err();
        assert!(
            e.to_string()
                .contains("SIKKERKEY_LOG=\"verbose\" is not a log level")
        );
        assert!(d(None, None, Some("xml"), false).is_err());
        assert!(d(Some("yaml"), None, None, false).is_err());
    }

    #[test]
    fn the_flag_is_found_anywhere() {
        let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        let (f, rest) =
            take_format_flag(args(&["start", "--log-format", "json", "--secret", "s"])).unwrap();
        assert_eq!(f.as_deref(), Some("json"));
        assert_eq!(rest, args(&["start", "--secret", "s"]));
        let (f, rest) = take_format_flag(args(&["--log-format=text", "list"])).unwrap();
        assert_eq!((f.as_deref(), rest), (Some("text"), args(&["list"])));
        assert!(take_format_flag(args(&["list", "--log-format"])).is_err());
    }

    #[test]
    fn json_lines_carry_the_rotation_while_in_scope() {
        {
            let _scope = rotation_scope("rot_1");
            let v: serde_json::Value =
                serde_json::from_str(&json_line(Level::Warn, "a \"quoted\"\nline")).unwrap();
            assert_eq!(v["level"], "warn");
            assert_eq!(v["rotation"], "rot_1");
            assert_eq!(v["message"], "a \"quoted\"\nline");
            assert!(v["time"].as_str().unwrap().ends_with('Z'));
        }
        let v: serde_json::Value = serde_json::from_str(&json_line(Level::Info, "x")).unwrap();
        assert!(v.get("rotation").is_none());
        assert_eq!(priority(Level::Error), 3);
        assert_eq!(priority(Level::Trace), 7);
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
    }
}
