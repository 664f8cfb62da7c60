//! `uninstall`: stops and disables the agent's system service and deletes its definition,
//! so nobody edits /etc by hand. Local agent files stay; `remove` deletes those.

use super::CommandError;
use super::install::{note, plan, service_error};
use crate::exit::Exit;
use crate::service::ServiceError;
use crate::settings::Settings;

pub fn run(secret: &str, settings: &Settings) -> Result<Exit, CommandError> {
    let done = match plan(secret, settings)?.uninstall(&mut note) {
        Ok(done) => done,
        // Not installed is what the caller wanted: exit 0, so scripts stay idempotent.
        Err(e @ ServiceError::NotInstalled { .. }) => {
            println!("{e}; nothing to uninstall");
            return Ok(Exit::Ok);
        }
        Err(e) => return Err(service_error(e)),
    };
    println!("{done}");
    println!(
        "local files for {secret} are kept; delete them with `sikkerkey-agent remove --secret {secret}`"
    );
    Ok(Exit::Ok)
}
