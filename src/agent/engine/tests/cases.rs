//! What the table cannot show: a user the rotation created (the one `restore_snapshot`,
//! in the rollback, the settlement and the undo), a live value that names another user,
//! a snapshot taken from the live value, acknowledgement retries, stale poll answers, and
//! when the status board says healthy again.

use std::time::Instant;

use crate::agent::journal::{JournalEntry, Loaded, Phase, Snapshot};
use crate::agent::status::Outcome;
use crate::api::HeartbeatStatus;
use crate::secret::Secret;

use super::fakes::{Answers, Fault};
use super::{NEW, OLD, ROTATION, Rig, SECRET, USER, sync, value};

/// A user the rotation creates.
const FRESH: &str = "fresh";

fn journal_entry(user: &str, snapshot: Snapshot, applied: &str, phase: Phase) -> JournalEntry {
    let mut e = JournalEntry::new(SECRET, ROTATION, user, snapshot, &Secret::new(applied));
    e.phase = phase;
    e
}

fn phase(rig: &Rig) -> Option<Phase> {
    match rig.journal.load_for(SECRET).unwrap() {
        Loaded::Entry(e) => Some(e.phase),
        _ => None,
    }
}

#[test]
fn a_rollback_drops_the_user_it_created() {
    // Every login refused: the new user cannot be verified, so the rotation rolls back.
    let mut rig = Rig::new(
        Answers::Normally,
        &value(USER, OLD),
        Fault::Verify,
        &[(USER, OLD)],
    );
    let mut pending = sync(None);
    pending.pending_rotation_id = Some(ROTATION.into());
    pending.pending_value = Some(Secret::new(value(FRESH, NEW)));
    let outcome = rig.engine.handle_sync(&pending, Instant::now());
    assert_eq!(outcome, Some(Outcome::Rejected));
    assert_eq!(rig.db.password(FRESH), None, "the created user stays");
    assert_eq!(rig.db.password(USER).as_deref(), Some(OLD));
    assert_eq!(phase(&rig), None);
    // The live value was read to see whether it logs in as the created user.
    assert_eq!(rig.server.calls(), "live reject");
}

#[test]
fn a_created_user_the_live_value_logs_in_as_is_kept() {
    // Someone made the created user the live one meanwhile, with a password of their own.
    let adopted = "adopted-pw-4";
    let mut rig = Rig::new(
        Answers::Normally,
        &value(FRESH, adopted),
        Fault::None,
        &[(USER, OLD), (FRESH, adopted)],
    );
    let mut e = journal_entry(FRESH, Snapshot::Absent, NEW, Phase::Applying);
    rig.journal.save(&mut e).unwrap();
    let outcome = rig.engine.handle_sync(&sync(None), Instant::now());
    assert_eq!(outcome, Some(Outcome::Reconciled));
    assert_eq!(rig.db.password(FRESH).as_deref(), Some(adopted));
    assert_eq!(phase(&rig), None);
}

#[test]
fn the_undo_drops_a_created_user_only_when_the_live_value_can_be_read() {
    // 404 on everything: whether an app logs in as the user cannot be known, so it stays,
    // and so does the journal, for a human.
    let mut rig = Rig::new(
        Answers::Gone,
        &value(USER, OLD),
        Fault::None,
        &[(USER, OLD), (FRESH, NEW)],
    );
    let mut e = journal_entry(FRESH, Snapshot::Absent, NEW, Phase::Confirming);
    rig.journal.save(&mut e).unwrap();
    rig.engine.undo_unconfirmed();
    assert_eq!(rig.db.password(FRESH).as_deref(), Some(NEW));
    assert_eq!(phase(&rig), Some(Phase::Confirming));
    assert_eq!(rig.server.calls(), "live");

    // The poll's 404 while the live value can still be read (and names another user):
    // the user is the rotation's own leftover, and goes.
    let mut rig = Rig::new(
        Answers::Normally,
        &value(USER, OLD),
        Fault::None,
        &[(USER, OLD), (FRESH, NEW)],
    );
    rig.journal.save(&mut e).unwrap();
    rig.engine.undo_unconfirmed();
    assert_eq!(rig.db.password(FRESH), None);
    assert_eq!(phase(&rig), None);
    assert_eq!(rig.server.calls(), "live");
}

#[test]
fn a_live_value_naming_another_user_is_never_put_on_the_rotated_one() {
    let other = "other";
    let mut rig = Rig::new(
        Answers::Normally,
        &value(other, OLD),
        Fault::None,
        &[(USER, NEW), (other, OLD)],
    );
    let mut e = journal_entry(USER, Snapshot::LiveValue, NEW, Phase::Applying);
    rig.journal.save(&mut e).unwrap();
    assert_eq!(rig.engine.handle_sync(&sync(None), Instant::now()), None);
    assert_eq!(rig.db.password(USER).as_deref(), Some(NEW));
    assert_eq!(phase(&rig), Some(Phase::Applying));
    match rig.board.health() {
        HeartbeatStatus::Error(m) => assert!(m.contains("will not put"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_stored_form_the_admin_cannot_read_is_rolled_back_from_the_live_value() {
    let mut rig = Rig::new(
        Answers::Normally,
        &value(USER, OLD),
        Fault::Verify,
        &[(USER, OLD)],
    );
    rig.db.hide_stored();
    let outcome = rig.engine.handle_sync(&sync(Some(NEW)), Instant::now());
    assert_eq!(outcome, Some(Outcome::Rejected));
    assert_eq!(rig.db.password(USER).as_deref(), Some(OLD));
    assert_eq!(phase(&rig), None);
    // Read once to be sure it can be used at all, once to restore it.
    assert_eq!(rig.server.calls(), "live live reject");

    // The undo of such a rotation needs the live value; without it the journal stays.
    let mut rig = Rig::new(
        Answers::Gone,
        &value(USER, OLD),
        Fault::None,
        &[(USER, NEW)],
    );
    let mut e = journal_entry(USER, Snapshot::LiveValue, NEW, Phase::Confirming);
    rig.journal.save(&mut e).unwrap();
    rig.engine.undo_unconfirmed();
    assert_eq!(rig.db.password(USER).as_deref(), Some(NEW));
    assert_eq!(phase(&rig), Some(Phase::Confirming));
}

#[test]
fn a_confirm_answered_503_twice_goes_through_on_the_third_attempt() {
    let mut rig = Rig::new(
        Answers::Normally,
        &value(USER, OLD),
        Fault::None,
        &[(USER, OLD)],
    );
    rig.server.down_for(2);
    let outcome = rig.engine.handle_sync(&sync(Some(NEW)), Instant::now());
    assert_eq!(outcome, Some(Outcome::Confirmed));
    assert_eq!(rig.server.calls(), "confirm confirm confirm");
    assert_eq!(phase(&rig), None);
}

#[test]
fn a_stop_ends_the_acknowledgement_retries_at_once() {
    let mut rig = Rig::new(
        Answers::Down,
        &value(USER, OLD),
        Fault::None,
        &[(USER, OLD)],
    );
    rig.shutdown
        .request(crate::agent::shutdown::StopReason::Signal);
    let outcome = rig.engine.handle_sync(&sync(Some(NEW)), Instant::now());
    assert_eq!(outcome, Some(Outcome::AwaitingAck));
    assert_eq!(rig.server.calls(), "confirm");
    assert_eq!(phase(&rig), Some(Phase::Confirming));
}

#[test]
fn a_poll_answer_older_than_the_confirmation_does_not_start_the_rotation_again() {
    let mut rig = Rig::new(
        Answers::Normally,
        &value(USER, OLD),
        Fault::None,
        &[(USER, OLD)],
    );
    let before = Instant::now();
    let outcome = rig.engine.handle_sync(&sync(Some(NEW)), before);
    assert_eq!(outcome, Some(Outcome::Confirmed));
    // Fetched before the confirmation: not news.
    assert_eq!(rig.engine.handle_sync(&sync(Some(NEW)), before), None);
    assert_eq!(rig.server.calls(), "confirm");
    // Fetched after it: the server offers the rotation again, and it runs again.
    let outcome = rig.engine.handle_sync(&sync(Some(NEW)), Instant::now());
    assert_eq!(outcome, Some(Outcome::Confirmed));
    assert_eq!(rig.server.calls(), "confirm confirm");
}

#[test]
fn a_failure_is_reported_until_a_later_job_and_a_database_check_pass() {
    let mut rig = Rig::new(
        Answers::Normally,
        &value(USER, OLD),
        Fault::Verify,
        &[(USER, OLD)],
    );
    let outcome = rig.engine.handle_sync(&sync(Some(NEW)), Instant::now());
    assert_eq!(outcome, Some(Outcome::Rejected));
    assert!(matches!(rig.board.health(), HeartbeatStatus::Error(m) if m.contains("rejected")));
    let state = rig.board.state();
    let last = state.last_rotation.unwrap();
    assert_eq!(
        (last.outcome, last.rotation_id.as_str()),
        (Outcome::Rejected, ROTATION)
    );
    assert_eq!(state.rotations[&Outcome::Rejected], 1);
    // An idle job with the drift check off: the database check passes, so healthy again.
    rig.engine.drift = super::super::drift_watch::DriftWatch::new(
        super::super::DriftPolicy {
            interval: None,
            ..Default::default()
        },
        Instant::now(),
    );
    assert_eq!(rig.engine.handle_sync(&sync(None), Instant::now()), None);
    assert_eq!(rig.board.health(), HeartbeatStatus::Healthy);
}
