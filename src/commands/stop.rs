//! `stop`: ends the running agent for a secret the way a service manager would (SIGTERM,
//! so a rotation in flight finishes first) and waits, bounded, until it is gone.

use super::CommandError;
use super::local::{self, AgentProcess};
use crate::exit;

pub fn run(secret: &str) -> Result<i32, CommandError> {
    let files = local::files(secret)?;
    match local::agent_process(&files) {
        AgentProcess::NotRunning => Err(CommandError::new(
            exit::FAILURE,
            format!(
                "no agent for secret {secret} runs on this machine (no PID file at {})",
                files.pid().display()
            ),
        )),
        AgentProcess::Stale(pid) => {
            crate::pidfile::remove_stale(&files.pid()).map_err(|e| {
                CommandError::new(
                    exit::FAILURE,
                    format!(
                        "cannot remove the stale PID file {}: {e}",
                        files.pid().display()
                    ),
                )
            })?;
            Err(CommandError::new(
                exit::FAILURE,
                format!(
                    "no agent for secret {secret} runs on this machine; removed the stale PID file {} (PID {pid} is gone, or is not an agent)",
                    files.pid().display()
                ),
            ))
        }
        AgentProcess::Running(pid) => {
            local::terminate(secret, pid, local::stop_timeout())?;
            // A clean exit removes the PID file; one killed earlier may have left it.
            let _ = crate::pidfile::remove_stale(&files.pid());
            println!("stopped the agent for secret {secret} (PID {pid})");
            Ok(exit::OK)
        }
    }
}
