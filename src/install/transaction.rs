//! Putting install's files in place as one change, with a journal.
//!
//! The TLS files, daemon.json and the drop-in live in three folders: no single rename can
//! switch them together. So:
//! 1. a journal listing every step is written and flushed first, as
//!    `/etc/docker/.dockertls-install.prepare`;
//! 2. every new file is written beside its target under a temporary name (created 0600, then
//!    root:root and its final mode, fsync), every file it replaces gets a second name by a
//!    hard link (its backup `NAME.<UTC time>.bak`, or a temporary name when the contents do not
//!    change and only the mode or owner do), folders are flushed;
//! 3. the journal is renamed to `.commit` (the switch point), then each temporary file is
//!    renamed over its target: the TLS files first, then the drop-in, daemon.json last (a new
//!    daemon.json never points at TLS files not yet in place, and never meets a unit that still
//!    passes `-H`);
//! 4. the temporary names and the journal are removed.
//!
//! A run killed before the switch point leaves a `.prepare` journal: the next install rolls it
//! back (the live files were never touched). Killed after it, the `.commit` journal is rolled
//! forward (every new file is complete and flushed). A failure inside a run (a full disk, an
//! I/O error) rolls back at once: before the switch point by removing what was staged, after it
//! by renaming the journal to `.rollback` and putting each original back from its second name.
//! Each step is idempotent, so a run killed while recovering is recovered again.

use std::collections::BTreeSet;

use rustix::fs::FileType;
use serde_json::{Value, json};

use super::confined::{Dir, Root};
use crate::error::Error;

/// The folder that holds the journal (and whose lock serialises installs).
pub const JOURNAL_DIR: &str = "/etc/docker";
const PREPARE: &str = ".dockertls-install.prepare";
const COMMIT: &str = ".dockertls-install.commit";
const ROLLBACK: &str = ".dockertls-install.rollback";
/// Every temporary name install creates starts with this.
pub const TEMP_PREFIX: &str = ".dockertls-install-";

/// One file to put in place.
pub struct Change<'a> {
    /// The target on the host: its folder and name.
    pub dir: String,
    pub name: String,
    pub contents: &'a [u8],
    pub mode: u32,
    /// Whether a file is there now, and whether its contents change (then it is backed up).
    pub existed: bool,
    pub backed_up: bool,
    /// The folder is created with this mode when missing (0700 for the TLS folder).
    pub dir_mode: u32,
}

/// One step of a transaction: a file written (install), or, for `install --rollback`, a backup
/// put back under its name or a file removed. The last two are switched and undone as a
/// written file is: a removal keeps a second name for the file until the switch is over.
pub enum Op<'a> {
    Write(&'a Change<'a>),
    /// Puts `from` (a backup in the same folder) back as `name`: the staged file is a second
    /// name for it, so its contents, mode and owner are the original's, byte for byte.
    Restore {
        dir: String,
        name: String,
        from: String,
    },
    /// Removes `name` (which install created, or a backup just put back).
    Remove {
        dir: String,
        name: String,
    },
}

impl Op<'_> {
    fn dir(&self) -> &str {
        match self {
            Op::Write(change) => &change.dir,
            Op::Restore { dir, .. } | Op::Remove { dir, .. } => dir,
        }
    }

    fn name(&self) -> &str {
        match self {
            Op::Write(change) => &change.name,
            Op::Restore { name, .. } | Op::Remove { name, .. } => name,
        }
    }
}

/// One step of the journal.
#[derive(Clone)]
struct Step {
    dir: String,
    name: String,
    staged: String,
    /// The second name of the file replaced: its backup, or a temporary name.
    keep: Option<String>,
    backup: bool,
    existed: bool,
    /// The switch removes the target (its `keep` name holds it until then).
    remove: bool,
}

struct Journal {
    created_dirs: Vec<String>,
    steps: Vec<Step>,
    /// Written by `install --rollback` (a finished one is not run again).
    rollback: bool,
    /// Folders a rollback removes when empty, after the switch (those the install created).
    remove_dirs: Vec<String>,
}

impl Journal {
    fn to_json(&self) -> String {
        let steps: Vec<Value> = self
            .steps
            .iter()
            .map(|s| {
                let mut step = json!({"dir": s.dir, "name": s.name, "staged": s.staged,
                       "keep": s.keep, "backup": s.backup, "existed": s.existed});
                if s.remove {
                    step["remove"] = json!(true);
                }
                step
            })
            .collect();
        // Version 2 (removals) is refused by a dockertls that predates it, never misread.
        let version = if self.rollback || self.steps.iter().any(|s| s.remove) {
            2
        } else {
            1
        };
        let mut journal =
            json!({"version": version, "created_dirs": self.created_dirs, "steps": steps});
        if self.rollback {
            journal["rollback"] = json!(true);
            journal["remove_dirs"] = json!(self.remove_dirs);
        }
        journal.to_string() + "\n"
    }

    /// Parses a journal, checking that it names only what install itself creates.
    fn parse(text: &[u8]) -> Option<Journal> {
        let value: Value = serde_json::from_slice(text).ok()?;
        if value["version"] != 1 && value["version"] != 2 {
            return None;
        }
        let strings = |v: &Value| -> Option<Vec<String>> {
            v.as_array()?
                .iter()
                .map(|s| s.as_str().map(str::to_string))
                .collect()
        };
        let created_dirs = strings(&value["created_dirs"])?;
        let mut steps = Vec::new();
        for step in value["steps"].as_array()? {
            let text = |key: &str| step[key].as_str().map(str::to_string);
            let step = Step {
                dir: text("dir")?,
                name: text("name")?,
                staged: text("staged")?,
                keep: match &step["keep"] {
                    Value::Null => None,
                    other => Some(other.as_str()?.to_string()),
                },
                backup: step["backup"].as_bool()?,
                existed: step["existed"].as_bool()?,
                remove: match &step["remove"] {
                    Value::Null => false,
                    other => other.as_bool()?,
                },
            };
            let plain = |n: &str| !n.is_empty() && !n.contains('/') && n != "." && n != "..";
            let ok = plain(&step.name)
                && plain(&step.staged)
                && step.staged.starts_with(TEMP_PREFIX)
                && step.keep.as_deref().is_none_or(|k| {
                    plain(k)
                        && if step.backup {
                            k.starts_with(&format!("{}.", step.name)) && k.ends_with(".bak")
                        } else {
                            k.starts_with(TEMP_PREFIX)
                        }
                });
            // A removal always keeps the file under a temporary second name until the switch.
            let remove_ok = !step.remove || (!step.backup && step.keep.is_some() == step.existed);
            if !ok || !remove_ok {
                return None;
            }
            steps.push(step);
        }
        let rollback = match &value["rollback"] {
            Value::Null => false,
            other => other.as_bool()?,
        };
        let remove_dirs = match &value["remove_dirs"] {
            Value::Null => Vec::new(),
            other => strings(other)?,
        };
        Some(Journal {
            created_dirs,
            steps,
            rollback,
            remove_dirs,
        })
    }
}

/// The journal folder, created (0755) if missing, and locked for this process's life.
pub fn lock(root: &Root) -> Result<Dir, Error> {
    let dir = root.create_dirs(JOURNAL_DIR, 0o755, &mut Vec::new())?;
    dir.lock()?;
    Ok(dir)
}

/// Whether a journal of an interrupted run is there (for --dry-run, which changes nothing).
pub fn pending(root: &Root) -> Result<Option<String>, Error> {
    let Some(dir) = root.dir(JOURNAL_DIR)? else {
        return Ok(None);
    };
    for name in [PREPARE, COMMIT, ROLLBACK] {
        if dir.entry(name)?.is_some() {
            return Ok(Some(dir.shown().join(name).display().to_string()));
        }
    }
    Ok(None)
}

/// Finishes or undoes what an interrupted run left (call with the lock held); returns the line
/// that says what was found and done.
pub fn recover(root: &Root, journal_dir: &Dir) -> Result<Option<String>, Error> {
    Ok(recover_run(root, journal_dir)?.map(|r| r.line))
}

/// What `recover_run` found and did.
pub struct Recovered {
    pub line: String,
    /// An interrupted `install --rollback` was finished: it is not to be run again.
    pub finished_rollback: bool,
}

/// As `recover`, saying whether it finished an interrupted rollback.
pub fn recover_run(root: &Root, journal_dir: &Dir) -> Result<Option<Recovered>, Error> {
    for (name, forward) in [(COMMIT, true), (ROLLBACK, false), (PREPARE, false)] {
        let Some(file) = journal_dir.read(name)? else {
            continue;
        };
        let shown = journal_dir.shown().join(name);
        let journal = match Journal::parse(&file.contents) {
            Some(journal) => journal,
            // Written but not flushed: the run stopped before staging anything.
            None if name == PREPARE => {
                journal_dir.unlink(name)?;
                journal_dir.sync()?;
                return Ok(Some(Recovered {
                    line: format!(
                        "found {} from an install killed before it changed anything: removed it",
                        shown.display()
                    ),
                    finished_rollback: false,
                }));
            }
            None => {
                return Err(Error::Refused(format!(
                    "{} is not a journal install can read; restore the files from their .bak backups, then remove it",
                    shown.display()
                )));
            }
        };
        if forward {
            roll_forward(root, &journal)?;
        } else {
            roll_back(root, &journal, name == ROLLBACK)?;
        }
        journal_dir.unlink(name)?;
        journal_dir.sync()?;
        let run = if journal.rollback {
            "install --rollback"
        } else {
            "install"
        };
        let line = if forward {
            format!(
                "found {} from an interrupted {run}: finished it (every new file was complete)",
                shown.display()
            )
        } else {
            format!(
                "found {} from an interrupted {run}: rolled it back (the previous files are in place)",
                shown.display()
            )
        };
        return Ok(Some(Recovered {
            line,
            finished_rollback: forward && journal.rollback,
        }));
    }
    Ok(None)
}

fn roll_forward(root: &Root, journal: &Journal) -> Result<(), Error> {
    for step in &journal.steps {
        let Some(dir) = root.dir(&step.dir)? else {
            continue;
        };
        if step.remove {
            dir.unlink(&step.name)?;
        } else if dir.entry(&step.staged)?.is_some() {
            dir.rename(&step.staged, &step.name)?;
        }
        dir.sync()?;
    }
    for step in &journal.steps {
        if let (Some(keep), false) = (&step.keep, step.backup)
            && let Some(dir) = root.dir(&step.dir)?
        {
            dir.unlink(keep)?;
            dir.sync()?;
        }
    }
    remove_created(root, &journal.remove_dirs);
    Ok(())
}

/// Undoes a journal. `switched`: some targets may already hold the new file (a `.rollback`
/// journal); otherwise none does (a `.prepare` journal).
fn roll_back(root: &Root, journal: &Journal, switched: bool) -> Result<(), Error> {
    for step in journal.steps.iter().rev() {
        let Some(dir) = root.dir(&step.dir)? else {
            continue;
        };
        let staged_left = dir.entry(&step.staged)?.is_some();
        dir.unlink(&step.staged)?;
        let target = dir.entry(&step.name)?;
        match &step.keep {
            Some(keep) => {
                if let Some(kept) = dir.entry(keep)? {
                    let same = target
                        .as_ref()
                        .is_some_and(|t| t.ino == kept.ino && t.dev == kept.dev);
                    if same {
                        // Not switched: the second name is only ours.
                        dir.unlink(keep)?;
                    } else if switched {
                        dir.rename(keep, &step.name)?;
                    }
                }
            }
            None => {
                if switched && !step.existed && !staged_left {
                    dir.unlink(&step.name)?;
                }
            }
        }
        dir.sync()?;
    }
    remove_created(root, &journal.created_dirs);
    Ok(())
}

fn remove_created(root: &Root, created: &[String]) {
    for host in created.iter().rev() {
        let (parent, name) = host.rsplit_once('/').unwrap_or(("", host));
        if let Ok(Some(dir)) = root.dir(if parent.is_empty() { "/" } else { parent }) {
            dir.remove_empty_dir(name);
            let _ = dir.sync();
        }
    }
}

/// A backup name for `name` in `dir` that is free: `NAME.<stamp>.bak`, else `NAME.<stamp>-2.bak`
/// and so on: two installs in one second never overwrite a backup.
fn free_backup_name(
    dir: Option<&Dir>,
    name: &str,
    stamp: &str,
    taken: &BTreeSet<String>,
) -> Result<String, Error> {
    for attempt in 1..1000 {
        let candidate = if attempt == 1 {
            format!("{name}.{stamp}.bak")
        } else {
            format!("{name}.{stamp}-{attempt}.bak")
        };
        let free = match dir {
            Some(dir) => dir.entry(&candidate)?.is_none(),
            None => true,
        };
        if free && !taken.contains(&candidate) {
            return Ok(candidate);
        }
    }
    Err(Error::Failed(format!(
        "no free backup name for {name} with the stamp {stamp}"
    )))
}

/// What `apply` did: the backups it made (host paths).
pub struct Applied {
    pub backups: Vec<String>,
    pub created_dirs: Vec<String>,
    /// What could not be tidied up after the switch.
    pub notes: Vec<String>,
}

/// What the journal records before anything is changed: the folders that will be created
/// (outermost first) and, for each file, its staged name and what keeps the old one.
fn journal_of(root: &Root, ops: &[Op<'_>], stamp: &str) -> Result<Journal, Error> {
    // The folders that will be created, outermost first: recorded before any is.
    let mut to_create: Vec<String> = Vec::new();
    for change in ops.iter().filter_map(|op| match op {
        Op::Write(change) => Some(change),
        _ => None,
    }) {
        let mut so_far = String::new();
        for part in change.dir.split('/').filter(|p| !p.is_empty()) {
            so_far.push('/');
            so_far.push_str(part);
            if !to_create.contains(&so_far) && root.dir(&so_far)?.is_none() {
                to_create.push(so_far.clone());
            }
        }
    }
    let mut taken = BTreeSet::new();
    let mut steps = Vec::new();
    for op in ops {
        let dir = root.dir(op.dir())?;
        let (existed, backed_up) = match op {
            Op::Write(change) => (change.existed, change.backed_up),
            Op::Restore { .. } | Op::Remove { .. } => {
                let there = match &dir {
                    Some(dir) => dir.entry(op.name())?.is_some(),
                    None => false,
                };
                (there, false)
            }
        };
        let name = op.name();
        let keep = if !existed {
            None
        } else if backed_up {
            let backup = free_backup_name(dir.as_ref(), name, stamp, &taken)?;
            taken.insert(backup.clone());
            Some(backup)
        } else {
            Some(format!("{TEMP_PREFIX}{name}.old"))
        };
        steps.push(Step {
            dir: op.dir().to_string(),
            name: name.to_string(),
            staged: format!("{TEMP_PREFIX}{name}.new"),
            keep,
            backup: backed_up && existed,
            existed,
            remove: matches!(op, Op::Remove { .. }),
        });
    }
    // A name install stages under that is taken by something else than a file of its own (a
    // FIFO, a link, a folder): refused before anything is written or removed.
    for step in &steps {
        if let Some(dir) = root.dir(&step.dir)?
            && let Some(entry) = dir.entry(&step.staged)?
            && entry.kind != FileType::RegularFile
        {
            return Err(Error::Refused(format!(
                "{} is in the way of install's temporary file, and is not one of its files: nothing was changed\nhint: check what it is, then move it away and run dockertls install again",
                dir.shown().join(&step.staged).display()
            )));
        }
    }
    Ok(Journal {
        created_dirs: to_create,
        steps,
        rollback: false,
        remove_dirs: Vec::new(),
    })
}

/// Removes what the switch left (old files that are not backups, the journal). A failure
/// there changes nothing the daemon reads: it becomes a note, and the next install removes
/// what is left.
fn tidy_up(root: &Root, journal_dir: &Dir, steps: &[Step], remove_dirs: &[String]) -> Vec<String> {
    let mut notes = Vec::new();
    let mut tidy = |result: Result<(), Error>| {
        if let Err(err) = result {
            notes.push(format!("{err}; the next install removes what is left"));
        }
    };
    for step in steps {
        if let (Some(keep), false) = (&step.keep, step.backup) {
            tidy(root.dir(&step.dir).and_then(|dir| match dir {
                Some(dir) => dir.unlink(keep).and_then(|()| dir.sync()),
                None => Ok(()),
            }));
        }
    }
    remove_created(root, remove_dirs);
    tidy(journal_dir.unlink(COMMIT).and_then(|()| journal_dir.sync()));
    notes
}

/// Puts `changes` in place, in their order, all or nothing (see the module comment). Call with
/// the journal folder locked and recovered.
pub fn apply(
    root: &Root,
    journal_dir: &Dir,
    changes: &[Change<'_>],
    stamp: &str,
) -> Result<Applied, Error> {
    let ops: Vec<Op<'_>> = changes.iter().map(Op::Write).collect();
    apply_ops(root, journal_dir, &ops, stamp)
}

/// The backup name each change would get (None: not backed up) and the folders `apply` would
/// create, as it would choose them now (call under the lock): for a record of what an install
/// replaced, written in the same transaction.
pub fn preview(
    root: &Root,
    changes: &[Change<'_>],
    stamp: &str,
) -> Result<(Vec<Option<String>>, Vec<String>), Error> {
    let ops: Vec<Op<'_>> = changes.iter().map(Op::Write).collect();
    let journal = journal_of(root, &ops, stamp)?;
    let backups = journal
        .steps
        .into_iter()
        .map(|s| if s.backup { s.keep } else { None })
        .collect();
    Ok((backups, journal.created_dirs))
}

/// As `apply`, for `install --rollback` (which restores and removes files as well).
/// `remove_dirs`: the folders the install created, removed when empty before the journal is.
pub fn apply_rollback(
    root: &Root,
    journal_dir: &Dir,
    ops: &[Op<'_>],
    stamp: &str,
    remove_dirs: &[String],
) -> Result<Applied, Error> {
    let mut journal = journal_of(root, ops, stamp)?;
    journal.rollback = true;
    journal.remove_dirs = remove_dirs.to_vec();
    apply_journal(root, journal_dir, ops, journal)
}

fn apply_ops(
    root: &Root,
    journal_dir: &Dir,
    ops: &[Op<'_>],
    stamp: &str,
) -> Result<Applied, Error> {
    let journal = journal_of(root, ops, stamp)?;
    apply_journal(root, journal_dir, ops, journal)
}

fn apply_journal(
    root: &Root,
    journal_dir: &Dir,
    ops: &[Op<'_>],
    journal: Journal,
) -> Result<Applied, Error> {
    let written = journal_dir
        .create_file(PREPARE, journal.to_json().as_bytes(), 0o600, true)
        .and_then(|()| journal_dir.sync());
    if let Err(err) = written {
        let _ = journal_dir.unlink(PREPARE);
        let _ = journal_dir.sync();
        return Err(Error::Failed(format!("{err}; nothing was changed")));
    }

    let steps = &journal.steps;
    let staged = stage(root, ops, steps);
    let committed = staged.and_then(|()| {
        journal_dir.rename(PREPARE, COMMIT)?;
        journal_dir.sync()
    });
    if let Err(err) = committed {
        // Nothing live was touched: remove what was staged.
        let _ = roll_back(root, &journal, false);
        let _ = journal_dir.unlink(PREPARE);
        let _ = journal_dir.unlink(COMMIT);
        let _ = journal_dir.sync();
        return Err(Error::Failed(format!("{err}; nothing was changed")));
    }

    if let Err(err) = switch(root, steps) {
        // Undo, recorded first: a run killed while undoing is undone again by the next one.
        if journal_dir.rename(COMMIT, ROLLBACK).is_ok()
            && journal_dir.sync().is_ok()
            && roll_back(root, &journal, true).is_ok()
        {
            let _ = journal_dir.unlink(ROLLBACK);
            let _ = journal_dir.sync();
            return Err(Error::Failed(format!(
                "{err}; the previous files were put back, nothing was changed"
            )));
        }
        return Err(Error::Failed(format!(
            "{err}; the change is half done: run dockertls install again to finish it (its journal is in {JOURNAL_DIR})"
        )));
    }
    // The switch is done: from here on, only clean-up.
    let notes = tidy_up(root, journal_dir, steps, &journal.remove_dirs);
    Ok(Applied {
        backups: steps
            .iter()
            .filter(|s| s.backup)
            .filter_map(|s| Some(format!("{}/{}", s.dir, s.keep.as_ref()?)))
            .collect(),
        created_dirs: journal.created_dirs.clone(),
        notes,
    })
}

fn stage(root: &Root, ops: &[Op<'_>], steps: &[Step]) -> Result<(), Error> {
    let mut created = Vec::new();
    let mut dirs = Vec::new();
    for (op, step) in ops.iter().zip(steps) {
        let dir = match op {
            Op::Write(change) => {
                // The parents first (0755), then the folder itself with its own mode.
                if let Some((parent, _)) = change.dir.rsplit_once('/')
                    && !parent.is_empty()
                {
                    root.create_dirs(parent, 0o755, &mut created)?;
                }
                root.create_dirs(&change.dir, change.dir_mode, &mut created)?
            }
            _ => root.dir(&step.dir)?.ok_or_else(|| {
                Error::Failed(format!("{} disappeared", root.shown(&step.dir).display()))
            })?,
        };
        if let Some(entry) = dir.entry(&step.staged)? {
            // Only a name install itself gives; a folder there is not ours to remove.
            if entry.kind != FileType::RegularFile {
                return Err(Error::Refused(format!(
                    "{} is in the way; move it away",
                    dir.shown().join(&step.staged).display()
                )));
            }
            dir.unlink(&step.staged)?;
        }
        match op {
            Op::Write(change) => {
                dir.create_file(&step.staged, change.contents, change.mode, true)?
            }
            Op::Restore { from, .. } => dir.link(from, &step.staged).map_err(|e| {
                Error::Failed(format!(
                    "cannot put back {}: {}",
                    dir.shown().join(from).display(),
                    std::io::Error::from(e)
                ))
            })?,
            Op::Remove { .. } => {}
        }
        if let Some(keep) = &step.keep {
            dir.link(&step.name, keep).map_err(|e| {
                Error::Failed(format!(
                    "cannot back up {} as {keep}: {}",
                    dir.shown().join(&step.name).display(),
                    std::io::Error::from(e)
                ))
            })?;
        }
        dirs.push(dir);
    }
    for dir in &dirs {
        dir.sync()?;
    }
    // The folders created and their parents.
    for host in &created {
        let parent = host
            .rsplit_once('/')
            .map_or("/", |(p, _)| if p.is_empty() { "/" } else { p });
        if let Some(dir) = root.dir(parent)? {
            dir.sync()?;
        }
    }
    Ok(())
}

fn switch(root: &Root, steps: &[Step]) -> Result<(), Error> {
    for step in steps {
        let dir = root.dir(&step.dir)?.ok_or_else(|| {
            Error::Failed(format!("{} disappeared", root.shown(&step.dir).display()))
        })?;
        if step.remove {
            dir.unlink(&step.name)?;
        } else {
            dir.rename(&step.staged, &step.name)?;
        }
        dir.sync()?;
    }
    Ok(())
}
