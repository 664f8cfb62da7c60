//! Oracle MySQL 9, twice: with `caching_sha2_password_digest_rounds=5000` (the `$A$005$`
//! hashes MySQL 8.0 and 8.4 store) and with 9's default 10000 (`$A$00A$`); and MariaDB 11
//! (10.11 is the base server, tests/it/mysql.rs). Each has TLS with the run's CA, the
//! binary log on, and a TLS-only admin (`REQUIRE SSL`) beside the plaintext one.

use ::mysql::prelude::Queryable;
use sikkerkey_agent::providers::ProviderKind;

use crate::support::db::mysql::My;
use crate::support::random_text;
use crate::support::world::{World, assert_password, secret_value};
use crate::tls::{Pki, Server, Servers, TlsServer};

/// The server as agents reach it: Oracle MySQL with `verify-full` (its accounts use
/// caching_sha2_password, whose logins after a password change need a verified server),
/// MariaDB with the provider's default.
pub fn open(prefix: &str) -> Option<My> {
    let service = format!("the matrix server {prefix}");
    let my = My::from_env(prefix, &service)?;
    if my.is_oracle_mysql() {
        return My::from_env_verified(prefix, &service);
    }
    Some(my)
}

/// One matrix server seen by the TLS checks: `tls` logs in as the REQUIRE SSL admin.
pub struct MyTls {
    my: My,
    pair: Servers,
}

pub fn tls_server(prefix: &str) -> Option<MyTls> {
    let my = open(prefix)?;
    let server = |user: String, pass: String| Server {
        host: my.host.clone(),
        port: my.port,
        admin_user: user,
        admin_pass: pass,
        database: String::new(),
    };
    let tls = server(
        super::var(prefix, "TLS_ADMIN_USER")?,
        super::var(prefix, "TLS_ADMIN_PASS")?,
    );
    let plain = server(my.admin_user.clone(), my.admin_pass.clone());
    Some(MyTls {
        pair: Servers {
            kind: ProviderKind::Mysql,
            pki: Pki::from_env(&format!("the matrix server {prefix} over TLS"))?,
            tls,
            plain,
        },
        my,
    })
}

impl TlsServer for MyTls {
    fn servers(&self) -> &Servers {
        &self.pair
    }
    fn wrong_password_needs_verified_server(&self) -> bool {
        self.my.is_oracle_mysql()
    }
    fn restrict(&self, name: &str, client_cert: bool) -> bool {
        let require = if client_cert { "X509" } else { "SSL" };
        for host in self.my.hosts(name) {
            self.my.exec(&format!(
                "ALTER USER {} REQUIRE {require}",
                My::account(name, &host)
            ));
        }
        true
    }
}

/// An account's plugin and stored hash, as the server keeps them.
fn stored(my: &My, user: &str) -> (String, Vec<u8>) {
    my.admin()
        .exec_first(
            "SELECT plugin, authentication_string FROM mysql.user WHERE User = ? AND Host = '%'",
            (user,),
        )
        .unwrap()
        .unwrap_or_else(|| panic!("no account {user:?}@'%'"))
}

/// A rotation whose verification fails (the account is locked) is rolled back to the very
/// same plugin and stored hash, byte for byte.
pub fn rollback_restores_the_exact_stored_hash(my: &My) {
    let w = World::plain(my);
    let before = stored(my, &w.user);
    let agent = w.start();
    let new_pw = format!("new-{}", random_text(16));
    let error = w.rotate_with_logins_blocked(&agent, "rot_exact", &new_pw);
    assert!(error.contains("verification failed"), "{error}");
    assert_eq!(
        stored(my, &w.user),
        before,
        "the rollback did not put the same plugin and hash back"
    );
    assert_password(my, &w.user, &w.old_pw, &new_pw);
    w.finish(agent, &[&w.old_pw, &new_pw]);
}

/// Oracle MySQL reached without verifying it (`prefer`, the default): a rotation of a
/// caching_sha2_password account is refused before anything changes, because the login
/// that verifies it would have to send the new password to a server nothing proved to be
/// the database; the message says how to verify it. `my` is the server as an agent with
/// the provider's default reaches it.
pub fn unverified_rotation_is_refused_before_any_change(my: &My) {
    assert!(
        my.agent_ca.is_none(),
        "the server as the default reaches it"
    );
    let w = World::plain(my);
    let before = stored(my, &w.user);
    let agent = w.start();
    let new_pw = format!("new-{}", random_text(16));
    w.cp.set_pending(&w.secret, "rot_unverified", &secret_value(&w.user, &new_pw));
    let error = w.wait_rejected("rot_unverified", &agent);
    for words in ["nothing was changed", "mode prefer", "--tls verify-full"] {
        assert!(error.contains(words), "{words:?} not in: {error}");
    }
    assert_eq!(stored(my, &w.user), before, "the account was changed");
    assert!(
        !crate::statement_logs::binlog_events(my)
            .iter()
            .any(|e| e.contains("ALTER USER") && e.contains(&w.user)),
        "an ALTER USER of the account reached the binary log"
    );
    assert_password(my, &w.user, &w.old_pw, &new_pw);
    w.finish(agent, &[&w.old_pw, &new_pw]);
}

/// Oracle MySQL: a rotated caching_sha2_password account keeps its plugin and gets a hash
/// with the round count the server is configured for (`$A$005$` at 5000, `$A$00A$` at
/// 10000: three hex digits of thousands), so a rotation never weakens what the server's
/// administrator chose; the new password logs in, the old one is refused.
pub fn rotation_keeps_caching_sha2_with_the_servers_rounds(my: &My, rounds: u32) {
    let w = World::plain(my);
    let (plugin, old_hash) = stored(my, &w.user);
    assert_eq!(plugin, "caching_sha2_password");
    let prefix = format!("$A${:03X}$", rounds / 1000);
    assert!(
        old_hash.starts_with(prefix.as_bytes()),
        "the server itself stores {:?}",
        String::from_utf8_lossy(&old_hash[..7.min(old_hash.len())])
    );
    let agent = w.start();
    let new_pw = format!("new-{}", random_text(16));
    w.cp.set_pending(&w.secret, "rot_sha2", &secret_value(&w.user, &new_pw));
    w.wait_confirmed("rot_sha2", &agent);
    let (plugin, hash) = stored(my, &w.user);
    assert_eq!(plugin, "caching_sha2_password");
    assert!(
        hash.starts_with(prefix.as_bytes()),
        "the agent stored {:?}, the server is configured for {prefix}",
        String::from_utf8_lossy(&hash[..7.min(hash.len())])
    );
    assert_password(my, &w.user, &new_pw, &w.old_pw);
    w.finish(agent, &[&w.old_pw, &new_pw]);
}

pub fn rounds(prefix: &str) -> u32 {
    super::var(prefix, "ROUNDS")
        .expect("the server's caching_sha2_password_digest_rounds")
        .parse()
        .unwrap()
}

/// Every check for one MySQL or MariaDB server; extra items go in its module.
macro_rules! mysql_version {
    ($module:ident, $prefix:literal $(, $extra:item)*) => {
        pub mod $module {
            use crate::support::db::db_test;

            crate::scenarios::shared_scenarios!($crate::matrix::mysql::open($prefix), verify_fails_rolls_back);
            crate::scenarios::timeout_scenarios!($crate::matrix::mysql::open($prefix));
            crate::tls_tests!(versioned $crate::matrix::mysql::tls_server($prefix));

            db_test!(general_log_and_binlog_never_see_the_new_password, $crate::matrix::mysql::open($prefix), |my| {
                crate::statement_logs::mysql_general_log_and_binlog_never_see_the_new_password(my)
            });
            db_test!(rollback_restores_the_exact_stored_hash, $crate::matrix::mysql::open($prefix), |my| {
                $crate::matrix::mysql::rollback_restores_the_exact_stored_hash(my)
            });
            $($extra)*
        }
    };
}

macro_rules! caching_sha2 {
    ($prefix:literal) => {
        db_test!(
            unverified_rotation_is_refused_before_any_change,
            crate::support::db::mysql::My::from_env($prefix, "the matrix server"),
            |my| $crate::matrix::mysql::unverified_rotation_is_refused_before_any_change(my)
        );
        db_test!(
            rotation_keeps_caching_sha2_with_the_servers_rounds,
            $crate::matrix::mysql::open($prefix),
            |my| {
                $crate::matrix::mysql::rotation_keeps_caching_sha2_with_the_servers_rounds(
                    my,
                    $crate::matrix::mysql::rounds($prefix),
                )
            }
        );
    };
}
