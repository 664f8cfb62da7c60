//! How a verification logs in as a MySQL or MariaDB user: over TCP as configured, and over
//! the server's own Unix socket for `'user'@'localhost'` accounts when the agent runs on
//! the database host (checked to be the same server the admin is connected to).

use super::client::{Conn, ConnectOptions, Endpoint, Error as ClientError};
use super::errors::{code, error, host_list, server_code};
use crate::providers::error::{FailureKind, ProviderError};
use crate::providers::target::Target;
use crate::secret::Secret;

/// The host part of the accounts that logins over the server's Unix socket match.
pub const LOCALHOST: &str = "localhost";

/// Plugins whose login right after a password change (the server's cache is empty then)
/// makes the server ask for the password itself.
const REVEALING_PLUGINS: [&str; 2] = ["caching_sha2_password", "sha256_password"];

/// The accounts of a user (host, plugins) whose verification after a password change would
/// need the password sent to the server, over a connection that did not verify it: every
/// account with a revealing plugin that is verified over TCP (all but `'user'@'localhost'`
/// when the server's socket is on this machine). A user without accounts is created with
/// `new_user_plugin`. Each is named as `"user"@"host" (plugin)`.
pub fn needing_a_verified_server(
    username: &str,
    accounts: &[(String, Vec<String>)],
    socket_here: bool,
    new_user_plugin: &str,
) -> Vec<String> {
    let reveals = |plugin: &str| REVEALING_PLUGINS.contains(&plugin);
    if accounts.is_empty() {
        return match reveals(new_user_plugin) {
            true => vec![format!(
                "\"{username}\"@\"%\" ({new_user_plugin}, as it would be created)"
            )],
            false => Vec::new(),
        };
    }
    accounts
        .iter()
        .filter(|(host, _)| !(host == LOCALHOST && socket_here))
        .filter_map(|(host, plugins)| {
            let plugin = plugins.iter().find(|p| reveals(p))?;
            Some(format!("\"{username}\"@\"{host}\" ({plugin})"))
        })
        .collect()
}

/// The database server's Unix socket, usable from this machine.
#[derive(Debug, Clone)]
pub struct LocalSocket {
    path: String,
    /// `@@port` and `@@datadir` of the server the admin is connected to: a login over the
    /// socket must land on the same server, not another one on this host.
    port: u16,
    datadir: String,
}

impl LocalSocket {
    /// `@@socket` of the admin's server, when that path is a socket on this machine.
    pub fn find(conn: &mut Conn) -> Option<LocalSocket> {
        use std::os::unix::fs::FileTypeExt;
        let (path, port, datadir): (Option<String>, u16, String) = conn
            .query_first("SELECT @@socket, @@port, @@datadir")
            .ok()
            .flatten()?;
        let path = path.filter(|p| !p.is_empty())?;
        std::fs::metadata(&path)
            .ok()
            .filter(|m| m.file_type().is_socket())?;
        Some(LocalSocket {
            path,
            port,
            datadir,
        })
    }
}

/// Logs in over TCP as configured; a refusal names the anonymous accounts that may shadow
/// the user's (`anonymous_hosts`) and the hosts of the user's own accounts (`hosts`).
pub fn tcp(
    target: &Target,
    username: &str,
    password: &Secret,
    hosts: &[String],
    anonymous_hosts: &[String],
) -> Result<(), ProviderError> {
    let action = format!("logging in as \"{username}\"");
    match new_conn(target, username, password, true).and_then(|mut conn| conn.ping()) {
        Ok(()) => Ok(()),
        // Both come after a successful authentication: the password works.
        Err(e) if matches!(server_code(&e), Some(code::BAD_DB | code::DBACCESS_DENIED)) => Ok(()),
        Err(e) => {
            let mut err = error(target, &action, &e, &[password]);
            if err.kind == FailureKind::AuthRejected && !anonymous_hosts.is_empty() {
                err.detail.push_str(&format!(
                    "; note: anonymous accounts exist for {}, and they take precedence over \"{username}\"@\"%\" for logins from those hosts (drop them with DROP USER ''@'host')",
                    host_list(anonymous_hosts)
                ));
            }
            if err.kind == FailureKind::AuthRejected && !hosts.is_empty() {
                err.detail.push_str(&format!(
                    "; the user's accounts are on hosts {}",
                    host_list(hosts)
                ));
            }
            Err(err)
        }
    }
}

/// Logs in over the server's socket and checks that it is the same server.
pub fn socket(
    target: &Target,
    socket: &LocalSocket,
    username: &str,
    password: &Secret,
) -> Result<(), ProviderError> {
    let action = format!(
        "logging in as \"{username}\"@\"localhost\" over the server's socket {}",
        socket.path
    );
    // The socket never leaves this machine, so it needs no TLS (the server counts it as
    // a secure transport), and whoever listens on it is the server.
    let opts = ConnectOptions {
        endpoint: Endpoint::Socket(&socket.path),
        ..connect_options(target, username, password, true)
    };
    let conn = match Conn::connect(&opts) {
        Ok(conn) => Some(conn),
        Err(e) if matches!(server_code(&e), Some(code::BAD_DB | code::DBACCESS_DENIED)) => None,
        Err(e) => return Err(error(target, &action, &e, &[password])),
    };
    if let Some(mut conn) = conn {
        let same: Option<(u16, String)> = conn
            .query_first("SELECT @@port, @@datadir")
            .map_err(|e| error(target, &action, &e, &[password]))?;
        if same != Some((socket.port, socket.datadir.clone())) {
            return Err(ProviderError::new(
                target,
                FailureKind::Database,
                action,
                "the socket belongs to another server on this machine",
            ));
        }
    }
    Ok(())
}

/// A session as `user` over TCP, with the target's TLS settings. With `prefer`, a server
/// that does not offer TLS is spoken to in plaintext on the same connection; a failed
/// handshake never falls back.
pub fn new_conn(
    target: &Target,
    user: &str,
    password: &Secret,
    with_database: bool,
) -> Result<Conn, ClientError> {
    Conn::connect(&connect_options(target, user, password, with_database))
}

/// A login with every wait bounded; it goes exactly where it is configured (a socket
/// login would match different accounts), never to a socket on its own.
fn connect_options<'a>(
    target: &'a Target,
    user: &'a str,
    password: &'a Secret,
    with_database: bool,
) -> ConnectOptions<'a> {
    ConnectOptions {
        endpoint: Endpoint::Tcp {
            host: &target.host,
            port: target.port,
        },
        user,
        password,
        database: Some(target.database.as_str()).filter(|d| with_database && !d.is_empty()),
        tls: &target.tls,
        connect_timeout: target.timeouts.connect,
        io_timeout: target.timeouts.statement,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(host: &str, plugin: &str) -> (String, Vec<String>) {
        (host.to_owned(), vec![plugin.to_owned()])
    }

    #[test]
    fn only_accounts_verified_over_tcp_with_a_revealing_plugin_are_named() {
        let accounts = [
            account("%", "caching_sha2_password"),
            account("localhost", "caching_sha2_password"),
            account("10.0.0.%", "mysql_native_password"),
        ];
        let native = "mysql_native_password";
        assert_eq!(
            needing_a_verified_server("app", &accounts, true, native),
            ["\"app\"@\"%\" (caching_sha2_password)"]
        );
        assert_eq!(
            needing_a_verified_server("app", &accounts, false, native).len(),
            2
        );
        assert!(
            needing_a_verified_server("app", &[account("%", "ed25519")], false, native).is_empty()
        );
    }

    #[test]
    fn a_new_user_gets_the_servers_plugin() {
        assert_eq!(
            needing_a_verified_server("app", &[], false, "caching_sha2_password"),
            ["\"app\"@\"%\" (caching_sha2_password, as it would be created)"]
        );
        assert!(needing_a_verified_server("app", &[], false, "mysql_native_password").is_empty());
    }
}
