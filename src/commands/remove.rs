//! `remove`: deletes a secret's local agent files (config, PID, state). It will not pull
//! files from under a running agent, and it never deletes a rotation journal silently: the
//! journal is the only record that the database may hold an unconfirmed password.

use super::CommandError;
use super::local::{self, AgentProcess};
use crate::exit::Exit;
use crate::fsutil;
use crate::settings::Settings;

pub fn run(secret: &str, force: bool, settings: &Settings) -> Result<Exit, CommandError> {
    let files = local::files(secret, settings)?;
    let journal = files.journal();
    if journal.exists() && !force {
        return Err(CommandError::new(
            Exit::Failure,
            format!(
                "secret {secret} has an unfinished rotation ({}): the database may hold a password SikkerKey has not confirmed. \
                 Start the agent once so it finishes the rotation, or pass --force to delete everything anyway",
                journal.display()
            ),
        ));
    }
    let mut stopped = false;
    match local::agent_process(&files) {
        AgentProcess::Running(pid) if !force => {
            return Err(CommandError::new(
                Exit::Failure,
                format!(
                    "the agent for secret {secret} is running (PID {pid}); stop it first with `sikkerkey-agent stop --secret {secret}`, or pass --force"
                ),
            ));
        }
        AgentProcess::Running(pid) => {
            local::terminate(&files, secret, pid, settings.stop_timeout)?;
            println!("stopped the agent for secret {secret} (PID {pid})");
            stopped = true;
        }
        AgentProcess::NotRunning | AgentProcess::Stale(_) => {}
    }
    let mut removed = Vec::new();
    let mut paths = vec![files.config(), files.pid(), files.state()];
    if force {
        paths.push(journal.clone());
    }
    for path in paths {
        let gone = fsutil::remove_if_exists(&path).map_err(|e| {
            CommandError::new(
                Exit::Failure,
                format!("cannot delete {}: {e}", path.display()),
            )
        })?;
        if gone {
            removed.push(path);
        }
    }
    if removed.is_empty() && !stopped {
        // Already gone is what the caller wanted: exit 0, so scripts stay idempotent.
        println!(
            "nothing to remove: no local agent files for secret {secret} in {}",
            files.dir().display()
        );
        return Ok(Exit::Ok);
    }
    for path in &removed {
        if *path == journal {
            crate::logging::say(
                log::Level::Warn,
                "warning: deleted the journal of an unfinished rotation; check that the database password of the managed user matches the secret's value in SikkerKey",
            );
        }
        println!("removed {}", path.display());
    }
    Ok(Exit::Ok)
}
