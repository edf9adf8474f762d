//! Rendering verify's results: text for people, JSON for machines (each check rendered by
//! `findings`).

use serde_json::json;

use super::{Check, Status, TargetReport};

/// The worst status over all targets.
pub fn overall(reports: &[TargetReport]) -> Status {
    reports
        .iter()
        .map(TargetReport::status)
        .max()
        .unwrap_or(Status::Ok)
}

fn rfc3339(t: ::time::OffsetDateTime) -> String {
    t.format(&::time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The JSON document (see README for the contract).
pub fn json(reports: &[TargetReport]) -> serde_json::Value {
    let count = |status: Status| reports.iter().filter(|r| r.status() == status).count();
    let targets: Vec<serde_json::Value> = reports
        .iter()
        .map(|r| {
            let mut target = json!({
                "path": r.path.display().to_string(),
                "kind": r.kind.name(),
                "status": r.status().name(),
                "subject": r.subject,
                "not_after": r.not_after.map(rfc3339),
                "days_left": r.days_left,
                "checks": r.checks.iter().map(Check::json).collect::<Vec<_>>(),
            });
            // Only on a revoked certificate: other targets read as they always have.
            if let Some(revocation) = &r.revocation {
                target["revoked"] = json!({
                    "serial": revocation.serial,
                    "at": rfc3339(revocation.at),
                    "reason": revocation.reason.name(),
                });
            }
            target
        })
        .collect();
    json!({
        "status": overall(reports).name(),
        "summary": {"ok": count(Status::Ok), "warn": count(Status::Warn), "fail": count(Status::Fail)},
        "targets": targets,
    })
}

/// Text: a line per target, an indented line per check that is not ok, and a summary. Paths,
/// subjects and messages come from the files and their names: each is escaped (see `escape`),
/// so only the colour codes added here reach the terminal.
pub fn text(reports: &[TargetReport], colour: bool) -> String {
    let mut out = String::new();
    for r in reports {
        let expiry = match (r.not_after, r.days_left) {
            (Some(t), Some(days)) => format!(
                "expires {} ({days} days)",
                rfc3339(t).get(..10).unwrap_or_default()
            ),
            _ => "expiry unknown".to_string(),
        };
        out.push_str(&format!(
            "{}  {}  {}  {}  {}\n",
            crate::escape::path(&r.path),
            r.kind.name(),
            // A file may hold a 20 KB subject: cut (real names are far shorter).
            crate::escape::excerpt(
                r.subject
                    .as_deref()
                    .filter(|s| !s.is_empty())
                    .unwrap_or("(no subject)")
            ),
            expiry,
            r.status().painted(colour)
        ));
        for check in r.checks.iter().filter(|c| c.status != Status::Ok) {
            out.push_str(&check.text("    ", colour));
        }
    }
    let count = |status: Status| reports.iter().filter(|r| r.status() == status).count();
    out.push_str(&format!(
        "{} target{}: {} ok, {} warn, {} fail\n",
        reports.len(),
        if reports.len() == 1 { "" } else { "s" },
        count(Status::Ok),
        count(Status::Warn),
        count(Status::Fail)
    ));
    let revoked = reports.iter().filter(|r| r.revocation.is_some()).count();
    if revoked > 0 {
        out.insert_str(
            out.len() - 1,
            &format!(
                "; {revoked} revoked client certificate{}",
                if revoked == 1 { "" } else { "s" }
            ),
        );
    }
    out
}
