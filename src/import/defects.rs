//! What an imported PKI does not meet dockertls's standard in, and the command that fixes
//! each: verify's own checks (src/audit/) run on the source's files, each finding turned
//! into the dockertls command that replaces the certificate at fault.

use std::path::Path;

use crate::audit::{self, Kind, Options, Status, Target};

use super::source::{Role, Source};

/// One thing to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defect {
    /// What it is about: `the CA`, `server NAME`, `client NAME`.
    pub about: String,
    pub status: Status,
    /// verify's check id.
    pub check: &'static str,
    pub message: String,
    /// The command that fixes it.
    pub fix: String,
}

/// Checks that say nothing about the certificates themselves: the import writes every file
/// anew with dockertls's modes, and verify reports them on the imported copy.
const NOT_CARRIED_OVER: [&str; 5] = [
    "files",
    "permissions",
    "ownership",
    "daemon-config",
    "tlsverify",
];

/// The defects of `source`; `names[i]` is the name leaf `i` is imported as, `dir` the PKI
/// folder the fixes name, `hosts` the names the server must cover (`--host`).
pub fn find(
    source: &Source,
    names: &[String],
    dir: &Path,
    hosts: &[String],
    now: ::time::OffsetDateTime,
) -> Vec<Defect> {
    let options = Options {
        now,
        warn_days: crate::pki::Window::Rule,
        hosts: hosts.to_vec(),
    };
    let prefix = format!(
        "dockertls --dir {}",
        crate::render::shell_quote(&dir.to_string_lossy())
    );
    let rotate_ca = format!("{prefix} rotate --ca");
    let servers = source
        .leaves
        .iter()
        .filter(|l| l.role == Role::Server)
        .count();
    let mut defects: Vec<Defect> = Vec::new();
    let mut add = |about: String, check: &audit::Check, fix: String| {
        let message = without_own_fix(&check.message);
        if !defects
            .iter()
            .any(|d| d.check == check.id && d.message == message)
        {
            defects.push(Defect {
                about,
                status: check.status,
                check: check.id,
                message,
                fix,
            });
        }
    };
    for check in findings(&audit::checks::audit(&ca_target(source), &options)) {
        // Without the CA key, the key checks of the CA target read the certificate file.
        if source.ca_key.is_none() && check.id == "parse" {
            continue;
        }
        add("the CA".into(), &check, rotate_ca.clone());
    }
    for (leaf, name) in source.leaves.iter().zip(names) {
        let Some(key) = &leaf.key else { continue };
        let (kind, about, fix) = leaf_fix(leaf, name, &prefix, hosts, servers > 1);
        let target = Target {
            path: leaf.cert.path.clone(),
            kind,
            cert: leaf.cert.path.clone(),
            key: key.path.clone(),
            ca: Some(source.ca_cert.path.clone()),
            // The role is known (the import decided it), so verify's guess by file names
            // (a recipe folder holds both roles' names) stays out; the file checks `cis` adds
            // are not carried over.
            cis: true,
        };
        let options = Options {
            hosts: if kind == Kind::Server {
                hosts.to_vec()
            } else {
                Vec::new()
            },
            ..options.clone()
        };
        for check in findings(&audit::checks::audit(&target, &options)) {
            // The CA's own findings, seen through a leaf, are the CA's to fix.
            if check.id == "ca" {
                add("the CA".to_string(), &check, rotate_ca.clone());
            } else {
                add(about.clone(), &check, fix.clone());
            }
        }
    }
    defects
}

/// The CA as verify's target (without its key, the certificate stands in for it).
fn ca_target(source: &Source) -> Target {
    Target {
        path: source.ca_cert.path.clone(),
        kind: Kind::Ca,
        cert: source.ca_cert.path.clone(),
        key: source
            .ca_key
            .as_ref()
            .map_or_else(|| source.ca_cert.path.clone(), |k| k.path.clone()),
        ca: None,
        cis: false,
    }
}

/// What a leaf is checked as, how it is named, and the rotate that re-issues it.
fn leaf_fix(
    leaf: &super::source::Leaf,
    name: &str,
    prefix: &str,
    hosts: &[String],
    several_servers: bool,
) -> (Kind, String, String) {
    match leaf.role {
        Role::Server => {
            let selected = if several_servers {
                format!("--server {}", crate::render::shell_quote(name))
            } else {
                "--server".to_string()
            };
            // A certificate with no SAN (CN only) is re-issued with its CN as one.
            let mut wanted = hosts.to_vec();
            if let Some(cn) = cn_without_san(&leaf.cert)
                && !wanted.contains(&cn)
            {
                wanted.push(cn);
            }
            let allow: String = wanted
                .iter()
                .map(|h| format!(" --allow {}", crate::render::shell_quote(h)))
                .collect();
            (
                Kind::Server,
                format!("server {name}"),
                format!("{prefix} rotate {selected} --all{allow}"),
            )
        }
        Role::Client => (
            Kind::Client,
            format!("client {name}"),
            format!(
                "{prefix} rotate --client {} --all",
                crate::render::shell_quote(name)
            ),
        ),
    }
}

/// verify's message without the fix it names for a dockertls PKI made by init: the defect's
/// own fix line replaces it.
fn without_own_fix(message: &str) -> String {
    [
        "; re-create the CA with dockertls",
        "; re-issue it",
        "; re-issue the certificate",
    ]
    .iter()
    .filter_map(|clause| message.find(clause))
    .min()
    .map_or_else(|| message.to_string(), |at| message[..at].to_string())
}

/// The CN of a certificate that has no DNS or IP SAN (when its CN is a usable address).
fn cn_without_san(cert: &super::source::Material) -> Option<String> {
    let der = super::source::first_der(cert).ok()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&der).ok()?;
    if !crate::names::certificate_sans(&parsed).is_empty() {
        return None;
    }
    let cn = super::source::common_name(&parsed);
    crate::names::parse_address("--allow", &cn)
        .ok()
        .map(|a| a.address.to_string())
}

fn findings(report: &audit::TargetReport) -> Vec<audit::Check> {
    report
        .checks
        .iter()
        .filter(|c| c.status != Status::Ok && !NOT_CARRIED_OVER.contains(&c.id))
        .cloned()
        .collect()
}

/// The defects as text lines for the report (messages come from files: escaped).
pub fn text(defects: &[Defect]) -> String {
    let mut out = String::new();
    for d in defects {
        out.push_str(&format!(
            "  {} {} [{}]: {}\n    fix: {}\n",
            d.status.name().to_uppercase(),
            crate::escape::field(&d.about),
            d.check,
            crate::escape::field(&d.message),
            crate::escape::field(&d.fix)
        ));
    }
    out
}
