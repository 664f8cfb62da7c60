//! A rotation never leaves the new password in a server's statement log: the general log
//! and the binary log of MySQL and MariaDB (every statement, as received, and as
//! replicated) and PostgreSQL with `log_statement = 'all'`. Each test first proves the log
//! captured the rotation's statement, so a log that was off cannot make it pass. The
//! matrix (tests/it/matrix/) runs the same checks on every server version.

#[cfg(feature = "mysql")]
use ::mysql::prelude::Queryable;

#[cfg(feature = "mysql")]
use crate::support::db::mysql::{My, lit};
#[cfg(feature = "postgres")]
use crate::support::db::postgres::Pg;
use crate::support::random_text;
use crate::support::world::{World, assert_password, secret_value};

/// Loads MariaDB's ed25519 plugin unless it is there (tests may race to install it).
#[cfg(feature = "mysql")]
fn ensure_ed25519(my: &My) {
    let mut admin = my.admin();
    let loaded: Option<u64> = admin
        .query_first("SELECT COUNT(*) FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'ed25519' AND PLUGIN_STATUS = 'ACTIVE'")
        .unwrap();
    if loaded == Some(0)
        && let Err(e) = admin.query_drop("INSTALL SONAME 'auth_ed25519'")
    {
        let again: Option<u64> = admin
            .query_first(
                "SELECT COUNT(*) FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'ed25519'",
            )
            .unwrap();
        assert_eq!(again, Some(1), "cannot load MariaDB's ed25519 plugin: {e}");
    }
}

/// A user with a mysql_native_password account on '%' and an ed25519 account on
/// '127.0.0.1' (where the tests log in from, so the ed25519 one is what logins use) is
/// rotated by the agent: both hosts get the new password as hashes of their own kind, the
/// general log holds the statement without the password, and the new password logs in
/// while the old one is refused.
#[cfg(feature = "mysql")]
#[test]
fn mariadb_general_log_never_sees_the_new_password() {
    let Some(my) = My::open() else { return };
    ensure_ed25519(&my);
    let w = World::plain(&my);
    let old = w.old_pw.clone();
    my.exec(&format!(
        "CREATE USER {} IDENTIFIED VIA ed25519 USING PASSWORD({})",
        My::account(&w.user, "127.0.0.1"),
        lit(&old)
    ));
    assert_password(&my, &w.user, &old, &random_text(12));
    my.exec("SET GLOBAL log_output = 'TABLE'");
    my.exec("SET GLOBAL general_log = 1");

    let agent = w.start();
    let new_pw = format!("new-{}", random_text(20));
    w.cp.set_pending(&w.secret, "rot_log", &secret_value(&w.user, &new_pw));
    w.wait_confirmed("rot_log", &agent);
    agent.wait_until(crate::support::SOON, "the journal is cleared", || {
        !w.journal_exists()
    });

    let mut admin = my.admin();
    let logged: Vec<String> = admin
        .exec(
            "SELECT CONVERT(argument USING utf8mb4) FROM mysql.general_log WHERE CONVERT(argument USING utf8mb4) LIKE ?",
            (format!("%{}%", w.user),),
        )
        .unwrap();
    let alter = logged
        .iter()
        .find(|s| s.starts_with("ALTER USER") && s.contains("IDENTIFIED BY PASSWORD"))
        .unwrap_or_else(|| panic!("the general log missed the rotation: {logged:#?}"));
    assert!(
        alter.contains("IDENTIFIED VIA 'ed25519' USING '"),
        "the ed25519 account was not kept on ed25519: {alter}"
    );
    let all: Vec<String> = admin
        .query("SELECT CONVERT(argument USING utf8mb4) FROM mysql.general_log")
        .unwrap();
    assert!(
        all.iter().all(|s| !s.contains(&new_pw)),
        "the new password is in MariaDB's general log"
    );

    assert_password(&my, &w.user, &new_pw, &old);
    let plugins: Vec<(String, String)> = admin
        .exec(
            "SELECT Host, JSON_VALUE(Priv, '$.plugin') FROM mysql.global_priv WHERE User = ? ORDER BY Host",
            (&w.user,),
        )
        .unwrap();
    assert_eq!(
        plugins,
        vec![
            ("%".to_owned(), "mysql_native_password".to_owned()),
            ("127.0.0.1".to_owned(), "ed25519".to_owned())
        ]
    );
    // The '%' account cannot be logged into from here (127.0.0.1 wins); its stored hash
    // is checked against the server's own computation, after the log check above.
    let stored: Option<i64> = admin
        .exec_first(
            "SELECT JSON_VALUE(Priv, '$.authentication_string') = PASSWORD(?) FROM mysql.global_priv WHERE User = ? AND Host = '%'",
            (&new_pw, &w.user),
        )
        .unwrap();
    assert_eq!(stored, Some(1), "the '%' account holds another hash");
    w.finish(agent, &[&new_pw, &old]);
}

/// PostgreSQL: the agent sends a SCRAM verifier, so with every statement logged the
/// password still never appears in the server log.
#[cfg(feature = "postgres")]
#[test]
fn postgres_statement_log_never_sees_the_new_password() {
    let Some(pg) = Pg::open() else { return };
    let log_path = std::path::Path::new(
        &std::env::var("SKA_SERVICES_DIR").expect("SKA_SERVICES_DIR from tests/services/run.sh"),
    )
    .join("postgres/server.log");
    postgres_log_never_sees_the_new_password(&pg, &log_path);
}

/// The check of the test above against `pg`, whose server log is the file `log_path`.
#[cfg(feature = "postgres")]
pub fn postgres_log_never_sees_the_new_password(pg: &Pg, log_path: &std::path::Path) {
    assert!(log_path.exists(), "no server log at {}", log_path.display());
    let admin_user = pg.admin_user.clone();
    let w = World::plain(pg);
    // Only the agent's admin sessions from now on; a role setting applies to every new one.
    pg.admin()
        .batch_execute(&format!(
            "ALTER ROLE \"{admin_user}\" SET log_statement = 'all'"
        ))
        .unwrap();
    let reset = || {
        pg.admin()
            .batch_execute(&format!("ALTER ROLE \"{admin_user}\" RESET log_statement"))
            .unwrap()
    };
    let agent = w.start();
    let new_pw = format!("new-{}", random_text(20));
    w.cp.set_pending(&w.secret, "rot_pglog", &secret_value(&w.user, &new_pw));
    w.wait_confirmed("rot_pglog", &agent);
    reset();
    let log = String::from_utf8_lossy(&std::fs::read(log_path).unwrap()).into_owned();
    assert!(
        log.lines().any(|l| l.contains("statement: ALTER ROLE")
            && l.contains(&w.user)
            && l.contains("SCRAM-SHA-256$")),
        "the server log did not capture the rotation's ALTER ROLE"
    );
    assert!(
        !log.contains(&new_pw),
        "the new password is in PostgreSQL's statement log"
    );
    assert_password(pg, &w.user, &new_pw, &w.old_pw);
    agent.wait_until(crate::support::SOON, "the journal is cleared", || {
        !w.journal_exists()
    });
    w.finish(agent, &[&new_pw, &w.old_pw]);
}

/// Every event of every binary log the server has, as the server shows them.
#[cfg(feature = "mysql")]
pub fn binlog_events(my: &My) -> Vec<String> {
    let mut admin = my.admin();
    let logs: Vec<::mysql::Row> = admin.query("SHOW BINARY LOGS").unwrap();
    assert!(!logs.is_empty(), "the binary log is off");
    let mut events = Vec::new();
    for log in logs {
        let name: String = log.get(0).unwrap();
        let rows: Vec<::mysql::Row> = admin
            .query(format!("SHOW BINLOG EVENTS IN {}", lit(&name)))
            .unwrap();
        for row in rows {
            let info: Option<Vec<u8>> = row.get("Info");
            events.push(String::from_utf8_lossy(&info.unwrap_or_default()).into_owned());
        }
    }
    events
}

/// MySQL and MariaDB with the general log and the binary log on: a rotation by the agent
/// confirms, its ALTER USER is in both logs (as the stored hash), and the new password is
/// in neither. On Oracle MySQL the account stays on caching_sha2_password.
#[cfg(feature = "mysql")]
pub fn mysql_general_log_and_binlog_never_see_the_new_password(my: &My) {
    let w = World::plain(my);
    my.exec("SET GLOBAL log_output = 'TABLE'");
    my.exec("SET GLOBAL general_log = 1");
    let agent = w.start();
    let new_pw = format!("new-{}", random_text(20));
    w.cp.set_pending(&w.secret, "rot_binlog", &secret_value(&w.user, &new_pw));
    w.wait_confirmed("rot_binlog", &agent);
    w.wait_journal_cleared(&agent);
    my.exec("SET GLOBAL general_log = 0");

    let mut admin = my.admin();
    let general: Vec<String> = admin
        .query("SELECT CONVERT(argument USING utf8mb4) FROM mysql.general_log")
        .unwrap();
    let alter = general
        .iter()
        .find(|s| s.starts_with("ALTER USER") && s.contains(&w.user))
        .unwrap_or_else(|| panic!("the general log missed the rotation's ALTER USER"));
    eprintln!("general log: {alter}");
    assert!(
        general.iter().all(|s| !s.contains(&new_pw)),
        "the new password is in the general log"
    );

    let events = binlog_events(my);
    assert!(
        events
            .iter()
            .any(|e| e.contains("ALTER USER") && e.contains(&w.user)),
        "the binary log missed the rotation's ALTER USER"
    );
    assert!(
        events.iter().all(|e| !e.contains(&new_pw)),
        "the new password is in the binary log"
    );
    assert_password(my, &w.user, &new_pw, &w.old_pw);
    if my.is_oracle_mysql() {
        let plugin: Option<String> = admin
            .exec_first(
                "SELECT plugin FROM mysql.user WHERE User = ? AND Host = '%'",
                (&w.user,),
            )
            .unwrap();
        assert_eq!(plugin.as_deref(), Some("caching_sha2_password"));
    }
    w.finish(agent, &[&new_pw, &w.old_pw]);
}
