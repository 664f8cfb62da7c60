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
use std::fmt;
use std::io::Write;
use std::sync::OnceLock;

use log::{Level, LevelFilter};

use crate::clock;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Journal,
    Json,
}

impl LogFormat {
    pub const ALL: [LogFormat; 3] = [LogFormat::Text, LogFormat::Json, LogFormat::Journal];

    /// The name `--log-format` and `SIKKERKEY_LOG_FORMAT` take.
    pub fn name(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Journal => "journal",
            LogFormat::Json => "json",
        }
    }
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
    let value_lower = value.trim().to_ascii_lowercase();
    if value_lower.is_empty() || value_lower == "auto" {
        return Ok(None);
    }
    match LogFormat::ALL.into_iter().find(|f| f.name() == value_lower) {
        Some(f) => Ok(Some(f)),
        None => Err(LogSettingError(format!(
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
        q(&clock::now_utc_millis()),
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

/// The settings in force, for lines written outside the logger ([`say`]).
static IN_FORCE: OnceLock<LogSettings> = OnceLock::new();

/// Writes a line for the person or program reading stderr (the final `error:` of `main`,
/// a command's `warning:`), in the format in force: as given in text, with its priority
/// under journald, as one JSON object in JSON mode (the level carries what a leading
/// `error: ` or `warning: ` said). A text of several lines stays one JSON object.
pub fn say(level: Level, text: &str) {
    let settings = IN_FORCE.get().copied().unwrap_or(LogSettings {
        level: LevelFilter::Info,
        format: LogFormat::Text,
        priority_prefix: false,
    });
    eprintln!("{}", render_said(settings, level, text));
}

fn render_said(settings: LogSettings, level: Level, text: &str) -> String {
    let prefix = if settings.priority_prefix {
        format!("<{}>", priority(level))
    } else {
        String::new()
    };
    match settings.format {
        LogFormat::Json => {
            let message = ["error: ", "warning: ", "note: "]
                .iter()
                .find_map(|p| text.strip_prefix(p))
                .unwrap_or(text);
            format!("{prefix}{}", json_line(level, message))
        }
        LogFormat::Journal => text
            .lines()
            .map(|l| format!("{prefix}{l}"))
            .collect::<Vec<_>>()
            .join("\n"),
        LogFormat::Text => text.to_owned(),
    }
}

/// Installs the logger. Our own lines at `settings.level`; every dependency capped at
/// warn whatever the setting, because driver debug output can carry SQL text. In the JSON
/// and journal formats a panic's message is written as a log line too (the default hook
/// would print plain text into a stream of JSON objects).
pub fn init(settings: LogSettings) {
    let level = settings.level;
    let _ = IN_FORCE.set(settings);
    if settings.format != LogFormat::Text {
        std::panic::set_hook(Box::new(|info| {
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("unnamed");
            let location = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let payload = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into());
            say(
                Level::Error,
                &format!("thread '{name}' panicked{location}: {payload}"),
            );
        }));
    }
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
    fn lines_outside_the_logger_follow_the_format() {
        let json = LogSettings {
            level: LevelFilter::Info,
            format: LogFormat::Json,
            priority_prefix: false,
        };
        let line = render_said(json, Level::Error, "error: it broke\n  caused by: why");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["message"], "it broke\n  caused by: why");
        let journal = LogSettings {
            format: LogFormat::Journal,
            priority_prefix: true,
            ..json
        };
        assert_eq!(
            render_said(journal, Level::Warn, "warning: a\nb"),
            "<4>warning: a\n<4>b"
        );
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
    }
}
