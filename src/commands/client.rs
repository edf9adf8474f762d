//! `dockertls client add|list|remove`.

use std::path::Path;

use ::time::OffsetDateTime;
use serde_json::json;

use crate::authz_policy;
use crate::cli::{
    ClientAddArgs, ClientCommand, ClientListArgs, ClientRemoveArgs, ClientRevokeArgs,
    ClientRoleArgs, Format, RevokeReason,
};
use crate::commands::crl::{load_state, publish, publish_policy};
use crate::crl::{Reason, Revocation};
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
        ClientCommand::Remove(args) => remove(dir, args, passphrase_file, now),
        ClientCommand::Revoke(args) => revoke(dir, args, passphrase_file, now),
        ClientCommand::Role(args) => role(dir, args, now),
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
    if let Some(role) = &args.role {
        let state = crate::store::registry::open(dir, now)?;
        check_role(&crate::store::authz::record(&state)?, role)?;
    }
    workspace::finish_interrupted(dir, now)?;
    let (ca, _) = state::load_ca(dir, passphrase_file)?;
    check_ca_can_sign(&ca, plan.days, now)?;
    let (issued, roles) = issue_clients(dir, &ca, &plan, args.role.as_deref(), now)?;
    let mut out = String::new();
    for (name, not_after) in &issued {
        let role = roles
            .as_ref()
            .and_then(|r| r.get(name))
            .map(|r| format!(", role {r}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "added client {name}: {} (expires {}{role})\n",
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

/// Each client's role, once roles are in use.
type Roles = Option<std::collections::BTreeMap<String, String>>;

/// Issues and stages every client of the plan, then moves each folder into clients/. Once
/// roles are in use (or with `role`), records each new client's role (`role`, else admin) and
/// writes the policy into every server folder.
fn issue_clients(
    dir: &Path,
    ca: &Ca,
    plan: &ClientAddPlan,
    role: Option<&str>,
    now: OffsetDateTime,
) -> Result<(Vec<(String, OffsetDateTime)>, Roles), Error> {
    let ws = Workspace::open(dir, now)?;
    state::require_current_ca(&ws, ca)?;
    check_names_are_new(dir, plan)?;
    let mut state = load_state(&ws)?;
    let mut record = crate::store::authz::record(&state)?;
    if let Some(role) = role {
        check_role(&record, role)?;
    }
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
    if role.is_none() && !record.roles_in_use() {
        return Ok((issued, None));
    }
    // Everyone else keeps what they have (admin, on first use); the new clients get theirs.
    let others: Vec<String> = state::client_names(dir)
        .into_iter()
        .filter(|n| !plan.names.contains(n))
        .collect();
    record.start_roles(&others);
    for name in &plan.names {
        let role = role.unwrap_or(authz_policy::ADMIN);
        record.client_roles.insert(name.clone(), role.to_string());
    }
    publish_policy(&ws, &mut state, &record)?;
    Ok((issued, Some(record.client_roles)))
}

/// Refuses a role that is not defined, with the roles there are.
fn check_role(record: &authz_policy::Record, role: &str) -> Result<(), Error> {
    record.check_role_exists(role).map_err(|why| {
        Error::refused(format!("--role {}: {why}", crate::escape::value(role)))
            .hint("define it with dockertls role add ROLE --allow 'METHOD /path', or use admin or read-only")
    })
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
    // Revocations, as recorded (read only: a list never migrates or writes anything).
    let record = crate::store::registry::State::load(dir)
        .ok()
        .flatten()
        .and_then(|state| crate::store::authz::record(&state).ok())
        .unwrap_or_default();
    let mut rows = Vec::new();
    for name in state::client_names(dir) {
        let key = key_place(&name);
        match state::read_cert(dir, &Holder::client(&name)) {
            Ok(leaf) => {
                let days = pki::days_left(now, leaf.not_after);
                let status = if record.is_revoked(&leaf.serial) {
                    "revoked"
                } else if leaf.not_after < now {
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

fn remove(
    dir: &Path,
    args: &ClientRemoveArgs,
    passphrase_file: Option<&Path>,
    now: OffsetDateTime,
) -> Result<Outcome, Error> {
    let name = names::parse_client_name(&args.name).map_err(Error::Refused)?;
    workspace::require_pki(dir)?;
    state::require_clients(dir, "", std::slice::from_ref(&name))?;
    workspace::finish_interrupted(dir, now)?;
    let (ca, _) = state::load_ca(dir, passphrase_file)?;
    let holder = Holder::client(&name);
    let mut ws = Workspace::open(dir, now)?;
    state::require_current_ca(&ws, &ca)?;
    state::require_clients(dir, "", std::slice::from_ref(&name))?;
    let mut state = load_state(&ws)?;
    let mut record = crate::store::authz::record(&state)?;
    record.client_roles.remove(&name);
    state.clients.remove(&name);
    // An expired CA or an unreadable certificate cannot be put on a list: the folder still
    // goes (as before revocation existed), and the report says it was not revoked.
    let signable = check_ca_valid(&ca, now).and_then(|()| read_client_cert(dir, &name));
    let revocation = match signable {
        Ok(leaf) => {
            // Removed twice (killed after revoking, before moving the folder): listed once.
            if !record.is_revoked(&leaf.serial) {
                record.revoked.push(Revocation {
                    serial: leaf.serial.clone(),
                    name: name.clone(),
                    at: now,
                    reason: Reason::CessationOfOperation,
                });
            }
            let published = publish(&ws, &mut state, &mut record, &ca, now)?;
            format!(
                "revoked its certificate (serial {}): the dockertls authorization plugin refuses it once the new list is on each daemon host.\n{}\
                 Without the plugin (dockertls install --authz), dockerd itself has no revocation: the certificate opens the daemon until {} for anyone who kept a copy.\n",
                leaf.serial,
                published.summary(),
                date(leaf.not_after),
            )
        }
        Err(why) => {
            publish_policy(&ws, &mut state, &record)?;
            format!("its certificate was NOT revoked: {}\n", why.message())
        }
    };
    let moved = ws.move_to_backup(&holder.folder())?;
    drop(ws);
    Ok(Outcome::report(&format!(
        "removed client {name}: its files are in {}\n{revocation}",
        moved.display()
    )))
}

/// A client's certificate, read under the lock (its serial goes on the list).
fn read_client_cert(dir: &Path, name: &str) -> Result<state::Leaf, Error> {
    state::read_cert(dir, &Holder::client(name)).map_err(|e| {
        Error::refused(format!(
            "cannot read the certificate of client {name}: {}",
            e.message()
        ))
        .hint("restore clients/NAME/cert.pem from DIR/backup/, or replace the CA with dockertls rotate --ca to shut every old certificate out")
    })
}

/// `client revoke NAME`: the certificate goes on the list; the folder stays (for the record,
/// or to see what was revoked).
fn revoke(
    dir: &Path,
    args: &ClientRevokeArgs,
    passphrase_file: Option<&Path>,
    now: OffsetDateTime,
) -> Result<Outcome, Error> {
    let name = names::parse_client_name(&args.name).map_err(Error::Refused)?;
    workspace::require_pki(dir)?;
    state::require_clients(dir, "", std::slice::from_ref(&name))?;
    read_client_cert(dir, &name)?;
    workspace::finish_interrupted(dir, now)?;
    let (ca, _) = state::load_ca(dir, passphrase_file)?;
    check_ca_valid(&ca, now)?;
    let ws = Workspace::open(dir, now)?;
    state::require_current_ca(&ws, &ca)?;
    let leaf = read_client_cert(dir, &name)?;
    let mut state = load_state(&ws)?;
    let mut record = crate::store::authz::record(&state)?;
    // Review item 4: the state file is the commit point; a run stopped after it left lists
    // without the client. A re-run finishes the job: the lists are signed and written again.
    if let Some(entry) = record.revoked.iter().find(|r| r.serial == leaf.serial) {
        let head = format!(
            "client {name} was revoked already (serial {}, on {}): signed the list again and wrote it into every server folder (in case a run before stopped before that)",
            entry.serial,
            date(entry.at)
        );
        let published = publish(&ws, &mut state, &mut record, &ca, now)?;
        return Ok(Outcome::report(&format!("{head}\n{}", published.summary())));
    }
    record.revoked.push(Revocation {
        serial: leaf.serial.clone(),
        name: name.clone(),
        at: now,
        reason: reason(args.reason),
    });
    let published = publish(&ws, &mut state, &mut record, &ca, now)?;
    Ok(Outcome::report(&format!(
        "revoked client {name} (serial {}, reason {}); its folder {} is kept\n{}",
        leaf.serial,
        reason(args.reason).name(),
        Pki::new(dir).client_dir(&name).display(),
        published.summary()
    )))
}

fn reason(reason: RevokeReason) -> Reason {
    match reason {
        RevokeReason::Unspecified => Reason::Unspecified,
        RevokeReason::KeyCompromise => Reason::KeyCompromise,
        RevokeReason::AffiliationChanged => Reason::AffiliationChanged,
        RevokeReason::Superseded => Reason::Superseded,
        RevokeReason::CessationOfOperation => Reason::CessationOfOperation,
        RevokeReason::PrivilegeWithdrawn => Reason::PrivilegeWithdrawn,
    }
}

/// `client role NAME ROLE`: no CA key needed (the policy is not signed).
fn role(dir: &Path, args: &ClientRoleArgs, now: OffsetDateTime) -> Result<Outcome, Error> {
    let name = names::parse_client_name(&args.name).map_err(Error::Refused)?;
    workspace::require_pki(dir)?;
    state::require_clients(dir, "", std::slice::from_ref(&name))?;
    let ws = Workspace::open(dir, now)?;
    state::require_clients(dir, "", std::slice::from_ref(&name))?;
    let mut state = load_state(&ws)?;
    let mut record = crate::store::authz::record(&state)?;
    check_role(&record, &args.role).map_err(|e| {
        Error::refused(e.message().replacen("--role ", "", 1))
            .hint("define it with dockertls role add ROLE --allow 'METHOD /path', or use admin or read-only")
    })?;
    let first_use = !record.roles_in_use();
    record
        .set_role(&state::client_names(dir), &name, &args.role)
        .map_err(Error::Refused)?;
    let folders = publish_policy(&ws, &mut state, &record)?;
    let mut out = format!("client {name} has the role {}\n", args.role);
    if first_use {
        out.push_str("roles are now in use: every other client was recorded as admin (what they were); a client without a role is refused\n");
    }
    out.push_str(&policy_written(&folders));
    Ok(Outcome::report(&out))
}

/// Where the policy went, and the next step.
pub(crate) fn policy_written(folders: &[std::path::PathBuf]) -> String {
    let list: Vec<String> = folders.iter().map(|f| f.display().to_string()).collect();
    if list.is_empty() {
        return "no server folder yet: the policy goes into each one as it is made\n".into();
    }
    format!(
        "wrote the policy into {}\nnext: put each server folder on its host (dockertls install --authz there, or deploy): the plugin reloads it within a second\n",
        list.join(", ")
    )
}
