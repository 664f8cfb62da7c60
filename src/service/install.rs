//! The I/O half of services: finds out who and where (user, `SIKKERKEY_HOME`, binary,
//! platform, target directory), writes or deletes the definition, and drives the service
//! manager (`systemctl`, `launchctl`, `nssm`) without a shell.
//!
//! Tests replace the platform (`SIKKERKEY_SERVICE_PLATFORM`), the target directory
//! (`SIKKERKEY_SERVICE_DIR`) and the service manager (a stand-in earlier on PATH), so they
//! never touch the real /etc.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::render;
use super::template::CommandLine;
use super::{Platform, ServiceError, ServiceSpec};
use crate::fsutil;
use crate::settings::Settings;

/// A service for one secret on one platform, ready to print, install or remove.
#[derive(Debug, Clone)]
pub struct Plan {
    pub platform: Platform,
    pub spec: ServiceSpec,
    /// Where the definition file goes (systemd, launchd); unused on Windows.
    pub dir: PathBuf,
    /// Things the user should know (service running as root, no identity yet).
    pub warnings: Vec<String>,
    /// What `install` does that the user did not spell out (variables carried over).
    pub notes: Vec<String>,
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A line of /etc/passwd: name and home directory.
fn passwd_lookup(matches: impl Fn(&str, u32) -> bool) -> Option<(String, PathBuf)> {
    let text = fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        let uid = f.get(2)?.parse().ok()?;
        (f.len() >= 6 && matches(f[0], uid)).then(|| (f[0].to_owned(), PathBuf::from(f[5])))
    })
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Who the service runs as: the user behind `sudo`, not root; otherwise whoever runs this.
/// Returns the name and, under sudo, that user's home.
fn invoking_user() -> Result<(String, Option<PathBuf>), ServiceError> {
    let euid = effective_uid();
    if let Some(sudo_user) = env_nonempty("SUDO_USER").filter(|u| u != "root" && euid == 0) {
        let home = passwd_lookup(|name, _| name == sudo_user).map(|(_, h)| h);
        return Ok((sudo_user, home));
    }
    if let Some(name) = passwd_lookup(|_, uid| uid == euid)
        .map(|(n, _)| n)
        .or_else(|| env_nonempty("USER"))
        .or_else(|| env_nonempty("LOGNAME"))
    {
        return Ok((name, None));
    }
    Err(ServiceError::NoUser(format!(
        "cannot tell which user the service should run as (uid {euid} has no name); set USER"
    )))
}

/// `SIKKERKEY_HOME` for the service: as set (made absolute), else the invoking user's
/// `~/.sikkerkey` (under sudo, the sudo user's, not root's).
fn agent_home(
    configured: Option<&Path>,
    user: &str,
    sudo_home: Option<&Path>,
) -> Result<PathBuf, ServiceError> {
    if let Some(h) = configured {
        let h = h.to_owned();
        if h.is_absolute() {
            return Ok(h);
        }
        let cwd = std::env::current_dir().map_err(|source| ServiceError::Io {
            what: "read the current directory".into(),
            path: ".".into(),
            source,
        })?;
        return Ok(cwd.join(h));
    }
    if env_nonempty("SUDO_USER").is_some() && effective_uid() == 0 && user != "root" {
        return match sudo_home {
            Some(h) => Ok(h.join(".sikkerkey")),
            None => Err(ServiceError::NoUser(format!(
                "cannot find the home directory of {user}; pass SIKKERKEY_HOME through sudo (sudo --preserve-env=SIKKERKEY_HOME ...)"
            ))),
        };
    }
    crate::identity::sikkerkey_home(None).map_err(|e| ServiceError::NoUser(e.to_string()))
}

fn to_utf8(path: &Path, what: &'static str) -> Result<String, ServiceError> {
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| ServiceError::BadValue {
            what,
            reason: format!("{} is not valid UTF-8", path.display()),
        })
}

impl Plan {
    /// Works out the service for `secret_id` from the settings and this process's
    /// environment (user, sudo, binary path).
    pub fn from_environment(secret_id: &str, settings: &Settings) -> Result<Plan, ServiceError> {
        let platform = match settings.service_platform.as_deref() {
            Some(p) => Platform::parse(p)?,
            None => Platform::native()?,
        };
        let under_sudo = env_nonempty("SUDO_USER").is_some() && effective_uid() == 0;
        if platform == Platform::Launchd && under_sudo {
            return Err(ServiceError::LaunchdAsRoot);
        }
        let (user, sudo_home) = invoking_user()?;
        let home = agent_home(settings.home.as_deref(), &user, sudo_home.as_deref())?;
        let exe = std::env::current_exe().map_err(|source| ServiceError::Io {
            what: "find the path of".into(),
            path: "this program".into(),
            source,
        })?;
        let spec = ServiceSpec::new(
            secret_id,
            &to_utf8(&exe, "agent binary path")?,
            &to_utf8(&home, "SIKKERKEY_HOME")?,
            &user,
            settings.vault.as_deref(),
        )?;
        // SIKKERKEY_CA_FILE comes from the settings; the proxy and SSL_* variables belong
        // to the HTTP and TLS conventions every program shares.
        let (network, mut warnings) = super::carried_env::select(|name| match name {
            crate::trust::CA_FILE_VAR => settings
                .ca_file
                .as_ref()
                .and_then(|p| p.to_str())
                .map(str::to_owned),
            other => env_nonempty(other),
        });
        let mut notes = Vec::new();
        if !network.is_empty() {
            let names: Vec<&str> = network.iter().map(|(n, _)| *n).collect();
            notes.push(format!(
                "the service gets {} from this shell (a service starts with an empty environment)",
                names.join(", ")
            ));
        }
        let spec = spec.with_network(network)?;
        let dir = match (&settings.service_dir, platform) {
            (Some(d), _) => d.clone(),
            (None, Platform::Systemd) => PathBuf::from("/etc/systemd/system"),
            (None, Platform::Launchd) => match env_nonempty("HOME") {
                Some(h) => Path::new(&h).join("Library/LaunchAgents"),
                None => {
                    return Err(ServiceError::NoUser(
                        "HOME is not set; cannot find ~/Library/LaunchAgents".into(),
                    ));
                }
            },
            (None, Platform::Windows) => PathBuf::new(),
        };
        if crate::identity::list_vaults(Path::new(&spec.home)).is_empty() {
            warnings.push(format!(
                "no SikkerKey identity under {}; the service will stop with exit code {} until this machine is bootstrapped (`sikkerkey connect` and `sikkerkey unlock`)",
                spec.home,
                crate::exit::Exit::Config.code()
            ));
        }
        if platform == Platform::Systemd && spec.user == "root" {
            warnings.push("the service will run as root; run `sudo sikkerkey-agent install` from your own account to run it as you".into());
        }
        Ok(Plan {
            platform,
            spec,
            dir,
            warnings,
            notes,
        })
    }

    /// The definition file, for the platforms that have one.
    pub fn definition_path(&self) -> Option<PathBuf> {
        match self.platform {
            Platform::Systemd => Some(self.dir.join(self.spec.systemd_unit_name())),
            Platform::Launchd => Some(
                self.dir
                    .join(format!("{}.plist", self.spec.launchd_label())),
            ),
            Platform::Windows => None,
        }
    }

    /// The service definition as printed by `install` without `--now`.
    pub fn definition(&self) -> String {
        match self.platform {
            Platform::Systemd => render::systemd_unit(&self.spec),
            Platform::Launchd => render::launchd_plist(&self.spec),
            Platform::Windows => render::windows_script(&self.spec),
        }
    }

    /// Where to put the definition and how to start it, for `install` without `--now`.
    pub fn instructions(&self) -> String {
        let id = &self.spec.secret_id;
        match (self.platform, self.definition_path()) {
            (Platform::Systemd, Some(path)) => format!(
                "# Save the unit above as {}, then run:\n#   sudo systemctl daemon-reload\n#   sudo systemctl enable --now {}\n# Or let sikkerkey-agent do all of it: sudo sikkerkey-agent install --secret {id} --now",
                path.display(),
                self.spec.systemd_unit_name()
            ),
            (Platform::Launchd, Some(path)) => format!(
                "# Save the plist above as {}, then run:\n#   launchctl load {}\n# Or let sikkerkey-agent do both: sikkerkey-agent install --secret {id} --now",
                path.display(),
                path.display()
            ),
            _ => format!(
                "# Run the NSSM commands above from an elevated prompt (or the sc.exe ones without NSSM).\n# Or, with nssm on PATH: sikkerkey-agent install --secret {id} --now"
            ),
        }
    }

    /// Writes the definition and starts the service, all or nothing: when a step fails,
    /// what was done is undone (the previous definition put back, or the new one deleted)
    /// and the error says so. Returns what to tell the user; `note` hears each command
    /// as it is run.
    pub fn install_now(&self, note: &mut dyn FnMut(String)) -> Result<String, ServiceError> {
        match self.platform {
            Platform::Systemd => {
                let path = self.definition_path().expect("systemd has a unit file");
                let unit = self.spec.systemd_unit_name();
                let previous = fs::read(&path).ok();
                write_public_atomic(&path, self.definition().as_bytes())?;
                let started = run(&["systemctl", "daemon-reload"], note)
                    .and_then(|()| run(&["systemctl", "enable", "--now", &unit], note));
                if let Err(cause) = started {
                    let mut undo = Undo::default();
                    // `enable --now` may have enabled the unit before the start failed.
                    if cause.command_started_with("systemctl enable") {
                        undo.step(
                            "disabled the unit",
                            run(&["systemctl", "disable", &unit], note),
                        );
                    }
                    undo.restore(&path, previous.as_deref());
                    if !matches!(cause, ServiceError::ToolMissing { .. }) {
                        undo.step(
                            "reloaded systemd",
                            run(&["systemctl", "daemon-reload"], note),
                        );
                    }
                    return Err(undo.into_error(cause, &path, previous.is_some()));
                }
                Ok(format!(
                    "installed {} and started {unit} (starts at boot, restarts 10 s after a failure)\n  status: systemctl status {unit}\n  logs:   journalctl -u {unit} -f\n  remove: sudo sikkerkey-agent uninstall --secret {}",
                    path.display(),
                    self.spec.secret_id
                ))
            }
            Platform::Launchd => {
                let path = self.definition_path().expect("launchd has a plist");
                let agents = Path::new(&self.spec.home).join("agents");
                fsutil::ensure_private_dir(&agents).map_err(|source| ServiceError::Io {
                    what: "create".into(),
                    path: agents,
                    source,
                })?;
                let previous = fs::read(&path).ok();
                write_public_atomic(&path, self.definition().as_bytes())?;
                let path_text = path.to_string_lossy().into_owned();
                if let Err(cause) = run(&["launchctl", "load", &path_text], note) {
                    let mut undo = Undo::default();
                    undo.restore(&path, previous.as_deref());
                    return Err(undo.into_error(cause, &path, previous.is_some()));
                }
                Ok(format!(
                    "installed {} and loaded it (starts at login, restarts 10 s after a failure)\n  logs:   tail -f {}\n  remove: sikkerkey-agent uninstall --secret {}",
                    path.display(),
                    self.spec.log_path(),
                    self.spec.secret_id
                ))
            }
            Platform::Windows => {
                require_nssm(
                    "install NSSM (https://nssm.cc) and run this again, or run the sc.exe commands that `install` without --now prints",
                )?;
                let name = self.spec.windows_service_name();
                let mut created = false;
                for line in render::windows_nssm(&self.spec) {
                    if let CommandLine::Run(argv) = line {
                        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
                        if let Err(cause) = run(&argv, note) {
                            let mut undo = Undo::default();
                            if created {
                                undo.step(
                                    "removed the service",
                                    run(&["nssm", "remove", &name, "confirm"], note),
                                );
                            }
                            return Err(undo.into_service_error(cause, &name));
                        }
                        created |= argv.get(1) == Some(&"install");
                    }
                }
                Ok(format!(
                    "installed and started service {name} with NSSM (starts at boot, restarts 10 s after a failure)\n  status: nssm status {name}\n  logs:   {}\n  remove: sikkerkey-agent uninstall --secret {}",
                    self.spec.log_path(),
                    self.spec.secret_id
                ))
            }
        }
    }

    /// Stops and disables the service and deletes its definition. The definition is
    /// deleted even when the service manager cannot be reached (no running systemd in a
    /// container or chroot): then the error lists what could not be done. Returns what
    /// was done.
    pub fn uninstall(&self, note: &mut dyn FnMut(String)) -> Result<String, ServiceError> {
        let not_installed = |looked_at: String| ServiceError::NotInstalled {
            secret_id: self.spec.secret_id.clone(),
            looked_at,
        };
        match self.platform {
            Platform::Systemd => {
                let path = self.definition_path().expect("systemd has a unit file");
                if !path.exists() {
                    return Err(not_installed(path.display().to_string()));
                }
                let unit = self.spec.systemd_unit_name();
                let stopped = run(&["systemctl", "disable", "--now", &unit], note);
                remove_file(&path)?;
                let reloaded = run(&["systemctl", "daemon-reload"], note);
                let failed: Vec<ServiceError> = [stopped, reloaded]
                    .into_iter()
                    .filter_map(Result::err)
                    .collect();
                if !failed.is_empty() {
                    return Err(ServiceError::Incomplete {
                        done: format!("deleted {}", path.display()),
                        failed,
                        hint: format!(
                            "if systemd runs here, check `systemctl status {unit}` and run `systemctl disable --now {unit}` and `systemctl daemon-reload` by hand"
                        ),
                    });
                }
                Ok(format!(
                    "stopped and disabled {unit}, deleted {}",
                    path.display()
                ))
            }
            Platform::Launchd => {
                let path = self.definition_path().expect("launchd has a plist");
                if !path.exists() {
                    return Err(not_installed(path.display().to_string()));
                }
                let unloaded = run(&["launchctl", "unload", &path.to_string_lossy()], note);
                remove_file(&path)?;
                if let Err(e) = unloaded {
                    return Err(ServiceError::Incomplete {
                        done: format!("deleted {}", path.display()),
                        failed: vec![e],
                        hint: format!(
                            "check `launchctl list {}`; `launchctl remove {0}` stops a job that is still loaded",
                            self.spec.launchd_label()
                        ),
                    });
                }
                Ok(format!(
                    "unloaded {} and deleted {}",
                    self.spec.launchd_label(),
                    path.display()
                ))
            }
            Platform::Windows => {
                let name = self.spec.windows_service_name();
                require_nssm(&format!(
                    "remove the service with: sc.exe stop {name} && sc.exe delete {name}"
                ))?;
                if let Err(e) = run(&["nssm", "stop", &name], note) {
                    note(format!("warning: {e}; removing the service anyway"));
                }
                run(&["nssm", "remove", &name, "confirm"], note)?;
                Ok(format!("stopped and removed service {name}"))
            }
        }
    }
}

/// What a failed install did to take itself back.
#[derive(Default)]
struct Undo {
    done: Vec<String>,
    failed: Vec<String>,
    /// Whether the definition file could not be put back or deleted.
    definition_left: bool,
}

impl Undo {
    fn step(&mut self, what: &str, result: Result<(), ServiceError>) {
        match result {
            Ok(()) => self.done.push(what.to_owned()),
            Err(e) => self.failed.push(format!("{what}: {e}")),
        }
    }

    /// Puts the definition that was there before back, or deletes the new one.
    fn restore(&mut self, path: &Path, previous: Option<&[u8]>) {
        let result = match previous {
            Some(bytes) => write_public_atomic(path, bytes),
            None => remove_file(path),
        };
        let what = match previous {
            Some(_) => format!("put the previous {} back", path.display()),
            None => format!("deleted {}", path.display()),
        };
        self.definition_left = result.is_err();
        self.step(&what, result);
    }

    fn into_error(self, cause: ServiceError, path: &Path, had_previous: bool) -> ServiceError {
        let left = if self.definition_left {
            format!("{} is still in place", path.display())
        } else if had_previous {
            "the previous definition is in place again".to_owned()
        } else {
            "nothing is installed".to_owned()
        };
        ServiceError::RolledBack {
            cause: Box::new(cause),
            undone: self.done,
            not_undone: self.failed,
            left,
        }
    }

    fn into_service_error(self, cause: ServiceError, name: &str) -> ServiceError {
        let left = if self.failed.is_empty() {
            "nothing is installed".to_owned()
        } else {
            format!("service {name} may still exist")
        };
        ServiceError::RolledBack {
            cause: Box::new(cause),
            undone: self.done,
            not_undone: self.failed,
            left,
        }
    }
}

fn require_nssm(hint: &str) -> Result<(), ServiceError> {
    if find_on_path("nssm").is_none() && find_on_path("nssm.exe").is_none() {
        return Err(ServiceError::ToolMissing {
            program: "nssm".into(),
            hint: hint.to_owned(),
        });
    }
    Ok(())
}

/// The first executable file called `program` in PATH.
fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| {
            fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Runs a service-manager command; its output is passed to `note` line by line, and an
/// error names the command and what it said.
fn run(argv: &[&str], note: &mut dyn FnMut(String)) -> Result<(), ServiceError> {
    let shown = argv.join(" ");
    note(format!("+ {shown}"));
    let output = Command::new(argv[0]).args(&argv[1..]).output().map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => ServiceError::ToolMissing {
            program: argv[0].to_owned(),
            hint: "is this the right platform? Set SIKKERKEY_SERVICE_PLATFORM or install without --now and follow the printed steps".into(),
        },
        _ => ServiceError::ToolFailed { command: shown.clone(), status: e.to_string(), said: String::new() },
    })?;
    let said: Vec<String> = [&output.stdout, &output.stderr]
        .iter()
        .flat_map(|bytes| {
            String::from_utf8_lossy(bytes)
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|l| !l.trim().is_empty())
        .collect();
    for line in &said {
        note(format!("  {}", line.trim_end()));
    }
    if !output.status.success() {
        return Err(ServiceError::ToolFailed {
            command: shown,
            status: output.status.to_string(),
            said: said.last().cloned().unwrap_or_default(),
        });
    }
    Ok(())
}

fn remove_file(path: &Path) -> Result<(), ServiceError> {
    fsutil::remove_if_exists(path)
        .map(|_| ())
        .map_err(|source| ServiceError::Io {
            what: "delete".into(),
            path: path.to_owned(),
            source,
        })
}

/// Writes a definition atomically with mode 0644 (service managers read it as another
/// user; it holds no secrets). Unlike the agent's own files, the directory is left as is.
fn write_public_atomic(path: &Path, contents: &[u8]) -> Result<(), ServiceError> {
    fsutil::write_atomic(path, contents, fsutil::PUBLIC).map_err(|source| ServiceError::Io {
        what: "write".into(),
        path: path.to_owned(),
        source,
    })
}
