//! The failure scenarios every provider must survive, written once against the
//! [`Database`] trait. Each runs the real agent binary against the fake control plane and
//! a real database, and checks the outcome by logging in as the managed user.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::proxy::TcpProxy;
use crate::support::{
    AgentProcess, Endpoint, FakeControlPlane, Fault, Machine, SecretState, random_text, unique_name,
};

/// Generous bound for anything the agent should do within a few poll intervals.
pub const SOON: Duration = Duration::from_secs(30);

/// A database under test, seen from outside the agent.
pub trait Database {
    fn provider_type(&self) -> &'static str;
    /// Where the database listens.
    fn endpoint(&self) -> (String, u16);
    /// The sync config's `connection` object for an agent reaching the database at host:port.
    fn connection(&self, host: &str, port: u16) -> Value;
    /// The admin password, to check it never shows in output.
    fn admin_password(&self) -> String;
    fn create_user(&self, name: &str, password: &str);
    fn drop_user(&self, name: &str);
    /// Whether `name` can log in with `password` (a refused login is `false`; an
    /// unreachable server panics).
    fn can_login(&self, name: &str, password: &str) -> bool;
    /// Makes logins of `name` fail while password changes still succeed.
    fn block_login(&self, name: &str);
    fn unblock_login(&self, name: &str);
    /// A unique user name full of characters that break naive quoting.
    fn hostile_name(&self) -> String;
    /// A unique ordinary user name.
    fn plain_name(&self) -> String {
        unique_name("ska")
    }
}

pub fn secret_value(user: &str, password: &str) -> String {
    json!({"username": user, "password": password}).to_string()
}

/// The database has `expected` for `user`: it logs in, while `other` and a random
/// password are refused.
pub fn assert_password(db: &dyn Database, user: &str, expected: &str, other: &str) {
    assert!(
        db.can_login(user, expected),
        "{user:?} cannot log in with the password it should have"
    );
    assert!(
        !db.can_login(user, other),
        "{user:?} still logs in with the password it should no longer have"
    );
    assert!(
        !db.can_login(user, &random_text(20)),
        "{user:?} logs in with a random password: the server does not check passwords"
    );
}

/// One scenario's world: control plane, machine, secret, user.
pub struct World<'a> {
    pub db: &'a dyn Database,
    pub cp: FakeControlPlane,
    pub machine: Machine,
    pub secret: String,
    pub user: String,
    pub old_pw: String,
    pub proxy: Option<TcpProxy>,
}

impl<'a> World<'a> {
    /// A user with a known password and a secret whose live value is that password.
    pub fn new(db: &'a dyn Database, user: String, old_pw: String, through_proxy: bool) -> Self {
        Self::with_control_plane(db, FakeControlPlane::start(), user, old_pw, through_proxy)
    }

    /// [`World::new`] with a given control plane (e.g. one serving HTTPS).
    pub fn with_control_plane(
        db: &'a dyn Database,
        cp: FakeControlPlane,
        user: String,
        old_pw: String,
        through_proxy: bool,
    ) -> Self {
        db.create_user(&user, &old_pw);
        let machine = Machine::new(&cp);
        let secret = unique_name("sk");
        let (host, port) = db.endpoint();
        let proxy = through_proxy.then(|| TcpProxy::start(&format!("{host}:{port}")));
        let connection = match &proxy {
            Some(p) => db.connection("127.0.0.1", p.port()),
            None => db.connection(&host, port),
        };
        cp.add_secret(
            &secret,
            SecretState::new(
                db.provider_type(),
                connection,
                &user,
                &secret_value(&user, &old_pw),
            ),
        );
        World {
            db,
            cp,
            machine,
            secret,
            user,
            old_pw,
            proxy,
        }
    }

    pub fn plain(db: &'a dyn Database) -> Self {
        Self::new(
            db,
            db.plain_name(),
            format!("old-{}", random_text(16)),
            false,
        )
    }

    pub fn start(&self) -> AgentProcess {
        let mut agent = self.machine.spawn_agent(&self.secret);
        self.wait_healthy(&mut agent);
        agent
    }

    pub fn wait_healthy(&self, agent: &mut AgentProcess) {
        let cp = &self.cp;
        let secret = &self.secret;
        let start = cp.heartbeats(secret).len();
        let end = std::time::Instant::now() + SOON;
        while !cp.heartbeats(secret)[start.min(cp.heartbeats(secret).len())..]
            .iter()
            .any(|h| h.status == "healthy")
        {
            if agent.try_status().is_some() || std::time::Instant::now() > end {
                panic!("agent never reported healthy; output:\n{}", agent.report());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn wait_confirmed(&self, rotation: &str, agent: &AgentProcess) {
        agent.wait_until(SOON, &format!("rotation {rotation} confirmed"), || {
            self.cp.confirms(&self.secret).iter().any(|r| r == rotation)
        });
    }

    pub fn wait_rejected(&self, rotation: &str, agent: &AgentProcess) -> String {
        agent.wait_until(SOON, &format!("rotation {rotation} rejected"), || {
            self.cp
                .rejects(&self.secret)
                .iter()
                .any(|(r, _)| r == rotation)
        });
        self.cp
            .rejects(&self.secret)
            .into_iter()
            .find(|(r, _)| r == rotation)
            .unwrap()
            .1
    }

    pub fn journal_exists(&self) -> bool {
        self.machine.journal(&self.secret).exists()
    }

    pub fn wait_journal_cleared(&self, agent: &AgentProcess) {
        agent.wait_until(SOON, "journal removed", || !self.journal_exists());
    }

    /// Stops the agent with SIGTERM, expects exit 0, and checks no secret leaked into its output.
    pub fn finish(&self, mut agent: AgentProcess, secrets: &[&str]) {
        let status = agent.terminate();
        assert!(
            status.success(),
            "agent exit {status:?}; output:\n{}",
            agent.output()
        );
        assert_no_leak(&agent.output(), secrets, &self.db.admin_password());
        assert!(
            self.cp.unauthorized().is_empty(),
            "401s: {:?}",
            self.cp.unauthorized()
        );
    }
}

impl Drop for World<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.db.drop_user(&self.user);
        }
    }
}

pub fn assert_no_leak(output: &str, secrets: &[&str], admin_pass: &str) {
    for s in secrets.iter().copied().chain([admin_pass]) {
        assert!(
            !s.is_empty() && !output.contains(s),
            "a secret appears in the agent's output:\n{output}"
        );
    }
}

fn journal_phase(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v["phase"].as_str().map(str::to_owned)
}

// ---- the scenarios ----

pub fn rotation_confirmed(db: &dyn Database) {
    let w = World::plain(db);
    let agent = w.start();
    let new_pw = format!("new-{}", random_text(16));
    w.cp.set_pending(&w.secret, "rot_confirm", &secret_value(&w.user, &new_pw));
    w.wait_confirmed("rot_confirm", &agent);
    assert_eq!(w.cp.live_value(&w.secret), secret_value(&w.user, &new_pw));
    assert_password(db, &w.user, &new_pw, &w.old_pw);
    // The agent removes the journal once the confirmation's answer arrives, which can be
    // a moment after the server recorded it.
    w.wait_journal_cleared(&agent);
    w.finish(agent, &[&w.old_pw, &new_pw]);
}

pub fn rotation_pending_before_start(db: &dyn Database) {
    let w = World::plain(db);
    let new_pw = format!("new-{}", random_text(16));
    w.cp.set_pending(&w.secret, "rot_early", &secret_value(&w.user, &new_pw));
    let agent = w.machine.spawn_agent(&w.secret);
    w.wait_confirmed("rot_early", &agent);
    assert_password(db, &w.user, &new_pw, &w.old_pw);
    w.finish(agent, &[&w.old_pw, &new_pw]);
}

/// The database goes away after start-up: the rotation is rejected and nothing changes.
pub fn apply_fails_when_database_unreachable(db: &dyn Database) {
    let w = World::new(
        db,
        db.plain_name(),
        format!("old-{}", random_text(16)),
        true,
    );
    let agent = w.start();
    w.proxy.as_ref().unwrap().cut();
    let new_pw = format!("new-{}", random_text(16));
    w.cp.set_pending(&w.secret, "rot_unreach", &secret_value(&w.user, &new_pw));
    let error = w.wait_rejected("rot_unreach", &agent);
    assert!(
        error.contains("apply failed"),
        "rejection should say apply failed: {error}"
    );
    assert_eq!(w.cp.live_value(&w.secret), secret_value(&w.user, &w.old_pw));
    assert_password(db, &w.user, &w.old_pw, &new_pw);
    // While the database stays away, every heartbeat says so, not just the next one.
    let n = w.cp.heartbeats(&w.secret).len();
    agent.wait_until(SOON, "three heartbeats after the rejection", || {
        w.cp.heartbeats(&w.secret).len() >= n + 3
    });
    let after: Vec<_> = w.cp.heartbeats(&w.secret)[n..]
        .iter()
        .map(|h| h.status.clone())
        .collect();
    assert!(
        after.iter().all(|s| s == "error"),
        "heartbeats while the database is unreachable: {after:?}"
    );
    w.proxy.as_ref().unwrap().restore();
    let n = w.cp.heartbeats(&w.secret).len();
    agent.wait_until(SOON, "healthy again once the database is back", || {
        w.cp.heartbeats(&w.secret)
            .get(n..)
            .is_some_and(|hs| hs.iter().any(|h| h.status == "healthy"))
    });
    assert!(!w.journal_exists());
    w.finish(agent, &[&w.old_pw, &new_pw]);
}

/// The new password is set but logging in with it fails: roll back, old works, reject.
pub fn verify_fails_rolls_back(db: &dyn Database) {
    let w = World::plain(db);
    let agent = w.start();
    db.block_login(&w.user);
    let new_pw = format!("new-{}", random_text(16));
    w.cp.set_pending(&w.secret, "rot_verify", &secret_value(&w.user, &new_pw));
    let error = w.wait_rejected("rot_verify", &agent);
    assert!(
        error.contains("verification failed"),
        "rejection should say verification failed: {error}"
    );
    w.wait_journal_cleared(&agent);
    db.unblock_login(&w.user);
    assert_eq!(w.cp.live_value(&w.secret), secret_value(&w.user, &w.old_pw));
    assert_password(db, &w.user, &w.old_pw, &new_pw);
    w.finish(agent, &[&w.old_pw, &new_pw]);
}

/// Confirm answers 503 `failures` times; the rotation still ends confirmed and consistent.
pub fn confirm_fails_transiently(db: &dyn Database, failures: usize) {
    let w = World::plain(db);
    let agent = w.start();
    w.cp.inject(Endpoint::Confirm, Fault::Status(503), failures);
    let new_pw = format!("new-{}", random_text(16));
    w.cp.set_pending(&w.secret, "rot_503", &secret_value(&w.user, &new_pw));
    w.wait_confirmed("rot_503", &agent);
    assert!(
        w.cp.calls(Endpoint::Confirm) > failures,
        "the agent did not retry the confirmation"
    );
    w.wait_journal_cleared(&agent);
    assert_password(db, &w.user, &new_pw, &w.old_pw);
    w.finish(agent, &[&w.old_pw, &new_pw]);
}

/// The server promotes the value but the answer is lost on the way back.
pub fn confirm_answer_lost(db: &dyn Database) {
    let w = World::plain(db);
    let agent = w.start();
    w.cp.inject(Endpoint::Confirm, Fault::ProcessThenClose, 1);
    let new_pw = format!("new-{}", random_text(16));
    w.cp.set_pending(&w.secret, "rot_lost", &secret_value(&w.user, &new_pw));
    w.wait_confirmed("rot_lost", &agent);
    w.wait_journal_cleared(&agent);
    assert_eq!(w.cp.live_value(&w.secret), secret_value(&w.user, &new_pw));
    assert_password(db, &w.user, &new_pw, &w.old_pw);
    w.finish(agent, &[&w.old_pw, &new_pw]);
}

/// SIGKILL after apply and before the confirmation lands; the restarted agent finishes.
/// With `server_resets`, the server drops the rotation while the agent is down, so the
/// database must go back to the old (live) password.
pub fn killed_between_apply_and_confirm(db: &dyn Database, server_resets: bool) {
    let w = World::plain(db);
    let mut agent = w.start();
    w.cp.inject(Endpoint::Confirm, Fault::Status(503), 100_000);
    let new_pw = format!("new-{}", random_text(16));
    w.cp.set_pending(&w.secret, "rot_kill", &secret_value(&w.user, &new_pw));
    let journal = w.machine.journal(&w.secret);
    agent.wait_until(SOON, "journal in phase confirming", || {
        journal_phase(&journal).as_deref() == Some("confirming")
    });
    agent.kill9();
    assert_password(db, &w.user, &new_pw, &w.old_pw);
    assert_no_leak(&agent.output(), &[&w.old_pw, &new_pw], &db.admin_password());
    w.cp.clear_faults();
    if server_resets {
        w.cp.clear_pending(&w.secret);
    }
    let agent = w.machine.spawn_agent(&w.secret);
    w.wait_journal_cleared(&agent);
    if server_resets {
        assert_eq!(w.cp.live_value(&w.secret), secret_value(&w.user, &w.old_pw));
        assert_password(db, &w.user, &w.old_pw, &new_pw);
    } else {
        w.wait_confirmed("rot_kill", &agent);
        assert_eq!(w.cp.live_value(&w.secret), secret_value(&w.user, &new_pw));
        assert_password(db, &w.user, &new_pw, &w.old_pw);
    }
    w.finish(agent, &[&w.old_pw, &new_pw]);
}

/// A hostile user name gets exactly the hostile password; a bystander is untouched.
pub fn hostile_name_and_password(db: &dyn Database) {
    let bystander = db.plain_name();
    let bystander_pw = format!("by-{}", random_text(12));
    db.create_user(&bystander, &bystander_pw);
    let user = db.hostile_name();
    let old_pw = format!("o'ld\"\\${}ø", random_text(8));
    let w = World::new(db, user, old_pw, false);
    let agent = w.start();
    let new_pw = format!("n'; DROP USER x; --\"\\$`{}æøå€", random_text(8));
    w.cp.set_pending(&w.secret, "rot_hostile", &secret_value(&w.user, &new_pw));
    w.wait_confirmed("rot_hostile", &agent);
    assert_password(db, &w.user, &new_pw, &w.old_pw);
    assert!(
        db.can_login(&bystander, &bystander_pw),
        "a bystander user was changed"
    );
    w.finish(agent, &[&w.old_pw, &new_pw]);
    db.drop_user(&bystander);
}

/// A pending value that is not usable is rejected with a clear error; the database is untouched.
pub fn unusable_pending_value_is_rejected(db: &dyn Database) {
    let w = World::plain(db);
    let agent = w.start();
    w.cp.set_pending(&w.secret, "rot_bad", "{\"username\": \"x\", \"pass\": ");
    let error = w.wait_rejected("rot_bad", &agent);
    assert!(
        error.contains("password"),
        "error should name the missing password field: {error}"
    );
    assert_password(db, &w.user, &w.old_pw, "{\"username\": \"x\", \"pass\": ");
    assert!(!w.journal_exists());
    w.finish(agent, &[&w.old_pw]);
}

/// Declares every shared scenario as a test through a provider's own test macro
/// (`$test!(name, |db| body)`), so adding a scenario here runs it for every provider.
/// `verify_fails_rolls_back` is left to each provider: how a rollback is proven differs.
/// Unused in a build without any provider feature.
#[allow(unused_macros)]
macro_rules! shared_scenarios {
    ($test:ident) => {
        $test!(rotation_confirmed, |db| {
            $crate::scenarios::rotation_confirmed(db)
        });
        $test!(rotation_pending_before_start, |db| {
            $crate::scenarios::rotation_pending_before_start(db)
        });
        $test!(apply_fails_when_database_unreachable, |db| {
            $crate::scenarios::apply_fails_when_database_unreachable(db)
        });
        $test!(confirm_503_twice, |db| {
            $crate::scenarios::confirm_fails_transiently(db, 2)
        });
        $test!(confirm_503_beyond_in_job_retries, |db| {
            $crate::scenarios::confirm_fails_transiently(db, 5)
        });
        $test!(confirm_answer_lost, |db| {
            $crate::scenarios::confirm_answer_lost(db)
        });
        $test!(killed_between_apply_and_confirm, |db| {
            $crate::scenarios::killed_between_apply_and_confirm(db, false)
        });
        $test!(killed_then_server_resets_rotation, |db| {
            $crate::scenarios::killed_between_apply_and_confirm(db, true)
        });
        $test!(hostile_name_and_password, |db| {
            $crate::scenarios::hostile_name_and_password(db)
        });
        $test!(unusable_pending_value_is_rejected, |db| {
            $crate::scenarios::unusable_pending_value_is_rejected(db)
        });
    };
}
#[allow(unused_imports)]
pub(crate) use shared_scenarios;
