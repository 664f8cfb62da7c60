//! One module per command. Each takes parsed arguments and returns an exit code or an
//! error that `main` prints.

pub mod agents;
pub mod completions;
pub mod configure;
pub mod install;
pub mod list;
mod local;
pub mod metrics;
pub mod printable;
mod prompt_signals;
pub mod remove;
pub mod service_homes;
mod signals;
pub mod start;
pub mod status;
pub mod stop;
pub mod test;
pub mod uninstall;

use std::fmt;

use crate::exit::Exit;

/// An error a command reports, with the exit code it maps to.
#[derive(Debug)]
pub struct CommandError {
    pub code: Exit,
    pub error: Box<dyn std::error::Error + Send + Sync>,
}

impl CommandError {
    pub fn new(code: Exit, error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        CommandError {
            code,
            error: error.into(),
        }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)
    }
}

impl std::error::Error for CommandError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

/// `--version`: the version and the providers this build has.
pub fn version() -> String {
    let providers: Vec<&str> = crate::providers::ProviderKind::ALL
        .iter()
        .filter(|k| k.is_compiled_in())
        .map(|k| k.as_str())
        .collect();
    format!(
        "sikkerkey-agent {}\nproviders: {}",
        env!("CARGO_PKG_VERSION"),
        if providers.is_empty() {
            "none".to_owned()
        } else {
            providers.join(", ")
        }
    )
}
