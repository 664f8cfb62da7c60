//! `uninstall`: stops and disables the agent's system service and deletes its definition,
//! so nobody edits /etc by hand. Local agent files stay; `remove` deletes those.

use super::CommandError;
use super::install::{plan, service_error};
use crate::exit;

pub fn run(secret: &str) -> Result<i32, CommandError> {
    let done = plan(secret)?.uninstall().map_err(service_error)?;
    println!("{done}");
    println!(
        "local files for {secret} are kept; delete them with `sikkerkey-agent remove --secret {secret}`"
    );
    Ok(exit::OK)
}
