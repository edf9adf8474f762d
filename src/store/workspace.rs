//! Changing an existing PKI in place: the only code that replaces files `init` wrote.
//!
//! Every changed folder (`servers/NAME/`, `clients/NAME/`, `ca/`, ...) is built whole in a
//! private staging folder inside DIR. A record of what is about to be swapped
//! ([`SWAP_RECORD`]) is written, the staged folders are moved into DIR/backup/<UTC
//! timestamp>/ and flushed; then each is swapped with the live folder in one
//! `renameat2(RENAME_EXCHANGE)`, which leaves the old folder in the backup. At every instant DIR
//! holds either the whole old folder or the whole new one, so a key never sits beside a
//! certificate it does not match, and no file is written twice or deleted. A run killed at any
//! point is finished by the next run (which holds DIR's lock, so no other run can be using the
//! staging folder): it does the moves and swaps the record says are left, then removes the
//! staging folder.

use std::path::{Path, PathBuf};

use ::time::OffsetDateTime;
use rustix::fs::{FileType, RenameFlags};

use crate::error::Error;
use crate::store::{self, Folder, Holder, Stage, StagingArea, ensure_parents, registry};

/// A locked PKI folder being changed. Every path below DIR is reached from DIR's opened
/// descriptor, one name at a time, never through a link.
pub struct Workspace {
    dir: Folder,
    staging: StagingArea,
    now: OffsetDateTime,
    backup: Option<Folder>,
    _lock: std::fs::File,
}

impl Stage for Workspace {
    fn area(&self) -> Result<&Folder, Error> {
        Ok(self.staging.folder())
    }
}

impl Workspace {
    /// Locks DIR, which must hold a PKI that no one else can change, and makes a staging
    /// folder. A format-1 PKI is migrated to format 2 first (`registry::migrate`).
    pub fn open(dir: &Path, now: OffsetDateTime) -> Result<Workspace, Error> {
        Workspace::open_within(dir, now, store::Reach::All)
    }

    /// [`Workspace::open`] for a command that reads and writes only the folders `reach`
    /// names: the check under the lock stats those (and DIR, its parents and what DIR keeps).
    pub fn open_within(
        dir: &Path,
        now: OffsetDateTime,
        reach: store::Reach,
    ) -> Result<Workspace, Error> {
        // DIR, its parents and its layout before the lock file is created in it; the whole
        // check under the lock.
        require_layout(dir)?;
        store::folder_trust_problem(dir).map_or(Ok(()), |p| Err(p.into_error()))?;
        let folder = Folder::open(dir)?;
        let lock = store::lock_folder(&folder)?;
        // Checked again under the lock, just before anything is written.
        require_pki_within(dir, reach)?;
        let staging = StagingArea::create(&folder)?;
        let mut ws = Workspace {
            dir: folder,
            staging,
            now,
            backup: None,
            _lock: lock,
        };
        if let Some(backup) = registry::migrate(&mut ws)? {
            eprintln!(
                "note: {} now has one folder per server ({}/NAME/) and a state file ({}); the files of the old layout are in {}",
                dir.display(),
                store::layout::SERVERS_DIR,
                store::layout::STATE_FILE,
                backup.display()
            );
        }
        Ok(ws)
    }

    /// DIR, opened.
    pub fn dir(&self) -> &Folder {
        &self.dir
    }

    /// The staged folder `relative` (created by [`Stage::mkdir`] or [`Workspace::copy_in`]).
    pub fn staged(&self, relative: &str) -> Result<Folder, Error> {
        self.staging().subfolder(relative)
    }

    /// Stages servers/NAME with a new CA certificate, certificate and key, and a copy of
    /// everything else its live folder holds (daemon.json, override.conf, ...): swapped in,
    /// the folder loses nothing but the old pair.
    pub fn write_server_pair(
        &self,
        name: &str,
        ca_pem: &str,
        issued: &crate::pki::Issued,
    ) -> Result<(), Error> {
        let holder = Holder::server(name);
        let folder = holder.folder();
        let live = self.dir.subfolder(&folder)?;
        let files = [
            store::layout::CA_CERT,
            holder.cert_name(),
            holder.key_name(),
        ];
        self.copy_in_except(&live, &folder, &files)?;
        let staged = self.staged(&folder)?;
        staged.write_new_file(files[0], ca_pem.as_bytes(), store::CERT_FILE)?;
        staged.write_new_file(files[1], issued.cert_pem.as_bytes(), store::CERT_FILE)?;
        staged.write_new_file(files[2], issued.key_pem.as_bytes(), store::KEY_FILE)
    }

    /// Copies the folder `from` (files with their modes, never through a link) to `relative`
    /// in the staging folder.
    pub fn copy_in(&self, from: &Folder, relative: &str) -> Result<(), Error> {
        self.copy_in_except(from, relative, &[])
    }

    /// [`Workspace::copy_in`] without the files named in `skip` (directly in `from`): the
    /// files the caller writes anew are not copied only to be deleted.
    pub fn copy_in_except(
        &self,
        from: &Folder,
        relative: &str,
        skip: &[&str],
    ) -> Result<(), Error> {
        ensure_parents(self.staging(), relative)?;
        copy_tree(from, self.staging(), relative, skip, 0)
    }

    fn staging(&self) -> &Folder {
        self.staging.folder()
    }

    /// Flushes everything staged to disk (one syncfs).
    pub fn flush(&self) -> Result<(), Error> {
        self.staging().sync_filesystem()
    }

    /// Flushes the one staged folder `relative` (its files, the folder and the staging folder
    /// holding it), where a few files are staged: a few fsyncs cost less than a syncfs, which
    /// waits for everything other programs wrote on the file system (issue 12: `server add`).
    pub fn flush_one(&self, relative: &str) -> Result<(), Error> {
        let (parent, _) = parent_and_name(self.staging(), relative)?;
        self.staged(relative)?.sync_files()?;
        parent.sync()
    }

    fn backup(&mut self) -> Result<&Folder, Error> {
        if self.backup.is_none() {
            self.backup = Some(store::new_backup_dir(&self.dir, self.now)?);
        }
        self.backup
            .as_ref()
            .ok_or_else(|| Error::Failed("no backup folder".into()))
    }

    /// The backup folder of this run, created on first use.
    pub fn backup_dir(&mut self) -> Result<PathBuf, Error> {
        Ok(self.backup()?.path().to_path_buf())
    }

    /// Replaces DIR/relative (a folder) with its staged folder; the old one goes to the
    /// backup (see [`Workspace::replace_all`]).
    pub fn replace(&mut self, relative: &str) -> Result<(), Error> {
        self.replace_all(&[relative.to_string()])
    }

    /// Replaces each folder DIR/relative with its staged folder, in order, each in one step
    /// (every folder is all-old or all-new at every instant), leaving each old folder in this
    /// run's backup folder: nothing is copied, linked or deleted, so a rotation of 1,200
    /// leaves creates no file beyond the new ones (issue 12's speed).
    ///
    /// 1. The record of the swaps ([`SWAP_RECORD`]: the backup folder and each staged
    ///    folder's inode) is written in the staging folder and flushed.
    /// 2. Each staged folder is moved to its place in the backup folder: anything that needs
    ///    room (a full disk) fails here, before any swap. Everything is flushed (one syncfs).
    /// 3. Each is swapped with the live folder by `renameat2(RENAME_EXCHANGE)`, which needs no
    ///    room: the backup then holds the old folder. A folder directly in DIR (`ca`,
    ///    `servers`, `clients`) is flushed before the next swap, keeping their order on disk
    ///    (`rotate --ca`: never a CA older than what it signed); the folders holding the others
    ///    are flushed once, after the last swap.
    ///
    /// A run killed anywhere is finished by the next run that takes the lock
    /// ([`salvage_swapped`]): from the record, it does the steps left. A step that fails here
    /// stops the run: the folders not swapped yet are taken out of the backup (each folder
    /// stays all-old or all-new), and a backup folder left empty is removed.
    ///
    /// Where DIR/backup is on another file system than DIR (a mount: backups kept on another
    /// disk), folders cannot be renamed into it: each live folder is copied there instead
    /// before its swap, and the old folder is deleted after it (the previous release's way).
    pub fn replace_all(&mut self, relatives: &[String]) -> Result<(), Error> {
        let backup = self.backup()?.try_clone()?;
        if backup.stat()?.st_dev != self.dir.stat()?.st_dev {
            return self.replace_all_by_copy(&backup, relatives);
        }
        let mut record = SwapRecord {
            format: 1,
            backup: file_name(&backup),
            folders: Vec::with_capacity(relatives.len()),
        };
        for relative in relatives {
            ensure_parents(&backup, relative)?;
            let inode = self.staged(relative)?.stat()?.st_ino;
            record.folders.push(RecordedFolder {
                inode,
                path: relative.clone(),
            });
        }
        // On disk before any staged folder enters the backup: the next run must know them.
        let text = serde_json::to_vec(&record)
            .map_err(|e| Error::Failed(format!("cannot write the swap record: {e}")))?;
        self.staging().write_new_file(SWAP_RECORD, &text, 0o600)?;
        self.staging().sync_file(SWAP_RECORD)?;
        self.staging().sync()?;
        if let Err(err) = finish_swaps(&self.dir, self.staging(), &backup, &record) {
            discard_unswapped(&backup, &record);
            self.remove_backup_if_empty();
            return Err(err);
        }
        Ok(())
    }

    /// [`Workspace::replace_all`] where DIR/backup is on another file system: each live
    /// folder is copied into the backup and flushed, then swapped with its staged folder, and
    /// the old one (at the staged name) deleted. No record: a run killed anywhere leaves each
    /// folder old or new, and the next run deletes its staging folder.
    fn replace_all_by_copy(&mut self, backup: &Folder, relatives: &[String]) -> Result<(), Error> {
        let copied = relatives.iter().try_for_each(|relative| {
            let from = self.dir.subfolder(relative)?;
            ensure_parents(backup, relative)?;
            copy_tree(&from, backup, relative, &[], 0)
        });
        if let Err(err) = copied
            .and_then(|()| backup.sync_filesystem())
            .and_then(|()| self.staging().sync_filesystem())
        {
            self.remove_backup_if_empty();
            return Err(err);
        }
        let mut touched: Vec<Folder> = Vec::new();
        for relative in relatives {
            let (staged_parent, name) = parent_and_name(self.staging(), relative)?;
            let (live_parent, live_name) = parent_and_name(&self.dir, relative)?;
            staged_parent.rename(name, &live_parent, live_name, RenameFlags::EXCHANGE)?;
            if !relative.contains('/') {
                live_parent.sync()?;
            }
            staged_parent.remove_tree(name)?;
            if !touched.iter().any(|t| t.path() == live_parent.path()) {
                touched.push(live_parent);
            }
        }
        touched.iter().try_for_each(Folder::sync)
    }

    /// Removes this run's backup folder when nothing but empty folders is in it (a run that
    /// failed before its first swap): it would count as a backup for `--keep-backups`.
    fn remove_backup_if_empty(&mut self) {
        let Some(backup) = self.backup.take() else {
            return;
        };
        let name = file_name(&backup);
        let Ok(backups) = self.dir.subfolder(store::layout::BACKUP_DIR) else {
            return;
        };
        if let Ok(entries) = backup.entries() {
            for (entry, kind) in entries {
                if kind == FileType::Directory {
                    let _ = backup.remove_empty_dir(&entry);
                }
            }
        }
        if backups.remove_empty_dir(&name).is_err() {
            // Not empty: it is this run's backup still.
            self.backup = Some(backup);
        }
    }

    /// Moves a staged folder to DIR/relative, which must not exist. A missing parent inside
    /// DIR (`clients/`) is created.
    pub fn add(&self, relative: &str) -> Result<(), Error> {
        ensure_parents(&self.dir, relative)?;
        let (staged_parent, name) = parent_and_name(self.staging(), relative)?;
        let (live_parent, live_name) = parent_and_name(&self.dir, relative)?;
        staged_parent.rename(name, &live_parent, live_name, RenameFlags::NOREPLACE)?;
        live_parent.sync()
    }

    /// Moves DIR/relative into the backup (nothing is deleted).
    pub fn move_to_backup(&mut self, relative: &str) -> Result<PathBuf, Error> {
        let backup = self.backup()?.try_clone()?;
        ensure_parents(&backup, relative)?;
        let (from_parent, name) = parent_and_name(&self.dir, relative)?;
        let (to_parent, to_name) = parent_and_name(&backup, relative)?;
        from_parent.rename(name, &to_parent, to_name, RenameFlags::NOREPLACE)?;
        from_parent.sync()?;
        to_parent.sync()?;
        Ok(to_parent.path().join(to_name))
    }
}

/// What [`Workspace::prune_backups`] did.
#[derive(Debug, Default)]
pub struct Pruned {
    /// The backup folders deleted, oldest first.
    pub removed: Vec<PathBuf>,
    /// How many backup folders remain (the newest).
    pub kept: usize,
    /// Entries of DIR/backup that are not backup folders dockertls made (another name, a
    /// link, a file, someone else's folder): left alone.
    pub foreign: Vec<PathBuf>,
}

impl Workspace {
    /// Deletes all but the newest `keep` backup folders of DIR/backup (they hold old private
    /// keys). Only folders named as dockertls names them (`20261129T021548Z`, `...Z-2`), owned
    /// by the caller or root, are counted and deleted, never through a link; anything else in
    /// DIR/backup is left alone and named in `foreign`. Runs under DIR's lock.
    pub fn prune_backups(&self, keep: usize) -> Result<Pruned, Error> {
        let mut pruned = Pruned::default();
        let Some(stat) = self.dir.entry_stat(store::layout::BACKUP_DIR)? else {
            return Ok(pruned);
        };
        let path = self.dir.path().join(store::layout::BACKUP_DIR);
        if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
            return Err(Error::Refused(format!(
                "{} is not a folder (a link or a file): dockertls keeps backups there and never follows a link; move it away",
                path.display()
            )));
        }
        let backups = self.dir.subfolder(store::layout::BACKUP_DIR)?;
        if let Some(problem) = store::owner_problem(&path, &backups.stat()?) {
            return Err(problem.into_error());
        }
        let mut ours = Vec::new();
        for (name, kind) in backups.entries()? {
            let entry = backups.path().join(&name);
            let owned = match backups.entry_stat(&name)? {
                Some(stat) => store::owner_problem(&entry, &stat).is_none(),
                None => continue,
            };
            match backup_order(&name) {
                Some(order) if kind == FileType::Directory && owned => ours.push((order, name)),
                _ => pruned.foreign.push(entry),
            }
        }
        ours.sort();
        // This run's own backup is kept whatever its name says (a clock set back gives it an
        // older name than earlier backups), unless no backup at all is to be kept.
        if keep > 0
            && let Some(own) = self.backup.as_ref().map(file_name)
            && let Some(at) = ours.iter().position(|(_, name)| *name == own)
        {
            let entry = ours.remove(at);
            ours.push(entry);
        }
        let remove = ours.len().saturating_sub(keep);
        for (_, name) in &ours[..remove] {
            backups.remove_tree(name)?;
            pruned.removed.push(backups.path().join(name));
        }
        if remove > 0 {
            backups.sync()?;
        }
        pruned.kept = ours.len() - remove;
        Ok(pruned)
    }
}

/// The time order of a backup folder name dockertls makes (`store::backup_stamp`, then `-2`
/// to `-99` when that name was taken); None for any other name.
fn backup_order(name: &str) -> Option<(String, u32)> {
    let (stamp, attempt) = match name.split_once('-') {
        Some((stamp, n)) if !n.starts_with('0') && (1..=2).contains(&n.len()) => {
            (stamp, n.parse::<u32>().ok()?)
        }
        Some(_) => return None,
        None => (name, 1),
    };
    let bytes = stamp.as_bytes();
    let shape = bytes.len() == 16
        && bytes[8] == b'T'
        && bytes[15] == b'Z'
        && bytes[..8]
            .iter()
            .chain(&bytes[9..15])
            .all(u8::is_ascii_digit);
    (shape && attempt >= 1).then(|| (stamp.to_string(), attempt))
}

/// The folder holding `relative` (opened without following links) and its last name.
fn parent_and_name<'a>(base: &Folder, relative: &'a str) -> Result<(Folder, &'a str), Error> {
    match relative.rsplit_once('/') {
        Some((parent, name)) => Ok((base.subfolder(parent)?, name)),
        None => Ok((base.try_clone()?, relative)),
    }
}

/// Finishes, under DIR's lock, what a run that was killed left (a rotation half done, a
/// migration), if anything: called before a command reads the CA it will sign with, so that it
/// reads the CA the finished run put in place. Cheap when there is nothing to finish.
pub fn finish_interrupted(dir: &Path, now: OffsetDateTime) -> Result<(), Error> {
    if registry::needs_migration(&Folder::open(dir)?)? {
        drop(Workspace::open(dir, now)?);
    }
    Ok(())
}

/// Refuses a DIR that holds no PKI, one with a symlink where dockertls writes, and one that
/// someone other than the caller or root could change (`store::check_trusted`). Every
/// command that reads or writes an existing PKI calls this first.
pub fn require_pki(dir: &Path) -> Result<(), Error> {
    require_pki_within(dir, store::Reach::All)
}

/// [`require_pki`] for a command that reads or writes only the folders `reach` names.
pub fn require_pki_within(dir: &Path, reach: store::Reach) -> Result<(), Error> {
    require_layout(dir)?;
    store::check_trusted_within(dir, reach)
}

/// The layout part of [`require_pki`]: a PKI is there, without a link where dockertls writes.
fn require_layout(dir: &Path) -> Result<(), Error> {
    let ca = Holder::Ca;
    match std::fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(Error::Refused(format!(
                "--dir {} is a symbolic link, which dockertls does not follow",
                dir.display()
            )));
        }
        Ok(meta) if meta.is_dir() => {}
        _ => {
            return Err(Error::refused(format!(
                "--dir {} holds no dockertls PKI (no {})",
                dir.display(),
                ca.cert()
            ))
            .hint("create one with dockertls init, or pass the --dir that holds it"));
        }
    }
    let required = [ca.folder(), ca.cert(), ca.key()];
    // issue 14 (import): a format-2 PKI may be without its CA key (imported without it, or
    // the key kept offline): the read-only commands work, signing says why not (load_ca).
    let keyless_ok = std::fs::symlink_metadata(dir.join(store::layout::STATE_FILE)).is_ok();
    let optional = [
        store::layout::SERVERS_DIR.to_string(),
        store::layout::CLIENTS_DIR.to_string(),
        store::layout::STATE_FILE.to_string(),
        store::layout::Legacy::SERVER_DIR.to_string(),
    ];
    for entry in required.iter().chain(&optional) {
        let path = dir.join(entry);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(Error::Refused(format!(
                    "{} is a symbolic link: dockertls never writes through one",
                    path.display()
                )));
            }
            Ok(_) => {}
            Err(_) if required.contains(entry) && !(keyless_ok && *entry == ca.key()) => {
                return Err(Error::refused(format!(
                    "--dir {} holds no dockertls PKI ({} is missing)",
                    dir.display(),
                    entry
                ))
                .hint("create one with dockertls init, or pass the --dir that holds it"));
            }
            Err(_) => {}
        }
    }
    Ok(())
}

/// The file in a staging folder recording the swaps a run is about to make (JSON: see
/// [`SwapRecord`]).
pub const SWAP_RECORD: &str = "swaps.json";
/// The most a record is read (1,200 leaves take about 60 KiB).
const SWAP_RECORD_LIMIT: u64 = 16 << 20;

/// What a [`SWAP_RECORD`] says: the backup folder's name (in DIR/backup) and each folder to
/// swap, by its path in DIR and the inode of its staged (new) folder.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SwapRecord {
    format: u32,
    backup: String,
    folders: Vec<RecordedFolder>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordedFolder {
    inode: u64,
    path: String,
}

impl SwapRecord {
    /// None for a record cut short (a run killed while writing it moved nothing) or one
    /// that is not as dockertls writes it: another format, a backup name dockertls does not
    /// make, a path that is not one or two plain names.
    fn parse(bytes: &[u8]) -> Option<SwapRecord> {
        let record: SwapRecord = serde_json::from_slice(bytes).ok()?;
        backup_order(&record.backup)?;
        let plain = |name: &str| {
            !name.is_empty()
                && name != "."
                && name != ".."
                && !name.starts_with(crate::store::STAGING_PREFIX)
                && !name.contains('\0')
        };
        let ok = record.format == 1
            && record
                .folders
                .iter()
                .all(|f| f.path.split('/').count() <= 2 && f.path.split('/').all(plain));
        ok.then_some(record)
    }
}

/// The last name of an opened folder's path.
fn file_name(folder: &Folder) -> String {
    folder
        .path()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Finishes what a killed run recorded in its staging folder `stale` (in DIR, `dir`): from a
/// complete [`SWAP_RECORD`], the staged folders still in `stale` go to the backup folder it
/// names, then each one there that is still the staged folder (same inode) is swapped with
/// the live folder, as the run would have done. Called under DIR's lock, before the stale
/// staging folder is removed; a staging folder without a complete record had moved nothing.
pub fn salvage_swapped(dir: &Folder, stale: &Folder) -> Result<(), Error> {
    let bytes = match stale.read_file(SWAP_RECORD, SWAP_RECORD_LIMIT) {
        Ok((bytes, _)) => bytes,
        Err(_) if stale.entry_stat(SWAP_RECORD)?.is_none() => return Ok(()),
        Err(err) => return Err(err),
    };
    let Some(record) = SwapRecord::parse(&bytes) else {
        return Ok(());
    };
    // Made before the record was written; made again if someone removed it since.
    let (backups, _) = dir.ensure_dir(store::layout::BACKUP_DIR)?;
    let (backup, _) = backups.ensure_dir(&record.backup)?;
    finish_swaps(dir, stale, &backup, &record)
}

/// The steps of [`Workspace::replace_all`] after its record: each staged folder still in
/// `staging` is moved into `backup`; one syncfs; then each folder in `backup` that is still
/// the staged one is swapped with the live folder (one whose live folder is gone is removed:
/// nothing to replace).
fn finish_swaps(
    dir: &Folder,
    staging: &Folder,
    backup: &Folder,
    record: &SwapRecord,
) -> Result<(), Error> {
    for folder in &record.folders {
        if let Some((parent, name)) = still_staged(staging, folder)? {
            ensure_parents(backup, &folder.path)?;
            let (to_parent, to_name) = parent_and_name(backup, &folder.path)?;
            parent.rename(name, &to_parent, to_name, RenameFlags::NOREPLACE)?;
        }
    }
    backup.sync_filesystem()?;
    let mut touched: Vec<Folder> = Vec::new();
    for folder in &record.folders {
        let Some((backup_parent, name)) = still_staged(backup, folder)? else {
            continue;
        };
        let (live_parent, live_name) = match folder.path.rsplit_once('/') {
            Some((parent, _)) if dir.entry_stat(parent)?.is_none() => {
                backup_parent.remove_tree(name)?;
                continue;
            }
            _ => parent_and_name(dir, &folder.path)?,
        };
        if live_parent.entry_stat(live_name)?.is_none() {
            backup_parent.remove_tree(name)?;
            continue;
        }
        backup_parent.rename(name, &live_parent, live_name, RenameFlags::EXCHANGE)?;
        if !folder.path.contains('/') {
            live_parent.sync()?;
        }
        for parent in [live_parent, backup_parent] {
            if !touched.iter().any(|t| t.path() == parent.path()) {
                touched.push(parent);
            }
        }
    }
    touched.iter().try_for_each(Folder::sync)
}

/// The folder holding `folder.path` in `base` and its name, when it is there and is still the
/// staged folder (the recorded inode): not swapped in yet.
fn still_staged<'a>(
    base: &Folder,
    folder: &'a RecordedFolder,
) -> Result<Option<(Folder, &'a str)>, Error> {
    if let Some((parent, _)) = folder.path.rsplit_once('/')
        && base.entry_stat(parent)?.is_none()
    {
        return Ok(None);
    }
    match base.entry_stat(&folder.path)? {
        Some(stat)
            if stat.st_ino == folder.inode
                && FileType::from_raw_mode(stat.st_mode) == FileType::Directory =>
        {
            Ok(Some(parent_and_name(base, &folder.path)?))
        }
        _ => Ok(None),
    }
}

/// After a failed step of [`Workspace::replace_all`]: removes from the backup the staged
/// folders not swapped in. Best effort: the staging folder (and its record) is removed when
/// the run ends, so what is left here stays as new folders in the backup.
fn discard_unswapped(backup: &Folder, record: &SwapRecord) {
    for folder in &record.folders {
        if let Ok(Some((parent, name))) = still_staged(backup, folder) {
            let _ = parent.remove_tree(name);
        }
    }
}

/// Copies the folder `from` to `relative` in `to` (regular files and folders only, never
/// through a link), keeping file modes, but for the entries of `from` named in `skip`.
fn copy_tree(
    from: &Folder,
    to: &Folder,
    relative: &str,
    skip: &[&str],
    depth: u32,
) -> Result<(), Error> {
    if depth > 8 {
        return Err(Error::Refused(format!(
            "{} is nested too deep for a PKI folder",
            from.path().display()
        )));
    }
    let target = to.create_dir(relative)?;
    for (name, kind) in from.entries()? {
        if skip.contains(&name.as_str()) {
            continue;
        }
        if kind == FileType::Directory {
            copy_tree(&from.subfolder(&name)?, &target, &name, &[], depth + 1)?;
        } else if kind == FileType::RegularFile {
            copy_file(from, &target, &name)?;
        }
    }
    Ok(())
}

/// Copies the regular file `name` of `from` into `to`, with its mode.
fn copy_file(from: &Folder, to: &Folder, name: &str) -> Result<(), Error> {
    let limit = crate::audit::material::MAX_FILE_SIZE;
    let (contents, mode) = from.read_file(name, limit + 1)?;
    // A backup is never silently cut short.
    if contents.len() as u64 > limit {
        return Err(Error::Refused(format!(
            "{} is over 1 MiB, not PKI material: move it out of the PKI folder",
            from.path().join(name).display()
        )));
    }
    to.write_new_file(name, &contents, mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_swap_record_counts_only_when_whole_and_plain() {
        let whole = r#"{"format":1,"backup":"20261130T221500Z","folders":[{"inode":12,"path":"clients/ops@example.com"},{"inode":13,"path":"ca"}]}"#;
        let record = SwapRecord::parse(whole.as_bytes()).unwrap();
        assert_eq!(record.backup, "20261130T221500Z");
        let folders: Vec<(u64, &str)> = record
            .folders
            .iter()
            .map(|f| (f.inode, f.path.as_str()))
            .collect();
        assert_eq!(folders, [(12, "clients/ops@example.com"), (13, "ca")]);
        assert_eq!(serde_json::to_string(&record).unwrap(), whole);
        // Cut anywhere: the run moved nothing.
        for cut in 0..whole.len() {
            assert!(
                SwapRecord::parse(&whole.as_bytes()[..cut]).is_none(),
                "{cut}"
            );
        }
        for bad in [
            r#"{"format":2,"backup":"20261130T221500Z","folders":[]}"#,
            r#"{"format":1,"backup":"../x","folders":[]}"#,
            r#"{"format":1,"backup":"20261130T221500Z","folders":[{"inode":1,"path":"../alice"}]}"#,
            r#"{"format":1,"backup":"20261130T221500Z","folders":[{"inode":1,"path":"a/b/c"}]}"#,
            r#"{"format":1,"backup":"20261130T221500Z","folders":[{"inode":1,"path":"/etc"}]}"#,
            r#"{"format":1,"backup":"20261130T221500Z","folders":[{"inode":1,"path":"clients/."}]}"#,
            r#"{"format":1,"backup":"20261130T221500Z","folders":[{"inode":-1,"path":"ca"}]}"#,
            r#"{"format":1,"backup":"20261130T221500Z","folders":[],"more":1}"#,
        ] {
            assert!(SwapRecord::parse(bad.as_bytes()).is_none(), "{bad}");
        }
    }

    #[test]
    fn only_backup_names_dockertls_makes_are_ordered_by_time() {
        let stamp = store::backup_stamp(::time::macros::datetime!(2026-11-29 02:15:48 UTC));
        assert_eq!(backup_order(&stamp), Some((stamp.clone(), 1)));
        let mut names = [
            "20261129T021548Z-10",
            "20261129T021548Z-2",
            "20261129T021548Z",
            "20251129T021548Z",
        ]
        .map(|n| backup_order(n).unwrap());
        names.sort();
        assert_eq!(names[0].0, "20251129T021548Z");
        assert_eq!(names.map(|n| n.1), [1, 1, 2, 10]);
        for other in [
            "notes",
            "20261129T021548",
            "20261129T021548Z-",
            "20261129T021548Z-02",
            "20261129T021548Z-100",
            "2026112XT021548Z",
            ".20261129T021548Z",
            "20261129t021548z",
        ] {
            assert_eq!(backup_order(other), None, "{other}");
        }
    }
}
