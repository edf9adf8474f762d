//! `dockertls verify`: audit cert dirs and daemon.json; the report (text or JSON) and the
//! monitoring-plugin exit code go back to `main` as an `Outcome`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::audit::checks::{self, Findings};
use crate::audit::discover::{self, Found};
use crate::audit::{Kind, Options, Status, Target, TargetReport, daemon_json, report};
use crate::cli::{VerifyArgs, VerifyFormat};
use crate::error::{Error, Exit};
use crate::findings::{Notice, Outcome};

/// Runs `verify` at time `now`. A refusal (bad arguments) is an error, which `main` reports
/// with exit 3; otherwise the report, the paths that could not be checked, and the exit code.
pub fn run(dir: &Path, args: &VerifyArgs, now: ::time::OffsetDateTime) -> Result<Outcome, Error> {
    let options = options(args, now)?;
    let paths: Vec<PathBuf> = if args.paths.is_empty() && args.daemon_config.is_none() {
        vec![dir.to_path_buf()]
    } else {
        args.paths.clone()
    };
    let mut notices = Vec::new();
    let found = discover_all(&paths, &mut notices);
    let mut reports: Vec<TargetReport> = found
        .targets
        .par_iter()
        .map(|t| checks::audit(t, &options))
        .collect();
    // Issue 13 follow-up: a client folder of a dockertls PKI whose certificate is revoked.
    crate::audit::revoked::judge(&found.targets, &mut reports, options.now);
    if let Some(config) = &args.daemon_config {
        match audit_daemon_config(config, &options) {
            Ok(report) => reports.push(report),
            Err(message) => notices.push(Notice::Error(Error::Refused(message))),
        }
    }
    let unknown = notices.iter().any(|n| matches!(n, Notice::Error(_)));
    let exit = if unknown || reports.is_empty() {
        Exit::CouldNotCheck
    } else {
        report::overall(&reports).exit()
    };
    let stdout = match args.format {
        VerifyFormat::Json => {
            let mut document = report::json(&reports);
            // Something could not be checked: a reader of "status" must not see "ok".
            if exit == Exit::CouldNotCheck {
                document["status"] = "unknown".into();
            }
            crate::findings::json_document(&document)
        }
        VerifyFormat::Text => report::text(&reports, crate::findings::colour_wanted()),
        // eco (issue 14)
        VerifyFormat::Prometheus => crate::audit::prometheus::render(&reports, exit, options.now),
    };
    Ok(Outcome {
        stdout,
        notices,
        exit,
    })
}

/// The validated options: `--warn-days` and every `--host`.
fn options(args: &VerifyArgs, now: ::time::OffsetDateTime) -> Result<Options, Error> {
    if let Some(days) = args.warn_days.filter(|&days| days < 0) {
        return Err(Error::refused(format!(
            "--warn-days {days}: give a number of days, 0 or more"
        )));
    }
    for host in &args.hosts {
        // A DNS name has at most 253 characters (and an IP address fewer).
        if host.is_empty()
            || host.len() > 253
            || host.chars().any(|c| c.is_whitespace() || c == '/')
        {
            return Err(Error::refused(format!(
                "--host '{}': give a bare DNS name or IP address (at most 253 characters)",
                crate::escape::value(host)
            )));
        }
    }
    Ok(Options {
        now,
        warn_days: crate::pki::Window::from_option(args.warn_days),
        hosts: args.hosts.clone(),
    })
}

/// The cert dirs in every path; a path that is missing, not a folder, or holds none is a
/// notice (and makes the exit code "could not check"), as is a folder that was not searched.
fn discover_all(paths: &[PathBuf], notices: &mut Vec<Notice>) -> Found {
    let mut found = Found::default();
    for path in paths {
        let before = found.targets.len();
        let problem = match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                discover::find(path, &mut found);
                (found.targets.len() == before).then(|| {
                    Error::refused(format!("no cert dir found in {}", crate::escape::path(path))).hint(
                        "give a folder holding ca.pem with server-cert.pem/server.pem/server-key.pem, cert.pem/key.pem, or ca-key.pem, or a tree of such folders",
                    )
                })
            }
            Ok(_) => Some(
                Error::refused(format!("{} is not a directory", crate::escape::path(path)))
                    .hint("give a cert dir or a tree holding cert dirs"),
            ),
            Err(err) => Some(Error::refused(format!(
                "{}: {err}",
                crate::escape::path(path)
            ))),
        };
        notices.extend(problem.map(Notice::Error));
    }
    for problem in &found.unreadable {
        notices.push(Notice::Warning(format!("not searched: {problem}")));
    }
    for path in paths {
        notices.extend(interrupted_run(path).map(Notice::Error));
    }
    found
}

/// A dockertls run stopped half-way in the PKI folder `path` (a staging folder holding its
/// record of swaps): some folders may be new and others old (after `rotate --ca`, leaves
/// signed by a CA that is no longer ca/ca.pem). Any command that changes the PKI finishes it.
fn interrupted_run(path: &Path) -> Option<Error> {
    let entries = std::fs::read_dir(path).ok()?;
    let staging = entries.flatten().find(|entry| {
        entry
            .file_name()
            .to_string_lossy()
            .starts_with(crate::store::STAGING_PREFIX)
            && std::fs::symlink_metadata(entry.path().join(crate::store::workspace::SWAP_RECORD))
                .is_ok()
    })?;
    Some(
        Error::refused(format!(
            "{}: a dockertls run was stopped half-way (it left {}): some folders may be new and others old",
            crate::escape::path(path),
            crate::escape::path(&staging.path())
        ))
        .hint(format!(
            "run dockertls --dir {} rotate to finish it, then verify again",
            crate::render::shell_quote(&path.display().to_string())
        )),
    )
}

/// Reads a daemon.json: what dockerd would expose is judged as dockerd reads the file (see
/// `audit::daemon_json`); the files it names are audited with the CIS Docker Benchmark checks
/// 3.9–3.14, their folders for who can write them, daemon.json with 3.17/3.18 and its folder
/// with 3.5/3.6.
fn audit_daemon_config(config: &Path, options: &Options) -> Result<TargetReport, String> {
    let (meta, bytes) = read_daemon_config(config)?;
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
        serial: None,
        revocation: None,
        checks: findings.into_checks(),
    };
    if let Some(folder) = config.parent() {
        check_config_folder(folder, &mut findings);
    }
    // A linked daemon.json is as safe as the folder of the file it leads to.
    if let Some(real) = std::fs::canonicalize(config)
        .ok()
        .and_then(|real| real.parent().map(Path::to_path_buf))
        .filter(|real| Some(real.as_path()) != config.parent())
    {
        check_config_folder(&real, &mut findings);
    }
    // Issue 13: the authorization plugin and its revocation list.
    crate::audit::authz::judge(&bytes, &name.to_string(), options.now, &mut findings);
    let Some(files) = daemon_json::judge(&bytes, &name.to_string(), &mut findings) else {
        return Ok(empty(findings));
    };
    let target = discover::daemon_config_target(config, &files.ca, &files.cert, &files.key);
    check_tls_folders(&target, &mut findings);
    let mut report = checks::audit(&target, options);
    for check in std::mem::take(&mut report.checks) {
        findings.record(check.id, check.status, check.message);
    }
    report.checks = findings.into_checks();
    Ok(report)
}

/// Reads daemon.json through one opened file (so the checks and the bytes are of the same file),
/// never blocking on a FIFO and never reading more than verify's file size limit.
fn read_daemon_config(config: &Path) -> Result<(std::fs::Metadata, Vec<u8>), String> {
    use std::io::Read;
    let fail = |why: String| format!("--daemon-config: {why}");
    let (file, meta) = crate::userfile::open_regular(config).map_err(|e| fail(e.to_string()))?;
    let limit = crate::audit::material::MAX_FILE_SIZE;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("cannot read {}: {e}", crate::escape::path(config))))?;
    if bytes.len() as u64 > limit {
        return Err(fail(format!(
            "{} is over {limit} bytes: not a daemon.json file",
            crate::escape::path(config)
        )));
    }
    Ok((meta, bytes))
}

/// CIS Docker Benchmark 3.5/3.6: the folder holding daemon.json (/etc/docker) is root:root and
/// 0755 or stricter, or anyone who can write there can swap daemon.json.
fn check_config_folder(folder: &Path, findings: &mut Findings) {
    let folder = if folder.as_os_str().is_empty() {
        Path::new(".")
    } else {
        folder
    };
    let name = folder.display();
    let Ok(meta) = std::fs::metadata(folder) else {
        return;
    };
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        findings.record("permissions", Status::Fail, format!("folder {name} (holding daemon.json) is mode {mode:04o}, writable by group or others: they can replace daemon.json; CIS Docker Benchmark 3.6 wants 0755 or stricter: chmod 0755 {name}"));
    }
    if meta.uid() != 0 || meta.gid() != 0 {
        findings.record("ownership", Status::Fail, format!("folder {name} (holding daemon.json) is owned by {}:{}; CIS Docker Benchmark 3.5 wants root:root: chown root:root {name}", meta.uid(), meta.gid()));
    }
}

/// The folders holding the TLS files, and every folder above them, must be owned by root (or
/// whoever runs verify) and writable by nobody else: whoever can write to one of them can
/// swap the CA, the certificate or the key under dockerd. A sticky root-owned folder such as
/// /tmp stops others from renaming what is inside, which is enough for certificates but not
/// for the key's folder (another user could have made it, or can fill it).
fn check_tls_folders(target: &Target, findings: &mut Findings) {
    // The owner of /proc/self is this process's effective user (std has no geteuid).
    let me = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
    let mut checked: Vec<(PathBuf, bool)> = Vec::new();
    let files = [(&target.key, true), (&target.cert, false)]
        .into_iter()
        .chain(target.ca.as_ref().map(|ca| (ca, false)));
    for (file, is_key) in files {
        let Some(parent) = file.parent() else {
            continue;
        };
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        // The folders as written and, through any link, where they really are.
        let mut folders: Vec<PathBuf> = parent.ancestors().map(Path::to_path_buf).collect();
        if let Ok(real) = std::fs::canonicalize(parent) {
            folders.extend(real.ancestors().map(Path::to_path_buf));
        }
        if let Some(real) = std::fs::canonicalize(file)
            .ok()
            .and_then(|f| f.parent().map(Path::to_path_buf))
        {
            folders.extend(real.ancestors().map(Path::to_path_buf));
        }
        for folder in folders {
            if folder.as_os_str().is_empty()
                || checked.iter().any(|(f, k)| *f == folder && (*k || !is_key))
            {
                continue;
            }
            checked.push((folder.clone(), is_key));
            let Ok(meta) = std::fs::metadata(&folder) else {
                continue;
            };
            let name = folder.display();
            let mode = meta.mode() & 0o7777;
            let sticky_root = mode & 0o1000 != 0 && meta.uid() == 0;
            let file_name = file.display();
            if mode & 0o022 != 0 && (is_key || !sticky_root) {
                let fix = if sticky_root {
                    format!(
                        "{name} is shared (sticky): another user may have made or can fill the key's folder; keep the TLS files in a root-only folder such as /etc/docker/tls (0755)"
                    )
                } else {
                    format!(
                        "chmod go-w {name}, or keep the TLS files in a root-only folder such as /etc/docker/tls (0755)"
                    )
                };
                findings.record("permissions", Status::Fail, format!("folder {name}, on the path to {file_name}, is mode {mode:04o}, writable by group or others: they can swap the TLS files under dockerd; {fix}"));
            }
            if meta.uid() != 0 && meta.uid() != me {
                findings.record("ownership", Status::Fail, format!("folder {name}, on the path to {file_name}, is owned by user {}: that user can swap the TLS files under dockerd; chown root:root {name}", meta.uid()));
            }
        }
    }
}
