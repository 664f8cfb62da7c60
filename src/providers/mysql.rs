//! MySQL and MariaDB: a managed user may have accounts on several hosts, so every
//! rotation changes all of them in one statement, and rollback puts each account's plugin
//! and stored hash back (never a plaintext). Statements are built in [`sql`] for the
//! session's dialect and escaping mode, with every value as a literal quoted for it; every
//! call is bounded by socket timeouts.
//!
//! The connection is the agent's own client (`mysql/client.rs` over `mysql/wire.rs`, the
//! plugins in `mysql/auth.rs`), so that the TLS trust and what a login may reveal follow
//! `providers::tls`: see `client.rs` for why not the `mysql` crate.

mod auth;
mod client;
mod hash;
mod sql;
mod wire;

use std::cell::RefCell;

pub use client::{Conn, Error as ClientError};
use client::{ConnectOptions, Endpoint};

use super::{
    FailureKind, PasswordMatch, Provider, ProviderError, Refusal, RefusalFacts, StoredCredential,
    Target, TlsStatus, tls,
};
use crate::secret::{Secret, scrub};

use sql::{AccountAuth, AuthMethod, SHA2_ROUNDS_QUERY, Snapshot};
pub use sql::{Dialect, Flavor};

/// Server error codes the provider acts on (shared by MySQL and MariaDB unless noted).
mod code {
    pub const DBACCESS_DENIED: u16 = 1044;
    pub const ACCESS_DENIED: u16 = 1045;
    /// MariaDB's refusal when no account matches the client's host at all.
    pub const ACCESS_DENIED_NO_PASSWORD: u16 = 1698;
    pub const BAD_DB: u16 = 1049;
    pub const PARSE_ERROR: u16 = 1064;
    pub const TABLEACCESS_DENIED: u16 = 1142;
    pub const COLUMNACCESS_DENIED: u16 = 1143;
    pub const NO_SUCH_TABLE: u16 = 1146;
    pub const LOCK_WAIT_TIMEOUT: u16 = 1205;
    pub const SPECIFIC_ACCESS_DENIED: u16 = 1227;
    pub const WRONG_STRING_LENGTH: u16 = 1470;
    pub const MUST_CHANGE_PASSWORD: u16 = 1820;
    pub const NOT_VALID_PASSWORD: u16 = 1819;
    pub const MUST_CHANGE_PASSWORD_LOGIN: u16 = 1862;
    /// MariaDB's max_statement_time.
    pub const STATEMENT_TIMEOUT: u16 = 1969;
    /// MySQL's max_execution_time.
    pub const QUERY_TIMEOUT: u16 = 3024;
    pub const ACCOUNT_LOCKED_MYSQL: u16 = 3118;
    /// MySQL's FAILED_LOGIN_ATTEMPTS / PASSWORD_LOCK_TIME lock.
    pub const PASSWORD_LOCKED_MYSQL: u16 = 3955;
    /// MariaDB's max_password_errors block (until FLUSH PRIVILEGES or ALTER USER).
    pub const USER_BLOCKED_MARIADB: u16 = 4150;
    pub const ACCOUNT_LOCKED_MARIADB: u16 = 4151;
}

/// An admin session on one MySQL or MariaDB server.
pub struct Mysql {
    target: Target,
    /// In a `RefCell` because `verify_login` (`&self`) looks the user's accounts up.
    conn: RefCell<Conn>,
    /// The server's own Unix socket, when this agent runs on the database host.
    socket: Option<LocalSocket>,
    dialect: Dialect,
    /// Hosts of anonymous accounts (`''@host`): they take precedence over `'name'@'%'` for
    /// logins from those hosts, which explains a refused verification.
    anonymous_hosts: Vec<String>,
}

impl Mysql {
    /// Connects as the admin, switches the session to utf8mb4, bounds server-side waits,
    /// and reads the version and sql_mode that decide how statements are written.
    pub fn connect(target: &Target) -> Result<Self, ProviderError> {
        let action = format!("connecting as admin \"{}\"", target.admin_user);
        let mut conn = new_conn(target, &target.admin_user, &target.admin_pass, false)
            .map_err(|e| error(target, &action, &e, &[&target.admin_pass]))?;
        let setup = |conn: &mut Conn| -> Result<Dialect, ClientError> {
            conn.query_drop("SET NAMES utf8mb4")?;
            let (version, sql_mode): (String, String) = conn
                .query_first("SELECT VERSION(), @@SESSION.sql_mode")?
                .unwrap_or_default();
            let dialect = Dialect::from_server(&version, &sql_mode);
            // New caching_sha2_password hashes get the server's configured round count.
            let rounds = match dialect.reads_sha2_rounds() {
                true => conn
                    .query_first::<(u32,)>(SHA2_ROUNDS_QUERY)
                    .ok()
                    .flatten()
                    .map(|(rounds,)| rounds),
                false => None,
            };
            let dialect = dialect.with_sha2_rounds(rounds);
            let seconds = target.timeouts.statement.as_secs().max(1);
            conn.query_drop(&format!("SET SESSION lock_wait_timeout = {seconds}"))?;
            if dialect.flavor == Flavor::Mariadb {
                conn.query_drop(&format!("SET SESSION max_statement_time = {seconds}"))?;
            }
            Ok(dialect)
        };
        let dialect =
            setup(&mut conn).map_err(|e| error(target, "setting up the admin session", &e, &[]))?;
        // Only a hint for error messages, so an admin without read access to mysql.user
        // (which check_admin reports) does not fail here.
        let anonymous_hosts = conn
            .query("SELECT Host FROM mysql.user WHERE User = ''")
            .unwrap_or_default();
        let socket = LocalSocket::find(&mut conn);
        Ok(Mysql {
            target: target.clone(),
            conn: RefCell::new(conn),
            socket,
            dialect,
            anonymous_hosts,
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// A random salt for a caching_sha2_password hash.
    fn salt(&self) -> Result<[u8; hash::SHA2_SALT_LEN], ProviderError> {
        hash::sha2_salt().map_err(|e| {
            ProviderError::new(
                &self.target,
                FailureKind::Database,
                "making a salt for the password hash",
                format!("the system's random source failed: {e}"),
            )
        })
    }

    /// Each host with the plugin of its account when it has exactly one authentication
    /// method, so a new password keeps the account's kind of hash. Where the plugins cannot
    /// be read, every plugin is `None`.
    fn account_plugins(
        &mut self,
        username: &str,
        hosts: Vec<String>,
    ) -> Vec<(String, Option<String>)> {
        let accounts = self.accounts(username);
        let accounts = accounts.unwrap_or_else(|e| {
            log::info!(
                "{} at {}: cannot read the plugins of user \"{username}\" ({}); every account gets the default hash",
                self.dialect.flavor.name(),
                self.target.endpoint(),
                server_message(&e)
            );
            Vec::new()
        });
        hosts
            .into_iter()
            .map(|host| {
                let plugin = accounts.iter().find(|a| a.host == host).and_then(|a| {
                    match a.methods.as_slice() {
                        [only] => Some(only.plugin.clone()),
                        _ => None,
                    }
                });
                (host, plugin)
            })
            .collect()
    }

    /// Hosts of every account named `username`, sorted.
    fn hosts(&self, username: &str) -> Result<Vec<String>, ProviderError> {
        let sql = format!(
            "SELECT Host FROM mysql.user WHERE User = {}",
            self.dialect.string(username)
        );
        let mut hosts: Vec<String> = self.conn.borrow_mut().query(&sql).map_err(|e| {
            error(
                &self.target,
                &format!("looking up the accounts of user \"{username}\""),
                &e,
                &[],
            )
        })?;
        hosts.sort();
        Ok(hosts)
    }

    fn execute(
        &mut self,
        action: &str,
        statement: &Secret,
        secrets: &[&Secret],
    ) -> Result<(), ProviderError> {
        self.conn
            .borrow_mut()
            .query_drop(statement.expose())
            .map_err(|e| error(&self.target, action, &e, secrets))
    }

    /// Plugin and hash of each account, or why they cannot be read or put back.
    fn read_accounts(
        &mut self,
        username: &str,
        hosts: &[String],
    ) -> Result<Result<Snapshot, String>, ProviderError> {
        let action = format!("reading the stored password hashes of user \"{username}\"");
        let accounts = self.accounts(username);
        let mut accounts = match accounts {
            Ok(a) => a,
            Err(e) if is_access_denied(&e) => {
                return Ok(Err(format!(
                    "admin \"{}\" cannot read the stored password hashes ({})",
                    self.target.admin_user,
                    server_message(&e)
                )));
            }
            Err(e) => return Err(error(&self.target, &action, &e, &[])),
        };
        accounts.sort_by(|a, b| a.host.cmp(&b.host));
        let read: Vec<&String> = accounts.iter().map(|a| &a.host).collect();
        if read.len() != hosts.len() || read.iter().zip(hosts).any(|(a, b)| *a != b) {
            return Err(ProviderError::new(
                &self.target,
                FailureKind::Database,
                action,
                "the accounts changed while they were being read; another session is editing this user",
            ));
        }
        for account in &accounts {
            for m in &account.methods {
                let hash = m.hash().unwrap_or_default();
                if !self.dialect.can_restore_hash(&hash) {
                    return Ok(Err(format!(
                        "the {} hash of account @\"{}\" is binary and this server version cannot take it back",
                        m.plugin, account.host
                    )));
                }
            }
            if self.dialect.flavor == Flavor::Mysql && account.methods.len() != 1 {
                return Ok(Err(format!(
                    "account @\"{}\" has several authentication methods",
                    account.host
                )));
            }
        }
        Ok(Ok(Snapshot { accounts }))
    }

    /// MariaDB 10.4+: the whole `IDENTIFIED VIA a OR b` chain lives in mysql.global_priv.
    /// Every account of `username` with its authentication, read the way this server
    /// keeps it (MariaDB before 10.4 has no `mysql.global_priv`).
    fn accounts(&mut self, username: &str) -> Result<Vec<AccountAuth>, ClientError> {
        match self.dialect.flavor {
            Flavor::Mariadb => match self.mariadb_accounts(username) {
                Err(e) if server_code(&e) == Some(code::NO_SUCH_TABLE) => {
                    self.legacy_mariadb_accounts(username)
                }
                other => other,
            },
            Flavor::Mysql => self.mysql_accounts(username),
        }
    }

    fn mariadb_accounts(&mut self, username: &str) -> Result<Vec<AccountAuth>, ClientError> {
        let rows: Vec<(String, String)> = self.conn.borrow_mut().query(&format!(
            "SELECT Host, Priv FROM mysql.global_priv WHERE User = {}",
            self.dialect.string(username)
        ))?;
        let mut accounts = Vec::with_capacity(rows.len());
        for (host, priv_json) in rows {
            let methods = sql::methods_from_mariadb_priv(&priv_json).map_err(malformed)?;
            accounts.push(AccountAuth { host, methods });
        }
        Ok(accounts)
    }

    /// MariaDB before 10.4: mysql.user is a table; an empty plugin means the `Password` column.
    fn legacy_mariadb_accounts(&mut self, username: &str) -> Result<Vec<AccountAuth>, ClientError> {
        let rows: Vec<(String, String, Vec<u8>, Vec<u8>)> = self.conn.borrow_mut().query(&format!(
            "SELECT Host, plugin, authentication_string, Password FROM mysql.user WHERE User = {}",
            self.dialect.string(username)
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

    fn mysql_accounts(&mut self, username: &str) -> Result<Vec<AccountAuth>, ClientError> {
        let rows: Vec<(String, String, Option<Vec<u8>>)> =
            self.conn.borrow_mut().query(&format!(
                "SELECT Host, plugin, authentication_string FROM mysql.user WHERE User = {}",
                self.dialect.string(username)
            ))?;
        Ok(rows
            .into_iter()
            .map(|(host, plugin, auth)| AccountAuth {
                host,
                methods: vec![AuthMethod::new(&plugin, &auth.unwrap_or_default())],
            })
            .collect())
    }

    /// The admin's global privileges from `SHOW GRANTS`.
    fn global_privileges(&mut self) -> Result<Vec<String>, ProviderError> {
        let lines: Vec<String> = self
            .conn
            .borrow_mut()
            .query("SHOW GRANTS")
            .map_err(|e| error(&self.target, "checking the admin's privileges", &e, &[]))?;
        Ok(lines
            .iter()
            .flat_map(|l| sql::global_privileges(l))
            .collect())
    }

    fn can_read(&mut self, statement: &str) -> Result<bool, ProviderError> {
        match self.conn.borrow_mut().query_drop(statement) {
            Ok(()) => Ok(true),
            Err(e) if is_access_denied(&e) => Ok(false),
            Err(e) => Err(error(
                &self.target,
                "checking the admin's privileges",
                &e,
                &[],
            )),
        }
    }
}

impl Provider for Mysql {
    fn target(&self) -> &Target {
        &self.target
    }

    fn check_admin(&mut self) -> Result<(), ProviderError> {
        let action = "checking the admin's privileges";
        let me: String = self
            .conn
            .borrow_mut()
            .query_first("SELECT CURRENT_USER()")
            .map_err(|e| error(&self.target, action, &e, &[]))?
            .unwrap_or_default();
        let account = match me.rsplit_once('@') {
            Some((user, host)) => self.dialect.account(user, host),
            None => self.dialect.string(&me),
        };
        let mut missing = Vec::new();
        let privileges = self.global_privileges()?;
        if !privileges
            .iter()
            .any(|p| p == "ALL PRIVILEGES" || p == "ALL" || p == "CREATE USER")
        {
            missing.push(format!(
                "the CREATE USER privilege (GRANT CREATE USER ON *.* TO {account})"
            ));
        }
        if !self
            .can_read("SELECT Host, plugin, authentication_string FROM mysql.user WHERE 1 = 0")?
        {
            missing.push(format!(
                "read access to mysql.user (GRANT SELECT ON mysql.user TO {account})"
            ));
        }
        if !missing.is_empty() {
            return Err(ProviderError::new(
                &self.target,
                FailureKind::Privilege,
                action,
                format!("admin {me} lacks {}", missing.join(" and ")),
            ));
        }
        if self.dialect.flavor == Flavor::Mariadb
            && !self
                .can_read("SELECT Priv FROM mysql.global_priv WHERE 1 = 0")
                .unwrap_or(true)
        {
            log::warn!(
                "MariaDB at {}: admin {me} cannot read mysql.global_priv, so rollbacks will set the previous password from the live value instead of restoring the stored hash; grant it with: GRANT SELECT ON mysql.global_priv TO {account}",
                self.target.endpoint()
            );
        }
        Ok(())
    }

    fn input_problem(&self, username: &str, _password: &Secret) -> Option<String> {
        sql::user_name_problem(username).map(str::to_owned)
    }

    fn user_exists(&mut self, username: &str) -> Result<bool, ProviderError> {
        Ok(!self.hosts(username)?.is_empty())
    }

    /// Every account's stored hash against `password` (all match, or any differs), and
    /// a locked or expired account. What the admin cannot read stays unknown.
    fn explain_refusal(
        &mut self,
        username: &str,
        password: &Secret,
    ) -> Result<RefusalFacts, ProviderError> {
        let hosts = self.hosts(username)?;
        if hosts.is_empty() {
            return Ok(RefusalFacts {
                password: PasswordMatch::Absent,
                obstacle: None,
            });
        }
        let password = match self.read_accounts(username, &hosts)? {
            Ok(snapshot) => accounts_match(&snapshot, password),
            Err(_) => PasswordMatch::Unknown,
        };
        Ok(RefusalFacts {
            password,
            obstacle: self.account_obstacle(username),
        })
    }

    fn read_stored(&mut self, username: &str) -> Result<StoredCredential, ProviderError> {
        let hosts = self.hosts(username)?;
        if hosts.is_empty() {
            return Ok(StoredCredential::Absent);
        }
        Ok(match self.read_accounts(username, &hosts)? {
            Ok(snapshot) => StoredCredential::Stored(snapshot.to_text()),
            Err(reason) => StoredCredential::Unreadable { reason },
        })
    }

    fn create_user(&mut self, username: &str, password: &Secret) -> Result<(), ProviderError> {
        let salt = self.salt()?;
        let statement = self.dialect.create_user(username, password, &salt);
        self.execute(
            &format!("creating user \"{username}\"@\"%\""),
            &statement,
            &[password],
        )
    }

    fn change_password(&mut self, username: &str, password: &Secret) -> Result<(), ProviderError> {
        let hosts = self.hosts(username)?;
        let salt = self.salt()?;
        let accounts = self.account_plugins(username, hosts);
        let (statement, notes) = self
            .dialect
            .alter_password(username, &accounts, password, &salt);
        for note in notes {
            log::warn!(
                "{} at {}, user \"{username}\": {note}; the server's general and audit logs may record it",
                self.dialect.flavor.name(),
                self.target.endpoint()
            );
        }
        let hosts: Vec<String> = accounts.into_iter().map(|(h, _)| h).collect();
        let action = format!(
            "setting the password of user \"{username}\" on hosts {}",
            host_list(&hosts)
        );
        self.execute(&action, &statement, &[password])
    }

    fn restore_stored(&mut self, username: &str, stored: &str) -> Result<(), ProviderError> {
        let action = format!("restoring the previous password hashes of user \"{username}\"");
        let statement = Snapshot::from_text(stored)
            .and_then(|snapshot| self.dialect.restore(username, &snapshot))
            .map_err(|detail| {
                ProviderError::new(&self.target, FailureKind::Database, &action, detail)
            })?;
        self.execute(&action, &statement, &[])
    }

    fn drop_user(&mut self, username: &str) -> Result<(), ProviderError> {
        let statement = Secret::new(self.dialect.drop_user(username));
        self.execute(
            &format!("dropping user \"{username}\"@\"%\""),
            &statement,
            &[],
        )
    }

    /// What this session negotiated, as the client saw it (not the server's word for it).
    fn tls_status(&mut self) -> TlsStatus {
        match self.conn.borrow().tls() {
            Some(session) => TlsStatus::Encrypted {
                protocol: session.protocol.clone(),
                cipher: session.cipher.clone(),
            },
            None => TlsStatus::Plaintext,
        }
    }

    /// Logs in over a path that reaches each rotated account: TCP, as configured, for
    /// accounts on other hosts; the server's own Unix socket for `'user'@'localhost'`
    /// (which TCP logins from 127.0.0.1 do not match when the server skips name
    /// resolution). An account no path reaches is named in the error, with the fix.
    fn login(&self, username: &str, password: &Secret) -> Result<(), ProviderError> {
        let hosts = self.hosts(username)?;
        let local = hosts.iter().any(|h| h == LOCALHOST);
        let remote = hosts.iter().any(|h| h != LOCALHOST);
        if remote || hosts.is_empty() {
            self.login_tcp(username, password, &hosts)?;
        }
        if !local {
            return Ok(());
        }
        match &self.socket {
            Some(socket) => self.login_socket(socket, username, password),
            // The 'localhost' account was changed in the same statement as a verified one.
            None if remote => Ok(()),
            None => self.login_tcp(username, password, &hosts).map_err(|mut e| {
                if e.kind == FailureKind::AuthRejected {
                    e.detail = format!(
                        "user \"{username}\" has only the account \"{username}\"@\"localhost\", which logins over TCP from this agent do not reach, and the server's Unix socket is not on this machine ({}); run the agent on the database host, or give the user an account for the agent's address (CREATE USER '{username}'@'<agent address>' ...)",
                        e.detail
                    );
                }
                e
            }),
        }
    }
}

/// Whether every account's hash is the one of `password` (a login may land on any of
/// them), or some account's is not.
fn accounts_match(snapshot: &Snapshot, password: &Secret) -> PasswordMatch {
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

impl Mysql {
    /// A locked or expired account of `username`, as the admin sees it; `None` when there
    /// is none or the admin cannot read it.
    fn account_obstacle(&mut self, username: &str) -> Option<String> {
        let user = self.dialect.string(username);
        let query = match self.dialect.flavor {
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
        let rows: Vec<(String, bool, bool)> = self.conn.borrow_mut().query(&query).ok()?;
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
}

/// The host part of the accounts that logins over the server's Unix socket match.
const LOCALHOST: &str = "localhost";

/// The database server's Unix socket, usable from this machine.
#[derive(Debug, Clone)]
struct LocalSocket {
    path: String,
    /// `@@port` and `@@datadir` of the server the admin is connected to: a login over the
    /// socket must land on the same server, not another one on this host.
    port: u16,
    datadir: String,
}

impl LocalSocket {
    /// `@@socket` of the admin's server, when that path is a socket on this machine.
    fn find(conn: &mut Conn) -> Option<LocalSocket> {
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

impl Mysql {
    fn login_tcp(
        &self,
        username: &str,
        password: &Secret,
        hosts: &[String],
    ) -> Result<(), ProviderError> {
        let action = format!("logging in as \"{username}\"");
        match new_conn(&self.target, username, password, true).and_then(|mut conn| conn.ping()) {
            Ok(()) => Ok(()),
            // Both come after a successful authentication: the password works.
            Err(e) if matches!(server_code(&e), Some(code::BAD_DB | code::DBACCESS_DENIED)) => {
                Ok(())
            }
            Err(e) => {
                let mut err = error(&self.target, &action, &e, &[password]);
                if err.kind == FailureKind::AuthRejected && !self.anonymous_hosts.is_empty() {
                    err.detail.push_str(&format!(
                        "; note: anonymous accounts exist for {}, and they take precedence over \"{username}\"@\"%\" for logins from those hosts (drop them with DROP USER ''@'host')",
                        host_list(&self.anonymous_hosts)
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
    fn login_socket(
        &self,
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
            ..connect_options(&self.target, username, password, true)
        };
        let conn = match Conn::connect(&opts) {
            Ok(conn) => Some(conn),
            Err(e) if matches!(server_code(&e), Some(code::BAD_DB | code::DBACCESS_DENIED)) => None,
            Err(e) => return Err(error(&self.target, &action, &e, &[password])),
        };
        if let Some(mut conn) = conn {
            let same: Option<(u16, String)> = conn
                .query_first("SELECT @@port, @@datadir")
                .map_err(|e| error(&self.target, &action, &e, &[password]))?;
            if same != Some((socket.port, socket.datadir.clone())) {
                return Err(ProviderError::new(
                    &self.target,
                    FailureKind::Database,
                    action,
                    "the socket belongs to another server on this machine",
                ));
            }
        }
        Ok(())
    }
}

/// A session as `user` over TCP, with the target's TLS settings. With `prefer`, a server
/// that does not offer TLS is spoken to in plaintext on the same connection; a failed
/// handshake never falls back.
fn new_conn(
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

fn host_list(hosts: &[String]) -> String {
    hosts
        .iter()
        .map(|h| format!("\"{h}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn malformed(detail: String) -> ClientError {
    ClientError::Protocol(detail)
}

fn server_code(e: &ClientError) -> Option<u16> {
    match e {
        ClientError::Server { code, .. } => Some(*code),
        _ => None,
    }
}

fn server_message(e: &ClientError) -> String {
    match e {
        ClientError::Server { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

fn is_access_denied(e: &ClientError) -> bool {
    matches!(
        server_code(e),
        Some(
            code::TABLEACCESS_DENIED
                | code::COLUMNACCESS_DENIED
                | code::SPECIFIC_ACCESS_DENIED
                | code::DBACCESS_DENIED
        )
    )
}

/// Whether an I/O error is a socket timeout (which Linux reports as `WouldBlock`).
fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    )
}

/// What the agent's other ways to let a MySQL login reveal the password are.
const MYSQL_ALTERNATIVES: &str = "; or run the agent on the database host, where 'user'@'localhost' accounts log in over the server's Unix socket; or give the account mysql_native_password or ed25519, whose logins reveal nothing, or let one verified login put a caching_sha2_password account in the server's cache";

/// Maps a client error to the provider error, keeping the server's message but never a
/// password: parse errors quote the statement, so their text is dropped.
fn error(target: &Target, action: &str, e: &ClientError, secrets: &[&Secret]) -> ProviderError {
    let mode = target.tls.mode;
    let tls_error = |reason: String| ProviderError::new(target, FailureKind::Tls, action, reason);
    let (kind, detail) = match e {
        ClientError::Server {
            code: c,
            state,
            message,
        } => {
            let kind = match *c {
                code::ACCESS_DENIED
                | code::ACCESS_DENIED_NO_PASSWORD
                | code::ACCOUNT_LOCKED_MYSQL
                | code::PASSWORD_LOCKED_MYSQL
                | code::USER_BLOCKED_MARIADB
                | code::ACCOUNT_LOCKED_MARIADB
                | code::MUST_CHANGE_PASSWORD
                | code::MUST_CHANGE_PASSWORD_LOGIN => FailureKind::AuthRejected,
                code::TABLEACCESS_DENIED
                | code::COLUMNACCESS_DENIED
                | code::SPECIFIC_ACCESS_DENIED
                | code::DBACCESS_DENIED => FailureKind::Privilege,
                code::LOCK_WAIT_TIMEOUT | code::STATEMENT_TIMEOUT | code::QUERY_TIMEOUT => {
                    FailureKind::Timeout
                }
                code::WRONG_STRING_LENGTH | code::NOT_VALID_PASSWORD => FailureKind::InvalidInput,
                _ => FailureKind::Database,
            };
            let message = if *c == code::PARSE_ERROR {
                "the server could not parse the statement (its text is withheld because it may hold a password)".to_owned()
            } else {
                scrub(message, secrets)
            };
            (kind, format!("{message} (error {c}, SQLSTATE {state})"))
        }
        // A failed handshake, or no TLS where it was demanded: the server never saw a login.
        ClientError::Tls(io) => {
            let explained = if is_timeout(io) {
                tls::explain_text("TLS handshake timed out", &target.host, mode)
            } else {
                tls::explain_failure(io, &target.host, mode)
            };
            return tls_error(
                explained
                    .unwrap_or_else(|| format!("TLS ({mode}) to {} failed: {io}", target.host)),
            );
        }
        ClientError::NoTls => {
            return tls_error(
                tls::explain_text("server does not support TLS", &target.host, mode)
                    .expect("a known phrase"),
            );
        }
        // The server asked for what would reveal the password; nothing was sent.
        ClientError::Refused { request, over_tls } => {
            let channel = if *over_tls {
                tls::Unverified::Tls
            } else {
                tls::Unverified::Plaintext
            };
            return tls_error(tls::password_refusal(
                request,
                channel,
                &target.tls,
                MYSQL_ALTERNATIVES,
            ));
        }
        ClientError::UnsupportedAuth(why) => (FailureKind::Database, why.clone()),
        ClientError::Io(io) if is_timeout(io) => (
            FailureKind::Timeout,
            format!(
                "no answer within {} s ({})",
                target.timeouts.statement.as_secs_f32(),
                scrub(&io.to_string(), secrets)
            ),
        ),
        ClientError::ConnectTimeout(_) => (
            FailureKind::Unreachable,
            format!(
                "no connection within {} s",
                target.timeouts.connect.as_secs_f32()
            ),
        ),
        ClientError::Connect(_) | ClientError::Io(_) | ClientError::Protocol(_) => {
            (FailureKind::Unreachable, scrub(&e.to_string(), secrets))
        }
    };
    let error = ProviderError::new(target, kind, action, detail);
    match server_code(e).and_then(refusal) {
        Some(r) if kind == FailureKind::AuthRejected => error.with_refusal(r),
        _ => error,
    }
}

/// What a refused login's code says about the password. 1045 is also what a login gets
/// when no account matches its host; the drift watch asks the admin before acting on it.
fn refusal(code: u16) -> Option<Refusal> {
    match code {
        code::ACCESS_DENIED => Some(Refusal::BadPassword),
        code::ACCOUNT_LOCKED_MYSQL
        | code::PASSWORD_LOCKED_MYSQL
        | code::USER_BLOCKED_MARIADB
        | code::ACCOUNT_LOCKED_MARIADB
        | code::MUST_CHANGE_PASSWORD
        | code::MUST_CHANGE_PASSWORD_LOGIN => Some(Refusal::NotPermitted),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{DbTimeouts, ProviderKind};

    fn target() -> Target {
        Target {
            kind: ProviderKind::Mysql,
            host: "db".into(),
            port: 3306,
            database: String::new(),
            admin_user: "root".into(),
            admin_pass: Secret::new("adminpw"),
            project_reference: String::new(),
            timeouts: DbTimeouts::default(),
            tls: Default::default(),
        }
    }

    fn server(code: u16, message: &str) -> ClientError {
        ClientError::Server {
            state: "28000".into(),
            message: message.into(),
            code,
        }
    }

    #[test]
    fn server_errors_map_to_what_the_engine_acts_on() {
        let t = target();
        let kind = |code| error(&t, "x", &server(code, "m"), &[]).kind;
        assert_eq!(kind(code::ACCESS_DENIED), FailureKind::AuthRejected);
        assert_eq!(
            kind(code::ACCOUNT_LOCKED_MARIADB),
            FailureKind::AuthRejected
        );
        assert_eq!(kind(code::TABLEACCESS_DENIED), FailureKind::Privilege);
        assert_eq!(kind(code::STATEMENT_TIMEOUT), FailureKind::Timeout);
        assert_eq!(kind(code::WRONG_STRING_LENGTH), FailureKind::InvalidInput);
        assert_eq!(kind(1396), FailureKind::Database);
        let io = ClientError::Io(std::io::Error::from(std::io::ErrorKind::WouldBlock));
        assert_eq!(error(&t, "x", &io, &[]).kind, FailureKind::Timeout);
        let refused =
            ClientError::Connect(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(error(&t, "x", &refused, &[]).kind, FailureKind::Unreachable);
        let unsafe_request = ClientError::Refused {
            request: auth::FULL_AUTHENTICATION,
            over_tls: false,
        };
        let e = error(&t, "x", &unsafe_request, &[]);
        assert_eq!(e.kind, FailureKind::Tls);
        assert!(
            e.detail.contains("verify-full") && e.detail.contains("plaintext"),
            "{}",
            e.detail
        );
    }

    #[test]
    fn error_text_never_carries_the_password() {
        let t = target();
        let pw = Secret::new("s3cr'et\\pw");
        let e = error(
            &t,
            "x",
            &server(code::PARSE_ERROR, "near 's3cr''et\\\\pw' at line 1"),
            &[&pw],
        );
        assert!(!e.detail.contains("s3cr"), "{}", e.detail);
        let e = error(
            &t,
            "x",
            &server(1819, "password s3cr'et\\pw is weak"),
            &[&pw],
        );
        assert!(!e.detail.contains("s3cr'et"), "{}", e.detail);
        assert_eq!(e.kind, FailureKind::InvalidInput);
    }
}
