//! `make demo`: one full rotation, end to end, in under a minute. Starts the fake
//! SikkerKey control plane, creates a role in the local test PostgreSQL with an old
//! password, runs the real agent binary, makes a rotation pending and shows the database
//! switching to the new password only when the control plane promotes it.
//!
//! Run through `make demo`, which starts the scram-sha-256 PostgreSQL cluster first.

#[path = "../tests/it/support/fake_cp.rs"]
#[allow(dead_code)]
mod fake_cp;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fake_cp::{FakeControlPlane, SecretState};
use serde_json::json;

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set; run this through `make demo`"))
}

fn login(host: &str, port: u16, user: &str, password: &str) -> bool {
    postgres::Config::new()
        .host(host)
        .port(port)
        .user(user)
        .password(password)
        .dbname("postgres")
        .connect_timeout(Duration::from_secs(5))
        .connect(postgres::NoTls)
        .is_ok()
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn main() {
    let (host, port) = (
        env("SKA_PG_HOST"),
        env("SKA_PG_PORT").parse::<u16>().unwrap(),
    );
    let (admin, admin_pass) = (env("SKA_PG_ADMIN_USER"), env("SKA_PG_ADMIN_PASS"));
    let (user, old_pw, new_pw) = ("demo_app", "old-password-1", "n3w'pass\"word$ø");

    let mut db = postgres::Config::new()
        .host(&host)
        .port(port)
        .user(&admin)
        .password(&admin_pass)
        .dbname("postgres")
        .connect(postgres::NoTls)
        .expect("admin login");
    let verifier = postgres_protocol::password::scram_sha_256(old_pw.as_bytes());
    db.batch_execute(&format!(
        "DROP ROLE IF EXISTS {user}; CREATE ROLE {user} LOGIN PASSWORD '{verifier}'"
    ))
    .unwrap();
    println!(
        "1. PostgreSQL at {host}:{port}: role {user} logs in with the old password: {}",
        login(&host, port, user, old_pw)
    );

    let cp = FakeControlPlane::start();
    let home = std::env::temp_dir().join(format!("ska-demo-{}", std::process::id()));
    fake_cp::write_identity(&cp, &home, "demo-machine");
    let live = json!({"username": user, "password": old_pw}).to_string();
    let connection = json!({"host": host, "port": port, "database": "postgres", "adminUser": admin, "adminPass": admin_pass});
    cp.add_secret(
        "sk_demo",
        SecretState::new("postgresql", connection, user, &live),
    );
    println!(
        "2. Fake SikkerKey control plane at {} holds secret sk_demo (live value = old password)",
        cp.url()
    );

    let agent_bin = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("sikkerkey-agent");
    let mut agent = Command::new(&agent_bin)
        .args(["agent", "start", "--secret", "sk_demo"])
        .env("SIKKERKEY_HOME", &home)
        .env("SIKKERKEY_API_URL", cp.url())
        .env("SIKKERKEY_AGENT_POLL_MS", "1000")
        .env("SIKKERKEY_AGENT_HEARTBEAT_MS", "2000")
        .stdin(Stdio::null())
        .spawn()
        .expect("start the agent (run `cargo build` first)");
    wait_for("the first heartbeat", || {
        !cp.heartbeats("sk_demo").is_empty()
    });
    println!(
        "3. Agent started and reported {:?}",
        cp.heartbeats("sk_demo")[0].status
    );

    let pending = json!({"username": user, "password": new_pw}).to_string();
    cp.set_pending("sk_demo", "rot_demo_1", &pending);
    println!(
        "4. SikkerKey rotates: rotation rot_demo_1 is pending; the live value is still the old password"
    );
    wait_for("the confirmation", || !cp.confirms("sk_demo").is_empty());
    println!(
        "5. Agent applied, verified and confirmed; the live value is now the new password: {}",
        cp.live_value("sk_demo") == pending
    );
    println!(
        "6. Database check: new password logs in: {}; old password refused: {}",
        login(&host, port, user, new_pw),
        !login(&host, port, user, old_pw)
    );

    let _ = Command::new("kill")
        .args(["-TERM", &agent.id().to_string()])
        .status();
    let status = agent.wait().unwrap();
    println!("7. Agent stopped on SIGTERM with {status}");
    db.batch_execute(&format!("DROP ROLE IF EXISTS {user}"))
        .unwrap();
    let _ = std::fs::remove_dir_all(&home);
    assert!(cp.unauthorized().is_empty());
}
