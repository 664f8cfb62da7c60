//! MongoDB: the provider driven directly through the `Provider` trait, then the shared
//! failure scenarios end to end, against the server `make test` starts (a real `mongod`
//! when one is installed, SecantusDB otherwise; env SKA_MONGO_SERVER says which).
//!
//! MongoDB has no way to refuse one user's logins while its password can still be
//! changed that every implementation supports, so the scenarios reach the server through
//! [`LoginGate`], a proxy that drops connections authenticating as a blocked user.

use std::future::IntoFuture;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ::mongodb::Client;
use ::mongodb::bson::{Bson, Document, doc};
use ::mongodb::error::ErrorKind;
use ::mongodb::options::{ClientOptions, Credential, ServerAddress};
use serde_json::{Value, json};
use sikkerkey_agent::providers::{
    self, DbTimeouts, FailureKind, Provider, ProviderKind, StoredCredential, Target,
};
use sikkerkey_agent::secret::Secret;

use crate::scenarios::{Database, SOON, World, assert_no_leak, assert_password, secret_value};
use crate::support::{random_text, require_env, unique_name};

/// The database managed users live in during these tests.
const DB: &str = "skatest";

/// The test server, seen as its admin.
pub struct Mongo {
    host: String,
    port: u16,
    admin_user: String,
    admin_pass: String,
    gate: LoginGate,
    runtime: tokio::runtime::Runtime,
    admin: Option<Client>,
}

impl Mongo {
    /// The test server, or `None` (skip) outside CI when it is not running.
    pub fn from_env() -> Option<Mongo> {
        let host = require_env("SKA_MONGO_HOST", "MongoDB")?;
        let port: u16 = require_env("SKA_MONGO_PORT", "MongoDB")?.parse().unwrap();
        let admin_user = require_env("SKA_MONGO_ADMIN_USER", "MongoDB")?;
        let admin_pass = require_env("SKA_MONGO_ADMIN_PASS", "MongoDB")?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let admin = {
            let _context = runtime.enter();
            Client::with_options(options(&host, port, &admin_user, &admin_pass, "admin")).unwrap()
        };
        let gate = LoginGate::start(&format!("{host}:{port}"));
        Some(Mongo {
            host,
            port,
            admin_user,
            admin_pass,
            gate,
            runtime,
            admin: Some(admin),
        })
    }

    fn command(&self, db: &str, command: Document) -> Result<Document, ::mongodb::error::Error> {
        let admin = self.admin.as_ref().unwrap();
        let database = admin.database(db);
        let call = database.run_command(command).into_future();
        self.runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(30), call).await })
            .expect("the MongoDB test server did not answer within 30 s")
    }

    fn exec(&self, db: &str, command: Document) {
        let text = format!("{command}");
        self.command(db, command)
            .unwrap_or_else(|e| panic!("{text}: {e}"));
    }

    /// The user document from `usersInfo`, if the user exists.
    fn user_info(&self, db: &str, name: &str) -> Option<Document> {
        let reply = self
            .command(db, doc! { "usersInfo": { "user": name, "db": db } })
            .unwrap();
        reply
            .get_array("users")
            .unwrap()
            .iter()
            .find_map(|u| match u {
                Bson::Document(d) if d.get_str("user") == Ok(name) => Some(d.clone()),
                _ => None,
            })
    }

    /// Logs in as `name` against `db` on a fresh client: `Ok(true)` in, `Ok(false)` refused.
    fn login(
        &self,
        name: &str,
        password: &str,
        db: &str,
        port: u16,
    ) -> Result<bool, ::mongodb::error::Error> {
        let opts = options(&self.host, port, name, password, db);
        let db = db.to_owned();
        let result = self.runtime.block_on(async move {
            let client = Client::with_options(opts)?;
            let ping = tokio::time::timeout(
                Duration::from_secs(30),
                client
                    .database(&db)
                    .run_command(doc! { "ping": 1 })
                    .into_future(),
            )
            .await
            .expect("the MongoDB test server did not answer a login within 30 s");
            client.shutdown().await;
            ping
        });
        match result {
            Ok(_) => Ok(true),
            Err(e) if refused(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn create_user_in(&self, db: &str, name: &str, password: &str, roles: Bson) {
        self.exec(
            db,
            doc! { "createUser": name, "pwd": password, "roles": roles },
        );
    }

    fn drop_user_in(&self, db: &str, name: &str) {
        match self.command(db, doc! { "dropUser": name }) {
            Ok(_) => {}
            Err(e) if matches!(e.kind.as_ref(), ErrorKind::Command(c) if c.code == 11) => {}
            Err(e) => panic!("dropUser {name:?}: {e}"),
        }
    }

    /// A provider target for this server, with short timeouts.
    fn target(&self, database: &str) -> Target {
        Target {
            kind: ProviderKind::Mongodb,
            host: self.host.clone(),
            port: self.port,
            database: database.to_owned(),
            admin_user: self.admin_user.clone(),
            admin_pass: Secret::new(self.admin_pass.clone()),
            project_reference: String::new(),
            timeouts: DbTimeouts {
                connect: Duration::from_secs(5),
                statement: Duration::from_secs(5),
            },
            tls: Default::default(),
        }
    }

    /// An admin on `admin` with exactly `roles`, and its target.
    fn admin_with_roles(&self, roles: Bson) -> (String, String, Target) {
        let name = unique_name("ska_admin@:/%?");
        let pass = format!("adm@:/%?'\"ø-{}", random_text(10));
        self.create_user_in("admin", &name, &pass, roles);
        let mut target = self.target(DB);
        target.admin_user = name.clone();
        target.admin_pass = Secret::new(pass.clone());
        (name, pass, target)
    }
}

impl Drop for Mongo {
    fn drop(&mut self) {
        if let Some(admin) = self.admin.take() {
            self.runtime.block_on(async move { admin.shutdown().await });
        }
    }
}

fn options(host: &str, port: u16, user: &str, password: &str, source: &str) -> ClientOptions {
    let credential = Credential::builder()
        .username(user.to_owned())
        .password(password.to_owned())
        .source(source.to_owned())
        .build();
    ClientOptions::builder()
        .hosts(vec![ServerAddress::Tcp {
            host: host.to_owned(),
            port: Some(port),
        }])
        .credential(credential)
        .connect_timeout(Duration::from_secs(10))
        .server_selection_timeout(Duration::from_secs(10))
        .build()
}

/// Whether the server refused a login (as opposed to not being reachable).
fn refused(e: &::mongodb::error::Error) -> bool {
    match e.kind.as_ref() {
        ErrorKind::Authentication { .. } => true,
        ErrorKind::Command(c) => c.code == 18,
        _ => false,
    }
}

impl Database for Mongo {
    fn provider_type(&self) -> &'static str {
        "mongodb"
    }
    fn endpoint(&self) -> (String, u16) {
        ("127.0.0.1".into(), self.gate.port())
    }
    fn connection(&self, host: &str, port: u16) -> Value {
        json!({"host": host, "port": port, "database": DB, "adminUser": self.admin_user,
               "adminPass": self.admin_pass, "projectReference": ""})
    }
    fn admin_password(&self) -> String {
        self.admin_pass.clone()
    }
    fn create_user(&self, name: &str, password: &str) {
        self.create_user_in(
            DB,
            name,
            password,
            Bson::Array(vec![Bson::Document(doc! { "role": "readWrite", "db": DB })]),
        );
    }
    fn drop_user(&self, name: &str) {
        self.drop_user_in(DB, name);
    }
    fn can_login(&self, name: &str, password: &str) -> bool {
        self.login(name, password, DB, self.port)
            .unwrap_or_else(|e| panic!("cannot reach the MongoDB test server: {e}"))
    }
    fn block_login(&self, name: &str) {
        self.gate.block(name);
    }
    fn unblock_login(&self, name: &str) {
        self.gate.unblock(name);
    }
    fn hostile_name(&self) -> String {
        // No ',' or '=': SecantusDB 0.7.0b3 does not undo SCRAM's escaping of them.
        format!("app\"; DROP ROLE x; --'\\ø@:/%?$ {}", unique_name("h"))
    }
}

/// A TCP proxy in front of the server that cuts any connection whose client sends a SCRAM
/// first message for a blocked user (`n=<name>,r=`), so that user cannot log in while the
/// admin, on other connections, still can change its password.
pub struct LoginGate {
    port: u16,
    blocked: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
}

impl LoginGate {
    pub fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let blocked: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (b, s, upstream) = (blocked.clone(), stop.clone(), upstream.to_owned());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                thread::spawn(move || {
                    let (mut from, mut to) = (s2, c2);
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(Shutdown::Both);
                });
                let b = b.clone();
                thread::spawn(move || forward_unless_blocked(client, server, &b));
            }
        });
        LoginGate {
            port,
            blocked,
            stop,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn block(&self, user: &str) {
        self.blocked.lock().unwrap().push(scram_marker(user));
    }

    pub fn unblock(&self, user: &str) {
        let marker = scram_marker(user);
        self.blocked.lock().unwrap().retain(|m| *m != marker);
    }
}

impl Drop for LoginGate {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// What a SCRAM client-first message contains for `user` (RFC 5802 saslname escaping).
fn scram_marker(user: &str) -> Vec<u8> {
    format!("n={},r=", user.replace('=', "=3D").replace(',', "=2C")).into_bytes()
}

fn forward_unless_blocked(
    mut client: TcpStream,
    mut server: TcpStream,
    blocked: &Mutex<Vec<Vec<u8>>>,
) {
    let mut buf = [0u8; 16 * 1024];
    // The tail of what came before, so a marker split across reads is still seen.
    let mut window: Vec<u8> = Vec::new();
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        window.extend_from_slice(&buf[..n]);
        let hit = blocked
            .lock()
            .unwrap()
            .iter()
            .any(|m| window.windows(m.len()).any(|w| w == m.as_slice()));
        if hit || server.write_all(&buf[..n]).is_err() {
            break;
        }
        let keep = window.len().saturating_sub(512);
        window.drain(..keep);
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
}

fn open(target: &Target) -> Box<dyn Provider> {
    providers::open(target).unwrap_or_else(|e| panic!("opening the provider: {e}"))
}

macro_rules! mongo_test {
    ($name:ident, $body:expr) => {
        #[test]
        fn $name() {
            let Some(mongo) = Mongo::from_env() else {
                return;
            };
            let f: &dyn Fn(&Mongo) = &$body;
            f(&mongo);
        }
    };
}

// ---- the provider, driven directly ----

mongo_test!(provider_creates_updates_verifies_and_drops, |m| {
    let target = m.target(DB);
    let mut p = open(&target);
    p.check_admin().unwrap();
    let user = unique_name("ska_p");
    let first = Secret::new(format!("first-{}", random_text(12)));
    let second = Secret::new(format!("second-{}", random_text(12)));

    assert!(!p.user_exists(&user).unwrap());
    assert_eq!(p.read_stored(&user).unwrap(), StoredCredential::Absent);
    p.set_password(&user, &first).unwrap();
    assert!(p.user_exists(&user).unwrap());
    let info = m
        .user_info(DB, &user)
        .expect("created user is in the configured database");
    assert_eq!(
        info.get_array("roles").unwrap(),
        &vec![Bson::Document(doc! { "role": "readWrite", "db": DB })]
    );
    assert!(
        m.user_info("admin", &user).is_none(),
        "user created in the wrong database"
    );
    assert!(matches!(
        p.read_stored(&user).unwrap(),
        StoredCredential::Unreadable { .. }
    ));
    p.verify_login(&user, &first).unwrap();
    assert_password(m, &user, first.expose(), second.expose());

    p.set_password(&user, &second).unwrap();
    p.verify_login(&user, &second).unwrap();
    let refused = p.verify_login(&user, &first).unwrap_err();
    assert_eq!(refused.kind, FailureKind::AuthRejected, "{refused}");
    assert!(!refused.to_string().contains(first.expose()), "{refused}");
    assert_password(m, &user, second.expose(), first.expose());
    assert_eq!(
        m.user_info(DB, &user)
            .unwrap()
            .get_array("roles")
            .unwrap()
            .len(),
        1,
        "updateUser changed the roles"
    );

    p.drop_user(&user).unwrap();
    assert!(!p.user_exists(&user).unwrap());
    p.drop_user(&user)
        .expect("dropping a user that is gone is not an error");
    assert_eq!(
        p.verify_login(&user, &second).unwrap_err().kind,
        FailureKind::AuthRejected
    );
});

mongo_test!(provider_takes_hostile_names_and_passwords_verbatim, |m| {
    let mut p = open(&m.target(DB));
    let bystander = unique_name("ska_by");
    let bystander_pw = format!("by-{}", random_text(12));
    m.create_user(&bystander, &bystander_pw);
    let cases = [
        (unique_name("us@er:/%?"), "p@ss:/%?word#&".to_owned()),
        (
            format!("app\"; DROP ROLE x; --'\\{}", unique_name("q")),
            "'\"\\$`;{}[]()".to_owned(),
        ),
        (
            format!("ünïcødé 用户 {}", unique_name("u")),
            "пароль 密码 ✓ ø".to_owned(),
        ),
        (
            unique_name("pct%40%3A"),
            "%40%3A%2F%25 and %s %n".to_owned(),
        ),
        (
            format!("$dollar.{}", unique_name("d")),
            "  spaced out  ".to_owned(),
        ),
    ];
    for (user, pw) in &cases {
        let pw = Secret::new(pw.clone());
        p.validate(user, &pw).unwrap();
        p.set_password(user, &pw)
            .unwrap_or_else(|e| panic!("{user:?}: {e}"));
        assert!(
            m.user_info(DB, user).is_some(),
            "{user:?} not created under its exact name"
        );
        p.verify_login(user, &pw)
            .unwrap_or_else(|e| panic!("{user:?}: {e}"));
        assert_eq!(
            p.verify_login(user, &Secret::new(format!("{}x", pw.expose())))
                .unwrap_err()
                .kind,
            FailureKind::AuthRejected
        );
        assert_password(m, user, pw.expose(), "not-the-password");
    }
    assert!(
        m.can_login(&bystander, &bystander_pw),
        "a bystander was changed"
    );
    for (user, _) in &cases {
        p.drop_user(user).unwrap();
        assert!(m.user_info(DB, user).is_none());
    }
    m.drop_user(&bystander);
});

mongo_test!(provider_defaults_to_the_admin_database, |m| {
    let mut p = open(&m.target(""));
    let user = unique_name("ska_def");
    let pw = Secret::new(format!("pw-{}", random_text(12)));
    p.set_password(&user, &pw).unwrap();
    let info = m.user_info("admin", &user).expect("user created in admin");
    assert_eq!(
        info.get_array("roles").unwrap(),
        &vec![Bson::Document(doc! { "role": "readWrite", "db": "admin" })]
    );
    assert!(m.login(&user, pw.expose(), "admin", m.port).unwrap());
    assert!(!m.login(&user, "wrong", "admin", m.port).unwrap());
    p.verify_login(&user, &pw).unwrap();
    p.drop_user(&user).unwrap();
    assert!(m.user_info("admin", &user).is_none());
});

mongo_test!(
    provider_rejects_what_scram_cannot_take_and_changes_nothing,
    |m| {
        let mut p = open(&m.target(DB));
        let user = unique_name("ska_bad");
        for pw in ["bell\u{7}", "nul\0byte", "", "unassigned\u{0378}"] {
            let e = p.set_password(&user, &Secret::new(pw)).unwrap_err();
            assert_eq!(e.kind, FailureKind::InvalidInput, "{e}");
        }
        assert!(
            m.user_info(DB, &user).is_none(),
            "a refused password created the user"
        );
    }
);

mongo_test!(check_admin_names_the_missing_role, |m| {
    let cases = [
        (
            Bson::Array(vec![Bson::Document(doc! { "role": "read", "db": "admin" })]),
            "view users",
        ),
        (
            Bson::Array(vec![Bson::Document(
                doc! { "role": "userAdmin", "db": "skaother" },
            )]),
            "view users",
        ),
    ];
    for (roles, what) in cases {
        let (name, pass, target) = m.admin_with_roles(roles);
        let mut p = open(&target);
        let e = p.check_admin().unwrap_err();
        assert_eq!(e.kind, FailureKind::Privilege, "{e}");
        let msg = e.to_string();
        for needle in [
            what,
            "userAdmin on \"skatest\"",
            "userAdminAnyDatabase",
            "grantRolesToUser",
            name.as_str(),
        ] {
            assert!(msg.contains(needle), "{needle:?} missing from: {msg}");
        }
        assert!(!msg.contains(&pass), "{msg}");
        drop(p);
        m.drop_user_in("admin", &name);
    }

    // May look but not touch: the check must go past usersInfo.
    let role = unique_name("ska_viewonly");
    m.exec(
        DB,
        doc! { "createRole": &role, "privileges": [ { "resource": { "db": DB, "collection": "" }, "actions": ["viewUser"] } ], "roles": [] },
    );
    let (name, _, target) = m.admin_with_roles(Bson::Array(vec![Bson::Document(
        doc! { "role": &role, "db": DB },
    )]));
    let e = open(&target).check_admin().unwrap_err();
    assert!(e.to_string().contains("may not create users"), "{e}");
    m.drop_user_in("admin", &name);
    m.exec(DB, doc! { "dropRole": &role });

    // userAdmin on the managed database is enough, for the check and for a whole rotation.
    let (name, _, target) = m.admin_with_roles(Bson::Array(vec![Bson::Document(
        doc! { "role": "userAdmin", "db": DB },
    )]));
    let mut p = open(&target);
    p.check_admin().unwrap();
    let user = unique_name("ska_ua");
    let pw = Secret::new(format!("ua-{}", random_text(10)));
    p.set_password(&user, &pw).unwrap();
    p.verify_login(&user, &pw).unwrap();
    p.drop_user(&user).unwrap();
    assert!(
        m.user_info(DB, &user).is_none(),
        "the check or the rotation left a user behind"
    );
    drop(p);
    m.drop_user_in("admin", &name);
    let probes = m.command(DB, doc! { "usersInfo": 1 }).unwrap();
    assert!(
        !format!("{probes}").contains("sikkerkey-agent-probe"),
        "a privilege probe left a user: {probes}"
    );
});

mongo_test!(wrong_admin_password_is_refused_at_connect, |m| {
    let mut target = m.target(DB);
    let wrong = format!("{}-wrong", m.admin_pass);
    target.admin_pass = Secret::new(wrong.clone());
    let e = providers::open(&target)
        .err()
        .expect("a wrong admin password must not connect");
    assert_eq!(e.kind, FailureKind::AuthRejected, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("connecting as admin") && msg.contains(&m.admin_user),
        "{msg}"
    );
    assert!(!msg.contains(&wrong), "{msg}");
});

mongo_test!(dead_or_silent_server_fails_within_the_timeouts, |m| {
    let timeouts = DbTimeouts {
        connect: Duration::from_secs(2),
        statement: Duration::from_secs(2),
    };
    let budget = timeouts.connect + timeouts.statement + Duration::from_secs(3);

    // Nothing listens.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut target = m.target(DB);
    target.port = closed;
    target.timeouts = timeouts;
    let started = Instant::now();
    let e = providers::open(&target)
        .err()
        .expect("connecting to a closed port");
    assert!(started.elapsed() < budget, "took {:?}", started.elapsed());
    assert_eq!(e.kind, FailureKind::Unreachable, "{e}");
    assert!(
        e.to_string().contains(&format!("127.0.0.1:{closed}")),
        "{e}"
    );

    // Accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    target.port = silent.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let h = held.clone();
    thread::spawn(move || {
        for s in silent.incoming().flatten() {
            h.lock().unwrap().push(s);
        }
    });
    let started = Instant::now();
    let e = providers::open(&target)
        .err()
        .expect("connecting to a silent server");
    assert!(started.elapsed() < budget, "took {:?}", started.elapsed());
    assert!(
        matches!(e.kind, FailureKind::Unreachable | FailureKind::Timeout),
        "{e}"
    );

    // The server goes away between connect and the next command.
    let proxy = crate::support::proxy::TcpProxy::start(&format!("{}:{}", m.host, m.port));
    target.port = proxy.port();
    let mut p = open(&target);
    proxy.cut();
    let started = Instant::now();
    let e = p
        .set_password(&unique_name("ska_gone"), &Secret::new("gone-password"))
        .unwrap_err();
    assert!(started.elapsed() < budget, "took {:?}", started.elapsed());
    assert!(
        matches!(e.kind, FailureKind::Unreachable | FailureKind::Timeout),
        "{e}"
    );
});

/// Runs `provider_job_keeps_no_threads` in a process of its own, where no other test's
/// threads come and go, and shows the figures.
#[test]
fn provider_leaves_no_threads_behind() {
    if Mongo::from_env().is_none() {
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "mongodb::provider_job_keeps_no_threads",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(out.status.success() && text.contains("1 passed"), "{text}");
}

#[test]
#[ignore = "run by provider_leaves_no_threads_behind in a process of its own"]
fn provider_job_keeps_no_threads() {
    let m = Mongo::from_env()
        .expect("started by provider_leaves_no_threads_behind, which checked the env");
    let count = || std::fs::read_dir("/proc/self/task").unwrap().count();
    // The test's own admin client runs on a runtime of its own; start from a settled count.
    let mut target = m.target(DB);
    target.host = "localhost".into(); // a name, so the driver's resolver threads show up too
    let before = count();
    for round in 0..3 {
        let mut p = open(&target);
        p.check_admin().unwrap();
        let user = unique_name("ska_thr");
        let pw = Secret::new(format!("t-{}", random_text(10)));
        p.set_password(&user, &pw).unwrap();
        p.verify_login(&user, &pw).unwrap();
        let during = count();
        p.drop_user(&user).unwrap();
        drop(p);
        let after = count();
        println!("threads: before a job {before}, during {during}, after {after} (round {round})");
        assert_eq!(after, before, "the provider left threads behind");
    }
}

// ---- end to end, through the agent binary ----

crate::scenarios::shared_scenarios!(mongo_test);

mongo_test!(verify_fails_rolls_back_to_the_live_value, |m| {
    // MongoDB cannot restore a stored credential: the rollback sets the live value again
    // and proves it by logging in, so while logins stay blocked the journal must stay.
    let w = World::plain(m);
    let agent = w.start();
    m.block_login(&w.user);
    let new_pw = format!("new-{}", random_text(16));
    w.cp.set_pending(&w.secret, "rot_verify", &secret_value(&w.user, &new_pw));
    let error = w.wait_rejected("rot_verify", &agent);
    assert!(
        error.contains("verification failed"),
        "rejection should say verification failed: {error}"
    );
    agent.wait_until(
        SOON,
        "the agent to report the unverifiable rollback",
        || agent.output().contains("rollback failed"),
    );
    assert!(
        w.journal_exists(),
        "journal cleared before the rollback could be verified"
    );
    assert!(
        m.login(&w.user, &w.old_pw, DB, m.port).unwrap(),
        "the old password is not back while logins are blocked"
    );
    m.unblock_login(&w.user);
    w.wait_journal_cleared(&agent);
    assert_eq!(w.cp.live_value(&w.secret), secret_value(&w.user, &w.old_pw));
    assert_password(m, &w.user, &w.old_pw, &new_pw);
    assert!(
        w.cp.calls(crate::support::Endpoint::Secret) >= 1,
        "the live value was never read for the rollback"
    );
    w.finish(agent, &[&w.old_pw, &new_pw]);
});

mongo_test!(user_created_by_a_failed_rotation_is_dropped, |m| {
    let w = World::plain(m);
    let fresh = unique_name("ska_new");
    let agent = w.start();
    m.block_login(&fresh);
    w.cp.set_pending(&w.secret, "rot_create", &secret_value(&fresh, "created-pw"));
    let error = w.wait_rejected("rot_create", &agent);
    assert!(error.contains("verification failed"), "{error}");
    w.wait_journal_cleared(&agent);
    m.unblock_login(&fresh);
    assert!(
        m.user_info(DB, &fresh).is_none(),
        "the user the failed rotation created is still there"
    );
    w.finish(agent, &[&w.old_pw, "created-pw"]);
});

mongo_test!(admin_without_user_admin_is_refused_at_start, |m| {
    let (admin, admin_pw, _) = m.admin_with_roles(Bson::Array(vec![Bson::Document(
        doc! { "role": "read", "db": DB },
    )]));
    let w = World::plain(m);
    w.cp.with_secret(&w.secret, |s| {
        s.connection["adminUser"] = json!(admin);
        s.connection["adminPass"] = json!(admin_pw);
    });
    let mut agent = w.machine.spawn_agent(&w.secret);
    let status = agent.wait_exit(SOON);
    assert_eq!(status.code(), Some(6), "output:\n{}", agent.output());
    assert!(
        agent.output().contains("userAdmin"),
        "the error should name the missing role:\n{}",
        agent.output()
    );
    assert!(
        w.cp.heartbeats(&w.secret)
            .iter()
            .any(|h| h.status == "error" && h.error.contains("userAdminAnyDatabase"))
    );
    assert_no_leak(&agent.output(), &[&admin_pw, &w.old_pw], &m.admin_pass);
    m.drop_user_in("admin", &admin);
});

mongo_test!(idle_agent_keeps_no_driver_threads, |m| {
    // After a rotation the agent is back to its own named threads: no driver runtime
    // workers (tokio's threads are "tokio-runtime-w") stay behind. The host is a name, so
    // the job also uses the runtime's blocking threads for the lookup.
    let w = World::plain(m);
    w.cp.with_secret(&w.secret, |s| s.connection["host"] = json!("localhost"));
    let agent = w.start();
    let names = || -> Vec<String> {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", agent.pid())) else {
            return Vec::new();
        };
        let mut names: Vec<String> = tasks
            .flatten()
            .map(|t| {
                std::fs::read_to_string(t.path().join("comm"))
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            })
            .collect();
        names.sort();
        names
    };
    let new_pw = format!("new-{}", random_text(16));
    w.cp.set_pending(&w.secret, "rot_threads", &secret_value(&w.user, &new_pw));
    w.wait_confirmed("rot_threads", &agent);
    agent.wait_until(SOON, "no driver threads left after the rotation", || {
        !names().iter().any(|n| n.starts_with("tokio"))
    });
    println!("agent threads after a MongoDB rotation: {:?}", names());
    assert_password(m, &w.user, &new_pw, &w.old_pw);
    w.finish(agent, &[&w.old_pw, &new_pw]);
});
