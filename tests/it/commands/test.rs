//! `test`: the four checks (config, login, privileges, user) and what each failure says.

use serde_json::json;

use crate::support::assertions::{Exit, assert_contains};
use crate::support::cli::{bare, closed_port, configure_args, configure_ok, run};
use crate::support::{FakeControlPlane, Machine, SecretState, TempDir};

#[test]
fn test_reports_an_unreachable_database_and_skips_the_rest() {
    let home = TempDir::new("test");
    let port = closed_port().to_string();
    let args = configure_args(
        "sk_t1",
        "postgresql",
        "127.0.0.1",
        "ska_admin",
        &["--port", &port],
    );
    configure_ok(bare(home.path(), &args), "admin-secret-value");
    let out = run(bare(home.path(), &["test", "--secret", "sk_t1"])).expect(Exit::CheckFailed);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("ok    config")
            && lines[0].contains(&format!("PostgreSQL at 127.0.0.1:{port}")),
        "{}",
        out.stdout
    );
    assert!(
        lines[1].starts_with("FAIL  login") && lines[1].contains(&format!("127.0.0.1:{port}")),
        "{}",
        out.stdout
    );
    assert!(lines[2].starts_with("skip  privileges") && lines[3].starts_with("skip  user"));
    assert_eq!(lines[4], "1 of 4 checks failed, 2 skipped");
    assert!(!out.all().contains("admin-secret-value"));
}

#[test]
fn test_without_local_config_or_identity_fails_the_config_check() {
    let home = TempDir::new("test");
    let out = run(bare(home.path(), &["test", "--secret", "sk_none"])).expect(Exit::CheckFailed);
    assert!(
        out.stdout.starts_with("FAIL  config") && out.stdout.contains("no local config at"),
        "{}",
        out.stdout
    );
    let agents = home.path().join("agents");
    std::fs::create_dir_all(&agents).unwrap();
    std::fs::write(agents.join("sk_none.json"), "{not json").unwrap();
    crate::support::set_mode(&agents.join("sk_none.json"), 0o600);
    let out = run(bare(home.path(), &["test", "--secret", "sk_none"])).expect(Exit::CheckFailed);
    assert!(
        out.stdout.starts_with("FAIL  config") && out.stdout.contains("is not valid JSON"),
        "{}",
        out.stdout
    );
    run(bare(home.path(), &["test", "--secret", "a/b"])).expect(Exit::Usage);
    run(bare(home.path(), &["test"])).expect(Exit::Usage);
}

#[test]
fn test_falls_back_to_the_servers_sync_config() {
    let cp = FakeControlPlane::start();
    let machine = Machine::new(&cp);
    let port = closed_port();
    cp.add_secret(
        "sk_srv",
        SecretState::new(
            "mysql",
            json!({"host": "127.0.0.1", "port": port, "database": "", "adminUser": "root",
                   "adminPass": "server-admin-pass", "projectReference": ""}),
            "app",
            r#"{"username":"app","password":"x"}"#,
        ),
    );
    let out = run(machine.command(&["test", "--secret", "sk_srv", "--use-server-config"]))
        .expect(Exit::CheckFailed);
    assert!(
        out.stdout
            .starts_with("ok    config     sync config from http://127.0.0.1:")
            && out.stdout.contains(&format!("MySQL at 127.0.0.1:{port}")),
        "{}",
        out.stdout
    );
    assert_contains(&out.stdout, "FAIL  login");
    assert!(!out.all().contains("server-admin-pass"));
}

/// Against the PostgreSQL test cluster.
#[cfg(feature = "postgres")]
mod with_postgres {
    use super::*;
    use crate::commands::with_postgres::{admin, break_server_connection, configure};
    use crate::support::cli::Out;
    use crate::support::db::db_test;
    use crate::support::db::postgres::Pg;
    use crate::support::random_text;
    use crate::support::world::{Database, World, assert_no_leak, secret_value};

    fn check_lines(out: &Out) -> Vec<(String, String)> {
        out.stdout
            .lines()
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                Some((words.next()?.to_owned(), words.next()?.to_owned()))
            })
            .take(4)
            .collect()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    db_test!(
        test_passes_with_a_local_config_and_fails_on_a_wrong_admin_password,
        Pg::open(),
        |pg| {
            let w = World::plain(pg);
            break_server_connection(&w);
            let (admin_user, admin_pass) = admin(pg);
            configure(&w, &admin_user, &admin_pass, &[]);
            let out = run(w.machine.command(&["test", "--secret", &w.secret])).expect(Exit::Ok);
            assert_eq!(
                check_lines(&out),
                pairs(&[
                    ("ok", "config"),
                    ("ok", "login"),
                    ("ok", "privileges"),
                    ("ok", "user")
                ]),
                "{}",
                out.stdout
            );
            assert!(
                out.stdout
                    .contains(&format!("managed user \"{}\" exists", w.user))
                    && out.stdout.ends_with("all 4 checks passed\n"),
                "{}",
                out.stdout
            );
            assert_no_leak(&out.all(), &[&w.old_pw], &admin_pass);

            configure(&w, &admin_user, &format!("wrong-{}", random_text(12)), &[]);
            let out =
                run(w.machine.command(&["test", "--secret", &w.secret])).expect(Exit::CheckFailed);
            assert_eq!(
                check_lines(&out),
                pairs(&[
                    ("ok", "config"),
                    ("FAIL", "login"),
                    ("skip", "privileges"),
                    ("skip", "user")
                ]),
                "{}",
                out.stdout
            );
            assert_contains(&out.stdout, "password");
        }
    );

    db_test!(
        test_names_a_missing_privilege_and_a_missing_user,
        Pg::open(),
        |pg| {
            let w = World::plain(pg);
            // An admin that can log in but not manage roles.
            let weak = pg.plain_name();
            let weak_pw = format!("weak-{}", random_text(12));
            pg.create_user(&weak, &weak_pw);
            configure(&w, &weak, &weak_pw, &[]);
            let ghost = pg.plain_name();
            w.cp.with_secret(&w.secret, |s| {
                s.live_value = secret_value(&ghost, "whatever")
            });
            let out =
                run(w.machine.command(&["test", "--secret", &w.secret])).expect(Exit::CheckFailed);
            pg.drop_user(&weak);
            assert_eq!(
                check_lines(&out),
                pairs(&[
                    ("ok", "config"),
                    ("ok", "login"),
                    ("FAIL", "privileges"),
                    ("FAIL", "user")
                ]),
                "{}",
                out.stdout
            );
            assert_contains(&out.stdout, "CREATEROLE");
            assert_contains(
                &out.stdout,
                &format!("managed user \"{ghost}\" does not exist"),
            );
            assert!(
                out.stdout.ends_with("2 of 4 checks failed\n"),
                "{}",
                out.stdout
            );
            assert_no_leak(&out.all(), &[&weak_pw], &pg.admin_password());
        }
    );

    db_test!(
        test_uses_the_servers_sync_config_without_a_local_one,
        Pg::open(),
        |pg| {
            let w = World::plain(pg);
            let out =
                run(w
                    .machine
                    .command(&["test", "--secret", &w.secret, "--use-server-config"]))
                .expect(Exit::Ok);
            assert!(
                out.stdout.starts_with("ok    config     sync config from "),
                "{}",
                out.stdout
            );
            assert!(
                out.stdout.ends_with("all 4 checks passed\n"),
                "{}",
                out.stdout
            );
            assert_no_leak(&out.all(), &[&w.old_pw], &pg.admin_password());
        }
    );
}
