//! One-line summaries of an agent's health for people: the `STATUS=` line `systemctl
//! status` shows ("healthy; last rotation 3f2a… confirmed 2 h ago"), the ages `status`
//! prints, and the short rotation ids every log line uses. Pure functions, so the wording
//! is tested once.

use crate::api::HeartbeatStatus;

use super::status::RotationRecord;

/// The first characters of a rotation id, enough to find it in the dashboard.
pub fn short_id(id: &str) -> &str {
    match id.char_indices().nth(12) {
        Some((i, _)) => &id[..i],
        None => id,
    }
}

/// `seconds` as a rounded age: "12 s", "5 min", "2 h", "3 d".
pub fn human_age(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 2 * 3600 => format!("{} min", s / 60),
        s if s < 2 * 86_400 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

/// What the last rotation was, e.g. "last rotation rot_3f2a confirmed 2 h ago".
pub fn rotation_phrase(last: Option<&RotationRecord>, now: u64) -> String {
    match last {
        None => "no rotation yet".into(),
        Some(r) => format!(
            "last rotation {} {} {} ago",
            short_id(&r.rotation_id),
            r.outcome,
            human_age(now.saturating_sub(r.at))
        ),
    }
}

/// The status line: health first, then the last rotation.
pub fn status_line(health: &HeartbeatStatus, last: Option<&RotationRecord>, now: u64) -> String {
    let health = match health {
        HeartbeatStatus::Healthy => "healthy".to_owned(),
        HeartbeatStatus::Error(e) => format!("error: {e}"),
    };
    format!("{health}; {}", rotation_phrase(last, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::status::Outcome;

    #[test]
    fn reads_like_a_sentence() {
        let r = RotationRecord {
            rotation_id: "rot_3f2a9b8c7d6e5f4a".into(),
            outcome: Outcome::Confirmed,
            at: 1_000,
            error: String::new(),
        };
        assert_eq!(
            status_line(&HeartbeatStatus::Healthy, Some(&r), 1_000 + 7_300),
            "healthy; last rotation rot_3f2a9b8c confirmed 2 h ago"
        );
        assert_eq!(
            status_line(&HeartbeatStatus::Error("db down".into()), None, 5),
            "error: db down; no rotation yet"
        );
        assert_eq!(human_age(59), "59 s");
        assert_eq!(human_age(600), "10 min");
        assert_eq!(human_age(3 * 86_400), "3 d");
    }
}
