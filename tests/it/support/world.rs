//! One scenario's world, seen from outside the agent: the [`Database`] every provider's
//! test server implements, a fake control plane with one secret on it, a machine identity,
//! and the checks every test makes of the outcome (which password works, nothing leaked).

use std::time::Duration;

use serde_json::{Value, json};
use sikkerkey_agent::providers::{DbTimeouts, ProviderKind, Target};
use sikkerkey_agent::secret::Secret;

use crate::support::assertions::{Exit, assert_exit};
use crate::support::proxy::TcpProxy;
use crate::support::{
    AgentProcess, FakeControlPlane, Machine, SOON, SecretState, random_text, unique_name,
};

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
    /// A new admin that can log in but lacks what a rotation needs.
    fn weak_admin(&self) -> WeakAdmin;
    /// Removes an admin made by [`Database::weak_admin`].
    fn drop_admin(&self, name: &str) {
        self.drop_user(name);
    }
    /// The `tls` object of the local config an agent needs to reach this database, when
    /// the provider's default will not do (a server whose logins reveal the password
    /// unless the agent verifies it, e.g. MySQL 8+'s caching_sha2_password): the world
    /// then writes `agents/{secret}.json` with the same connection as the sync config.
    fn agent_tls(&self) -> Option<Value> {
        None
    }
}

/// An admin without the privileges rotations need, and what the agent's refusal names.
pub struct WeakAdmin {
    pub user: String,
    pub password: String,
    /// Words the agent's output must contain: the missing privilege.
    pub output_names: &'static str,
    /// Words the error heartbeat must contain.
    pub heartbeat_names: &'static str,
}

/// A provider target for `db` reached at host:port, built from the same connection object
/// the agent gets, with `timeout` for connecting and for each statement.
pub fn provider_target(db: &dyn Database, host: &str, port: u16, timeout: Duration) -> Target {
    let c = db.connection(host, port);
    let text = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
    Target {
        kind: db.provider_type().parse::<ProviderKind>().unwrap(),
        host: host.to_owned(),
        port,
        database: text("database"),
        admin_user: text("adminUser"),
        admin_pass: Secret::new(text("adminPass")),
        project_reference: text("projectReference"),
        timeouts: DbTimeouts {
            connect: timeout,
            statement: timeout,
        },
        tls: Default::default(),
    }
}

/// `agents/{secret}.json` as `configure` writes it (0600 in a 0700 directory): the sync
/// config's connection object, with a `tls` object.
pub fn write_local_config(
    machine: &Machine,
    secret: &str,
    provider_type: &str,
    connection: &Value,
    tls: Value,
) {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = machine.agents_dir();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .unwrap();
    let config = json!({"secretId": secret, "providerType": provider_type,
                        "connection": connection, "tls": tls});
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(dir.join(format!("{secret}.json")))
        .unwrap();
    std::io::Write::write_all(&mut file, config.to_string().as_bytes()).unwrap();
}

/// A secret's value as the dashboard stores it: the user name and the password.
pub fn secret_value(user: &str, password: &str) -> String {
    json!({"username": user, "password": password}).to_string()
}

/// A new secret on `cp` whose PostgreSQL database at `host`:`port` is never reached
/// (nothing listens there, or the name does not resolve): enough for a test of the
/// control-plane side or of what a failed database check says.
pub fn unreachable_secret(cp: &FakeControlPlane, host: &str, port: u16) -> String {
    let secret = unique_name("sk");
    cp.add_secret(
        &secret,
        SecretState::new(
            "postgresql",
            json!({"host": host, "port": port, "database": "x",
                   "adminUser": "a", "adminPass": "b", "projectReference": ""}),
            "app",
            &secret_value("app", "pw"),
        ),
    );
    secret
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
        let w = World {
            db,
            cp,
            machine,
            secret,
            user,
            old_pw,
            proxy,
        };
        w.write_local_tls_config();
        w
    }

    /// For a database that names [`Database::agent_tls`]: `agents/{secret}.json` with the
    /// sync config's current connection and that `tls` object (the agent then reads the
    /// connection from this file, so every change to it is written here too).
    fn write_local_tls_config(&self) {
        let Some(tls) = self.db.agent_tls() else {
            return;
        };
        let connection = self.cp.with_secret(&self.secret, |s| s.connection.clone());
        write_local_config(
            &self.machine,
            &self.secret,
            self.db.provider_type(),
            &connection,
            tls,
        );
    }

    pub fn plain(db: &'a dyn Database) -> Self {
        Self::new(
            db,
            db.plain_name(),
            format!("old-{}", random_text(16)),
            false,
        )
    }

    /// A plain world whose agent reaches the database through [`World::proxy`], which a
    /// test can cut or freeze.
    pub fn behind_proxy(db: &'a dyn Database) -> Self {
        Self::new(
            db,
            db.plain_name(),
            format!("old-{}", random_text(16)),
            true,
        )
    }

    /// The proxy of a world made by [`World::behind_proxy`].
    pub fn proxy(&self) -> &TcpProxy {
        self.proxy.as_ref().expect("a world behind a proxy")
    }

    /// `start --secret` for this world's secret with extra environment (test knobs).
    pub fn spawn_agent_with(&self, env: &[(&str, &str)]) -> AgentProcess {
        let mut cmd = self.machine.command(&["start", "--secret", &self.secret]);
        cmd.envs(env.iter().copied());
        AgentProcess::spawn(cmd)
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

    /// The phase the journal records, if there is a readable journal.
    pub fn journal_phase(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.machine.journal(&self.secret)).ok()?;
        let v: Value = serde_json::from_str(&text).ok()?;
        v["phase"].as_str().map(str::to_owned)
    }

    /// The kind of rollback snapshot the journal holds (`absent`, `stored`, `liveValue`).
    pub fn journal_snapshot_kind(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.machine.journal(&self.secret)).ok()?;
        let v: Value = serde_json::from_str(&text).ok()?;
        v["snapshot"]["kind"].as_str().map(str::to_owned)
    }

    /// Gives the secret's sync config another admin.
    pub fn use_admin(&self, user: &str, password: &str) {
        self.cp.with_secret(&self.secret, |s| {
            s.connection["adminUser"] = json!(user);
            s.connection["adminPass"] = json!(password);
        });
        self.write_local_tls_config();
    }

    /// Whether some heartbeat so far reported an error containing `text`.
    pub fn error_heartbeat_says(&self, text: &str) -> bool {
        self.cp
            .heartbeats(&self.secret)
            .iter()
            .any(|h| h.status == "error" && h.error.contains(text))
    }

    /// Makes a rotation to `new_pw` pending while the user's logins are blocked, so its
    /// verification fails; waits for the rejection and for the journal to go (the
    /// rollback is done), then lets logins in again. Returns the rejection's error.
    pub fn rotate_with_logins_blocked(
        &self,
        agent: &AgentProcess,
        rotation: &str,
        new_pw: &str,
    ) -> String {
        self.db.block_login(&self.user);
        self.cp
            .set_pending(&self.secret, rotation, &secret_value(&self.user, new_pw));
        let error = self.wait_rejected(rotation, agent);
        self.wait_journal_cleared(agent);
        self.db.unblock_login(&self.user);
        error
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
        assert_exit(status.code(), Exit::Ok, &agent.output());
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
