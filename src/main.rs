//! The `sikkerkey-agent` binary: logger, parse, dispatch, print the error chain once, exit.

use std::io::Write;

use sikkerkey_agent::cli::{self, Command};
use sikkerkey_agent::commands::{self, CommandError};
use sikkerkey_agent::exit;

/// Our own log lines at the level `SIKKERKEY_LOG` names (default info); every dependency
/// capped at warn, whatever the setting, because driver debug output can carry SQL text.
fn init_logger() {
    let level = std::env::var("SIKKERKEY_LOG")
        .ok()
        .and_then(|v| v.parse::<log::LevelFilter>().ok())
        .unwrap_or(log::LevelFilter::Info);
    env_logger::Builder::new()
        .filter_level(log::LevelFilter::Warn.min(level))
        .filter_module("sikkerkey_agent", level)
        .format(|buf, record| {
            let ts = buf.timestamp_seconds();
            writeln!(buf, "{ts} {:<5} {}", record.level(), record.args())
        })
        .init();
}

fn print_error(e: &dyn std::error::Error) {
    eprintln!("error: {e}");
    let mut source = e.source();
    while let Some(s) = source {
        eprintln!("  caused by: {s}");
        source = s.source();
    }
}

fn dispatch(command: Command) -> Result<i32, CommandError> {
    match command {
        Command::Help(text) => {
            println!("{text}");
            Ok(exit::OK)
        }
        Command::Version => {
            println!("sikkerkey-agent {}", env!("CARGO_PKG_VERSION"));
            Ok(exit::OK)
        }
        Command::Start { secret } => commands::start::run(&secret),
        Command::Configure(args) => commands::configure::run(&args),
        Command::Test { secret } => commands::test::run(&secret),
        Command::List { format } => commands::list::run(format),
        Command::Stop { secret } => commands::stop::run(&secret),
        Command::Remove { secret, force } => commands::remove::run(&secret, force),
        Command::Install { secret, now } => commands::install::run(&secret, now),
        Command::Uninstall { secret } => commands::uninstall::run(&secret),
    }
}

fn main() {
    init_logger();
    let code = match cli::parse(std::env::args_os().skip(1)) {
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!("Run `sikkerkey-agent --help` for usage.");
            exit::USAGE
        }
        Ok(command) => match dispatch(command) {
            Ok(code) => code,
            Err(e) => {
                print_error(&e);
                e.code
            }
        },
    };
    std::process::exit(code);
}
