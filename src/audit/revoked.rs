//! Issue 13 follow-up: `verify` says which client folders of a dockertls PKI hold a revoked
//! certificate (check `revoked`), so an operator auditing who can reach the daemon is not told
//! such a folder is ok.
//!
//! The source of truth is the PKI's record (`"revoked"` in the state file), matched by serial:
//! the state file is the commit point (a revocation is saved there first, then signed into
//! each server folder's crl.pem), so it never lacks a revocation; it is readable without the
//! CA key and names the client, the time and the reason. The CRLs are copies derived from it
//! that can lag (a run stopped after the commit point, a server folder restored from a
//! backup): each server folder's crl.pem is read only to say whether the revocation has
//! reached it, since that file is what the plugin on the host enforces.
//!
//! A revoked certificate is a warning: a folder left on disk is not a defect of the PKI, but
//! it never reads ok, since dockerd alone still accepts that certificate. A revocation of a
//! serial that no folder holds (a removed client, a re-issued one) says nothing about a
//! client; once the PKI records any, each server folder's crl.pem must list them all (check
//! `crl`), since that is what travels to the host.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ::time::OffsetDateTime;

use super::{Check, Kind, Status, Target, TargetReport};
use crate::crl::{Revocation, parse_serial};
use crate::store::Folder;
use crate::store::layout::{CA_CERT, CLIENTS_DIR, CRL, Pki, SERVERS_DIR};
use crate::store::registry::State;
use crate::store::state::date;

/// The check's id (a contract: see README).
pub const ID: &str = "revoked";

/// The largest crl.pem or ca.pem read (the plugin's own limit).
const MAX_READ: u64 = 16 * 1024 * 1024;

/// What a PKI records about revocation, read once per PKI.
enum Records {
    /// No state file: a PKI of the first format (or no dockertls PKI), which has none.
    None,
    /// The state file or its revocations cannot be read: why, and what to do.
    Unreadable(crate::error::Error),
    Read(Known),
}

/// A PKI's revocations, the servers recorded as running the plugin, and what each server
/// folder's crl.pem says (None: missing, unreadable or not signed by its ca.pem), read only
/// once something is revoked.
struct Known {
    revoked: Vec<Revocation>,
    /// Each revoked serial's bytes -> its index in `revoked` (a fleet's thousand clients are
    /// each looked up once, not compared with every revocation).
    by_serial: BTreeMap<Vec<u8>, usize>,
    plugin_servers: Vec<String>,
    crls: BTreeMap<String, Option<CrlSeen>>,
}

/// What a server folder's crl.pem lists, and until when.
struct CrlSeen {
    serials: BTreeSet<Vec<u8>>,
    next_update: Option<OffsetDateTime>,
}

/// The check id on a server folder (shared with `verify --daemon-config`'s: see `authz`).
pub const CRL_ID: &str = "crl";

/// Adds the `revoked` check to each client target of a dockertls PKI in `targets` (whose
/// reports are `reports`, in the same order), and records the revocation in the report; once
/// the PKI records a revocation, the `crl` check to each of its server folders.
pub fn judge(targets: &[Target], reports: &mut [TargetReport], now: OffsetDateTime) {
    let mut pkis: BTreeMap<PathBuf, Records> = BTreeMap::new();
    for (target, report) in targets.iter().zip(reports.iter_mut()) {
        let Some((dir, name)) = pki_of(&target.path, target.kind) else {
            continue;
        };
        let records = pkis.entry(dir.clone()).or_insert_with(|| read(&dir));
        let check = match records {
            Records::Read(known) if target.kind == Kind::Server => match known.crls.get(&name) {
                Some(seen) => judge_server(known, &name, seen.as_ref(), now),
                None => continue,
            },
            Records::None => continue,
            Records::Unreadable(_) if target.kind == Kind::Server => continue,
            Records::Unreadable(why) => {
                let mut check = Check::new(
                    ID,
                    Status::Warn,
                    format!(
                        "whether client {name} is revoked is unknown: {}",
                        why.message()
                    ),
                );
                check.hint = why.hint_text().map(str::to_string);
                check
            }
            Records::Read(known) => {
                let Some(serial) = report.serial.clone() else {
                    // A certificate that does not parse fails `parse`; it has no serial to match.
                    continue;
                };
                let check = judge_client(known, &name, &serial, report.not_after, now);
                report.revocation = find(known, &serial).cloned();
                check
            }
        };
        report.checks.push(check);
        report.checks.sort_by_key(|c| {
            super::checks::IDS
                .iter()
                .position(|id| *id == c.id)
                .unwrap_or(super::checks::IDS.len())
        });
    }
}

/// The PKI folder and name of a client folder `DIR/clients/NAME` or a server folder
/// `DIR/servers/NAME` (a CA or any other target: None).
fn pki_of(folder: &Path, kind: Kind) -> Option<(PathBuf, String)> {
    let name = folder.file_name()?.to_str()?.to_string();
    let holders = folder.parent()?;
    let wanted = match kind {
        Kind::Client => CLIENTS_DIR,
        Kind::Server => SERVERS_DIR,
        Kind::Ca => return None,
    };
    if holders.file_name()? != wanted {
        return None;
    }
    let dir = holders.parent()?;
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    Some((dir.to_path_buf(), name))
}

/// Reads a PKI's records (read only: verify never migrates or writes).
fn read(dir: &Path) -> Records {
    let state = match State::load(dir) {
        Ok(None) => return Records::None,
        Ok(Some(state)) => state,
        Err(e) => return Records::Unreadable(e),
    };
    let record = match crate::store::authz::record(&state) {
        Ok(record) => record,
        Err(e) => return Records::Unreadable(e),
    };
    let flag = crate::authz_policy::keys::SERVER_AUTHZ;
    let plugin_servers = state
        .servers()
        .iter()
        .filter(|(_, entry)| entry.extra.get(flag) == Some(&true.into()))
        .map(|(name, _)| name.clone())
        .collect();
    // The CRLs matter only once something is revoked.
    let crls = if record.revoked.is_empty() {
        BTreeMap::new()
    } else {
        let pki = Pki::new(dir);
        state
            .servers()
            .keys()
            .filter(|name| std::fs::symlink_metadata(pki.server_dir(name)).is_ok())
            .map(|name| (name.clone(), crl_serials(&pki.server_dir(name))))
            .collect()
    };
    Records::Read(Known::new(record.revoked, plugin_servers, crls))
}

/// What the crl.pem of the server folder `folder` lists, once its signature checks out
/// against the ca.pem beside it (as the plugin reads them); None when it cannot be used.
fn crl_serials(folder: &Path) -> Option<CrlSeen> {
    let folder = Folder::open(folder).ok()?;
    let read = |name: &str| {
        folder.entry_stat(name).ok()??;
        let (bytes, _) = folder.read_file(name, MAX_READ + 1).ok()?;
        (bytes.len() as u64 <= MAX_READ).then_some(bytes)
    };
    let (crl, ca) = (read(CRL)?, read(CA_CERT)?);
    let info = crate::crl::read(&crl, &ca).ok()?;
    Some(CrlSeen {
        serials: info
            .serials
            .iter()
            .filter_map(|s| parse_serial(s).ok())
            .collect(),
        next_update: info.next_update,
    })
}

impl Known {
    fn new(
        revoked: Vec<Revocation>,
        plugin_servers: Vec<String>,
        crls: BTreeMap<String, Option<CrlSeen>>,
    ) -> Known {
        let by_serial = revoked
            .iter()
            .enumerate()
            .filter_map(|(index, r)| Some((parse_serial(&r.serial).ok()?, index)))
            .collect();
        Known {
            revoked,
            by_serial,
            plugin_servers,
            crls,
        }
    }
}

/// The revocation of `serial` (hex, as the PKI records serials), if there is one.
fn find<'a>(known: &'a Known, serial: &str) -> Option<&'a Revocation> {
    let bytes = parse_serial(serial).ok()?;
    known
        .by_serial
        .get(&bytes)
        .and_then(|&index| known.revoked.get(index))
}

/// The check of client `name` whose folder holds the certificate `serial`.
fn judge_client(
    known: &Known,
    name: &str,
    serial: &str,
    not_after: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Check {
    let Some(revocation) = find(known, serial) else {
        let earlier = known
            .revoked
            .iter()
            .rfind(|r| r.name == name)
            .map(|r| {
                format!(
                    " (an earlier certificate of {name}, serial {}, was revoked on {}; this one was issued since)",
                    r.serial,
                    date(r.at)
                )
            })
            .unwrap_or_default();
        return Check::new(ID, Status::Ok, format!("not revoked{earlier}"));
    };
    let bytes = parse_serial(serial).unwrap_or_default();
    let lagging: Vec<&str> = known
        .crls
        .iter()
        .filter(|(_, seen)| !seen.as_ref().is_some_and(|c| c.serials.contains(&bytes)))
        .map(|(server, _)| server.as_str())
        .collect();
    let head = format!(
        "client {name}'s certificate (serial {serial}) was revoked on {} (reason {})",
        date(revocation.at),
        revocation.reason.name()
    );
    let remove = format!(
        "remove the folder if it lingers: dockertls client remove {name} (to let {name} in again, issue a new certificate: dockertls rotate --client {name} --all)"
    );
    let (tail, first) = reach(known, &lagging, not_after, now);
    let mut check = Check::new(ID, Status::Warn, format!("{head}{tail}"));
    check.hint = Some(match first {
        Some(first) => format!("{first}; {remove}"),
        None => remove,
    });
    check
}

/// Where a revocation is in force, and what to do first (if anything)
/// before removing the folder.
fn reach(
    known: &Known,
    lagging: &[&str],
    not_after: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> (String, Option<String>) {
    let until = not_after.map(date).unwrap_or_else(|| "it expires".into());
    if not_after.is_some_and(|end| end <= now) {
        return (
            ", and it has expired too: no daemon accepts it".into(),
            None,
        );
    }
    if !lagging.is_empty() {
        return (
            format!(
                ", but the crl.pem of server {} does not list it (a run stopped after recording the revocation, or the folder was restored): the plugin there lets it in until {until}",
                lagging.join(", ")
            ),
            Some(
                "sign the list again into every server folder: dockertls crl refresh, then put each server folder on its host (dockertls deploy --all)"
                    .into(),
            ),
        );
    }
    if known.plugin_servers.is_empty() {
        return (
            format!(
                "; only the dockertls authorization plugin enforces a revocation (dockerd has none), and no server of this PKI is recorded as running it (deploy --authz records that): where it is not in place, this certificate opens the daemon until {until}"
            ),
            Some(
                "put the plugin on each daemon host (dockertls deploy SERVER [USER@]HOST --authz, or dockertls install --authz there)"
                    .into(),
            ),
        );
    }
    (
        format!(
            "; the dockertls plugin refuses it on server {} (deployed with --authz); a daemon without the plugin accepts it until {until}",
            known.plugin_servers.join(", ")
        ),
        None,
    )
}

/// The `crl` check of server folder `name`: its crl.pem must list every revocation the PKI
/// records (what the plugin on its host enforces) and be current.
fn judge_server(known: &Known, name: &str, seen: Option<&CrlSeen>, now: OffsetDateTime) -> Check {
    let total = known.revoked.len();
    let refresh = format!(
        "sign it again into every server folder: dockertls crl refresh, then put this folder on its host (dockertls deploy {name}, or install --authz there)"
    );
    let warn = |message: String| {
        let mut check = Check::new(CRL_ID, Status::Warn, message);
        check.hint = Some(refresh.clone());
        check
    };
    let Some(seen) = seen else {
        return warn(format!(
            "crl.pem of server {name} is missing, unreadable or not signed by the ca.pem beside it, while the PKI records {total} revoked certificate{}: the dockertls plugin on its host cannot enforce them from it",
            plural(total)
        ));
    };
    let mut unlisted: Vec<usize> = known
        .by_serial
        .iter()
        .filter(|(serial, _)| !seen.serials.contains(*serial))
        .map(|(_, &index)| index)
        .collect();
    unlisted.sort_unstable();
    let missing: Vec<&Revocation> = unlisted
        .iter()
        .filter_map(|&index| known.revoked.get(index))
        .collect();
    if !missing.is_empty() {
        // At most five named: the message stays one readable line.
        let mut named: Vec<String> = missing
            .iter()
            .take(5)
            .map(|r| format!("{} (serial {})", r.name, r.serial))
            .collect();
        if missing.len() > 5 {
            named.push(format!("{} more", missing.len() - 5));
        }
        return warn(format!(
            "crl.pem of server {name} does not list {} of the {total} certificates the PKI records as revoked ({}): the dockertls plugin on its host lets them in",
            missing.len(),
            named.join(", ")
        ));
    }
    match seen.next_update {
        Some(next) if next < now => warn(format!(
            "crl.pem of server {name} is past its nextUpdate ({}): it still revokes the {total} certificate{} it lists, but the plugin and verify --daemon-config warn",
            date(next),
            plural(total)
        )),
        Some(next) => Check::new(
            CRL_ID,
            Status::Ok,
            format!(
                "crl.pem lists the {total} certificate{} the PKI records as revoked, current until {}",
                plural(total),
                date(next)
            ),
        ),
        None => warn(format!(
            "crl.pem of server {name} has no nextUpdate: no one can tell whether it is current"
        )),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::time::macros::datetime;

    fn revocation(serial: &str, name: &str) -> Revocation {
        Revocation {
            serial: serial.into(),
            name: name.into(),
            at: datetime!(2026-11-30 12:00 UTC),
            reason: crate::crl::Reason::KeyCompromise,
        }
    }

    fn known(plugin: &[&str], crls: &[(&str, Option<&[u8]>)]) -> Known {
        Known::new(
            vec![revocation("0a0b", "bob"), revocation("ffee", "gone")],
            plugin.iter().map(|s| s.to_string()).collect(),
            crls.iter()
                .map(|(s, l)| {
                    let seen = l.map(|l| CrlSeen {
                        serials: [l.to_vec()].into(),
                        next_update: Some(datetime!(2026-12-30 0:00 UTC)),
                    });
                    (s.to_string(), seen)
                })
                .collect(),
        )
    }

    #[test]
    fn a_revoked_serial_warns_with_where_it_is_enforced_and_what_to_do() {
        let now = datetime!(2026-12-01 0:00 UTC);
        let end = Some(datetime!(2027-12-01 0:00 UTC));
        let none = known(&[], &[("web", Some(&[10, 11]))]);
        let check = judge_client(&none, "bob", "0A:0B", end, now);
        assert_eq!(check.status, Status::Warn);
        assert!(
            check.message.contains(
                "client bob's certificate (serial 0A:0B) was revoked on 2026-11-30 (reason key-compromise)"
            ),
            "{}",
            check.message
        );
        assert!(
            check
                .message
                .contains("no server of this PKI is recorded as running it"),
            "{}",
            check.message
        );
        assert!(check.message.contains("until 2027-12-01"));
        let hint = check.hint.unwrap();
        assert!(
            hint.contains("--authz") && hint.contains("dockertls client remove bob"),
            "{hint}"
        );

        let enforced = known(&["web"], &[("web", Some(&[10, 11]))]);
        let check = judge_client(&enforced, "bob", "0a0b", end, now);
        assert!(
            check.message.contains("refuses it on server web"),
            "{}",
            check.message
        );
        assert!(!check.hint.unwrap().contains("--authz"));

        let behind = known(&["web"], &[("web", Some(&[1])), ("db", None)]);
        let check = judge_client(&behind, "bob", "0a0b", end, now);
        assert!(
            check
                .message
                .contains("crl.pem of server db, web does not list it"),
            "{}",
            check.message
        );
        assert!(check.hint.unwrap().contains("dockertls crl refresh"));

        let expired = judge_client(&none, "bob", "0a0b", end, datetime!(2028-01-01 0:00 UTC));
        assert!(
            expired.message.contains("expired too"),
            "{}",
            expired.message
        );
        assert_eq!(expired.status, Status::Warn);
    }

    #[test]
    fn an_unrevoked_serial_is_ok_and_names_an_earlier_revocation() {
        let now = datetime!(2026-12-01 0:00 UTC);
        let check = judge_client(&known(&[], &[]), "bob", "0a0c", None, now);
        assert_eq!(check.status, Status::Ok);
        assert!(
            check
                .message
                .contains("earlier certificate of bob, serial 0a0b"),
            "{}",
            check.message
        );
        let alice = judge_client(&known(&[], &[]), "alice", "ffef", None, now);
        assert_eq!(alice.message, "not revoked");
    }

    #[test]
    fn a_server_crl_must_list_every_recorded_revocation_and_be_current() {
        let now = datetime!(2026-12-01 0:00 UTC);
        let seen = |serials: &[&[u8]], next| CrlSeen {
            serials: serials.iter().map(|s| s.to_vec()).collect(),
            next_update: Some(next),
        };
        let later = datetime!(2026-12-30 0:00 UTC);
        let known = known(&[], &[]);
        let full = judge_server(
            &known,
            "web",
            Some(&seen(&[&[10, 11], &[255, 238]], later)),
            now,
        );
        assert_eq!(
            (full.id, full.status),
            (CRL_ID, Status::Ok),
            "{}",
            full.message
        );
        let behind = judge_server(&known, "web", Some(&seen(&[&[10, 11]], later)), now);
        assert_eq!(behind.status, Status::Warn);
        assert!(behind.message.contains("does not list 1 of the 2 certificates the PKI records as revoked (gone (serial ffee))"), "{}", behind.message);
        assert!(behind.hint.unwrap().contains("dockertls crl refresh"));
        let missing = judge_server(&known, "web", None, now);
        assert!(
            missing
                .message
                .contains("is missing, unreadable or not signed"),
            "{}",
            missing.message
        );
        let stale = judge_server(
            &known,
            "web",
            Some(&seen(
                &[&[10, 11], &[255, 238]],
                now - ::time::Duration::days(1),
            )),
            now,
        );
        assert_eq!(stale.status, Status::Warn);
        assert!(
            stale.message.contains("past its nextUpdate (2026-11-30)"),
            "{}",
            stale.message
        );
    }

    #[test]
    fn only_folders_under_clients_belong_to_a_pki() {
        assert_eq!(
            pki_of(Path::new("/p/clients/bob"), Kind::Client),
            Some((PathBuf::from("/p"), "bob".into()))
        );
        assert_eq!(
            pki_of(Path::new("clients/bob"), Kind::Client),
            Some((PathBuf::from("."), "bob".into()))
        );
        assert_eq!(
            pki_of(Path::new("/p/servers/web"), Kind::Server),
            Some((PathBuf::from("/p"), "web".into()))
        );
        assert_eq!(pki_of(Path::new("/p/servers/bob"), Kind::Client), None);
        assert_eq!(pki_of(Path::new("/p/clients/bob"), Kind::Server), None);
        assert_eq!(pki_of(Path::new("/p/ca"), Kind::Ca), None);
        assert_eq!(pki_of(Path::new("bob"), Kind::Client), None);
    }
}
