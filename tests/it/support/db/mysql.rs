//! The throwaway MariaDB that `make test` starts (env SKA_MYSQL_*), seen as its admin.
//!
//! The test's own admin sessions run under NO_BACKSLASH_ESCAPES and quote by doubling
//! quotes only, so the checks do not reuse the provider's quoting.

use std::time::Duration;

use ::mysql::prelude::Queryable;
use ::mysql::{Conn, OptsBuilder};
use serde_json::{Value, json};

use sikkerkey_agent::providers::Target;
use sikkerkey_agent::providers::mysql::Mysql;
use sikkerkey_agent::secret::Secret;

use crate::support::world::{Database, WeakAdmin, provider_target};
use crate::support::{random_text, require_env, unique_name};

const ACCESS_DENIED: u16 = 1045;
/// MariaDB's refusal when no account matches at all (e.g. the user was dropped).
const ACCESS_DENIED_NO_ACCOUNT: u16 = 1698;
/// MariaDB's and MySQL's refusals of a locked account.
const ACCOUNT_LOCKED: u16 = 4151;
const ACCOUNT_LOCKED_MYSQL: u16 = 3118;

pub struct My {
    pub host: String,
    pub port: u16,
    pub admin_user: String,
    pub admin_pass: String,
    /// The CA the agent verifies the server with (`verify-full`), for servers whose
    /// caching_sha2_password logins need it; `None`: the provider's default, `prefer`.
    pub agent_ca: Option<String>,
}

/// `'text'` for the test's NO_BACKSLASH_ESCAPES sessions.
pub fn lit(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl My {
    /// The test server, or `None` (skip) outside CI when it is not running.
    pub fn open() -> Option<My> {
        Self::from_env("MYSQL", "MariaDB")
    }

    /// The server tests/services/run.sh exported as `SKA_{prefix}_HOST`, `_PORT`,
    /// `_ADMIN_USER` and `_ADMIN_PASS` (the base MariaDB, or one of the matrix's servers).
    pub fn from_env(prefix: &str, service: &str) -> Option<My> {
        let var = |name: &str| require_env(&format!("SKA_{prefix}_{name}"), service);
        Some(My {
            host: var("HOST")?,
            port: var("PORT")?.parse().unwrap(),
            admin_user: var("ADMIN_USER")?,
            admin_pass: var("ADMIN_PASS")?,
            agent_ca: None,
        })
    }

    /// [`My::from_env`] for a server with TLS from the run's CA, which agents reach with
    /// `verify-full`: MySQL 8+'s caching_sha2_password logins send the password itself
    /// when the server's cache lacks it (always, right after a password change), and the
    /// agent gives it only to a server it verified.
    pub fn from_env_verified(prefix: &str, service: &str) -> Option<My> {
        let mut my = Self::from_env(prefix, service)?;
        my.agent_ca = Some(require_env("SKA_TLS_CA", service)?);
        Some(my)
    }

    /// Whether the server is Oracle MySQL (not MariaDB).
    pub fn is_oracle_mysql(&self) -> bool {
        let version: String = self
            .admin()
            .query_first("SELECT VERSION()")
            .unwrap()
            .unwrap();
        !version.contains("MariaDB")
    }

    pub fn connect_as(&self, user: &str, password: &str) -> Result<Conn, ::mysql::Error> {
        Conn::new(
            OptsBuilder::new()
                .ip_or_hostname(Some(self.host.clone()))
                .tcp_port(self.port)
                .user(Some(user))
                .pass(Some(password))
                .prefer_socket(false)
                .tcp_connect_timeout(Some(Duration::from_secs(10)))
                .read_timeout(Some(Duration::from_secs(30))),
        )
    }

    pub fn admin(&self) -> Conn {
        let mut c = self
            .connect_as(&self.admin_user, &self.admin_pass)
            .expect("admin login to the test server");
        c.query_drop("SET NAMES utf8mb4").unwrap();
        c.query_drop("SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'")
            .unwrap();
        c
    }

    pub fn exec(&self, sql: &str) {
        self.admin()
            .query_drop(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    pub fn account(user: &str, host: &str) -> String {
        format!("{}@{}", lit(user), lit(host))
    }

    pub fn hosts(&self, user: &str) -> Vec<String> {
        let mut hosts: Vec<String> = self
            .admin()
            .exec("SELECT Host FROM mysql.user WHERE User = ?", (user,))
            .unwrap();
        hosts.sort();
        hosts
    }

    /// Each account's raw `Priv` JSON without the fields a password change rewrites.
    pub fn auth_state(&self, user: &str) -> Vec<(String, Value)> {
        let rows: Vec<(String, String)> = self
            .admin()
            .exec(
                "SELECT Host, Priv FROM mysql.global_priv WHERE User = ? ORDER BY Host",
                (user,),
            )
            .unwrap();
        rows.into_iter()
            .map(|(host, p)| {
                let v: Value = serde_json::from_str(&p).unwrap();
                let keep = |k: &str| v.get(k).cloned().unwrap_or(Value::Null);
                (host, json!({"plugin": keep("plugin"), "authentication_string": keep("authentication_string"), "auth_or": keep("auth_or")}))
            })
            .collect()
    }

    pub fn target(&self) -> Target {
        self.target_as(&self.admin_user, &self.admin_pass, self.port)
    }

    pub fn target_as(&self, admin_user: &str, admin_pass: &str, port: u16) -> Target {
        let mut target = provider_target(self, &self.host, port, Duration::from_secs(5));
        target.admin_user = admin_user.to_owned();
        target.admin_pass = Secret::new(admin_pass);
        target
    }

    pub fn provider(&self) -> Mysql {
        Mysql::connect(&self.target()).expect("provider connects as the test admin")
    }

    /// A login as `user` from this host: `Ok(false)` when refused.
    pub fn try_login(&self, user: &str, password: &str) -> Result<bool, ::mysql::Error> {
        match self.connect_as(user, password) {
            Ok(_) => Ok(true),
            Err(::mysql::Error::MySqlError(e))
                if e.code == ACCESS_DENIED
                    || e.code == ACCESS_DENIED_NO_ACCOUNT
                    || e.code == ACCOUNT_LOCKED
                    || e.code == ACCOUNT_LOCKED_MYSQL =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// An admin with exactly the given grants (statements with `{a}` for the account).
    pub fn limited_admin(&self, grants: &[&str]) -> (String, String) {
        let name = unique_name("ska_adm");
        let pw = format!("adm-{}", random_text(12));
        self.create_user(&name, &pw);
        for g in grants {
            self.exec(&g.replace("{a}", &My::account(&name, "%")));
        }
        (name, pw)
    }
}

impl Database for My {
    fn provider_type(&self) -> &'static str {
        "mysql"
    }
    fn endpoint(&self) -> (String, u16) {
        (self.host.clone(), self.port)
    }
    fn connection(&self, host: &str, port: u16) -> Value {
        json!({"host": host, "port": port, "database": "", "adminUser": self.admin_user,
               "adminPass": self.admin_pass, "projectReference": ""})
    }
    fn admin_password(&self) -> String {
        self.admin_pass.clone()
    }
    fn agent_tls(&self) -> Option<Value> {
        let ca = self.agent_ca.as_ref()?;
        Some(json!({"mode": "verify-full", "caFile": ca}))
    }
    fn create_user(&self, name: &str, password: &str) {
        self.exec(&format!(
            "CREATE USER {} IDENTIFIED BY {}",
            My::account(name, "%"),
            lit(password)
        ));
    }
    fn drop_user(&self, name: &str) {
        for host in self.hosts(name) {
            self.exec(&format!("DROP USER {}", My::account(name, &host)));
        }
    }
    fn can_login(&self, name: &str, password: &str) -> bool {
        // MySQL 9 answers a login to an account that does not exist with a plugin the
        // client does not speak (sha256_password); no account, no login. The accounts are
        // looked up before and after: an agent may create the user meanwhile.
        let existed = !self.hosts(name).is_empty();
        match self.try_login(name, password) {
            Ok(ok) => ok,
            Err(::mysql::Error::DriverError(::mysql::DriverError::UnknownAuthPlugin(_)))
                if !existed || self.hosts(name).is_empty() =>
            {
                false
            }
            Err(e) => panic!("cannot reach the test server: {e}"),
        }
    }
    fn block_login(&self, name: &str) {
        for host in self.hosts(name) {
            self.exec(&format!(
                "ALTER USER {} ACCOUNT LOCK",
                My::account(name, &host)
            ));
        }
    }
    fn unblock_login(&self, name: &str) {
        for host in self.hosts(name) {
            self.exec(&format!(
                "ALTER USER {} ACCOUNT UNLOCK",
                My::account(name, &host)
            ));
        }
    }
    /// Within Oracle MySQL's 32 characters (MariaDB allows 80).
    fn hostile_name(&self) -> String {
        format!("'\";DROP x;--\\ø{}", unique_name("h"))
    }
    fn weak_admin(&self) -> WeakAdmin {
        let (user, password) = self.limited_admin(&[]);
        WeakAdmin {
            user,
            password,
            output_names: "CREATE USER",
            heartbeat_names: "CREATE USER",
        }
    }
}

/// Removes a user (every host) when the test ends, even when it fails.
pub struct Cleanup<'a>(pub &'a My, pub Vec<String>);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for name in &self.1 {
            for host in self.0.hosts(name) {
                let _ = self
                    .0
                    .admin()
                    .query_drop(format!("DROP USER {}", My::account(name, &host)));
            }
        }
    }
}

/// Sets the server's global sql_mode for new sessions and puts it back on drop.
pub struct GlobalSqlMode<'a>(&'a My, String);

impl<'a> GlobalSqlMode<'a> {
    pub fn add(my: &'a My, mode: &str) -> Self {
        let before: String = my
            .admin()
            .query_first("SELECT @@GLOBAL.sql_mode")
            .unwrap()
            .unwrap();
        my.exec(&format!(
            "SET GLOBAL sql_mode = CONCAT_WS(',', NULLIF(@@GLOBAL.sql_mode, ''), {})",
            lit(mode)
        ));
        GlobalSqlMode(my, before)
    }
}

impl Drop for GlobalSqlMode<'_> {
    fn drop(&mut self) {
        self.0
            .exec(&format!("SET GLOBAL sql_mode = {}", lit(&self.1)));
    }
}

/// Makes every login of one user fail right after authentication (MariaDB runs
/// `init_connect` for logins without SUPER, and this one errors only for that user),
/// without touching any other user. Put back on drop.
pub struct BrokenLogin<'a>(&'a My);

impl<'a> BrokenLogin<'a> {
    pub fn for_user(my: &'a My, user: &str) -> Self {
        let statement = format!(
            "SET SESSION sql_mode = IF(SUBSTRING_INDEX(USER(), '@', 1) = {}, 'NOT_A_MODE', @@SESSION.sql_mode)",
            lit(user)
        );
        my.exec(&format!("SET GLOBAL init_connect = {}", lit(&statement)));
        BrokenLogin(my)
    }
}

impl Drop for BrokenLogin<'_> {
    fn drop(&mut self) {
        self.0.exec("SET GLOBAL init_connect = ''");
    }
}
