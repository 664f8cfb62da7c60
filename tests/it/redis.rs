//! Redis against servers each test starts for itself (`SKA_REDIS_SERVER` names the binary):
//! the provider driven directly (ACL users, the default user, requirepass without ACLs,
//! persistence across a restart with an ACL file or a config file, hung servers), then
//! the shared failure scenarios through the agent binary.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ::redis::{Client, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo, Value};
use serde_json::{Value as Json, json};

use sikkerkey_agent::providers::redis::{Persistence, Redis, sha256_hex};
use sikkerkey_agent::providers::{
    DbTimeouts, FailureKind, Provider, ProviderKind, StoredCredential, Target,
};
use sikkerkey_agent::secret::Secret;

use crate::scenarios::{self, Database, World, assert_password, secret_value};
use crate::support::proxy::{BlackHole, TcpProxy};
use crate::support::{TempDir, random_text, require_env, unique_name};

/// How a test server keeps its users.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// Options on the command line, no files: changes live in memory.
    MemoryOnly,
    /// An ACL file: `ACL SAVE`.
    AclFile,
    /// Started from a config file: `CONFIG REWRITE`.
    ConfigFile,
    /// The ACL command renamed away, as on a server without ACLs: `requirepass`.
    NoAcl,
    /// No ACLs, started from a config file.
    NoAclConfigFile,
}

impl Mode {
    fn acl(self) -> bool {
        !matches!(self, Mode::NoAcl | Mode::NoAclConfigFile)
    }

    fn config_file(self) -> bool {
        matches!(self, Mode::ConfigFile | Mode::NoAclConfigFile)
    }
}

/// A redis-server of the test's own, killed on drop.
pub struct RedisServer {
    bin: String,
    mode: Mode,
    dir: TempDir,
    port: u16,
    child: Option<Child>,
    admin_user: String,
    admin_pass: String,
    default_pass: String,
}

impl RedisServer {
    /// Starts a server, or `None` (skip) outside CI when redis-server is not available.
    pub fn start(mode: Mode) -> Option<RedisServer> {
        let bin = require_env("SKA_REDIS_SERVER", "Redis")?;
        let mut server = RedisServer {
            bin,
            mode,
            dir: TempDir::new("redis"),
            port: 0,
            child: None,
            admin_user: if mode.acl() {
                "ska_admin".into()
            } else {
                String::new()
            },
            admin_pass: format!("adm-{}", random_text(16)),
            default_pass: format!("def-{}", random_text(16)),
        };
        if mode == Mode::AclFile {
            std::fs::create_dir_all(server.acl_file().parent().unwrap()).unwrap();
            std::fs::write(server.acl_file(), "").unwrap();
        }
        server.launch_on_a_free_port();
        server.set_up_users();
        Some(server)
    }

    /// In a directory of its own, which a test can take away to make `ACL SAVE` fail.
    fn acl_file(&self) -> PathBuf {
        self.dir.path().join("acl").join("users.acl")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    /// Options, none secret: passwords are set over the connection afterwards.
    fn options(&self) -> Vec<(String, String)> {
        let d = self.dir.path().display().to_string();
        let mut o = vec![
            ("port".to_owned(), self.port.to_string()),
            ("bind".into(), "127.0.0.1".into()),
            ("save".into(), String::new()),
            ("appendonly".into(), "no".into()),
            ("dir".into(), d),
            ("logfile".into(), self.log_file().display().to_string()),
        ];
        if self.mode == Mode::AclFile {
            o.push(("aclfile".into(), self.acl_file().display().to_string()));
        }
        o
    }

    fn launch_on_a_free_port(&mut self) {
        for _ in 0..5 {
            self.port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            if self.mode.config_file() {
                let mut conf: String = self
                    .options()
                    .iter()
                    .map(|(k, v)| format!("{k} \"{v}\"\n"))
                    .collect();
                if !self.mode.acl() {
                    conf.push_str("rename-command ACL \"\"\n");
                }
                std::fs::write(self.dir.path().join("redis.conf"), conf).unwrap();
            }
            if self.launch() {
                return;
            }
        }
        panic!("redis-server did not start; log:\n{}", self.log());
    }

    /// Starts the process on `self.port` and waits until it answers; `false` if it exited.
    fn launch(&mut self) -> bool {
        let mut cmd = Command::new(&self.bin);
        if self.mode.config_file() {
            cmd.arg(self.dir.path().join("redis.conf"));
        } else {
            for (k, v) in self.options() {
                cmd.arg(format!("--{k}")).arg(v);
            }
            if !self.mode.acl() {
                cmd.args(["--rename-command", "ACL", ""]);
            }
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            if child.try_wait().unwrap().is_some() {
                return false;
            }
            if let Ok(mut c) = self.raw() {
                // NOAUTH also proves the server is up.
                let pong: Result<String, _> = ::redis::cmd("PING").query(&mut c);
                if pong.is_ok() || pong.is_err_and(|e| e.code() == Some("NOAUTH")) {
                    self.child = Some(child);
                    return true;
                }
            }
            if Instant::now() > end {
                let _ = child.kill();
                panic!(
                    "redis-server did not answer within 20 s; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The admin account, and a default user that needs a password, saved to the file.
    fn set_up_users(&self) {
        let mut c = self.raw().unwrap();
        if !self.mode.acl() {
            run(&mut c, &["CONFIG", "SET", "requirepass", &self.admin_pass]);
            auth(&mut c, "", &self.admin_pass).unwrap();
            self.save(&mut c);
            return;
        }
        run(
            &mut c,
            &[
                "ACL",
                "SETUSER",
                &self.admin_user,
                "on",
                &format!(">{}", self.admin_pass),
                "~*",
                "&*",
                "+@all",
            ],
        );
        run(
            &mut c,
            &[
                "ACL",
                "SETUSER",
                "default",
                "resetpass",
                "on",
                &format!(">{}", self.default_pass),
            ],
        );
        self.save(&mut c);
    }

    fn save(&self, c: &mut ::redis::Connection) {
        if self.mode == Mode::AclFile {
            run(c, &["ACL", "SAVE"]);
        } else if self.mode.config_file() {
            run(c, &["CONFIG", "REWRITE"]);
        }
    }

    /// Stops the server (no save) and starts it again from its files, on the same port.
    pub fn restart(&mut self) {
        let mut child = self.child.take().unwrap();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let end = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < end, "redis-server did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            self.launch(),
            "redis-server did not come back from its files; log:\n{}",
            self.log()
        );
    }

    /// An unauthenticated connection.
    fn raw(&self) -> Result<::redis::Connection, ::redis::RedisError> {
        let info = ConnectionAddr::Tcp("127.0.0.1".into(), self.port)
            .into_connection_info()?
            .set_redis_settings(RedisConnectionInfo::default().set_skip_set_lib_name());
        let c = Client::open(info)?.get_connection_with_timeout(Duration::from_secs(5))?;
        c.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(c)
    }

    /// A connection authenticated as the test admin.
    fn admin(&self) -> ::redis::Connection {
        let mut c = self.raw().unwrap();
        auth(&mut c, &self.admin_user, &self.admin_pass).expect("admin login to the test server");
        c
    }

    fn cmd(&self, args: &[&str]) -> Value {
        run(&mut self.admin(), args)
    }

    fn get_user(&self, user: &str) -> Value {
        self.cmd(&["ACL", "GETUSER", user])
    }

    /// Whether `user` (empty or "default": the default user) logs in with `password`.
    fn try_login(&self, user: &str, password: &str) -> bool {
        let mut c = self.raw().unwrap();
        match auth(&mut c, user, password) {
            Ok(()) => true,
            Err(e) if e.code() == Some("WRONGPASS") => false,
            Err(e) if e.detail().is_some_and(|d| d.contains("invalid password")) => false,
            Err(e) => panic!("cannot reach the test server: {e}"),
        }
    }

    fn target(&self) -> Target {
        self.target_as(&self.admin_user, &self.admin_pass, self.port)
    }

    fn target_as(&self, admin_user: &str, admin_pass: &str, port: u16) -> Target {
        Target {
            kind: ProviderKind::Redis,
            host: "127.0.0.1".into(),
            port,
            database: String::new(),
            admin_user: admin_user.to_owned(),
            admin_pass: Secret::new(admin_pass),
            project_reference: String::new(),
            timeouts: DbTimeouts {
                connect: Duration::from_secs(5),
                statement: Duration::from_secs(5),
            },
            tls: Default::default(),
        }
    }

    fn provider(&self) -> Redis {
        Redis::connect(&self.target()).expect("provider connects as the test admin")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn auth(
    c: &mut ::redis::Connection,
    user: &str,
    password: &str,
) -> Result<(), ::redis::RedisError> {
    let mut cmd = ::redis::cmd("AUTH");
    if !user.is_empty() && user != "default" {
        cmd.arg(user);
    }
    cmd.arg(password).query(c)
}

fn run(c: &mut ::redis::Connection, args: &[&str]) -> Value {
    let mut cmd = ::redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c)
        .unwrap_or_else(|e| panic!("{} {}: {e}", args[0], args.get(1).unwrap_or(&"")))
}

/// A field of an `ACL GETUSER` reply (RESP2: a flat key/value array).
fn field(reply: &Value, name: &str) -> Vec<String> {
    let Value::Array(items) = reply else {
        panic!("no such user: {reply:?}")
    };
    let text = |v: &Value| match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        other => panic!("unexpected {other:?}"),
    };
    let value = items
        .chunks(2)
        .find(|p| text(&p[0]) == name)
        .map(|p| &p[1])
        .expect(name);
    match value {
        Value::Array(v) => v.iter().map(text).collect(),
        v => vec![text(v)],
    }
}

fn stored(p: &mut Redis, user: &str) -> String {
    match p.read_stored(user).unwrap() {
        StoredCredential::Stored(s) => s,
        other => panic!("expected a stored snapshot of {user:?}, got {other:?}"),
    }
}

fn assert_refused(p: &Redis, user: &str, password: &str) {
    let err = p
        .verify_login(user, &Secret::new(password))
        .expect_err("a wrong password was accepted");
    assert_eq!(err.kind, FailureKind::AuthRejected, "{err}");
}

macro_rules! redis_test {
    ($name:ident, $mode:expr, $body:expr) => {
        #[test]
        fn $name() {
            let Some(server) = RedisServer::start($mode) else {
                return;
            };
            let f: &dyn Fn(RedisServer) = &$body;
            f(server);
        }
    };
}

// ---- the provider, driven directly ----

redis_test!(
    acl_user_round_trip_restores_the_hashes,
    Mode::MemoryOnly,
    |r| {
        r.cmd(&[
            "ACL",
            "SETUSER",
            "app",
            "on",
            ">old-pw",
            ">second-old",
            "~app:*",
            "+get",
        ]);
        let mut p = r.provider();
        assert_eq!(p.persistence(), &Persistence::MemoryOnly);
        p.check_admin().unwrap();
        let snapshot = stored(&mut p, "app");
        assert!(
            !snapshot.contains("old-pw") && snapshot.contains(&sha256_hex(&Secret::new("old-pw"))),
            "{snapshot}"
        );

        p.set_password("app", &Secret::new("new-pw")).unwrap();
        p.verify_login("app", &Secret::new("new-pw")).unwrap();
        assert_refused(&p, "app", "old-pw");
        assert_refused(&p, "app", "second-old");
        assert_eq!(
            field(&r.get_user("app"), "passwords"),
            [sha256_hex(&Secret::new("new-pw"))]
        );
        assert_eq!(
            field(&r.get_user("app"), "commands"),
            ["-@all +get"],
            "only the password may change"
        );

        p.restore_stored("app", &snapshot).unwrap();
        assert_eq!(
            stored(&mut p, "app"),
            snapshot,
            "read_stored after restore must give the same text"
        );
        p.verify_login("app", &Secret::new("old-pw")).unwrap();
        p.verify_login("app", &Secret::new("second-old")).unwrap();
        assert_refused(&p, "app", "new-pw");
    }
);

redis_test!(
    absent_user_is_created_with_full_access_and_dropped,
    Mode::MemoryOnly,
    |r| {
        let mut p = r.provider();
        assert_eq!(p.read_stored("fresh").unwrap(), StoredCredential::Absent);
        assert!(!p.user_exists("fresh").unwrap());
        p.set_password("fresh", &Secret::new("fresh-pw")).unwrap();
        let user = r.get_user("fresh");
        assert_eq!(field(&user, "flags"), ["on"]);
        assert_eq!(field(&user, "keys"), ["~*"]);
        assert_eq!(field(&user, "commands"), ["+@all"]);
        p.verify_login("fresh", &Secret::new("fresh-pw")).unwrap();
        assert_refused(&p, "fresh", "fresh-pw2");
        p.drop_user("fresh").unwrap();
        assert!(!p.user_exists("fresh").unwrap());
        assert_eq!(r.get_user("fresh"), Value::Nil);
    }
);

redis_test!(
    hostile_names_and_passwords_reach_the_server_exactly,
    Mode::AclFile,
    |r| {
        let names = [
            "app\";FLUSHALL;--'\\ø",
            ">notapassword",
            "#0000",
            "~*",
            "+@all",
            "nopass",
            "ø€中😀",
        ];
        let passwords = [
            "p'\"\\$`",
            " lead and trail ",
            "a\r\nb",
            ">x",
            "#y",
            "nopass",
            "æøå€中😀",
            "resetpass",
        ];
        r.cmd(&["ACL", "SETUSER", "bystander", "on", ">by-pw"]);
        let mut p = r.provider();
        for name in names {
            for pw in passwords {
                p.set_password(name, &Secret::new(pw))
                    .unwrap_or_else(|e| panic!("{name:?}: {e}"));
                assert!(r.try_login(name, pw), "{name:?} cannot log in with {pw:?}");
                for wrong in [
                    pw.trim().to_owned(),
                    pw.replace('\\', "\\\\"),
                    format!("{pw}x"),
                ] {
                    if wrong != pw {
                        assert!(
                            !r.try_login(name, &wrong),
                            "{name:?} logs in with {wrong:?} instead of {pw:?}"
                        );
                    }
                }
            }
            assert_eq!(field(&r.get_user(name), "passwords").len(), 1);
        }
        assert!(r.try_login("bystander", "by-pw"), "a bystander was changed");
        assert!(
            r.try_login("default", &r.default_pass),
            "the default user was changed"
        );
        for bad in ["a b", "tab\there", "new\nline"] {
            let err = p.set_password(bad, &Secret::new("pw")).unwrap_err();
            assert_eq!(err.kind, FailureKind::InvalidInput, "{err}");
            assert_eq!(r.get_user(bad), Value::Nil);
        }
        // Everything written survives a restart from the ACL file.
        drop(p);
        r.cmd(&["ACL", "LOAD"]);
        assert!(r.try_login(names[0], passwords[passwords.len() - 1]));
    }
);

redis_test!(
    the_default_user_is_rotated_and_restored,
    Mode::MemoryOnly,
    |r| {
        // A default user that lets anyone in: after the rotation it must not.
        r.cmd(&["ACL", "SETUSER", "default", "resetpass", "nopass", "on"]);
        let mut p = r.provider();
        assert!(p.user_exists("").unwrap());
        let snapshot = stored(&mut p, "");
        assert_eq!(stored(&mut p, "default"), snapshot);
        p.set_password("", &Secret::new("def-new")).unwrap();
        p.verify_login("", &Secret::new("def-new")).unwrap();
        p.verify_login("default", &Secret::new("def-new")).unwrap();
        assert_refused(&p, "", "anything");
        let pong: Result<String, _> = ::redis::cmd("PING").query(&mut r.raw().unwrap());
        assert_eq!(
            pong.unwrap_err().code(),
            Some("NOAUTH"),
            "unauthenticated clients still get in"
        );

        p.restore_stored("default", &snapshot).unwrap();
        assert_eq!(stored(&mut p, ""), snapshot);
        let pong: String = ::redis::cmd("PING").query(&mut r.raw().unwrap()).unwrap();
        assert_eq!(pong, "PONG", "nopass is back after the rollback");
        assert!(
            p.drop_user("").is_err(),
            "the default user cannot be dropped"
        );
    }
);

redis_test!(
    a_server_without_acls_rotates_requirepass,
    Mode::NoAcl,
    |r| {
        let mut p = r.provider();
        assert!(!p.has_acl());
        p.check_admin().unwrap();
        match p.read_stored("").unwrap() {
            StoredCredential::Unreadable { reason } => {
                assert!(reason.contains("requirepass"), "{reason}")
            }
            other => panic!("expected Unreadable, got {other:?}"),
        }
        assert_eq!(
            p.validate("app", &Secret::new("pw")).unwrap_err().kind,
            FailureKind::InvalidInput
        );
        p.set_password("", &Secret::new("req-new")).unwrap();
        p.verify_login("", &Secret::new("req-new")).unwrap();
        assert_refused(&p, "", &r.admin_pass);
        assert!(r.try_login("", "req-new") && !r.try_login("", &r.admin_pass));
        assert_eq!(p.persistence(), &Persistence::MemoryOnly);
        // The engine's fallback without a snapshot: set the live (old) value again.
        p.set_password("default", &Secret::new(&r.admin_pass))
            .unwrap();
        assert!(r.try_login("", &r.admin_pass) && !r.try_login("", "req-new"));
    }
);

redis_test!(
    changes_survive_a_restart_with_an_acl_file,
    Mode::AclFile,
    |mut r| {
        r.cmd(&["ACL", "SETUSER", "app", "on", ">old-pw", "~*", "+@all"]);
        r.cmd(&["ACL", "SAVE"]);
        let mut p = r.provider();
        assert_eq!(p.persistence(), &Persistence::AclFile);
        p.check_admin().unwrap();
        let snapshot = stored(&mut p, "app");
        p.set_password("app", &Secret::new("new-pw")).unwrap();
        p.set_password("created", &Secret::new("created-pw"))
            .unwrap();
        p.set_password("", &Secret::new("default-new")).unwrap();
        drop(p);
        r.restart();
        assert!(r.try_login("app", "new-pw") && !r.try_login("app", "old-pw"));
        assert!(r.try_login("created", "created-pw"));
        assert!(r.try_login("", "default-new") && !r.try_login("", &r.default_pass));
        let acl = std::fs::read_to_string(r.acl_file()).unwrap();
        assert!(
            !acl.contains("new-pw") && !acl.contains("default-new"),
            "the ACL file holds plaintext"
        );

        let mut p = r.provider();
        p.restore_stored("app", &snapshot).unwrap();
        p.drop_user("created").unwrap();
        drop(p);
        r.restart();
        assert!(r.try_login("app", "old-pw") && !r.try_login("app", "new-pw"));
        assert_eq!(r.get_user("created"), Value::Nil);
    }
);

redis_test!(a_failed_save_fails_the_change, Mode::AclFile, |r| {
    r.cmd(&["ACL", "SETUSER", "app", "on", ">save-old", "~*", "+@all"]);
    let mut p = r.provider();
    let snapshot = stored(&mut p, "app");
    // ACL SAVE writes a temporary file beside the ACL file: without the directory it fails
    // (file modes would not do: the tests may run as root).
    let acl_dir = r.acl_file().parent().unwrap().to_owned();
    std::fs::remove_dir_all(&acl_dir).unwrap();
    let err = p.set_password("app", &Secret::new("save-new")).unwrap_err();
    assert_eq!(err.kind, FailureKind::Database, "{err}");
    assert!(err.action.contains("ACL SAVE"), "{err}");
    assert!(!err.to_string().contains("save-new"));
    // The rollback cannot be saved either: an error, so the engine keeps retrying.
    assert!(p.restore_stored("app", &snapshot).is_err());
    std::fs::create_dir_all(&acl_dir).unwrap();
    p.restore_stored("app", &snapshot).unwrap();
    assert!(r.try_login("app", "save-old") && !r.try_login("app", "save-new"));
    let saved = std::fs::read_to_string(r.acl_file()).unwrap();
    assert!(
        saved.contains(&sha256_hex(&Secret::new("save-old"))),
        "{saved}"
    );
});

redis_test!(
    changes_survive_a_restart_with_a_config_file,
    Mode::ConfigFile,
    |mut r| {
        let mut p = r.provider();
        assert_eq!(p.persistence(), &Persistence::ConfigFile);
        p.check_admin().unwrap();
        p.set_password("app", &Secret::new("conf-pw")).unwrap();
        p.set_password("", &Secret::new("conf-default")).unwrap();
        // A quote would make redis.conf unreadable: refused, and nothing written.
        let err = p.set_password("it's", &Secret::new("pw")).unwrap_err();
        assert_eq!(err.kind, FailureKind::InvalidInput, "{err}");
        assert!(err.detail.contains("config file"), "{err}");
        drop(p);
        r.restart();
        assert!(r.try_login("app", "conf-pw") && !r.try_login("app", "conf-pw2"));
        assert!(r.try_login("", "conf-default") && !r.try_login("", &r.default_pass));
        assert_eq!(r.get_user("it's"), Value::Nil);
    }
);

redis_test!(
    requirepass_survives_a_restart_with_a_config_file,
    Mode::NoAclConfigFile,
    |mut r| {
        let mut p = r.provider();
        assert!(!p.has_acl());
        assert_eq!(p.persistence(), &Persistence::ConfigFile);
        p.set_password("", &Secret::new("req-conf-new")).unwrap();
        drop(p);
        r.restart();
        assert!(r.try_login("", "req-conf-new") && !r.try_login("", &r.admin_pass));
    }
);

redis_test!(
    check_admin_names_the_missing_acl_rights,
    Mode::AclFile,
    |r| {
        r.cmd(&[
            "ACL",
            "SETUSER",
            "reader",
            "on",
            ">reader-pw",
            "~*",
            "+@read",
            "+acl|whoami",
            "+acl|dryrun",
            "+config|get",
            "+info",
        ]);
        r.cmd(&[
            "ACL",
            "SETUSER",
            "nosave",
            "on",
            ">nosave-pw",
            "~*",
            "+@all",
            "-acl|save",
        ]);
        r.cmd(&[
            "ACL",
            "SETUSER",
            "noacl",
            "on",
            ">noacl-pw",
            "~*",
            "+@read",
            "+config|get",
            "+info",
        ]);
        let check = |user: &str, pw: &str| {
            Redis::connect(&r.target_as(user, pw, r.port))
                .unwrap()
                .check_admin()
        };
        let e = check("reader", "reader-pw").unwrap_err();
        assert_eq!(e.kind, FailureKind::Privilege);
        assert!(
            e.detail.contains("ACL SETUSER")
                && e.detail.contains("ACL SAVE")
                && e.detail.contains("+acl|setuser"),
            "{e}"
        );
        let e = check("nosave", "nosave-pw").unwrap_err();
        assert!(
            e.detail.contains("run ACL SAVE;") && !e.detail.contains("run ACL SETUSER"),
            "{e}"
        );
        let e = check("noacl", "noacl-pw").unwrap_err();
        assert_eq!(e.kind, FailureKind::Privilege, "{e}");
        assert!(!e.to_string().contains("noacl-pw"));
        let e = Redis::connect(&r.target_as("ska_admin", "wrong-admin-pw", r.port))
            .err()
            .expect("a wrong admin password is refused");
        assert_eq!(e.kind, FailureKind::AuthRejected, "{e}");
        assert!(!e.to_string().contains("wrong-admin-pw"));
    }
);

redis_test!(
    a_silent_server_is_an_error_within_the_timeout,
    Mode::MemoryOnly,
    |r| {
        let hole = BlackHole::start();
        let mut target = r.target_as(&r.admin_user, &r.admin_pass, hole.port());
        target.timeouts = DbTimeouts {
            connect: Duration::from_secs(1),
            statement: Duration::from_secs(1),
        };
        let started = Instant::now();
        let err = Redis::connect(&target)
            .err()
            .expect("connecting to a silent server must fail");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "took {:?}",
            started.elapsed()
        );
        assert!(
            matches!(err.kind, FailureKind::Timeout | FailureKind::Unreachable),
            "{err}"
        );
        assert!(!err.to_string().contains(&r.admin_pass));
    }
);

redis_test!(
    a_server_that_hangs_mid_session_is_an_error_within_the_timeout,
    Mode::MemoryOnly,
    |r| {
        r.cmd(&["ACL", "SETUSER", "app", "on", ">hang-old"]);
        let relay = TcpProxy::start(&format!("127.0.0.1:{}", r.port));
        let mut target = r.target_as(&r.admin_user, &r.admin_pass, relay.port());
        target.timeouts = DbTimeouts {
            connect: Duration::from_secs(2),
            statement: Duration::from_secs(2),
        };
        let mut p = Redis::connect(&target).unwrap();
        relay.freeze();
        let started = Instant::now();
        let err = p.set_password("app", &Secret::new("hang-new")).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "took {:?}",
            started.elapsed()
        );
        assert_eq!(err.kind, FailureKind::Timeout, "{err}");
        let err = p.verify_login("app", &Secret::new("hang-old")).unwrap_err();
        assert!(
            matches!(err.kind, FailureKind::Timeout | FailureKind::Unreachable),
            "{err}"
        );
        drop(relay);
        assert!(r.try_login("app", "hang-old") && !r.try_login("app", "hang-new"));
    }
);

// ---- the shared failure scenarios, through the agent binary ----

/// A scenario's Redis: its own server with an ACL file.
pub struct ScenarioRedis(pub RedisServer);

impl Database for ScenarioRedis {
    fn provider_type(&self) -> &'static str {
        "redis"
    }
    fn endpoint(&self) -> (String, u16) {
        ("127.0.0.1".into(), self.0.port)
    }
    fn connection(&self, host: &str, port: u16) -> Json {
        json!({"host": host, "port": port, "database": "", "adminUser": self.0.admin_user,
               "adminPass": self.0.admin_pass, "projectReference": ""})
    }
    fn admin_password(&self) -> String {
        self.0.admin_pass.clone()
    }
    fn create_user(&self, name: &str, password: &str) {
        self.0.cmd(&[
            "ACL",
            "SETUSER",
            name,
            "on",
            &format!(">{password}"),
            "~*",
            "+@all",
        ]);
    }
    fn drop_user(&self, name: &str) {
        self.0.cmd(&["ACL", "DELUSER", name]);
    }
    fn can_login(&self, name: &str, password: &str) -> bool {
        self.0.try_login(name, password)
    }
    fn block_login(&self, name: &str) {
        self.0.cmd(&["ACL", "SETUSER", name, "off"]);
    }
    fn unblock_login(&self, name: &str) {
        self.0.cmd(&["ACL", "SETUSER", name, "on"]);
    }
    fn hostile_name(&self) -> String {
        format!("app\";FLUSHALL;--'\\ø{}", unique_name("h"))
    }
}

macro_rules! scenario {
    ($name:ident, $body:expr) => {
        #[test]
        fn $name() {
            let Some(server) = RedisServer::start(Mode::AclFile) else {
                return;
            };
            let db = ScenarioRedis(server);
            let f: &dyn Fn(&ScenarioRedis) = &$body;
            f(&db);
        }
    };
}

crate::scenarios::shared_scenarios!(scenario);
scenario!(verify_fails_rolls_back, |db| {
    scenarios::verify_fails_rolls_back(db)
});

scenario!(the_default_user_is_rotated_end_to_end, |db| {
    let r = &db.0;
    let w = World::plain(db);
    w.cp.with_secret(&w.secret, |s| {
        s.managed_username = "default".into();
        s.live_value = json!({"password": r.default_pass}).to_string();
    });
    let agent = w.start();
    // No username in the value: the sync config's managed user, "default", is rotated.
    w.cp.set_pending(
        &w.secret,
        "rot_default",
        &json!({"password": "default-new-pw"}).to_string(),
    );
    w.wait_confirmed("rot_default", &agent);
    w.wait_journal_cleared(&agent);
    assert!(
        r.try_login("", "default-new-pw"),
        "the default user did not get the new password"
    );
    assert!(
        !r.try_login("", &r.default_pass),
        "the default user still takes the old password"
    );
    assert!(
        r.try_login(&w.user, &w.old_pw),
        "the scenario's named user was touched"
    );
    let output = agent.output();
    w.finish(agent, &[&r.default_pass, "default-new-pw"]);
    assert!(
        !output.contains("only in memory"),
        "an ACL file server needs no warning:\n{output}"
    );
});

#[test]
fn a_memory_only_server_warns_once_per_rotation() {
    let Some(server) = RedisServer::start(Mode::MemoryOnly) else {
        return;
    };
    let db = ScenarioRedis(server);
    let w = World::plain(&db);
    let agent = w.start();
    w.cp.set_pending(&w.secret, "rot_mem", &secret_value(&w.user, "mem-new-pw"));
    w.wait_confirmed("rot_mem", &agent);
    w.wait_journal_cleared(&agent);
    assert_password(&db, &w.user, "mem-new-pw", &w.old_pw);
    db.block_login(&w.user);
    w.cp.set_pending(
        &w.secret,
        "rot_mem2",
        &secret_value(&w.user, "mem-newer-pw"),
    );
    w.wait_rejected("rot_mem2", &agent);
    w.wait_journal_cleared(&agent);
    db.unblock_login(&w.user);
    let output = agent.output();
    assert_eq!(
        output.matches("only in memory").count(),
        2,
        "one warning per rotation (apply + rollback share one):\n{output}"
    );
    w.finish(agent, &[&w.old_pw, "mem-new-pw", "mem-newer-pw"]);
}

#[test]
fn the_agent_exits_when_the_admin_lacks_acl_rights() {
    let Some(server) = RedisServer::start(Mode::AclFile) else {
        return;
    };
    server.cmd(&[
        "ACL",
        "SETUSER",
        "weak",
        "on",
        ">weak-pw-123",
        "~*",
        "+@read",
        "+acl|whoami",
        "+acl|dryrun",
        "+config|get",
        "+info",
    ]);
    let db = ScenarioRedis(server);
    let w = World::plain(&db);
    w.cp.with_secret(&w.secret, |s| {
        s.connection["adminUser"] = json!("weak");
        s.connection["adminPass"] = json!("weak-pw-123");
    });
    let mut agent = w.machine.spawn_agent(&w.secret);
    let status = agent.wait_exit(scenarios::SOON);
    assert_eq!(status.code(), Some(6), "output:\n{}", agent.output());
    assert!(
        agent.output().contains("ACL SETUSER"),
        "the error names the missing right:\n{}",
        agent.output()
    );
    scenarios::assert_no_leak(
        &agent.output(),
        &["weak-pw-123", &w.old_pw],
        &db.0.admin_pass,
    );
}
