//! MySQL and MariaDB: a managed user may have accounts on several hosts, so every
//! rotation changes all of them in one statement, and rollback puts each account's plugin
//! and stored hash back (never a plaintext). Statements are built in `sql.rs` for the
//! session's dialect and escaping mode, with every value as a literal quoted for it; every
//! call is bounded by socket timeouts.
//!
//! The connection is the agent's own client (`mysql/client/` over `mysql/wire.rs`, the
//! plugins in `mysql/auth.rs`), so that the TLS trust and what a login may reveal follow
//! `providers::tls`: see `client/mod.rs` for why not the `mysql` crate. Beside this file:
//! `accounts.rs` reads a user's accounts, `login.rs` logs in as the user (TCP, or the
//! server's socket for `localhost` accounts), `errors.rs` maps failures to
//! [`ProviderError`]s, `hash.rs` computes and recognises stored hashes.

mod accounts;
mod auth;
mod client;
mod errors;
mod hash;
mod login;
mod snapshot;
mod sql;
mod wire;

use std::cell::RefCell;

pub use client::{Conn, Error as ClientError};
use errors::{error, host_list, is_access_denied, server_message};
use login::{LOCALHOST, LocalSocket, new_conn};

use super::error::{FailureKind, ProviderError};
use super::provider::{PasswordMatch, Provider, RefusalFacts, StoredCredential};
use super::target::Target;
use super::tls::TlsStatus;
use crate::secret::Secret;

use snapshot::{AccountAuth, Snapshot};
use sql::SHA2_ROUNDS_QUERY;
pub use sql::{Dialect, Flavor};

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

    /// Every account of `username` with its authentication.
    fn accounts(&mut self, username: &str) -> Result<Vec<AccountAuth>, ClientError> {
        accounts::read(&mut self.conn.borrow_mut(), &self.dialect, username)
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

    /// Refuses, before anything changes, a rotation whose verification would have to send
    /// the new password to a server the connection did not verify: MySQL 8+ answers the
    /// first login after a password change to a caching_sha2_password account with a
    /// request for the password itself. (Applying it anyway would end in a rollback, after
    /// a moment in which the application's logins fail.) Where the admin cannot read the
    /// accounts' plugins, the verification decides.
    fn check_can_manage(&mut self, username: &str) -> Result<(), ProviderError> {
        if self.target.tls.authenticates_server() {
            return Ok(());
        }
        let Ok(accounts) = self.accounts(username) else {
            return Ok(());
        };
        let accounts: Vec<(String, Vec<String>)> = accounts
            .into_iter()
            .map(|a| (a.host, a.methods.into_iter().map(|m| m.plugin).collect()))
            .collect();
        let named = login::needing_a_verified_server(
            username,
            &accounts,
            self.socket.is_some(),
            self.dialect.new_user_plugin(),
        );
        if named.is_empty() {
            return Ok(());
        }
        Err(ProviderError::new(
            &self.target,
            FailureKind::Tls,
            format!("checking that the new password of \"{username}\" can be verified"),
            format!(
                "verifying it means logging in as {}, and right after a password change the server asks for the password itself ({}); mode {} does not verify the server, and the agent gives a password only to a verified one, so nothing was changed; to allow it, verify the server: {}; or give the account mysql_native_password or ed25519, whose logins reveal nothing",
                named.join(", "),
                auth::FULL_AUTHENTICATION,
                self.target.tls.mode,
                self.target.tls.how_to_verify()
            ),
        ))
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
            Ok(snapshot) => accounts::matching(&snapshot, password),
            Err(_) => PasswordMatch::Unknown,
        };
        Ok(RefusalFacts {
            password,
            obstacle: accounts::obstacle(&mut self.conn.borrow_mut(), &self.dialect, username),
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
            login::tcp(
                &self.target,
                username,
                password,
                &hosts,
                &self.anonymous_hosts,
            )?;
        }
        if !local {
            return Ok(());
        }
        match &self.socket {
            Some(socket) => login::socket(&self.target, socket, username, password),
            // The 'localhost' account was changed in the same statement as a verified one.
            None if remote => Ok(()),
            None => login::tcp(&self.target, username, password, &hosts, &self.anonymous_hosts).map_err(|mut e| {
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
