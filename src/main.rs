//! dockertls: make the Docker daemon's remote API safe to expose.

#![forbid(unsafe_code)]

use dockertls::{cli, commands, error, escape};

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(&err),
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            // The message may echo a path, a name or a file's contents: escaped.
            escape::print_stderr_line(&format!("error: {err}"));
            ExitCode::from(err.exit_code())
        }
    }
}

fn run(cli: cli::Cli) -> Result<u8, error::Error> {
    let now = ::time::OffsetDateTime::now_utc();
    let mut cli = cli;
    // `DIR/` and `DIR/.` name DIR itself: without the trailing parts, a link at DIR is seen
    // (and refused) as such, instead of being followed by the kernel.
    let normal: std::path::PathBuf = cli.dir.components().collect();
    if !normal.as_os_str().is_empty() {
        cli.dir = normal;
    }
    match &cli.command {
        cli::Command::Init(args) => {
            commands::init::run(&cli.dir, args, cli.ca_passphrase_file.as_deref(), now).map(|()| 0)
        }
        cli::Command::Verify(args) => Ok(commands::verify::run(&cli.dir, args, now)),
        cli::Command::Probe(args) => Ok(commands::probe::run(&cli.dir, args, now)),
        cli::Command::Client(command) => {
            commands::client::run(&cli.dir, command, cli.ca_passphrase_file.as_deref(), now)
        }
        cli::Command::Install(args) => commands::install::run(&cli.dir, args, now).map(|()| 0),
        cli::Command::Env(args) => commands::env::run(&cli.dir, args).map(|()| 0),
        cli::Command::Rotate(args) => {
            commands::rotate::run(&cli.dir, args, cli.ca_passphrase_file.as_deref(), now)
                .map(|()| 0)
        }
    }
}

/// Help and version go to stdout as usual; a usage error is one line and exit 2.
fn usage_error(err: &clap::Error) -> ExitCode {
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            return ExitCode::from(2);
        }
        _ => {}
    }
    // clap spreads some errors over several lines ("required arguments were not provided:"
    // then the flags) and adds usage: keep the message, on one line.
    let rendered = err.render().to_string();
    let message: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more information"))
        .filter(|line| !line.is_empty())
        .collect();
    // clap quotes the offending argument, which may hold control characters.
    escape::print_stderr_line(&message.join(" "));
    // verify and probe follow the monitoring-plugin convention: 3 means "could not check".
    let monitoring = matches!(subcommand().as_deref(), Some("verify" | "probe"));
    ExitCode::from(if monitoring { 3 } else { 2 })
}

/// The subcommand named on the command line, skipping the global options and their values.
fn subcommand() -> Option<String> {
    const GLOBAL_WITH_VALUE: [&str; 2] = ["--dir", "--ca-passphrase-file"];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if GLOBAL_WITH_VALUE.contains(&arg.as_str()) {
            args.next();
        } else if !arg.starts_with('-') {
            return Some(arg);
        }
    }
    None
}
