//! The MongoDB-compatible server `make test` starts (env SKA_MONGO_*; a real `mongod` when
//! one is installed, SecantusDB otherwise), seen as its admin.
//!
//! MongoDB has no way to refuse one user's logins while its password can still be
//! changed that every implementation supports, so the scenarios reach the server through
//! [`LoginGate`], a proxy that drops connections authenticating as a blocked user.

use std::future::IntoFuture;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use ::mongodb::Client;
use ::mongodb::bson::{Bson, Document, doc};
use ::mongodb::error::ErrorKind;
use ::mongodb::options::{ClientOptions, Credential, ServerAddress, Tls, TlsOptions};
use serde_json::{Value, json};
use sikkerkey_agent::providers::{self, Provider, Target};
use sikkerkey_agent::secret::Secret;

use crate::support::world::{Database, WeakAdmin, provider_target};
use crate::support::{random_text, require_env, unique_name};

/// The database managed users live in during these tests.
pub const DB: &str = "skatest";

/// The test server, seen as its admin.
pub struct Mongo {
    pub host: String,
    pub port: u16,
    pub admin_user: String,
    pub admin_pass: String,
    /// The CA of a TLS-only server: the test's own clients then use TLS (verify-full).
    pub tls_ca: Option<String>,
    gate: LoginGate,
    runtime: tokio::runtime::Runtime,
    admin: Option<Client>,
}

impl Mongo {
    /// The test server, or `None` (skip) outside CI when it is not running.
    pub fn open() -> Option<Mongo> {
        Self::from_env("MONGO", "MongoDB")
    }

    /// The server tests/services/run.sh exported as `SKA_{prefix}_HOST`, `_PORT`,
    /// `_ADMIN_USER` and `_ADMIN_PASS` (the base one, or a matrix mongod without TLS).
    pub fn from_env(prefix: &str, service: &str) -> Option<Mongo> {
        Self::from_env_with(prefix, service, None)
    }

    /// [`Mongo::from_env`] for a TLS-only server whose certificate the CA file `ca` signed.
    pub fn from_env_with(prefix: &str, service: &str, tls_ca: Option<String>) -> Option<Mongo> {
        let var = |name: &str| require_env(&format!("SKA_{prefix}_{name}"), service);
        let host = var("HOST")?;
        let port: u16 = var("PORT")?.parse().unwrap();
        let admin_user = var("ADMIN_USER")?;
        let admin_pass = var("ADMIN_PASS")?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let admin = {
            let _context = runtime.enter();
            Client::with_options(options(
                &host,
                port,
                &admin_user,
                &admin_pass,
                "admin",
                tls_ca.as_deref(),
            ))
            .unwrap()
        };
        let gate = LoginGate::start(&format!("{host}:{port}"));
        Some(Mongo {
            host,
            port,
            admin_user,
            admin_pass,
            tls_ca,
            gate,
            runtime,
            admin: Some(admin),
        })
    }

    pub fn command(
        &self,
        db: &str,
        command: Document,
    ) -> Result<Document, ::mongodb::error::Error> {
        let admin = self.admin.as_ref().unwrap();
        let database = admin.database(db);
        let call = database.run_command(command).into_future();
        self.runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(30), call).await })
            .expect("the MongoDB test server did not answer within 30 s")
    }

    pub fn exec(&self, db: &str, command: Document) {
        let text = format!("{command}");
        self.command(db, command)
            .unwrap_or_else(|e| panic!("{text}: {e}"));
    }

    /// The user document from `usersInfo`, if the user exists.
    pub fn user_info(&self, db: &str, name: &str) -> Option<Document> {
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
    pub fn login(
        &self,
        name: &str,
        password: &str,
        db: &str,
        port: u16,
    ) -> Result<bool, ::mongodb::error::Error> {
        let opts = options(&self.host, port, name, password, db, self.tls_ca.as_deref());
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

    pub fn create_user_in(&self, db: &str, name: &str, password: &str, roles: Bson) {
        self.exec(
            db,
            doc! { "createUser": name, "pwd": password, "roles": roles },
        );
    }

    pub fn drop_user_in(&self, db: &str, name: &str) {
        match self.command(db, doc! { "dropUser": name }) {
            Ok(_) => {}
            Err(e) if matches!(e.kind.as_ref(), ErrorKind::Command(c) if c.code == 11) => {}
            Err(e) => panic!("dropUser {name:?}: {e}"),
        }
    }

    /// A provider target for this server, with short timeouts.
    pub fn target(&self, database: &str) -> Target {
        let mut target = provider_target(self, &self.host, self.port, Duration::from_secs(5));
        target.database = database.to_owned();
        target
    }

    /// An admin on `admin` with exactly `roles`, and its target.
    pub fn admin_with_roles(&self, roles: Bson) -> (String, String, Target) {
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

fn options(
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    source: &str,
    tls_ca: Option<&str>,
) -> ClientOptions {
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
        .tls(match tls_ca {
            Some(ca) => Tls::Enabled(
                TlsOptions::builder()
                    .ca_file_path(PathBuf::from(ca))
                    .build(),
            ),
            None => Tls::Disabled,
        })
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
    /// May read the managed database, not administer its users.
    fn weak_admin(&self) -> WeakAdmin {
        let (user, password, _) = self.admin_with_roles(Bson::Array(vec![Bson::Document(
            doc! { "role": "read", "db": DB },
        )]));
        WeakAdmin {
            user,
            password,
            output_names: "userAdmin",
            heartbeat_names: "userAdminAnyDatabase",
        }
    }
    fn drop_admin(&self, name: &str) {
        self.drop_user_in("admin", name);
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

pub fn open(target: &Target) -> Box<dyn Provider> {
    providers::open(target).unwrap_or_else(|e| panic!("opening the provider: {e}"))
}
