//! The interactive `init`: the only code that asks questions (dialoguer). It fills the same
//! `InitArgs` the flags fill, validated by the same parsers, and shows the equivalent command
//! before anything is created.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use dialoguer::theme::SimpleTheme;
use dialoguer::{Confirm, Input, MultiSelect, Select};

use crate::cli::{InitArgs, KeyType};
use crate::error::Error;
use crate::names;
use crate::plan::{self, MAX_DAYS};
use crate::render::shell_quote;
use crate::secret::Passphrase;

/// What the wizard settled on.
pub struct Answers {
    pub dir: PathBuf,
    pub args: InitArgs,
    pub passphrase: Option<Passphrase>,
}

fn ask<T>(result: dialoguer::Result<T>) -> Result<T, Error> {
    match result {
        Ok(value) => Ok(value),
        Err(dialoguer::Error::IO(err)) if err.kind() == std::io::ErrorKind::Interrupted => {
            crate::terminal::interrupted()
        }
        Err(err) => Err(Error::Refused(format!(
            "cannot ask on this terminal: {err}"
        ))),
    }
}

/// Asks for everything `init` needs, pre-filled from the flags given.
pub fn run(
    dir: &Path,
    given: &InitArgs,
    passphrase_file: Option<&Path>,
) -> Result<Option<Answers>, Error> {
    crate::terminal::restore_on_interrupt();
    let theme = SimpleTheme;
    eprintln!(
        "dockertls init: a CA, a server certificate and client certificates for dockerd over TLS."
    );
    eprintln!("Press Enter to accept a suggestion, Ctrl-C to stop without writing anything.\n");

    let suggested_host = given.host.clone().unwrap_or_else(this_machine_name);
    let host: String = ask(Input::with_theme(&theme)
        .with_prompt("Host name clients dial (the server certificate's name)")
        .default(suggested_host)
        .validate_with(|text: &String| names::parse_address("--host", text.trim()).map(|_| ()))
        .interact_text())?;
    let host = host.trim().to_string();

    let mut allow: Vec<String> = Vec::new();
    let candidates: Vec<String> = local_names_and_addresses()
        .into_iter()
        .filter(|c| *c != host)
        .collect();
    if !candidates.is_empty() {
        let defaults: Vec<bool> = candidates.iter().map(|c| given.allow.contains(c)).collect();
        let chosen = ask(MultiSelect::with_theme(&theme)
            .with_prompt("Other addresses of this machine that clients dial (space to select, Enter to go on)")
            .items(&candidates)
            .defaults(&defaults)
            .interact())?;
        allow.extend(chosen.into_iter().map(|i| candidates[i].clone()));
    }
    let extra_default: Vec<String> = given
        .allow
        .iter()
        .filter(|a| !candidates.contains(a))
        .cloned()
        .collect();
    let extra: String = ask(Input::with_theme(&theme)
        .with_prompt("More addresses or DNS names (comma-separated, empty for none)")
        .default(extra_default.join(","))
        .allow_empty(true)
        .validate_with(|text: &String| {
            split(text).try_for_each(|item| names::parse_address("--allow", item).map(|_| ()))
        })
        .interact_text())?;
    allow.extend(split(&extra).map(str::to_string));

    let clients_default = if given.clients.is_empty() {
        "client".to_string()
    } else {
        given.clients.join(",")
    };
    let clients: String = ask(Input::with_theme(&theme)
        .with_prompt("Client names, one per user (comma-separated)")
        .default(clients_default)
        .validate_with(|text: &String| {
            let items: Vec<&str> = split(text).collect();
            match plan::client_names("client", &items)?.is_empty() {
                true => Err("give at least one name".to_string()),
                false => Ok(()),
            }
        })
        .interact_text())?;
    let clients: Vec<String> = split(&clients).map(str::to_string).collect();

    let key_types = KeyType::value_variants();
    let key_default = key_types
        .iter()
        .position(|k| *k == given.key_type)
        .unwrap_or(0);
    let key_index = ask(Select::with_theme(&theme)
        .with_prompt("Key type")
        .items(
            key_types
                .iter()
                .map(|k| key_type_line(*k))
                .collect::<Vec<_>>(),
        )
        .default(key_default)
        .interact())?;
    let key_type = key_types.get(key_index).copied().unwrap_or(given.key_type);

    let days = ask_days(
        &theme,
        "Validity of the server and client certificates, in days",
        "--days",
        given.days,
        1,
    )?;
    let ca_days = ask_days(
        &theme,
        "Validity of the CA, in days",
        "--ca-days",
        given.ca_days.max(days),
        days,
    )?;

    let passphrase = match passphrase_file {
        Some(path) => Some(Passphrase::from_file(path)?),
        None => {
            let protect = ask(Confirm::with_theme(&theme)
                .with_prompt(
                    "Protect the CA key with a passphrase? (it can mint root access to the daemon)",
                )
                .default(true)
                .interact())?;
            if protect {
                Some(Passphrase::prompt("Passphrase for the CA key", true)?)
            } else {
                None
            }
        }
    };
    if let Some(pass) = &passphrase {
        pass.check_new()?;
    }

    let out_dir: String = ask(Input::with_theme(&theme)
        .with_prompt("Output folder")
        .default(dir.display().to_string())
        .validate_with(|text: &String| {
            crate::store::check_output_dir(Path::new(text.trim()), given.force)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .interact_text())?;
    let out_dir = PathBuf::from(out_dir.trim());

    let args = InitArgs {
        host: Some(host),
        allow,
        clients,
        key_type,
        days,
        ca_days,
        encrypt_ca_key: passphrase.is_some(),
        yes: true,
        ..given.clone()
    };
    let command = equivalent_command(&out_dir, &args);
    let loopback = if args.no_loopback { "" } else { ", 127.0.0.1" };
    let allow = if args.allow.is_empty() {
        String::new()
    } else {
        format!(", {}", args.allow.join(", "))
    };
    eprintln!("\nSummary");
    eprintln!(
        "  server certificate  {}{allow}{loopback}, valid {} days",
        args.host.as_deref().unwrap_or_default(),
        args.days
    );
    eprintln!("  clients             {}", args.clients.join(", "));
    eprintln!(
        "  CA                  {}, valid {} days, key {}",
        args.key_type.name(),
        args.ca_days,
        if passphrase.is_some() {
            "protected by a passphrase"
        } else {
            "not encrypted"
        }
    );
    eprintln!("  folder              {}", out_dir.display());
    eprintln!("\nThe same, without questions:\n  {command}\n");
    let go = ask(Confirm::with_theme(&theme)
        .with_prompt("Create it?")
        .default(true)
        .interact())?;
    if !go {
        eprintln!("Nothing was written.");
        return Ok(None);
    }
    Ok(Some(Answers {
        dir: out_dir,
        args,
        passphrase,
    }))
}

/// One line on a key type's trade-off.
fn key_type_line(key_type: KeyType) -> String {
    format!("{:<11} {}", key_type.name(), key_type.trade_off())
}

fn ask_days(
    theme: &SimpleTheme,
    prompt: &str,
    flag: &'static str,
    default: i64,
    at_least: i64,
) -> Result<i64, Error> {
    let text: String = ask(Input::with_theme(theme)
        .with_prompt(prompt)
        .default(default.to_string())
        .validate_with(move |text: &String| parse_days(flag, text, at_least).map(drop))
        .interact_text())?;
    parse_days(flag, &text, at_least).map_err(Error::Refused)
}

/// An answer in days, by the rule of `--days` (`plan::check_days`).
fn parse_days(flag: &str, text: &str, at_least: i64) -> Result<i64, String> {
    let days = text.trim().parse::<i64>();
    days.ok()
        .filter(|n| (at_least..=MAX_DAYS).contains(n))
        .ok_or_else(|| plan::days_message(flag, text.trim(), at_least))
}

fn split(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// The non-interactive command that makes the same PKI.
pub fn equivalent_command(dir: &Path, args: &InitArgs) -> String {
    let mut words = vec![
        "dockertls".to_string(),
        "--dir".into(),
        shell_quote(&dir.display().to_string()),
        "init".into(),
    ];
    let mut push = |flag: &str, value: &str| {
        words.push(flag.to_string());
        words.push(shell_quote(value));
    };
    push("--host", args.host.as_deref().unwrap_or_default());
    if !args.allow.is_empty() {
        push("--allow", &args.allow.join(","));
    }
    push("--client", &args.clients.join(","));
    push("--key-type", args.key_type.name());
    push("--days", &args.days.to_string());
    push("--ca-days", &args.ca_days.to_string());
    if args.listen != "0.0.0.0:2376" {
        push("--listen", &args.listen);
    }
    if args.install_dir != Path::new("/etc/docker/tls") {
        push("--install-dir", &args.install_dir.display().to_string());
    }
    if args.dockerd != Path::new("/usr/bin/dockerd") {
        push("--dockerd", &args.dockerd.display().to_string());
    }
    for (set, flag) in [
        (args.no_loopback, "--no-loopback"),
        (args.encrypt_ca_key, "--encrypt-ca-key"),
        (args.force, "--force"),
    ] {
        if set {
            words.push(flag.to_string());
        }
    }
    words.join(" ")
}

/// This machine's name, fully qualified when the system knows it.
fn this_machine_name() -> String {
    let short = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    if short.contains('.') {
        return short.to_ascii_lowercase();
    }
    let fqdn = std::process::Command::new("hostname")
        .arg("-f")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|name| names::parse_address("--host", name).is_ok());
    fqdn.unwrap_or_else(|| short.to_ascii_lowercase())
}

/// This machine's host names and non-loopback interface addresses (no link-local IPv6: a zone
/// cannot be in a certificate).
fn local_names_and_addresses() -> Vec<String> {
    let mut out = Vec::new();
    let name = this_machine_name();
    if names::parse_address("--allow", &name).is_ok() {
        out.push(name.clone());
        if let Some((short, _)) = name.split_once('.') {
            out.push(short.to_string());
        }
    }
    if let Ok(interfaces) = nix::ifaddrs::getifaddrs() {
        for interface in interfaces {
            let Some(address) = interface.address else {
                continue;
            };
            let ip = if let Some(v4) = address.as_sockaddr_in() {
                IpAddr::V4(v4.ip())
            } else if let Some(v6) = address.as_sockaddr_in6() {
                IpAddr::V6(v6.ip())
            } else {
                continue;
            };
            let link_local = matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80);
            if !ip.is_loopback() && !link_local && !out.contains(&ip.to_string()) {
                out.push(ip.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn the_equivalent_command_parses_back_to_the_same_arguments() {
        let cli = crate::cli::Cli::parse_from([
            "dockertls",
            "init",
            "--host",
            "h.example.com",
            "--allow",
            "10.0.0.1,b.example.com",
            "--client",
            "alice,bob",
            "--key-type",
            "rsa-2048",
            "--days",
            "90",
            "--ca-days",
            "900",
            "--no-loopback",
        ]);
        let crate::cli::Command::Init(args) = cli.command else {
            panic!()
        };
        let command = equivalent_command(Path::new("/tmp/my pki"), &args);
        assert!(command.starts_with("dockertls --dir '/tmp/my pki' init --host h.example.com --allow 10.0.0.1,b.example.com --client alice,bob --key-type rsa-2048 --days 90 --ca-days 900 --no-loopback"), "{command}");
        let words: Vec<String> = command
            .replace("'/tmp/my pki'", "/tmp/my_pki")
            .split(' ')
            .map(str::to_string)
            .collect();
        let again = crate::cli::Cli::parse_from(words);
        let crate::cli::Command::Init(back) = again.command else {
            panic!()
        };
        assert_eq!(
            (
                back.host,
                back.allow,
                back.clients,
                back.key_type,
                back.days,
                back.ca_days,
                back.no_loopback
            ),
            (
                args.host,
                args.allow,
                args.clients,
                args.key_type,
                args.days,
                args.ca_days,
                args.no_loopback
            )
        );
    }

    #[test]
    fn local_addresses_have_no_loopback() {
        for address in local_names_and_addresses() {
            assert!(
                names::parse_address("--allow", &address).is_ok(),
                "{address}"
            );
            assert_ne!(address, "127.0.0.1");
        }
    }
}
