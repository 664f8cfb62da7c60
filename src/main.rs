//! The `sikkerkey-agent` binary: logger, parse, dispatch, print the error chain once, exit.

use sikkerkey_agent::cli::{self, Command};
use sikkerkey_agent::commands::{self, CommandError};
use sikkerkey_agent::exit;
use sikkerkey_agent::logging::{self, LogSettings};

fn print_error(e: &dyn std::error::Error) {
    let p = logging::error_prefix();
    eprintln!("{p}error: {e}");
    let mut source = e.source();
    while let Some(s) = source {
        eprintln!("{p}  caused by: {s}");
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
            println!("{}", sikkerkey_agent::help::version());
            Ok(exit::OK)
        }
        Command::Start { secret } => commands::start::run(&secret),
        Command::Configure(args) => commands::configure::run(&args),
        Command::Test {
            secret,
            use_server_config,
        } => commands::test::run(&secret, use_server_config),
        Command::Status { secret } => commands::status::run(&secret),
        Command::Completions(shell) => {
            print!("{}", commands::completions::script(shell));
            Ok(exit::OK)
        }
        Command::Man => {
            print!("{}", commands::completions::man_page());
            Ok(exit::OK)
        }
        Command::List { format } => commands::list::run(format),
        Command::Stop { secret } => commands::stop::run(&secret),
        Command::Remove { secret, force } => commands::remove::run(&secret, force),
        Command::Install { secret, now } => commands::install::run(&secret, now),
        Command::Uninstall { secret } => commands::uninstall::run(&secret),
    }
}

fn main() {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let settings = logging::take_format_flag(args)
        .and_then(|(flag, args)| Ok((LogSettings::from_env(flag.as_deref())?, args)));
    let args = match settings {
        Ok((settings, args)) => {
            logging::init(settings);
            args
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(exit::USAGE);
        }
    };
    let code = match cli::parse(args) {
        Err(e) => {
            eprintln!("{}error: {e}", logging::error_prefix());
            if !e.to_string().contains("--help") {
                eprintln!("Run `sikkerkey-agent --help` for usage.");
            }
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
