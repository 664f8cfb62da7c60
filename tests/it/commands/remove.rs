//! `remove`: deletes an agent's files, but not an unfinished rotation or a running
//! agent's without `--force`.

use crate::support::TempDir;
use crate::support::assertions::{Exit, assert_contains};
use crate::support::cli::{agent_file, bare, run};

use super::{IdleAgent, configure_args, configure_ok, dead_pid, write_pid};

#[test]
fn remove_deletes_config_pid_and_state() {
    let home = TempDir::new("rm");
    let h = home.path();
    configure_ok(h, "sk_rm", "redis", "pw");
    write_pid(h, "sk_rm", dead_pid());
    std::fs::write(agent_file(h, "sk_rm", "state.json"), "{}").unwrap();
    let out = run(bare(h, &["remove", "--secret", "sk_rm"])).expect(Exit::Ok);
    for ext in ["json", "pid", "state.json"] {
        let path = agent_file(h, "sk_rm", ext);
        assert!(!path.exists(), "{} left behind", path.display());
        assert_contains(&out.stdout, &format!("removed {}", path.display()));
    }
    let out = run(bare(h, &["remove", "--secret", "sk_rm"])).expect(Exit::Ok);
    assert_contains(&out.stdout, "nothing to remove");
    run(bare(h, &["remove", "--secret", ".hidden"])).expect(Exit::Usage);
}

#[test]
fn remove_refuses_to_drop_an_unfinished_rotation_without_force() {
    let home = TempDir::new("rm");
    let h = home.path();
    configure_ok(h, "sk_j", "redis", "pw");
    let journal = agent_file(h, "sk_j", "journal");
    std::fs::write(&journal, "{}").unwrap();
    let out = run(bare(h, &["remove", "--secret", "sk_j"])).expect(Exit::Failure);
    assert_contains(&out.stderr, "unfinished rotation");
    assert_contains(&out.stderr, "--force");
    assert!(journal.exists() && agent_file(h, "sk_j", "json").exists());
    let out = run(bare(h, &["remove", "--secret", "sk_j", "--force"])).expect(Exit::Ok);
    assert!(!journal.exists() && !agent_file(h, "sk_j", "json").exists());
    assert_contains(&out.stdout, &format!("removed {}", journal.display()));
    assert_contains(
        &out.stderr,
        "warning: deleted the journal of an unfinished rotation",
    );
}

#[test]
fn remove_refuses_while_the_agent_runs_unless_forced() {
    let mut idle = IdleAgent::start("sk_busy");
    let pid_file = agent_file(idle.home(), "sk_busy", "pid");
    let out = run(idle.machine.command(&["remove", "--secret", "sk_busy"])).expect(Exit::Failure);
    assert_contains(
        &out.stderr,
        &format!(
            "the agent for secret sk_busy is running (PID {})",
            idle.agent.pid()
        ),
    );
    assert!(idle.agent.try_status().is_none() && pid_file.exists());
    let out = run(idle
        .machine
        .command(&["remove", "--secret", "sk_busy", "--force"]))
    .expect(Exit::Ok);
    idle.agent.expect_exit(Exit::Ok);
    assert!(!pid_file.exists(), "{}", out.all());
}

/// A single-valued option given twice is refused with both values named: which secret
/// `remove` deletes must never depend on which one came last.
#[test]
fn a_repeated_option_is_refused_naming_both_values() {
    let tmp = TempDir::new("remove-twice");
    configure_ok(tmp.path(), "sk_a", "mysql", "pw");
    configure_ok(tmp.path(), "sk_b", "mysql", "pw");
    let out = run(bare(
        tmp.path(),
        &["remove", "--secret", "sk_a", "--secret", "sk_b"],
    ))
    .expect(Exit::Usage);
    assert_contains(
        &out.stderr,
        "error: --secret is given twice (\"sk_a\" and \"sk_b\"); give it once; run `sikkerkey-agent remove --help` for its options",
    );
    for id in ["sk_a", "sk_b"] {
        assert!(
            agent_file(tmp.path(), id, "json").exists(),
            "{id} was removed"
        );
    }
    // configure: neither value is written, and a password given twice is never echoed.
    let mut c = bare(
        tmp.path(),
        &configure_args("sk_c", "mysql", &["--host", "h2"]),
    );
    c.env("SIKKERKEY_ADMIN_PASS", "pw");
    let out = run(c).expect(Exit::Usage);
    assert_contains(
        &out.stderr,
        "--host is given twice (\"db.internal\" and \"h2\")",
    );
    let twice = ["--admin-pass", "first-pw", "--admin-pass", "second-pw"];
    let out = run(bare(tmp.path(), &configure_args("sk_c", "mysql", &twice))).expect(Exit::Usage);
    assert_contains(&out.stderr, "--admin-pass is given twice");
    assert!(!out.stderr.contains("first-pw") && !out.stderr.contains("second-pw"));
    assert!(!agent_file(tmp.path(), "sk_c", "json").exists());
}
