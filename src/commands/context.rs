//! `dockertls context CLIENT [--server NAME] [--name CTX]`: a docker context for a client,
//! made with the real docker CLI from all three files together; the state file remembers it
//! and `rotate` refreshes it (see [`refresh`]). `context --remove CTX` removes one.

use std::path::Path;

use ::time::OffsetDateTime;

use crate::cli::ContextArgs;
use crate::error::Error;
use crate::findings::Outcome;
use crate::import::docker_context::{self, Endpoint};
use crate::import::records::{self, ContextRecord};
use crate::names;
use crate::store::layout::{CA_CERT, CLIENT_CERT, CLIENT_KEY};
use crate::store::registry::{self, State};
use crate::store::workspace::{self, Workspace};
use crate::store::{Holder, Pki, state};

/// Runs `context`.
pub fn run(dir: &Path, args: &ContextArgs, now: OffsetDateTime) -> Result<Outcome, Error> {
    if let Some(name) = &args.remove {
        return remove(dir, name, now);
    }
    let client = names::parse_client_name(args.client.as_deref().unwrap_or_default())
        .map_err(Error::Refused)?;
    if let Some(server) = &args.server {
        registry::parse_server_name("--server", server)?;
    }
    let wanted = args
        .name
        .as_deref()
        .map(|n| docker_context::parse_context_name("--name", n))
        .transpose()?;
    workspace::require_pki(dir)?;
    state::require_clients(dir, "", std::slice::from_ref(&client))?;
    let docker = docker_context::docker_cli()?;
    // Under the lock: the context and its record change together, and no rotation runs
    // between reading the files and handing them to the docker CLI.
    let ws = Workspace::open(dir, now)?;
    let mut state = load_state(&ws, dir)?;
    let server = state.resolve_server(dir, args.server.as_deref())?;
    let (endpoint, host) = endpoint(dir, &client, &server)?;
    let name = match wanted {
        Some(name) => name,
        None => docker_context::parse_context_name("--name", &names::context_name(&host))?,
    };
    let mut list = records::contexts(&state);
    let recorded = list.iter().position(|c| c.name == name);
    if let Some(index) = recorded
        && (list[index].client != client || list[index].server != server)
        && args.name.is_none()
    {
        return Err(Error::refused(format!(
            "docker context {name} is already dockertls's context for client {} of server {}",
            list[index].client, list[index].server
        ))
        .hint(format!(
            "give this one its own name: dockertls context {client} --name NAME"
        )));
    }
    let exists = docker_context::exists(&docker, &name)?;
    if exists && recorded.is_none() {
        return Err(Error::refused(format!(
            "a docker context {name} exists that dockertls did not make for {}",
            dir.display()
        ))
        .hint(format!(
            "choose another name (dockertls context {client} --name NAME), or remove it first: docker context rm {name}"
        )));
    }
    docker_context::create_or_update(
        &docker,
        &name,
        &describe(&client, &server),
        &endpoint,
        exists,
    )?;
    let record = ContextRecord {
        name: name.clone(),
        client: client.clone(),
        server: server.clone(),
    };
    match recorded {
        Some(index) => list[index] = record,
        None => list.push(record),
    }
    records::set_contexts(&mut state, &list);
    state.save(&ws)?;
    Ok(Outcome::report(&format!(
        "{} docker context {name}: client {client}, server {server} ({})\nuse it: docker --context {name} version\ndockertls rotate keeps it in step; remove it with dockertls context --remove {name}\n",
        if exists { "Updated" } else { "Created" },
        endpoint.host
    )))
}

fn describe(client: &str, server: &str) -> String {
    format!("dockertls: client {client} of server {server}")
}

fn load_state(ws: &Workspace, dir: &Path) -> Result<State, Error> {
    State::load_in(ws.dir())?.ok_or_else(|| {
        Error::failed(format!(
            "{} has no state file after opening it",
            dir.display()
        ))
    })
}

/// The endpoint of `client` talking to `server`, and the host it dials.
fn endpoint(dir: &Path, client: &str, server: &str) -> Result<(Endpoint, names::Address), Error> {
    let pki = Pki::new(dir);
    let folder = pki.client_dir(client);
    let folder = std::path::absolute(&folder).unwrap_or(folder);
    if std::fs::symlink_metadata(folder.join(CLIENT_KEY)).is_err() {
        return Err(Error::refused(format!(
            "{} has no {CLIENT_KEY}: the key of client {client} lives elsewhere, and a docker context needs it",
            folder.display()
        ))
        .hint("make the context on the machine that holds the key (docker context create)"));
    }
    let holder = Holder::server(server);
    let cert = state::read_cert(dir, &holder)?;
    let host = cert
        .sans
        .iter()
        .find(|a| a.to_string() == cert.cn)
        .or(cert.sans.first())
        .cloned()
        .ok_or_else(|| {
            Error::refused(format!(
                "{}: the server certificate has no SAN to dial",
                pki.cert(&holder).display()
            ))
            .hint(format!(
                "add one: dockertls rotate --server {server} --allow HOST"
            ))
        })?;
    let endpoint = Endpoint {
        host: names::docker_host(&host, state::listen_port(dir, server)),
        ca: folder.join(CA_CERT),
        cert: folder.join(CLIENT_CERT),
        key: folder.join(CLIENT_KEY),
    };
    Ok((endpoint, host))
}

fn remove(dir: &Path, name: &str, now: OffsetDateTime) -> Result<Outcome, Error> {
    let name = docker_context::parse_context_name("--remove", name)?;
    workspace::require_pki(dir)?;
    let ws = Workspace::open(dir, now)?;
    let mut state = load_state(&ws, dir)?;
    let mut list = records::contexts(&state);
    let Some(index) = list.iter().position(|c| c.name == name) else {
        let known: Vec<&str> = list.iter().map(|c| c.name.as_str()).collect();
        return Err(Error::refused(format!(
            "--remove {name}: dockertls made no docker context {name} for {} (contexts: {})",
            dir.display(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ))
        .hint("a context dockertls did not make is removed with docker context rm NAME"));
    };
    let docker = docker_context::docker_cli()?;
    let removed = docker_context::remove(&docker, &name)?;
    list.remove(index);
    records::set_contexts(&mut state, &list);
    state.save(&ws)?;
    Ok(Outcome::report(&if removed {
        format!("Removed docker context {name}\n")
    } else {
        format!("docker context {name} was already gone from this user's docker CLI; forgot it\n")
    }))
}

/// After `rotate` re-issued `reissued` (servers and clients; the CA's replacement re-issues
/// them all): hands the new files to every recorded docker context that uses one of them.
/// Returns the report lines and the warnings (a context this user's docker CLI does not
/// have, a docker CLI that fails): the rotation itself stands either way.
pub fn refresh(dir: &Path, reissued: &[Holder]) -> (String, Vec<String>) {
    let Ok(Some(state)) = State::load(dir) else {
        return (String::new(), Vec::new());
    };
    let list = records::contexts(&state);
    let touched: Vec<&ContextRecord> = list
        .iter()
        .filter(|c| {
            reissued
                .iter()
                .any(|h| *h == Holder::client(&c.client) || *h == Holder::server(&c.server))
        })
        .collect();
    let (mut report, mut warnings) = (String::new(), Vec::new());
    if touched.is_empty() {
        return (report, warnings);
    }
    let docker = match docker_context::docker_cli() {
        Ok(docker) => docker,
        Err(err) => {
            warnings.push(format!(
                "the docker contexts were not refreshed: {}",
                err.message()
            ));
            return (report, warnings);
        }
    };
    for record in touched {
        let refreshed = endpoint(dir, &record.client, &record.server).and_then(|(endpoint, _)| {
            match docker_context::exists(&docker, &record.name)? {
                true => docker_context::create_or_update(
                    &docker,
                    &record.name,
                    &describe(&record.client, &record.server),
                    &endpoint,
                    true,
                ),
                false => Err(Error::refused(format!(
                    "docker context {} is not in this user's docker CLI; make it again with dockertls context {} --name {}",
                    record.name, record.client, record.name
                ))),
            }
        });
        match refreshed {
            Ok(()) => report.push_str(&format!(
                "docker context {} now uses the new files\n",
                record.name
            )),
            Err(err) => warnings.push(err.message().to_string()),
        }
    }
    (report, warnings)
}
