//! The pure half of the Redis provider: ACL user names and their rules, the command
//! arguments of `ACL SETUSER` and `CONFIG SET requirepass`, the snapshot rollback restores,
//! and reading an `ACL GETUSER` reply (RESP2 or RESP3). No I/O, so unit tests check every
//! command the provider sends; `redis.rs` sends them.

use std::fmt;

use ::redis::{Cmd, Value};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::json_problem::JsonProblem;
use crate::secret::Secret;

/// The user a Redis server authenticates when no name is given.
pub const DEFAULT_USER: &str = "default";

/// Where this server keeps its users across a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Persistence {
    /// `aclfile` is set: `ACL SAVE`.
    AclFile,
    /// Started from a config file: `CONFIG REWRITE`.
    ConfigFile,
    /// Neither: changes live only in memory.
    MemoryOnly,
    /// The admin may not read the configuration; the reason says why.
    Unknown(String),
}

/// The ACL user name: empty means the default user.
pub fn user_name(username: &str) -> &str {
    if username.is_empty() {
        DEFAULT_USER
    } else {
        username
    }
}

/// Why Redis would refuse or mangle this user name: it refuses whitespace, and a
/// config file written by `CONFIG REWRITE` cannot be read back when a user name holds a
/// quote (Redis would then fail to start).
pub fn user_name_problem(user: &str, persistence: &Persistence) -> Option<&'static str> {
    if user
        .chars()
        .any(|c| c.is_ascii_whitespace() || c == '\u{b}')
    {
        return Some("Redis user names cannot contain spaces or other whitespace");
    }
    if *persistence == Persistence::ConfigFile && user.contains(['"', '\'']) {
        return Some(
            "this Redis keeps its users in its config file, which cannot hold a user name with a quote (Redis would fail to start after CONFIG REWRITE); use an aclfile or another name",
        );
    }
    None
}

/// Lowercase hex SHA-256: how Redis stores and shows ACL passwords.
pub fn sha256_hex(password: &Secret) -> String {
    crate::hex::lower(&Sha256::digest(password.expose().as_bytes()))
}

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The arguments of one command; `Debug` is redacted because some carry a password.
pub struct Args(pub Vec<String>);

impl fmt::Debug for Args {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Args({} <redacted>)",
            self.0.first().map(String::as_str).unwrap_or("")
        )
    }
}

impl Args {
    fn new(args: &[&str]) -> Self {
        Args(args.iter().map(|a| (*a).to_owned()).collect())
    }

    /// An existing user, or the default user (which is also switched on).
    pub fn set_password(user: &str, password: &Secret) -> Self {
        let pw = format!(">{}", password.expose());
        if user == DEFAULT_USER {
            Args::new(&["ACL", "SETUSER", user, "on", "resetpass", &pw])
        } else {
            Args::new(&["ACL", "SETUSER", user, "resetpass", &pw])
        }
    }

    /// A new user with all keys and commands, as the official agent creates it.
    pub fn create_user(user: &str, password: &Secret) -> Self {
        Args::new(&[
            "ACL",
            "SETUSER",
            user,
            "on",
            &format!(">{}", password.expose()),
            "~*",
            "+@all",
        ])
    }

    pub fn requirepass(password: &Secret) -> Self {
        Args::new(&["CONFIG", "SET", "requirepass", password.expose()])
    }

    /// Puts back the on/off state, `nopass`, and the password hashes.
    pub fn restore(user: &str, snapshot: &AclSnapshot) -> Result<Self, String> {
        let mut args = Args::new(&[
            "ACL",
            "SETUSER",
            user,
            "resetpass",
            if snapshot.enabled { "on" } else { "off" },
        ]);
        if snapshot.nopass {
            args.0.push("nopass".into());
        }
        for hash in &snapshot.passwords {
            if !is_sha256_hex(hash) {
                return Err("the snapshot holds a malformed password hash".into());
            }
            args.0.push(format!("#{hash}"));
        }
        Ok(args)
    }

    pub(super) fn to_cmd(&self) -> Cmd {
        let mut cmd = ::redis::cmd(&self.0[0]);
        for a in &self.0[1..] {
            cmd.arg(a.as_str());
        }
        cmd
    }
}

/// What rollback restores of an ACL user. The text form is canonical JSON.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct AclSnapshot {
    pub enabled: bool,
    pub nopass: bool,
    /// SHA-256 hex hashes in the server's order.
    pub passwords: Vec<String>,
}

impl AclSnapshot {
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_text(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| {
            format!(
                "the snapshot is not in the expected form: {}",
                JsonProblem::of(&e)
            )
        })
    }
}

/// The parts of an `ACL GETUSER` reply the agent uses.
pub(super) struct AclUser {
    pub(super) enabled: bool,
    pub(super) nopass: bool,
    pub(super) passwords: Vec<String>,
}

impl AclUser {
    /// `None` for a nil reply (no such user). Accepts RESP2 (flat key/value array) and
    /// RESP3 (map) replies.
    pub(super) fn from_reply(reply: &Value) -> Result<Option<AclUser>, String> {
        if *reply == Value::Nil {
            return Ok(None);
        }
        let flags = strings(field(reply, "flags").ok_or("ACL GETUSER gave no flags")?);
        let passwords = strings(field(reply, "passwords").ok_or("ACL GETUSER gave no passwords")?);
        Ok(Some(AclUser {
            enabled: flags.iter().any(|f| f == "on"),
            nopass: flags.iter().any(|f| f == "nopass"),
            passwords,
        }))
    }

    pub(super) fn snapshot(&self) -> AclSnapshot {
        AclSnapshot {
            enabled: self.enabled,
            nopass: self.nopass,
            passwords: self.passwords.clone(),
        }
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

fn field<'a>(reply: &'a Value, name: &str) -> Option<&'a Value> {
    match reply {
        Value::Array(items) => items
            .chunks(2)
            .find(|p| text(&p[0]).as_deref() == Some(name))
            .and_then(|p| p.get(1)),
        Value::Map(pairs) => pairs
            .iter()
            .find(|(k, _)| text(k).as_deref() == Some(name))
            .map(|(_, v)| v),
        _ => None,
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) | Value::Set(items) => items.iter().filter_map(text).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE_PW: &str = "p'\"\\$ ø`;--\r\n>x #y";

    fn joined(a: &Args) -> Vec<&str> {
        a.0.iter().map(String::as_str).collect()
    }

    #[test]
    fn named_users_get_resetpass_and_new_users_full_access() {
        let pw = Secret::new(HOSTILE_PW);
        assert_eq!(
            joined(&Args::set_password("app", &pw)),
            [
                "ACL",
                "SETUSER",
                "app",
                "resetpass",
                &format!(">{HOSTILE_PW}")
            ]
        );
        assert_eq!(
            joined(&Args::create_user("a\"b", &pw)),
            [
                "ACL",
                "SETUSER",
                "a\"b",
                "on",
                &format!(">{HOSTILE_PW}"),
                "~*",
                "+@all"
            ]
        );
        assert!(
            !format!("{:?}", Args::create_user("a", &pw)).contains("p'"),
            "Debug is redacted"
        );
    }

    #[test]
    fn the_default_user_is_switched_on_and_loses_its_old_passwords() {
        let args = Args::set_password(user_name(""), &Secret::new("pw"));
        assert_eq!(
            joined(&args),
            ["ACL", "SETUSER", "default", "on", "resetpass", ">pw"]
        );
        assert_eq!(user_name("default"), "default");
        assert_eq!(
            joined(&Args::requirepass(&Secret::new("pw"))),
            ["CONFIG", "SET", "requirepass", "pw"]
        );
    }

    #[test]
    fn restore_uses_hashes_and_puts_flags_back() {
        let h = sha256_hex(&Secret::new("old"));
        let s = AclSnapshot {
            enabled: false,
            nopass: true,
            passwords: vec![h.clone(), "0".repeat(64)],
        };
        let args = Args::restore("app", &s).unwrap();
        let zero = format!("#{}", "0".repeat(64));
        assert_eq!(
            joined(&args),
            [
                "ACL",
                "SETUSER",
                "app",
                "resetpass",
                "off",
                "nopass",
                &format!("#{h}"),
                zero.as_str()
            ]
        );
        let bad = AclSnapshot {
            enabled: true,
            nopass: false,
            passwords: vec!["~* +@all".into()],
        };
        assert!(
            Args::restore("app", &bad).is_err(),
            "a snapshot cannot smuggle in other ACL rules"
        );
        let back = AclSnapshot::from_text(&s.to_text()).unwrap();
        assert!(back == s);
        assert!(AclSnapshot::from_text("[1]").is_err());
    }

    #[test]
    fn sha256_matches_what_redis_stores() {
        // ACL GETUSER after `>x y` shows this hash (checked against redis-server 7).
        assert_eq!(
            sha256_hex(&Secret::new("x y")),
            "887fcea6a80333c6c02ae7e79735f0edad8d811f0b61431495f796f4bf6a7c19"
        );
    }

    #[test]
    fn getuser_replies_parse_in_resp2_and_resp3() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let resp2 = Value::Array(vec![
            bulk("flags"),
            Value::Array(vec![bulk("on"), bulk("nopass")]),
            bulk("passwords"),
            Value::Array(vec![bulk("ab")]),
            bulk("commands"),
            bulk("+@all"),
        ]);
        let u = AclUser::from_reply(&resp2).unwrap().unwrap();
        assert!(u.enabled && u.nopass && u.passwords == ["ab"]);
        let resp3 = Value::Map(vec![
            (
                Value::SimpleString("flags".into()),
                Value::Set(vec![bulk("off")]),
            ),
            (
                Value::SimpleString("passwords".into()),
                Value::Array(vec![]),
            ),
        ]);
        let u = AclUser::from_reply(&resp3).unwrap().unwrap();
        assert!(!u.enabled && !u.nopass && u.passwords.is_empty());
        assert!(AclUser::from_reply(&Value::Nil).unwrap().is_none());
        assert!(AclUser::from_reply(&Value::Array(vec![])).is_err());
    }

    #[test]
    fn names_redis_or_its_config_file_cannot_hold_are_refused() {
        assert!(user_name_problem("a b", &Persistence::AclFile).is_some());
        assert!(user_name_problem("a\tb", &Persistence::MemoryOnly).is_some());
        assert!(user_name_problem("a\"b", &Persistence::ConfigFile).is_some());
        assert!(user_name_problem("it's", &Persistence::ConfigFile).is_some());
        assert!(user_name_problem("a\"b'\\ø", &Persistence::AclFile).is_none());
        assert!(user_name_problem("a\"b'\\ø", &Persistence::MemoryOnly).is_none());
    }
}
