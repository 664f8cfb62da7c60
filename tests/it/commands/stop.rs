//! `stop`: ends a running agent by its PID file, never signals a stranger, gives up in time.

use std::path::Path;
use std::process::Command;

use crate::support::assertions::{Exit, assert_contains};
use crate::support::cli::{agent_file, bare, run};
use crate::support::{AgentProcess, SOON, TempDir};

use super::{IdleAgent, dead_pid, python3, write_pid};

/// An imposter: a process that is no agent, ignores SIGTERM, takes the PID file's lock
/// itself the way an agent does (flock(2) on its own open descriptor) and writes `named`
/// into the file: another process's PID, or (`None`) its own.
fn imposter(python: &str, home: &Path, secret: &str, named: Option<u32>) -> AgentProcess {
    write_pid(home, secret, 0);
    let mut c = Command::new(python);
    c.args([
        "-c",
        "import fcntl, os, signal, sys, time\n\
         f = open(sys.argv[1], 'r+')\n\
         fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n\
         f.truncate(0); f.write((sys.argv[2] or str(os.getpid())) + '\\n'); f.flush()\n\
         signal.signal(signal.SIGTERM, signal.SIG_IGN)\n\
         print('ready', flush=True)\n\
         time.sleep(600)\n",
    ]);
    c.arg(agent_file(home, secret, "pid"));
    c.arg(named.map(|p| p.to_string()).unwrap_or_default());
    let mut p = AgentProcess::spawn(c);
    // SIGTERM before the handler is set would kill it.
    p.wait_for_output("ready", SOON);
    p
}

fn sleeper() -> AgentProcess {
    let mut c = Command::new("sleep");
    c.arg("600");
    AgentProcess::spawn(c)
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

/// A process holding the lock can write any PID into the file: `stop` and `remove
/// --force` (run as root, as an operator would) must not signal the process it names,
/// nor the imposter itself, which is no agent.
#[test]
fn stop_and_remove_never_signal_a_pid_the_lock_holder_merely_names() {
    let Some(python) = python3() else { return };
    let home = TempDir::new("stop");
    let mut victim = sleeper();
    let mut holder = imposter(python, home.path(), "sk_imp", Some(victim.pid()));
    let pid_file = agent_file(home.path(), "sk_imp", "pid");
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        victim.pid().to_string()
    );
    for args in [
        &["stop", "--secret", "sk_imp"][..],
        &["remove", "--secret", "sk_imp", "--force"][..],
    ] {
        let out = run(bare(home.path(), args)).expect(Exit::Failure);
        assert_contains(
            &out.stderr,
            &format!(
                "refusing to signal PID {} as the agent for secret sk_imp: PID {} does not hold the lock",
                victim.pid(),
                victim.pid()
            ),
        );
        assert_contains(&out.stderr, "nothing was signalled");
        assert!(
            victim.try_status().is_none(),
            "{args:?} signalled the named process"
        );
        assert!(
            holder.try_status().is_none(),
            "{args:?} signalled the imposter"
        );
        assert!(pid_file.exists(), "{args:?} deleted files");
    }
    // The imposter naming itself: it holds the lock, but it is no agent.
    holder.kill9();
    let mut holder = imposter(python, home.path(), "sk_self", None);
    let out = run(bare(home.path(), &["stop", "--secret", "sk_self"])).expect(Exit::Failure);
    assert_contains(
        &out.stderr,
        &format!(
            "refusing to signal PID {0} as the agent for secret sk_self: PID {0} holds the lock on",
            holder.pid()
        ),
    );
    assert_contains(&out.stderr, "not sikkerkey-agent");
    assert!(
        holder.try_status().is_none(),
        "stop signalled a process that is no agent"
    );
    holder.kill9();
    victim.kill9();
}

/// A real agent that cannot act on SIGTERM (stopped with SIGSTOP) is still running when
/// the deadline passes: `stop` says so and leaves the PID file; once it may run again it
/// acts on the SIGTERM that `stop` sent and exits cleanly.
#[test]
fn stop_gives_up_after_its_deadline() {
    let mut idle = IdleAgent::start("sk_stuck");
    let pid = idle.agent.pid();
    idle.agent.signal("STOP");
    let mut c = idle.machine.command(&["stop", "--secret", "sk_stuck"]);
    c.env("SIKKERKEY_STOP_TIMEOUT_MS", "300");
    let out = run(c).expect(Exit::Failure);
    assert_contains(
        &out.stderr,
        &format!("(PID {pid}) is still running 0 s after SIGTERM"),
    );
    assert!(idle.agent.try_status().is_none());
    assert!(agent_file(idle.home(), "sk_stuck", "pid").exists());
    idle.agent.signal("CONT");
    idle.agent.expect_exit(Exit::Ok);
}
