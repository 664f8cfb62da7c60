//! The scram-sha-256 PostgreSQL cluster that `make test` starts (env SKA_PG_*), seen as
//! its admin. PostgreSQL is the reference database: lifecycle tests that need some
//! database use this one, and it can hold a role's row to stall a rotation mid-way.

use std::time::Duration;

use postgres::error::SqlState;
use postgres::{Client, NoTls};
use serde_json::{Value, json};

use crate::support::world::{Database, WeakAdmin};
use crate::support::{random_text, require_env, unique_name};

pub struct Pg {
    pub host: String,
    pub port: u16,
    pub admin_user: String,
    pub admin_pass: String,
}

impl Pg {
    /// The test cluster, or `None` (skip) outside CI when it is not running.
    pub fn open() -> Option<Pg> {
        Self::from_env("PG", "PostgreSQL")
    }

    /// The cluster tests/services/run.sh exported as `SKA_{prefix}_HOST`, `_PORT`,
    /// `_ADMIN_USER` and `_ADMIN_PASS` (the base one, or one of the matrix's versions).
    pub fn from_env(prefix: &str, service: &str) -> Option<Pg> {
        let var = |name: &str| require_env(&format!("SKA_{prefix}_{name}"), service);
        Some(Pg {
            host: var("HOST")?,
            port: var("PORT")?.parse().unwrap(),
            admin_user: var("ADMIN_USER")?,
            admin_pass: var("ADMIN_PASS")?,
        })
    }

    /// The server's `server_version_num` (e.g. 160014).
    pub fn version_num(&self) -> i32 {
        self.admin()
            .query_one("SELECT current_setting('server_version_num')::int", &[])
            .unwrap()
            .get(0)
    }

    pub fn connect_as(&self, user: &str, password: &str) -> Result<Client, postgres::Error> {
        postgres::Config::new()
            .host(&self.host)
            .port(self.port)
            .user(user)
            .password(password)
            .dbname("postgres")
            .connect_timeout(Duration::from_secs(10))
            .connect(NoTls)
    }

    pub fn admin(&self) -> Client {
        self.connect_as(&self.admin_user, &self.admin_pass)
            .expect("admin login to the test cluster")
    }

    pub fn exec(&self, sql: &str) {
        self.admin()
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Logins refused for `name`, as the server counts them: the FATAL lines of its log
    /// for a wrong password or a role not permitted to log in (PostgreSQL logs every
    /// refused login at FATAL, whatever log_connections says).
    pub fn failed_logins(&self, name: &str) -> usize {
        let dir = std::env::var("SKA_SERVICES_DIR")
            .expect("SKA_SERVICES_DIR: run the tests through tests/services/run.sh");
        let path = std::path::Path::new(&dir).join("postgres/server.log");
        let log = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read the server log {}: {e}", path.display()));
        let not_permitted = format!("role \"{name}\" is not permitted to log in");
        let wrong_password = format!("password authentication failed for user \"{name}\"");
        log.lines()
            .filter(|l| l.contains("FATAL:"))
            .filter(|l| l.contains(&not_permitted) || l.contains(&wrong_password))
            .count()
    }

    pub fn stored_verifier(&self, name: &str) -> Option<String> {
        self.admin()
            .query_opt(
                "SELECT rolpassword FROM pg_authid WHERE rolname = $1",
                &[&name],
            )
            .unwrap()
            .and_then(|r| r.get(0))
    }

    /// Whether a role of that name exists (with or without a password).
    pub fn role_exists(&self, name: &str) -> bool {
        self.admin()
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)",
                &[&name],
            )
            .unwrap()
            .get(0)
    }

    /// A new role with `extra` attributes (`CREATEROLE`, `SUPERUSER`) and a password.
    pub fn create_admin(&self, prefix: &str, extra: &str) -> (String, String) {
        let name = unique_name(prefix);
        let pw = format!("adm-{}", random_text(12));
        self.create_user(&name, &pw);
        self.exec(&format!("ALTER ROLE {} {extra}", ident(&name)));
        (name, pw)
    }

    /// An admin with CREATEROLE only, so it cannot read pg_authid, that may alter `user`.
    pub fn createrole_admin_for(&self, user: &str) -> (String, String) {
        let (name, pw) = self.create_admin("ska_cr_admin", "CREATEROLE");
        // PostgreSQL 16+ needs ADMIN OPTION on a role to alter it; grant it where supported.
        let _ = self.admin().batch_execute(&format!(
            "GRANT {} TO {} WITH ADMIN OPTION",
            ident(user),
            ident(&name)
        ));
        (name, pw)
    }

    /// Holds the role's catalog row in an open transaction so the agent's ALTER ROLE
    /// waits; `ROLLBACK` on the returned session lets it go on.
    pub fn hold_role_row(&self, user: &str) -> Client {
        let mut blocker = self.admin();
        blocker.batch_execute("BEGIN").unwrap();
        blocker
            .batch_execute(&format!("ALTER ROLE {} CONNECTION LIMIT 5", ident(user)))
            .unwrap();
        blocker
    }
}

pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl Database for Pg {
    fn provider_type(&self) -> &'static str {
        "postgresql"
    }
    fn endpoint(&self) -> (String, u16) {
        (self.host.clone(), self.port)
    }
    fn connection(&self, host: &str, port: u16) -> Value {
        json!({"host": host, "port": port, "database": "postgres", "adminUser": self.admin_user,
               "adminPass": self.admin_pass, "projectReference": ""})
    }
    fn admin_password(&self) -> String {
        self.admin_pass.clone()
    }
    fn create_user(&self, name: &str, password: &str) {
        let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
        self.exec(&format!(
            "CREATE ROLE {} LOGIN PASSWORD {}",
            ident(name),
            literal(&verifier)
        ));
    }
    fn drop_user(&self, name: &str) {
        self.exec(&format!("DROP ROLE IF EXISTS {}", ident(name)));
    }
    fn can_login(&self, name: &str, password: &str) -> bool {
        match self.connect_as(name, password) {
            Ok(_) => true,
            Err(e)
                if matches!(
                    e.code(),
                    Some(&SqlState::INVALID_PASSWORD)
                        | Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION)
                ) =>
            {
                false
            }
            Err(e) => panic!("cannot reach the test cluster: {e:?}"),
        }
    }
    fn block_login(&self, name: &str) {
        self.exec(&format!("ALTER ROLE {} NOLOGIN", ident(name)));
    }
    fn unblock_login(&self, name: &str) {
        self.exec(&format!("ALTER ROLE {} LOGIN", ident(name)));
    }
    fn hostile_name(&self) -> String {
        format!("app\"; DROP ROLE x; --'\\ø{}", unique_name("h"))
    }
    fn weak_admin(&self) -> WeakAdmin {
        let user = unique_name("ska_weak");
        let password = format!("weak-{}", random_text(12));
        self.create_user(&user, &password);
        WeakAdmin {
            user,
            password,
            output_names: "CREATEROLE",
            heartbeat_names: "CREATEROLE",
        }
    }
}
