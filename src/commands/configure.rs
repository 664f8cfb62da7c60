//! `configure`: writes the local agent config `agents/{id}.json` (0600 in a 0700
//! directory), whose connection details take precedence over the server's. Everything is
//! checked before anything is written, and the admin password is taken from a file, the
//! environment or a no-echo prompt rather than argv where possible.

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

use super::CommandError;
use super::local::{self, AgentProcess};
use crate::api::Connection;
use crate::cli::{AdminPassSource, ConfigureArgs, TlsFlags};
use crate::exit::Exit;
use crate::fsutil;
use crate::localconfig::{LocalConfig, LocalConnection};
use crate::providers::ProviderKind;
use crate::providers::tls::{LocalTls, TlsSettings};
use crate::secret::Secret;
use crate::secret_file::{self, SecretFileError};
use crate::settings::Settings;

fn usage(message: impl Into<String>) -> CommandError {
    CommandError::new(Exit::Usage, message.into())
}

/// Strips the line ending a file or a terminal adds; nothing else, since a password may
/// begin or end with spaces.
fn strip_line_ending(mut s: String) -> String {
    while s.ends_with('\n') || s.ends_with('\r') {
        s.pop();
    }
    s
}

/// The admin password file: refused when group or others may read it, as every file
/// holding a credential is ([`crate::secret_file`]).
fn read_password_file(path: &Path) -> Result<Secret, CommandError> {
    let bytes = secret_file::read(path, "the admin password file").map_err(|e| match e {
        SecretFileError::TooOpen { .. } => CommandError::new(Exit::Config, e.to_string()),
        SecretFileError::Read { source, .. } => usage(format!(
            "cannot read the admin password file {}: {source}",
            path.display()
        )),
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        usage(format!(
            "the admin password file {} is not UTF-8 text",
            path.display()
        ))
    })?;
    Ok(Secret::new(strip_line_ending(text)))
}

/// Restores the terminal's echo when dropped, even if reading fails.
struct EchoOff {
    fd: i32,
    saved: libc::termios,
}

impl EchoOff {
    fn new(fd: i32) -> std::io::Result<EchoOff> {
        // SAFETY: termios is plain data; tcgetattr fills it for a valid fd or fails.
        let mut term: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(fd, &mut term) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let saved = term;
        // Ctrl+C while echo is off restores the terminal before the process dies.
        super::prompt_signals::arm(fd, saved);
        term.c_lflag &= !libc::ECHO;
        term.c_lflag |= libc::ECHONL;
        // SAFETY: fd is open for the life of this guard; term came from tcgetattr.
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &term) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(EchoOff { fd, saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // SAFETY: restores the settings read in `new` on the same fd.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
        super::prompt_signals::disarm();
    }
}

/// Asks for the password on the controlling terminal without echoing it.
fn prompt_password(admin_user: &str) -> Result<Secret, CommandError> {
    let fail = |e: std::io::Error| {
        usage(format!(
            "cannot prompt for the admin password on /dev/tty: {e}"
        ))
    };
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(fail)?;
    // Echo goes off before the prompt appears, so nothing typed after it can show.
    let _echo = EchoOff::new(tty.as_raw_fd()).map_err(fail)?;
    let mut out = &tty;
    out.write_all(format!("admin password for \"{admin_user}\": ").as_bytes())
        .map_err(fail)?;
    let mut line = String::new();
    BufReader::new(&tty).read_line(&mut line).map_err(fail)?;
    Ok(Secret::new(strip_line_ending(line)))
}

fn admin_password(args: &ConfigureArgs, settings: &Settings) -> Result<Secret, CommandError> {
    let pass = match &args.admin_pass {
        AdminPassSource::Argv(p) => {
            crate::logging::say(
                log::Level::Warn,
                "warning: --admin-pass shows the password to every user in `ps` and keeps it in your shell history; \
                 prefer --admin-pass-file, SIKKERKEY_ADMIN_PASS or the prompt",
            );
            p.clone()
        }
        AdminPassSource::File(path) => read_password_file(path)?,
        AdminPassSource::EnvOrPrompt => match &settings.admin_pass {
            Some(p) if !p.is_empty() => p.clone(),
            _ if std::io::stdin().is_terminal() => prompt_password(&args.admin_user)?,
            _ => {
                return Err(usage(
                    "no admin password: pass --admin-pass-file FILE, set SIKKERKEY_ADMIN_PASS, or run on a terminal to be prompted",
                ));
            }
        },
    };
    if pass.is_empty() {
        return Err(usage("the admin password is empty"));
    }
    if pass.expose().contains('\0') {
        return Err(usage(
            "the admin password contains a NUL byte, which no database accepts",
        ));
    }
    Ok(pass)
}

/// The `tls` object to store: `None` when no TLS flag was given. Paths are made absolute
/// (a service runs elsewhere) and every file is read and parsed now, not at the first
/// rotation.
fn tls_settings(kind: ProviderKind, flags: &TlsFlags) -> Result<Option<LocalTls>, CommandError> {
    if *flags == TlsFlags::default() {
        return Ok(None);
    }
    let absolute = |p: &Option<std::path::PathBuf>| -> Result<_, CommandError> {
        p.as_ref()
            .map(|p| {
                std::path::absolute(p)
                    .map_err(|e| usage(format!("cannot resolve {}: {e}", p.display())))
            })
            .transpose()
    };
    let tls = LocalTls {
        mode: flags
            .mode
            .as_deref()
            .map(|m| m.parse().map_err(|e: String| usage(format!("--tls: {e}"))))
            .transpose()?,
        ca_file: absolute(&flags.ca_file)?,
        cert_file: absolute(&flags.cert_file)?,
        key_file: absolute(&flags.key_file)?,
    };
    let settings = TlsSettings::resolve(kind, Some(&tls), &|_| None).map_err(usage)?;
    if let Some(key) = &settings.key_file {
        secret_file::check(key, crate::localconfig::TLS_KEY)
            .map_err(|e| CommandError::new(Exit::Config, e.to_string()))?;
    }
    settings.check_files().map_err(|e| usage(e.to_string()))?;
    Ok(Some(tls))
}

pub fn run(args: &ConfigureArgs, settings: &Settings) -> Result<Exit, CommandError> {
    let files = local::files(&args.secret, settings)?;
    let kind: ProviderKind = args
        .provider
        .trim()
        .parse()
        .map_err(|e| CommandError::new(Exit::Usage, e))?;
    let host = args.host.trim();
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(usage(format!(
            "--host \"{}\" is not a host name or address",
            args.host.escape_debug()
        )));
    }
    if args.admin_user.is_empty() {
        return Err(usage("--admin-user is empty"));
    }
    for (flag, value) in [
        ("--username-field", &args.username_field),
        ("--password-field", &args.password_field),
    ] {
        if value.as_deref() == Some("") {
            return Err(usage(format!("{flag} is empty")));
        }
    }
    let tls = tls_settings(kind, &args.tls)?;
    let admin_pass = admin_password(args, settings)?;
    let port = args.port.unwrap_or_else(|| kind.default_port());
    let config = LocalConfig {
        secret_id: args.secret.clone(),
        provider_type: kind.as_str().to_owned(),
        connection: LocalConnection {
            db: Connection {
                host: host.to_owned(),
                port,
                database: args.database.clone().unwrap_or_default(),
                admin_user: args.admin_user.clone(),
                admin_pass,
                project_reference: args.project_reference.clone().unwrap_or_default(),
            },
            username_field: args.username_field.clone().unwrap_or_default(),
            password_field: args.password_field.clone().unwrap_or_default(),
        },
        poll_interval_seconds: args.poll_interval.unwrap_or(0),
        tls,
    };
    let text = serde_json::to_vec_pretty(&config).expect("the local config always serializes");
    let path = files.config();
    let existed = path.exists();
    fsutil::write_atomic(&path, &text, fsutil::PRIVATE).map_err(|e| {
        CommandError::new(
            Exit::Failure,
            format!("cannot write {}: {e}", path.display()),
        )
    })?;
    if !kind.is_compiled_in() {
        crate::logging::say(
            log::Level::Warn,
            &format!(
                "warning: this build of sikkerkey-agent has no {} support; `start` will refuse this config",
                kind.display_name()
            ),
        );
    }
    println!(
        "{} {} ({} at {}:{port}, admin \"{}\")",
        if existed { "updated" } else { "wrote" },
        path.display(),
        kind.display_name(),
        host,
        args.admin_user
    );
    match local::agent_process(&files) {
        AgentProcess::Running(pid) => println!(
            "the agent for {0} is running (PID {pid}); it reads the new settings when reloaded: \
             `kill -HUP {pid}`, or `sudo systemctl reload sikkerkey-agent-{0}` for a service",
            args.secret
        ),
        _ => println!(
            "check it with: sikkerkey-agent test --secret {0}\nthen run:      sikkerkey-agent start --secret {0}",
            args.secret
        ),
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_line_ending_is_stripped() {
        assert_eq!(strip_line_ending(" pw \r\n".into()), " pw ");
        assert_eq!(strip_line_ending("pw\n\n".into()), "pw");
        assert_eq!(strip_line_ending("p\nw".into()), "p\nw");
    }
}
