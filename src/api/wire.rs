//! The wire format of the control plane (protocol.md): the sync config with its
//! connection details and pending rotation, and the heartbeat's body and health.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// Connection details as the sync config carries them (and the local config, which adds
/// field-name overrides). `Debug` is safe: the admin password is a [`Secret`].
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Connection {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub admin_user: String,
    #[serde(with = "crate::secret::serde_secret")]
    pub admin_pass: Secret,
    pub project_reference: String,
}

/// `GET /v1/secret/{id}/sync-config`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct SyncConfig {
    pub provider_type: String,
    pub connection: Connection,
    pub managed_username: String,
    /// Any JSON number is taken (negative as 0, too large as `u64::MAX`), so an odd value
    /// from the server cannot make every poll fail; [`SyncConfig::poll_interval`] clamps.
    #[serde(deserialize_with = "lenient_seconds")]
    pub poll_interval_seconds: u64,
    pub pending_rotation_id: Option<String>,
    #[serde(with = "crate::secret::serde_opt_secret")]
    pub pending_value: Option<Secret>,
    pub rotation_status: String,
}

/// The shortest and longest poll interval the agent accepts from the server.
pub const MIN_POLL_SECS: u64 = 5;
pub const MAX_POLL_SECS: u64 = 3600;

fn lenient_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(match v {
        serde_json::Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_i64().map(|_| 0))
            .or_else(|| n.as_f64().map(|f| if f <= 0.0 { 0 } else { f as u64 }))
            .unwrap_or(0),
        _ => 0,
    })
}

/// A pending rotation: its id and the new value (a JSON object as a string).
#[derive(Debug, Clone, PartialEq)]
pub struct PendingRotation {
    pub id: String,
    pub value: Secret,
}

impl SyncConfig {
    /// The pending rotation, when both its id and value are present and non-empty.
    pub fn pending(&self) -> Option<PendingRotation> {
        let id = self
            .pending_rotation_id
            .as_deref()
            .filter(|s| !s.is_empty())?;
        let value = self.pending_value.as_ref().filter(|v| !v.is_empty())?;
        Some(PendingRotation {
            id: id.to_owned(),
            value: value.clone(),
        })
    }

    /// The poll interval the server asks for: 0 means 10 s, and the rest is clamped to
    /// 5 s..1 h ([`MIN_POLL_SECS`], [`MAX_POLL_SECS`]).
    pub fn poll_interval(&self) -> Duration {
        self.poll_interval_checked().0
    }

    /// The poll interval, and a warning when the server's value was out of range.
    pub fn poll_interval_checked(&self) -> (Duration, Option<String>) {
        let asked = self.poll_interval_seconds;
        let used = match asked {
            0 => 10,
            s => s.clamp(MIN_POLL_SECS, MAX_POLL_SECS),
        };
        let warning = (asked != 0 && asked != used).then(|| {
            format!(
                "the server asks for a poll interval of {asked} s; using {used} s (the agent polls every {MIN_POLL_SECS} s to {MAX_POLL_SECS} s)"
            )
        });
        (Duration::from_secs(used), warning)
    }
}

/// A heartbeat's `status`: the two words protocol.md allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Healthy,
    Error,
}

impl Health {
    /// The wire word, which `list` and `status` print too.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Error => "error",
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Health reported by a heartbeat, with the error's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeartbeatStatus {
    Healthy,
    Error(String),
}

impl HeartbeatStatus {
    pub fn health(&self) -> Health {
        match self {
            HeartbeatStatus::Healthy => Health::Healthy,
            HeartbeatStatus::Error(_) => Health::Error,
        }
    }

    /// The error's message; empty when healthy.
    pub fn message(&self) -> &str {
        match self {
            HeartbeatStatus::Healthy => "",
            HeartbeatStatus::Error(m) => m,
        }
    }
}

/// The body of `POST /v1/secret/{id}/agent/heartbeat`: `{"status": ..., "error": ...}`,
/// the error empty when healthy.
#[derive(Debug, Serialize)]
pub struct HeartbeatBody<'a> {
    pub status: Health,
    pub error: &'a str,
}

impl<'a> From<&'a HeartbeatStatus> for HeartbeatBody<'a> {
    fn from(status: &'a HeartbeatStatus) -> Self {
        HeartbeatBody {
            status: status.health(),
            error: status.message(),
        }
    }
}

/// The answer to `GET /v1/secret/{id}`.
#[derive(Deserialize)]
pub(super) struct ValueAnswer {
    pub value: Option<String>,
}

/// The body of a non-2xx answer.
#[derive(Deserialize)]
pub(super) struct ErrorAnswer {
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_config_parses_and_hides_secrets_in_debug() {
        let json = r#"{"providerType":"postgresql","connection":{"host":"h","port":5432,"database":"d",
            "adminUser":"a","adminPass":"topsecret","projectReference":""},"managedUsername":"u",
            "pollIntervalSeconds":3,"pendingRotationId":"rot_1",
            "pendingValue":"{\"username\":\"u\",\"password\":\"newsecret\"}","rotationStatus":"pending"}"#;
        let c: SyncConfig = serde_json::from_str(json).unwrap();
        assert_eq!(c.pending().unwrap().id, "rot_1");
        assert_eq!(c.poll_interval(), Duration::from_secs(5));
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("topsecret") && !shown.contains("newsecret"),
            "{shown}"
        );
    }

    #[test]
    fn poll_intervals_from_the_server_are_clamped_and_never_fail_to_parse() {
        for (json, secs, warns) in [
            ("18446744073709551615", 3600, true),
            ("1e300", 3600, true),
            ("-5", 10, false),
            ("7200", 3600, true),
            ("2", 5, true),
            ("30", 30, false),
            ("null", 10, false),
            ("\"x\"", 10, false),
        ] {
            let c: SyncConfig =
                serde_json::from_str(&format!(r#"{{"pollIntervalSeconds":{json}}}"#)).unwrap();
            let (d, warning) = c.poll_interval_checked();
            assert_eq!((d.as_secs(), warning.is_some()), (secs, warns), "{json}");
            // Arithmetic on the result (the poller multiplies it by up to 3) cannot overflow.
            assert!(d.checked_mul(3).is_some());
        }
    }

    /// The heartbeat body is protocol.md's, byte for byte.
    #[test]
    fn heartbeat_bodies_are_the_protocols() {
        let body = |s: &HeartbeatStatus| serde_json::to_string(&HeartbeatBody::from(s)).unwrap();
        assert_eq!(
            body(&HeartbeatStatus::Healthy),
            r#"{"status":"healthy","error":""}"#
        );
        assert_eq!(
            body(&HeartbeatStatus::Error("db \"down\"".into())),
            r#"{"status":"error","error":"db \"down\""}"#
        );
    }

    #[test]
    fn empty_pending_is_none_and_zero_interval_is_ten() {
        let c: SyncConfig = serde_json::from_str(
            r#"{"providerType":"redis","pendingRotationId":"","pendingValue":null}"#,
        )
        .unwrap();
        assert!(c.pending().is_none());
        assert_eq!(c.poll_interval(), Duration::from_secs(10));
    }
}
