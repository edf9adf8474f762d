//! `dockertls completions SHELL`: a completion script generated from the clap declarations, so
//! it always offers exactly the subcommands, flags and values the binary accepts.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, CompletionShell, CompletionsArgs};
use crate::error::Error;
use crate::findings::Outcome;

/// The name the scripts complete (the binary's name on PATH).
const BIN_NAME: &str = "dockertls";

/// Runs `completions`: the script on stdout.
pub fn run(args: &CompletionsArgs) -> Result<Outcome, Error> {
    Ok(Outcome::report(&script(args.shell)?))
}

/// The completion script for `shell`.
pub fn script(shell: CompletionShell) -> Result<String, Error> {
    let shell = match shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
        CompletionShell::Powershell => Shell::PowerShell,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), BIN_NAME, &mut out);
    String::from_utf8(out)
        .map_err(|_| Error::failed("the generated completion script is not UTF-8"))
}
