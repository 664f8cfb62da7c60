//! A MySQL or MariaDB user's accounts as the admin reads them: each host's authentication
//! methods and stored hashes (for rollback and for explaining a refused login), whether
//! they are the hashes of a password, and whether an account is locked or expired.

use super::client::{Conn, Error as ClientError};
use super::errors::{code, malformed, server_code};
use super::hash;
use super::snapshot::{AccountAuth, AuthMethod, Snapshot, methods_from_mariadb_priv};
use super::sql::{Dialect, Flavor};
use crate::providers::provider::PasswordMatch;
use crate::secret::Secret;

/// Every account of `username` with its authentication, read the way this server
/// keeps it: MariaDB 10.4+ keeps the whole `IDENTIFIED VIA a OR b` chain in
/// mysql.global_priv, which MariaDB before 10.4 does not have.
pub fn read(
    conn: &mut Conn,
    dialect: &Dialect,
    username: &str,
) -> Result<Vec<AccountAuth>, ClientError> {
    match dialect.flavor {
        Flavor::Mariadb => match mariadb(conn, dialect, username) {
            Err(e) if server_code(&e) == Some(code::NO_SUCH_TABLE) => {
                legacy_mariadb(conn, dialect, username)
            }
            other => other,
        },
        Flavor::Mysql => mysql(conn, dialect, username),
    }
}

fn mariadb(
    conn: &mut Conn,
    dialect: &Dialect,
    username: &str,
) -> Result<Vec<AccountAuth>, ClientError> {
    let rows: Vec<(String, String)> = conn.query(&format!(
        "SELECT Host, Priv FROM mysql.global_priv WHERE User = {}",
        dialect.string(username)
    ))?;
    let mut accounts = Vec::with_capacity(rows.len());
    for (host, priv_json) in rows {
        let methods = methods_from_mariadb_priv(&priv_json).map_err(malformed)?;
        accounts.push(AccountAuth { host, methods });
    }
    Ok(accounts)
}

/// MariaDB before 10.4: mysql.user is a table; an empty plugin means the `Password` column.
fn legacy_mariadb(
    conn: &mut Conn,
    dialect: &Dialect,
    username: &str,
) -> Result<Vec<AccountAuth>, ClientError> {
    let rows: Vec<(String, String, Vec<u8>, Vec<u8>)> = conn.query(&format!(
        "SELECT Host, plugin, authentication_string, Password FROM mysql.user WHERE User = {}",
        dialect.string(username)
    ))?;
    Ok(rows
        .into_iter()
        .map(|(host, plugin, auth, password)| {
            let method = if plugin.is_empty() {
                AuthMethod::new("mysql_native_password", &password)
            } else {
                AuthMethod::new(&plugin, &auth)
            };
            AccountAuth {
                host,
                methods: vec![method],
            }
        })
        .collect())
}

fn mysql(
    conn: &mut Conn,
    dialect: &Dialect,
    username: &str,
) -> Result<Vec<AccountAuth>, ClientError> {
    let rows: Vec<(String, String, Option<Vec<u8>>)> = conn.query(&format!(
        "SELECT Host, plugin, authentication_string FROM mysql.user WHERE User = {}",
        dialect.string(username)
    ))?;
    Ok(rows
        .into_iter()
        .map(|(host, plugin, auth)| AccountAuth {
            host,
            methods: vec![AuthMethod::new(&plugin, &auth.unwrap_or_default())],
        })
        .collect())
}

/// Whether every account's hash is the one of `password` (a login may land on any of
/// them), or some account's is not.
pub fn matching(snapshot: &Snapshot, password: &Secret) -> PasswordMatch {
    let mut all = true;
    for account in &snapshot.accounts {
        let results: Vec<Option<bool>> = account
            .methods
            .iter()
            .map(|m| {
                m.hash()
                    .ok()
                    .and_then(|h| hash::stored_matches(&m.plugin, &h, password))
            })
            .collect();
        if results.contains(&Some(true)) {
            continue;
        }
        if !results.is_empty() && results.iter().all(|r| *r == Some(false)) {
            return PasswordMatch::Differs;
        }
        all = false;
    }
    if all {
        PasswordMatch::Matches
    } else {
        PasswordMatch::Unknown
    }
}

/// A locked or expired account of `username`, as the admin sees it; `None` when there
/// is none or the admin cannot read it.
pub fn obstacle(conn: &mut Conn, dialect: &Dialect, username: &str) -> Option<String> {
    let user = dialect.string(username);
    let query = match dialect.flavor {
        Flavor::Mysql => format!(
            "SELECT Host, account_locked = 'Y', password_expired = 'Y' FROM mysql.user WHERE User = {user}"
        ),
        Flavor::Mariadb => format!(
            "SELECT g.Host, IFNULL(JSON_EXTRACT(g.Priv, '$.account_locked') = 'true', 0), \
             IFNULL(u.password_expired, 'N') = 'Y' \
             FROM mysql.global_priv g LEFT JOIN mysql.user u ON u.User = g.User AND u.Host = g.Host \
             WHERE g.User = {user}"
        ),
    };
    let rows: Vec<(String, bool, bool)> = conn.query(&query).ok()?;
    let what: Vec<String> = rows
        .iter()
        .filter_map(|(host, locked, expired)| {
            let why = match (locked, expired) {
                (true, _) => "is locked (ACCOUNT LOCK)",
                (false, true) => "has an expired password (PASSWORD EXPIRE)",
                _ => return None,
            };
            Some(format!("account \"{username}\"@\"{host}\" {why}"))
        })
        .collect();
    (!what.is_empty()).then(|| what.join("; "))
}
