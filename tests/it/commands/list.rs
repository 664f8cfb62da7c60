//! `list`: every configured or running agent, as a table or JSON.

use serde_json::{Value, json};

use crate::support::TempDir;
use crate::support::assertions::{Exit, assert_contains};
use crate::support::cli::{self, agent_file, bare, run};

use super::{IdleAgent, dead_pid, write_pid};

#[test]
fn list_with_nothing_configured() {
    let home = TempDir::new("list");
    let out = run(bare(home.path(), &["list"])).expect(Exit::Ok);
    assert_contains(
        &out.stdout,
        "no agents are configured or running on this machine",
    );
    let out = run(bare(home.path(), &["list", "-o", "json"])).expect(Exit::Ok);
    assert_eq!(
        serde_json::from_str::<Value>(&out.stdout).unwrap(),
        json!([])
    );
    let out = run(bare(home.path(), &["list", "-o", "yaml"])).expect(Exit::Usage);
    assert_contains(&out.stderr, "unknown output format");
}

#[test]
fn list_shows_configured_stopped_and_running_agents() {
    let idle = IdleAgent::start("sk_live");
    let home = idle.home();
    // A configured agent that ran once: state file, a stale PID file, an unfinished rotation.
    let args = cli::configure_args("sk_old", "mysql", "db.example", "root", &[]);
    cli::configure_ok(bare(home, &args), "pw");
    let stale = dead_pid();
    write_pid(home, "sk_old", stale);
    std::fs::write(agent_file(home, "sk_old", "journal"), "{}").unwrap();
    std::fs::write(
        agent_file(home, "sk_old", "state.json"),
        json!({"pid": stale, "startedAt": 1_700_000_000u64, "providerType": "mysql",
               "endpoint": "db.example:3306",
               "lastHeartbeat": {"at": 1_700_000_100u64, "status": "error",
                                 "error": "MySQL at db.example:3306: unreachable", "delivered": false},
               "lastRotation": {"rotationId": "rot_7", "outcome": "confirmed", "at": 1_700_000_000u64}})
        .to_string(),
    )
    .unwrap();

    let out = run(bare(home, &["list", "-o", "json"])).expect(Exit::Ok);
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        list,
        json!([
            {"secretId": "sk_live", "provider": "", "endpoint": "", "running": true,
             "pid": idle.agent.pid(), "configured": false, "unfinishedRotation": false,
             "lastHeartbeat": null, "lastRotation": null},
            {"secretId": "sk_old", "provider": "mysql", "endpoint": "db.example:3306",
             "running": false, "pid": stale, "configured": true, "unfinishedRotation": true,
             "lastHeartbeat": {"at": 1_700_000_100u64, "status": "error",
                               "error": "MySQL at db.example:3306: unreachable", "delivered": false},
             "lastRotation": {"rotationId": "rot_7", "outcome": "confirmed", "at": 1_700_000_000u64}}
        ])
    );

    let out = run(bare(home, &["list"])).expect(Exit::Ok);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("SECRET") && lines[0].ends_with("LAST HEARTBEAT"),
        "{}",
        out.stdout
    );
    assert!(
        lines[1].starts_with("sk_live")
            && lines[1].contains("running")
            && lines[1].contains(&idle.agent.pid().to_string()),
        "{}",
        out.stdout
    );
    for want in [
        "sk_old",
        "mysql",
        "db.example:3306",
        "stopped, rotation unfinished",
        "rot_7 confirmed 2023-11-14T22:13:20Z",
        "error 2023-11-14T22:15:00Z (not delivered): MySQL at db.example:3306: unreachable",
    ] {
        assert!(lines[2].contains(want), "{want:?} not in {:?}", lines[2]);
    }
}
