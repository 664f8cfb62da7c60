//! The scenarios every provider must survive, written once against the [`Database`]
//! trait. Most run the real agent binary against the fake control plane and a real
//! database and check the outcome by logging in as the managed user; the timeout ones
//! drive the provider directly. [`shared_scenarios!`] declares them as tests for a
//! provider.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use sikkerkey_agent::providers::{self, FailureKind};
use sikkerkey_agent::secret::Secret;

use crate::support::assertions::{Exit, assert_contains, assert_lacks, assert_took_less_than};
use crate::support::proxy::{BlackHole, TcpProxy};
use crate::support::world::{
    Database, World, assert_no_leak, assert_password, provider_target, secret_value,
};
use crate::support::{AgentProcess, Endpoint, Fault, SOON, random_text};

// ---- the scenarios ----

pub fn rotation_confirmed(db: &dyn Database) {
    let w = World::plain(db);
    let agent = w.start();
    let new_pw = format!("new-{}", random_text(16));
    w.cp.set_pending(&w.secret, "rot_confirm", &secret_value(&w.user, &new_pw));
    w.wait_confirmed("rot_confirm", &agent);
    assert_eq!(w.cp.live_value(&w.secret), secret_value(&w.user, &new_pw));
    assert_password(db, &w.user, &new_pw, &w.old_pw);
    // The agent removes the journal once the confirmation's answer arrives, which can be
    // a moment after the server recorded it.
    w.wait_journal_cleared(&agent);
    w.finish(agent, &[&w.old_pw, &new_pw]);
}

pub fn rotation_pending_before_start(db: &dyn Database) {
    let w = World::plain(db);
    let new_pw = format!("new-{}", random_text(16));
    w.cp.set_pending(&w.secret, "rot_early", &secret_value(&w.user, &new_pw));
    let agent = w.machine.spawn_agent(&w.secret);
    w.wait_confirmed("rot_early", &agent);
    assert_password(db, &w.user, &new_pw, &w.old_pw);
    w.finish(agent, &[&w.old_pw, &new_pw]);
}

/// The database goes away after start-up: the rotation is rejected and nothing changes.
pub fn apply_fails_when_database_unreachable(db: &dyn Database) {
    let w = World::behind_proxy(db);
    let agent = w.start();
    w.proxy().cut();
    let new_pw = format!("new-{}", random_text(16));
    w.cp.set_pending(&w.secret, "rot_unreach", &secret_value(&w.user, &new_pw));
    let error = w.wait_rejected("rot_unreach", &agent);
    assert_contains(&error, "apply failed");
    assert_eq!(w.cp.live_value(&w.secret), secret_value(&w.user, &w.old_pw));
    assert_password(db, &w.user, &w.old_pw, &new_pw);
    // While the database stays away, every heartbeat says so, not just the next one.
    let n = w.cp.heartbeats(&w.secret).len();
    agent.wait_until(SOON, "three heartbeats after the rejection", || {
        w.cp.heartbeats(&w.secret).len() >= n + 3
    });
    let after: Vec<_> = w.cp.heartbeats(&w.secret)[n..]
        .iter()
        .map(|h| h.status.clone())
        .collect();
    assert!(
        after.iter().all(|s| s == "error"),
        "heartbeats while the database is unreachable: {after:?}"
    );
    w.proxy().restore();
    let n = w.cp.heartbeats(&w.secret).len();
    agent.wait_until(SOON, "healthy again once the database is back", || {
        w.cp.heartbeats(&w.secret)
            .get(n..)
            .is_some_and(|hs| hs.iter().any(|h| h.status == "healthy"))
    });
    assert!(!w.journal_exists());
    w.finish(agent, &[&w.old_pw, &new_pw]);
}

/// The new password is set but logging in with it fails: roll back, old works, reject.
pub fn verify_fails_rolls_back(db: &dyn Database) {
    let w = World::plain(db);
    let agent = w.start();
    let new_pw = format!("new-{}", random_text(16));
    let error = w.rotate_with_logins_blocked(&agent, "rot_verify", &new_pw);
    assert_contains(&error, "verification failed");
    assert_eq!(w.cp.live_value(&w.secret), secret_value(&w.user, &w.old_pw));
    assert_password(db, &w.user, &w.old_pw, &new_pw);
    w.finish(agent, &[&w.old_pw, &new_pw]);
}

/// For a provider (or an admin) that cannot restore a stored credential: the rollback
/// sets the live value again and proves it by logging in, so while the user's logins are
/// blocked the rotation is rejected but the journal stays; `while_blocked` checks more
/// at that point. Once logins work again the journal goes, and the old password is back.
/// Leaves the agent running; returns the rejected password.
pub fn rollback_to_the_live_value_waits_for_a_login(
    w: &World,
    agent: &AgentProcess,
    while_blocked: impl FnOnce(),
) -> String {
    w.db.block_login(&w.user);
    let new_pw = format!("new-{}", random_text(16));
    w.cp.set_pending(&w.secret, "rot_live", &secret_value(&w.user, &new_pw));
    let error = w.wait_rejected("rot_live", agent);
    assert_contains(&error, "verification failed");
    agent.wait_until(
        SOON,
        "the agent to report the unverifiable rollback",
        || agent.output().contains("rollback failed"),
    );
    assert!(
        w.journal_exists(),
        "journal cleared before the rollback could be verified"
    );
    while_blocked();
    w.db.unblock_login(&w.user);
    w.wait_journal_cleared(agent);
    assert_eq!(w.cp.live_value(&w.secret), secret_value(&w.user, &w.old_pw));
    assert_password(w.db, &w.user, &w.old_pw, &new_pw);
    assert!(
        w.cp.calls(Endpoint::Secret) >= 1,
        "the live value was never read for the rollback"
    );
    new_pw
}

/// Confirm answers 503 `failures` times; the rotation still ends confirmed and consistent.
pub fn confirm_fails_transiently(db: &dyn Database, failures: usize) {
    let w = World::plain(db);
    let agent = w.start();
    w.cp.inject(Endpoint::Confirm, Fault::Status(503), failures);
    let new_pw = format!("new-{}", random_text(16));
    w.cp.set_pending(&w.secret, "rot_503", &secret_value(&w.user, &new_pw));
    w.wait_confirmed("rot_503", &agent);
    assert!(
        w.cp.calls(Endpoint::Confirm) > failures,
        "the agent did not retry the confirmation"
    );
    w.wait_journal_cleared(&agent);
    assert_password(db, &w.user, &new_pw, &w.old_pw);
    w.finish(agent, &[&w.old_pw, &new_pw]);
}

/// The server promotes the value but the answer is lost on the way back.
pub fn confirm_answer_lost(db: &dyn Database) {
    let w = World::plain(db);
    let agent = w.start();
    w.cp.inject(Endpoint::Confirm, Fault::ProcessThenClose, 1);
    let new_pw = format!("new-{}", random_text(16));
    w.cp.set_pending(&w.secret, "rot_lost", &secret_value(&w.user, &new_pw));
    w.wait_confirmed("rot_lost", &agent);
    w.wait_journal_cleared(&agent);
    assert_eq!(w.cp.live_value(&w.secret), secret_value(&w.user, &new_pw));
    assert_password(db, &w.user, &new_pw, &w.old_pw);
    w.finish(agent, &[&w.old_pw, &new_pw]);
}

/// SIGKILL after apply and before the confirmation lands; the restarted agent finishes.
/// With `server_resets`, the server drops the rotation while the agent is down, so the
/// database must go back to the old (live) password.
pub fn killed_between_apply_and_confirm(db: &dyn Database, server_resets: bool) {
    let w = World::plain(db);
    let new_pw = format!("new-{}", random_text(16));
    kill_after_apply(&w, "rot_kill", &w.user, &new_pw);
    assert_password(db, &w.user, &new_pw, &w.old_pw);
    if server_resets {
        w.cp.clear_pending(&w.secret);
    }
    let agent = w.machine.spawn_agent(&w.secret);
    w.wait_journal_cleared(&agent);
    if server_resets {
        assert_eq!(w.cp.live_value(&w.secret), secret_value(&w.user, &w.old_pw));
        assert_password(db, &w.user, &w.old_pw, &new_pw);
    } else {
        w.wait_confirmed("rot_kill", &agent);
        assert_eq!(w.cp.live_value(&w.secret), secret_value(&w.user, &new_pw));
        assert_password(db, &w.user, &new_pw, &w.old_pw);
    }
    w.finish(agent, &[&w.old_pw, &new_pw]);
}

/// Starts a rotation of `rotated` to `new_pw` whose confirmation never gets through, and
/// kills the agent once the new password is applied and verified (journal: confirming).
/// The pending rotation stays on the server. Returns the journal's snapshot kind
/// (`absent`, `stored` or `liveValue`).
pub fn kill_after_apply(w: &World, rotation: &str, rotated: &str, new_pw: &str) -> String {
    let mut agent = w.start();
    w.cp.inject(Endpoint::Confirm, Fault::Status(503), 100_000);
    w.cp.set_pending(&w.secret, rotation, &secret_value(rotated, new_pw));
    agent.wait_until(SOON, "journal in phase confirming", || {
        w.journal_phase().as_deref() == Some("confirming")
    });
    agent.kill9();
    // Its last confirm may still be on the way: handled (and refused) before faults go.
    w.cp.settle();
    let snapshot = w.journal_snapshot_kind().expect("a readable journal");
    assert_no_leak(
        &agent.output(),
        &[&w.old_pw, new_pw],
        &w.db.admin_password(),
    );
    w.cp.clear_faults();
    snapshot
}

/// [`kill_after_apply`] to a fresh password, after which the server drops the rotation.
fn kill_after_apply_then_server_resets(
    w: &World,
    rotation: &str,
    rotated: &str,
) -> (String, String) {
    let new_pw = format!("new-{}", random_text(16));
    let snapshot = kill_after_apply(w, rotation, rotated, &new_pw);
    w.cp.clear_pending(&w.secret);
    (new_pw, snapshot)
}

/// A rotation of one user is killed before its confirm, the server drops it, and the
/// secret's live value now names another user. The restart puts the rotated (journaled)
/// user back and leaves the other alone. Where the old password can come only from the
/// live value, it refuses, says why in the heartbeat, and settles once the live value
/// names the rotated user again.
pub fn killed_then_live_value_names_another_user(db: &dyn Database) {
    let w = World::plain(db);
    let other = db.plain_name();
    let other_pw = format!("other-{}", random_text(12));
    db.create_user(&other, &other_pw);
    let (new_pw, snapshot) = kill_after_apply_then_server_resets(&w, "rot_moved", &w.user);
    w.cp.with_secret(&w.secret, |s| {
        s.live_value = secret_value(&other, &other_pw);
    });
    let agent = w.machine.spawn_agent(&w.secret);
    if snapshot == "liveValue" {
        agent.wait_until(SOON, "an error heartbeat naming both users", || {
            w.error_heartbeat_says(&format!("now names user \"{other}\""))
        });
        assert!(w.journal_exists(), "the journal went without a settlement");
        assert!(
            db.can_login(&w.user, &new_pw) && !db.can_login(&w.user, &other_pw),
            "the other user's password was put on the rotated user"
        );
        w.cp.with_secret(&w.secret, |s| {
            s.live_value = secret_value(&w.user, &w.old_pw);
        });
    } else {
        assert_eq!(snapshot, "stored");
    }
    w.wait_journal_cleared(&agent);
    assert_password(db, &w.user, &w.old_pw, &new_pw);
    assert!(
        db.can_login(&other, &other_pw),
        "the live value's user was changed"
    );
    w.finish(agent, &[&w.old_pw, &new_pw, &other_pw]);
    db.drop_user(&other);
}

/// A rotation that creates a user is killed before its confirm and the server drops it.
/// The restart drops the user it created, unless the live value logs in as that user by
/// then (here: someone recreated it by hand and made it the live user).
pub fn created_user_is_dropped_unless_the_live_value_uses_it(db: &dyn Database) {
    let w = World::plain(db);
    // Abandoned: the live value still names the world's user, so the created one goes.
    let abandoned = db.plain_name();
    let (abandoned_pw, snapshot) =
        kill_after_apply_then_server_resets(&w, "rot_abandoned", &abandoned);
    assert_eq!(snapshot, "absent");
    let agent = w.machine.spawn_agent(&w.secret);
    w.wait_journal_cleared(&agent);
    assert!(
        !db.can_login(&abandoned, &abandoned_pw),
        "the abandoned user still logs in"
    );
    assert_password(db, &w.user, &w.old_pw, &abandoned_pw);
    w.finish(agent, &[&w.old_pw, &abandoned_pw]);

    // Taken over: recreated by hand with a password of its own, and made the live user.
    let taken = db.plain_name();
    let (created_pw, _) = kill_after_apply_then_server_resets(&w, "rot_taken", &taken);
    let takeover_pw = format!("takeover-{}", random_text(12));
    db.drop_user(&taken);
    db.create_user(&taken, &takeover_pw);
    w.cp.with_secret(&w.secret, |s| {
        s.live_value = secret_value(&taken, &takeover_pw);
    });
    let mut agent = w.machine.spawn_agent(&w.secret);
    w.wait_journal_cleared(&agent);
    // The warning is written before the journal goes, but the test reads the agent's pipe on
    // its own thread: wait for the line rather than assume it has been read already.
    agent.wait_for_output(&format!("not dropping \"{taken}\""), SOON);
    assert_password(db, &taken, &takeover_pw, &created_pw);
    w.finish(agent, &[&w.old_pw, &created_pw, &takeover_pw]);
    db.drop_user(&taken);
}

/// A hostile user name gets exactly the hostile password; a bystander is untouched.
pub fn hostile_name_and_password(db: &dyn Database) {
    let bystander = db.plain_name();
    let bystander_pw = format!("by-{}", random_text(12));
    db.create_user(&bystander, &bystander_pw);
    let user = db.hostile_name();
    let old_pw = format!("o'ld\"\\${}ø", random_text(8));
    let w = World::new(db, user, old_pw, false);
    let agent = w.start();
    let new_pw = format!("n'; DROP USER x; --\"\\$`{}æøå€", random_text(8));
    w.cp.set_pending(&w.secret, "rot_hostile", &secret_value(&w.user, &new_pw));
    w.wait_confirmed("rot_hostile", &agent);
    assert_password(db, &w.user, &new_pw, &w.old_pw);
    assert!(
        db.can_login(&bystander, &bystander_pw),
        "a bystander user was changed"
    );
    w.finish(agent, &[&w.old_pw, &new_pw]);
    db.drop_user(&bystander);
}

/// A pending value that is not usable is rejected with a clear error; the database is untouched.
pub fn unusable_pending_value_is_rejected(db: &dyn Database) {
    let w = World::plain(db);
    let agent = w.start();
    w.cp.set_pending(&w.secret, "rot_bad", "{\"username\": \"x\", \"pass\": ");
    let error = w.wait_rejected("rot_bad", &agent);
    assert_contains(&error, "password");
    assert_password(db, &w.user, &w.old_pw, "{\"username\": \"x\", \"pass\": ");
    assert!(!w.journal_exists());
    w.finish(agent, &[&w.old_pw]);
}

/// The admin can log in but may not manage users: the agent exits at start-up with
/// [`Exit::Database`], naming what is missing in its output and in an error heartbeat.
pub fn admin_lacks_privileges(db: &dyn Database) {
    let admin = db.weak_admin();
    let w = World::plain(db);
    w.use_admin(&admin.user, &admin.password);
    let mut agent = w.machine.spawn_agent(&w.secret);
    agent.expect_exit(Exit::Database);
    assert_contains(&agent.output(), admin.output_names);
    assert!(
        w.error_heartbeat_says(admin.heartbeat_names),
        "no error heartbeat names {:?}: {:?}",
        admin.heartbeat_names,
        w.cp.heartbeats(&w.secret)
    );
    assert_no_leak(
        &agent.output(),
        &[&admin.password, &w.old_pw],
        &db.admin_password(),
    );
    db.drop_admin(&admin.user);
}

/// The provider driven directly against a server that accepts connections and never
/// answers: connecting fails within the timeouts, and the error holds no password.
pub fn silent_server_is_an_error_within_the_timeout(db: &dyn Database) {
    let hole = BlackHole::start();
    let timeout = Duration::from_secs(1);
    let target = provider_target(db, "127.0.0.1", hole.port(), timeout);
    let started = Instant::now();
    let err = providers::open(&target)
        .err()
        .expect("connecting to a silent server must fail");
    assert_took_less_than(started, 2 * timeout + Duration::from_secs(3));
    assert!(
        matches!(err.kind, FailureKind::Timeout | FailureKind::Unreachable),
        "{err}"
    );
    assert_lacks(&err.to_string(), &db.admin_password());
}

/// The provider driven directly; the server stops answering after the connection is up:
/// changing a password is a timeout and a login check an error, each within the
/// timeouts, and the password stays the old one.
pub fn server_that_hangs_mid_session_is_an_error_within_the_timeout(db: &dyn Database) {
    let user = db.plain_name();
    db.create_user(&user, "hang-old");
    let (host, port) = db.endpoint();
    let relay = TcpProxy::start(&format!("{host}:{port}"));
    let timeout = Duration::from_secs(2);
    let target = provider_target(db, "127.0.0.1", relay.port(), timeout);
    let mut p = providers::open(&target).unwrap_or_else(|e| panic!("connecting: {e}"));
    relay.freeze();
    let limit = 2 * timeout + Duration::from_secs(11);
    let started = Instant::now();
    let err = p.set_password(&user, &Secret::new("hang-new")).unwrap_err();
    assert_took_less_than(started, limit);
    assert_eq!(err.kind, FailureKind::Timeout, "{err}");
    let started = Instant::now();
    let err = p.verify_login(&user, &Secret::new("hang-old")).unwrap_err();
    assert_took_less_than(started, limit);
    assert!(
        matches!(err.kind, FailureKind::Timeout | FailureKind::Unreachable),
        "{err}"
    );
    drop(relay);
    assert_password(db, &user, "hang-old", "hang-new");
    db.drop_user(&user);
}

/// Declares every shared agent scenario as a test for the database `$open` gives
/// (`Pg::open()`, ...), so adding a scenario here runs it for every provider.
/// `shared_scenarios!(open, verify_fails_rolls_back)` adds the plain rollback scenario, for
/// the providers that restore a stored credential (MongoDB proves its rollback otherwise);
/// the timeout scenarios have [`timeout_scenarios!`] of their own.
/// Unused in a build without any provider feature.
#[allow(unused_macros)]
macro_rules! shared_scenarios {
    ($open:expr, verify_fails_rolls_back) => {
        $crate::scenarios::shared_scenarios!($open);
        $crate::support::db::db_test!(verify_fails_rolls_back, $open, |db| {
            $crate::scenarios::verify_fails_rolls_back(db)
        });
    };
    ($open:expr) => {
        $crate::support::db::db_test!(rotation_confirmed, $open, |db| {
            $crate::scenarios::rotation_confirmed(db)
        });
        $crate::support::db::db_test!(rotation_pending_before_start, $open, |db| {
            $crate::scenarios::rotation_pending_before_start(db)
        });
        $crate::support::db::db_test!(apply_fails_when_database_unreachable, $open, |db| {
            $crate::scenarios::apply_fails_when_database_unreachable(db)
        });
        $crate::support::db::db_test!(confirm_503_twice, $open, |db| {
            $crate::scenarios::confirm_fails_transiently(db, 2)
        });
        $crate::support::db::db_test!(confirm_503_beyond_in_job_retries, $open, |db| {
            $crate::scenarios::confirm_fails_transiently(db, 5)
        });
        $crate::support::db::db_test!(confirm_answer_lost, $open, |db| {
            $crate::scenarios::confirm_answer_lost(db)
        });
        $crate::support::db::db_test!(killed_between_apply_and_confirm, $open, |db| {
            $crate::scenarios::killed_between_apply_and_confirm(db, false)
        });
        $crate::support::db::db_test!(killed_then_server_resets_rotation, $open, |db| {
            $crate::scenarios::killed_between_apply_and_confirm(db, true)
        });
        $crate::support::db::db_test!(killed_then_live_value_names_another_user, $open, |db| {
            $crate::scenarios::killed_then_live_value_names_another_user(db)
        });
        $crate::support::db::db_test!(
            created_user_is_dropped_unless_the_live_value_uses_it,
            $open,
            |db| $crate::scenarios::created_user_is_dropped_unless_the_live_value_uses_it(db)
        );
        $crate::support::db::db_test!(hostile_name_and_password, $open, |db| {
            $crate::scenarios::hostile_name_and_password(db)
        });
        $crate::support::db::db_test!(unusable_pending_value_is_rejected, $open, |db| {
            $crate::scenarios::unusable_pending_value_is_rejected(db)
        });
        $crate::support::db::db_test!(admin_lacks_privileges, $open, |db| {
            $crate::scenarios::admin_lacks_privileges(db)
        });
        $crate::support::db::db_test!(drift_a_dropped_user_is_recreated, $open, |db| {
            $crate::drift::a_dropped_user_is_recreated(db)
        });
    };
}
#[allow(unused_imports)]
pub(crate) use shared_scenarios;

/// Declares the timeout scenarios (a silent server; one that hangs mid-session) for the
/// providers whose driver bounds them by itself; for PostgreSQL the agent's job deadline
/// does (see lifecycle.rs).
#[allow(unused_macros)]
macro_rules! timeout_scenarios {
    ($open:expr) => {
        $crate::support::db::db_test!(
            a_silent_server_is_an_error_within_the_timeout,
            $open,
            |db| { $crate::scenarios::silent_server_is_an_error_within_the_timeout(db) }
        );
        $crate::support::db::db_test!(
            a_server_that_hangs_mid_session_is_an_error_within_the_timeout,
            $open,
            |db| $crate::scenarios::server_that_hangs_mid_session_is_an_error_within_the_timeout(
                db
            )
        );
    };
}
#[allow(unused_imports)]
pub(crate) use timeout_scenarios;
