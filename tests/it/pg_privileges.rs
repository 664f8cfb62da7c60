//! What a non-superuser PostgreSQL admin may do to the managed role, checked before a
//! rotation touches it: CREATEROLE alone up to PostgreSQL 15, CREATEROLE plus ADMIN OPTION
//! on the role from 16 on, never a SUPERUSER role. `test` names the missing grant, and a
//! rotation that needs it is rejected before any change.

use serde_json::json;

use crate::support::SOON;
use crate::support::db::postgres::{Pg, ident};
use crate::support::world::{Database, World, assert_password, secret_value};
use crate::support::{random_text, unique_name};

fn exec(pg: &Pg, sql: &str) {
    pg.admin()
        .batch_execute(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

fn server_version_num(pg: &Pg) -> i32 {
    let row = pg
        .admin()
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .unwrap();
    row.get(0)
}

/// A CREATEROLE-only admin, and a local config for `w` that logs in as it.
fn createrole_admin(pg: &Pg, w: &World) -> (String, String) {
    let admin = unique_name("ska_cr");
    let pw = format!("cr-{}", random_text(12));
    pg.create_user(&admin, &pw);
    exec(pg, &format!("ALTER ROLE {} CREATEROLE", ident(&admin)));
    let (host, port) = pg.endpoint();
    let mut connection = pg.connection(&host, port);
    connection["adminUser"] = json!(admin);
    connection["adminPass"] = json!(pw);
    let config =
        json!({"secretId": w.secret, "providerType": "postgresql", "connection": connection});
    std::fs::create_dir_all(w.machine.agents_dir()).unwrap();
    let path = w.machine.agents_dir().join(format!("{}.json", w.secret));
    std::fs::write(&path, config.to_string()).unwrap();
    crate::support::set_mode(&path, 0o600);
    (admin, pw)
}

fn test_output(w: &World) -> (Option<i32>, String) {
    let out = w
        .machine
        .command(&["test", "--secret", &w.secret])
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn admin_option_is_demanded_exactly_where_the_server_version_needs_it() {
    let Some(pg) = Pg::open() else { return };
    let w = World::plain(&pg);
    let (admin, admin_pw) = createrole_admin(&pg, &w);
    let version = server_version_num(&pg);
    let (code, out) = test_output(&w);
    if version >= 160_000 {
        assert_eq!(code, Some(7), "{out}");
        assert!(
            out.contains("FAIL  privileges")
                && out.contains(&format!(
                    "GRANT {} TO {} WITH ADMIN OPTION",
                    ident(&w.user),
                    ident(&admin)
                )),
            "{out}"
        );
        exec(
            &pg,
            &format!(
                "GRANT {} TO {} WITH ADMIN OPTION",
                ident(&w.user),
                ident(&admin)
            ),
        );
        let (code, out) = test_output(&w);
        assert_eq!(code, Some(0), "after the grant:\n{out}");
    } else {
        // PostgreSQL 15 and older: CREATEROLE is enough, and demanding more would refuse
        // a working setup.
        eprintln!("PostgreSQL {version}: checking that ADMIN OPTION is not demanded");
        assert_eq!(code, Some(0), "{out}");
        assert!(out.contains("ok    privileges"), "{out}");
    }
    // Either way a rotation with this admin now works.
    let mut agent = w.machine.spawn_agent(&w.secret);
    w.wait_healthy(&mut agent);
    let new_pw = format!("new-{}", random_text(16));
    w.cp.set_pending(&w.secret, "rot_cr_ok", &secret_value(&w.user, &new_pw));
    w.wait_confirmed("rot_cr_ok", &agent);
    assert_password(&pg, &w.user, &new_pw, &w.old_pw);
    w.finish(agent, &[&w.old_pw, &new_pw, &admin_pw]);
    pg.drop_user(&admin);
}

#[test]
fn a_superuser_role_is_refused_before_anything_changes() {
    let Some(pg) = Pg::open() else { return };
    let w = World::plain(&pg);
    let (admin, admin_pw) = createrole_admin(&pg, &w);
    exec(&pg, &format!("ALTER ROLE {} SUPERUSER", ident(&w.user)));
    let (code, out) = test_output(&w);
    assert_eq!(code, Some(7), "{out}");
    assert!(
        out.contains("FAIL  privileges") && out.contains("is a SUPERUSER"),
        "{out}"
    );
    let mut agent = w.machine.spawn_agent(&w.secret);
    w.wait_healthy(&mut agent);
    let new_pw = format!("new-{}", random_text(16));
    w.cp.set_pending(&w.secret, "rot_super", &secret_value(&w.user, &new_pw));
    let why = w.wait_rejected("rot_super", &agent);
    assert!(why.contains("is a SUPERUSER"), "{why}");
    assert!(
        !w.journal_exists(),
        "a journal for a rotation that never started"
    );
    assert_password(&pg, &w.user, &w.old_pw, &new_pw);
    agent.wait_until(SOON, "heartbeat", || !w.cp.heartbeats(&w.secret).is_empty());
    w.finish(agent, &[&w.old_pw, &new_pw, &admin_pw]);
    pg.drop_user(&admin);
}
