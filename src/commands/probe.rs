//! `dockertls probe`: connect to a live daemon and say exactly what is wrong.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use crate::cli::ProbeArgs;
use crate::error::Error;
use crate::findings::{Check, Format, Outcome, Status};
use crate::probe::{self, Endpoint};

/// Runs `probe` at time `now`. A refusal (no endpoint, bad arguments, an unusable `--client`)
/// is an error, which `main` reports with exit 3; otherwise the report and its exit code.
pub fn run(dir: &Path, args: &ProbeArgs, now: ::time::OffsetDateTime) -> Result<Outcome, Error> {
    let given = match &args.server {
        Some(_) => None,
        None => args
            .endpoint
            .clone()
            .or_else(|| std::env::var("DOCKER_HOST").ok()),
    };
    let endpoint = match given {
        Some(text) => Endpoint::parse(&text).map_err(Error::Refused)?,
        None if args.server.is_some() || args.client.is_some() => {
            Endpoint::parse(&server_endpoint(dir, args.server.as_deref(), now)?)
                .map_err(Error::Refused)?
        }
        None => {
            return Err(Error::refused("no daemon to probe")
                .hint("give tcp://HOST:PORT or --server NAME, or set DOCKER_HOST"));
        }
    };
    if !(args.timeout > 0.0 && args.timeout <= 600.0) {
        return Err(Error::refused(format!(
            "--timeout {}: give a number of seconds above 0 and at most 600 (e.g. 5 or 0.5)",
            args.timeout
        )));
    }
    let cert_path = cert_path(dir, args).map_err(Error::Refused)?;
    let hint = |sans: &[String], wanted: &str| {
        let mut all = sans.to_vec();
        all.push(wanted.to_string());
        crate::render::reissue_hint(Some(dir), &[wanted.to_string()], &all)
    };
    let mut outcome = probe::probe(
        &endpoint,
        &cert_path,
        Duration::from_secs_f64(args.timeout),
        now,
        &hint,
    );
    // eco (issue 14): docker-py would not use this ca.pem.
    let ca = cert_path.join(crate::store::layout::CA_CERT);
    if let Some(found) = crate::trust_env::overrides(|v| std::env::var_os(v), &ca) {
        outcome.checks.push(Check {
            id: "client-ca-bundle-env",
            status: Status::Warn,
            message: found.message,
            hint: Some(found.hint),
        });
    }
    let stdout = match args.format {
        Format::Json => crate::findings::json_document(&to_json(&outcome)),
        Format::Text => to_text(&outcome, crate::findings::colour_wanted()),
    };
    Ok(Outcome {
        stdout,
        notices: Vec::new(),
        exit: outcome.status().exit(),
    })
}

/// The endpoint of a server of the PKI in `dir`: `wanted`, or the only one (refused, listing
/// them, when there are several).
fn server_endpoint(
    dir: &Path,
    wanted: Option<&str>,
    now: ::time::OffsetDateTime,
) -> Result<String, Error> {
    if let Some(name) = wanted {
        crate::store::registry::parse_server_name("--server", name)?;
    }
    let state = crate::store::registry::open(dir, now)?;
    let name = state.resolve_server(dir, wanted)?;
    let host = &state.servers()[&name].host;
    let address = crate::names::parse_address("--server", host)
        .map_err(|why| Error::Refused(format!("server {name}: its host in the state file: {why}")))?
        .address;
    Ok(crate::names::docker_host(
        &address,
        crate::store::state::listen_port(dir, &name),
    ))
}

/// --cert-path, --client NAME, DOCKER_CERT_PATH, or ~/.docker, as the docker CLI does.
fn cert_path(dir: &Path, args: &ProbeArgs) -> Result<PathBuf, String> {
    if let Some(path) = &args.cert_path {
        return Ok(path.clone());
    }
    if let Some(name) = &args.client {
        crate::names::parse_client_name(name)?;
        crate::store::check_trusted(dir).map_err(|e| e.to_string())?;
        let path = crate::store::Pki::new(dir).client_dir(name);
        if !path.is_dir() {
            return Err(format!(
                "--client {name}: {} does not exist (dockertls client folders are in --dir)",
                path.display()
            ));
        }
        return Ok(path);
    }
    if let Some(path) = std::env::var_os("DOCKER_CERT_PATH").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".docker"))
        .ok_or_else(|| {
            "no client folder: give --cert-path DIR or --client NAME, or set DOCKER_CERT_PATH"
                .to_string()
        })
}

fn to_json(outcome: &probe::Report) -> serde_json::Value {
    json!({
        "status": outcome.status().name(),
        "endpoint": outcome.endpoint,
        "cert_path": outcome.cert_path.display().to_string(),
        "tls_version": outcome.tls_version,
        "server_certificate": outcome.server_cert.as_ref().map(|s| json!({
            "subject": s.subject,
            "issuer": s.issuer,
            "sans": s.sans,
            "not_after": s.not_after.format(&::time::format_description::well_known::Rfc3339).ok(),
        })),
        "daemon": {"version": outcome.daemon_version, "api_version": outcome.api_version},
        "checks": outcome.checks.iter().map(Check::json).collect::<Vec<_>>(),
    })
}

/// Text for people. Every value from the server, the files or the command line is escaped
/// (see `escape`): only the colour codes added here reach the terminal.
fn to_text(outcome: &probe::Report, colour: bool) -> String {
    use crate::escape::field;
    let mut out = format!(
        "{}  with {}  {}\n",
        field(&outcome.endpoint),
        crate::escape::path(&outcome.cert_path),
        outcome.status().painted(colour)
    );
    if let Some(version) = &outcome.tls_version {
        out.push_str(&format!("  TLS       {}\n", field(version)));
    }
    if let Some(server) = &outcome.server_cert {
        out.push_str(&format!(
            "  server    {}, issued by {}, expires {}\n",
            // The daemon's names: cut when long (escape::excerpt), as every answer is.
            crate::escape::excerpt(&server.subject),
            crate::escape::excerpt(&server.issuer),
            server.not_after.date()
        ));
        out.push_str(&format!(
            "  SANs      {}\n",
            if server.sans.is_empty() {
                "none".to_string()
            } else {
                field(&server.sans.join(", ")).into_owned()
            }
        ));
    }
    if let Some(version) = &outcome.daemon_version {
        out.push_str(&format!(
            "  daemon    Docker {}, API {}\n",
            crate::escape::value(version),
            crate::escape::value(outcome.api_version.as_deref().unwrap_or("?"))
        ));
    }
    for check in outcome.checks.iter().filter(|c| c.status != Status::Ok) {
        out.push_str(&check.text("  ", colour));
    }
    out
}
