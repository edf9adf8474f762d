//! `install --rollback`: puts back what the last install replaced (the TLS files, daemon.json,
//! the drop-in) and removes what it created where nothing was before, with install's own
//! journal (see `transaction`): all or nothing, and a run killed half-way is finished or undone
//! by the next one.
//!
//! Every install that changes something also writes, in the same transaction, a record of what
//! it did: `/etc/docker/.dockertls-install.last` (JSON, 0600): for each file it switched, the
//! SHA-256 of what it wrote and what was there before: its backup `NAME.<stamp>.bak` (a second
//! name of the original inode: contents, mode and owner), nothing (it created the file), or
//! only another mode. A rollback replaces it, in its own transaction, with a record that says
//! it was rolled back: one level of undo, so that running `install --rollback` again (say,
//! after a rollback killed just as it finished) never undoes the install before it as well.
//!
//! A file changed since the install (its contents are not what install wrote) is not rolled
//! back over: the whole rollback is refused, nothing changed.

use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::confined::{Dir, Root};
use super::transaction::{self, Applied, Change, JOURNAL_DIR, Op};
use crate::error::Error;

/// The record of the last install, in the journal folder.
pub const RECORD: &str = ".dockertls-last-install.json";

/// What was at a path before the install.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Before {
    /// Nothing: install created the file.
    Nothing,
    /// The original file, now under this backup name in the same folder.
    Backup(String),
    /// The same contents with this mode (install changed only the mode or the owner).
    Mode(u32),
}

/// One file the install switched.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    dir: String,
    name: String,
    /// Of what install wrote (none for the record itself).
    sha256: Option<String>,
    before: Before,
}

fn sha256_hex(bytes: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn to_json(entries: &[Entry], created_dirs: &[String]) -> String {
    let files: Vec<Value> = entries
        .iter()
        .map(|e| {
            let before = match &e.before {
                Before::Nothing => json!("nothing"),
                Before::Backup(name) => json!({"backup": name}),
                Before::Mode(mode) => json!({"mode": mode}),
            };
            json!({"dir": e.dir, "name": e.name, "sha256": e.sha256, "before": before})
        })
        .collect();
    json!({"version": 1, "created_dirs": created_dirs, "files": files}).to_string() + "\n"
}

/// The record a rollback leaves: the install at `stamp` was rolled back.
fn rolled_back(stamp: &str) -> String {
    json!({"version": 1, "rolled_back": stamp}).to_string() + "\n"
}

/// Parses a record, accepting only plain names in absolute folders, and backups named as
/// install names them.
fn parse(text: &[u8]) -> Option<Record> {
    let value: Value = serde_json::from_slice(text).ok()?;
    if value["version"] != 1 {
        return None;
    }
    if let Some(stamp) = value["rolled_back"].as_str() {
        return Some(Record::RolledBack(stamp.to_string()));
    }
    let plain = |n: &str| !n.is_empty() && !n.contains('/') && n != "." && n != "..";
    let folder = |d: &str| d.starts_with('/') && d.split('/').all(|p| p != "." && p != "..");
    let created_dirs: Vec<String> = value["created_dirs"]
        .as_array()?
        .iter()
        .map(|d| d.as_str().filter(|d| folder(d)).map(str::to_string))
        .collect::<Option<_>>()?;
    let mut entries = Vec::new();
    for file in value["files"].as_array()? {
        let dir = file["dir"].as_str().filter(|d| folder(d))?.to_string();
        let name = file["name"].as_str().filter(|n| plain(n))?.to_string();
        let sha256 = match &file["sha256"] {
            Value::Null => None,
            other => Some(other.as_str()?.to_string()),
        };
        let before = match &file["before"] {
            Value::String(s) if s == "nothing" => Before::Nothing,
            other => match (other["backup"].as_str(), other["mode"].as_u64()) {
                (Some(b), None)
                    if plain(b) && b.starts_with(&format!("{name}.")) && b.ends_with(".bak") =>
                {
                    Before::Backup(b.to_string())
                }
                (None, Some(mode)) if mode <= 0o7777 => Before::Mode(mode as u32),
                _ => return None,
            },
        };
        entries.push(Entry {
            dir,
            name,
            sha256,
            before,
        });
    }
    Some(Record::Install {
        entries,
        created_dirs,
    })
}

/// A parsed record.
enum Record {
    /// What the last install did.
    Install {
        entries: Vec<Entry>,
        created_dirs: Vec<String>,
    },
    /// The last install was rolled back at this time.
    RolledBack(String),
}

fn copy<'a>(change: &Change<'a>) -> Change<'a> {
    Change {
        dir: change.dir.clone(),
        name: change.name.clone(),
        contents: change.contents,
        mode: change.mode,
        existed: change.existed,
        backed_up: change.backed_up,
        dir_mode: change.dir_mode,
    }
}

/// `transaction::apply`, with the record of what this install replaced switched in the same
/// transaction (last). Call with the journal folder locked and recovered.
pub fn apply_recorded(
    root: &Root,
    journal_dir: &Dir,
    changes: &[Change<'_>],
    stamp: &str,
) -> Result<Applied, Error> {
    let (backups, created_dirs) = transaction::preview(root, changes, stamp)?;
    let mut entries = Vec::new();
    for (change, backup) in changes.iter().zip(backups) {
        let before = match (change.existed, backup) {
            (false, _) => Before::Nothing,
            (true, Some(backup)) => Before::Backup(backup),
            (true, None) => {
                let old = match root.dir(&change.dir)? {
                    Some(dir) => dir.read(&change.name)?,
                    None => None,
                };
                Before::Mode(old.map_or(change.mode, |old| old.mode))
            }
        };
        entries.push(Entry {
            dir: change.dir.clone(),
            name: change.name.clone(),
            sha256: Some(sha256_hex(change.contents)),
            before,
        });
    }
    let current = journal_dir.entry(RECORD)?;
    let text = to_json(&entries, &created_dirs);
    let mut all: Vec<Change<'_>> = changes.iter().map(copy).collect();
    all.push(Change {
        dir: JOURNAL_DIR.to_string(),
        name: RECORD.to_string(),
        contents: text.as_bytes(),
        mode: 0o600,
        existed: current.is_some(),
        backed_up: false,
        dir_mode: 0o755,
    });
    transaction::apply(root, journal_dir, &all, stamp)
}

/// Runs `install --rollback` under `root`; returns the report.
pub fn run(root: &Root, stamp: &str) -> Result<String, Error> {
    let record_path = root.shown(&format!("{JOURNAL_DIR}/{RECORD}"));
    let nothing = || {
        Error::refused(format!(
            "nothing to roll back: no install is recorded ({} does not exist)",
            record_path.display()
        ))
    };
    // Checked before the lock, which creates the journal folder.
    let Some(journal_dir) = root.dir(JOURNAL_DIR)? else {
        return Err(nothing());
    };
    if journal_dir.entry(RECORD)?.is_none() && transaction::pending(root)?.is_none() {
        return Err(nothing());
    }
    let journal_dir = transaction::lock(root)?;
    if let Some(recovered) = transaction::recover_run(root, &journal_dir)? {
        eprintln!("note: {}", recovered.line);
        // The rollback asked for is that one, now done: not the install before it as well.
        if recovered.finished_rollback {
            return Ok(String::new());
        }
    }
    let Some(file) = journal_dir.read(RECORD)? else {
        return Err(nothing());
    };
    let parsed = parse(&file.contents).ok_or_else(|| {
        Error::refused(format!(
            "{} is not a record dockertls can read: nothing was rolled back",
            record_path.display()
        ))
        .hint("put the files back by hand from their .bak backups, then remove it")
    })?;
    let (entries, created_dirs) = match parsed {
        Record::Install {
            entries,
            created_dirs,
        } => (entries, created_dirs),
        Record::RolledBack(stamp) => {
            return Err(Error::refused(format!(
                "nothing to roll back: the last install was rolled back already ({})",
                crate::escape::value(&stamp)
            )));
        }
    };
    let planned = plan(root, &entries)?;
    let mut changes: Vec<Change<'_>> = planned
        .iter()
        .filter_map(|p| match p {
            Planned::Mode {
                entry,
                mode,
                contents,
            } => Some(Change {
                dir: entry.dir.clone(),
                name: entry.name.clone(),
                contents,
                mode: *mode,
                existed: true,
                backed_up: false,
                dir_mode: 0o755,
            }),
            _ => None,
        })
        .collect();
    // The record says the install was rolled back: switched last.
    let marker = rolled_back(stamp);
    changes.push(Change {
        dir: JOURNAL_DIR.to_string(),
        name: RECORD.to_string(),
        contents: marker.as_bytes(),
        mode: 0o600,
        existed: true,
        backed_up: false,
        dir_mode: 0o755,
    });
    let (ops, report) = ops_of(&planned, &changes);
    transaction::apply_rollback(root, &journal_dir, &ops, stamp, &created_dirs)?;
    Ok(report)
}

/// Whether a file is older than another: both numbers when it is.
type Older = fn(&[u8], &[u8]) -> Option<(u64, u64)>;

/// Review item 2: a crl.pem (or authz.json) whose backup is an older list of the same CA than the installed
/// one is kept (putting it back would let the clients revoked since in again); the line that
/// says so.
fn newer_crl_kept(
    entry: &Entry,
    dir: Option<&Dir>,
    backup: &str,
    current: &Option<super::confined::FileRead>,
) -> Result<Option<String>, Error> {
    let (Some(dir), Some(current)) = (dir, current) else {
        return Ok(None);
    };
    let older: Older = match entry.name.as_str() {
        crate::store::layout::CRL => crate::crl::is_older,
        crate::store::layout::AUTHZ_POLICY => crate::authz_policy::is_older,
        _ => return Ok(None),
    };
    let Some(old) = dir.read(backup)? else {
        return Ok(None);
    };
    Ok(older(&old.contents, &current.contents).map(|(old, new)| {
        format!(
            "kept {}/{}: it is #{new}, and its backup {backup} is the older #{old}, which would let clients revoked since in again or undo the role changes since (removed the backup)",
            entry.dir, entry.name
        )
    }))
}

/// A checked step of the rollback.
enum Planned<'a> {
    Restore(&'a Entry, String),
    /// A newer crl.pem kept, its older backup removed; the line that says so.
    Keep(&'a Entry, String, String),
    Remove(&'a Entry),
    Mode {
        entry: &'a Entry,
        mode: u32,
        contents: Zeroizing<Vec<u8>>,
    },
}

/// Checks every file before anything changes: each is still what install wrote, each backup
/// is there.
fn plan<'a>(root: &Root, entries: &'a [Entry]) -> Result<Vec<Planned<'a>>, Error> {
    let mut planned = Vec::new();
    for entry in entries {
        let shown = root.shown(&format!("{}/{}", entry.dir, entry.name));
        let dir = root.dir(&entry.dir)?;
        let current = match &dir {
            Some(dir) => dir.read(&entry.name)?,
            None => None,
        };
        if let (Some(sha256), Some(current)) = (&entry.sha256, &current)
            && sha256_hex(&current.contents) != *sha256
        {
            return Err(Error::refused(format!(
                "{} changed since the last install (it is not what install wrote): nothing was rolled back",
                shown.display()
            ))
            .hint("compare it with what you need, and put files back by hand from their .bak backups"));
        }
        match &entry.before {
            Before::Backup(backup) => {
                let there = match &dir {
                    Some(dir) => dir.entry(backup)?,
                    None => None,
                };
                if !there.is_some_and(|e| e.kind == rustix::fs::FileType::RegularFile) {
                    return Err(Error::refused(format!(
                        "the backup {} of {} is gone: nothing was rolled back",
                        root.shown(&format!("{}/{backup}", entry.dir)).display(),
                        shown.display()
                    )));
                }
                if let Some(kept) = newer_crl_kept(entry, dir.as_ref(), backup, &current)? {
                    planned.push(Planned::Keep(entry, backup.clone(), kept));
                    continue;
                }
                planned.push(Planned::Restore(entry, backup.clone()));
            }
            Before::Nothing if current.is_some() => planned.push(Planned::Remove(entry)),
            Before::Nothing => {}
            Before::Mode(mode) => {
                if let Some(current) = current {
                    planned.push(Planned::Mode {
                        entry,
                        mode: *mode,
                        contents: current.contents,
                    });
                }
            }
        }
    }
    Ok(planned)
}

/// The transaction's steps in install's order, then the removal of the backups put back, then
/// the record (the last of `changes`); and the report.
fn ops_of<'a>(planned: &'a [Planned<'a>], changes: &'a [Change<'a>]) -> (Vec<Op<'a>>, String) {
    let mut ops = Vec::new();
    let mut backups = Vec::new();
    let mut report = String::new();
    let mut writes = changes.iter();
    for step in planned {
        let line = match step {
            Planned::Restore(entry, backup) => {
                backups.push(Op::Remove {
                    dir: entry.dir.clone(),
                    name: backup.clone(),
                });
                ops.push(Op::Restore {
                    dir: entry.dir.clone(),
                    name: entry.name.clone(),
                    from: backup.clone(),
                });
                format!("put back {}/{} from {backup}", entry.dir, entry.name)
            }
            Planned::Keep(entry, backup, line) => {
                backups.push(Op::Remove {
                    dir: entry.dir.clone(),
                    name: backup.clone(),
                });
                line.clone()
            }
            Planned::Remove(entry) => {
                ops.push(Op::Remove {
                    dir: entry.dir.clone(),
                    name: entry.name.clone(),
                });
                format!(
                    "removed {}/{} (the last install created it)",
                    entry.dir, entry.name
                )
            }
            Planned::Mode { entry, mode, .. } => {
                if let Some(change) = writes.next() {
                    ops.push(Op::Write(change));
                }
                format!("put back mode {mode:04o} of {}/{}", entry.dir, entry.name)
            }
        };
        report.push_str(&line);
        report.push('\n');
    }
    ops.extend(backups);
    ops.extend(writes.map(Op::Write));
    (ops, report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(before: Before) -> Entry {
        Entry {
            dir: "/etc/docker".into(),
            name: "daemon.json".into(),
            sha256: Some(sha256_hex(b"{}")),
            before,
        }
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let entries = vec![
            entry(Before::Nothing),
            entry(Before::Backup("daemon.json.20260101T000000Z.bak".into())),
            entry(Before::Mode(0o640)),
        ];
        let dirs = vec!["/etc/docker/tls".to_string()];
        match parse(to_json(&entries, &dirs).as_bytes()) {
            Some(Record::Install {
                entries: read,
                created_dirs,
            }) => {
                assert_eq!(read, entries);
                assert_eq!(created_dirs, dirs);
            }
            _ => panic!("not read back"),
        }
        assert!(matches!(
            parse(rolled_back("20260101T000000Z").as_bytes()),
            Some(Record::RolledBack(_))
        ));
    }

    #[test]
    fn a_record_naming_other_files_is_refused() {
        let bad = |before: Before, dir: &str, name: &str| {
            let mut e = entry(before);
            e.dir = dir.into();
            e.name = name.into();
            parse(to_json(&[e], &[]).as_bytes()).is_none()
        };
        // A backup that is not a backup of that file, a path in a name, a relative folder.
        assert!(bad(Before::Backup("shadow".into()), "/etc", "daemon.json"));
        assert!(bad(
            Before::Backup("daemon.json/../x.bak".into()),
            "/etc",
            "daemon.json"
        ));
        assert!(bad(Before::Nothing, "/etc", "../passwd"));
        assert!(bad(Before::Nothing, "etc", "daemon.json"));
        assert!(bad(Before::Nothing, "/etc/../root", "x"));
        assert!(bad(Before::Mode(0o100000), "/etc", "x"));
        assert!(parse(b"{\"version\": 2}").is_none());
    }
}
