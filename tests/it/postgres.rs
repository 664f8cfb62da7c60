//! PostgreSQL end to end: the shared failure scenarios plus what only PostgreSQL shows
//! (stored-verifier snapshots, CREATEROLE-only admins, lock waits), all against the
//! scram-sha-256 cluster that `make test` starts.

use std::time::Duration;

use postgres::error::SqlState;
use postgres::{Client, NoTls};
use serde_json::{Value, json};

use crate::scenarios::{self, Database, SOON, World, assert_password, secret_value};
use crate::support::{
    Endpoint, FakeControlPlane, Fault, Machine, SecretState, random_text, require_env, unique_name,
};

pub struct Pg {
    host: String,
    port: u16,
    admin_user: String,
    admin_pass: String,
}

impl Pg {
    /// The test cluster, or `None` (skip) outside CI when it is not running.
    pub fn from_env() -> Option<Pg> {
        Some(Pg {
            host: require_env("SKA_PG_HOST", "PostgreSQL")?,
            port: require_env("SKA_PG_PORT", "PostgreSQL")?.parse().unwrap(),
            admin_user: require_env("SKA_PG_ADMIN_USER", "PostgreSQL")?,
            admin_pass: require_env("SKA_PG_ADMIN_PASS", "PostgreSQL")?,
        })
    }

    fn connect_as(&self, user: &str, password: &str) -> Result<Client, postgres::Error> {
        postgres::Config::new()
            .host(&self.host)
            .port(self.port)
            .user(user)
            .password(password)
            .dbname("postgres")
            .connect_timeout(Duration::from_secs(10))
            .connect(NoTls)
    }

    pub fn admin(&self) -> Client {
        self.connect_as(&self.admin_user, &self.admin_pass)
            .expect("admin login to the test cluster")
    }

    fn exec(&self, sql: &str) {
        self.admin()
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    fn stored_verifier(&self, name: &str) -> Option<String> {
        self.admin()
            .query_opt(
                "SELECT rolpassword FROM pg_authid WHERE rolname = $1",
                &[&name],
            )
            .unwrap()
            .and_then(|r| r.get(0))
    }
}

fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl Database for Pg {
    fn provider_type(&self) -> &'static str {
        "postgresql"
    }
    fn endpoint(&self) -> (String, u16) {
        (self.host.clone(), self.port)
    }
    fn connection(&self, host: &str, port: u16) -> Value {
        json!({"host": host, "port": port, "database": "postgres", "adminUser": self.admin_user,
               "adminPass": self.admin_pass, "projectReference": ""})
    }
    fn admin_password(&self) -> String {
        self.admin_pass.clone()
    }
    fn create_user(&self, name: &str, password: &str) {
        let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
        self.exec(&format!(
            "CREATE ROLE {} LOGIN PASSWORD {}",
            ident(name),
            literal(&verifier)
        ));
    }
    fn drop_user(&self, name: &str) {
        self.exec(&format!("DROP ROLE IF EXISTS {}", ident(name)));
    }
    fn can_login(&self, name: &str, password: &str) -> bool {
        match self.connect_as(name, password) {
            Ok(_) => true,
            Err(e)
                if matches!(
                    e.code(),
                    Some(&SqlState::INVALID_PASSWORD)
                        | Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION)
                ) =>
            {
                false
            }
            Err(e) => panic!("cannot reach the test cluster: {e:?}"),
        }
    }
    fn block_login(&self, name: &str) {
        self.exec(&format!("ALTER ROLE {} NOLOGIN", ident(name)));
    }
    fn unblock_login(&self, name: &str) {
        self.exec(&format!("ALTER ROLE {} LOGIN", ident(name)));
    }
    fn hostile_name(&self) -> String {
        format!("app\"; DROP ROLE x; --'\\ø{}", unique_name("h"))
    }
}

macro_rules! pg_test {
    ($name:ident, $body:expr) => {
        #[test]
        fn $name() {
            let Some(pg) = Pg::from_env() else { return };
            let f: &dyn Fn(&Pg) = &$body;
            f(&pg);
        }
    };
}

crate::scenarios::shared_scenarios!(pg_test);
pg_test!(verify_fails_rolls_back, |pg| {
    scenarios::verify_fails_rolls_back(pg)
});

pg_test!(rollback_restores_the_exact_stored_verifier, |pg| {
    let w = World::plain(pg);
    let before = pg.stored_verifier(&w.user).unwrap();
    let agent = w.start();
    pg.block_login(&w.user);
    w.cp.set_pending(
        &w.secret,
        "rot_exact",
        &secret_value(&w.user, "new-pw-exact"),
    );
    w.wait_rejected("rot_exact", &agent);
    w.wait_journal_cleared(&agent);
    assert_eq!(
        pg.stored_verifier(&w.user).unwrap(),
        before,
        "rollback must put the very same verifier back"
    );
    pg.unblock_login(&w.user);
    w.finish(agent, &[&w.old_pw, "new-pw-exact"]);
});

pg_test!(role_created_by_a_failed_rotation_is_dropped, |pg| {
    // The managed role does not exist yet. The agent works in a database that PUBLIC may
    // not connect to, so verification fails and the rollback must remove the role it
    // created. The database is this test's own: other tests never see the restriction.
    let database = unique_name("ska_locked_db");
    pg.exec(&format!("CREATE DATABASE {}", ident(&database)));
    pg.exec(&format!(
        "REVOKE CONNECT ON DATABASE {} FROM PUBLIC",
        ident(&database)
    ));
    let w = World::plain(pg);
    w.cp.with_secret(&w.secret, |s| s.connection["database"] = json!(database));
    let fresh = unique_name("ska_new");
    let agent = w.start();
    w.cp.set_pending(&w.secret, "rot_create", &secret_value(&fresh, "created-pw"));
    let error = w.wait_rejected("rot_create", &agent);
    assert!(error.contains("verification failed"), "{error}");
    w.wait_journal_cleared(&agent);
    assert!(pg.stored_verifier(&fresh).is_none());
    let exists: bool = pg
        .admin()
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)",
            &[&fresh],
        )
        .unwrap()
        .get(0);
    assert!(
        !exists,
        "the role the failed rotation created is still there"
    );
    w.finish(agent, &[&w.old_pw, "created-pw"]);
    pg.exec(&format!("DROP DATABASE {}", ident(&database)));
});

pg_test!(createrole_admin_rolls_back_from_the_live_value, |pg| {
    // An admin without SUPERUSER cannot read pg_authid: the snapshot is "the live value".
    let admin = unique_name("ska_cr_admin");
    let admin_pw = format!("adm-{}", random_text(12));
    pg.create_user(&admin, &admin_pw);
    pg.exec(&format!("ALTER ROLE {} CREATEROLE", ident(&admin)));
    let w = World::plain(pg);
    // PostgreSQL 16+ needs ADMIN OPTION on a role to alter it; grant it where supported.
    let _ = pg.admin().batch_execute(&format!(
        "GRANT {} TO {} WITH ADMIN OPTION",
        ident(&w.user),
        ident(&admin)
    ));
    w.cp.with_secret(&w.secret, |s| {
        s.connection["adminUser"] = json!(admin);
        s.connection["adminPass"] = json!(admin_pw);
    });
    let agent = w.start();
    pg.block_login(&w.user);
    w.cp.set_pending(&w.secret, "rot_cr", &secret_value(&w.user, "new-cr-pw"));
    w.wait_rejected("rot_cr", &agent);
    // The rollback re-sets the live value and cannot prove it by logging in: the blocked
    // role may not log in at all. The restore is accepted and said so (issue 11, item 8),
    // never retried forever with every later rotation stuck behind it.
    agent.wait_until(
        SOON,
        "the agent to report the unverifiable rollback",
        || agent.output().contains("the login check is impossible"),
    );
    w.wait_journal_cleared(&agent);
    pg.unblock_login(&w.user);
    assert_password(pg, &w.user, &w.old_pw, "new-cr-pw");
    assert!(
        w.cp.calls(Endpoint::Secret) >= 1,
        "the live value was never read for the rollback"
    );
    w.finish(agent, &[&w.old_pw, "new-cr-pw", &admin_pw]);
    pg.drop_user(&admin);
});

pg_test!(admin_without_createrole_is_refused_at_start, |pg| {
    let admin = unique_name("ska_weak");
    let admin_pw = format!("weak-{}", random_text(12));
    pg.create_user(&admin, &admin_pw);
    let w = World::plain(pg);
    w.cp.with_secret(&w.secret, |s| {
        s.connection["adminUser"] = json!(admin);
        s.connection["adminPass"] = json!(admin_pw);
    });
    let mut agent = w.machine.spawn_agent(&w.secret);
    let status = agent.wait_exit(SOON);
    assert_eq!(status.code(), Some(6), "output:\n{}", agent.output());
    assert!(
        agent.output().contains("CREATEROLE"),
        "the error should name the missing privilege:\n{}",
        agent.output()
    );
    assert!(
        w.cp.heartbeats(&w.secret)
            .iter()
            .any(|h| h.status == "error" && h.error.contains("CREATEROLE"))
    );
    scenarios::assert_no_leak(&agent.output(), &[&admin_pw, &w.old_pw], &pg.admin_pass);
    pg.drop_user(&admin);
});

pg_test!(heartbeats_keep_coming_during_a_slow_rotation, |pg| {
    let w = World::plain(pg);
    let agent = w.start();
    let mut blocker = block_role_row(pg, &w.user);
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
});

pg_test!(secret_deleted_exits_cleanly, |pg| {
    let w = World::plain(pg);
    let mut agent = w.start();
    w.cp.delete_secret(&w.secret);
    let status = agent.wait_exit(SOON);
    assert_eq!(status.code(), Some(0), "output:\n{}", agent.output());
    assert!(agent.output().contains("secret"), "{}", agent.output());
    assert!(
        !w.machine
            .agents_dir()
            .join(format!("{}.pid", w.secret))
            .exists(),
        "PID file left behind"
    );
});

pg_test!(access_revoked_exits_cleanly, |pg| {
    let w = World::plain(pg);
    let mut agent = w.start();
    w.cp.revoke(&w.secret, &w.machine.id);
    let status = agent.wait_exit(SOON);
    assert_eq!(status.code(), Some(0), "output:\n{}", agent.output());
    assert!(agent.output().contains("403"), "{}", agent.output());
});

pg_test!(second_machine_is_locked_out, |pg| {
    let w = World::plain(pg);
    let first = w.start();
    let other = Machine::new(&w.cp);
    let mut second = other.spawn_agent(&w.secret);
    let status = second.wait_exit(SOON);
    assert_eq!(status.code(), Some(4), "output:\n{}", second.output());
    assert!(
        second.output().contains("409") && second.output().contains("another machine"),
        "{}",
        second.output()
    );
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

pg_test!(control_plane_outage_is_reported_and_recovered, |pg| {
    let w = World::plain(pg);
    let agent = w.start();
    w.cp.inject(Endpoint::SyncConfig, Fault::Status(503), 4);
    agent.wait_until(SOON, "an error heartbeat naming the poll failure", || {
        w.cp.heartbeats(&w.secret)
            .iter()
            .any(|h| h.status == "error" && h.error.contains("poll failed"))
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
});

pg_test!(worker_panic_turns_the_heartbeat_to_error, |pg| {
    let w = World::plain(pg);
    let mut cmd = w.machine.command(&["start", "--secret", &w.secret]);
    cmd.env("SIKKERKEY_AGENT_TEST_PANIC", "worker-sync");
    let mut agent = crate::support::AgentProcess::spawn(cmd);
    let status = agent.wait_exit(SOON);
    assert_eq!(status.code(), Some(70), "output:\n{}", agent.output());
    let beats = w.cp.heartbeats(&w.secret);
    assert_eq!(
        beats.last().map(|h| h.status.as_str()),
        Some("error"),
        "last heartbeat after a worker crash: {beats:?}"
    );
});

pg_test!(unknown_provider_is_a_clear_start_up_error, |pg| {
    let w = World::plain(pg);
    w.cp.with_secret(&w.secret, |s| s.provider_type = "oracle".into());
    let mut agent = w.machine.spawn_agent(&w.secret);
    assert_eq!(agent.wait_exit(SOON).code(), Some(3));
    let out = agent.output();
    assert!(
        out.contains("oracle") && out.contains("postgresql") && out.contains("mongodb"),
        "{out}"
    );
});

#[test]
fn readable_private_key_is_refused() {
    let cp = FakeControlPlane::start();
    let machine = Machine::new(&cp);
    let key = machine.home.path().join("vaults/vault1/private.pem");
    crate::support::set_mode(&key, 0o644);
    cp.add_secret(
        "sk_perm",
        SecretState::new("postgresql", json!({}), "u", "{}"),
    );
    let mut agent = machine.spawn_agent("sk_perm");
    assert_eq!(agent.wait_exit(SOON).code(), Some(3));
    assert!(agent.output().contains("chmod 600"), "{}", agent.output());
    assert_eq!(cp.calls(Endpoint::SyncConfig), 0);
}

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    let cp = FakeControlPlane::start();
    let mut machine = Machine::new(&cp);
    machine.api_url = "http://sikkerkey.example.com".into();
    let mut agent = machine.spawn_agent("sk_http");
    assert_eq!(agent.wait_exit(SOON).code(), Some(3));
    assert!(agent.output().contains("https://"), "{}", agent.output());
}

/// Holds the role's catalog row in an open transaction so the agent's ALTER ROLE waits.
fn block_role_row(pg: &Pg, user: &str) -> Client {
    let mut blocker = pg.admin();
    blocker.batch_execute("BEGIN").unwrap();
    blocker
        .batch_execute(&format!("ALTER ROLE {} CONNECTION LIMIT 5", ident(user)))
        .unwrap();
    blocker
}

pg_test!(sigterm_lets_the_rotation_in_flight_finish, |pg| {
    let w = World::plain(pg);
    let mut agent = w.start();
    let mut blocker = block_role_row(pg, &w.user);
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
    let status = agent.wait_exit(SOON);
    assert!(status.success(), "output:\n{}", agent.output());
    assert_eq!(w.cp.confirms(&w.secret), vec!["rot_term".to_owned()]);
    assert_password(pg, &w.user, "term-new-pw", &w.old_pw);
    assert!(!w.journal_exists());
});

pg_test!(second_signal_exits_at_once_and_the_restart_finishes, |pg| {
    let w = World::plain(pg);
    let mut agent = w.start();
    let mut blocker = block_role_row(pg, &w.user);
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
    let status = agent.wait_exit(SOON);
    assert_eq!(status.code(), Some(130), "output:\n{}", agent.output());
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
});

pg_test!(a_second_local_agent_for_the_same_secret_is_refused, |pg| {
    let w = World::plain(pg);
    let first = w.start();
    let mut second = w.machine.spawn_agent(&w.secret);
    assert_eq!(
        second.wait_exit(SOON).code(),
        Some(1),
        "output:\n{}",
        second.output()
    );
    assert!(
        second.output().contains(&format!("PID {}", first.pid())),
        "{}",
        second.output()
    );
    w.cp.set_pending(
        &w.secret,
        "rot_local_twice",
        &secret_value(&w.user, "local-twice-pw"),
    );
    w.wait_confirmed("rot_local_twice", &first);
    w.finish(first, &[&w.old_pw, "local-twice-pw"]);
});

pg_test!(
    a_database_that_stops_answering_leads_to_a_restart_not_a_silent_agent,
    |pg| {
        let w = World::new(
            pg,
            pg.plain_name(),
            format!("old-{}", random_text(12)),
            true,
        );
        let mut cmd = w.machine.command(&["start", "--secret", &w.secret]);
        cmd.env("SIKKERKEY_AGENT_JOB_DEADLINE_MS", "1500");
        let mut agent = crate::support::AgentProcess::spawn(cmd);
        w.wait_healthy(&mut agent);
        w.proxy.as_ref().unwrap().hang();
        w.cp.set_pending(&w.secret, "rot_hang", &secret_value(&w.user, "hang-new-pw"));
        agent.wait_until(SOON, "an error heartbeat about the stuck job", || {
            w.cp.heartbeats(&w.secret)
                .iter()
                .any(|h| h.status == "error" && h.error.contains("running"))
        });
        let status = agent.wait_exit(SOON);
        assert_eq!(status.code(), Some(70), "output:\n{}", agent.report());
        // Nothing reached the database; the rotation is still pending for the next agent.
        assert_password(pg, &w.user, &w.old_pw, "hang-new-pw");
        assert_eq!(
            w.cp.pending(&w.secret).map(|p| p.0).as_deref(),
            Some("rot_hang")
        );
        w.proxy.as_ref().unwrap().restore();
        let agent = w.machine.spawn_agent(&w.secret);
        w.wait_confirmed("rot_hang", &agent);
        assert_password(pg, &w.user, "hang-new-pw", &w.old_pw);
        w.finish(agent, &[&w.old_pw, "hang-new-pw"]);
    }
);

pg_test!(
    a_database_that_never_answers_fails_the_start_up_check_in_time,
    |pg| {
        let w = World::new(
            pg,
            pg.plain_name(),
            format!("old-{}", random_text(12)),
            true,
        );
        w.proxy.as_ref().unwrap().hang();
        let mut cmd = w.machine.command(&["start", "--secret", &w.secret]);
        cmd.env("SIKKERKEY_AGENT_JOB_DEADLINE_MS", "1500");
        let mut agent = crate::support::AgentProcess::spawn(cmd);
        let status = agent.wait_exit(SOON);
        assert_eq!(status.code(), Some(6), "output:\n{}", agent.report());
        assert!(
            agent.output().contains("no answer within"),
            "{}",
            agent.output()
        );
    }
);

pg_test!(
    new_admin_credentials_from_the_server_take_effect_without_a_restart,
    |pg| {
        let (first, second) = (unique_name("ska_adm1"), unique_name("ska_adm2"));
        let (first_pw, second_pw) = (
            format!("a1-{}", random_text(12)),
            format!("a2-{}", random_text(12)),
        );
        for (name, pw) in [(&first, &first_pw), (&second, &second_pw)] {
            pg.create_user(name, pw);
            pg.exec(&format!("ALTER ROLE {} SUPERUSER", ident(name)));
        }
        let w = World::plain(pg);
        w.cp.with_secret(&w.secret, |s| {
            s.connection["adminUser"] = json!(first);
            s.connection["adminPass"] = json!(first_pw);
        });
        let agent = w.start();
        // The dashboard gets a new admin; the old one stops working.
        w.cp.with_secret(&w.secret, |s| {
            s.connection["adminUser"] = json!(second);
            s.connection["adminPass"] = json!(second_pw);
        });
        agent.wait_until(SOON, "the agent to adopt the new admin", || {
            agent.output().contains(&format!("as admin \"{second}\""))
        });
        pg.exec(&format!("ALTER ROLE {} NOLOGIN", ident(&first)));
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

pg_test!(
    no_snapshot_at_all_rejects_before_touching_the_database,
    |pg| {
        // A CREATEROLE admin cannot read the stored verifier, and the live value cannot be
        // read either: without a way back, the rotation must not start.
        let admin = unique_name("ska_nosnap");
        let admin_pw = format!("ns-{}", random_text(12));
        pg.create_user(&admin, &admin_pw);
        pg.exec(&format!("ALTER ROLE {} CREATEROLE", ident(&admin)));
        let w = World::plain(pg);
        let _ = pg.admin().batch_execute(&format!(
            "GRANT {} TO {} WITH ADMIN OPTION",
            ident(&w.user),
            ident(&admin)
        ));
        w.cp.with_secret(&w.secret, |s| {
            s.connection["adminUser"] = json!(admin);
            s.connection["adminPass"] = json!(admin_pw);
        });
        let agent = w.start();
        w.cp.inject(Endpoint::Secret, Fault::Status(503), 1000);
        w.cp.set_pending(
            &w.secret,
            "rot_nosnap",
            &secret_value(&w.user, "nosnap-new-pw"),
        );
        let error = w.wait_rejected("rot_nosnap", &agent);
        assert!(error.contains("snapshot"), "{error}");
        assert_password(pg, &w.user, &w.old_pw, "nosnap-new-pw");
        assert!(!w.journal_exists());
        w.cp.clear_faults();
        w.finish(agent, &[&w.old_pw, "nosnap-new-pw", &admin_pw]);
        pg.drop_user(&admin);
    }
);
