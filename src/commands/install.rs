//! `install`: prints a service definition for the agent and where it goes, or with
//! `--now` puts it in place and starts the service (see `crate::service`).

use super::CommandError;
use crate::exit;
use crate::files::check_secret_id;
use crate::service::ServiceError;
use crate::service::install::Plan;

pub fn service_error(e: ServiceError) -> CommandError {
    let code = match e {
        ServiceError::UnknownPlatform(_) | ServiceError::BadValue { .. } => exit::USAGE,
        _ => exit::FAILURE,
    };
    CommandError::new(code, e)
}

pub fn plan(secret: &str) -> Result<Plan, CommandError> {
    check_secret_id(secret).map_err(|e| CommandError::new(exit::USAGE, e))?;
    Plan::from_environment(secret).map_err(service_error)
}

pub fn run(secret: &str, now: bool) -> Result<i32, CommandError> {
    let plan = plan(secret)?;
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
    Ok(exit::OK)
}
