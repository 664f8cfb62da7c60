//! A role the agent cannot log in as never wedges it. With an admin that
//! cannot read stored verifiers (CREATEROLE, not SUPERUSER), a rollback puts the live
//! value back and cannot check it by login when the role is NOLOGIN: the restore is
//! accepted, the rotation rejected, the journal cleared. Three rotations are each
//! rejected; once the role may log in again, the server's retry is confirmed.

use serde_json::json;

use crate::support::db::postgres::{Pg, ident};
use crate::support::world::{Database, World, assert_password, secret_value};
use crate::support::{SOON, random_text, unique_name};

#[test]
fn a_nologin_role_rotated_three_times_then_fixed_and_retried() {
    let Some(pg) = Pg::open() else { return };
    let admin = unique_name("ska_nl_adm");
    let admin_pw = format!("adm-{}", random_text(12));
    pg.create_user(&admin, &admin_pw);
    let mut root = pg.admin();
    root.batch_execute(&format!("ALTER ROLE {} CREATEROLE", ident(&admin)))
        .unwrap();
    let w = World::plain(&pg);
    // PostgreSQL 16+: a CREATEROLE admin manages only roles it has ADMIN OPTION on.
    let _ = root.batch_execute(&format!(
        "GRANT {} TO {} WITH ADMIN OPTION",
        ident(&w.user),
        ident(&admin)
    ));
    w.cp.with_secret(&w.secret, |s| {
        s.connection["adminUser"] = json!(admin);
        s.connection["adminPass"] = json!(admin_pw);
    });
    let mut agent = w.start();
    pg.block_login(&w.user);
    let mut secrets = vec![w.old_pw.clone(), admin_pw.clone()];
    for n in 1..=3 {
        let rotation = format!("rot_nl{n}");
        let new_pw = format!("nl{n}-{}", random_text(12));
        secrets.push(new_pw.clone());
        w.cp.set_pending(&w.secret, &rotation, &secret_value(&w.user, &new_pw));
        let error = w.wait_rejected(&rotation, &agent);
        assert!(error.contains("verification failed"), "{error}");
        w.wait_journal_cleared(&agent);
        assert_eq!(w.cp.live_value(&w.secret), secret_value(&w.user, &w.old_pw));
    }
    agent.wait_for_output("the login check is impossible", SOON);
    // Fixed: the role may log in; the old password is what the database holds.
    pg.unblock_login(&w.user);
    assert_password(&pg, &w.user, &w.old_pw, &secrets[2]);
    // The dashboard's "Retry rotation": a new pending rotation, confirmed.
    let retry_pw = format!("retry-{}", random_text(12));
    secrets.push(retry_pw.clone());
    w.cp.set_pending(&w.secret, "rot_nl_retry", &secret_value(&w.user, &retry_pw));
    w.wait_confirmed("rot_nl_retry", &agent);
    assert_password(&pg, &w.user, &retry_pw, &w.old_pw);
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    w.finish(agent, &secrets);
    pg.drop_user(&admin);
}
