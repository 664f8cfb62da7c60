//! Secret values: a redacting wrapper for passwords and the parsing of a managed
//! secret's JSON value into username and password.
//!
//! Nothing in this module implements `Display` for a password, and `Debug` prints only
//! a length, so a stray `{:?}` in a log line cannot leak a credential.

use std::collections::BTreeMap;
use std::fmt;

/// A credential held in memory. `Debug` is redacted; the value is reachable only through
/// [`Secret::expose`], which makes every use of the plaintext easy to find.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The plaintext. Call only where it goes to a database driver or is compared.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<redacted, {} bytes>)", self.0.len())
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

/// The names of the fields that carry the username and the password in a secret value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldNames {
    pub username: String,
    pub password: String,
}

impl Default for FieldNames {
    fn default() -> Self {
        FieldNames {
            username: "username".into(),
            password: "password".into(),
        }
    }
}

impl FieldNames {
    /// Field names from optional overrides; empty overrides mean the defaults.
    pub fn with_overrides(username: Option<&str>, password: Option<&str>) -> Self {
        let d = FieldNames::default();
        FieldNames {
            username: username
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .unwrap_or(d.username),
            password: password
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .unwrap_or(d.password),
        }
    }
}

/// A login: who and with what password (redacted in `Debug`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub password: Secret,
}

/// Why a secret value could not be turned into a credential. Never contains the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueError {
    /// The password field is missing or empty.
    MissingPassword { field: String },
    /// Neither the username field nor the sync config names a user.
    MissingUsername { field: String },
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueError::MissingPassword { field } => {
                write!(
                    f,
                    "the secret value has no non-empty \"{field}\" field to use as the password"
                )
            }
            ValueError::MissingUsername { field } => write!(
                f,
                "the secret value has no \"{field}\" field and the sync config names no managed user"
            ),
        }
    }
}

impl std::error::Error for ValueError {}

/// Splits a secret value into its string fields. A JSON object gives its fields (non-string
/// scalars as their JSON text); anything else is the single field `value`.
pub fn parse_fields(value: &str) -> BTreeMap<String, Secret> {
    match serde_json::from_str::<serde_json::Value>(value) {
        Ok(serde_json::Value::Object(map)) => map
            .into_iter()
            .filter_map(|(k, v)| match v {
                serde_json::Value::String(s) => Some((k, Secret(s))),
                serde_json::Value::Null => None,
                other => Some((k, Secret(other.to_string()))),
            })
            .collect(),
        _ => BTreeMap::from([("value".to_owned(), Secret(value.to_owned()))]),
    }
}

/// The credential a secret value describes. The username falls back to the sync config's
/// managed user when the value does not carry one.
pub fn credential_from_value(
    value: &str,
    fields: &FieldNames,
    managed_username: &str,
) -> Result<Credential, ValueError> {
    let mut map = parse_fields(value);
    let password = map
        .remove(&fields.password)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ValueError::MissingPassword {
            field: fields.password.clone(),
        })?;
    let username = map
        .remove(&fields.username)
        .map(|u| u.0)
        .filter(|u| !u.is_empty())
        .or_else(|| Some(managed_username.to_owned()).filter(|u| !u.is_empty()))
        .ok_or_else(|| ValueError::MissingUsername {
            field: fields.username.clone(),
        })?;
    Ok(Credential { username, password })
}

/// Serde for a [`Secret`] field: a plain JSON string (null reads as empty).
pub mod serde_secret {
    use super::Secret;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Secret, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.expose())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        Ok(Secret::new(
            Option::<String>::deserialize(d)?.unwrap_or_default(),
        ))
    }
}

/// Serde for an optional [`Secret`] field.
pub mod serde_opt_secret {
    use super::Secret;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Secret>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_some(v.expose()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.map(Secret::new))
    }
}

/// Replaces every occurrence of the given secrets in `text` (for error messages that
/// leave the process). Secrets shorter than 4 bytes are left alone: they would blank out
/// ordinary words and are no secret worth the name.
pub fn scrub(text: &str, secrets: &[&Secret]) -> String {
    let mut out = text.to_owned();
    for s in secrets {
        if s.expose().len() >= 4 {
            out = out.replace(s.expose(), "<redacted>");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let c = Credential {
            username: "app".into(),
            password: Secret::new("hunter2"),
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("app"));
    }

    #[test]
    fn object_values_give_their_fields() {
        let c = credential_from_value(
            r#"{"username":"u1","password":"p'\"\\$ø"}"#,
            &FieldNames::default(),
            "x",
        )
        .unwrap();
        assert_eq!(c.username, "u1");
        assert_eq!(c.password.expose(), "p'\"\\$ø");
    }

    #[test]
    fn username_falls_back_to_managed_user() {
        let c = credential_from_value(r#"{"password":"pw"}"#, &FieldNames::default(), "managed")
            .unwrap();
        assert_eq!(c.username, "managed");
    }

    #[test]
    fn non_object_value_is_the_value_field() {
        let names = FieldNames::with_overrides(None, Some("value"));
        let c = credential_from_value("plain-pw", &names, "m").unwrap();
        assert_eq!(c.password.expose(), "plain-pw");
        assert_eq!(
            parse_fields("[1,2]").keys().collect::<Vec<_>>(),
            vec!["value"]
        );
    }

    #[test]
    fn missing_password_is_a_clear_error_without_the_value() {
        let e = credential_from_value(
            r#"{"username":"u","pass":"secretvalue"}"#,
            &FieldNames::default(),
            "",
        )
        .unwrap_err();
        assert!(e.to_string().contains("\"password\""));
        assert!(!e.to_string().contains("secretvalue"));
    }

    #[test]
    fn overridden_field_names_are_used() {
        let names = FieldNames::with_overrides(Some("user"), Some("pw"));
        let c = credential_from_value(r#"{"user":"a","pw":"b"}"#, &names, "").unwrap();
        assert_eq!((c.username.as_str(), c.password.expose()), ("a", "b"));
    }
}
