//! `dockertls probe`: connect to a live daemon and say exactly what is wrong.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use crate::audit::Status;
use crate::cli::ProbeArgs;
use crate::probe::{self, Endpoint, Outcome};

/// Exit status when the probe could not run.
const UNKNOWN: u8 = 3;

/// Runs `probe` at time `now`; returns the exit status.
pub fn run(dir: &Path, args: &ProbeArgs, now: ::time::OffsetDateTime) -> u8 {
    let endpoint = match args
        .endpoint
        .clone()
        .or_else(|| std::env::var("DOCKER_HOST").ok())
    {
        Some(text) => match Endpoint::parse(&text) {
            Ok(endpoint) => endpoint,
            Err(why) => {
                eprintln!("error: {why}");
                return UNKNOWN;
            }
        },
        None => {
            eprintln!("error: no daemon to probe: give tcp://HOST:PORT or set DOCKER_HOST");
            return UNKNOWN;
        }
    };
    if !(args.timeout > 0.0 && args.timeout <= 600.0) {
        eprintln!(
            "error: --timeout {}: give a number of seconds between 0 and 600",
            args.timeout
        );
        return UNKNOWN;
    }
    let cert_path = match cert_path(dir, args) {
        Ok(path) => path,
        Err(why) => {
            eprintln!("error: {why}");
            return UNKNOWN;
        }
    };
    let hint = |sans: &[String], wanted: &str| {
        let mut all = sans.to_vec();
        all.push(wanted.to_string());
        crate::render::reissue_hint(Some(dir), &[wanted.to_string()], &all)
    };
    let outcome = probe::probe(
        &endpoint,
        &cert_path,
        Duration::from_secs_f64(args.timeout),
        now,
        &hint,
    );
    let rendered = if args.format == crate::cli::Format::Json {
        let json = serde_json::to_string_pretty(&to_json(&outcome)).unwrap_or_default();
        // serde_json leaves C1 and bidi controls raw: escape them as JSON escapes.
        let mut text = crate::escape::text(&json).into_owned();
        text.push('\n');
        text
    } else {
        let colour = std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        to_text(&outcome, colour)
    };
    let _ = std::io::stdout().write_all(rendered.as_bytes());
    match outcome.status() {
        Status::Ok => 0,
        Status::Warn => 1,
        Status::Fail => 2,
    }
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

fn to_json(outcome: &Outcome) -> serde_json::Value {
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
        "checks": outcome.checks.iter().map(|c| json!({"id": c.id, "status": c.status.name(), "message": c.message})).collect::<Vec<_>>(),
    })
}

/// Text for people. Every value from the server, the files or the command line is escaped
/// (see `escape`): only the colour codes added here reach the terminal.
fn to_text(outcome: &Outcome, colour: bool) -> String {
    use crate::escape::field;
    let paint = |status: Status| {
        let word = status.name().to_uppercase();
        match (colour, status) {
            (false, _) => word,
            (true, Status::Ok) => format!("\x1b[32m{word}\x1b[0m"),
            (true, Status::Warn) => format!("\x1b[33m{word}\x1b[0m"),
            (true, Status::Fail) => format!("\x1b[31m{word}\x1b[0m"),
        }
    };
    let mut out = format!(
        "{}  with {}  {}\n",
        field(&outcome.endpoint),
        crate::escape::path(&outcome.cert_path),
        paint(outcome.status())
    );
    if let Some(version) = &outcome.tls_version {
        out.push_str(&format!("  TLS       {}\n", field(version)));
    }
    if let Some(server) = &outcome.server_cert {
        out.push_str(&format!(
            "  server    {}, issued by {}, expires {}\n",
            field(&server.subject),
            field(&server.issuer),
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
            field(version),
            field(outcome.api_version.as_deref().unwrap_or("?"))
        ));
    }
    for check in outcome.checks.iter().filter(|c| c.status != Status::Ok) {
        out.push_str(&format!(
            "  {} {}: {}\n",
            paint(check.status).to_lowercase(),
            check.id,
            field(&check.message)
        ));
    }
    out
}
