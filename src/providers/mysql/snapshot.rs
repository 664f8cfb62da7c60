//! What a MySQL or MariaDB user's accounts looked like before a rotation: each account's
//! authentication methods with their stored hashes, the canonical text the journal keeps,
//! and how MariaDB's `mysql.global_priv` JSON reads into it.

use serde::{Deserialize, Serialize};

use crate::hex;
use crate::json_problem::JsonProblem;

/// Every account of one user name and how each authenticated before a rotation. The
/// text form ([`Snapshot::to_text`]) is what the journal keeps; it holds hashes, never
/// plaintext, and is canonical (sorted by host) so a read after a restore gives the
/// same text.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub accounts: Vec<AccountAuth>,
}

/// One `'user'@'host'` account.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct AccountAuth {
    pub host: String,
    /// Alternatives a login may use; one except for MariaDB's `IDENTIFIED VIA a OR b`.
    pub methods: Vec<AuthMethod>,
}

/// An authentication plugin and its stored hash, hex-encoded so binary hashes are exact.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct AuthMethod {
    pub plugin: String,
    pub hash_hex: String,
}

impl AuthMethod {
    pub fn new(plugin: &str, hash: &[u8]) -> Self {
        AuthMethod {
            plugin: plugin.to_owned(),
            hash_hex: hex::upper(hash),
        }
    }

    pub fn hash(&self) -> Result<Vec<u8>, String> {
        hex::decode(&self.hash_hex).ok_or_else(|| "the snapshot holds a malformed hash".to_owned())
    }
}

impl Snapshot {
    /// The canonical text: accounts sorted by host.
    pub fn to_text(&self) -> String {
        let mut sorted = self.clone();
        sorted.accounts.sort_by(|a, b| a.host.cmp(&b.host));
        serde_json::to_string(&sorted).unwrap_or_default()
    }

    pub fn from_text(text: &str) -> Result<Snapshot, String> {
        serde_json::from_str(text).map_err(|e| {
            format!(
                "the snapshot is not in the expected form: {}",
                JsonProblem::of(&e)
            )
        })
    }

    /// A snapshot of `(host, plugin, hash)` methods, grouped by host in order.
    #[cfg(test)]
    pub fn of(methods: &[(&str, &str, &[u8])]) -> Snapshot {
        let mut accounts: Vec<AccountAuth> = Vec::new();
        for (host, plugin, hash) in methods {
            match accounts.iter_mut().find(|a| a.host == *host) {
                Some(a) => a.methods.push(AuthMethod::new(plugin, hash)),
                None => accounts.push(AccountAuth {
                    host: host.to_string(),
                    methods: vec![AuthMethod::new(plugin, hash)],
                }),
            }
        }
        Snapshot { accounts }
    }
}

/// The authentication chain stored in a MariaDB (10.4+) `mysql.global_priv.Priv` JSON:
/// the top-level plugin, or the `auth_or` list in which an empty object marks where the
/// top-level plugin stands. A missing plugin is mysql_native_password with an empty hash.
pub fn methods_from_mariadb_priv(priv_json: &str) -> Result<Vec<AuthMethod>, String> {
    let value: serde_json::Value = serde_json::from_str(priv_json).map_err(|e| {
        format!(
            "mysql.global_priv holds malformed JSON: {}",
            JsonProblem::of(&e)
        )
    })?;
    let method_of = |v: &serde_json::Value| -> Result<AuthMethod, String> {
        let field = |name: &str| match v.get(name) {
            None => Ok(""),
            Some(serde_json::Value::String(s)) => Ok(s.as_str()),
            Some(_) => Err(format!("mysql.global_priv has a non-text \"{name}\"")),
        };
        let plugin = match field("plugin")? {
            "" => "mysql_native_password",
            p => p,
        };
        Ok(AuthMethod::new(
            plugin,
            field("authentication_string")?.as_bytes(),
        ))
    };
    let top = method_of(&value)?;
    match value.get("auth_or") {
        None => Ok(vec![top]),
        Some(serde_json::Value::Array(list)) => {
            let mut methods = Vec::with_capacity(list.len());
            for item in list {
                match item.as_object() {
                    Some(o) if o.is_empty() => methods.push(top.clone()),
                    Some(_) => methods.push(method_of(item)?),
                    None => return Err("mysql.global_priv has a malformed auth_or list".into()),
                }
            }
            if methods.is_empty() {
                methods.push(top);
            }
            Ok(methods)
        }
        Some(_) => Err("mysql.global_priv has a malformed auth_or list".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_text_is_canonical_and_round_trips() {
        let a = Snapshot::of(&[("localhost", "p", b"\x00\xff"), ("%", "q", b"h")]);
        let b = Snapshot::of(&[("%", "q", b"h"), ("localhost", "p", b"\x00\xff")]);
        assert_eq!(a.to_text(), b.to_text());
        let back = Snapshot::from_text(&a.to_text()).unwrap();
        assert_eq!(back.to_text(), a.to_text());
        assert_eq!(back.accounts[0].host, "%");
        assert_eq!(back.accounts[1].methods[0].hash().unwrap(), b"\x00\xff");
        assert!(Snapshot::from_text("SCRAM-SHA-256$...").is_err());
    }

    #[test]
    fn mariadb_priv_json_gives_the_whole_chain_in_order() {
        let chain = methods_from_mariadb_priv(
            r#"{"access":0,"plugin":"unix_socket","authentication_string":"","auth_or":[{"plugin":"ed25519","authentication_string":"Gv2"},{}]}"#,
        )
        .unwrap();
        let got: Vec<(&str, Vec<u8>)> = chain
            .iter()
            .map(|m| (m.plugin.as_str(), m.hash().unwrap()))
            .collect();
        assert_eq!(
            got,
            vec![("ed25519", b"Gv2".to_vec()), ("unix_socket", vec![])]
        );
        // After IDENTIFIED BY, MariaDB leaves a lone placeholder: the same as no chain.
        let a = methods_from_mariadb_priv(
            r#"{"plugin":"mysql_native_password","authentication_string":"*AB","auth_or":[{}]}"#,
        )
        .unwrap();
        let b = methods_from_mariadb_priv(
            r#"{"plugin":"mysql_native_password","authentication_string":"*AB"}"#,
        )
        .unwrap();
        assert!(a == b && a.len() == 1);
        let bare = methods_from_mariadb_priv(r#"{"access":1}"#).unwrap();
        assert_eq!(
            (bare[0].plugin.as_str(), bare[0].hash_hex.as_str()),
            ("mysql_native_password", "")
        );
        assert!(methods_from_mariadb_priv("{").is_err());
        assert!(methods_from_mariadb_priv(r#"{"plugin":7}"#).is_err());
    }
}
