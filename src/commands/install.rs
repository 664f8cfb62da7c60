//! `install`: prints a service definition for the agent and where it goes, or with
//! `--now` puts it in place and starts the service (see `crate::service`).

use super::CommandError;
use crate::exit::Exit;
use crate::files::check_secret_id;
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

pub fn run(secret: &str, now: bool, settings: &Settings) -> Result<Exit, CommandError> {
    let plan = plan(secret, settings)?;
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    if now {
        let done = plan.install_now().map_err(service_error)?;
        println!("{done}");
    } else {
        print!("{}", plan.definition());
        eprintln!("{}", plan.instructions());
    }
    Ok(Exit::Ok)
}
