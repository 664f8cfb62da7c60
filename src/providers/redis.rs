//! Redis: passwords are ACL user passwords (Redis 6+) or the server-wide `requirepass`
//! (older servers, or ACL disabled). Rollback restores the SHA-256 hashes that
//! `ACL GETUSER` shows, so it needs no plaintext, and every change is written to the ACL
//! file or config file so it survives a restart; when neither exists the agent says once
//! per rotation that the change lives only in memory.

use std::fmt;

use ::redis::{
    Client, ClientTlsConfig, Cmd, ConnectionAddr, ConnectionInfo, IntoConnectionInfo,
    RedisConnectionInfo, RedisError, TlsCertificates, Value,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{
    FailureKind, Provider, ProviderError, StoredCredential, Target, TlsMode, TlsStatus, tls,
    validate_common,
};
use crate::secret::{Secret, scrub};

/// The user a Redis server authenticates when no name is given.
pub const DEFAULT_USER: &str = "default";

/// Where this server keeps its users across a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Persistence {
    /// `aclfile` is set: `ACL SAVE`.
    AclFile,
    /// Started from a config file: `CONFIG REWRITE`.
    ConfigFile,
    /// Neither: changes live only in memory.
    MemoryOnly,
    /// The admin may not read the configuration; the reason says why.
    Unknown(String),
}

/// An admin connection to one Redis server.
pub struct Redis {
    target: Target,
    conn: ::redis::Connection,
    /// Whether the server has ACLs (Redis 6+ with the ACL command available).
    acl: bool,
    persistence: Persistence,
    warned_memory_only: bool,
}

impl Redis {
    /// Connects and authenticates as the admin (an empty admin user is the default user),
    /// then learns whether the server has ACLs and how it persists them.
    pub fn connect(target: &Target) -> Result<Self, ProviderError> {
        let admin = target.admin_user.as_str();
        let action = if admin.is_empty() {
            "connecting as the default user".to_owned()
        } else {
            format!("connecting as admin \"{admin}\"")
        };
        let mut conn = open(target).map_err(|e| error(target, &action, &e, &[]))?;
        if !target.admin_pass.is_empty() || !admin.is_empty() {
            auth_cmd(admin, &target.admin_pass)
                .query::<()>(&mut conn)
                .map_err(|e| error(target, &action, &e, &[&target.admin_pass]))?;
        }
        let acl = match ::redis::cmd("ACL").arg("WHOAMI").query::<String>(&mut conn) {
            Ok(_) => true,
            Err(e) if is_unknown_command(&e) => false,
            // NOPERM and the like: the server has ACLs; check_admin names what is missing.
            Err(e) if e.code() == Some("NOPERM") => true,
            Err(e) => return Err(error(target, "checking for ACL support", &e, &[])),
        };
        let persistence = detect_persistence(&mut conn, acl)
            .map_err(|e| error(target, "reading the persistence settings", &e, &[]))?;
        Ok(Redis {
            target: target.clone(),
            conn,
            acl,
            persistence,
            warned_memory_only: false,
        })
    }

    pub fn persistence(&self) -> &Persistence {
        &self.persistence
    }

    pub fn has_acl(&self) -> bool {
        self.acl
    }

    fn run<T: ::redis::FromRedisValue>(
        &mut self,
        action: &str,
        cmd: &Cmd,
        secrets: &[&Secret],
    ) -> Result<T, ProviderError> {
        cmd.query(&mut self.conn)
            .map_err(|e| error(&self.target, action, &e, secrets))
    }

    fn get_user(&mut self, user: &str) -> Result<Option<AclUser>, ProviderError> {
        let reply: Value = self.run(
            &format!("reading ACL user \"{user}\""),
            ::redis::cmd("ACL").arg("GETUSER").arg(user),
            &[],
        )?;
        AclUser::from_reply(&reply).map_err(|detail| {
            ProviderError::new(
                &self.target,
                FailureKind::Database,
                format!("reading ACL user \"{user}\""),
                detail,
            )
        })
    }

    /// Writes the users to the ACL file or config file. A failure is an error, after a
    /// restore or a deletion too: once a new password has been saved, only another save
    /// keeps a restart from bringing it back.
    fn persist(&mut self) -> Result<(), ProviderError> {
        let (cmd, what) = match &self.persistence {
            Persistence::AclFile => (cmd_of(&["ACL", "SAVE"]), "saving the ACL file (ACL SAVE)"),
            Persistence::ConfigFile => (
                cmd_of(&["CONFIG", "REWRITE"]),
                "rewriting the config file (CONFIG REWRITE)",
            ),
            Persistence::MemoryOnly | Persistence::Unknown(_) => {
                if !self.warned_memory_only {
                    self.warned_memory_only = true;
                    let why = match &self.persistence {
                        Persistence::Unknown(reason) => {
                            format!("it cannot tell where Redis persists users ({reason})")
                        }
                        _ => "Redis has neither an ACL file nor a config file".to_owned(),
                    };
                    log::warn!(
                        "Redis at {}: the password change lives only in memory because {why}; it is lost when Redis restarts (configure aclfile, or start Redis from a config file)",
                        self.target.endpoint()
                    );
                }
                return Ok(());
            }
        };
        cmd.query::<()>(&mut self.conn)
            .map_err(|e| error(&self.target, what, &e, &[]))
    }

    /// Checks that the only password `user` now accepts is `password`.
    fn check_only_password(&mut self, user: &str, password: &Secret) -> Result<(), ProviderError> {
        let action = format!("checking the passwords of ACL user \"{user}\"");
        let found = self.get_user(user)?;
        let fail = |detail: String| {
            ProviderError::new(&self.target, FailureKind::Database, &action, detail)
        };
        match found {
            None => Err(fail(
                "the user vanished right after its password was set".into(),
            )),
            Some(u) if u.nopass => Err(fail("the user still accepts any password (nopass)".into())),
            Some(u) if u.passwords != [sha256_hex(password)] => Err(fail(format!(
                "the user accepts {} passwords instead of exactly the new one",
                u.passwords.len()
            ))),
            Some(_) => Ok(()),
        }
    }

    fn missing_acl_rights(&mut self, whoami: &str) -> Result<Vec<String>, ProviderError> {
        let mut needed = vec![["ACL", "SETUSER"], ["ACL", "GETUSER"], ["ACL", "DELUSER"]];
        match self.persistence {
            Persistence::AclFile => needed.push(["ACL", "SAVE"]),
            Persistence::ConfigFile => needed.push(["CONFIG", "REWRITE"]),
            _ => {}
        }
        let mut missing = Vec::new();
        for [command, sub] in needed {
            let mut dry = ::redis::cmd("ACL");
            dry.arg("DRYRUN").arg(whoami).arg(command).arg(sub);
            if sub != "SAVE" && sub != "REWRITE" {
                dry.arg("sikkerkey-check");
            }
            match dry.query::<Value>(&mut self.conn) {
                Ok(Value::Okay) => {}
                Ok(_) => missing.push(format!("{command} {sub}")),
                // Redis 6 has no DRYRUN: reading an ACL user is the best available probe.
                Err(e)
                    if is_unknown_command(&e)
                        || e.detail().is_some_and(|d| d.contains("subcommand")) =>
                {
                    return match self.get_user(whoami) {
                        Ok(_) => Ok(Vec::new()),
                        Err(e) if e.kind == FailureKind::Privilege => Ok(vec!["ACL".into()]),
                        Err(e) => Err(e),
                    };
                }
                Err(e) if e.code() == Some("NOPERM") => return Ok(vec!["ACL".into()]),
                Err(e) => {
                    return Err(error(
                        &self.target,
                        "checking the admin's ACL rights",
                        &e,
                        &[],
                    ));
                }
            }
        }
        Ok(missing)
    }
}

impl Provider for Redis {
    fn check_admin(&mut self) -> Result<(), ProviderError> {
        let action = "checking the admin's rights";
        if !self.acl {
            return match cmd_of(&["CONFIG", "GET", "requirepass"]).query::<Value>(&mut self.conn) {
                Ok(_) => Ok(()),
                Err(e) => Err(ProviderError::new(
                    &self.target,
                    FailureKind::Privilege,
                    action,
                    format!(
                        "this Redis has no ACLs, so the password is requirepass, but CONFIG is not available ({}); enable the CONFIG command for the agent",
                        detail_of(&e)
                    ),
                )),
            };
        }
        let whoami: String = match cmd_of(&["ACL", "WHOAMI"]).query(&mut self.conn) {
            Ok(w) => w,
            Err(e) if e.code() == Some("NOPERM") => self.target.admin_user.clone(),
            Err(e) => return Err(error(&self.target, action, &e, &[])),
        };
        let missing = self.missing_acl_rights(&whoami)?;
        if missing.is_empty() {
            return Ok(());
        }
        let grant: Vec<String> = missing
            .iter()
            .map(|m| format!("+{}", m.to_ascii_lowercase().replace(' ', "|")))
            .collect();
        Err(ProviderError::new(
            &self.target,
            FailureKind::Privilege,
            action,
            format!(
                "ACL user \"{whoami}\" may not run {}; grant it with: ACL SETUSER {whoami} {}",
                missing.join(", "),
                grant.join(" ")
            ),
        ))
    }

    fn validate(&self, username: &str, password: &Secret) -> Result<(), ProviderError> {
        let user = user_name(username);
        validate_common(&self.target, user, password)?;
        let invalid = |what: String| {
            ProviderError::new(
                &self.target,
                FailureKind::InvalidInput,
                "checking the new credential",
                what,
            )
        };
        if !self.acl && user != DEFAULT_USER {
            return Err(invalid(format!(
                "this Redis has no ACLs, so only the default user has a password; user \"{user}\" cannot be managed"
            )));
        }
        if let Some(problem) = user_name_problem(user, &self.persistence) {
            return Err(invalid(problem.to_owned()));
        }
        Ok(())
    }

    fn user_exists(&mut self, username: &str) -> Result<bool, ProviderError> {
        let user = user_name(username);
        if user == DEFAULT_USER {
            return Ok(true);
        }
        Ok(self.acl && self.get_user(user)?.is_some())
    }

    fn read_stored(&mut self, username: &str) -> Result<StoredCredential, ProviderError> {
        let user = user_name(username);
        if !self.acl {
            return Ok(StoredCredential::Unreadable {
                reason: "Redis without ACLs keeps requirepass only in plaintext, which the agent does not store".into(),
            });
        }
        Ok(match self.get_user(user)? {
            None => StoredCredential::Absent,
            Some(u) => StoredCredential::Stored(u.snapshot().to_text()),
        })
    }

    fn set_password(&mut self, username: &str, password: &Secret) -> Result<(), ProviderError> {
        self.validate(username, password)?;
        let user = user_name(username);
        if !self.acl {
            let cmd = Args::requirepass(password);
            self.run::<()>("setting requirepass", &cmd.to_cmd(), &[password])?;
            return self.persist();
        }
        let exists = user == DEFAULT_USER || self.get_user(user)?.is_some();
        let (action, args) = if exists {
            (
                format!("setting the password of ACL user \"{user}\""),
                Args::set_password(user, password),
            )
        } else {
            (
                format!("creating ACL user \"{user}\""),
                Args::create_user(user, password),
            )
        };
        self.run::<()>(&action, &args.to_cmd(), &[password])?;
        self.check_only_password(user, password)?;
        self.persist()
    }

    fn restore_stored(&mut self, username: &str, stored: &str) -> Result<(), ProviderError> {
        let user = user_name(username);
        let action = format!("restoring the previous passwords of ACL user \"{user}\"");
        let args = AclSnapshot::from_text(stored)
            .and_then(|s| Args::restore(user, &s))
            .map_err(|detail| {
                ProviderError::new(&self.target, FailureKind::Database, &action, detail)
            })?;
        self.run::<()>(&action, &args.to_cmd(), &[])?;
        self.persist()
    }

    fn drop_user(&mut self, username: &str) -> Result<(), ProviderError> {
        let user = user_name(username);
        if user == DEFAULT_USER || !self.acl {
            return Err(ProviderError::new(
                &self.target,
                FailureKind::InvalidInput,
                "dropping a user",
                "the default user cannot be deleted",
            ));
        }
        self.run::<i64>(
            &format!("deleting ACL user \"{user}\""),
            ::redis::cmd("ACL").arg("DELUSER").arg(user),
            &[],
        )?;
        self.persist()
    }

    /// The driver does not show its TLS session, so a handshake of our own with the same
    /// settings says what the server negotiates.
    fn tls_status(&mut self) -> TlsStatus {
        let t = &self.target;
        if !t.tls.demands_tls() {
            return TlsStatus::Plaintext;
        }
        tls::probe(&t.host, t.port, &t.tls, t.timeouts.connect).unwrap_or(TlsStatus::Unknown)
    }

    fn verify_login(&self, username: &str, password: &Secret) -> Result<(), ProviderError> {
        let user = user_name(username);
        let action = format!("logging in as \"{user}\"");
        let mut conn =
            open(&self.target).map_err(|e| error(&self.target, &action, &e, &[password]))?;
        let name = if user == DEFAULT_USER { "" } else { user };
        auth_cmd(name, password)
            .query::<()>(&mut conn)
            .map_err(|e| error(&self.target, &action, &e, &[password]))
    }
}

/// A fresh connection with every wait bounded. Authentication is sent separately so its
/// refusal is told apart from a network failure.
fn open(target: &Target) -> Result<::redis::Connection, RedisError> {
    let mut conn = client(target)?.get_connection_with_timeout(target.timeouts.connect)?;
    conn.set_read_timeout(Some(target.timeouts.statement))?;
    conn.set_write_timeout(Some(target.timeouts.statement))?;
    if target.tls.demands_tls() {
        // The driver completes the handshake on the first command. A PING (answered
        // with NOAUTH before AUTH) finishes it before the password is handed over, so
        // a failed or unanswered handshake is reported as what it is.
        match ::redis::cmd("PING").query::<Value>(&mut conn) {
            Ok(_) => {}
            Err(e) if e.code().is_some() => {}
            // A plaintext Redis reads a ClientHello as the start of a command and waits.
            Err(e) if e.is_timeout() => {
                return Err(RedisError::from((
                    ::redis::ErrorKind::Io,
                    "TLS handshake timed out",
                    e.to_string(),
                )));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(conn)
}

/// The driver's client for the target: plain TCP, or TLS from the first byte (Redis's
/// `tls-port`; there is no in-band upgrade, so `prefer` cannot occur here). `require`
/// accepts any certificate; the verify modes check it against the CA file, else the
/// system's trust store; `verify-ca` lets the name differ.
fn client(target: &Target) -> Result<Client, RedisError> {
    let s = &target.tls;
    let settings = RedisConnectionInfo::default().set_skip_set_lib_name();
    if matches!(s.mode, TlsMode::Disable | TlsMode::Prefer) {
        let info = ConnectionAddr::Tcp(target.host.clone(), target.port)
            .into_connection_info()?
            .set_redis_settings(settings);
        return Client::open(info);
    }
    let info: ConnectionInfo = ConnectionAddr::TcpTls {
        host: target.host.clone(),
        port: target.port,
        insecure: s.mode == TlsMode::Require,
        tls_params: None,
    }
    .into_connection_info()?
    .set_redis_settings(settings);
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| {
            RedisError::from(std::io::Error::new(
                e.kind(),
                format!("cannot read {}: {e}", path.display()),
            ))
        })
    };
    let root_cert = match &s.ca_file {
        Some(ca) if s.mode.verifies() => Some(read(ca)?),
        _ => None,
    };
    let client_tls = match (&s.cert_file, &s.key_file) {
        (Some(cert), Some(key)) => Some(ClientTlsConfig {
            client_cert: read(cert)?,
            client_key: read(key)?,
        }),
        _ => None,
    };
    let client = if root_cert.is_some() || client_tls.is_some() {
        Client::build_with_tls(
            info,
            TlsCertificates {
                client_tls,
                root_cert,
            },
        )?
    } else {
        Client::open(info)?
    };
    if s.mode != TlsMode::VerifyCa {
        return Ok(client);
    }
    let mut addr = client.get_connection_info().addr().clone();
    addr.set_danger_accept_invalid_hostnames(true);
    Client::open(client.get_connection_info().clone().set_addr(addr))
}

/// `AUTH password` for the default user, `AUTH user password` otherwise.
fn auth_cmd(user: &str, password: &Secret) -> Cmd {
    let mut cmd = ::redis::cmd("AUTH");
    if !user.is_empty() && user != DEFAULT_USER {
        cmd.arg(user);
    }
    cmd.arg(password.expose());
    cmd
}

fn cmd_of(args: &[&str]) -> Cmd {
    let mut cmd = ::redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd
}

fn detect_persistence(
    conn: &mut ::redis::Connection,
    acl: bool,
) -> Result<Persistence, RedisError> {
    if acl {
        match cmd_of(&["CONFIG", "GET", "aclfile"]).query::<Vec<String>>(conn) {
            Ok(kv) if kv.get(1).is_some_and(|f| !f.is_empty()) => return Ok(Persistence::AclFile),
            Ok(_) => {}
            Err(e) if e.code() == Some("NOPERM") || is_unknown_command(&e) => {
                return Ok(Persistence::Unknown(detail_of(&e)));
            }
            Err(e) => return Err(e),
        }
    }
    let info: String = match cmd_of(&["INFO", "server"]).query(conn) {
        Ok(i) => i,
        Err(e) if e.code() == Some("NOPERM") || is_unknown_command(&e) => {
            return Ok(Persistence::Unknown(detail_of(&e)));
        }
        Err(e) => return Err(e),
    };
    let config_file = info
        .lines()
        .find_map(|l| l.strip_prefix("config_file:"))
        .map(str::trim)
        .unwrap_or("");
    Ok(if config_file.is_empty() {
        Persistence::MemoryOnly
    } else {
        Persistence::ConfigFile
    })
}

/// The ACL user name: empty means the default user.
pub fn user_name(username: &str) -> &str {
    if username.is_empty() {
        DEFAULT_USER
    } else {
        username
    }
}

/// Why Redis would refuse or mangle this user name: it refuses whitespace, and a
/// config file written by `CONFIG REWRITE` cannot be read back when a user name holds a
/// quote (Redis would then fail to start).
pub fn user_name_problem(user: &str, persistence: &Persistence) -> Option<&'static str> {
    if user
        .chars()
        .any(|c| c.is_ascii_whitespace() || c == '\u{b}')
    {
        return Some("Redis user names cannot contain spaces or other whitespace");
    }
    if *persistence == Persistence::ConfigFile && user.contains(['"', '\'']) {
        return Some(
            "this Redis keeps its users in its config file, which cannot hold a user name with a quote (Redis would fail to start after CONFIG REWRITE); use an aclfile or another name",
        );
    }
    None
}

/// Lowercase hex SHA-256: how Redis stores and shows ACL passwords.
pub fn sha256_hex(password: &Secret) -> String {
    Sha256::digest(password.expose().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The arguments of one command; `Debug` is redacted because some carry a password.
pub struct Args(pub Vec<String>);

impl fmt::Debug for Args {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Args({} <redacted>)",
            self.0.first().map(String::as_str).unwrap_or("")
        )
    }
}

impl Args {
    fn new(args: &[&str]) -> Self {
        Args(args.iter().map(|a| (*a).to_owned()).collect())
    }

    /// An existing user, or the default user (which is also switched on).
    pub fn set_password(user: &str, password: &Secret) -> Self {
        let pw = format!(">{}", password.expose());
        if user == DEFAULT_USER {
            Args::new(&["ACL", "SETUSER", user, "on", "resetpass", &pw])
        } else {
            Args::new(&["ACL", "SETUSER", user, "resetpass", &pw])
        }
    }

    /// A new user with all keys and commands, as the official agent creates it.
    pub fn create_user(user: &str, password: &Secret) -> Self {
        Args::new(&[
            "ACL",
            "SETUSER",
            user,
            "on",
            &format!(">{}", password.expose()),
            "~*",
            "+@all",
        ])
    }

    pub fn requirepass(password: &Secret) -> Self {
        Args::new(&["CONFIG", "SET", "requirepass", password.expose()])
    }

    /// Puts back the on/off state, `nopass`, and the password hashes.
    pub fn restore(user: &str, snapshot: &AclSnapshot) -> Result<Self, String> {
        let mut args = Args::new(&[
            "ACL",
            "SETUSER",
            user,
            "resetpass",
            if snapshot.enabled { "on" } else { "off" },
        ]);
        if snapshot.nopass {
            args.0.push("nopass".into());
        }
        for hash in &snapshot.passwords {
            if !is_sha256_hex(hash) {
                return Err("the snapshot holds a malformed password hash".into());
            }
            args.0.push(format!("#{hash}"));
        }
        Ok(args)
    }

    fn to_cmd(&self) -> Cmd {
        let mut cmd = ::redis::cmd(&self.0[0]);
        for a in &self.0[1..] {
            cmd.arg(a.as_str());
        }
        cmd
    }
}

/// What rollback restores of an ACL user. The text form is canonical JSON.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct AclSnapshot {
    pub enabled: bool,
    pub nopass: bool,
    /// SHA-256 hex hashes in the server's order.
    pub passwords: Vec<String>,
}

impl AclSnapshot {
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_text(text: &str) -> Result<Self, String> {
        serde_json::from_str(text)
            .map_err(|e| format!("the snapshot is not in the expected form: {e}"))
    }
}

/// The parts of an `ACL GETUSER` reply the agent uses.
struct AclUser {
    enabled: bool,
    nopass: bool,
    passwords: Vec<String>,
}

impl AclUser {
    /// `None` for a nil reply (no such user). Accepts RESP2 (flat key/value array) and
    /// RESP3 (map) replies.
    fn from_reply(reply: &Value) -> Result<Option<AclUser>, String> {
        if *reply == Value::Nil {
            return Ok(None);
        }
        let flags = strings(field(reply, "flags").ok_or("ACL GETUSER gave no flags")?);
        let passwords = strings(field(reply, "passwords").ok_or("ACL GETUSER gave no passwords")?);
        Ok(Some(AclUser {
            enabled: flags.iter().any(|f| f == "on"),
            nopass: flags.iter().any(|f| f == "nopass"),
            passwords,
        }))
    }

    fn snapshot(&self) -> AclSnapshot {
        AclSnapshot {
            enabled: self.enabled,
            nopass: self.nopass,
            passwords: self.passwords.clone(),
        }
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

fn field<'a>(reply: &'a Value, name: &str) -> Option<&'a Value> {
    match reply {
        Value::Array(items) => items
            .chunks(2)
            .find(|p| text(&p[0]).as_deref() == Some(name))
            .and_then(|p| p.get(1)),
        Value::Map(pairs) => pairs
            .iter()
            .find(|(k, _)| text(k).as_deref() == Some(name))
            .map(|(_, v)| v),
        _ => None,
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) | Value::Set(items) => items.iter().filter_map(text).collect(),
        _ => Vec::new(),
    }
}

fn is_unknown_command(e: &RedisError) -> bool {
    let d = e.detail().unwrap_or("").to_ascii_lowercase();
    e.code() == Some("ERR") && (d.contains("unknown command") || d.contains("unknown subcommand"))
}

fn detail_of(e: &RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        _ => e.to_string(),
    }
}

/// Maps a client error to the provider error; the server's text is scrubbed of the
/// password because `ACL SETUSER` echoes a bad modifier, `>password` included.
fn error(target: &Target, action: &str, e: &RedisError, secrets: &[&Secret]) -> ProviderError {
    // A failed handshake: nothing but the handshake was sent.
    if target.tls.demands_tls()
        && e.code().is_none()
        && let Some(explained) = tls::explain_failure(e, &target.host, target.tls.mode)
    {
        return ProviderError::new(target, FailureKind::Tls, action, explained);
    }
    let detail = scrub(&detail_of(e), secrets);
    let lower = detail.to_ascii_lowercase();
    let kind = match e.code() {
        Some("WRONGPASS" | "NOAUTH") => FailureKind::AuthRejected,
        Some("ERR")
            if lower.contains("invalid password")
                || lower.contains("invalid username-password") =>
        {
            FailureKind::AuthRejected
        }
        Some("NOPERM") => FailureKind::Privilege,
        Some(_) => FailureKind::Database,
        None if e.is_timeout() => FailureKind::Timeout,
        None if e.kind() == ::redis::ErrorKind::AuthenticationFailed => FailureKind::AuthRejected,
        None if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() => {
            FailureKind::Unreachable
        }
        None => FailureKind::Database,
    };
    let detail = if kind == FailureKind::Timeout {
        format!(
            "no answer within {} s ({detail})",
            target.timeouts.statement.as_secs_f32()
        )
    } else {
        detail
    };
    ProviderError::new(target, kind, action, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE_PW: &str = "p'\"\\$ ø`;--\r\n>x #y";

    fn joined(a: &Args) -> Vec<&str> {
        a.0.iter().map(String::as_str).collect()
    }

    #[test]
    fn named_users_get_resetpass_and_new_users_full_access() {
        let pw = Secret::new(HOSTILE_PW);
        assert_eq!(
            joined(&Args::set_password("app", &pw)),
            [
                "ACL",
                "SETUSER",
                "app",
                "resetpass",
                &format!(">{HOSTILE_PW}")
            ]
        );
        assert_eq!(
            joined(&Args::create_user("a\"b", &pw)),
            [
                "ACL",
                "SETUSER",
                "a\"b",
                "on",
                &format!(">{HOSTILE_PW}"),
                "~*",
                "+@all"
            ]
        );
        assert!(
            !format!("{:?}", Args::create_user("a", &pw)).contains("p'"),
            "Debug is redacted"
        );
    }

    #[test]
    fn the_default_user_is_switched_on_and_loses_its_old_passwords() {
        let args = Args::set_password(user_name(""), &Secret::new("pw"));
        assert_eq!(
            joined(&args),
            ["ACL", "SETUSER", "default", "on", "resetpass", ">pw"]
        );
        assert_eq!(user_name("default"), "default");
        assert_eq!(
            joined(&Args::requirepass(&Secret::new("pw"))),
            ["CONFIG", "SET", "requirepass", "pw"]
        );
    }

    #[test]
    fn restore_uses_hashes_and_puts_flags_back() {
        let h = sha256_hex(&Secret::new("old"));
        let s = AclSnapshot {
            enabled: false,
            nopass: true,
            passwords: vec![h.clone(), "0".repeat(64)],
        };
        let args = Args::restore("app", &s).unwrap();
        let zero = format!("#{}", "0".repeat(64));
        assert_eq!(
            joined(&args),
            [
                "ACL",
                "SETUSER",
                "app",
                "resetpass",
                "off",
                "nopass",
                &format!("#{h}"),
                zero.as_str()
            ]
        );
        let bad = AclSnapshot {
            enabled: true,
            nopass: false,
            passwords: vec!["~* +@all".into()],
        };
        assert!(
            Args::restore("app", &bad).is_err(),
            "a snapshot cannot smuggle in other ACL rules"
        );
        let back = AclSnapshot::from_text(&s.to_text()).unwrap();
        assert!(back == s);
        assert!(AclSnapshot::from_text("[1]").is_err());
    }

    #[test]
    fn sha256_matches_what_redis_stores() {
        // ACL GETUSER after `>x y` shows this hash (checked against redis-server 7).
        assert_eq!(
            sha256_hex(&Secret::new("x y")),
            "887fcea6a80333c6c02ae7e79735f0edad8d811f0b61431495f796f4bf6a7c19"
        );
    }

    #[test]
    fn getuser_replies_parse_in_resp2_and_resp3() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let resp2 = Value::Array(vec![
            bulk("flags"),
            Value::Array(vec![bulk("on"), bulk("nopass")]),
            bulk("passwords"),
            Value::Array(vec![bulk("ab")]),
            bulk("commands"),
            bulk("+@all"),
        ]);
        let u = AclUser::from_reply(&resp2).unwrap().unwrap();
        assert!(u.enabled && u.nopass && u.passwords == ["ab"]);
        let resp3 = Value::Map(vec![
            (
                Value::SimpleString("flags".into()),
                Value::Set(vec![bulk("off")]),
            ),
            (
                Value::SimpleString("passwords".into()),
                Value::Array(vec![]),
            ),
        ]);
        let u = AclUser::from_reply(&resp3).unwrap().unwrap();
        assert!(!u.enabled && !u.nopass && u.passwords.is_empty());
        assert!(AclUser::from_reply(&Value::Nil).unwrap().is_none());
        assert!(AclUser::from_reply(&Value::Array(vec![])).is_err());
    }

    #[test]
    fn names_redis_or_its_config_file_cannot_hold_are_refused() {
        assert!(user_name_problem("a b", &Persistence::AclFile).is_some());
        assert!(user_name_problem("a\tb", &Persistence::MemoryOnly).is_some());
        assert!(user_name_problem("a\"b", &Persistence::ConfigFile).is_some());
        assert!(user_name_problem("it's", &Persistence::ConfigFile).is_some());
        assert!(user_name_problem("a\"b'\\ø", &Persistence::AclFile).is_none());
        assert!(user_name_problem("a\"b'\\ø", &Persistence::MemoryOnly).is_none());
    }
}
