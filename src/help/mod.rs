//! The one definition of the command line: every command with its options, the
//! environment variables the program reads and the exit codes it uses. The parser
//! (`cli.rs`) accepts exactly the options listed here and checks their values against the
//! choices listed here; `--help`, the shell completions and the man page (`completions`,
//! `man`; `make completions`) are rendered from the same tables. So an option, a choice or
//! a variable cannot be known to one of them and missing from another.
//!
//! `opt.rs` says what an option and a command are, `defs.rs` lists them, `render.rs`
//! writes the help text.

mod defs;
mod opt;
mod render;

pub use defs::{COMMANDS, ENVIRONMENT, SECRET, find};
pub use opt::{
    Choices, CommandDoc, GLOBAL_OPTIONS, HELP, Kind, LOG_FORMAT, Opt, OutputFormat, Positional,
    Shell, VERSION,
};
pub use render::{command_help, option_label, top_help};
