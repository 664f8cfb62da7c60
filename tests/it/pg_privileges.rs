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
    admin_option_is_demanded_where_the_version_needs_it(&pg);
}

#[test]
fn a_superuser_role_is_refused_before_anything_changes() {
    let Some(pg) = Pg::open() else { return };
    a_superuser_role_is_refused(&pg);
}

/// `test` demands ADMIN OPTION on the managed role from PostgreSQL 16 on, naming the
/// GRANT to run, and not before; with it (or before 16 without it) a rotation by a
/// CREATEROLE-only admin confirms.
pub fn admin_option_is_demanded_where_the_version_needs_it(pg: &Pg) {
    let w = World::plain(pg);
    let (admin, admin_pw) = createrole_admin(pg, &w);
    let version = pg.version_num();
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
            pg,
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
    assert_password(pg, &w.user, &new_pw, &w.old_pw);
    w.finish(agent, &[&w.old_pw, &new_pw, &admin_pw]);
    pg.drop_user(&admin);
}

/// A CREATEROLE-only admin may never change a SUPERUSER's password: refused by `test`
/// and, for a rotation, before anything changes.
pub fn a_superuser_role_is_refused(pg: &Pg) {
    let w = World::plain(pg);
    let (admin, admin_pw) = createrole_admin(pg, &w);
    exec(pg, &format!("ALTER ROLE {} SUPERUSER", ident(&w.user)));
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
    assert_password(pg, &w.user, &w.old_pw, &new_pw);
    agent.wait_until(SOON, "heartbeat", || !w.cp.heartbeats(&w.secret).is_empty());
    w.finish(agent, &[&w.old_pw, &new_pw, &admin_pw]);
    pg.drop_user(&admin);
}

/// PostgreSQL 16 and later: a CREATEROLE admin without ADMIN OPTION on a role it did not
/// create. The agent starts (the role may not be named before the first rotation), but
/// the rotation is rejected before any change, with the GRANT that fixes it, and the
/// role keeps its password and verifier. Once granted, the next rotation confirms.
pub fn without_admin_option_a_rotation_is_rejected_with_the_grant(pg: &Pg) {
    assert!(pg.version_num() >= 160_000, "a PostgreSQL 16+ check");
    let w = World::plain(pg);
    let (admin, admin_pw) = createrole_admin(pg, &w);
    let before = pg.stored_verifier(&w.user).unwrap();
    let mut agent = w.machine.spawn_agent(&w.secret);
    w.wait_healthy(&mut agent);
    let new_pw = format!("new-{}", random_text(16));
    w.cp.set_pending(&w.secret, "rot_no_admin", &secret_value(&w.user, &new_pw));
    let grant = format!(
        "GRANT {} TO {} WITH ADMIN OPTION",
        ident(&w.user),
        ident(&admin)
    );
    let why = w.wait_rejected("rot_no_admin", &agent);
    assert!(
        why.contains(&grant),
        "the rejection does not name {grant:?}: {why}"
    );
    assert!(
        !w.journal_exists(),
        "a journal for a rotation that never started"
    );
    assert_eq!(pg.stored_verifier(&w.user).unwrap(), before);
    assert_password(pg, &w.user, &w.old_pw, &new_pw);
    exec(pg, &grant);
    let newer = format!("newer-{}", random_text(16));
    w.cp.set_pending(&w.secret, "rot_admin_ok", &secret_value(&w.user, &newer));
    w.wait_confirmed("rot_admin_ok", &agent);
    assert_password(pg, &w.user, &newer, &w.old_pw);
    w.finish(agent, &[&w.old_pw, &new_pw, &newer, &admin_pw]);
    pg.drop_user(&admin);
}

/// PostgreSQL 16 and later: a role the CREATEROLE admin created itself needs no grant
/// (its creator holds ADMIN OPTION on it); the rotation confirms.
pub fn a_role_the_admin_created_needs_no_grant(pg: &Pg) {
    let w = World::plain(pg);
    let (admin, admin_pw) = createrole_admin(pg, &w);
    // Made by the admin itself, over its own login.
    let own = unique_name("ska_own");
    let own_pw = format!("own-{}", random_text(12));
    let verifier = postgres_protocol::password::scram_sha_256(own_pw.as_bytes());
    pg.connect_as(&admin, &admin_pw)
        .unwrap()
        .batch_execute(&format!(
            "CREATE ROLE {} LOGIN PASSWORD '{}'",
            ident(&own),
            verifier
        ))
        .unwrap();
    w.cp.with_secret(&w.secret, |s| {
        s.live_value = secret_value(&own, &own_pw);
        s.managed_username = own.clone();
    });
    let mut agent = w.machine.spawn_agent(&w.secret);
    w.wait_healthy(&mut agent);
    let new_pw = format!("new-{}", random_text(16));
    w.cp.set_pending(&w.secret, "rot_own", &secret_value(&own, &new_pw));
    w.wait_confirmed("rot_own", &agent);
    assert_password(pg, &own, &new_pw, &own_pw);
    w.finish(agent, &[&own_pw, &new_pw, &admin_pw]);
    pg.drop_user(&own);
    pg.drop_user(&admin);
}
