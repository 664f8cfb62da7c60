//! Every journal phase × every server answer × every database outcome, and the end state
//! each must reach: the database password, the journal (gone, or its phase), the calls the
//! server received, and the job's outcome. One row per combination: 7 × 5 × 5 = 175.
//!
//! The starting points:
//! - journal (`Journaled`): none (the database on the old password); a rotation of
//!   `rot_1` to the new password journaled in phase applying, confirming, rejecting, or
//!   rejecting with the rejection already acknowledged (all with the new password in the
//!   database and the old one's stored form as the snapshot); a journal that is not JSON
//!   (new password in the database); a drift repair cut short (the database on a drifted
//!   password, the repair setting the old, live one);
//! - server (`Server`): `rot_1` still pending (live value old); no longer pending and
//!   promoted (live value new); no longer pending and kept (live value old); 404 on every
//!   call (the poll's 404 makes the worker run the undo, not a sync job); 503 on every
//!   call after a poll that showed `rot_1` pending;
//! - database (`Fault`): fine; setting a password fails; every login refused (NOLOGIN);
//!   restoring a stored form or dropping a user fails; unreachable.
//!
//! Calls are one word each, in order: `live`, `confirm`, `reject`, `heartbeat:<status>`;
//! a confirm or reject answered 503 is sent three times.

use std::time::Instant;

use crate::agent::journal::{JournalEntry, Loaded, Phase, Snapshot};
use crate::agent::status::Outcome;
use crate::secret::Secret;

use super::super::DRIFT_REPAIR_ID;
use super::fakes::{Answers, Fault};
use super::{NEW, OLD, ROTATION, Rig, SECRET, USER, WRONG, sync, target, value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Journaled {
    Nothing,
    Applying,
    Confirming,
    Rejecting,
    /// Phase rejecting, and the server acknowledged the rejection.
    Rejected,
    Damaged,
    DriftRepair,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    Pending,
    Promoted,
    KeptOld,
    Gone,
    Down,
}

use Fault::{Apply as AF, None as Ok_, Restore as RF, Unreachable as UR, Verify as VF};
use Journaled::{
    Applying as Ap, Confirming as Cf, Damaged as Dm, DriftRepair as Dr, Nothing as No,
    Rejected as Rd, Rejecting as Rj,
};
use Server::{Down as D5, Gone as G4, KeptOld as Kept, Pending as Pend, Promoted as Prom};

const C: Option<Outcome> = Some(Outcome::Confirmed);
const R: Option<Outcome> = Some(Outcome::Rejected);
const RC: Option<Outcome> = Some(Outcome::Reconciled);
const AA: Option<Outcome> = Some(Outcome::AwaitingAck);
const X: Option<Outcome> = None;

/// The journal afterwards: `-` (none), a phase, `rejected` (rejecting, acknowledged),
/// `damaged`.
type Row = (
    Journaled,
    Server,
    Fault,
    &'static str,
    &'static str,
    &'static str,
    Option<Outcome>,
);

const C3: &str = "confirm confirm confirm";
const R3: &str = "reject reject reject";
const HB: &str = "live heartbeat:error";

#[rustfmt::skip]
const TABLE: [Row; 175] = [
    // journal  server db     password journal       calls                     outcome
    // Nothing journaled: a pending rotation runs; idle, the drift check runs.
    (No, Pend, Ok_, NEW,   "-",          "confirm",                 C),
    (No, Pend, AF,  OLD,   "-",          "reject",                  R),
    (No, Pend, VF,  OLD,   "-",          "reject",                  R),
    (No, Pend, RF,  NEW,   "-",          "confirm",                 C),
    (No, Pend, UR,  OLD,   "-",          "reject",                  R),
    (No, Prom, Ok_, NEW,   "-",          HB,                        X), // drift: repaired
    (No, Prom, AF,  OLD,   "-",          "live heartbeat:error heartbeat:error", X), // repair failed
    (No, Prom, VF,  OLD,   "-",          HB,                        X), // not the password
    (No, Prom, RF,  NEW,   "-",          HB,                        X),
    (No, Prom, UR,  OLD,   "-",          "live",                    X),
    (No, Kept, Ok_, OLD,   "-",          "live",                    X),
    (No, Kept, AF,  OLD,   "-",          "live",                    X),
    (No, Kept, VF,  OLD,   "-",          HB,                        X),
    (No, Kept, RF,  OLD,   "-",          "live",                    X),
    (No, Kept, UR,  OLD,   "-",          "live",                    X),
    (No, G4,   Ok_, OLD,   "-",          "",                        X),
    (No, G4,   AF,  OLD,   "-",          "",                        X),
    (No, G4,   VF,  OLD,   "-",          "",                        X),
    (No, G4,   RF,  OLD,   "-",          "",                        X),
    (No, G4,   UR,  OLD,   "-",          "",                        X),
    (No, D5,   Ok_, NEW,   "confirming", C3,                        AA),
    (No, D5,   AF,  OLD,   "rejecting",  R3,                        X),
    (No, D5,   VF,  OLD,   "rejecting",  R3,                        X),
    (No, D5,   RF,  NEW,   "confirming", C3,                        AA),
    (No, D5,   UR,  OLD,   "-",          R3,                        X),
    // Applying: still pending resumes the rotation; else settle on the live value.
    (Ap, Pend, Ok_, NEW,   "-",          "confirm",                 C),
    (Ap, Pend, AF,  OLD,   "-",          "reject",                  R),
    (Ap, Pend, VF,  OLD,   "-",          "reject",                  R),
    (Ap, Pend, RF,  NEW,   "-",          "confirm",                 C),
    (Ap, Pend, UR,  NEW,   "applying",   "",                        X),
    (Ap, Prom, Ok_, NEW,   "-",          "live",                    C),
    (Ap, Prom, AF,  NEW,   "-",          "live",                    C),
    (Ap, Prom, VF,  NEW,   "-",          "live",                    C), // login impossible
    (Ap, Prom, RF,  NEW,   "-",          "live",                    C),
    (Ap, Prom, UR,  NEW,   "applying",   "",                        X),
    (Ap, Kept, Ok_, OLD,   "-",          "live",                    RC),
    (Ap, Kept, AF,  NEW,   "applying",   "live",                    X),
    (Ap, Kept, VF,  OLD,   "-",          "live",                    RC),
    (Ap, Kept, RF,  OLD,   "-",          "live",                    RC),
    (Ap, Kept, UR,  NEW,   "applying",   "",                        X),
    (Ap, G4,   Ok_, OLD,   "-",          "",                        X), // undone
    (Ap, G4,   AF,  OLD,   "-",          "",                        X),
    (Ap, G4,   VF,  OLD,   "-",          "",                        X),
    (Ap, G4,   RF,  NEW,   "applying",   "",                        X),
    (Ap, G4,   UR,  NEW,   "applying",   "",                        X),
    (Ap, D5,   Ok_, NEW,   "confirming", C3,                        AA),
    (Ap, D5,   AF,  OLD,   "rejecting",  R3,                        X),
    (Ap, D5,   VF,  OLD,   "rejecting",  R3,                        X),
    (Ap, D5,   RF,  NEW,   "confirming", C3,                        AA),
    (Ap, D5,   UR,  NEW,   "applying",   "",                        X),
    // Confirming: a login with the pending value decides between confirm and re-apply.
    (Cf, Pend, Ok_, NEW,   "-",          "confirm",                 C),
    (Cf, Pend, AF,  NEW,   "-",          "confirm",                 C),
    (Cf, Pend, VF,  OLD,   "-",          "reject",                  R),
    (Cf, Pend, RF,  NEW,   "-",          "confirm",                 C),
    (Cf, Pend, UR,  NEW,   "confirming", "",                        X),
    (Cf, Prom, Ok_, NEW,   "-",          "live",                    C),
    (Cf, Prom, AF,  NEW,   "-",          "live",                    C),
    (Cf, Prom, VF,  NEW,   "-",          "live",                    C),
    (Cf, Prom, RF,  NEW,   "-",          "live",                    C),
    (Cf, Prom, UR,  NEW,   "confirming", "",                        X),
    (Cf, Kept, Ok_, OLD,   "-",          "live",                    RC),
    (Cf, Kept, AF,  NEW,   "confirming", "live",                    X),
    (Cf, Kept, VF,  OLD,   "-",          "live",                    RC),
    (Cf, Kept, RF,  OLD,   "-",          "live",                    RC),
    (Cf, Kept, UR,  NEW,   "confirming", "",                        X),
    (Cf, G4,   Ok_, OLD,   "-",          "",                        X),
    (Cf, G4,   AF,  OLD,   "-",          "",                        X),
    (Cf, G4,   VF,  OLD,   "-",          "",                        X),
    (Cf, G4,   RF,  NEW,   "confirming", "",                        X),
    (Cf, G4,   UR,  NEW,   "confirming", "",                        X),
    (Cf, D5,   Ok_, NEW,   "confirming", C3,                        AA),
    (Cf, D5,   AF,  NEW,   "confirming", C3,                        AA),
    (Cf, D5,   VF,  OLD,   "rejecting",  R3,                        X),
    (Cf, D5,   RF,  NEW,   "confirming", C3,                        AA),
    (Cf, D5,   UR,  NEW,   "confirming", "",                        X),
    // Rejecting: restore, then tell the server once.
    (Rj, Pend, Ok_, OLD,   "-",          "reject",                  R),
    (Rj, Pend, AF,  OLD,   "-",          "reject",                  R),
    (Rj, Pend, VF,  OLD,   "-",          "reject",                  R),
    (Rj, Pend, RF,  NEW,   "rejected",   "reject",                  X), // restore retried
    (Rj, Pend, UR,  NEW,   "rejecting",  "",                        X),
    (Rj, Prom, Ok_, NEW,   "-",          "live",                    C),
    (Rj, Prom, AF,  NEW,   "-",          "live",                    C),
    (Rj, Prom, VF,  NEW,   "-",          "live",                    C),
    (Rj, Prom, RF,  NEW,   "-",          "live",                    C),
    (Rj, Prom, UR,  NEW,   "rejecting",  "",                        X),
    (Rj, Kept, Ok_, OLD,   "-",          "live",                    RC),
    (Rj, Kept, AF,  NEW,   "rejecting",  "live",                    X),
    (Rj, Kept, VF,  OLD,   "-",          "live",                    RC),
    (Rj, Kept, RF,  OLD,   "-",          "live",                    RC),
    (Rj, Kept, UR,  NEW,   "rejecting",  "",                        X),
    (Rj, G4,   Ok_, OLD,   "-",          "",                        X),
    (Rj, G4,   AF,  OLD,   "-",          "",                        X),
    (Rj, G4,   VF,  OLD,   "-",          "",                        X),
    (Rj, G4,   RF,  NEW,   "rejecting",  "",                        X),
    (Rj, G4,   UR,  NEW,   "rejecting",  "",                        X),
    (Rj, D5,   Ok_, OLD,   "rejecting",  R3,                        X),
    (Rj, D5,   AF,  OLD,   "rejecting",  R3,                        X),
    (Rj, D5,   VF,  OLD,   "rejecting",  R3,                        X),
    (Rj, D5,   RF,  NEW,   "rejecting",  R3,                        X),
    (Rj, D5,   UR,  NEW,   "rejecting",  "",                        X),
    // Rejected, not cleared: the server has heard; only the database is left to settle.
    // A rotation the server still shows pending then runs afresh.
    (Rd, Pend, Ok_, NEW,   "-",          "live confirm",            C),
    (Rd, Pend, AF,  NEW,   "rejected",   "live",                    X),
    (Rd, Pend, VF,  OLD,   "-",          "live reject",             R),
    (Rd, Pend, RF,  NEW,   "-",          "live confirm",            C),
    (Rd, Pend, UR,  NEW,   "rejected",   "",                        X),
    (Rd, Prom, Ok_, NEW,   "-",          "live",                    C),
    (Rd, Prom, AF,  NEW,   "-",          "live",                    C),
    (Rd, Prom, VF,  NEW,   "-",          "live",                    C),
    (Rd, Prom, RF,  NEW,   "-",          "live",                    C),
    (Rd, Prom, UR,  NEW,   "rejected",   "",                        X),
    (Rd, Kept, Ok_, OLD,   "-",          "live",                    RC),
    (Rd, Kept, AF,  NEW,   "rejected",   "live",                    X),
    (Rd, Kept, VF,  OLD,   "-",          "live",                    RC),
    (Rd, Kept, RF,  OLD,   "-",          "live",                    RC),
    (Rd, Kept, UR,  NEW,   "rejected",   "",                        X),
    (Rd, G4,   Ok_, OLD,   "-",          "",                        X),
    (Rd, G4,   AF,  OLD,   "-",          "",                        X),
    (Rd, G4,   VF,  OLD,   "-",          "",                        X),
    (Rd, G4,   RF,  NEW,   "rejected",   "",                        X),
    (Rd, G4,   UR,  NEW,   "rejected",   "",                        X),
    (Rd, D5,   Ok_, NEW,   "rejected",   "live",                    X),
    (Rd, D5,   AF,  NEW,   "rejected",   "live",                    X),
    (Rd, D5,   VF,  NEW,   "rejected",   "live",                    X),
    (Rd, D5,   RF,  NEW,   "rejected",   "live",                    X),
    (Rd, D5,   UR,  NEW,   "rejected",   "",                        X),
    // Damaged: the live value logs in first, then the file is set aside.
    (Dm, Pend, Ok_, NEW,   "-",          "live confirm",            C),
    (Dm, Pend, AF,  NEW,   "damaged",    "live",                    X),
    (Dm, Pend, VF,  OLD,   "-",          "live reject",             R),
    (Dm, Pend, RF,  NEW,   "-",          "live confirm",            C),
    (Dm, Pend, UR,  NEW,   "damaged",    "live",                    X),
    (Dm, Prom, Ok_, NEW,   "-",          "live live",               X),
    (Dm, Prom, AF,  NEW,   "-",          "live live",               X),
    (Dm, Prom, VF,  NEW,   "-",          "live live heartbeat:error", X),
    (Dm, Prom, RF,  NEW,   "-",          "live live",               X),
    (Dm, Prom, UR,  NEW,   "damaged",    "live",                    X),
    (Dm, Kept, Ok_, OLD,   "-",          "live live",               X),
    (Dm, Kept, AF,  NEW,   "damaged",    "live",                    X),
    (Dm, Kept, VF,  OLD,   "-",          "live live heartbeat:error", X),
    (Dm, Kept, RF,  OLD,   "-",          "live live",               X),
    (Dm, Kept, UR,  NEW,   "damaged",    "live",                    X),
    (Dm, G4,   Ok_, NEW,   "damaged",    "",                        X),
    (Dm, G4,   AF,  NEW,   "damaged",    "",                        X),
    (Dm, G4,   VF,  NEW,   "damaged",    "",                        X),
    (Dm, G4,   RF,  NEW,   "damaged",    "",                        X),
    (Dm, G4,   UR,  NEW,   "damaged",    "",                        X),
    (Dm, D5,   Ok_, NEW,   "damaged",    "live",                    X),
    (Dm, D5,   AF,  NEW,   "damaged",    "live",                    X),
    (Dm, D5,   VF,  NEW,   "damaged",    "live",                    X),
    (Dm, D5,   RF,  NEW,   "damaged",    "live",                    X),
    (Dm, D5,   UR,  NEW,   "damaged",    "live",                    X),
    // A drift repair cut short: settled on the live value (never recorded as a rotation).
    (Dr, Pend, Ok_, NEW,   "-",          "live confirm",            C),
    (Dr, Pend, AF,  WRONG, "applying",   "live",                    X),
    (Dr, Pend, VF,  OLD,   "-",          "live reject",             R),
    (Dr, Pend, RF,  NEW,   "-",          "live confirm",            C),
    (Dr, Pend, UR,  WRONG, "applying",   "",                        X),
    (Dr, Prom, Ok_, NEW,   "-",          "live",                    RC),
    (Dr, Prom, AF,  WRONG, "applying",   "live",                    X),
    (Dr, Prom, VF,  NEW,   "-",          "live",                    RC),
    (Dr, Prom, RF,  NEW,   "-",          "live",                    RC),
    (Dr, Prom, UR,  WRONG, "applying",   "",                        X),
    (Dr, Kept, Ok_, OLD,   "-",          "live",                    C),
    (Dr, Kept, AF,  WRONG, "applying",   "live",                    X),
    (Dr, Kept, VF,  OLD,   "-",          "live",                    C),
    (Dr, Kept, RF,  OLD,   "-",          "live",                    C),
    (Dr, Kept, UR,  WRONG, "applying",   "",                        X),
    (Dr, G4,   Ok_, WRONG, "applying",   "",                        X), // a repair is not undone
    (Dr, G4,   AF,  WRONG, "applying",   "",                        X),
    (Dr, G4,   VF,  WRONG, "applying",   "",                        X),
    (Dr, G4,   RF,  WRONG, "applying",   "",                        X),
    (Dr, G4,   UR,  WRONG, "applying",   "",                        X),
    (Dr, D5,   Ok_, WRONG, "applying",   "live",                    X),
    (Dr, D5,   AF,  WRONG, "applying",   "live",                    X),
    (Dr, D5,   VF,  WRONG, "applying",   "live",                    X),
    (Dr, D5,   RF,  WRONG, "applying",   "live",                    X),
    (Dr, D5,   UR,  WRONG, "applying",   "",                        X),
];

/// The rig for one row, its journal seeded.
fn rig(journaled: Journaled, server: Server, fault: Fault) -> Rig {
    let (answers, live) = match server {
        Server::Pending | Server::KeptOld => (Answers::Normally, OLD),
        Server::Promoted => (Answers::Normally, NEW),
        Server::Gone => (Answers::Gone, OLD),
        Server::Down => (Answers::Down, OLD),
    };
    let in_db = match journaled {
        Journaled::Nothing => OLD,
        Journaled::DriftRepair => WRONG,
        _ => NEW,
    };
    let rig = Rig::new(answers, &value(USER, live), fault, &[(USER, in_db)]);
    let stored = |p: &str| Snapshot::Stored {
        value: Secret::new(format!("hash({p})")),
    };
    let entry = |id: &str, snapshot, applied: &str, phase, rejected| {
        let mut e = JournalEntry::new(SECRET, id, USER, snapshot, &Secret::new(applied));
        e.target = Some(super::super::journaled_target(&target()));
        e.phase = phase;
        if phase == Phase::Rejecting {
            e.error = "verification failed after apply: refused".into();
        }
        e.rejected = rejected;
        e
    };
    let mut seeded = match journaled {
        Journaled::Nothing => None,
        Journaled::Applying => Some(entry(ROTATION, stored(OLD), NEW, Phase::Applying, false)),
        Journaled::Confirming => Some(entry(ROTATION, stored(OLD), NEW, Phase::Confirming, false)),
        Journaled::Rejecting => Some(entry(ROTATION, stored(OLD), NEW, Phase::Rejecting, false)),
        Journaled::Rejected => Some(entry(ROTATION, stored(OLD), NEW, Phase::Rejecting, true)),
        Journaled::DriftRepair => Some(entry(
            DRIFT_REPAIR_ID,
            stored(WRONG),
            OLD,
            Phase::Applying,
            false,
        )),
        Journaled::Damaged => {
            std::fs::write(
                rig.dir.0.join(format!("{SECRET}.journal")),
                "{\"version\": 2, \"pha",
            )
            .unwrap();
            None
        }
    };
    if let Some(e) = &mut seeded {
        rig.journal.save(e).unwrap();
    }
    rig
}

/// What the journal file says now, in the table's words.
fn journal_state(rig: &Rig) -> String {
    match rig.journal.load_for(SECRET).unwrap() {
        Loaded::Empty => "-".into(),
        Loaded::Damaged { .. } => "damaged".into(),
        Loaded::Entry(e) => match (e.phase, e.rejected) {
            (Phase::Rejecting, true) => "rejected".into(),
            (Phase::Applying, _) => "applying".into(),
            (Phase::Confirming, _) => "confirming".into(),
            (Phase::Rejecting, false) => "rejecting".into(),
        },
    }
}

#[test]
fn every_journal_phase_server_answer_and_database_outcome_ends_as_the_table_says() {
    let mut wrong = Vec::new();
    for (n, &(journaled, server, fault, password, journal, calls, outcome)) in
        TABLE.iter().enumerate()
    {
        let mut rig = rig(journaled, server, fault);
        let got_outcome = match server {
            Server::Gone => {
                rig.engine.undo_unconfirmed();
                None
            }
            Server::Pending | Server::Down => {
                rig.engine.handle_sync(&sync(Some(NEW)), Instant::now())
            }
            Server::Promoted | Server::KeptOld => {
                rig.engine.handle_sync(&sync(None), Instant::now())
            }
        };
        let got = (
            rig.db.password(USER).unwrap_or_else(|| "<no user>".into()),
            journal_state(&rig),
            rig.server.calls(),
            got_outcome,
        );
        let expected = (
            password.to_owned(),
            journal.to_owned(),
            calls.to_owned(),
            outcome,
        );
        if got != expected {
            wrong.push(format!(
                "row {n} {journaled:?} × {server:?} × {fault:?}:\n    expected {expected:?}\n         got {got:?}"
            ));
        }
        // Whatever happened, no password reached the server in a message.
        for text in rig.server.sent() {
            for pw in [OLD, NEW, WRONG] {
                assert!(!text.contains(pw), "row {n}: {pw} sent in {text:?}");
            }
        }
        // A journal set aside is kept once, and only after the live value logs in.
        let set_aside = rig.damaged_copies();
        let expected_aside = usize::from(journaled == Journaled::Damaged && journal == "-");
        assert_eq!(set_aside, expected_aside, "row {n}: set-aside copies");
    }
    assert!(
        wrong.is_empty(),
        "{} of {} rows differ:\n{}",
        wrong.len(),
        TABLE.len(),
        wrong.join("\n")
    );
}

/// The table is the full product of its three columns, each combination once.
#[test]
fn the_table_lists_every_combination_once() {
    let mut seen = std::collections::BTreeSet::new();
    for (j, s, f, ..) in TABLE {
        assert!(
            seen.insert(format!("{j:?} {s:?} {f:?}")),
            "{j:?} {s:?} {f:?} twice"
        );
    }
    assert_eq!(seen.len(), 7 * 5 * 5);
}
