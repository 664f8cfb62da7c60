//! Redis servers each test starts for itself (`SKA_REDIS_SERVER` names the binary), in
//! each way a server can keep its users: in memory, an ACL file, a config file, or no
//! ACLs at all (`requirepass`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ::redis::{Client, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo, Value};
use serde_json::{Value as Json, json};

use sikkerkey_agent::providers::Target;
use sikkerkey_agent::providers::redis::Redis;
use sikkerkey_agent::secret::Secret;

use crate::support::world::{Database, WeakAdmin, provider_target};
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
    pub port: u16,
    child: Option<Child>,
    pub admin_user: String,
    pub admin_pass: String,
    pub default_pass: String,
}

impl RedisServer {
    /// A server with an ACL file: what the shared scenarios run against.
    pub fn open() -> Option<RedisServer> {
        Self::start(Mode::AclFile)
    }

    /// Starts a server, or `None` (skip) outside CI when redis-server is not available.
    pub fn start(mode: Mode) -> Option<RedisServer> {
        Self::start_from("SKA_REDIS_SERVER", "Redis", mode)
    }

    /// Starts the server binary that environment variable `var` names (the base Redis, or
    /// one of the matrix's Valkey and Redis versions).
    pub fn start_from(var: &str, service: &str, mode: Mode) -> Option<RedisServer> {
        let bin = require_env(var, service)?;
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
    pub fn acl_file(&self) -> PathBuf {
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
    pub fn raw(&self) -> Result<::redis::Connection, ::redis::RedisError> {
        let info = ConnectionAddr::Tcp("127.0.0.1".into(), self.port)
            .into_connection_info()?
            .set_redis_settings(RedisConnectionInfo::default().set_skip_set_lib_name());
        let c = Client::open(info)?.get_connection_with_timeout(Duration::from_secs(5))?;
        c.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(c)
    }

    /// A connection authenticated as the test admin.
    pub fn admin(&self) -> ::redis::Connection {
        let mut c = self.raw().unwrap();
        auth(&mut c, &self.admin_user, &self.admin_pass).expect("admin login to the test server");
        c
    }

    pub fn cmd(&self, args: &[&str]) -> Value {
        run(&mut self.admin(), args)
    }

    /// Logins refused for `user`, as the server counts them: the `count` of its `ACL LOG`
    /// entries with reason `auth` (a wrong password and a disabled user alike).
    pub fn failed_logins(&self, user: &str) -> usize {
        let Value::Array(entries) = self.cmd(&["ACL", "LOG", "1000"]) else {
            panic!("ACL LOG gave no list");
        };
        entries
            .iter()
            .filter_map(|entry| {
                let pairs: Vec<(String, Value)> = match entry {
                    Value::Array(items) => items
                        .chunks(2)
                        .filter_map(|kv| match kv {
                            [Value::BulkString(k), v] => {
                                Some((String::from_utf8_lossy(k).into_owned(), v.clone()))
                            }
                            _ => None,
                        })
                        .collect(),
                    Value::Map(items) => items
                        .iter()
                        .filter_map(|(k, v)| match k {
                            Value::BulkString(k) => {
                                Some((String::from_utf8_lossy(k).into_owned(), v.clone()))
                            }
                            _ => None,
                        })
                        .collect(),
                    _ => return None,
                };
                let text = |name: &str| {
                    pairs
                        .iter()
                        .find(|(k, _)| k == name)
                        .and_then(|(_, v)| match v {
                            Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
                            Value::SimpleString(s) => Some(s.clone()),
                            _ => None,
                        })
                };
                let count =
                    pairs
                        .iter()
                        .find(|(k, _)| k == "count")
                        .and_then(|(_, v)| match v {
                            Value::Int(n) => usize::try_from(*n).ok(),
                            _ => None,
                        })?;
                (text("reason").as_deref() == Some("auth")
                    && text("username").as_deref() == Some(user))
                .then_some(count)
            })
            .sum()
    }

    pub fn get_user(&self, user: &str) -> Value {
        self.cmd(&["ACL", "GETUSER", user])
    }

    /// Whether `user` (empty or "default": the default user) logs in with `password`.
    pub fn try_login(&self, user: &str, password: &str) -> bool {
        let mut c = self.raw().unwrap();
        match auth(&mut c, user, password) {
            Ok(()) => true,
            Err(e) if e.code() == Some("WRONGPASS") => false,
            Err(e) if e.detail().is_some_and(|d| d.contains("invalid password")) => false,
            Err(e) => panic!("cannot reach the test server: {e}"),
        }
    }

    pub fn target(&self) -> Target {
        self.target_as(&self.admin_user, &self.admin_pass, self.port)
    }

    pub fn target_as(&self, admin_user: &str, admin_pass: &str, port: u16) -> Target {
        let mut target = provider_target(self, "127.0.0.1", port, Duration::from_secs(5));
        target.admin_user = admin_user.to_owned();
        target.admin_pass = Secret::new(admin_pass);
        target
    }

    pub fn provider(&self) -> Redis {
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
pub fn field(reply: &Value, name: &str) -> Vec<String> {
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

impl Database for RedisServer {
    fn provider_type(&self) -> &'static str {
        "redis"
    }
    fn endpoint(&self) -> (String, u16) {
        ("127.0.0.1".into(), self.port)
    }
    fn connection(&self, host: &str, port: u16) -> Json {
        json!({"host": host, "port": port, "database": "", "adminUser": self.admin_user,
               "adminPass": self.admin_pass, "projectReference": ""})
    }
    fn admin_password(&self) -> String {
        self.admin_pass.clone()
    }
    fn create_user(&self, name: &str, password: &str) {
        self.cmd(&[
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
        self.cmd(&["ACL", "DELUSER", name]);
    }
    fn can_login(&self, name: &str, password: &str) -> bool {
        self.try_login(name, password)
    }
    fn block_login(&self, name: &str) {
        self.cmd(&["ACL", "SETUSER", name, "off"]);
    }
    fn unblock_login(&self, name: &str) {
        self.cmd(&["ACL", "SETUSER", name, "on"]);
    }
    fn hostile_name(&self) -> String {
        format!("app\";FLUSHALL;--'\\ø{}", unique_name("h"))
    }
    /// Can read, look at itself and at the config, but not change or save users.
    fn weak_admin(&self) -> WeakAdmin {
        let user = unique_name("weak");
        let password = format!("weak-{}", random_text(12));
        self.cmd(&[
            "ACL",
            "SETUSER",
            &user,
            "on",
            &format!(">{password}"),
            "~*",
            "+@read",
            "+acl|whoami",
            "+acl|dryrun",
            "+config|get",
            "+info",
        ]);
        WeakAdmin {
            user,
            password,
            output_names: "ACL SETUSER",
            heartbeat_names: "ACL SETUSER",
        }
    }
}
