//! `dockertls client add|list|remove`.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use ::time::OffsetDateTime;
use serde_json::json;

use crate::cli::{ClientAddArgs, ClientCommand, ClientListArgs, ClientRemoveArgs};
use crate::commands::pkistate::{self, date};
use crate::error::Error;
use crate::names;
use crate::pki::{self, LeafRequest, Role};
use crate::plan::MAX_DAYS;
use crate::workspace::{self, Workspace};

/// Runs a `client` subcommand; returns the exit status.
pub fn run(
    dir: &Path,
    command: &ClientCommand,
    passphrase_file: Option<&Path>,
    now: OffsetDateTime,
) -> Result<u8, Error> {
    match command {
        ClientCommand::Add(args) => add(dir, args, passphrase_file, now).map(|()| 0),
        ClientCommand::List(args) => list(dir, args, now),
        ClientCommand::Remove(args) => remove(dir, args, now).map(|()| 0),
    }
}

fn add(
    dir: &Path,
    args: &ClientAddArgs,
    passphrase_file: Option<&Path>,
    now: OffsetDateTime,
) -> Result<(), Error> {
    let mut names = Vec::new();
    let mut seen = HashSet::new();
    for input in &args.names {
        let name = names::parse_client_name(input).map_err(Error::Refused)?;
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(Error::Refused(format!("client '{input}' is given twice")));
        }
        names.push(name);
    }
    if !(1..=MAX_DAYS).contains(&args.days) {
        return Err(Error::Refused(format!(
            "--days {}: give a validity from 1 to {MAX_DAYS} days",
            args.days
        )));
    }
    workspace::require_pki(dir)?;
    let existing: HashSet<String> = pkistate::client_names(dir)
        .iter()
        .map(|n| n.to_ascii_lowercase())
        .collect();
    if let Some(taken) = names
        .iter()
        .find(|n| existing.contains(&n.to_ascii_lowercase()))
    {
        return Err(Error::Refused(format!(
            "client '{taken}' exists already ({}); remove it first with dockertls client remove {taken}, or choose another name",
            dir.join("clients").join(taken).display()
        )));
    }
    let (ca, _) = pkistate::load_ca(dir, passphrase_file)?;
    let ca_days = pki::days_left(now, ca.not_after);
    if ca.not_after <= now {
        return Err(Error::Refused(format!(
            "the CA expired on {}: replace it with dockertls rotate --ca",
            date(ca.not_after)
        )));
    }
    if now < ca.not_before {
        return Err(Error::Refused(format!(
            "the CA is not valid before {}: what it signs now is refused until then; check this machine's clock, or replace the CA with dockertls rotate --ca",
            date(ca.not_before)
        )));
    }
    // A CA "valid until 9999-12-31T23:59:59Z" has no well-defined expiry (RFC 5280): any
    // validity is accepted and ends there at the latest.
    let ca_unbounded = ca.not_after >= pki::LATEST;
    if ca_days < 1 && !ca_unbounded {
        return Err(Error::Refused(format!(
            "the CA expires on {} (in less than a day): a certificate cannot outlive its CA; replace the CA with dockertls rotate --ca",
            date(ca.not_after)
        )));
    }
    if args.days > ca_days && !ca_unbounded {
        return Err(Error::Refused(format!(
            "--days {}: the CA expires on {} ({ca_days} days): a certificate cannot outlive its CA; use --days {ca_days} or less, or replace the CA with dockertls rotate --ca",
            args.days,
            date(ca.not_after)
        )));
    }

    let ws = Workspace::open(dir, now)?;
    let keys = pki::generate_keys(ca.key_type, names.len())
        .map_err(|e| Error::Failed(format!("cannot generate keys: {e}")))?;
    let mut issued = Vec::new();
    for (name, key) in names.iter().zip(keys) {
        let leaf = LeafRequest {
            cn: name,
            sans: &[],
            role: Role::Client,
            now,
            days: args.days,
        };
        let cert = ca
            .issue(&leaf, key)
            .map_err(|e| Error::Failed(format!("cannot issue the certificate of {name}: {e}")))?;
        ws.write_pair(
            &format!("clients/{name}"),
            &ca.cert_pem,
            &cert,
            "cert.pem",
            "key.pem",
        )?;
        issued.push((name, cert.not_after));
    }
    ws.flush()?;
    if !dir.join("clients").exists() {
        crate::store::create_private_dir(&dir.join("clients"))?;
    }
    for (name, _) in &issued {
        ws.add(&format!("clients/{name}"))?;
    }
    drop(ws);
    let mut out = String::new();
    for (name, not_after) in &issued {
        out.push_str(&format!(
            "added client {name}: {} (expires {})\n",
            dir.join("clients").join(name).display(),
            date(*not_after)
        ));
    }
    if let Some((first, _)) = issued.first() {
        out.push_str(&format!(
            "Give each user only their own folder. For the shell lines: dockertls --dir {} env {first}\n",
            crate::render::shell_quote(&dir.display().to_string())
        ));
    }
    let _ = std::io::stdout().write_all(crate::escape::text(&out).as_bytes());
    Ok(())
}

fn list(dir: &Path, args: &ClientListArgs, now: OffsetDateTime) -> Result<u8, Error> {
    workspace::require_pki(dir)?;
    let mut rows = Vec::new();
    for name in pkistate::client_names(dir) {
        let path = dir.join("clients").join(&name).join("cert.pem");
        match pkistate::read_leaf(&path) {
            Ok(leaf) => {
                let days = pki::days_left(now, leaf.not_after);
                let status = if leaf.not_after < now {
                    "expired"
                } else if now < leaf.not_before {
                    "not-yet-valid"
                } else if days < 30 {
                    "expiring"
                } else {
                    "ok"
                };
                rows.push(json!({"name": name, "serial": leaf.serial, "not_after": leaf.not_after.format(&::time::format_description::well_known::Rfc3339).ok(), "days_left": days, "status": status}));
            }
            Err(err) => rows.push(json!({"name": name, "serial": null, "not_after": null, "days_left": null, "status": "unreadable", "error": err.to_string()})),
        }
    }
    let text = if args.format == "json" {
        format!(
            "{}\n",
            serde_json::to_string_pretty(&json!({"clients": rows})).unwrap_or_default()
        )
    } else {
        let mut text = format!(
            "{:<24} {:<34} {:<11} {:>9}  {}\n",
            "NAME", "SERIAL", "EXPIRES", "DAYS LEFT", "STATUS"
        );
        for row in &rows {
            text.push_str(&format!(
                "{:<24} {:<34} {:<11} {:>9}  {}\n",
                row["name"].as_str().unwrap_or_default(),
                row["serial"].as_str().unwrap_or("-"),
                row["not_after"]
                    .as_str()
                    .map_or("-", |t| t.get(..10).unwrap_or(t)),
                row["days_left"]
                    .as_i64()
                    .map_or("-".to_string(), |d| d.to_string()),
                row["status"].as_str().unwrap_or_default()
            ));
        }
        if rows.is_empty() {
            text.push_str("(no clients: add one with dockertls client add NAME)\n");
        }
        text
    };
    let _ = std::io::stdout().write_all(crate::escape::text(&text).as_bytes());
    Ok(0)
}

fn remove(dir: &Path, args: &ClientRemoveArgs, now: OffsetDateTime) -> Result<(), Error> {
    let name = names::parse_client_name(&args.name).map_err(Error::Refused)?;
    workspace::require_pki(dir)?;
    let known = pkistate::client_names(dir);
    if !known.contains(&name) {
        return Err(Error::Refused(format!(
            "no client '{name}' in {} (clients: {})",
            dir.display(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
    }
    let leaf = pkistate::read_leaf(&dir.join("clients").join(&name).join("cert.pem")).ok();
    let mut ws = Workspace::open(dir, now)?;
    let moved = ws.move_to_backup(&format!("clients/{name}"))?;
    drop(ws);
    let until = leaf
        .map(|l| format!(" until {}", date(l.not_after)))
        .unwrap_or_default();
    let text = format!(
        "removed client {name}: its files are in {}\n\
         dockerd has no certificate revocation: that certificate still opens the daemon{until}, for anyone who kept a copy.\n\
         To shut it out now, replace the CA (dockertls rotate --ca, then restart dockerd and give every other client its new folder),\n\
         or deny the user {name} in an authorization plugin (the plugin sees the certificate's CN).\n",
        moved.display()
    );
    let _ = std::io::stdout().write_all(crate::escape::text(&text).as_bytes());
    Ok(())
}
