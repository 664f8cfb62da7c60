//! MySQL and MariaDB: a managed user may have accounts on several hosts, so every
//! rotation changes all of them in one statement, and rollback puts each account's plugin
//! and stored hash back (never a plaintext). Statements are built in [`sql`] for the
//! session's dialect and escaping mode; every call is bounded by socket timeouts.

mod hash;
mod sql;

use std::cell::RefCell;
use std::time::Duration;

use ::mysql::prelude::Queryable;
use ::mysql::{ClientIdentity, Conn, OptsBuilder, SslOpts};

use super::{
    FailureKind, Provider, ProviderError, StoredCredential, Target, TlsMode, TlsStatus, tls,
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
        let setup = |conn: &mut Conn| -> Result<Dialect, ::mysql::Error> {
            conn.query_drop("SET NAMES utf8mb4")?;
            let (version, sql_mode): (String, String) = conn
                .query_first("SELECT VERSION(), @@SESSION.sql_mode")?
                .unwrap_or_default();
            let dialect = Dialect::from_server(&version, &sql_mode);
            // New caching_sha2_password hashes get the server's configured round count.
            let rounds = match dialect.reads_sha2_rounds() {
                true => conn.query_first(SHA2_ROUNDS_QUERY).ok().flatten(),
                false => None,
            };
            let dialect = dialect.with_sha2_rounds(rounds);
            let seconds = target.timeouts.statement.as_secs().max(1);
            conn.query_drop(format!("SET SESSION lock_wait_timeout = {seconds}"))?;
            if dialect.flavor == Flavor::Mariadb {
                conn.query_drop(format!("SET SESSION max_statement_time = {seconds}"))?;
            }
            Ok(dialect)
        };
        let dialect =
            setup(&mut conn).map_err(|e| error(target, "setting up the admin session", &e, &[]))?;
        // Only a hint for error messages, so an admin without read access to mysql.user
        // (which check_admin reports) does not fail here.
        let anonymous_hosts = conn
            .exec("SELECT Host FROM mysql.user WHERE User = ''", ())
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
        let mut hosts: Vec<String> = self
            .conn
            .borrow_mut()
            .exec("SELECT Host FROM mysql.user WHERE User = ?", (username,))
            .map_err(|e| {
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
    fn accounts(&mut self, username: &str) -> Result<Vec<AccountAuth>, ::mysql::Error> {
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

    fn mariadb_accounts(&mut self, username: &str) -> Result<Vec<AccountAuth>, ::mysql::Error> {
        let rows: Vec<(String, String)> = self.conn.borrow_mut().exec(
            "SELECT Host, Priv FROM mysql.global_priv WHERE User = ?",
            (username,),
        )?;
        let mut accounts = Vec::with_capacity(rows.len());
        for (host, priv_json) in rows {
            let methods = sql::methods_from_mariadb_priv(&priv_json).map_err(malformed)?;
            accounts.push(AccountAuth { host, methods });
        }
        Ok(accounts)
    }

    /// MariaDB before 10.4: mysql.user is a table; an empty plugin means the `Password` column.
    fn legacy_mariadb_accounts(
        &mut self,
        username: &str,
    ) -> Result<Vec<AccountAuth>, ::mysql::Error> {
        let rows: Vec<(String, String, Vec<u8>, Vec<u8>)> = self.conn.borrow_mut().exec(
            "SELECT Host, plugin, authentication_string, Password FROM mysql.user WHERE User = ?",
            (username,),
        )?;
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

    fn mysql_accounts(&mut self, username: &str) -> Result<Vec<AccountAuth>, ::mysql::Error> {
        let rows: Vec<(String, String, Option<Vec<u8>>)> = self.conn.borrow_mut().exec(
            "SELECT Host, plugin, authentication_string FROM mysql.user WHERE User = ?",
            (username,),
        )?;
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

    fn tls_status(&mut self) -> TlsStatus {
        let rows: Result<Vec<(String, String)>, _> = self
            .conn
            .borrow_mut()
            .query("SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_version', 'Ssl_cipher')");
        let Ok(rows) = rows else {
            return TlsStatus::Unknown;
        };
        let get = |name: &str| {
            rows.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        match get("Ssl_version") {
            Some(protocol) => TlsStatus::Encrypted {
                protocol,
                cipher: get("Ssl_cipher"),
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
        match new_conn(&self.target, username, password, true) {
            Ok(conn) => {
                drop(conn);
                Ok(())
            }
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
        // a secure transport).
        let opts = opts_for(&self.target, username, password, true)
            .socket(Some(&socket.path))
            .ssl_opts(None::<SslOpts>);
        let conn = match Conn::new(opts) {
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

/// A session as `user`. With `prefer`, a server that does not offer TLS gets a second,
/// plaintext attempt; a failed handshake never does.
fn new_conn(
    target: &Target,
    user: &str,
    password: &Secret,
    with_database: bool,
) -> Result<Conn, ::mysql::Error> {
    use ::mysql::{DriverError, Error};
    let opts = opts_for(target, user, password, with_database);
    match Conn::new(opts.clone()) {
        Err(Error::DriverError(DriverError::TlsNotSupported))
            if target.tls.mode == TlsMode::Prefer =>
        {
            Conn::new(opts.ssl_opts(None::<SslOpts>))
        }
        other => other,
    }
}

/// The driver's TLS options for the target's mode. With no CA file the driver trusts
/// Mozilla's bundled roots.
fn ssl_opts(target: &Target) -> Option<SslOpts> {
    let s = &target.tls;
    let opts = match s.mode {
        TlsMode::Disable => return None,
        TlsMode::Prefer | TlsMode::Require => {
            SslOpts::default().with_danger_accept_invalid_certs(true)
        }
        TlsMode::VerifyCa => SslOpts::default().with_danger_skip_domain_validation(true),
        TlsMode::VerifyFull => SslOpts::default(),
    };
    let opts = match &s.ca_file {
        Some(ca) if s.mode.verifies() => opts.with_root_cert_path(Some(ca.clone())),
        _ => opts,
    };
    Some(match (&s.cert_file, &s.key_file) {
        (Some(cert), Some(key)) => {
            opts.with_client_identity(Some(ClientIdentity::new(cert.clone(), key.clone())))
        }
        _ => opts,
    })
}

/// Connection options with every wait bounded. `prefer_socket` is off so a login goes
/// exactly where it is configured (a socket login would match different accounts).
fn opts_for(target: &Target, user: &str, password: &Secret, with_database: bool) -> OptsBuilder {
    let database = Some(target.database.clone()).filter(|d| with_database && !d.is_empty());
    OptsBuilder::new()
        .ip_or_hostname(Some(target.host.clone()))
        .tcp_port(target.port)
        .user(Some(user))
        .pass(Some(password.expose()))
        .db_name(database)
        .prefer_socket(false)
        .tcp_connect_timeout(Some(target.timeouts.connect))
        .read_timeout(Some(target.timeouts.statement))
        .write_timeout(Some(target.timeouts.statement))
        .tcp_keepalive_time_ms(Some(10_000))
        .tcp_user_timeout_ms(Some(millis(target.timeouts.statement)))
        .stmt_cache_size(0)
        .ssl_opts(ssl_opts(target))
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

fn host_list(hosts: &[String]) -> String {
    hosts
        .iter()
        .map(|h| format!("\"{h}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn malformed(detail: String) -> ::mysql::Error {
    ::mysql::Error::MySqlError(::mysql::MySqlError {
        state: "HY000".into(),
        message: detail,
        code: 0,
    })
}

fn server_code(e: &::mysql::Error) -> Option<u16> {
    match e {
        ::mysql::Error::MySqlError(m) => Some(m.code),
        _ => None,
    }
}

fn server_message(e: &::mysql::Error) -> String {
    match e {
        ::mysql::Error::MySqlError(m) => m.message.clone(),
        other => other.to_string(),
    }
}

fn is_access_denied(e: &::mysql::Error) -> bool {
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

/// Whether a socket read or write timeout ended the call (an I/O error, directly or
/// inside the packet codec). The socket timeouts surface as `WouldBlock` on Linux.
fn timed_out(e: &::mysql::Error) -> bool {
    let io = match e {
        ::mysql::Error::IoError(io) => Some(io),
        ::mysql::Error::CodecError(c) => {
            std::error::Error::source(c).and_then(|s| s.downcast_ref::<std::io::Error>())
        }
        _ => None,
    };
    io.is_some_and(|io| {
        matches!(
            io.kind(),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
        )
    })
}

/// Maps a driver error to the provider error, keeping the server's message but never a
/// password: parse errors quote the statement, so their text is dropped.
fn error(target: &Target, action: &str, e: &::mysql::Error, secrets: &[&Secret]) -> ProviderError {
    use ::mysql::{DriverError, Error};
    // A failed handshake, or no TLS where it was demanded: the server never saw a login.
    if target.tls.mode != TlsMode::Disable
        && !matches!(e, Error::MySqlError(_))
        && let Some(explained) = tls::explain_failure(e, &target.host, target.tls.mode)
    {
        return ProviderError::new(target, FailureKind::Tls, action, explained);
    }
    let (kind, detail) = match e {
        Error::MySqlError(m) => {
            let kind = match m.code {
                code::ACCESS_DENIED
                | code::ACCESS_DENIED_NO_PASSWORD
                | code::ACCOUNT_LOCKED_MYSQL
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
            let message = if m.code == code::PARSE_ERROR {
                "the server could not parse the statement (its text is withheld because it may hold a password)".to_owned()
            } else {
                scrub(&m.message, secrets)
            };
            (
                kind,
                format!("{message} (error {}, SQLSTATE {})", m.code, m.state),
            )
        }
        _ if timed_out(e) => (
            FailureKind::Timeout,
            format!(
                "no answer within {} s ({})",
                target.timeouts.statement.as_secs_f32(),
                scrub(&e.to_string(), secrets)
            ),
        ),
        Error::DriverError(DriverError::ConnectTimeout) => (
            FailureKind::Unreachable,
            format!(
                "no connection within {} s",
                target.timeouts.connect.as_secs_f32()
            ),
        ),
        Error::IoError(_)
        | Error::DriverError(DriverError::CouldNotConnect(_))
        | Error::CodecError(_) => (FailureKind::Unreachable, scrub(&e.to_string(), secrets)),
        other => (FailureKind::Database, scrub(&other.to_string(), secrets)),
    };
    ProviderError::new(target, kind, action, detail)
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

    fn server(code: u16, message: &str) -> ::mysql::Error {
        ::mysql::Error::MySqlError(::mysql::MySqlError {
            state: "28000".into(),
            message: message.into(),
            code,
        })
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
        let io = ::mysql::Error::IoError(std::io::Error::from(std::io::ErrorKind::WouldBlock));
        assert_eq!(error(&t, "x", &io, &[]).kind, FailureKind::Timeout);
        let codec =
            ::mysql::Error::CodecError(std::io::Error::from(std::io::ErrorKind::WouldBlock).into());
        assert_eq!(error(&t, "x", &codec, &[]).kind, FailureKind::Timeout);
        let refused =
            ::mysql::Error::IoError(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(error(&t, "x", &refused, &[]).kind, FailureKind::Unreachable);
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
