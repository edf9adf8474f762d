//! dockertls: make the Docker daemon's remote API safe to expose.

#![forbid(unsafe_code)]

use dockertls::error::{Error, Exit};
use dockertls::findings::{Notice, Outcome};
use dockertls::{cli, commands, escape};

use std::io::Write;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, FromArgMatches};

fn main() -> std::process::ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(exit) => return exit.into(),
    };
    // verify and probe follow the monitoring-plugin convention: 3 means "could not check".
    let monitoring = matches!(
        cli.command,
        cli::Command::Verify(_) | cli::Command::Probe(_)
    );
    match run(cli) {
        Ok(outcome) => print(outcome).into(),
        Err(err) => {
            print_error(&err);
            if monitoring {
                Exit::CouldNotCheck.into()
            } else {
                err.exit().into()
            }
        }
    }
}

/// This machine's clock, refused (not a panic) when it reads past 9999 (or before year
/// -9999), where no certificate date can follow it.
fn now() -> Result<::time::OffsetDateTime, Error> {
    let clock = std::time::SystemTime::now();
    let nanos = match clock.duration_since(std::time::UNIX_EPOCH) {
        Ok(after) => i128::try_from(after.as_nanos()).ok(),
        Err(before) => i128::try_from(before.duration().as_nanos())
            .ok()
            .map(|n| -n),
    };
    nanos
        .and_then(|n| ::time::OffsetDateTime::from_unix_timestamp_nanos(n).ok())
        .ok_or_else(|| {
            Error::refused("this machine's clock reads a year after 9999").hint(
                "set the clock right (timedatectl, or your NTP client), then run dockertls again",
            )
        })
}

fn run(cli: cli::Cli) -> Result<Outcome, Error> {
    let now = now()?;
    let mut cli = cli;
    // `DIR/` and `DIR/.` name DIR itself: without the trailing parts, a link at DIR is seen
    // (and refused) as such, instead of being followed by the kernel.
    let normal: std::path::PathBuf = cli.dir.components().collect();
    if !normal.as_os_str().is_empty() {
        cli.dir = normal;
    }
    // No path longer than PATH_MAX names a file (the kernel refuses it): said here, with the
    // value cut, before any command echoes it whole.
    let uses_dir = !matches!(
        cli.command,
        cli::Command::Completions(_)
            | cli::Command::Man(_)
            | cli::Command::Request(_)
            | cli::Command::Authz(_)
    );
    if uses_dir && cli.dir.as_os_str().len() > escape::PATH_MAX {
        return Err(Error::refused(format!(
            "--dir {}: longer than {} bytes, the most a path can be",
            escape::path(&cli.dir),
            escape::PATH_MAX
        ))
        .hint("give the PKI folder's path (DOCKERTLS_DIR sets it too)"));
    }
    let passphrase_file = cli.ca_passphrase_file.as_deref();
    match &cli.command {
        cli::Command::Init(args) => commands::init::run(&cli.dir, args, passphrase_file, now),
        cli::Command::Verify(args) => commands::verify::run(&cli.dir, args, now),
        cli::Command::Probe(args) => commands::probe::run(&cli.dir, args, now),
        cli::Command::Client(command) => {
            commands::client::run(&cli.dir, command, passphrase_file, now)
        }
        cli::Command::Install(args) => commands::install::run(&cli.dir, args, now),
        cli::Command::Env(args) => commands::env::run(&cli.dir, args, now),
        cli::Command::Rotate(args) => commands::rotate::run(&cli.dir, args, passphrase_file, now),
        cli::Command::Backup(command) => commands::backup::run(&cli.dir, command, now),
        // eco (issue 14)
        cli::Command::Completions(args) => commands::completions::run(args),
        cli::Command::Man(args) => commands::man::run(args),
        // Issue 12 (csr).
        cli::Command::Request(command) => commands::request::run(command),
        cli::Command::Sign(args) => commands::sign::run(&cli.dir, args, passphrase_file, now),
        cli::Command::Deploy(args) => commands::deploy::run(&cli.dir, args, now),
        cli::Command::Server(command) => {
            commands::server::run(&cli.dir, command, passphrase_file, now)
        }
        // issue 14 (import)
        cli::Command::Import(args) => commands::import::run(&cli.dir, args, passphrase_file, now),
        cli::Command::Context(args) => commands::context::run(&cli.dir, args, now),
        cli::Command::Crl(command) => commands::crl::run(&cli.dir, command, passphrase_file, now),
        cli::Command::Role(command) => commands::role::run(&cli.dir, command, now),
        // issue 13 (authz-serve)
        cli::Command::Authz(command) => commands::authz::run(command),
    }
}

/// Prints what a command produced: the notices on stderr, the report on stdout (already
/// escaped by its renderer, which added the only control characters: colours).
fn print(outcome: Outcome) -> Exit {
    for notice in &outcome.notices {
        match notice {
            Notice::Error(err) => print_error(err),
            Notice::Warning(message) => escape::print_stderr_line(&format!("warning: {message}")),
        }
    }
    let _ = std::io::stdout().write_all(outcome.stdout.as_bytes());
    outcome.exit
}

/// `error: what happened`, then `hint: what to do` when there is something to do. The message
/// may echo a path, a name or a file's contents: escaped.
fn print_error(err: &Error) {
    escape::print_stderr_line(&format!("error: {}", escape::field(err.message())));
    if let Some(hint) = err.hint_text() {
        escape::print_stderr_line(&format!("hint: {}", escape::field(hint)));
    }
}

/// Parses the command line. Help and version go to stdout as usual; a usage error is one line
/// and exits 2, or 3 for verify and probe (which clap says were being parsed).
fn parse() -> Result<cli::Cli, Exit> {
    let command = cli::Cli::command();
    let err = match command.clone().try_get_matches() {
        Ok(matches) => match cli::Cli::from_arg_matches(&matches) {
            Ok(cli) => return Ok(cli),
            Err(err) => err,
        },
        Err(err) => err,
    };
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = err.print();
            return Err(Exit::Success);
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            return Err(Exit::RefusedOrFailure);
        }
        _ => {}
    }
    print_usage_error(&err);
    Err(match subcommand_of(command, &err) {
        Some(name) if name == "verify" || name == "probe" => Exit::CouldNotCheck,
        _ => Exit::RefusedOrFailure,
    })
}

/// The subcommand a usage error was in, as clap's own parser sees it: a second pass told to go
/// on past errors, without the argument clap named as unexpected (which, before the
/// subcommand, stops even that pass).
fn subcommand_of(command: clap::Command, err: &clap::Error) -> Option<String> {
    let invalid = match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => Some(arg.clone()),
        _ => None,
    };
    // clap names `--bogus` for `--bogus=1` and `-x` for the cluster `-xy`: drop those too.
    let unexpected = |arg: &std::ffi::OsString| {
        let (Some(invalid), Some(arg)) = (invalid.as_deref(), arg.to_str()) else {
            return false;
        };
        arg == invalid
            || arg
                .strip_prefix(invalid)
                .is_some_and(|rest| rest.starts_with('=') || !invalid.starts_with("--"))
    };
    let args = std::env::args_os().filter(|arg| !unexpected(arg));
    let lenient = command
        .ignore_errors(true)
        .try_get_matches_from(args)
        .ok()?;
    lenient.subcommand_name().map(str::to_string)
}

/// clap spreads some errors over several lines ("required arguments were not provided:" then
/// the flags) and adds usage: keep the message, on one line.
fn print_usage_error(err: &clap::Error) {
    let rendered = err.render().to_string();
    let message: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more information"))
        .filter(|line| !line.is_empty())
        .collect();
    // clap quotes the offending argument, which may hold control characters, and may be long:
    // each long argument clap names is cut (escape::value), the rest escaped when printed.
    let mut line = message.join(" ");
    for quoted in clap_values(err) {
        if quoted.len() > escape::VALUE_KEEP {
            line = line.replace(quoted.as_str(), &escape::value(&quoted));
        }
    }
    escape::print_stderr_line(&line);
}

/// The arguments and values a clap error quotes (the bad value, the unknown flag or subcommand).
fn clap_values(err: &clap::Error) -> Vec<String> {
    let mut values = Vec::new();
    for (_, value) in err.context() {
        match value {
            ContextValue::String(text) => values.push(text.clone()),
            ContextValue::Strings(texts) => values.extend(texts.iter().cloned()),
            _ => {}
        }
    }
    // The longest first, so a value holding a shorter one is cut whole.
    values.sort_by_key(|text| std::cmp::Reverse(text.len()));
    values
}
