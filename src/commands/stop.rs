//! `stop`: ends the running agent for a secret the way a service manager would (SIGTERM,
//! so a rotation in flight finishes first) and waits, bounded, until it is gone.
//! Nothing running is success (exit 0 with a message): `stop` is safe to repeat.

use super::CommandError;
use super::local::{self, AgentProcess};
use crate::exit::Exit;
use crate::settings::Settings;

pub fn run(secret: &str, settings: &Settings) -> Result<Exit, CommandError> {
    let files = local::files(secret, settings)?;
    match local::agent_process(&files) {
        // Nothing to stop is what the caller wanted: exit 0, so scripts stay idempotent.
        AgentProcess::NotRunning => {
            println!(
                "no agent for secret {secret} runs on this machine (no PID file at {}); nothing to stop",
                files.pid().display()
            );
            Ok(Exit::Ok)
        }
        AgentProcess::Stale(pid) => {
            crate::pidfile::remove_stale(&files.pid()).map_err(|e| {
                CommandError::new(
                    Exit::Failure,
                    format!(
                        "cannot remove the stale PID file {}: {e}",
                        files.pid().display()
                    ),
                )
            })?;
            println!(
                "no agent for secret {secret} runs on this machine; removed the stale PID file {} (PID {pid} is gone, or is not an agent)",
                files.pid().display()
            );
            Ok(Exit::Ok)
        }
        AgentProcess::Running(pid) => {
            local::terminate(&files, secret, pid, settings.stop_timeout)?;
            // A clean exit removes the PID file; one killed earlier may have left it.
            let _ = crate::pidfile::remove_stale(&files.pid());
            println!("stopped the agent for secret {secret} (PID {pid})");
            Ok(Exit::Ok)
        }
    }
}
