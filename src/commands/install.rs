//! `install`: prints a service definition for the agent and where it goes, or with
//! `--now` puts it in place and starts the service (see `crate::service`).

use log::Level;

use super::CommandError;
use crate::exit::Exit;
use crate::files::check_secret_id;
use crate::logging::say;
use crate::service::ServiceError;
use crate::service::install::Plan;
use crate::settings::Settings;

pub fn service_error(e: ServiceError) -> CommandError {
    let code = match e {
        ServiceError::UnknownPlatform(_) | ServiceError::BadValue { .. } => Exit::Usage,
        _ => Exit::Failure,
    };
    CommandError::new(code, e)
}

pub fn plan(secret: &str, settings: &Settings) -> Result<Plan, CommandError> {
    check_secret_id(secret).map_err(|e| CommandError::new(Exit::Usage, e))?;
    Plan::from_environment(secret, settings).map_err(service_error)
}

/// Prints a line a service step reported (a command run, what it said).
pub fn note(line: String) {
    let level = if line.starts_with("warning: ") {
        Level::Warn
    } else {
        Level::Info
    };
    say(level, &line);
}

pub fn run(secret: &str, now: bool, settings: &Settings) -> Result<Exit, CommandError> {
    let plan = plan(secret, settings)?;
    for w in &plan.warnings {
        say(Level::Warn, &format!("warning: {w}"));
    }
    for n in &plan.notes {
        say(Level::Info, &format!("note: {n}"));
    }
    if now {
        let done = plan.install_now(&mut note).map_err(service_error)?;
        println!("{done}");
    } else {
        print!("{}", plan.definition());
        say(Level::Info, &plan.instructions());
    }
    Ok(Exit::Ok)
}
