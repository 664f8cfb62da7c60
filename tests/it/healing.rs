//! The agent heals itself (issue 11): one agent per secret enforced by the kernel's lock,
//! the API URL refused the way the HTTP client would read it, clock skew named, hung
//! databases reported and settled without a restart, accounts verified over a path that
//! reaches them. Each test causes its fault for real and fails without the fix.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::scenarios::SOON;
use crate::support::{AgentProcess, Endpoint, FakeControlPlane, Fault, Machine, wait_until};

fn pid_file(machine: &Machine, secret: &str) -> std::path::PathBuf {
    machine.agents_dir().join(format!("{secret}.pid"))
}

fn list_json(machine: &Machine) -> Value {
    let out = machine
        .command(&["list", "-o", "json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A process that is no agent (its command line does not name the secret) holding the PID
/// file's lock, as an agent started through a wrapper or under another name would.
fn lock_holder(path: &Path) -> AgentProcess {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut c = Command::new("sh");
    c.args([
        "-c",
        "exec 9<>\"$1\"; flock -n 9 || exit 9; echo $$ >&9; echo ready; while :; do sleep 0.1; done",
        "sh",
    ])
    .arg(path);
    let mut p = AgentProcess::spawn(c);
    p.wait_for_output("ready", SOON);
    p
}

#[test]
fn agents_started_at_the_same_moment_never_both_run() {
    let cp = FakeControlPlane::start();
    let machine = Machine::new(&cp);
    // The sync config never comes, so the winner holds its PID file and keeps retrying.
    cp.inject(Endpoint::SyncConfig, Fault::Status(503), 100_000);
    let secret = "sk_race";
    for round in 0..3 {
        let mut agents: Vec<AgentProcess> = (0..6).map(|_| machine.spawn_agent(secret)).collect();
        let mut refused = 0;
        wait_until(SOON, "all but one agent to give up", || {
            refused = agents
                .iter_mut()
                .map(|a| a.try_status().is_some())
                .filter(|exited| *exited)
                .count();
            refused >= 5
        });
        let running: Vec<u32> = agents
            .iter_mut()
            .filter_map(|a| a.try_status().is_none().then(|| a.pid()))
            .collect();
        assert_eq!(running.len(), 1, "round {round}: more than one agent runs");
        let winner = running[0];
        for a in agents.iter_mut().filter(|a| a.pid() != winner) {
            let status = a.wait_exit(SOON);
            assert_eq!(status.code(), Some(1), "{}", a.output());
            assert!(
                a.output().contains("already runs") && a.output().contains(&winner.to_string()),
                "{}",
                a.output()
            );
        }
        let entry = list_json(&machine)[0].clone();
        assert_eq!(entry["running"], true);
        assert_eq!(entry["pid"], winner);
        let mut winner = agents
            .into_iter()
            .find(|a| a.pid() == winner)
            .expect("the winner");
        assert!(winner.terminate().success(), "{}", winner.output());
        assert!(!pid_file(&machine, secret).exists());
    }
}

#[test]
fn a_locked_pid_file_means_running_whatever_the_command_line_says() {
    let cp = FakeControlPlane::start();
    let machine = Machine::new(&cp);
    let secret = "sk_held";
    let path = pid_file(&machine, secret);
    let mut holder = lock_holder(&path);

    // `start` and `list` give the same answer: the holder runs the agent.
    let mut second = machine.spawn_agent(secret);
    assert_eq!(
        second.wait_exit(SOON).code(),
        Some(1),
        "{}",
        second.output()
    );
    assert!(
        second.output().contains(&format!(
            "already runs on this machine (PID {})",
            holder.pid()
        )),
        "{}",
        second.output()
    );
    assert_eq!(cp.calls(Endpoint::SyncConfig), 0);
    let entry = list_json(&machine)[0].clone();
    assert_eq!(entry["running"], true, "{entry}");
    assert_eq!(entry["pid"], holder.pid());

    // Once the holder is gone, the lock is gone with it: list and start agree again.
    holder.kill9();
    let entry = list_json(&machine)[0].clone();
    assert_eq!(entry["running"], false, "{entry}");
    cp.inject(Endpoint::SyncConfig, Fault::Status(503), 100_000);
    let mut agent = machine.spawn_agent(secret);
    agent.wait_until(SOON, "the new agent to take the PID file", || {
        std::fs::read_to_string(&path).is_ok_and(|t| t.trim() == agent.pid().to_string())
    });
    wait_until(SOON, "list to show the new agent", || {
        list_json(&machine)[0]["pid"] == agent.pid()
    });
    assert!(agent.terminate().success(), "{}", agent.output());
}
