//! `uninstall`: stops and disables the agent's system service and deletes its definition,
//! so nobody edits /etc by hand. Local agent files stay; `remove` deletes those.

use super::CommandError;
use super::install::{plan, service_error};
use crate::exit::Exit;
use crate::settings::Settings;

pub fn run(secret: &str, settings: &Settings) -> Result<Exit, CommandError> {
    let done = plan(secret, settings)?.uninstall().map_err(service_error)?;
    println!("{done}");
    println!(
        "local files for {secret} are kept; delete them with `sikkerkey-agent remove --secret {secret}`"
    );
    Ok(Exit::Ok)
}
