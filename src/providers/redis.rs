//! Redis: passwords are ACL user passwords (Redis 6+) or the server-wide `requirepass`
//! (older servers, or ACL disabled). Rollback restores the SHA-256 hashes that
//! `ACL GETUSER` shows, so it needs no plaintext, and every change is written to the ACL
//! file or config file so it survives a restart; when neither exists the agent says once
//! per rotation that the change lives only in memory. This file does the I/O; the
//! commands it sends are built in `redis/acl.rs`.

mod acl;

use ::redis::{
    Client, ClientTlsConfig, Cmd, ConnectionAddr, ConnectionInfo, IntoConnectionInfo,
    RedisConnectionInfo, RedisError, TlsCertificates, Value,
};

use super::error::{FailureKind, ProviderError};
use super::provider::{PasswordMatch, Provider, RefusalFacts, StoredCredential};
use super::target::Target;
use super::tls::{self, TlsMode, TlsStatus};
use crate::secret::{Secret, scrub};

use acl::AclUser;
pub use acl::{
    AclSnapshot, Args, DEFAULT_USER, Persistence, sha256_hex, user_name, user_name_problem,
};

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

    /// Runs an `ACL SETUSER` that gives `user` the password, checks that it is now the
    /// only one the user accepts, and persists the change.
    fn set_acl_password(
        &mut self,
        action: &str,
        args: &Args,
        user: &str,
        password: &Secret,
    ) -> Result<(), ProviderError> {
        self.run::<()>(action, &args.to_cmd(), &[password])?;
        self.check_only_password(user, password)?;
        self.persist()
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
    fn target(&self) -> &Target {
        &self.target
    }

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

    fn account_name<'a>(&self, username: &'a str) -> &'a str {
        user_name(username)
    }

    fn input_problem(&self, user: &str, _password: &Secret) -> Option<String> {
        if !self.acl && user != DEFAULT_USER {
            return Some(format!(
                "this Redis has no ACLs, so only the default user has a password; user \"{user}\" cannot be managed"
            ));
        }
        user_name_problem(user, &self.persistence).map(str::to_owned)
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

    /// `ACL GETUSER`: a user that is `off` refuses every login (Redis answers WRONGPASS
    /// either way); its SHA-256 password hashes say whether `password` is one of them.
    fn explain_refusal(
        &mut self,
        username: &str,
        password: &Secret,
    ) -> Result<RefusalFacts, ProviderError> {
        let user = user_name(username);
        if !self.acl {
            return Ok(RefusalFacts::default());
        }
        let Some(u) = self.get_user(user)? else {
            return Ok(RefusalFacts {
                password: PasswordMatch::Absent,
                obstacle: None,
            });
        };
        let password = if u.nopass || u.passwords.contains(&sha256_hex(password)) {
            PasswordMatch::Matches
        } else {
            PasswordMatch::Differs
        };
        Ok(RefusalFacts {
            password,
            obstacle: (!u.enabled).then(|| {
                format!("ACL user \"{user}\" is disabled (off; ACL SETUSER {user} on allows it)")
            }),
        })
    }

    fn create_user(&mut self, username: &str, password: &Secret) -> Result<(), ProviderError> {
        let user = user_name(username);
        let action = format!("creating ACL user \"{user}\"");
        self.set_acl_password(&action, &Args::create_user(user, password), user, password)
    }

    fn change_password(&mut self, username: &str, password: &Secret) -> Result<(), ProviderError> {
        let user = user_name(username);
        if !self.acl {
            let cmd = Args::requirepass(password);
            self.run::<()>("setting requirepass", &cmd.to_cmd(), &[password])?;
            return self.persist();
        }
        let action = format!("setting the password of ACL user \"{user}\"");
        self.set_acl_password(&action, &Args::set_password(user, password), user, password)
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

    fn tls_status(&mut self) -> TlsStatus {
        self.target.probe_tls()
    }

    fn login(&self, username: &str, password: &Secret) -> Result<(), ProviderError> {
        verify_login(&self.target, username, password)
    }
}

/// Logs in as `username` on a fresh connection of its own: `AUTH` and nothing else, so the
/// drift check needs no admin session.
pub fn verify_login(
    target: &Target,
    username: &str,
    password: &Secret,
) -> Result<(), ProviderError> {
    let user = user_name(username);
    let action = format!("logging in as \"{user}\"");
    let mut conn = open(target).map_err(|e| error(target, &action, &e, &[password]))?;
    let name = if user == DEFAULT_USER { "" } else { user };
    auth_cmd(name, password)
        .query::<()>(&mut conn)
        .map_err(|e| error(target, &action, &e, &[password]))
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
/// accepts any certificate; the verify modes check it against exactly the CA file's
/// certificates, else the system's trust store; `verify-ca` lets the name differ.
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
    // Exactly the anchors every provider trusts (the CA file's, else the system's store),
    // handed over as the driver's root certificates, so it adds none of its own.
    let root_cert = if s.mode.verifies() {
        Some(s.trust_anchors_pem().map_err(|e| {
            RedisError::from(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                e.to_string(),
            ))
        })?)
    } else {
        None
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
