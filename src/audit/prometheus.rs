//! `verify --format prometheus`: node_exporter textfile-collector metrics (the Prometheus text
//! exposition format, 0.0.4), all named `dockertls_*`. Every series of a run is written in one
//! document, so a collector that reads the file between two runs sees one run or the other (the
//! units in contrib/systemd write it to a temporary name, then rename it).
//!
//! Per target (labels `path`, `kind`): its certificate's expiry time and the time left (in
//! seconds, Prometheus's base unit: `promtool check metrics` refuses a `_days` metric), its status;
//! per target and check id: that check's worst status (0 ok, 1 warning, 2 failure). For the run:
//! the overall status (3 when something could not be checked, as verify's exit code) and when it
//! ran.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::{Status, TargetReport};
use crate::error::Exit;

fn status_value(status: Status) -> u8 {
    match status {
        Status::Ok => 0,
        Status::Warn => 1,
        Status::Fail => 2,
    }
}

/// A label value: control characters escaped visibly first (see `escape`: a path may hold
/// any), then the exposition format's own escapes (backslash and double quote; a line break
/// cannot remain).
fn label(value: &str) -> String {
    crate::escape::field(value)
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
}

/// One metric family: its HELP and TYPE lines, then its samples (none: only the header).
fn family(out: &mut String, name: &str, help: &str, samples: &[(String, String)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

/// Each report with its labels. Two targets with the same path and kind would be one series
/// twice, which a collector rejects: the later ones get "#2", "#3" appended to their path.
fn labelled(reports: &[TargetReport]) -> Vec<(String, &TargetReport)> {
    let mut seen: BTreeSet<(String, &'static str)> = BTreeSet::new();
    let mut targets = Vec::new();
    for report in reports {
        let path = report.path.display().to_string();
        let mut shown = path.clone();
        let mut n = 1;
        while !seen.insert((shown.clone(), report.kind.name())) {
            n += 1;
            shown = format!("{path}#{n}");
        }
        let labels = format!("path=\"{}\",kind=\"{}\"", label(&shown), report.kind.name());
        targets.push((labels, report));
    }
    targets
}

/// The metrics document for verify's `reports`, its exit code, at `now`.
pub fn render(reports: &[TargetReport], exit: Exit, now: ::time::OffsetDateTime) -> String {
    let targets = labelled(reports);
    let mut expiry = Vec::new();
    let mut remaining = Vec::new();
    let mut status = Vec::new();
    let mut checks = Vec::new();
    for (labels, report) in &targets {
        if let Some(not_after) = report.not_after {
            expiry.push((labels.clone(), not_after.unix_timestamp().to_string()));
            let left = not_after.unix_timestamp() - now.unix_timestamp();
            remaining.push((labels.clone(), left.to_string()));
        }
        status.push((labels.clone(), status_value(report.status()).to_string()));
        let mut worst: BTreeMap<&str, Status> = BTreeMap::new();
        for check in &report.checks {
            let entry = worst.entry(check.id).or_insert(check.status);
            *entry = (*entry).max(check.status);
        }
        for (id, check_status) in worst {
            checks.push((
                format!("{labels},check=\"{}\"", label(id)),
                status_value(check_status).to_string(),
            ));
        }
    }
    let mut out = String::new();
    family(
        &mut out,
        "dockertls_verify_status",
        "Worst status of the run: 0 ok, 1 warning, 2 failure, 3 something could not be checked (verify's exit code).",
        &[(String::new(), exit.code().to_string())],
    );
    family(
        &mut out,
        "dockertls_verify_timestamp_seconds",
        "When verify ran, in seconds since the epoch.",
        &[(String::new(), now.unix_timestamp().to_string())],
    );
    family(
        &mut out,
        "dockertls_verify_targets",
        "Cert dirs and daemon.json files checked.",
        &[(String::new(), reports.len().to_string())],
    );
    family(
        &mut out,
        "dockertls_certificate_expiry_timestamp_seconds",
        "When the target's certificate expires (notAfter), in seconds since the epoch.",
        &expiry,
    );
    family(
        &mut out,
        "dockertls_certificate_remaining_seconds",
        "Seconds until the target's certificate expires, negative once expired (days left: divide by 86400).",
        &remaining,
    );
    family(
        &mut out,
        "dockertls_target_status",
        "Worst check of the target: 0 ok, 1 warning, 2 failure.",
        &status,
    );
    family(
        &mut out,
        "dockertls_check_status",
        "Worst status of each check of the target: 0 ok, 1 warning, 2 failure (see verify's check ids).",
        &checks,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Check, Kind};

    fn report(path: &str, kind: Kind, checks: Vec<Check>) -> TargetReport {
        TargetReport {
            path: path.into(),
            kind,
            subject: Some("x".into()),
            not_after: Some(::time::macros::datetime!(2027-01-01 0:00 UTC)),
            days_left: Some(31),
            serial: None,
            revocation: None,
            checks,
        }
    }

    #[test]
    fn each_target_and_check_is_one_series() {
        let now = ::time::macros::datetime!(2026-12-01 0:00 UTC);
        let reports = [
            report(
                "/pki/server",
                Kind::Server,
                vec![
                    Check::new("expiry", Status::Warn, "soon"),
                    Check::new("permissions", Status::Ok, ""),
                    Check::new("permissions", Status::Fail, "0644"),
                ],
            ),
            report("/pki/server", Kind::Server, vec![]),
            report("/a\"b\\c\x1b", Kind::Client, vec![]),
        ];
        let text = render(&reports, Exit::RefusedOrFailure, now);
        let has = |line: &str| text.lines().any(|l| l == line);
        assert!(has("dockertls_verify_status 2"), "{text}");
        assert!(
            has("dockertls_verify_timestamp_seconds 1796083200"),
            "{text}"
        );
        assert!(has(
            "dockertls_certificate_expiry_timestamp_seconds{path=\"/pki/server\",kind=\"server\"} 1798761600"
        ));
        assert!(has(
            "dockertls_certificate_remaining_seconds{path=\"/pki/server\",kind=\"server\"} 2678400"
        ));
        assert!(has(
            "dockertls_check_status{path=\"/pki/server\",kind=\"server\",check=\"permissions\"} 2"
        ));
        assert!(has(
            "dockertls_check_status{path=\"/pki/server\",kind=\"server\",check=\"expiry\"} 1"
        ));
        assert!(has(
            "dockertls_target_status{path=\"/pki/server#2\",kind=\"server\"} 0"
        ));
        assert!(
            has("dockertls_target_status{path=\"/a\\\"b\\\\c\\\\u001b\",kind=\"client\"} 0"),
            "{text}"
        );
    }
}
