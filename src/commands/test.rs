//! `test`: checks, before any rotation depends on it, that the agent can do its job:
//! its configuration, the admin's login, the admin's privileges and the managed user.
//! Prints one line per check and exits with `Exit::CheckFailed` if any fails.
//!
//! Connection details come from the local config. `test` never takes the secret's agent
//! lock on its own: fetching the server's sync config registers this machine as the
//! secret's agent (the first machine to fetch it holds the lock), so without a local
//! config it does so only when asked with `--use-server-config`. Nothing in the database
//! is changed.

use std::path::Path;

use super::CommandError;
use super::local;
use crate::api::{ApiClient, HttpTimeouts, SyncConfig};
use crate::exit::Exit;
use crate::identity::Identity;
use crate::localconfig::LocalConfig;
use crate::localconfig::build_target;
use crate::providers::{self, Provider, Target};
use crate::secret::{FieldNames, Secret, parse_fields};
use crate::settings::Settings;

/// Prints check results as they happen and remembers whether any failed.
struct Checks {
    failed: usize,
    skipped: usize,
    total: usize,
}

impl Checks {
    fn ok(&mut self, name: &str, detail: impl AsRef<str>) {
        self.total += 1;
        println!("ok    {name:<10} {}", detail.as_ref());
    }

    fn fail(&mut self, name: &str, detail: impl AsRef<str>) {
        self.total += 1;
        self.failed += 1;
        println!("FAIL  {name:<10} {}", detail.as_ref());
    }

    fn skip(&mut self, names: &[&str], why: &str) {
        for name in names {
            self.total += 1;
            self.skipped += 1;
            println!("skip  {name:<10} {why}");
        }
    }
}

fn api_client(home: &Path, settings: &Settings, http: HttpTimeouts) -> Result<ApiClient, String> {
    let identity = Identity::load(home, settings.vault.as_deref(), settings.api_url.as_deref())
        .map_err(|e| e.to_string())?;
    ApiClient::new(identity, http, settings.ca_file.as_deref()).map_err(|e| e.to_string())
}

/// Where the connection details come from, checked.
fn load_target(
    secret: &str,
    local: Option<&LocalConfig>,
    config_path: &Path,
    api: &Result<ApiClient, String>,
    sync: &mut Option<SyncConfig>,
    db: crate::providers::DbTimeouts,
    use_server_config: bool,
) -> Result<(Target, FieldNames, String), String> {
    let (source, server) = match local {
        Some(_) => (
            format!("local config {}", config_path.display()),
            SyncConfig::default(),
        ),
        None if !use_server_config => {
            return Err(format!(
                "no local config at {}, so there is nothing to check without the server. Write one with \
                 `sikkerkey-agent configure --secret {secret} ...`, or pass --use-server-config to use the server's \
                 sync config (this registers this machine as the secret's agent and takes its lock)",
                config_path.display()
            ));
        }
        None => {
            let api = api.as_ref().map_err(|e| {
                format!(
                    "no local config at {} and no identity to ask SikkerKey: {e}",
                    config_path.display()
                )
            })?;
            let fetched = api
                .sync_config(secret)
                .map_err(|e| format!("no local config at {}, and {e}", config_path.display()))?;
            *sync = Some(fetched.clone());
            (format!("sync config from {}", api.base_url()), fetched)
        }
    };
    let (target, fields) = build_target(&server, local, db).map_err(|e| e.to_string())?;
    Ok((target, fields, source))
}

/// The managed username: the live value's username field, else the sync config's
/// `managedUsername` (fetched only when needed), else the database's implicit user
/// (Redis: `default`); and the live password, when the value has one.
fn managed_username(
    secret: &str,
    api: &Result<ApiClient, String>,
    fields: &FieldNames,
    sync: &mut Option<SyncConfig>,
    use_server_config: bool,
    implicit_user: Option<&str>,
) -> Result<(String, Option<Secret>), String> {
    let api = api
        .as_ref()
        .map_err(|e| format!("cannot ask SikkerKey which user is managed: {e}"))?;
    let value = api.live_value(secret).map_err(|e| e.to_string())?;
    let parsed = parse_fields(value.expose());
    let password = parsed
        .get(&fields.password)
        .filter(|p| !p.is_empty())
        .cloned();
    if let Some(name) = parsed.get(&fields.username).filter(|u| !u.is_empty()) {
        return Ok((name.expose().to_owned(), password));
    }
    if sync.is_none() {
        if !use_server_config {
            return Err(format!(
                "the secret's value has no \"{}\" field; only the server's sync config names the managed user, \
                 and fetching it takes the agent lock: pass --use-server-config to allow that",
                fields.username
            ));
        }
        *sync = Some(api.sync_config(secret).map_err(|e| e.to_string())?);
    }
    let name = sync
        .as_ref()
        .map(|s| s.managed_username.clone())
        .unwrap_or_default();
    if let Some(implicit) = implicit_user.filter(|_| name.is_empty()) {
        return Ok((implicit.to_owned(), password));
    }
    if name.is_empty() {
        return Err(format!(
            "the secret's value has no \"{}\" field and the sync config names no managed user",
            fields.username
        ));
    }
    Ok((name, password))
}

pub fn run(
    secret: &str,
    use_server_config: bool,
    settings: &Settings,
) -> Result<Exit, CommandError> {
    let files = local::files(secret, settings)?;
    let config = files.local_config();
    if let Some(w) = config.warning() {
        crate::logging::say(log::Level::Warn, &format!("warning: {w}"));
    }
    if use_server_config && !config.path.exists() {
        crate::logging::say(
            log::Level::Warn,
            &format!(
                "warning: --use-server-config fetches the sync config of {secret}, which registers this machine as its agent \
                 (the agent lock): another machine's agent for it will get 409 from now on"
            ),
        );
    }
    // The table on stdout is the report; how the HTTP client was set up is not a check.
    if log::max_level() > log::LevelFilter::Warn {
        log::set_max_level(log::LevelFilter::Warn);
    }
    let home = local::home(settings)?;
    let (timing, http) = super::start::timing(&settings.test);
    let mut checks = Checks {
        failed: 0,
        skipped: 0,
        total: 0,
    };
    let api = api_client(&home, settings, http);
    let mut sync = None;

    let local = match LocalConfig::load(&config.path) {
        Ok(l) => l,
        Err(e) => {
            checks.fail("config", e.to_string());
            checks.skip(&["login", "privileges", "user"], "needs a usable config");
            return Ok(summary(&checks));
        }
    };
    let (target, fields, source) = match load_target(
        secret,
        local.as_ref(),
        &config.path,
        &api,
        &mut sync,
        timing.db,
        use_server_config,
    ) {
        Ok(t) => t,
        Err(e) => {
            checks.fail("config", e);
            checks.skip(&["login", "privileges", "user"], "needs a usable config");
            return Ok(summary(&checks));
        }
    };
    checks.ok(
        "config",
        format!(
            "{source}: {} at {}, admin \"{}\"",
            target.kind.display_name(),
            target.endpoint(),
            target.admin_user
        ),
    );

    let mut db: Box<dyn Provider> = match providers::open(&target) {
        Ok(p) => p,
        Err(e) => {
            checks.fail("login", e.to_string());
            checks.skip(&["privileges", "user"], "needs an admin login");
            return Ok(summary(&checks));
        }
    };
    // The connection's TLS goes on the login line: protocol, and what was verified.
    let tls = db.tls_status().describe(&target.tls);
    checks.ok(
        "login",
        format!("admin \"{}\" logged in; {tls}", target.admin_user),
    );

    // The managed user first: the privilege check covers what the admin may do to it
    // (PostgreSQL 16+ wants ADMIN OPTION on the role, not only CREATEROLE).
    let user = managed_username(
        secret,
        &api,
        &fields,
        &mut sync,
        use_server_config,
        target.kind.implicit_user(),
    );
    let privileges = db.check_admin().and_then(|()| match &user {
        Ok(u) => db.check_can_manage(&u.0),
        Err(_) => Ok(()),
    });
    match privileges {
        Ok(()) => checks.ok(
            "privileges",
            format!(
                "\"{}\" may create users and change passwords",
                target.admin_user
            ),
        ),
        Err(e) => checks.fail("privileges", e.to_string()),
    }

    match user {
        Err(e) => checks.fail("user", e),
        Ok((user, password)) => match db.user_exists(&user) {
            // Logging in with the live value goes the way a rotation's verification does
            // (for MySQL, over the server's socket for 'user'@'localhost' accounts).
            Ok(true) => match password.map(|p| db.verify_login(&user, &p)) {
                None => checks.ok("user", format!("managed user \"{user}\" exists")),
                Some(Ok(())) => checks.ok(
                    "user",
                    format!("managed user \"{user}\" exists and logs in with the live value"),
                ),
                Some(Err(e)) => checks.fail(
                    "user",
                    format!("managed user \"{user}\" exists but the live value does not log in: {e}"),
                ),
            },
            Ok(false) => checks.fail(
                "user",
                format!("managed user \"{user}\" does not exist in the database (the first rotation would create it; create it now if applications already use it)"),
            ),
            Err(e) => checks.fail("user", e.to_string()),
        },
    }
    Ok(summary(&checks))
}

fn summary(checks: &Checks) -> Exit {
    if checks.failed == 0 {
        println!("all {} checks passed", checks.total);
        Exit::Ok
    } else {
        let skipped = if checks.skipped > 0 {
            format!(", {} skipped", checks.skipped)
        } else {
            String::new()
        };
        println!(
            "{} of {} checks failed{skipped}",
            checks.failed, checks.total
        );
        Exit::CheckFailed
    }
}
