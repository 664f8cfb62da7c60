//! The agent's life around rotations, the same for every database: start-up refusals,
//! the lock against a second agent, the secret going away, control-plane outages,
//! signals, a crashed worker, a database that stops answering, new admin credentials.
//! They run against PostgreSQL, the reference database, whose rotation a test can hold
//! mid-way (`Pg::hold_role_row`).

use std::time::Duration;

use serde_json::json;

use crate::support::assertions::{Exit, assert_contains};
use crate::support::db::db_test;
use crate::support::db::postgres::Pg;
use crate::support::world::{Database, World, assert_password, secret_value};
use crate::support::{Endpoint, FakeControlPlane, Fault, Machine, SOON, SecretState, set_mode};

/// A job that has not finished after 1.5 s counts as stuck.
const JOB_DEADLINE: (&str, &str) = ("SIKKERKEY_AGENT_JOB_DEADLINE_MS", "1500");

db_test!(
    heartbeats_keep_coming_during_a_slow_rotation,
    Pg::open(),
    |pg| {
        let w = World::plain(pg);
        let agent = w.start();
        let mut blocker = pg.hold_role_row(&w.user);
        w.cp.set_pending(&w.secret, "rot_slow", &secret_value(&w.user, "slow-new-pw"));
        agent.wait_until(SOON, "the agent to start the rotation", || {
            agent.output().contains("pending rotation rot_slow")
        });
        let before = w.cp.heartbeats(&w.secret).len();
        std::thread::sleep(Duration::from_secs(3));
        let during = w.cp.heartbeats(&w.secret)[before..].to_vec();
        blocker.batch_execute("ROLLBACK").unwrap();
        w.wait_confirmed("rot_slow", &agent);
        assert!(w.cp.confirms(&w.secret).len() == 1);
        // Heartbeat every 250 ms: a blocked worker must not silence it for 3 s.
        assert!(
            during.len() >= 4,
            "only {} heartbeats in 3 s while the rotation was blocked",
            during.len()
        );
        let max_gap = during.windows(2).map(|p| p[1].at - p[0].at).max().unwrap();
        assert!(
            max_gap < Duration::from_secs(2),
            "a {max_gap:?} gap between heartbeats during the rotation"
        );
        assert_password(pg, &w.user, "slow-new-pw", &w.old_pw);
        w.finish(agent, &[&w.old_pw, "slow-new-pw"]);
    }
);

db_test!(secret_deleted_exits_cleanly, Pg::open(), |pg| {
    let w = World::plain(pg);
    let mut agent = w.start();
    w.cp.delete_secret(&w.secret);
    agent.expect_exit(Exit::Ok);
    assert_contains(&agent.output(), "secret");
    assert!(
        !w.machine
            .agents_dir()
            .join(format!("{}.pid", w.secret))
            .exists(),
        "PID file left behind"
    );
});

db_test!(access_revoked_exits_cleanly, Pg::open(), |pg| {
    let w = World::plain(pg);
    let mut agent = w.start();
    w.cp.revoke(&w.secret, &w.machine.id);
    agent.expect_exit(Exit::Ok);
    assert_contains(&agent.output(), "403");
});

db_test!(second_machine_is_locked_out, Pg::open(), |pg| {
    let w = World::plain(pg);
    let first = w.start();
    let other = Machine::new(&w.cp);
    let mut second = other.spawn_agent(&w.secret);
    second.expect_exit(Exit::Locked);
    assert_contains(&second.output(), "409");
    assert_contains(&second.output(), "another machine");
    // The first agent is unaffected: it still rotates.
    w.cp.set_pending(
        &w.secret,
        "rot_after_409",
        &secret_value(&w.user, "after-lock-pw"),
    );
    w.wait_confirmed("rot_after_409", &first);
    assert_password(pg, &w.user, "after-lock-pw", &w.old_pw);
    w.finish(first, &[&w.old_pw, "after-lock-pw"]);
});

db_test!(
    control_plane_outage_is_reported_and_recovered,
    Pg::open(),
    |pg| {
        let w = World::plain(pg);
        let agent = w.start();
        w.cp.inject(Endpoint::SyncConfig, Fault::Status(503), 4);
        agent.wait_until(SOON, "an error heartbeat naming the poll failure", || {
            w.error_heartbeat_says("poll failed")
        });
        w.cp.set_pending(
            &w.secret,
            "rot_after_outage",
            &secret_value(&w.user, "after-outage-pw"),
        );
        w.wait_confirmed("rot_after_outage", &agent);
        let n = w.cp.heartbeats(&w.secret).len();
        agent.wait_until(SOON, "healthy again", || {
            w.cp.heartbeats(&w.secret)
                .get(n..)
                .is_some_and(|h| h.iter().any(|h| h.status == "healthy"))
        });
        assert_password(pg, &w.user, "after-outage-pw", &w.old_pw);
        w.finish(agent, &[&w.old_pw, "after-outage-pw"]);
    }
);

db_test!(
    worker_panic_turns_the_heartbeat_to_error,
    Pg::open(),
    |pg| {
        let w = World::plain(pg);
        let mut agent = w.spawn_agent_with(&[("SIKKERKEY_AGENT_TEST_PANIC", "worker-sync")]);
        agent.expect_exit(Exit::WorkerCrashed);
        let beats = w.cp.heartbeats(&w.secret);
        assert_eq!(
            beats.last().map(|h| h.status.as_str()),
            Some("error"),
            "last heartbeat after a worker crash: {beats:?}"
        );
    }
);

db_test!(
    unknown_provider_is_a_clear_start_up_error,
    Pg::open(),
    |pg| {
        let w = World::plain(pg);
        w.cp.with_secret(&w.secret, |s| s.provider_type = "oracle".into());
        let mut agent = w.machine.spawn_agent(&w.secret);
        agent.expect_exit(Exit::Config);
        for name in ["oracle", "postgresql", "mongodb"] {
            assert_contains(&agent.output(), name);
        }
    }
);

#[test]
fn readable_private_key_is_refused() {
    let cp = FakeControlPlane::start();
    let machine = Machine::new(&cp);
    let key = machine.home.path().join("vaults/vault1/private.pem");
    set_mode(&key, 0o644);
    cp.add_secret(
        "sk_perm",
        SecretState::new("postgresql", json!({}), "u", "{}"),
    );
    let mut agent = machine.spawn_agent("sk_perm");
    agent.expect_exit(Exit::Config);
    assert_contains(&agent.output(), "chmod 600");
    assert_eq!(cp.calls(Endpoint::SyncConfig), 0);
}

/// The local config holds the admin password: like the identity key, it is refused when
/// group or others may read it, before anything is fetched; and a TLS client key named by
/// PGSSLKEY (read by the agent, not by `configure`) obeys the same rule.
#[test]
fn a_local_config_or_tls_key_others_can_read_is_refused() {
    let cp = FakeControlPlane::start();
    let machine = Machine::new(&cp);
    cp.add_secret(
        "sk_open",
        SecretState::new(
            "postgresql",
            json!({"host": "127.0.0.1", "port": 5432, "database": "postgres",
                   "adminUser": "admin", "adminPass": "admin-pass", "projectReference": ""}),
            "u",
            "{}",
        ),
    );
    let config = machine.agents_dir().join("sk_open.json");
    std::fs::create_dir_all(machine.agents_dir()).unwrap();
    std::fs::write(
        &config,
        json!({"secretId": "sk_open", "providerType": "postgresql",
               "connection": {"host": "127.0.0.1", "port": 5432, "adminUser": "admin",
                              "adminPass": "local-admin-pass"}})
        .to_string(),
    )
    .unwrap();
    set_mode(&config, 0o644);
    let mut agent = machine.spawn_agent("sk_open");
    agent.expect_exit(Exit::Config);
    assert_contains(
        &agent.output(),
        &format!(
            "local agent config {} is readable or writable by others (mode 0644)",
            config.display()
        ),
    );
    assert_contains(&agent.output(), "chmod 600");
    assert_eq!(cp.calls(Endpoint::SyncConfig), 0);
    std::fs::remove_file(&config).unwrap();

    let key = machine.home.path().join("client.key");
    let cert = machine.home.path().join("client.pem");
    std::fs::write(&key, "key").unwrap();
    std::fs::write(&cert, "cert").unwrap();
    set_mode(&key, 0o644);
    let mut cmd = machine.command(&["start", "--secret", "sk_open"]);
    cmd.env("PGSSLMODE", "require")
        .env("PGSSLCERT", &cert)
        .env("PGSSLKEY", &key);
    let mut agent = crate::support::AgentProcess::spawn(cmd);
    agent.expect_exit(Exit::Config);
    assert_contains(
        &agent.output(),
        &format!(
            "TLS client key {} is readable or writable by others (mode 0644)",
            key.display()
        ),
    );
}

/// Settings fail closed: a value the agent does not understand exits 2 naming the variable
/// and what it accepts, before anything runs (`SIKKERKEY_DRIFT_REPAIR=disabled` does not
/// repair, and `SIKKERKEY_DRIFT_CHECK_SECONDS=off` is not taken for the default 60 s).
#[test]
fn a_setting_with_a_value_the_agent_does_not_understand_exits_2() {
    let cp = FakeControlPlane::start();
    let machine = Machine::new(&cp);
    for (var, value, accepted) in [
        (
            "SIKKERKEY_DRIFT_REPAIR",
            "disabled",
            "off, detect-only, false, no, 0 (detect-only)",
        ),
        (
            "SIKKERKEY_DRIFT_CHECK_SECONDS",
            "off",
            "a whole number of seconds (0 turns the check off)",
        ),
        (
            "SIKKERKEY_STOP_TIMEOUT_MS",
            "60s",
            "a whole number of milliseconds",
        ),
    ] {
        for command in [&["start", "--secret", "sk_set"][..], &["list"][..]] {
            let mut cmd = machine.command(command);
            cmd.env(var, value);
            let mut agent = crate::support::AgentProcess::spawn(cmd);
            agent.expect_exit(Exit::Usage);
            assert_contains(&agent.output(), &format!("error: {var}=\"{value}\""));
            assert_contains(&agent.output(), accepted);
        }
        // `status` keeps the monitoring-plugin convention: UNKNOWN, not CRITICAL.
        let mut cmd = machine.command(&["status", "--secret", "sk_set"]);
        cmd.env(var, value);
        let mut status = crate::support::AgentProcess::spawn(cmd);
        assert_eq!(
            status.wait_exit(SOON).code(),
            Some(3),
            "{}",
            status.output()
        );
        assert_contains(&status.output(), &format!("error: {var}=\"{value}\""));
    }
    assert_eq!(cp.calls(Endpoint::SyncConfig), 0);
}

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    let cp = FakeControlPlane::start();
    let mut machine = Machine::new(&cp);
    machine.api_url = "http://sikkerkey.example.com".into();
    let mut agent = machine.spawn_agent("sk_http");
    agent.expect_exit(Exit::Config);
    assert_contains(&agent.output(), "https://");
}

db_test!(
    sigterm_lets_the_rotation_in_flight_finish,
    Pg::open(),
    |pg| {
        let w = World::plain(pg);
        let mut agent = w.start();
        let mut blocker = pg.hold_role_row(&w.user);
        w.cp.set_pending(&w.secret, "rot_term", &secret_value(&w.user, "term-new-pw"));
        agent.wait_until(SOON, "the rotation to start", || {
            agent.output().contains("pending rotation rot_term")
        });
        agent.signal("TERM");
        agent.wait_until(SOON, "the agent to acknowledge the stop", || {
            agent.output().contains("stopping")
        });
        assert!(
            agent.try_status().is_none(),
            "the agent exited with a rotation in flight"
        );
        blocker.batch_execute("ROLLBACK").unwrap();
        agent.expect_exit(Exit::Ok);
        assert_eq!(w.cp.confirms(&w.secret), vec!["rot_term".to_owned()]);
        assert_password(pg, &w.user, "term-new-pw", &w.old_pw);
        assert!(!w.journal_exists());
    }
);

db_test!(
    second_signal_exits_at_once_and_the_restart_finishes,
    Pg::open(),
    |pg| {
        let w = World::plain(pg);
        let mut agent = w.start();
        let mut blocker = pg.hold_role_row(&w.user);
        w.cp.set_pending(
            &w.secret,
            "rot_twice",
            &secret_value(&w.user, "twice-new-pw"),
        );
        // The journal exists once the rotation is past its snapshot and about to write.
        agent.wait_until(SOON, "the journal of the blocked rotation", || {
            w.journal_exists()
        });
        agent.signal("TERM");
        agent.wait_until(SOON, "the agent to acknowledge the stop", || {
            agent.output().contains("stopping")
        });
        agent.signal("TERM");
        agent.expect_exit(Exit::Interrupted);
        assert!(
            w.journal_exists(),
            "the journal must survive an immediate exit"
        );
        blocker.batch_execute("ROLLBACK").unwrap();
        let agent = w.machine.spawn_agent(&w.secret);
        w.wait_confirmed("rot_twice", &agent);
        w.wait_journal_cleared(&agent);
        assert_password(pg, &w.user, "twice-new-pw", &w.old_pw);
        w.finish(agent, &[&w.old_pw, "twice-new-pw"]);
    }
);

db_test!(
    a_second_local_agent_for_the_same_secret_is_refused,
    Pg::open(),
    |pg| {
        let w = World::plain(pg);
        let first = w.start();
        let mut second = w.machine.spawn_agent(&w.secret);
        second.expect_exit(Exit::Failure);
        assert_contains(&second.output(), &format!("PID {}", first.pid()));
        w.cp.set_pending(
            &w.secret,
            "rot_local_twice",
            &secret_value(&w.user, "local-twice-pw"),
        );
        w.wait_confirmed("rot_local_twice", &first);
        w.finish(first, &[&w.old_pw, "local-twice-pw"]);
    }
);

db_test!(
    a_database_that_stops_answering_leads_to_a_restart_not_a_silent_agent,
    Pg::open(),
    |pg| {
        let w = World::behind_proxy(pg);
        let mut agent = w.spawn_agent_with(&[JOB_DEADLINE]);
        w.wait_healthy(&mut agent);
        w.proxy().hang();
        w.cp.set_pending(&w.secret, "rot_hang", &secret_value(&w.user, "hang-new-pw"));
        agent.wait_until(SOON, "an error heartbeat about the stuck job", || {
            w.error_heartbeat_says("running")
        });
        agent.expect_exit(Exit::WorkerCrashed);
        // Nothing reached the database; the rotation is still pending for the next agent.
        assert_password(pg, &w.user, &w.old_pw, "hang-new-pw");
        assert_eq!(
            w.cp.pending(&w.secret).map(|p| p.0).as_deref(),
            Some("rot_hang")
        );
        w.proxy().restore();
        let agent = w.machine.spawn_agent(&w.secret);
        w.wait_confirmed("rot_hang", &agent);
        assert_password(pg, &w.user, "hang-new-pw", &w.old_pw);
        w.finish(agent, &[&w.old_pw, "hang-new-pw"]);
    }
);

db_test!(
    a_database_that_never_answers_fails_the_start_up_check_in_time,
    Pg::open(),
    |pg| {
        let w = World::behind_proxy(pg);
        w.proxy().hang();
        let mut agent = w.spawn_agent_with(&[JOB_DEADLINE]);
        agent.expect_exit(Exit::Database);
        assert_contains(&agent.output(), "no answer within");
    }
);

db_test!(
    new_admin_credentials_from_the_server_take_effect_without_a_restart,
    Pg::open(),
    |pg| {
        let (first, first_pw) = pg.create_admin("ska_adm1", "SUPERUSER");
        let (second, second_pw) = pg.create_admin("ska_adm2", "SUPERUSER");
        let w = World::plain(pg);
        w.use_admin(&first, &first_pw);
        let agent = w.start();
        // The dashboard gets a new admin; the old one stops working.
        w.use_admin(&second, &second_pw);
        agent.wait_until(SOON, "the agent to adopt the new admin", || {
            agent.output().contains(&format!("as admin \"{second}\""))
        });
        pg.block_login(&first);
        w.cp.set_pending(
            &w.secret,
            "rot_new_admin",
            &secret_value(&w.user, "new-admin-era-pw"),
        );
        w.wait_confirmed("rot_new_admin", &agent);
        assert_password(pg, &w.user, "new-admin-era-pw", &w.old_pw);
        w.finish(
            agent,
            &[&w.old_pw, "new-admin-era-pw", &first_pw, &second_pw],
        );
        pg.drop_user(&first);
        pg.drop_user(&second);
    }
);
