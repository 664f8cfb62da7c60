//! MySQL/MariaDB accounts that TCP logins from the agent do not reach:
//! `'app'@'localhost'` alone, the common case for applications on the database host, is
//! verified over the server's own Unix socket; an account no path reaches makes the
//! rotation rejected with the accounts named, and the database keeps the old password.
//!
//! The test server skips name resolution, so a TCP login from 127.0.0.1 never matches a
//! `localhost` account: exactly the situation the agent must handle.

use std::time::Duration;

use ::mysql::prelude::Queryable;
use ::mysql::{Conn, OptsBuilder};
use serde_json::Value;

use crate::support::assertions::Exit;
use crate::support::cli::run;
use crate::support::db::mysql::My;
use crate::support::world::{Database, WeakAdmin, World, assert_password, secret_value};
use crate::support::{random_text, unique_name};

const ACCESS_DENIED: u16 = 1045;
/// MariaDB's refusal when no account matches the client's host at all.
const ACCESS_DENIED_NO_ACCOUNT: u16 = 1698;

/// The test MariaDB, with managed users that exist only on one host.
struct HostBound<'a> {
    my: &'a My,
    host: &'static str,
}

fn lit(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl HostBound<'_> {
    fn admin_credentials(&self) -> (String, String) {
        let c = self.my.connection("", 0);
        (
            c["adminUser"].as_str().unwrap().to_owned(),
            c["adminPass"].as_str().unwrap().to_owned(),
        )
    }

    fn tcp_opts(&self, user: &str, password: &str) -> OptsBuilder {
        let (host, port) = self.my.endpoint();
        OptsBuilder::new()
            .ip_or_hostname(Some(host))
            .tcp_port(port)
            .user(Some(user))
            .pass(Some(password))
            .prefer_socket(false)
            .tcp_connect_timeout(Some(Duration::from_secs(10)))
            .read_timeout(Some(Duration::from_secs(30)))
    }

    fn admin(&self) -> Conn {
        let (user, pass) = self.admin_credentials();
        let mut c = Conn::new(self.tcp_opts(&user, &pass)).expect("admin login");
        c.query_drop("SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'")
            .unwrap();
        c
    }

    fn exec(&self, sql: &str) {
        self.admin()
            .query_drop(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    fn account(&self, name: &str) -> String {
        format!("{}@{}", lit(name), lit(self.host))
    }

    /// The server's Unix socket, as the server reports it.
    fn socket(&self) -> String {
        self.admin()
            .query_first::<String, _>("SELECT @@socket")
            .unwrap()
            .expect("the test server has a socket")
    }

    fn login(&self, opts: OptsBuilder) -> bool {
        match Conn::new(opts) {
            Ok(_) => true,
            Err(::mysql::Error::MySqlError(e))
                if e.code == ACCESS_DENIED || e.code == ACCESS_DENIED_NO_ACCOUNT =>
            {
                false
            }
            Err(e) => panic!("cannot reach the test server: {e}"),
        }
    }

    fn tcp_login(&self, name: &str, password: &str) -> bool {
        self.login(self.tcp_opts(name, password))
    }

    /// Plugin and stored hash, to show a rollback put them back byte for byte.
    fn stored(&self, name: &str) -> (Value, Value) {
        let text = self
            .admin()
            .exec_first::<String, _, _>(
                "SELECT Priv FROM mysql.global_priv WHERE User = ? AND Host = ?",
                (name, self.host),
            )
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        (v["plugin"].clone(), v["authentication_string"].clone())
    }
}

impl Database for HostBound<'_> {
    fn provider_type(&self) -> &'static str {
        "mysql"
    }
    fn endpoint(&self) -> (String, u16) {
        self.my.endpoint()
    }
    fn connection(&self, host: &str, port: u16) -> Value {
        self.my.connection(host, port)
    }
    fn admin_password(&self) -> String {
        self.my.admin_password()
    }
    fn create_user(&self, name: &str, password: &str) {
        self.exec(&format!(
            "CREATE USER {} IDENTIFIED BY {}",
            self.account(name),
            lit(password)
        ));
    }
    fn drop_user(&self, name: &str) {
        self.exec(&format!("DROP USER IF EXISTS {}", self.account(name)));
    }
    /// Over the socket: the path that reaches a `localhost` account.
    fn can_login(&self, name: &str, password: &str) -> bool {
        let socket = self.socket();
        self.login(self.tcp_opts(name, password).socket(Some(socket)))
    }
    fn block_login(&self, name: &str) {
        self.exec(&format!("ALTER USER {} ACCOUNT LOCK", self.account(name)));
    }
    fn unblock_login(&self, name: &str) {
        self.exec(&format!("ALTER USER {} ACCOUNT UNLOCK", self.account(name)));
    }
    fn hostile_name(&self) -> String {
        unique_name("ska_hb")
    }
    /// The admin is the server's, not host-bound: the same weak admin as for `My`.
    fn weak_admin(&self) -> WeakAdmin {
        self.my.weak_admin()
    }
    fn drop_admin(&self, name: &str) {
        self.my.drop_admin(name);
    }
}

#[test]
fn a_localhost_only_account_is_verified_over_the_servers_socket() {
    let Some(my) = My::open() else { return };
    let db = HostBound {
        my: &my,
        host: "localhost",
    };
    let w = World::plain(&db);
    // The premise: this account cannot be reached over TCP at all.
    assert!(db.can_login(&w.user, &w.old_pw));
    assert!(!db.tcp_login(&w.user, &w.old_pw));
    let agent = w.start();
    let new_pw = format!("new-{}", random_text(16));
    w.cp.set_pending(&w.secret, "rot_sock", &secret_value(&w.user, &new_pw));
    w.wait_confirmed("rot_sock", &agent);
    assert_password(&db, &w.user, &new_pw, &w.old_pw);
    w.wait_journal_cleared(&agent);
    // And a rotation whose verification fails over the socket is still rolled back.
    db.block_login(&w.user);
    let newer_pw = format!("newer-{}", random_text(16));
    w.cp.set_pending(&w.secret, "rot_sock2", &secret_value(&w.user, &newer_pw));
    let error = w.wait_rejected("rot_sock2", &agent);
    assert!(error.contains("socket"), "{error}");
    db.unblock_login(&w.user);
    w.wait_journal_cleared(&agent);
    assert_password(&db, &w.user, &new_pw, &newer_pw);
    w.finish(agent, &[&w.old_pw, &new_pw, &newer_pw]);
}

#[test]
fn an_account_no_login_path_reaches_is_rejected_naming_the_accounts() {
    let Some(my) = My::open() else { return };
    // A host the agent's TCP logins (from 127.0.0.1) never match, and not 'localhost'.
    let db = HostBound {
        my: &my,
        host: "192.0.2.7",
    };
    let w = World::plain(&db);
    let before = db.stored(&w.user);
    let agent = w.start();
    let new_pw = format!("new-{}", random_text(16));
    w.cp.set_pending(&w.secret, "rot_nopath", &secret_value(&w.user, &new_pw));
    let error = w.wait_rejected("rot_nopath", &agent);
    assert!(
        error.contains("verification failed") && error.contains("\"192.0.2.7\""),
        "{error}"
    );
    w.wait_journal_cleared(&agent);
    assert_eq!(db.stored(&w.user), before, "the old hash is back");
    w.finish(agent, &[&w.old_pw, &new_pw]);
}

/// `test` logs in with the live value the way a rotation verifies: it passes for a
/// `localhost` account over the socket, and names the accounts no path reaches.
#[test]
fn the_test_command_verifies_over_the_same_paths() {
    let Some(my) = My::open() else { return };
    for (host, code, expect) in [
        ("localhost", Exit::Ok, "logs in with the live value"),
        ("192.0.2.7", Exit::CheckFailed, "\"192.0.2.7\""),
    ] {
        let db = HostBound { my: &my, host };
        let w = World::plain(&db);
        // No local config: the user and connection come from the server's sync config.
        let stdout =
            run(w
                .machine
                .command(&["test", "--secret", &w.secret, "--use-server-config"]))
            .expect(code)
            .stdout;
        let user_line = stdout
            .lines()
            .find(|l| l.contains(" user "))
            .unwrap_or_default();
        assert!(user_line.contains(expect), "{host}: {stdout}");
        assert!(!stdout.contains(&w.old_pw));
    }
}
