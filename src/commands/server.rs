//! `dockertls server add|list|remove`: the servers of a PKI, one self-contained folder
//! servers/NAME per daemon (what `install --from` takes), all signed by the one CA, so every
//! client folder trusts every server. The state file names them (`store::registry`).

use std::path::Path;

use ::time::OffsetDateTime;
use serde_json::json;

use crate::cli::{Format, InitArgs, ServerAddArgs, ServerCommand, ServerListArgs};
use crate::error::Error;
use crate::findings::{Notice, Outcome};
use crate::pki::{self, Ca, LeafRequest, Role, Window};
use crate::plan::{InitPlan, MAX_DAYS};
use crate::render;
use crate::store::layout::{DAEMON_JSON, OVERRIDE_CONF, SERVERS_DIR};
use crate::store::registry::{self, KeyPlace, ServerEntry, State};
use crate::store::state::{self, date};
use crate::store::workspace::Workspace;
use crate::store::{CONFIG_FILE, Folder, Holder, Pki, Reach, Stage};

/// Runs a `server` subcommand.
pub fn run(
    dir: &Path,
    command: &ServerCommand,
    passphrase_file: Option<&Path>,
    now: OffsetDateTime,
) -> Result<Outcome, Error> {
    match command {
        ServerCommand::Add(args) => add(dir, args, passphrase_file, now),
        ServerCommand::List(args) => list(dir, args, now),
        ServerCommand::Remove(args) => remove(dir, &args.name, now),
    }
}

/// The same checks as `init` for the host, SANs, days, listen address, install dir and
/// dockerd path (one rule for both commands).
fn plan_of(dir: &Path, args: &ServerAddArgs) -> Result<InitPlan, Error> {
    let init = InitArgs {
        host: Some(args.host.clone()),
        name: Some(args.name.clone()),
        allow: args.allow.clone(),
        no_loopback: args.no_loopback,
        clients: Vec::new(),
        key_type: crate::cli::KeyType::EcdsaP256,
        days: args.days,
        ca_days: MAX_DAYS,
        listen: args.listen.clone(),
        install_dir: args.install_dir.clone(),
        dockerd: args.dockerd.clone(),
        force: false,
        encrypt_ca_key: false,
        yes: true,
    };
    InitPlan::from_args(dir, &init)
}

/// Refuses a name the PKI has, in any case (names are folders; hosts ignore case).
fn check_new(dir: &Path, state: &State, name: &str) -> Result<(), Error> {
    if let Some(other) = state
        .servers()
        .keys()
        .find(|other| other.eq_ignore_ascii_case(name))
    {
        return Err(Error::refused(format!(
            "server '{name}': {} has a server '{other}' already",
            dir.display()
        ))
        .hint(format!(
            "choose another NAME, or re-issue it with dockertls rotate --server {other}"
        )));
    }
    Ok(())
}

fn add(
    dir: &Path,
    args: &ServerAddArgs,
    passphrase_file: Option<&Path>,
    now: OffsetDateTime,
) -> Result<Outcome, Error> {
    let name = registry::parse_server_name("server name", &args.name)?;
    let plan = plan_of(dir, args)?;
    for note in &plan.notes {
        eprintln!("note: {note}");
    }
    // registry::open checks DIR and the CA folder before the CA key is read (and migrates a
    // format-1 PKI); the server folders are checked once, under the lock, before anything is
    // written. The client folders are neither read nor written: not walked (issue 12's speed).
    check_new(dir, &registry::open_within(dir, now, Reach::Ca)?, &name)?;
    let (ca, _) = state::load_ca(dir, passphrase_file)?;
    crate::commands::client::check_ca_valid(&ca, now)?;
    let mut ws = Workspace::open_within(dir, now, Reach::Servers)?;
    state::require_current_ca(&ws, &ca)?;
    // Again under the lock: another run may have added it meanwhile.
    let mut state = State::load_in(ws.dir())?.unwrap_or_default();
    check_new(dir, &state, &name)?;
    let issued = issue(&ws, &ca, &plan, &name, now)?;
    let folder = Holder::server(&name).folder();
    ws.flush_one(&folder)?;
    // A folder of that name not in the state file was left by a run killed before it wrote
    // the state file: it goes to the backup, never deleted.
    let leftover = ws.dir().entry_stat(&folder)?.is_some();
    if leftover {
        ws.move_to_backup(&folder)?;
    }
    ws.add(&folder)?;
    state.servers.insert(
        name.clone(),
        ServerEntry {
            host: plan.host.to_string(),
            key: KeyPlace::Here,
            deploy: None,
            extra: Default::default(),
        },
    );
    // The commit point: from here on the server exists.
    state.save(&ws)?;
    // Issue 13: the new folder gets the revocation list and the policy, once they are used.
    let authz = crate::commands::crl::republish(&ws, &ca, &[], None, now);
    drop(ws);
    let mut text = added(dir, &name, &plan, &issued);
    let mut warning = None;
    match authz {
        Ok(more) => text.push_str(&more),
        Err(err) => {
            warning = Some(crate::findings::Notice::Warning(format!(
                "the server is added, but its revocation list and policy were not written: {err}; fix that, then run dockertls crl refresh"
            )))
        }
    }
    let mut outcome = Outcome::report(&text);
    outcome.notices.extend(warning);
    Ok(outcome)
}

/// Issues the server certificate and stages servers/NAME whole.
fn issue(
    ws: &Workspace,
    ca: &Ca,
    plan: &InitPlan,
    name: &str,
    now: OffsetDateTime,
) -> Result<pki::Issued, Error> {
    let holder = Holder::server(name);
    let failed = |e: rcgen::Error| {
        Error::Failed(format!(
            "cannot issue the certificate of server {name}: {e}; nothing was changed"
        ))
    };
    let key = pki::generate_keys(ca.key_type, 1)
        .map_err(failed)?
        .pop()
        .ok_or_else(|| Error::Failed("no key came back; nothing was changed".into()))?;
    let cn = plan.server_cn();
    let request = LeafRequest {
        cn: &cn,
        sans: &plan.sans,
        role: Role::Server,
        now,
        days: plan.leaf_days,
    };
    let issued = ca.issue(&request, key).map_err(failed)?;
    ws.write_pair(&holder, &ca.cert_pem, &issued)?;
    let folder = holder.folder();
    let daemon_json = render::daemon_json(plan.listen, &plan.install_dir);
    ws.write(
        &format!("{folder}/{DAEMON_JSON}"),
        daemon_json.as_bytes(),
        CONFIG_FILE,
    )?;
    ws.write(
        &format!("{folder}/{OVERRIDE_CONF}"),
        render::override_conf(&plan.dockerd).as_bytes(),
        CONFIG_FILE,
    )?;
    Ok(issued)
}

fn added(dir: &Path, name: &str, plan: &InitPlan, issued: &pki::Issued) -> String {
    let folder = Pki::new(dir).server_dir(name);
    let sans: Vec<String> = plan.sans.iter().map(ToString::to_string).collect();
    let mut out = format!(
        "added server {name}: {} (expires {}, for {})\n",
        folder.display(),
        date(issued.not_after),
        sans.join(", ")
    );
    if issued.cut_to_ca {
        out.push_str(
            "note: it ends with the CA: replace the CA before then (dockertls rotate --ca)\n",
        );
    }
    out.push_str(&format!(
        "next: copy {} to the daemon host (never ca/), then as root there: dockertls install --from FOLDER --restart\n",
        render::shell_quote(&folder.display().to_string())
    ));
    out.push_str(&format!(
        "every client folder of this PKI trusts it already: dockertls --dir {} env CLIENT --server {name}\n",
        render::shell_quote(&dir.display().to_string())
    ));
    out
}

fn list(dir: &Path, args: &ServerListArgs, now: OffsetDateTime) -> Result<Outcome, Error> {
    let state = registry::open(dir, now)?;
    let mut rows = Vec::new();
    for (name, entry) in state.servers() {
        let port = state::listen_port(dir, name);
        let mut row = json!({"name": name, "host": entry.host, "port": port,
            "key": entry.key, "deploy": entry.deploy});
        match state::read_cert(dir, &Holder::server(name)) {
            Ok(leaf) => {
                let status = if leaf.not_after < now {
                    "expired"
                } else if pki::is_due(now, leaf.not_before, leaf.not_after, Window::Rule) {
                    "expiring"
                } else {
                    "ok"
                };
                row["not_after"] = json!(date(leaf.not_after));
                row["days_left"] = json!(leaf.days_left(now));
                row["status"] = json!(status);
            }
            Err(err) => {
                row["status"] = json!("unreadable");
                row["error"] = json!(err.message());
            }
        }
        rows.push(row);
    }
    let text = match args.format {
        Format::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&json!({"servers": rows})).unwrap_or_default()
        ),
        Format::Text => list_text(&rows),
    };
    let mut outcome = Outcome::report(&text);
    outcome.notices.extend(strays(dir, &state));
    Ok(outcome)
}

fn list_text(rows: &[serde_json::Value]) -> String {
    use crate::escape::field;
    let mut text = format!(
        "{:<24} {:<30} {:>5}  {:<11} {:>9}  {}\n",
        "NAME", "HOST", "PORT", "EXPIRES", "DAYS LEFT", "STATUS"
    );
    for row in rows {
        let days = row["days_left"]
            .as_i64()
            .map_or("-".to_string(), |d| d.to_string());
        text.push_str(&format!(
            "{:<24} {:<30} {:>5}  {:<11} {:>9}  {}\n",
            field(row["name"].as_str().unwrap_or_default()),
            field(row["host"].as_str().unwrap_or_default()),
            row["port"],
            row["not_after"].as_str().unwrap_or("-"),
            days,
            // Issue 12: a server signed from a CSR keeps its key on its host.
            if row["key"] == "elsewhere" {
                format!(
                    "{} (key elsewhere)",
                    row["status"].as_str().unwrap_or_default()
                )
            } else {
                row["status"].as_str().unwrap_or_default().to_string()
            }
        ));
    }
    text
}

/// A warning for each folder in servers/ that the state file does not name.
fn strays(dir: &Path, state: &State) -> Vec<Notice> {
    let folders = Folder::open(dir)
        .and_then(|d| d.subfolder(SERVERS_DIR))
        .and_then(|s| s.entries())
        .unwrap_or_default();
    folders
        .into_iter()
        .filter(|(name, _)| !state.servers().contains_key(name))
        .map(|(name, _)| {
            Notice::Warning(format!(
                "{} is not a server of {} (left by an interrupted server add?): move it away, or run dockertls server add {name} again",
                Pki::new(dir).servers_dir().join(&name).display(),
                Pki::new(dir).state_file().display()
            ))
        })
        .collect()
}

/// Refuses a name the PKI does not have, listing those it has.
fn require_server(dir: &Path, state: &State, name: &str) -> Result<(), Error> {
    if state.servers().contains_key(name) {
        return Ok(());
    }
    let names = state.server_names();
    Err(Error::refused(format!(
        "no server '{name}' in {} (servers: {})",
        dir.display(),
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    ))
    .hint("list them with dockertls server list"))
}

fn remove(dir: &Path, name: &str, now: OffsetDateTime) -> Result<Outcome, Error> {
    let name = registry::parse_server_name("server name", name)?;
    require_server(dir, &registry::open(dir, now)?, &name)?;
    let mut ws = Workspace::open(dir, now)?;
    let mut state = State::load_in(ws.dir())?.unwrap_or_default();
    require_server(dir, &state, &name)?;
    let leaf = state::read_cert(dir, &Holder::server(&name)).ok();
    state.servers.remove(&name);
    // The state first: a run killed after it leaves a folder no command uses (server list
    // names it), never a server without its folder.
    state.save(&ws)?;
    let folder = Holder::server(&name).folder();
    let moved = ws.move_to_backup(&folder)?;
    drop(ws);
    let mut out = format!(
        "removed server {name}: its folder is in {}\n",
        moved.display()
    );
    if let Some(leaf) = leaf.filter(|l| l.not_after > now) {
        out.push_str(&format!(
            "note: its certificate stays valid until {}: a daemon still using it keeps accepting this CA's clients; stop it or give it another certificate\n",
            date(leaf.not_after)
        ));
    }
    Ok(Outcome::report(&out))
}
