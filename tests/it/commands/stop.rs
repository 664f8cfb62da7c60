//! `stop`: ends a running agent by its PID file, never signals a stranger, gives up in time.

use std::path::Path;
use std::process::Command;

use crate::support::assertions::{Exit, assert_contains};
use crate::support::cli::{agent_file, bare, run};
use crate::support::{AgentProcess, SOON, TempDir};

use super::{IdleAgent, dead_pid, write_pid};

/// A process that is no agent but ignores SIGTERM, with `secret` on its command line.
fn stubborn_process(home: &Path, secret: &str) -> AgentProcess {
    // Holds the PID file's lock the way an agent does (flock on an open descriptor) and
    // writes its own PID into it.
    write_pid(home, secret, 0);
    let mut c = Command::new("sh");
    c.args([
        "-c",
        "exec 9<>\"$1\"; flock -n 9 || exit 9; echo $$ >&9; trap '' TERM; echo ready; while :; do sleep 0.1 9>&-; done",
        "sh",
    ]);
    c.arg(agent_file(home, secret, "pid"));
    let mut p = AgentProcess::spawn(c);
    // SIGTERM before the trap is set would kill it.
    p.wait_for_output("ready", SOON);
    p
}

#[test]
fn stop_ends_a_running_agent_cleanly() {
    let mut idle = IdleAgent::start("sk_stop");
    let pid = idle.agent.pid();
    let out = run(idle.machine.command(&["stop", "--secret", "sk_stop"])).expect(Exit::Ok);
    assert_eq!(
        out.stdout.trim(),
        format!("stopped the agent for secret sk_stop (PID {pid})")
    );
    idle.agent.expect_exit(Exit::Ok);
    assert!(!agent_file(idle.home(), "sk_stop", "pid").exists());
    // Nothing to stop is success: idempotent for Ansible and friends.
    let out = run(idle.machine.command(&["stop", "--secret", "sk_stop"])).expect(Exit::Ok);
    assert_contains(
        &out.stdout,
        "no agent for secret sk_stop runs on this machine (no PID file",
    );
}

#[test]
fn stop_clears_a_stale_pid_file() {
    let home = TempDir::new("stop");
    let pid = dead_pid();
    write_pid(home.path(), "sk_stale", pid);
    let out = run(bare(home.path(), &["stop", "--secret", "sk_stale"])).expect(Exit::Ok);
    assert_contains(&out.stdout, "removed the stale PID file");
    assert_contains(&out.stdout, &format!("PID {pid} is gone"));
    assert!(!agent_file(home.path(), "sk_stale", "pid").exists());
    run(bare(home.path(), &["stop", "--secret", "../x"])).expect(Exit::Usage);
}

#[test]
fn stop_never_signals_a_process_that_reused_the_pid() {
    let home = TempDir::new("stop");
    let mut other = AgentProcess::spawn({
        let mut c = Command::new("sleep");
        c.arg("60");
        c
    });
    write_pid(home.path(), "sk_reuse", other.pid());
    let out = run(bare(home.path(), &["stop", "--secret", "sk_reuse"])).expect(Exit::Ok);
    assert_contains(&out.stdout, "stale PID file");
    assert!(
        other.try_status().is_none(),
        "stop signalled an unrelated process"
    );
    other.kill9();
}

#[test]
fn stop_gives_up_after_its_deadline() {
    let home = TempDir::new("stop");
    let mut stubborn = stubborn_process(home.path(), "sk_stuck");
    let mut c = bare(home.path(), &["stop", "--secret", "sk_stuck"]);
    c.env("SIKKERKEY_STOP_TIMEOUT_MS", "300");
    let out = run(c).expect(Exit::Failure);
    assert_contains(
        &out.stderr,
        &format!(
            "(PID {}) is still running 0 s after SIGTERM",
            stubborn.pid()
        ),
    );
    assert!(stubborn.try_status().is_none());
    assert!(agent_file(home.path(), "sk_stuck", "pid").exists());
    stubborn.kill9();
}
