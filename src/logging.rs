//! The log backend: one line per record on stderr, `<UTC time> <LEVEL> <message>`.
//!
//! Written here rather than taken from env_logger because the agent needs none of its
//! filters, colours or environment parsing, and they cost the binary more than this file.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use log::{LevelFilter, Log, Metadata, Record};

/// Our own records at `level`; every dependency's capped at warn whatever `level` says,
/// because driver debug output can carry SQL text.
struct Logger {
    ours: LevelFilter,
    theirs: LevelFilter,
}

impl Logger {
    fn limit(&self, target: &str) -> LevelFilter {
        let ours = target == "sikkerkey_agent" || target.starts_with("sikkerkey_agent::");
        if ours { self.ours } else { self.theirs }
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.limit(metadata.target())
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format!(
            "{} {:<5} {}\n",
            utc_timestamp(SystemTime::now()),
            record.level(),
            record.args()
        );
        // One write per line, so threads' lines never interleave; a closed stderr is
        // nothing the agent could report anywhere else.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Installs the logger; a second call changes nothing.
pub fn init(level: LevelFilter) {
    let logger = Logger {
        ours: level,
        theirs: LevelFilter::Warn.min(level),
    };
    if log::set_logger(Box::leak(Box::new(logger))).is_ok() {
        log::set_max_level(level);
    }
}

/// RFC 3339 in UTC to the second, e.g. `2026-12-01T10:26:48Z`.
fn utc_timestamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day): the usual
/// era-of-400-years arithmetic.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> String {
        utc_timestamp(UNIX_EPOCH + Duration::from_secs(secs))
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_798_107_959), "2026-12-24T10:25:59Z");
        assert_eq!(at(4_107_542_399), "2100-02-28T23:59:59Z");
        assert_eq!(at(4_107_542_400), "2100-03-01T00:00:00Z");
    }

    #[test]
    fn dependencies_are_capped_at_warn() {
        let l = Logger {
            ours: LevelFilter::Trace,
            theirs: LevelFilter::Warn.min(LevelFilter::Trace),
        };
        assert_eq!(
            l.limit("sikkerkey_agent::agent::worker"),
            LevelFilter::Trace
        );
        assert_eq!(l.limit("sikkerkey_agent"), LevelFilter::Trace);
        assert_eq!(l.limit("sikkerkey_agent_other"), LevelFilter::Warn);
        assert_eq!(l.limit("tokio_postgres::query"), LevelFilter::Warn);
    }
}
