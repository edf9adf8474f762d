//! `dockertls client add|list|remove`.

use std::path::Path;

use ::time::OffsetDateTime;
use serde_json::json;

use crate::cli::{ClientAddArgs, ClientCommand, ClientListArgs, ClientRemoveArgs, Format};
use crate::error::Error;
use crate::findings::Outcome;
use crate::names;
use crate::pki::{self, Ca, LeafRequest, Role, Window};
use crate::plan::{self, ClientAddPlan};
use crate::store::state::{self, date};
use crate::store::workspace::{self, Workspace};
use crate::store::{Holder, Pki, Stage};

/// Runs a `client` subcommand.
pub fn run(
    dir: &Path,
    command: &ClientCommand,
    passphrase_file: Option<&Path>,
    now: OffsetDateTime,
) -> Result<Outcome, Error> {
    match command {
        ClientCommand::Add(args) => add(dir, args, passphrase_file, now),
        ClientCommand::List(args) => list(dir, args, now),
        ClientCommand::Remove(args) => remove(dir, args, now),
    }
}

fn add(
    dir: &Path,
    args: &ClientAddArgs,
    passphrase_file: Option<&Path>,
    now: OffsetDateTime,
) -> Result<Outcome, Error> {
    let plan = ClientAddPlan::from_args(args)?;
    workspace::require_pki(dir)?;
    // Before asking for the passphrase, and again under the lock (another run may have added
    // the same name meanwhile).
    check_names_are_new(dir, &plan)?;
    let (ca, _) = state::load_ca(dir, passphrase_file)?;
    check_ca_can_sign(&ca, plan.days, now)?;
    let issued = issue_clients(dir, &ca, &plan, now)?;
    let mut out = String::new();
    for (name, not_after) in &issued {
        out.push_str(&format!(
            "added client {name}: {} (expires {})\n",
            Pki::new(dir).client_dir(name).display(),
            date(*not_after)
        ));
    }
    if let Some((first, _)) = issued.first() {
        out.push_str(&format!(
            "Give each user only their own folder. For the shell lines: dockertls --dir {} env {first}\n",
            crate::render::shell_quote(&dir.display().to_string())
        ));
    }
    Ok(Outcome::report(&out))
}

/// Refuses a CA that cannot sign a certificate of `days` days at `now`: expired, not yet
/// valid, or ending sooner.
pub(crate) fn check_ca_can_sign(ca: &Ca, days: i64, now: OffsetDateTime) -> Result<(), Error> {
    check_ca_valid(ca, now)?;
    // A CA "valid until 9999-12-31T23:59:59Z" has no well-defined expiry (RFC 5280): any
    // validity is accepted and ends there at the latest.
    if ca.not_after >= pki::LATEST {
        return Ok(());
    }
    let ca_days = pki::days_left(now, ca.not_after);
    if ca_days < 1 {
        return Err(Error::Refused(format!(
            "the CA expires on {} (in less than a day): a certificate cannot outlive its CA; replace the CA with dockertls rotate --ca",
            date(ca.not_after)
        )));
    }
    if days > ca_days {
        return Err(Error::Refused(format!(
            "--days {days}: the CA expires on {} ({ca_days} days): a certificate cannot outlive its CA; use --days {ca_days} or less, or replace the CA with dockertls rotate --ca",
            date(ca.not_after)
        )));
    }
    Ok(())
}

/// Refuses a CA that is expired or not yet valid at `now` (what it signs would be refused).
pub(crate) fn check_ca_valid(ca: &Ca, now: OffsetDateTime) -> Result<(), Error> {
    if ca.not_after <= now {
        return Err(Error::Refused(format!(
            "the CA expired on {}: certificates it signs are refused; replace it with dockertls rotate --ca",
            date(ca.not_after)
        )));
    }
    if now < ca.not_before {
        return Err(Error::Refused(format!(
            "the CA is not valid before {}: what it signs now is refused until then; check this machine's clock, or replace the CA with dockertls rotate --ca",
            date(ca.not_before)
        )));
    }
    Ok(())
}

/// Issues and stages every client of the plan, then moves each folder into clients/.
fn issue_clients(
    dir: &Path,
    ca: &Ca,
    plan: &ClientAddPlan,
    now: OffsetDateTime,
) -> Result<Vec<(String, OffsetDateTime)>, Error> {
    let ws = Workspace::open(dir, now)?;
    check_names_are_new(dir, plan)?;
    let keys = pki::generate_keys(ca.key_type, plan.names.len()).map_err(|e| {
        Error::Failed(format!(
            "cannot generate {} {} keys: {e}; nothing was changed",
            plan.names.len(),
            ca.key_type.name()
        ))
    })?;
    let mut issued = Vec::new();
    for (name, key) in plan.names.iter().zip(keys) {
        let leaf = LeafRequest {
            cn: name,
            sans: &[],
            role: Role::Client,
            now,
            days: plan.days,
        };
        let cert = ca.issue(&leaf, key).map_err(|e| {
            Error::Failed(format!(
                "cannot issue the certificate of {name}: {e}; nothing was changed"
            ))
        })?;
        ws.write_pair(&Holder::client(name), &ca.cert_pem, &cert)?;
        issued.push((name.clone(), cert.not_after));
    }
    ws.flush()?;
    for (name, _) in &issued {
        ws.add(&Holder::client(name).folder())?;
    }
    Ok(issued)
}

/// Refuses a name that is taken already, whatever its case.
fn check_names_are_new(dir: &Path, plan: &ClientAddPlan) -> Result<(), Error> {
    let existing = state::client_names(dir);
    if let Some((name, taken)) = plan
        .names
        .iter()
        .find_map(|n| Some((n, plan::same_name(&existing, n)?)))
    {
        return Err(Error::refused(format!(
            "client '{name}' exists already ({})",
            Pki::new(dir).client_dir(taken).display()
        ))
        .hint(format!(
            "remove it first with dockertls client remove {taken}, or choose another name"
        )));
    }
    Ok(())
}

fn list(dir: &Path, args: &ClientListArgs, now: OffsetDateTime) -> Result<Outcome, Error> {
    workspace::require_pki(dir)?;
    // Issue 12: clients signed from a CSR keep their key where it was made.
    let recorded = crate::store::registry::State::load(dir).ok().flatten();
    let key_place = |name: &str| {
        let elsewhere = recorded
            .as_ref()
            .and_then(|s| s.clients().get(name))
            .is_some_and(|e| e.key == crate::store::registry::KeyPlace::Elsewhere);
        if elsewhere { "elsewhere" } else { "here" }
    };
    let mut rows = Vec::new();
    for name in state::client_names(dir) {
        let key = key_place(&name);
        match state::read_cert(dir, &Holder::client(&name)) {
            Ok(leaf) => {
                let days = pki::days_left(now, leaf.not_after);
                let status = if leaf.not_after < now {
                    "expired"
                } else if now < leaf.not_before {
                    "not-yet-valid"
                } else if pki::is_due(now, leaf.not_before, leaf.not_after, Window::Rule) {
                    "expiring"
                } else {
                    "ok"
                };
                let rfc3339 = |t: OffsetDateTime| {
                    t.format(&::time::format_description::well_known::Rfc3339)
                        .ok()
                };
                let due = pki::renewal_due(leaf.not_before, leaf.not_after, Window::Rule);
                rows.push(json!({"name": name, "serial": leaf.serial, "not_after": rfc3339(leaf.not_after), "due": rfc3339(due), "days_left": days, "status": status, "key": key}));
            }
            Err(err) => rows.push(json!({"name": name, "serial": null, "not_after": null, "due": null, "days_left": null, "status": "unreadable", "error": err.to_string(), "key": key})),
        }
    }
    let text = if args.format == Format::Json {
        format!(
            "{}\n",
            serde_json::to_string_pretty(&json!({"clients": rows})).unwrap_or_default()
        )
    } else {
        let mut text = format!(
            "{:<24} {:<34} {:<11} {:<11} {:>9}  {}\n",
            "NAME", "SERIAL", "EXPIRES", "DUE", "DAYS LEFT", "STATUS"
        );
        let day = |value: &serde_json::Value| {
            value
                .as_str()
                .map_or("-", |t| t.get(..10).unwrap_or(t))
                .to_string()
        };
        for row in &rows {
            text.push_str(&format!(
                "{:<24} {:<34} {:<11} {:<11} {:>9}  {}\n",
                row["name"].as_str().unwrap_or_default(),
                row["serial"].as_str().unwrap_or("-"),
                day(&row["not_after"]),
                day(&row["due"]),
                row["days_left"]
                    .as_i64()
                    .map_or("-".to_string(), |d| d.to_string()),
                status_text(row)
            ));
        }
        if rows.is_empty() {
            text.push_str("(no clients: add one with dockertls client add NAME)\n");
        }
        text
    };
    Ok(Outcome::report(&text))
}

/// A row's status for the text table, with "(key elsewhere)" for a client signed from a CSR.
fn status_text(row: &serde_json::Value) -> String {
    let status = row["status"].as_str().unwrap_or_default();
    if row["key"] == "elsewhere" {
        format!("{status} (key elsewhere)")
    } else {
        status.to_string()
    }
}

fn remove(dir: &Path, args: &ClientRemoveArgs, now: OffsetDateTime) -> Result<Outcome, Error> {
    let name = names::parse_client_name(&args.name).map_err(Error::Refused)?;
    workspace::require_pki(dir)?;
    state::require_clients(dir, "", std::slice::from_ref(&name))?;
    let holder = Holder::client(&name);
    let leaf = state::read_cert(dir, &holder).ok();
    let mut ws = Workspace::open(dir, now)?;
    let moved = ws.move_to_backup(&holder.folder())?;
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
    Ok(Outcome::report(&text))
}
