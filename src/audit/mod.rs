//! `verify`'s engine: find cert dirs, run the checks on each, and report. Check ids and the
//! JSON shape are a contract (see README).

pub mod authz;
pub mod checks;
pub mod daemon_json;
pub mod discover;
pub mod material;
// eco (issue 14): verify --format prometheus.
pub mod prometheus;
pub mod report;
// Issue 13 follow-up: a client whose certificate the PKI has revoked.
pub mod revoked;

use std::path::PathBuf;

/// What a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Ca,
    Server,
    Client,
}

impl Kind {
    /// The JSON spelling.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ca => "ca",
            Kind::Server => "server",
            Kind::Client => "client",
        }
    }
}

pub use crate::findings::{Check, Status, worst};

/// The files of one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The folder (or, for --daemon-config, the daemon.json) the target was found at.
    pub path: PathBuf,
    pub kind: Kind,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The CA bundle that verifies `cert` (none for a CA target).
    pub ca: Option<PathBuf>,
    /// Apply the CIS Docker Benchmark file checks (3.9–3.14): with --daemon-config.
    pub cis: bool,
}

/// The outcome for one target.
#[derive(Debug, Clone)]
pub struct TargetReport {
    pub path: PathBuf,
    pub kind: Kind,
    pub subject: Option<String>,
    pub not_after: Option<::time::OffsetDateTime>,
    pub days_left: Option<i64>,
    /// The certificate's serial number, lower-case hex of its DER bytes (as the PKI records it).
    pub serial: Option<String>,
    /// The PKI's record of this certificate's revocation, when it is revoked (see `revoked`).
    pub revocation: Option<crate::crl::Revocation>,
    pub checks: Vec<Check>,
}

impl TargetReport {
    /// A target's status is its worst check.
    pub fn status(&self) -> Status {
        worst(&self.checks)
    }
}

/// What the checks compare against.
#[derive(Debug, Clone)]
pub struct Options {
    pub now: ::time::OffsetDateTime,
    /// When a certificate is close enough to its end to warn: the renewal rule, or
    /// `--warn-days N`.
    pub warn_days: crate::pki::Window,
    /// Names or IPs a server certificate must cover (`--host`).
    pub hosts: Vec<String>,
}
