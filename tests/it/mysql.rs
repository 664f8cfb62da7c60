//! MySQL/MariaDB against the throwaway MariaDB that `make test` starts: the provider
//! driven directly (round trips, hostile names, several hosts, escaping modes, privilege
//! checks, hung servers), then the shared failure scenarios through the agent binary.
//!
//! The test's own admin sessions run under NO_BACKSLASH_ESCAPES and quote by doubling
//! quotes only, so the checks do not reuse the provider's quoting.

use std::time::{Duration, Instant};

use ::mysql::prelude::Queryable;
use ::mysql::{Conn, OptsBuilder};
use serde_json::{Value, json};

use sikkerkey_agent::providers::mysql::Mysql;
use sikkerkey_agent::providers::{
    DbTimeouts, FailureKind, Provider, ProviderKind, StoredCredential, Target,
};
use sikkerkey_agent::secret::Secret;

use crate::scenarios::{self, Database, World, assert_password, secret_value};
use crate::support::proxy::{BlackHole, TcpProxy};
use crate::support::{random_text, require_env, unique_name};

const ACCESS_DENIED: u16 = 1045;
/// MariaDB's refusal when no account matches at all (e.g. the user was dropped).
const ACCESS_DENIED_NO_ACCOUNT: u16 = 1698;
const ACCOUNT_LOCKED: u16 = 4151;

pub struct My {
    host: String,
    port: u16,
    admin_user: String,
    admin_pass: String,
}

/// `'text'` for the test's NO_BACKSLASH_ESCAPES sessions.
fn lit(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl My {
    /// The test server, or `None` (skip) outside CI when it is not running.
    pub fn from_env() -> Option<My> {
        Some(My {
            host: require_env("SKA_MYSQL_HOST", "MariaDB")?,
            port: require_env("SKA_MYSQL_PORT", "MariaDB")?.parse().unwrap(),
            admin_user: require_env("SKA_MYSQL_ADMIN_USER", "MariaDB")?,
            admin_pass: require_env("SKA_MYSQL_ADMIN_PASS", "MariaDB")?,
        })
    }

    fn connect_as(&self, user: &str, password: &str) -> Result<Conn, ::mysql::Error> {
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

    fn admin(&self) -> Conn {
        let mut c = self
            .connect_as(&self.admin_user, &self.admin_pass)
            .expect("admin login to the test server");
        c.query_drop("SET NAMES utf8mb4").unwrap();
        c.query_drop("SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'")
            .unwrap();
        c
    }

    fn exec(&self, sql: &str) {
        self.admin()
            .query_drop(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    fn account(user: &str, host: &str) -> String {
        format!("{}@{}", lit(user), lit(host))
    }

    fn hosts(&self, user: &str) -> Vec<String> {
        let mut hosts: Vec<String> = self
            .admin()
            .exec("SELECT Host FROM mysql.user WHERE User = ?", (user,))
            .unwrap();
        hosts.sort();
        hosts
    }

    /// Each account's raw `Priv` JSON without the fields a password change rewrites.
    fn auth_state(&self, user: &str) -> Vec<(String, Value)> {
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

    fn target(&self) -> Target {
        self.target_as(&self.admin_user, &self.admin_pass, self.port)
    }

    fn target_as(&self, admin_user: &str, admin_pass: &str, port: u16) -> Target {
        Target {
            kind: ProviderKind::Mysql,
            host: self.host.clone(),
            port,
            database: String::new(),
            admin_user: admin_user.to_owned(),
            admin_pass: Secret::new(admin_pass),
            project_reference: String::new(),
            timeouts: DbTimeouts {
                connect: Duration::from_secs(5),
                statement: Duration::from_secs(5),
            },
        }
    }

    fn provider(&self) -> Mysql {
        Mysql::connect(&self.target()).expect("provider connects as the test admin")
    }

    /// A login as `user` from this host: `Ok(false)` when refused.
    fn try_login(&self, user: &str, password: &str) -> Result<bool, ::mysql::Error> {
        match self.connect_as(user, password) {
            Ok(_) => Ok(true),
            Err(::mysql::Error::MySqlError(e))
                if e.code == ACCESS_DENIED
                    || e.code == ACCESS_DENIED_NO_ACCOUNT
                    || e.code == ACCOUNT_LOCKED =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// An admin with exactly the given grants (statements with `{a}` for the account).
    fn limited_admin(&self, grants: &[&str]) -> (String, String) {
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
        self.try_login(name, password)
            .unwrap_or_else(|e| panic!("cannot reach the test server: {e}"))
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
    fn hostile_name(&self) -> String {
        format!("app'\"; DROP USER x; --\\ø{}", unique_name("h"))
    }
}

/// Removes a user (every host) when the test ends, even when it fails.
struct Cleanup<'a>(&'a My, Vec<String>);

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

macro_rules! my_test {
    ($name:ident, $body:expr) => {
        #[test]
        fn $name() {
            let Some(my) = My::from_env() else { return };
            let f: &dyn Fn(&My) = &$body;
            f(&my);
        }
    };
}

fn stored(p: &mut Mysql, user: &str) -> String {
    match p.read_stored(user).unwrap() {
        StoredCredential::Stored(s) => s,
        other => panic!("expected a stored snapshot of {user:?}, got {other:?}"),
    }
}

fn assert_refused(p: &Mysql, user: &str, password: &str) {
    let err = p
        .verify_login(user, &Secret::new(password))
        .expect_err("a wrong password was accepted");
    assert_eq!(err.kind, FailureKind::AuthRejected, "{err}");
}

// ---- the provider, driven directly ----

my_test!(check_admin_accepts_a_full_admin, |my| {
    my.provider().check_admin().unwrap();
});

my_test!(check_admin_names_each_missing_privilege, |my| {
    let (no_create, pw1) = my.limited_admin(&["GRANT SELECT ON mysql.user TO {a}"]);
    let (no_read, pw2) = my.limited_admin(&["GRANT CREATE USER ON *.* TO {a}"]);
    let (nothing, pw3) = my.limited_admin(&[]);
    let (enough, pw4) = my.limited_admin(&[
        "GRANT CREATE USER ON *.* TO {a}",
        "GRANT SELECT ON mysql.user TO {a}",
    ]);
    let _cleanup = Cleanup(
        my,
        vec![
            no_create.clone(),
            no_read.clone(),
            nothing.clone(),
            enough.clone(),
        ],
    );
    let check = |user: &str, pw: &str| {
        Mysql::connect(&my.target_as(user, pw, my.port))
            .unwrap()
            .check_admin()
    };

    let e = check(&no_create, &pw1).unwrap_err();
    assert_eq!(e.kind, FailureKind::Privilege);
    assert!(
        e.detail.contains("GRANT CREATE USER ON *.*") && !e.detail.contains("mysql.user"),
        "{e}"
    );
    let e = check(&no_read, &pw2).unwrap_err();
    assert!(
        e.detail.contains("GRANT SELECT ON mysql.user")
            && !e.detail.contains("CREATE USER privilege"),
        "{e}"
    );
    let e = check(&nothing, &pw3).unwrap_err();
    assert!(
        e.detail.contains("CREATE USER privilege") && e.detail.contains("mysql.user"),
        "{e}"
    );
    assert!(!e.to_string().contains(&pw3), "{e}");
    check(&enough, &pw4).expect("CREATE USER and SELECT on mysql.user are enough");
});

my_test!(round_trip_restores_the_exact_hashes, |my| {
    let user = unique_name("ska_rt");
    let _cleanup = Cleanup(my, vec![user.clone()]);
    my.create_user(&user, "old-pw");
    let before = my.auth_state(&user);
    let mut p = my.provider();
    assert!(p.user_exists(&user).unwrap());
    let snapshot = stored(&mut p, &user);
    assert!(
        !snapshot.contains("old-pw"),
        "the snapshot holds hashes, not plaintext"
    );

    p.set_password(&user, &Secret::new("new-pw")).unwrap();
    p.verify_login(&user, &Secret::new("new-pw")).unwrap();
    assert_refused(&p, &user, "old-pw");
    assert_ne!(stored(&mut p, &user), snapshot);

    p.restore_stored(&user, &snapshot).unwrap();
    assert_eq!(
        stored(&mut p, &user),
        snapshot,
        "read_stored after restore must give the same text"
    );
    assert_eq!(my.auth_state(&user), before);
    p.verify_login(&user, &Secret::new("old-pw")).unwrap();
    assert_refused(&p, &user, "new-pw");
    assert_password(my, &user, "old-pw", "new-pw");
});

my_test!(absent_user_is_created_on_percent_and_dropped, |my| {
    let user = unique_name("ska_new");
    let _cleanup = Cleanup(my, vec![user.clone()]);
    let mut p = my.provider();
    assert_eq!(p.read_stored(&user).unwrap(), StoredCredential::Absent);
    assert!(!p.user_exists(&user).unwrap());
    p.set_password(&user, &Secret::new("created-pw")).unwrap();
    assert_eq!(my.hosts(&user), vec!["%".to_owned()]);
    p.verify_login(&user, &Secret::new("created-pw")).unwrap();
    assert_refused(&p, &user, "created-pw ");
    p.drop_user(&user).unwrap();
    assert!(!p.user_exists(&user).unwrap());
    assert!(my.hosts(&user).is_empty());
});

fn hostile_round_trip(my: &My, p: &mut Mysql) {
    let names = [
        format!("app'; DROP USER root; --{}", unique_name("")),
        format!("a\\'b\\\\{}", unique_name("")),
        format!("\"q\"`b`{}", unique_name("")),
        format!("ø€ñ中{}", unique_name("")),
        format!("%_{}", unique_name("")),
    ];
    let passwords = [
        "p'\"\\$`",
        "\\",
        "'",
        "\\'; DROP USER root; --",
        "$(id)${HOME}",
        "æøå€中😀",
        "x\\0y\\nz",
        " lead and trail ",
    ];
    let _cleanup = Cleanup(my, names.to_vec());
    let bystander = unique_name("ska_by");
    let _cleanup_by = Cleanup(my, vec![bystander.clone()]);
    my.create_user(&bystander, "bystander-pw");
    for (i, name) in names.iter().enumerate() {
        let first = passwords[i % passwords.len()];
        p.set_password(name, &Secret::new(first))
            .unwrap_or_else(|e| panic!("{name:?}: {e}"));
        assert_eq!(
            my.hosts(name),
            vec!["%".to_owned()],
            "{name:?} was not created exactly"
        );
        for pw in passwords {
            p.set_password(name, &Secret::new(pw))
                .unwrap_or_else(|e| panic!("{name:?}: {e}"));
            assert!(my.can_login(name, pw), "{name:?} cannot log in with {pw:?}");
            p.verify_login(name, &Secret::new(pw)).unwrap();
            // Near misses: what a quoting bug would have stored instead.
            for wrong in [
                pw.replace('\\', ""),
                pw.replace('\\', "\\\\"),
                pw.replace('\'', "''"),
                format!("{pw}x"),
            ] {
                if wrong != pw {
                    assert!(
                        !my.can_login(name, &wrong),
                        "{name:?} logs in with {wrong:?} instead of {pw:?}"
                    );
                }
            }
        }
    }
    assert!(
        my.can_login(&bystander, "bystander-pw"),
        "a bystander was changed"
    );
    assert!(
        my.hosts("root").contains(&"localhost".to_owned()),
        "root is gone"
    );
}

my_test!(hostile_names_and_passwords_reach_the_server_exactly, |my| {
    let mut p = my.provider();
    assert!(
        p.dialect().backslash_escapes,
        "the server's default mode has backslash escapes"
    );
    hostile_round_trip(my, &mut p);
});

/// Sets the server's global sql_mode for new sessions and puts it back on drop.
struct GlobalSqlMode<'a>(&'a My, String);

impl<'a> GlobalSqlMode<'a> {
    fn add(my: &'a My, mode: &str) -> Self {
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

my_test!(
    no_backslash_escapes_sessions_get_exact_names_and_passwords,
    |my| {
        let mut p = {
            let _mode = GlobalSqlMode::add(my, "NO_BACKSLASH_ESCAPES");
            my.provider()
        };
        assert!(
            !p.dialect().backslash_escapes,
            "the provider must see the session's NO_BACKSLASH_ESCAPES"
        );
        hostile_round_trip(my, &mut p);
    }
);

my_test!(every_host_of_the_name_is_rotated_and_restored, |my| {
    let user = unique_name("ska_hosts");
    let _cleanup = Cleanup(my, vec![user.clone()]);
    my.create_user(&user, "pct-pw");
    // The server does not resolve names: logins from here match the 127.0.0.1 account.
    my.exec(&format!(
        "CREATE USER {} IDENTIFIED BY 'local-pw'",
        My::account(&user, "127.0.0.1")
    ));
    my.exec(&format!(
        "CREATE USER {} IDENTIFIED BY 'lan-pw'",
        My::account(&user, "10.9.8.%")
    ));
    assert!(my.can_login(&user, "local-pw") && !my.can_login(&user, "pct-pw"));
    let before = my.auth_state(&user);
    let mut p = my.provider();
    let snapshot = stored(&mut p, &user);
    let accounts: Value = serde_json::from_str(&snapshot).unwrap();
    assert_eq!(
        accounts["accounts"].as_array().unwrap().len(),
        3,
        "{snapshot}"
    );

    p.set_password(&user, &Secret::new("rotated-pw")).unwrap();
    assert_eq!(
        my.hosts(&user),
        vec!["%", "10.9.8.%", "127.0.0.1"],
        "no account may be added or lost"
    );
    let after = my.auth_state(&user);
    assert!(
        after.iter().all(|(_, a)| a == &after[0].1),
        "every host must have the new hash: {after:?}"
    );
    p.verify_login(&user, &Secret::new("rotated-pw")).unwrap();
    assert_refused(&p, &user, "local-pw");

    p.restore_stored(&user, &snapshot).unwrap();
    assert_eq!(
        my.auth_state(&user),
        before,
        "each host gets its own old hash back"
    );
    assert_eq!(stored(&mut p, &user), snapshot);
    assert_password(my, &user, "local-pw", "rotated-pw");
});

my_test!(mariadb_authentication_chains_are_restored_exactly, |my| {
    let plugins: Vec<String> = my
        .admin()
        .query("SELECT PLUGIN_NAME FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'ed25519'")
        .unwrap();
    if plugins.is_empty() {
        my.exec("INSTALL SONAME 'auth_ed25519'");
    }
    let user = unique_name("ska_chain");
    let _cleanup = Cleanup(my, vec![user.clone()]);
    my.exec(&format!(
        "CREATE USER {} IDENTIFIED VIA ed25519 USING PASSWORD('chain-pw') OR unix_socket",
        My::account(&user, "%")
    ));
    my.exec(&format!(
        "CREATE USER {} IDENTIFIED VIA ed25519 USING PASSWORD('ed-pw')",
        My::account(&user, "127.0.0.2")
    ));
    let before = my.auth_state(&user);
    assert!(before[0].1["auth_or"].is_array(), "{before:?}");
    let mut p = my.provider();
    let snapshot = stored(&mut p, &user);
    p.set_password(&user, &Secret::new("flat-pw")).unwrap();
    assert_ne!(my.auth_state(&user), before);
    p.restore_stored(&user, &snapshot).unwrap();
    assert_eq!(
        my.auth_state(&user),
        before,
        "plugins, hashes and the OR chain come back"
    );
    assert_eq!(stored(&mut p, &user), snapshot);
});

my_test!(
    admin_without_global_priv_falls_back_to_the_live_value,
    |my| {
        let (admin, admin_pw) = my.limited_admin(&[
            "GRANT CREATE USER ON *.* TO {a}",
            "GRANT SELECT ON mysql.user TO {a}",
        ]);
        let user = unique_name("ska_lv");
        let _cleanup = Cleanup(my, vec![admin.clone(), user.clone()]);
        my.create_user(&user, "lv-old");
        let mut p = Mysql::connect(&my.target_as(&admin, &admin_pw, my.port)).unwrap();
        p.check_admin().unwrap();
        match p.read_stored(&user).unwrap() {
            StoredCredential::Unreadable { reason } => assert!(reason.contains(&admin), "{reason}"),
            other => panic!("expected Unreadable, got {other:?}"),
        }
        p.set_password(&user, &Secret::new("lv-new")).unwrap();
        p.verify_login(&user, &Secret::new("lv-new")).unwrap();
        // The engine's fallback: set the live (old) value again.
        p.set_password(&user, &Secret::new("lv-old")).unwrap();
        assert_password(my, &user, "lv-old", "lv-new");
    }
);

my_test!(names_the_user_column_would_change_are_refused, |my| {
    let mut p = my.provider();
    for name in [
        format!("e\u{1F600}{}", unique_name("x")),
        format!("{} ", unique_name("trail")),
    ] {
        let err = p.set_password(&name, &Secret::new("pw")).unwrap_err();
        assert_eq!(err.kind, FailureKind::InvalidInput, "{err}");
        let mangled = name.replace('\u{1F600}', "?").trim_end().to_owned();
        assert!(my.hosts(&mangled).is_empty(), "{mangled:?} was created");
    }
    assert_eq!(
        p.validate("", &Secret::new("pw")).unwrap_err().kind,
        FailureKind::InvalidInput
    );
    assert_eq!(
        p.validate("a", &Secret::new("p\0w")).unwrap_err().kind,
        FailureKind::InvalidInput
    );
});

my_test!(
    a_missing_or_forbidden_database_after_login_counts_as_authenticated,
    |my| {
        let user = unique_name("ska_db");
        let _cleanup = Cleanup(my, vec![user.clone()]);
        my.create_user(&user, "db-pw");
        for database in ["ska_no_such_database", "mysql"] {
            let mut target = my.target();
            target.database = database.into();
            let p = Mysql::connect(&target).unwrap();
            p.verify_login(&user, &Secret::new("db-pw"))
                .unwrap_or_else(|e| panic!("{database}: {e}"));
            assert_refused(&p, &user, "db-pw2");
        }
    }
);

my_test!(refused_login_names_anonymous_accounts, |my| {
    // An anonymous account on a host no test logs in from: harmless here, but the
    // provider must point at it when a login is refused.
    let host = "10.255.255.254";
    my.exec(&format!(
        "CREATE USER IF NOT EXISTS {}",
        My::account("", host)
    ));
    let p = my.provider();
    my.exec(&format!("DROP USER IF EXISTS {}", My::account("", host)));
    let err = p
        .verify_login("ska_nobody_here", &Secret::new("x"))
        .unwrap_err();
    assert_eq!(err.kind, FailureKind::AuthRejected);
    assert!(
        err.detail.contains("anonymous accounts") && err.detail.contains(host),
        "{err}"
    );
});

my_test!(a_silent_server_is_an_error_within_the_timeout, |my| {
    let hole = BlackHole::start();
    let mut target = my.target_as(&my.admin_user, &my.admin_pass, hole.port());
    target.timeouts = DbTimeouts {
        connect: Duration::from_secs(1),
        statement: Duration::from_secs(1),
    };
    let started = Instant::now();
    let err = Mysql::connect(&target)
        .err()
        .expect("connecting to a silent server must fail");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(err.kind, FailureKind::Timeout | FailureKind::Unreachable),
        "{err}"
    );
    assert!(!err.to_string().contains(&my.admin_pass));
});

my_test!(
    a_server_that_hangs_mid_session_is_an_error_within_the_timeout,
    |my| {
        let user = unique_name("ska_hang");
        let _cleanup = Cleanup(my, vec![user.clone()]);
        my.create_user(&user, "hang-old");
        let relay = TcpProxy::start(&format!("{}:{}", my.host, my.port));
        let mut target = my.target_as(&my.admin_user, &my.admin_pass, relay.port());
        target.timeouts = DbTimeouts {
            connect: Duration::from_secs(2),
            statement: Duration::from_secs(2),
        };
        let mut p = Mysql::connect(&target).unwrap();
        relay.freeze();
        let started = Instant::now();
        let err = p.set_password(&user, &Secret::new("hang-new")).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "took {:?}",
            started.elapsed()
        );
        assert_eq!(err.kind, FailureKind::Timeout, "{err}");
        let started = Instant::now();
        let err = p.verify_login(&user, &Secret::new("hang-old")).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "took {:?}",
            started.elapsed()
        );
        assert!(
            matches!(err.kind, FailureKind::Timeout | FailureKind::Unreachable),
            "{err}"
        );
        drop(relay);
        assert_password(my, &user, "hang-old", "hang-new");
    }
);

// ---- the shared failure scenarios, through the agent binary ----

crate::scenarios::shared_scenarios!(my_test);
my_test!(verify_fails_rolls_back, |my| {
    scenarios::verify_fails_rolls_back(my)
});

my_test!(rollback_restores_every_host_exactly, |my| {
    let w = World::plain(my);
    my.exec(&format!(
        "CREATE USER {} IDENTIFIED BY 'lan-old'",
        My::account(&w.user, "10.9.8.%")
    ));
    let before = my.auth_state(&w.user);
    let agent = w.start();
    my.block_login(&w.user);
    w.cp.set_pending(
        &w.secret,
        "rot_hosts",
        &secret_value(&w.user, "hosts-new-pw"),
    );
    let error = w.wait_rejected("rot_hosts", &agent);
    assert!(error.contains("verification failed"), "{error}");
    w.wait_journal_cleared(&agent);
    my.unblock_login(&w.user);
    assert_eq!(
        my.auth_state(&w.user),
        before,
        "rollback must put every host's own hash back"
    );
    assert_password(my, &w.user, &w.old_pw, "hosts-new-pw");
    w.finish(agent, &[&w.old_pw, "hosts-new-pw"]);
});

/// Makes every login of one user fail right after authentication (MariaDB runs
/// `init_connect` for logins without SUPER, and this one errors only for that user),
/// without touching any other user. Put back on drop.
struct BrokenLogin<'a>(&'a My);

impl<'a> BrokenLogin<'a> {
    fn for_user(my: &'a My, user: &str) -> Self {
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

my_test!(user_created_by_a_failed_rotation_is_dropped, |my| {
    let w = World::plain(my);
    let fresh = unique_name("ska_fresh");
    let _cleanup = Cleanup(my, vec![fresh.clone()]);
    let broken = BrokenLogin::for_user(my, &fresh);
    let agent = w.start();
    w.cp.set_pending(&w.secret, "rot_fresh", &secret_value(&fresh, "fresh-pw"));
    let error = w.wait_rejected("rot_fresh", &agent);
    assert!(error.contains("verification failed"), "{error}");
    w.wait_journal_cleared(&agent);
    drop(broken);
    assert!(
        my.hosts(&fresh).is_empty(),
        "the user the failed rotation created is still there"
    );
    assert!(
        my.can_login(&w.user, &w.old_pw),
        "the scenario's own user was touched"
    );
    w.finish(agent, &[&w.old_pw, "fresh-pw"]);
});
