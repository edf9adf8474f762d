//! `dockertls role add|remove|list`: custom roles for the authorization plugin, kept in the
//! state file and written into every server folder's authz.json. admin and read-only are built
//! in (the plugin holds their tables; the README lists them).

use std::path::Path;

use ::time::OffsetDateTime;
use serde_json::json;

use crate::authz_policy::{self, CustomRole, READ_ONLY};
use crate::cli::{Format, RoleAddArgs, RoleCommand, RoleListArgs, RoleRemoveArgs};
use crate::commands::client::policy_written;
use crate::commands::crl::{load_state, publish_policy};
use crate::error::Error;
use crate::findings::Outcome;
use crate::store::state;
use crate::store::workspace::{self, Workspace};

/// The most rules a role may have (a policy is read on every reload).
const MAX_RULES: usize = 256;

/// Runs a `role` subcommand.
pub fn run(dir: &Path, command: &RoleCommand, now: OffsetDateTime) -> Result<Outcome, Error> {
    match command {
        RoleCommand::Add(args) => add(dir, args, now),
        RoleCommand::Remove(args) => remove(dir, args, now),
        RoleCommand::List(args) => list(dir, args, now),
    }
}

/// Validates the role's name and rules (before anything is opened).
fn parse_role(args: &RoleAddArgs) -> Result<CustomRole, Error> {
    authz_policy::check_role_name(&args.name).map_err(Error::Refused)?;
    if authz_policy::is_builtin(&args.name) {
        return Err(Error::refused(format!(
            "role '{}' is built in and cannot be redefined",
            args.name
        ))
        .hint("choose another name for your role"));
    }
    if args.allow.len() > MAX_RULES {
        return Err(Error::Refused(format!(
            "--allow is given {} times: a role has at most {MAX_RULES} rules",
            args.allow.len()
        )));
    }
    let mut allow = Vec::new();
    for text in &args.allow {
        let rule = authz_policy::parse_rule(text).map_err(|why| {
            Error::refused(why)
                .hint("e.g. --allow 'GET /containers/**' --allow 'POST /containers/*/restart'")
        })?;
        // Minor 8: the plugin matches the path without its /vX.Y prefix, so a pattern that
        // starts with one could never match (a role that silently allows nothing).
        if crate::authz::route::strip_version(&rule.path) != rule.path {
            return Err(Error::refused(format!(
                "--allow '{}': the pattern starts with an API version, and patterns are matched without the /vX.Y prefix, so it could never match",
                crate::escape::value(text)
            ))
            .hint("leave the version out, e.g. --allow 'GET /info' (it matches /v1.41/info too)"));
        }
        if !allow.contains(&rule) {
            allow.push(rule);
        }
    }
    Ok(CustomRole { allow })
}

fn add(dir: &Path, args: &RoleAddArgs, now: OffsetDateTime) -> Result<Outcome, Error> {
    let role = parse_role(args)?;
    workspace::require_pki(dir)?;
    let ws = Workspace::open(dir, now)?;
    let mut state = load_state(&ws)?;
    let mut record = crate::store::authz::record(&state)?;
    // Review item 4 (minor 7): the same role with the same rules is a re-run of an add that
    // stopped after the state file (its commit point): the policy is written again.
    if record.roles.get(&args.name) == Some(&role) {
        let folders = publish_policy(&ws, &mut state, &record)?;
        let mut out = format!(
            "role {} exists already with these rules: wrote the policy into every server folder again (in case a run before stopped before that)\n",
            args.name
        );
        out.push_str(&policy_written(&folders));
        return Ok(Outcome::report(&out));
    }
    if let Some(taken) = record
        .roles
        .keys()
        .find(|n| n.eq_ignore_ascii_case(&args.name))
    {
        return Err(
            Error::refused(format!("role '{taken}' exists already")).hint(format!(
                "to change it: dockertls role remove {taken}, then add it again"
            )),
        );
    }
    let first_use = !record.roles_in_use();
    record.start_roles(&state::client_names(dir));
    let rules = role.allow.len();
    record.roles.insert(args.name.clone(), role);
    let folders = publish_policy(&ws, &mut state, &record)?;
    let mut out = format!(
        "added role {} ({rules} rules); give it with dockertls client role NAME {}\n",
        args.name, args.name
    );
    if first_use {
        out.push_str("roles are now in use: every client was recorded as admin (what they were); a client without a role is refused\n");
    }
    out.push_str(&policy_written(&folders));
    Ok(Outcome::report(&out))
}

fn remove(dir: &Path, args: &RoleRemoveArgs, now: OffsetDateTime) -> Result<Outcome, Error> {
    authz_policy::check_role_name(&args.name).map_err(Error::Refused)?;
    if authz_policy::is_builtin(&args.name) {
        return Err(Error::Refused(format!(
            "role '{}' is built in and cannot be removed",
            args.name
        )));
    }
    workspace::require_pki(dir)?;
    let ws = Workspace::open(dir, now)?;
    let mut state = load_state(&ws)?;
    let mut record = crate::store::authz::record(&state)?;
    if !record.roles.contains_key(&args.name) {
        let custom: Vec<&str> = record.roles.keys().map(String::as_str).collect();
        return Err(Error::refused(format!(
            "no custom role '{}' (custom roles: {})",
            args.name,
            if custom.is_empty() {
                "none".to_string()
            } else {
                custom.join(", ")
            }
        ))
        .hint("list them with dockertls role list"));
    }
    let holders: Vec<&str> = record
        .client_roles
        .iter()
        .filter(|(_, r)| **r == args.name)
        .map(|(n, _)| n.as_str())
        .collect();
    if !holders.is_empty() {
        return Err(Error::refused(format!(
            "role '{}' is given to {}",
            args.name,
            holders.join(", ")
        ))
        .hint(format!(
            "give them another role first: dockertls client role {} {READ_ONLY}",
            holders[0]
        )));
    }
    record.roles.remove(&args.name);
    let folders = publish_policy(&ws, &mut state, &record)?;
    Ok(Outcome::report(&format!(
        "removed role {}\n{}",
        args.name,
        policy_written(&folders)
    )))
}

fn list(dir: &Path, args: &RoleListArgs, now: OffsetDateTime) -> Result<Outcome, Error> {
    workspace::require_pki(dir)?;
    let state = crate::store::registry::open(dir, now)?;
    let record = crate::store::authz::record(&state)?;
    let in_use = record.roles_in_use();
    let members = |role: &str| -> Vec<String> {
        if !in_use && role == authz_policy::ADMIN {
            return state::client_names(dir);
        }
        record
            .client_roles
            .iter()
            .filter(|(_, r)| r.as_str() == role)
            .map(|(n, _)| n.clone())
            .collect()
    };
    let mut rows = vec![
        json!({"role": authz_policy::ADMIN, "builtin": true, "allow": null, "clients": members(authz_policy::ADMIN)}),
        json!({"role": READ_ONLY, "builtin": true, "allow": null, "clients": members(READ_ONLY)}),
    ];
    for (name, role) in &record.roles {
        rows.push(
            json!({"role": name, "builtin": false, "allow": role.allow, "clients": members(name)}),
        );
    }
    if args.format == Format::Json {
        let text = serde_json::to_string_pretty(&json!({"roles_in_use": in_use, "roles": rows}))
            .unwrap_or_default();
        return Ok(Outcome::report(&format!("{text}\n")));
    }
    let mut text = String::new();
    for row in &rows {
        let clients: Vec<&str> = row["clients"]
            .as_array()
            .map(|a| a.iter().filter_map(|c| c.as_str()).collect())
            .unwrap_or_default();
        let rules = match row["allow"].as_array() {
            None => "built in (see the README)".to_string(),
            Some(rules) => rules
                .iter()
                .map(|r| {
                    format!(
                        "{} {}",
                        r["method"].as_str().unwrap_or(""),
                        r["path"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
        };
        text.push_str(&format!(
            "{}: {rules}\n  clients: {}\n",
            row["role"].as_str().unwrap_or_default(),
            if clients.is_empty() {
                "-".to_string()
            } else {
                clients.join(", ")
            }
        ));
    }
    if !in_use {
        text.push_str("(roles are not in use yet: every client is admin)\n");
    }
    Ok(Outcome::report(&text))
}
