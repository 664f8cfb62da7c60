//! PostgreSQL end to end: the shared failure scenarios plus what only PostgreSQL shows
//! (stored-verifier snapshots, CREATEROLE-only admins), all against the scram-sha-256
//! cluster that `make test` starts. The cluster and its helpers: support/db/postgres.rs.

use serde_json::json;

use crate::support::assertions::assert_contains;
use crate::support::db::db_test;
use crate::support::db::postgres::{Pg, ident};
use crate::support::world::{Database, World, assert_password, secret_value};
use crate::support::{AgentProcess, Endpoint, Fault, SOON, random_text, unique_name};

crate::scenarios::shared_scenarios!(Pg::open(), verify_fails_rolls_back);

/// A world whose sync config names a CREATEROLE-only admin (it cannot read pg_authid),
/// with its agent started; also the admin's name and password.
fn started_with_a_createrole_admin(pg: &Pg) -> (World<'_>, AgentProcess, String, String) {
    let w = World::plain(pg);
    let (admin, admin_pw) = pg.createrole_admin_for(&w.user);
    w.use_admin(&admin, &admin_pw);
    let agent = w.start();
    (w, agent, admin, admin_pw)
}

db_test!(
    rollback_restores_the_exact_stored_verifier,
    Pg::open(),
    |pg| rollback_puts_back_the_exact_verifier(pg)
);

/// A rotation whose verification fails puts the very same stored verifier back.
pub fn rollback_puts_back_the_exact_verifier(pg: &Pg) {
    let w = World::plain(pg);
    let before = pg.stored_verifier(&w.user).unwrap();
    let agent = w.start();
    w.rotate_with_logins_blocked(&agent, "rot_exact", "new-pw-exact");
    assert_eq!(
        pg.stored_verifier(&w.user).unwrap(),
        before,
        "rollback must put the very same verifier back"
    );
    w.finish(agent, &[&w.old_pw, "new-pw-exact"]);
}

db_test!(
    role_created_by_a_failed_rotation_is_dropped,
    Pg::open(),
    |pg| {
        // The managed role does not exist yet. The agent works in a database that PUBLIC may
        // not connect to, so verification fails and the rollback must remove the role it
        // created. The database is this test's own: other tests never see the restriction.
        let database = unique_name("ska_locked_db");
        pg.exec(&format!("CREATE DATABASE {}", ident(&database)));
        pg.exec(&format!(
            "REVOKE CONNECT ON DATABASE {} FROM PUBLIC",
            ident(&database)
        ));
        let w = World::plain(pg);
        w.cp.with_secret(&w.secret, |s| s.connection["database"] = json!(database));
        let fresh = unique_name("ska_new");
        let agent = w.start();
        w.cp.set_pending(&w.secret, "rot_create", &secret_value(&fresh, "created-pw"));
        let error = w.wait_rejected("rot_create", &agent);
        assert_contains(&error, "verification failed");
        w.wait_journal_cleared(&agent);
        assert!(pg.stored_verifier(&fresh).is_none());
        assert!(
            !pg.role_exists(&fresh),
            "the role the failed rotation created is still there"
        );
        w.finish(agent, &[&w.old_pw, "created-pw"]);
        pg.exec(&format!("DROP DATABASE {}", ident(&database)));
    }
);

db_test!(
    createrole_admin_rolls_back_from_the_live_value,
    Pg::open(),
    |pg| {
        // An admin without SUPERUSER cannot read pg_authid: the snapshot is "the live value".
        let (w, agent, admin, admin_pw) = started_with_a_createrole_admin(pg);
        pg.block_login(&w.user);
        let new_pw = format!("new-{}", random_text(16));
        w.cp.set_pending(&w.secret, "rot_cr", &secret_value(&w.user, &new_pw));
        let error = w.wait_rejected("rot_cr", &agent);
        assert_contains(&error, "verification failed");
        // The rollback re-sets the live value and cannot prove it by logging in: the blocked
        // role may not log in at all. The restore is accepted and said so, never retried
        // forever with every later rotation stuck behind it.
        agent.wait_until(
            SOON,
            "the agent to report the unverifiable rollback",
            || agent.output().contains("the login check is impossible"),
        );
        w.wait_journal_cleared(&agent);
        pg.unblock_login(&w.user);
        assert_eq!(w.cp.live_value(&w.secret), secret_value(&w.user, &w.old_pw));
        assert_password(pg, &w.user, &w.old_pw, &new_pw);
        assert!(
            w.cp.calls(Endpoint::Secret) >= 1,
            "the live value was never read for the rollback"
        );
        w.finish(agent, &[&w.old_pw, &new_pw, &admin_pw]);
        pg.drop_user(&admin);
    }
);

db_test!(
    no_snapshot_at_all_rejects_before_touching_the_database,
    Pg::open(),
    |pg| {
        // A CREATEROLE admin cannot read the stored verifier, and the live value cannot be
        // read either: without a way back, the rotation must not start.
        let (w, agent, admin, admin_pw) = started_with_a_createrole_admin(pg);
        w.cp.inject(Endpoint::Secret, Fault::Status(503), 1000);
        w.cp.set_pending(
            &w.secret,
            "rot_nosnap",
            &secret_value(&w.user, "nosnap-new-pw"),
        );
        let error = w.wait_rejected("rot_nosnap", &agent);
        assert_contains(&error, "snapshot");
        assert_password(pg, &w.user, &w.old_pw, "nosnap-new-pw");
        assert!(!w.journal_exists());
        w.cp.clear_faults();
        w.finish(agent, &[&w.old_pw, "nosnap-new-pw", &admin_pw]);
        pg.drop_user(&admin);
    }
);
