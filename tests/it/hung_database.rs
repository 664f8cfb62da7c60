//! A PostgreSQL server that stops answering in the middle of a statement:
//! the heartbeat turns to error while the call is still waiting, the call is abandoned after
//! its timeout, the rotation settles without a restart once the server answers again, and
//! SIGTERM during the hang exits within the documented bound. The hang is real: a proxy
//! between agent and server holds every byte of the open connections.

use std::time::{Duration, Instant};

use crate::support::SOON;
use crate::support::db::postgres::Pg;
use crate::support::world::{World, assert_password, secret_value};
use crate::support::{AgentProcess, random_text};

/// Statement and connect timeout of the agents in this file.
const DB_TIMEOUT_MS: u64 = 3000;

/// An agent through the proxy with short database timeouts and a job deadline far beyond
/// the test, so the watchdog restart cannot be what settles anything.
fn start_agent(w: &World) -> AgentProcess {
    let mut cmd = w.machine.command(&["start", "--secret", &w.secret]);
    cmd.env("SIKKERKEY_AGENT_DB_TIMEOUT_MS", DB_TIMEOUT_MS.to_string())
        .env("SIKKERKEY_AGENT_JOB_DEADLINE_MS", "600000");
    let mut agent = AgentProcess::spawn(cmd);
    w.wait_healthy(&mut agent);
    agent
}

/// Starts a rotation and freezes the proxy while the agent's ALTER ROLE is in flight:
/// the statement waits on the blocker's lock, the proxy then holds its answer.
/// Returns when the freeze happened.
fn freeze_mid_statement(pg: &Pg, w: &World, agent: &AgentProcess, rotation: &str) -> Instant {
    // Straight to the server, not through the proxy, so the lock holds while the proxy freezes.
    let mut blocker = pg.hold_role_row(&w.user);
    w.cp.set_pending(
        &w.secret,
        rotation,
        &secret_value(&w.user, &format!("{rotation}-pw")),
    );
    // The journal is written right before the ALTER ROLE is sent.
    agent.wait_until(SOON, "the rotation's journal", || w.journal_exists());
    w.proxy.as_ref().unwrap().freeze();
    let frozen = Instant::now();
    // The server may now finish the ALTER ROLE; its answer stays in the proxy.
    blocker.batch_execute("ROLLBACK").unwrap();
    frozen
}

#[test]
fn a_database_frozen_mid_statement_is_reported_and_settles_without_a_restart() {
    let Some(pg) = Pg::open() else { return };
    frozen_mid_statement_is_reported_and_settles(&pg);
}

/// The scenario of the test above against `pg` (the matrix runs it on every version).
pub fn frozen_mid_statement_is_reported_and_settles(pg: &Pg) {
    let old_pw = format!("old-{}", random_text(12));
    let w = World::new(pg, crate::support::unique_name("ska_hang"), old_pw, true);
    let agent = start_agent(&w);
    let new_pw = "rot_frozen-pw".to_owned();

    let frozen = freeze_mid_statement(pg, &w, &agent, "rot_frozen");
    agent.wait_until(
        SOON,
        "an error heartbeat naming the silent database",
        || {
            w.cp.heartbeats(&w.secret)
                .iter()
                .any(|h| h.at > frozen && h.error.contains("not answering for"))
        },
    );
    let to_error =
        w.cp.heartbeats(&w.secret)
            .iter()
            .find(|h| h.at > frozen && h.error.contains("not answering for"))
            .unwrap()
            .at
            - frozen;
    // The call is abandoned after its timeout and the rotation rejected; the rollback cannot
    // reach the database either, so the journal stays.
    let error = w.wait_rejected("rot_frozen", &agent);
    assert!(error.contains("not answering"), "{error}");
    assert!(w.journal_exists());
    // Hung for several more polls: every heartbeat meanwhile says error.
    let n = w.cp.heartbeats(&w.secret).len();
    agent.wait_until(SOON, "more heartbeats during the hang", || {
        w.cp.heartbeats(&w.secret).len() >= n + 4
    });
    assert!(
        w.cp.heartbeats(&w.secret)[n..]
            .iter()
            .all(|h| h.status == "error"),
        "{:?}",
        w.cp.heartbeats(&w.secret)[n..]
            .iter()
            .map(|h| (&h.status, &h.error))
            .collect::<Vec<_>>()
    );

    // The server answers again: within one poll (plus the job that notices) the live value
    // logs in again, with no restart.
    w.proxy.as_ref().unwrap().restore();
    let answering = Instant::now();
    agent.wait_until(SOON, "the journal settled after the server answers", || {
        !w.journal_exists()
    });
    let to_settled = answering.elapsed();
    assert_password(pg, &w.user, &w.old_pw, &new_pw);
    let n = w.cp.heartbeats(&w.secret).len();
    agent.wait_until(SOON, "a healthy heartbeat", || {
        w.cp.heartbeats(&w.secret)
            .get(n..)
            .is_some_and(|hs| hs.iter().any(|h| h.status == "healthy"))
    });
    let mut agent = agent;
    assert!(agent.try_status().is_none(), "the agent restarted");
    eprintln!(
        "MEASURED: freeze -> error heartbeat {} ms (statement timeout {DB_TIMEOUT_MS} ms, heartbeat 250 ms); server answers -> live value logs in {} ms (poll 150 ms)",
        to_error.as_millis(),
        to_settled.as_millis()
    );
    // Reported while the call still waits (a third of the statement timeout), not after it.
    assert!(
        to_error < Duration::from_millis(DB_TIMEOUT_MS),
        "error heartbeat after {to_error:?}"
    );
    assert!(
        to_settled < Duration::from_millis(DB_TIMEOUT_MS + 2000),
        "settled after {to_settled:?}"
    );
    w.finish(agent, &[&w.old_pw, &new_pw]);
}

#[test]
fn sigterm_during_a_hung_statement_exits_within_the_bound() {
    let Some(pg) = Pg::open() else { return };
    let old_pw = format!("old-{}", random_text(12));
    let w = World::new(&pg, crate::support::unique_name("ska_hterm"), old_pw, true);
    let mut agent = start_agent(&w);
    freeze_mid_statement(&pg, &w, &agent, "rot_hterm");
    agent.wait_until(SOON, "the agent to notice the silent database", || {
        w.cp.heartbeats(&w.secret)
            .iter()
            .any(|h| h.error.contains("not answering for"))
    });
    let asked = Instant::now();
    agent.signal("TERM");
    // README: connect + statement timeout + 2 s.
    let bound = Duration::from_millis(2 * DB_TIMEOUT_MS + 2000);
    let status = agent.wait_exit(bound + Duration::from_secs(2));
    let took = asked.elapsed();
    eprintln!(
        "MEASURED: SIGTERM during a hung statement -> exit in {} ms (bound {} ms)",
        took.as_millis(),
        bound.as_millis()
    );
    assert!(status.success(), "{}", agent.output());
    assert!(took <= bound + Duration::from_millis(500), "{took:?}");
    // Whatever was in flight is journaled; the next start puts the database right.
    w.proxy.as_ref().unwrap().restore();
    let agent = w.machine.spawn_agent(&w.secret);
    agent.wait_until(SOON, "the restart to settle the journal", || {
        !w.journal_exists()
            && (w.cp.confirms(&w.secret).iter().any(|r| r == "rot_hterm")
                || w.cp
                    .rejects(&w.secret)
                    .iter()
                    .any(|(r, _)| r == "rot_hterm"))
    });
    if w.cp.confirms(&w.secret).iter().any(|r| r == "rot_hterm") {
        assert_password(&pg, &w.user, "rot_hterm-pw", &w.old_pw);
    } else {
        assert_password(&pg, &w.user, &w.old_pw, "rot_hterm-pw");
    }
    w.finish(agent, &[&w.old_pw, "rot_hterm-pw"]);
}
