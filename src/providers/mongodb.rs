//! MongoDB: the admin logs in against `admin`; managed users live in the configured
//! database (default `admin`). `usersInfo` decides between `updateUser {pwd}` and
//! `createUser {pwd, roles: [readWrite@db]}`, as the official agent does. MongoDB cannot
//! put a stored SCRAM credential back, so a rollback restores the live value instead.
//!
//! Runtime: the driver is async. The sync wrapper (`mongodb::sync`) runs it on a
//! process-wide multi-thread tokio runtime that is created on first use and never dropped,
//! so an idle agent would keep its worker threads for good. Instead each [`Mongo`] owns a
//! current-thread runtime that lives on the worker thread for one job and is shut down
//! when the provider is dropped; every driver call goes through `Mongo::call`, a
//! `block_on` with a deadline. This is the provider's private plumbing: the agent itself
//! stays plain threads, with no async code of its own.

use std::future::IntoFuture;
use std::time::Duration;

use mongodb::Client;
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::{Error as MongoError, ErrorKind};
use mongodb::options::{ClientOptions, Credential, ServerAddress, Tls, TlsOptions};
use tokio::runtime::Runtime;

use super::error::{FailureKind, ProviderError};
use super::provider::{Provider, StoredCredential};
use super::runtime::{DriverClient, Session, block_on_bounded};
use super::target::Target;
use super::tls::{self, TlsMode, TlsStatus};
use crate::secret::{Secret, scrub};

/// Server error codes the provider acts on.
const USER_NOT_FOUND: i32 = 11;
const UNAUTHORIZED: i32 = 13;
const AUTHENTICATION_FAILED: i32 = 18;
const ROLE_NOT_FOUND: i32 = 31;
const MAX_TIME_MS_EXPIRED: i32 = 50;

/// Users authenticate against this database when none is configured, and admins always.
const ADMIN_DATABASE: &str = "admin";

/// The role a user created by a rotation gets on its database.
const MANAGED_ROLE: &str = "readWrite";

/// How long a client may take to say goodbye (end its sessions) when a job is over.
pub(super) const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// An admin client for one MongoDB deployment, with the runtime that drives it.
pub struct Mongo {
    target: Target,
    /// Where managed users live.
    database: String,
    session: Session<Client>,
}

impl DriverClient for Client {
    const SHUTDOWN_GRACE: Duration = SHUTDOWN_GRACE;

    /// Ends the client's sessions on the server.
    fn goodbye(self, runtime: &Runtime) {
        runtime.block_on(async move {
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.shutdown()).await;
        });
    }
}

impl Mongo {
    /// Starts a runtime, connects as the admin and proves the login with a `ping`.
    pub fn connect(target: &Target) -> Result<Self, ProviderError> {
        let action = format!("connecting as admin \"{}\"", target.admin_user);
        let runtime = super::runtime::job_runtime(target, &action)?;
        let database = managed_database(target);
        let (options, anchors) = client_options(
            target,
            &target.admin_user,
            &target.admin_pass,
            ADMIN_DATABASE,
        )
        .map_err(|e| tls_setup_error(target, &action, e))?;
        // Creating a client spawns its monitors, so it needs the runtime's context.
        let admin = {
            let _context = runtime.enter();
            Client::with_options(options)
                .map_err(|e| CallError::Driver(e).into_provider(target, &action))?
        };
        // The driver has read its trust anchors when the client was made.
        drop(anchors);
        let mongo = Mongo {
            target: target.clone(),
            database,
            session: Session::new(admin, runtime),
        };
        mongo.admin_command(ADMIN_DATABASE, &action, doc! { "ping": 1 })?;
        Ok(mongo)
    }

    fn runtime(&self) -> &Runtime {
        self.session.runtime()
    }

    fn admin(&self) -> &Client {
        self.session.client()
    }

    /// Runs one driver call to completion, bounded by connect + statement timeouts (server
    /// selection and connection set-up count against the first, the command the second).
    fn call<T>(
        &self,
        call: impl IntoFuture<Output = Result<T, MongoError>>,
    ) -> Result<T, CallError> {
        run_bounded(self.runtime(), &self.target, call)
    }

    /// Runs a command as the admin on `database`, keeping the server's error code visible.
    fn command(&self, database: &str, command: Document) -> Result<Document, CallError> {
        self.call(self.admin().database(database).run_command(command))
    }

    fn admin_command(
        &self,
        database: &str,
        action: &str,
        command: Document,
    ) -> Result<Document, ProviderError> {
        self.command(database, command)
            .map_err(|e| e.into_provider(&self.target, action))
    }

    /// Whether `username` exists in the managed database (`usersInfo {user, db}`, which
    /// takes the name as data, never parsed as `user@db`).
    fn find_user(&self, username: &str) -> Result<bool, ProviderError> {
        Ok(self.user_document(username)?.is_some())
    }

    /// The user's `usersInfo` document, if the user exists in the managed database.
    fn user_document(&self, username: &str) -> Result<Option<Document>, ProviderError> {
        let reply = self.admin_command(
            &self.database,
            &format!(
                "looking up user \"{username}\" in database \"{}\"",
                self.database
            ),
            doc! { "usersInfo": { "user": username, "db": &self.database } },
        )?;
        let users = reply.get_array("users").map_err(|_| {
            ProviderError::new(
                &self.target,
                FailureKind::Database,
                "reading the usersInfo reply",
                "the reply has no users array",
            )
        })?;
        Ok(users.iter().find_map(|u| match u {
            Bson::Document(d)
                if d.get_str("user") == Ok(username)
                    && d.get_str("db") == Ok(self.database.as_str()) =>
            {
                Some(d.clone())
            }
            _ => None,
        }))
    }

    /// Runs a privilege probe that names a user or role that does not exist: an admin that
    /// may run the command gets `not_found` (or success, for `usersInfo`), one that may not
    /// gets "unauthorized". Returns whether the command succeeded.
    fn probe(&self, what: &str, command: Document, not_found: i32) -> Result<bool, ProviderError> {
        match self.command(&self.database, command) {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some(not_found) => Ok(false),
            Err(e) if e.code() == Some(UNAUTHORIZED) => {
                Err(self.missing_role(what, &e.to_string()))
            }
            Err(e) => Err(e.into_provider(&self.target, "checking the admin's privileges")),
        }
    }

    /// The error for an admin that lacks a user-management privilege, naming the roles
    /// that grant it and the command that does.
    fn missing_role(&self, what: &str, server_says: &str) -> ProviderError {
        let js = |s: &str| serde_json::to_string(s).unwrap_or_default();
        ProviderError::new(
            &self.target,
            FailureKind::Privilege,
            "checking the admin's privileges",
            format!(
                "admin \"{admin}\" may not {what} in database \"{db}\" ({server_says}); it needs the role userAdmin on \"{db}\" or userAdminAnyDatabase, e.g. db.getSiblingDB(\"admin\").grantRolesToUser({}, [{{role: \"userAdmin\", db: {}}}])",
                js(&self.target.admin_user),
                js(&self.database),
                admin = self.target.admin_user,
                db = self.database,
            ),
        )
    }
}

impl Provider for Mongo {
    /// Probes each user-management command with a user and a role that do not exist: an
    /// admin that may run the command gets "not found", one that may not gets
    /// "unauthorized", and nothing is changed either way.
    fn target(&self) -> &Target {
        &self.target
    }

    fn check_admin(&mut self) -> Result<(), ProviderError> {
        let probe = probe_name();
        self.probe(
            "view users",
            doc! { "usersInfo": { "user": &probe, "db": &self.database } },
            USER_NOT_FOUND,
        )?;
        let created = self.probe(
            "create users",
            doc! {
                "createUser": &probe,
                "pwd": &probe,
                "roles": [ { "role": format!("{probe}-role"), "db": &self.database } ],
            },
            ROLE_NOT_FOUND,
        )?;
        if created {
            // This server ignored the unknown role and created the probe user: remove it.
            self.drop_user(&probe)?;
        }
        self.probe(
            "change passwords",
            doc! { "updateUser": &probe, "pwd": &probe },
            USER_NOT_FOUND,
        )?;
        self.probe("drop users", doc! { "dropUser": &probe }, USER_NOT_FOUND)?;
        Ok(())
    }

    fn input_problem(&self, _username: &str, password: &Secret) -> Option<String> {
        // SCRAM-SHA-256 runs the password through SASLprep; one it refuses could be stored
        // but never used to log in.
        stringprep::saslprep(password.expose()).is_err().then(|| {
            "the password contains characters SCRAM-SHA-256 refuses (control characters, or code points SASLprep prohibits or does not know)".to_owned()
        })
    }

    fn user_exists(&mut self, username: &str) -> Result<bool, ProviderError> {
        self.find_user(username)
    }

    fn read_stored(&mut self, username: &str) -> Result<StoredCredential, ProviderError> {
        if !self.find_user(username)? {
            return Ok(StoredCredential::Absent);
        }
        Ok(StoredCredential::Unreadable {
            reason: "MongoDB cannot put a stored SCRAM credential back".into(),
        })
    }

    fn create_user(&mut self, username: &str, password: &Secret) -> Result<(), ProviderError> {
        let action = format!(
            "creating user \"{username}\" in database \"{}\"",
            self.database
        );
        let command = doc! {
            "createUser": username,
            "pwd": password.expose(),
            "roles": [ { "role": MANAGED_ROLE, "db": &self.database } ],
        };
        self.admin_command(&self.database, &action, command)
            .map(drop)
    }

    fn change_password(&mut self, username: &str, password: &Secret) -> Result<(), ProviderError> {
        let action = format!(
            "setting the password of user \"{username}\" in database \"{}\"",
            self.database
        );
        let mut command = doc! { "updateUser": username, "pwd": password.expose() };
        // Without `mechanisms`, a new password gets every SCRAM mechanism the server
        // supports: a user kept on SCRAM-SHA-1 (or on SCRAM-SHA-256) alone would gain the
        // other. Name the ones it has, so only the password changes.
        if let Some(mechanisms) = self
            .user_document(username)?
            .as_ref()
            .and_then(scram_mechanisms)
        {
            command.insert("mechanisms", mechanisms);
        }
        self.admin_command(&self.database, &action, command)
            .map(drop)
    }

    fn restore_stored(&mut self, username: &str, _stored: &str) -> Result<(), ProviderError> {
        // read_stored never hands out a stored credential, so the engine never gets here.
        Err(ProviderError::new(
            &self.target,
            FailureKind::Database,
            format!("restoring the previous password of user \"{username}\""),
            "MongoDB cannot put a stored SCRAM credential back; the live value is restored instead",
        ))
    }

    fn drop_user(&mut self, username: &str) -> Result<(), ProviderError> {
        match self.command(&self.database, doc! { "dropUser": username }) {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(USER_NOT_FOUND) => Ok(()),
            Err(e) => Err(e.into_provider(
                &self.target,
                &format!(
                    "dropping user \"{username}\" from database \"{}\"",
                    self.database
                ),
            )),
        }
    }

    fn tls_status(&mut self) -> TlsStatus {
        self.target.probe_tls()
    }

    /// Authenticates as the user against its database on a new client (new connections,
    /// nothing shared with the admin), then runs `ping`.
    fn login(&self, username: &str, password: &Secret) -> Result<(), ProviderError> {
        login_on(self.runtime(), &self.target, username, password)
    }
}

/// Authenticates as `username` against the managed database and runs a `ping`, on a
/// client made for this one login (new connections, nothing shared with an admin).
pub(super) fn login_on(
    runtime: &Runtime,
    target: &Target,
    username: &str,
    password: &Secret,
) -> Result<(), ProviderError> {
    let database = managed_database(target);
    let action = format!("logging in as \"{username}\" to database \"{database}\"");
    let (options, anchors) = client_options(target, username, password, &database)
        .map_err(|e| tls_setup_error(target, &action, e))?;
    let result = run_bounded(runtime, target, async move {
        let client = Client::with_options(options);
        drop(anchors);
        let client = client?;
        let ping = client
            .database(&database)
            .run_command(doc! { "ping": 1 })
            .await;
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, client.shutdown()).await;
        ping
    });
    result.map(drop).map_err(|e| {
        let mut e = e.into_provider(target, &action);
        e.detail = scrub(&e.detail, &[password]);
        e
    })
}

/// Runs one driver call to completion on `runtime`, bounded by connect + statement
/// timeouts (server selection and connection set-up count against the first, the command
/// the second).
fn run_bounded<T>(
    runtime: &Runtime,
    target: &Target,
    call: impl IntoFuture<Output = Result<T, MongoError>>,
) -> Result<T, CallError> {
    let budget = target.timeouts.connect + target.timeouts.statement;
    match block_on_bounded(runtime, budget, call) {
        Some(result) => result.map_err(CallError::Driver),
        None => Err(CallError::TimedOut(budget)),
    }
}

/// The SCRAM mechanisms a `usersInfo` document lists, when it lists any (servers before
/// 4.0, and some compatible ones, do not).
fn scram_mechanisms(user: &Document) -> Option<Bson> {
    let listed = user.get_array("mechanisms").ok()?;
    let scram: Vec<Bson> = listed
        .iter()
        .filter(|m| m.as_str().is_some_and(|m| m.starts_with("SCRAM-")))
        .cloned()
        .collect();
    (!scram.is_empty()).then_some(Bson::Array(scram))
}

/// Where managed users live: the target's database, `admin` when none is given.
fn managed_database(target: &Target) -> String {
    if target.database.is_empty() {
        ADMIN_DATABASE.to_owned()
    } else {
        target.database.clone()
    }
}

/// Connection options built field by field: names and passwords never pass through a
/// URI, so `@ : / % ?` and non-ASCII need no escaping and cannot change its meaning. The
/// second value keeps the trust anchors' file until the client has been made from them.
fn client_options(
    target: &Target,
    username: &str,
    password: &Secret,
    source: &str,
) -> Result<(ClientOptions, Option<AnchorsFile>), tls::TlsError> {
    // No mechanism: the driver asks the server which SCRAM variants the user has and takes
    // SCRAM-SHA-256 whenever it is there (every user created or re-passworded on MongoDB
    // 4.0 or later), falling back to SCRAM-SHA-1 for users that only have that.
    let credential = Credential::builder()
        .username(username.to_owned())
        .password(password.expose().to_owned())
        .source(source.to_owned())
        .build();
    let (tls, anchors) = tls_options(target)?;
    let options = ClientOptions::builder()
        .hosts(vec![ServerAddress::Tcp {
            host: target.host.clone(),
            port: Some(target.port),
        }])
        .credential(credential)
        .app_name("sikkerkey-agent".to_owned())
        .connect_timeout(target.timeouts.connect)
        .server_selection_timeout(target.timeouts.connect)
        .max_pool_size(2)
        .tls(tls)
        .build();
    Ok((options, anchors))
}

/// The driver's TLS options. Its rustls backend checks the host name whenever it checks
/// the chain, so `verify-ca` (refused by the settings for MongoDB) would get the stricter
/// `verify-full` here; `require` accepts any certificate. The client certificate and key
/// come from one PEM file, as mongod's tlsCertificateKeyFile.
///
/// Trust: the driver takes a CA file path, and without one trusts Mozilla's bundled roots
/// rather than the system's. So it always gets a file: the CA file, or the system's store
/// written to a private temporary file (`AnchorsFile`), the same anchors every provider
/// trusts (`TlsSettings::trust_anchors`).
fn tls_options(target: &Target) -> Result<(Tls, Option<AnchorsFile>), tls::TlsError> {
    let s = &target.tls;
    if !s.demands_tls() {
        return Ok((Tls::Disabled, None));
    }
    let mut options = TlsOptions::default();
    options.allow_invalid_certificates = Some(s.mode == TlsMode::Require);
    options.cert_key_file_path = s.cert_file.clone();
    let mut anchors = None;
    if s.mode.verifies() {
        options.ca_file_path = match &s.ca_file {
            Some(ca) => Some(ca.clone()),
            None => {
                let file = AnchorsFile::write(&s.trust_anchors_pem()?)?;
                let path = file.path.clone();
                anchors = Some(file);
                Some(path)
            }
        };
    }
    Ok((Tls::Enabled(options), anchors))
}

/// The system's trust anchors as a PEM file of our own (0600, a fresh name), removed when
/// dropped: the driver reads it once, when the client is made.
struct AnchorsFile {
    path: std::path::PathBuf,
}

impl AnchorsFile {
    fn write(pem: &[u8]) -> Result<AnchorsFile, tls::TlsError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut random = [0u8; 8];
        let setup = |e: &dyn std::fmt::Display| {
            tls::TlsError::Setup(format!(
                "cannot write the system's CA certificates for the MongoDB driver: {e}"
            ))
        };
        getrandom::fill(&mut random).map_err(|e| setup(&e))?;
        let name = crate::hex::lower(&random);
        let path = std::env::temp_dir().join(format!("sikkerkey-agent-ca-{name}.pem"));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| setup(&e))?;
        let anchors = AnchorsFile { path };
        file.write_all(pem).map_err(|e| setup(&e))?;
        Ok(anchors)
    }
}

impl Drop for AnchorsFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn tls_setup_error(target: &Target, action: &str, e: tls::TlsError) -> ProviderError {
    ProviderError::new(target, FailureKind::Tls, action, e.to_string())
}

/// A user name nobody has: `sikkerkey-agent-probe-` and 16 random hex digits.
fn probe_name() -> String {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    format!("sikkerkey-agent-probe-{}", crate::hex::lower(&bytes))
}

/// A driver call that failed or ran out of time, before it becomes a [`ProviderError`].
enum CallError {
    Driver(MongoError),
    TimedOut(Duration),
}

impl CallError {
    /// The server's error code, when the server answered with an error.
    fn code(&self) -> Option<i32> {
        match self {
            CallError::Driver(e) => match e.kind.as_ref() {
                ErrorKind::Command(c) => Some(c.code),
                _ => None,
            },
            CallError::TimedOut(_) => None,
        }
    }

    fn into_provider(self, target: &Target, action: &str) -> ProviderError {
        match self {
            CallError::Driver(e) => match tls_failure(target, &e) {
                Some(explained) => ProviderError::new(target, FailureKind::Tls, action, explained),
                None => ProviderError::new(target, failure_kind(&e), action, describe(&e)),
            },
            CallError::TimedOut(budget) => ProviderError::new(
                target,
                FailureKind::Timeout,
                action,
                format!("no answer within {} ms", budget.as_millis()),
            ),
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Driver(e) => f.write_str(&describe(e)),
            CallError::TimedOut(budget) => write!(f, "no answer within {} ms", budget.as_millis()),
        }
    }
}

/// A failed handshake, or a server that does not answer in TLS, when TLS was demanded.
fn tls_failure(target: &Target, e: &MongoError) -> Option<String> {
    if !target.tls.demands_tls() || matches!(e.kind.as_ref(), ErrorKind::Command(_)) {
        return None;
    }
    if let Some(explained) = tls::explain_failure(e, &target.host, target.tls.mode) {
        return Some(explained);
    }
    // Server selection gave up without saying why: a plaintext server reads a ClientHello
    // as the start of a message and waits. A handshake of our own tells it apart from a
    // server that is not there at all.
    if matches!(e.kind.as_ref(), ErrorKind::ServerSelection { .. }) {
        let t = target;
        if let Err(tls::ProbeFailure::Handshake(explained)) =
            tls::probe(&t.host, t.port, &t.tls, t.timeouts.connect)
        {
            return Some(explained);
        }
    }
    None
}

fn failure_kind(e: &MongoError) -> FailureKind {
    match e.kind.as_ref() {
        ErrorKind::Authentication { .. } => FailureKind::AuthRejected,
        ErrorKind::Command(c) => match c.code {
            AUTHENTICATION_FAILED => FailureKind::AuthRejected,
            UNAUTHORIZED => FailureKind::Privilege,
            MAX_TIME_MS_EXPIRED => FailureKind::Timeout,
            _ => FailureKind::Database,
        },
        ErrorKind::ServerSelection { .. }
        | ErrorKind::Io(_)
        | ErrorKind::DnsResolve { .. }
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::InvalidTlsConfig { .. } => FailureKind::Unreachable,
        ErrorKind::InvalidArgument { .. } => FailureKind::InvalidInput,
        _ => FailureKind::Database,
    }
}

/// The error without the driver's debug dump of labels and raw server replies.
fn describe(e: &MongoError) -> String {
    let mut text = match e.kind.as_ref() {
        ErrorKind::Command(c) => format!("{} ({}, code {})", c.message, c.code_name, c.code),
        other => other.to_string(),
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        match s.downcast_ref::<MongoError>() {
            Some(inner) => text = format!("{text}: {}", inner.kind),
            None => text = format!("{text}: {s}"),
        }
        source = s.source();
    }
    tidy(&text)
}

/// Drops the driver's debug fields (`Kind:`, labels, empty source and reply) that it puts
/// into the messages of nested errors: they say nothing to a reader and the labels mislead
/// (a refused connection is labelled "SystemOverloadedError").
fn tidy(text: &str) -> String {
    let mut out = text
        .replace("Kind: ", "")
        .replace(", source: None", "")
        .replace(", server response: None", "");
    while let Some(start) = out.find(", labels: {") {
        let Some(len) = out[start..].find('}') else {
            break;
        };
        out.replace_range(start..start + len + 1, "");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::kind::ProviderKind;
    use crate::providers::target::DbTimeouts;

    fn target() -> Target {
        Target {
            kind: ProviderKind::Mongodb,
            host: "db.internal".into(),
            port: 27017,
            database: String::new(),
            admin_user: "ad@min:/%?".into(),
            admin_pass: Secret::new("p@ss:/%?ø"),
            project_reference: String::new(),
            timeouts: DbTimeouts::default(),
            tls: Default::default(),
        }
    }

    #[test]
    fn options_carry_names_and_passwords_verbatim() {
        let t = target();
        let (o, _) =
            client_options(&t, "us@er:/%?\"ø", &Secret::new("pw@:/%?'\"\\$ø"), "app").unwrap();
        let c = o.credential.unwrap();
        assert_eq!(c.username.as_deref(), Some("us@er:/%?\"ø"));
        assert_eq!(c.password.as_deref(), Some("pw@:/%?'\"\\$ø"));
        assert_eq!(c.source.as_deref(), Some("app"));
        assert_eq!(
            o.hosts,
            vec![ServerAddress::Tcp {
                host: "db.internal".into(),
                port: Some(27017)
            }]
        );
        assert_eq!(o.connect_timeout, Some(t.timeouts.connect));
        assert_eq!(o.server_selection_timeout, Some(t.timeouts.connect));
    }

    #[test]
    fn driver_debug_fields_are_dropped() {
        let raw = "Server selection timeout: No available servers. Topology: { Type: Unknown, Servers: [ { Address: h:1, Type: Unknown, Error: Kind: I/O error: Connection refused (os error 111), labels: {\"SystemOverloadedError\", \"RetryableError\"}, source: None, server response: None } ] }";
        assert_eq!(
            tidy(raw),
            "Server selection timeout: No available servers. Topology: { Type: Unknown, Servers: [ { Address: h:1, Type: Unknown, Error: I/O error: Connection refused (os error 111) } ] }"
        );
        assert_eq!(
            tidy(
                "SCRAM failure: authentication failed: Kind: Command failed: Error code 18 (AuthenticationFailed): authentication failed, labels: {}, source: None, server response: None"
            ),
            "SCRAM failure: authentication failed: Command failed: Error code 18 (AuthenticationFailed): authentication failed"
        );
    }

    #[test]
    fn the_users_scram_mechanisms_are_named_again() {
        let user = doc! { "user": "u", "db": "app", "mechanisms": ["SCRAM-SHA-1"] };
        assert_eq!(
            scram_mechanisms(&user),
            Some(Bson::Array(vec!["SCRAM-SHA-1".into()]))
        );
        let both = doc! { "mechanisms": ["SCRAM-SHA-1", "SCRAM-SHA-256", "MONGODB-X509"] };
        assert_eq!(
            scram_mechanisms(&both),
            Some(Bson::Array(vec![
                "SCRAM-SHA-1".into(),
                "SCRAM-SHA-256".into()
            ]))
        );
        assert_eq!(scram_mechanisms(&doc! { "user": "u" }), None);
        assert_eq!(scram_mechanisms(&doc! { "mechanisms": [] }), None);
    }

    #[test]
    fn probe_names_differ() {
        assert_ne!(probe_name(), probe_name());
        assert!(probe_name().starts_with("sikkerkey-agent-probe-"));
    }
}
