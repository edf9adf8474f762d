//! The audit log: one JSON line per AuthZReq decision (time, CN, serial, SHA-256, role,
//! method, URI, allow or deny, why), on stderr (the journal) or in a file of bounded size that
//! is rotated to FILE.1.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::decide::Decision;
use crate::error::Error;

/// Where the lines go.
#[derive(Debug)]
enum Sink {
    Stderr,
    File {
        path: PathBuf,
        file: std::fs::File,
        size: u64,
        max: u64,
        failing: bool,
    },
}

/// The audit log (shared by every connection).
#[derive(Debug)]
pub struct AuditLog {
    sink: Mutex<Sink>,
}

/// Opens (creates 0600, appends; never through a link) an audit log file.
fn open_log(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
}

impl AuditLog {
    /// Lines on stderr.
    pub fn stderr() -> AuditLog {
        AuditLog {
            sink: Mutex::new(Sink::Stderr),
        }
    }

    /// Lines appended to `path`; past `max` bytes it is renamed to `path.1` (replacing the
    /// previous one) and a new file is started.
    pub fn file(path: &Path, max: u64) -> Result<AuditLog, Error> {
        let file = open_log(path).map_err(|err| {
            Error::refused(format!(
                "cannot open the audit log {}: {err}",
                crate::escape::path(path)
            ))
            .hint("give --audit-log a file in a folder that exists (not a link)")
        })?;
        if !file.metadata().is_ok_and(|meta| meta.is_file()) {
            return Err(Error::refused(format!(
                "the audit log {} is not a regular file",
                crate::escape::path(path)
            )));
        }
        let size = file.metadata().map(|meta| meta.len()).unwrap_or(0);
        Ok(AuditLog {
            sink: Mutex::new(Sink::File {
                path: path.to_path_buf(),
                file,
                size,
                max,
                failing: false,
            }),
        })
    }

    /// Writes the line of one decision.
    pub fn record(&self, decision: &Decision, time: &str) {
        let subject = &decision.subject;
        let value = serde_json::json!({
            "time": time,
            "cn": subject.cn,
            "serial": subject.serial,
            "sha256": subject.sha256,
            "role": subject.role,
            "method": decision.method,
            "uri": decision.uri,
            "decision": if decision.allow { "allow" } else { "deny" },
            "why": decision.why,
        });
        // serde_json escapes only C0 controls: escape the rest as well (C1, bidi overrides).
        let mut line = crate::escape::field(&value.to_string()).into_owned();
        line.push('\n');
        let mut sink = match self.sink.lock() {
            Ok(sink) => sink,
            Err(poisoned) => poisoned.into_inner(),
        };
        match &mut *sink {
            Sink::Stderr => {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
            Sink::File {
                path,
                file,
                size,
                max,
                failing,
            } => {
                if *size > 0 && *size + line.len() as u64 > *max {
                    rotate(path, file, size);
                }
                match file.write_all(line.as_bytes()) {
                    Ok(()) => {
                        *size += line.len() as u64;
                        *failing = false;
                    }
                    Err(err) if !*failing => {
                        *failing = true;
                        crate::escape::print_stderr_line(&format!(
                            "dockertls authz: warning: cannot write the audit log {}: {err}",
                            crate::escape::path(path)
                        ));
                    }
                    Err(_) => {}
                }
            }
        }
    }
}

/// FILE → FILE.1, and a new FILE.
fn rotate(path: &Path, file: &mut std::fs::File, size: &mut u64) {
    let mut old = path.as_os_str().to_owned();
    old.push(".1");
    if std::fs::rename(path, &old).is_ok()
        && let Ok(new) = open_log(path)
    {
        *file = new;
        *size = 0;
    }
}
