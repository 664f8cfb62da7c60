//! Every journal phase × every server answer × every database outcome, and the end state
//! each must reach: the database password, the journal (gone, or its phase), the job's
//! outcome, and the calls the server received. `table.txt` holds the rows, one per
//! combination: 7 × 5 × 5 = 175.
//!
//! The starting points:
//! - journal: `none` (the database on the old password); a rotation of `rot_1` to the
//!   new password journaled in phase `applying`, `confirming`, `rejecting`, or
//!   `rejected` (rejecting, and the server acknowledged the rejection), all with the new
//!   password in the database and the old one's stored form as the snapshot; `damaged`
//!   (a journal that is not JSON; the new password in the database); `drift-repair` (a
//!   repair cut short: the database on a `wrong`, drifted password, the repair setting
//!   the old, live one);
//! - server: `pending` (`rot_1` still pending, live value old); `promoted` (no longer
//!   pending, live value new); `kept-old` (no longer pending, live value old); `gone`
//!   (404 on every call: the poll's 404 makes the worker run the undo, not a sync job);
//!   `down` (503 on every call after a poll that showed `rot_1` pending);
//! - database: `fine`; `apply-fails` (setting a password fails); `verify-fails` (every
//!   login refused, as for a NOLOGIN role); `restore-fails` (putting a stored form back,
//!   or dropping a user, fails); `unreachable`.
//!
//! The journal afterwards is `-` (none), a phase, `rejected` or `damaged`; the outcome
//! `-` when the job returned none. Calls are one word each: `live`, `confirm`, `reject`,
//! `heartbeat:<status>`; a confirm or reject answered 503 is sent three times.

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

/// One row of `table.txt`: where it starts, and the end state it must reach.
#[derive(Debug)]
struct Row {
    line: usize,
    journaled: Journaled,
    server: Server,
    fault: Fault,
    /// What the database, the journal, the job and the server show afterwards.
    expected: EndState,
}

#[derive(Debug, PartialEq)]
struct EndState {
    password: String,
    journal: String,
    outcome: Option<Outcome>,
    calls: String,
}

/// The rows of `table.txt`. A word the table does not define fails the test.
fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    for (n, line) in include_str!("table.txt").lines().enumerate() {
        let line_no = n + 1;
        let text = line.split('#').next().unwrap().trim();
        if text.is_empty() {
            continue;
        }
        let words: Vec<&str> = text.split_whitespace().collect();
        let [journaled, server, fault, password, journal, outcome, calls] = words[..] else {
            panic!("table.txt:{line_no}: not seven columns: {line}");
        };
        let bad = |what: &str, word: &str| -> ! {
            panic!("table.txt:{line_no}: unknown {what} {word:?}")
        };
        rows.push(Row {
            line: line_no,
            journaled: match journaled {
                "none" => Journaled::Nothing,
                "applying" => Journaled::Applying,
                "confirming" => Journaled::Confirming,
                "rejecting" => Journaled::Rejecting,
                "rejected" => Journaled::Rejected,
                "damaged" => Journaled::Damaged,
                "drift-repair" => Journaled::DriftRepair,
                w => bad("journal", w),
            },
            server: match server {
                "pending" => Server::Pending,
                "promoted" => Server::Promoted,
                "kept-old" => Server::KeptOld,
                "gone" => Server::Gone,
                "down" => Server::Down,
                w => bad("server answer", w),
            },
            fault: match fault {
                "fine" => Fault::None,
                "apply-fails" => Fault::Apply,
                "verify-fails" => Fault::Verify,
                "restore-fails" => Fault::Restore,
                "unreachable" => Fault::Unreachable,
                w => bad("database outcome", w),
            },
            expected: EndState {
                password: match password {
                    "old" => OLD,
                    "new" => NEW,
                    "wrong" => WRONG,
                    w => bad("password", w),
                }
                .to_owned(),
                journal: match journal {
                    "-" | "applying" | "confirming" | "rejecting" | "rejected" | "damaged" => {
                        journal.to_owned()
                    }
                    w => bad("journal state", w),
                },
                outcome: match outcome {
                    "-" => None,
                    w => Some(
                        serde_json::from_value(serde_json::json!(w))
                            .unwrap_or_else(|_| bad("outcome", w)),
                    ),
                },
                calls: match calls {
                    "-" => String::new(),
                    c => c.replace(',', " "),
                },
            },
        });
    }
    rows
}

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
    let rows = rows();
    let mut wrong = Vec::new();
    for row in &rows {
        let Row {
            line,
            journaled,
            server,
            fault,
            ref expected,
        } = *row;
        let mut rig = rig(journaled, server, fault);
        let outcome = match server {
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
        let got = EndState {
            password: rig.db.password(USER).unwrap_or_else(|| "<no user>".into()),
            journal: journal_state(&rig),
            outcome,
            calls: rig.server.calls(),
        };
        if got != *expected {
            wrong.push(format!(
                "table.txt:{line} {journaled:?} × {server:?} × {fault:?}:\n    expected {expected:?}\n         got {got:?}"
            ));
        }
        // Whatever happened, no password reached the server in a message.
        for text in rig.server.sent() {
            for pw in [OLD, NEW, WRONG] {
                assert!(
                    !text.contains(pw),
                    "table.txt:{line}: {pw} sent in {text:?}"
                );
            }
        }
        // A damaged journal is set aside once, and only after the live value logs in.
        let set_aside = rig.damaged_copies();
        let expected_aside =
            usize::from(journaled == Journaled::Damaged && expected.journal == "-");
        assert_eq!(
            set_aside, expected_aside,
            "table.txt:{line}: set-aside copies"
        );
    }
    assert!(
        wrong.is_empty(),
        "{} of {} rows differ:\n{}",
        wrong.len(),
        rows.len(),
        wrong.join("\n")
    );
}

/// The table is the full product of its three starting columns, each combination once.
#[test]
fn the_table_lists_every_combination_once() {
    let mut seen = std::collections::BTreeSet::new();
    for row in rows() {
        let key = format!("{:?} {:?} {:?}", row.journaled, row.server, row.fault);
        assert!(
            seen.insert(key.clone()),
            "table.txt:{}: {key} twice",
            row.line
        );
    }
    assert_eq!(seen.len(), 7 * 5 * 5);
}
