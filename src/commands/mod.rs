//! One module per command. Each takes parsed arguments and returns an exit code or an
//! error that `main` prints.

pub mod configure;
pub mod install;
pub mod list;
mod local;
pub mod remove;
pub mod start;
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
