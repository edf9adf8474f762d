//! `dockertls verify`: audit cert dirs and daemon.json, print text or JSON, exit with the
//! monitoring-plugin status.

use std::io::{IsTerminal, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::audit::checks::{self, Findings};
use crate::audit::discover::{self, Found};
use crate::audit::{Kind, Options, Status, TargetReport, report};
use crate::cli::VerifyArgs;

/// Exit status when nothing could be checked (monitoring "UNKNOWN").
pub const UNKNOWN: u8 = 3;

/// Runs `verify` at time `now`; returns the exit status.
pub fn run(dir: &Path, args: &VerifyArgs, now: ::time::OffsetDateTime) -> u8 {
    if args.warn_days < 0 {
        eprintln!(
            "error: --warn-days {}: give a number of days, 0 or more",
            args.warn_days
        );
        return UNKNOWN;
    }
    for host in &args.hosts {
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/') {
            eprintln!("error: --host '{host}': give a bare DNS name or IP address");
            return UNKNOWN;
        }
    }
    let options = Options {
        now,
        warn_days: args.warn_days,
        hosts: args.hosts.clone(),
    };
    let paths: Vec<PathBuf> = if args.paths.is_empty() && args.daemon_config.is_none() {
        vec![dir.to_path_buf()]
    } else {
        args.paths.clone()
    };

    let mut found = Found::default();
    let mut unknown = false;
    for path in &paths {
        let before = found.targets.len();
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => discover::find(path, &mut found),
            Ok(_) => {
                eprintln!(
                    "error: {} is not a directory: give a cert dir or a tree holding cert dirs",
                    path.display()
                );
                unknown = true;
                continue;
            }
            Err(err) => {
                eprintln!("error: {}: {err}", path.display());
                unknown = true;
                continue;
            }
        }
        if found.targets.len() == before {
            eprintln!(
                "error: no cert dir found in {} (looked for ca.pem with server-cert.pem/server.pem/server-key.pem, cert.pem/key.pem, or ca-key.pem)",
                path.display()
            );
            unknown = true;
        }
    }
    for problem in &found.unreadable {
        eprintln!("warning: not searched: {problem}");
    }

    let mut reports: Vec<TargetReport> = found
        .targets
        .par_iter()
        .map(|t| checks::audit(t, &options))
        .collect();
    if let Some(config) = &args.daemon_config {
        match audit_daemon_config(config, &options) {
            Ok(report) => reports.push(report),
            Err(message) => {
                eprintln!("error: {message}");
                unknown = true;
            }
        }
    }

    let mut stdout = std::io::stdout().lock();
    let rendered = if args.format == "json" {
        let json = serde_json::to_string_pretty(&report::json(&reports)).unwrap_or_default();
        let mut text = crate::escape::text(&json).into_owned(); // C1 and bidi controls
        text.push('\n');
        text
    } else {
        let colour =
            stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        report::text(&reports, colour)
    };
    let _ = stdout.write_all(rendered.as_bytes());

    if unknown || reports.is_empty() {
        return UNKNOWN;
    }
    match report::overall(&reports) {
        Status::Ok => 0,
        Status::Warn => 1,
        Status::Fail => 2,
    }
}

/// Reads a daemon.json: tcp hosts need `"tlsverify": true`; the files it names are audited
/// with the CIS Docker Benchmark checks 3.9–3.14, and daemon.json itself with 3.17/3.18.
fn audit_daemon_config(config: &Path, options: &Options) -> Result<TargetReport, String> {
    let meta = std::fs::metadata(config)
        .map_err(|e| format!("--daemon-config {}: {e}", config.display()))?;
    if !meta.is_file() || meta.len() > crate::audit::material::MAX_FILE_SIZE {
        return Err(format!(
            "--daemon-config {}: not a daemon.json file",
            config.display()
        ));
    }
    let bytes =
        std::fs::read(config).map_err(|e| format!("--daemon-config {}: {e}", config.display()))?;
    let mut findings = Findings::default();
    let name = config.display();
    let mode = meta.mode() & 0o7777;
    if mode & 0o133 != 0 {
        findings.record("permissions", Status::Fail, format!("{name} is mode {mode:04o}; CIS Docker Benchmark 3.18 wants 0644 or stricter: chmod 0644 {name}"));
    }
    if meta.uid() != 0 || meta.gid() != 0 {
        findings.record("ownership", Status::Fail, format!("{name} is owned by {}:{}; CIS Docker Benchmark 3.17 wants root:root: chown root:root {name}", meta.uid(), meta.gid()));
    }
    let empty = |findings: Findings| TargetReport {
        path: config.to_path_buf(),
        kind: Kind::Server,
        subject: None,
        not_after: None,
        days_left: None,
        checks: findings.into_checks(),
    };
    let value: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(value) => value,
        Err(err) => {
            findings.record(
                "daemon-config",
                Status::Fail,
                format!(
                    "{name} is not valid JSON (line {}, column {}: {err}): dockerd will not start",
                    err.line(),
                    err.column()
                ),
            );
            return Ok(empty(findings));
        }
    };
    let tcp_hosts: Vec<String> = value["hosts"]
        .as_array()
        .map(|hosts| {
            hosts
                .iter()
                .filter_map(|h| h.as_str())
                .filter(|h| h.starts_with("tcp://"))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    match (&value["tlsverify"], tcp_hosts.is_empty()) {
        (_, true) => findings.record("tlsverify", Status::Ok, "no tcp:// host in daemon.json (hosts given as -H flags are not visible here)"),
        (serde_json::Value::Bool(true), false) => findings.record("tlsverify", Status::Ok, "tcp hosts require client certificates"),
        (serde_json::Value::String(s), false) => findings.record("tlsverify", Status::Fail, format!("\"tlsverify\" is the string {s:?}: dockerd will not start; write true without quotes")),
        (_, false) => findings.record("tlsverify", Status::Fail, format!("{name} listens on {} without \"tlsverify\": true: dockerd may serve the API without TLS or without client certificates, which is remote root for anyone who reaches the port; add \"tlsverify\": true", tcp_hosts.join(", "))),
    }
    let path_of = |key: &str| value[key].as_str().map(str::to_string);
    let (Some(ca), Some(cert), Some(key)) =
        (path_of("tlscacert"), path_of("tlscert"), path_of("tlskey"))
    else {
        if !tcp_hosts.is_empty() {
            findings.record(
                "daemon-config",
                Status::Fail,
                format!("{name} has tcp hosts but not all of tlscacert, tlscert and tlskey"),
            );
        } else {
            findings.record("daemon-config", Status::Ok, "no TLS files configured");
        }
        return Ok(empty(findings));
    };
    findings.record(
        "daemon-config",
        Status::Ok,
        format!("{name} names {ca}, {cert}, {key}"),
    );
    let target = discover::daemon_config_target(config, &ca, &cert, &key);
    let mut report = checks::audit(&target, options);
    for check in std::mem::take(&mut report.checks) {
        findings.record(check.id, check.status, check.message);
    }
    report.checks = findings.into_checks();
    Ok(report)
}
