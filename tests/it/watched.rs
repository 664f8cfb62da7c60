//! Every thread watched, server input kept in range, polls resumed promptly after an outage:
//! a poll, heartbeat or main thread that panics ends the process with
//! 70 and an error heartbeat; a poll interval of 2^64-1 s or 2 s is clamped with a warning
//! and polling goes on; a failed poll is retried within one interval (and a fifth).

use std::time::{Duration, Instant};

use crate::support::SOON;
use crate::support::db::postgres::Pg;
use crate::support::world::{World, secret_value};
use crate::support::{AgentProcess, Endpoint, Fault, wait_until};

#[test]
fn a_crashed_poll_heartbeat_or_main_thread_is_never_a_silent_agent() {
    let Some(pg) = Pg::open() else { return };
    for point in ["poll", "heartbeat", "main"] {
        let w = World::plain(&pg);
        let mut cmd = w.machine.command(&["start", "--secret", &w.secret]);
        cmd.env("SIKKERKEY_AGENT_TEST_PANIC", point);
        let mut agent = AgentProcess::spawn(cmd);
        let status = agent.wait_exit(SOON);
        assert_eq!(status.code(), Some(70), "{point}: {}", agent.output());
        let beats = w.cp.heartbeats(&w.secret);
        let last = beats.last().expect("a heartbeat");
        assert!(
            last.status == "error" && last.error.contains(&format!("the {point} thread crashed")),
            "{point}: last heartbeat {:?} {:?}",
            last.status,
            last.error
        );
    }
}

#[test]
fn poll_intervals_out_of_range_are_clamped_and_polling_goes_on() {
    let Some(pg) = Pg::open() else { return };
    let w = World::plain(&pg);
    w.cp.with_secret(&w.secret, |s| s.poll_interval_seconds = u64::MAX);
    let agent = w.start();
    agent.wait_until(SOON, "the clamp warning", || {
        agent
            .output()
            .contains("poll interval of 18446744073709551615 s; using 3600 s")
    });
    w.cp.with_secret(&w.secret, |s| s.poll_interval_seconds = 2);
    agent.wait_until(SOON, "the floor warning", || {
        agent.output().contains("poll interval of 2 s; using 5 s")
    });
    // Still polling (the test's 150 ms override): a rotation goes through.
    w.cp.set_pending(
        &w.secret,
        "rot_clamp",
        &secret_value(&w.user, "clamp-new-pw"),
    );
    w.wait_confirmed("rot_clamp", &agent);
    assert_eq!(
        agent.output().matches("using 3600 s").count(),
        1,
        "warned once per value"
    );
    w.finish(agent, &[&w.old_pw, "clamp-new-pw"]);
}

#[test]
fn after_an_outage_the_next_poll_is_at_most_one_interval_late() {
    let Some(pg) = Pg::open() else { return };
    let w = World::plain(&pg);
    let mut cmd = w.machine.command(&["start", "--secret", &w.secret]);
    cmd.env("SIKKERKEY_AGENT_POLL_MS", "1000");
    let mut agent = AgentProcess::spawn(cmd);
    w.wait_healthy(&mut agent);
    // Six polls fail; watch the gaps between the agent's sync-config requests.
    w.cp.inject(Endpoint::SyncConfig, Fault::Status(503), 6);
    let start_calls = w.cp.calls(Endpoint::SyncConfig);
    let mut seen = start_calls;
    let mut at = Vec::new();
    let begin = Instant::now();
    wait_until(SOON, "seven more polls", || {
        let n = w.cp.calls(Endpoint::SyncConfig);
        if n > seen {
            at.push(begin.elapsed());
            seen = n;
        }
        n >= start_calls + 7
    });
    let gaps: Vec<Duration> = at.windows(2).map(|p| p[1] - p[0]).collect();
    eprintln!("MEASURED: poll gaps during and after a 6-poll outage (interval 1 s): {gaps:?}");
    assert!(
        gaps.iter().all(|g| *g < Duration::from_millis(1500)),
        "a poll was more than 1.2 intervals late: {gaps:?}"
    );
    w.finish(agent, &[&w.old_pw]);
}

/// A poll answer computed while a rotation was pending and delivered after the agent
/// finished it must not start that rotation again.
#[test]
fn a_stale_poll_answer_does_not_start_a_finished_rotation_again() {
    let Some(pg) = Pg::open() else { return };
    let w = World::plain(&pg);
    // Long enough an HTTP timeout for the late answer to arrive at all.
    let mut cmd = w.machine.command(&["start", "--secret", &w.secret]);
    cmd.env("SIKKERKEY_AGENT_HTTP_TIMEOUT_MS", "20000");
    let mut agent = AgentProcess::spawn(cmd);
    w.wait_healthy(&mut agent);
    // The confirmation takes a second to be processed, so a poll during the rotation sees
    // it pending; that answer then takes six seconds to arrive, long after the rotation
    // was confirmed.
    w.cp.inject(Endpoint::Confirm, Fault::Delay(Duration::from_secs(1)), 1);
    w.cp.set_pending(
        &w.secret,
        "rot_stale",
        &secret_value(&w.user, "stale-new-pw"),
    );
    agent.wait_until(SOON, "the rotation to start", || {
        agent.output().contains("pending rotation rot_stale found")
    });
    w.cp.inject(
        Endpoint::SyncConfig,
        Fault::ProcessThenDelay(Duration::from_secs(6)),
        1,
    );
    let calls = w.cp.calls(Endpoint::SyncConfig);
    w.wait_confirmed("rot_stale", &agent);
    // The delayed (stale) answer has arrived and been acted on, and then some.
    agent.wait_until(SOON, "the stale answer and two more polls", || {
        w.cp.calls(Endpoint::SyncConfig) >= calls + 3
    });
    let out = agent.output();
    assert_eq!(
        out.matches("pending rotation rot_stale found").count(),
        1,
        "the rotation started again:\n{out}"
    );
    assert_eq!(w.cp.confirms(&w.secret), vec!["rot_stale".to_owned()]);
    w.finish(agent, &[&w.old_pw, "stale-new-pw"]);
}
