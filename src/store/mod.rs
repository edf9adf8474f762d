//! The only code that touches the PKI folder. Its promises: a key file is never readable by
//! group or other at any instant; every file appears at its final path complete (written in a
//! private staging folder, then renamed into place); a symlink at an output path is refused,
//! never followed; an existing PKI is replaced only when asked, after moving it to a backup;
//! a failed run removes what it staged and leaves the folder as it found it.
//!
//! Every path below DIR is reached from DIR's opened descriptor, one name at a time with
//! O_NOFOLLOW ([`Folder`]), so a link planted inside the PKI is refused and a folder swapped
//! meanwhile cannot redirect a write. A PKI folder that anyone but the caller or root could
//! change is refused by [`check_trusted`], which every command calls before it reads or writes.

use std::fs::{self, DirBuilder, File};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, RenameFlags};
use zeroize::Zeroizing;

use ::time::OffsetDateTime;
use ::time::macros::format_description;

use crate::error::{Error, io_failed};
use crate::pki::Issued;
use crate::secret::Passphrase;

pub mod authz;
pub mod layout;
pub mod registry;
pub mod state;
pub mod workspace;

/// Mode of folders that hold keys, and of the staging and backup folders.
pub const PRIVATE_DIR: u32 = 0o700;
/// Mode of private keys (CIS Docker Benchmark 3.14 wants the server key at exactly 0400; the
/// CA and client keys get the same).
pub const KEY_FILE: u32 = 0o400;
/// Mode of certificates (CIS 3.10 the CA certificate, 3.12 the server certificate: 0444 or
/// stricter).
pub const CERT_FILE: u32 = 0o444;
/// Mode of daemon.json and override.conf (CIS 3.17/3.18: 0644 or stricter).
pub const CONFIG_FILE: u32 = 0o644;

use layout::{BACKUP_DIR, KEPT_ENTRIES, LOCK_FILE};
pub use layout::{Holder, PKI_ENTRIES, Pki, STAGING_PREFIX};

/// Checks the output folder and what it holds, before anything is generated.
/// Returns the PKI entries already present.
pub fn check_output_dir(dir: &Path, force: bool) -> Result<Vec<&'static str>, Error> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_symlink() => {
            let target = fs::canonicalize(dir)
                .map(|p| format!(" (it points to {}: pass that path)", p.display()))
                .unwrap_or_default();
            return Err(Error::Refused(format!(
                "--dir {} is a symbolic link, which dockertls does not follow{target}",
                dir.display()
            )));
        }
        Ok(meta) if !meta.is_dir() => {
            return Err(Error::Refused(format!(
                "--dir {} exists and is not a directory",
                dir.display()
            )));
        }
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            let ancestor = nearest_existing_ancestor(dir);
            if !ancestor.is_dir() {
                return Err(Error::Refused(format!(
                    "--dir {}: {} is not a directory",
                    dir.display(),
                    ancestor.display()
                )));
            }
            check_trusted(dir)?;
            return Ok(Vec::new());
        }
        Err(err) if err.raw_os_error() == Some(rustix::io::Errno::NOTDIR.raw_os_error()) => {
            return Err(Error::Refused(format!(
                "--dir {}: a part of that path is a file, not a directory",
                dir.display()
            )));
        }
        Err(err) => {
            return Err(Error::Refused(format!("--dir {}: {err}", dir.display())));
        }
    }
    check_trusted(dir)?;
    let present = present_entries(dir)?;
    if !present.is_empty() && !force {
        return Err(Error::refused(format!(
            "{} already holds a PKI ({}); nothing was changed",
            dir.display(),
            present.join(", ")
        ))
        .hint(format!(
            "use another --dir, or --force to replace it after a backup to {}/",
            Pki::new(dir).backups().display()
        )));
    }
    let backup = Pki::new(dir).backups();
    if let Ok(meta) = fs::symlink_metadata(&backup)
        && !meta.is_dir()
    {
        let what = if meta.file_type().is_symlink() {
            "a symbolic link, which dockertls never follows"
        } else {
            "not a directory"
        };
        return Err(Error::Refused(format!(
            "{} is {what}: dockertls keeps backups there; move it away",
            backup.display()
        )));
    }
    Ok(present)
}

/// The PKI's entries already in `dir`; a link at one of them is refused.
fn present_entries(dir: &Path) -> Result<Vec<&'static str>, Error> {
    let mut present = Vec::new();
    for entry in PKI_ENTRIES {
        let path = dir.join(entry);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(Error::Refused(format!(
                    "{} is a symbolic link: dockertls never writes through one; remove it or choose another --dir",
                    path.display()
                )));
            }
            Ok(_) => present.push(entry),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(Error::Refused(format!("{}: {err}", path.display()))),
        }
    }
    Ok(present)
}

fn nearest_existing_ancestor(path: &Path) -> PathBuf {
    let mut current = path;
    loop {
        match current.parent() {
            Some(parent) if parent.as_os_str().is_empty() => return PathBuf::from("."),
            Some(parent) => {
                if fs::symlink_metadata(parent).is_ok() {
                    return parent.to_path_buf();
                }
                current = parent;
            }
            None => return PathBuf::from("/"),
        }
    }
}

/// An opened folder. Everything below it is reached relative to its descriptor, one name at a
/// time with O_NOFOLLOW: a link planted anywhere inside the PKI folder is refused, never
/// followed, and a folder renamed while a command works cannot send a write elsewhere.
pub struct Folder {
    fd: OwnedFd,
    path: PathBuf,
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

impl Folder {
    /// Opens `path` as a folder; a symbolic link at its last name is refused.
    pub fn open(path: &Path) -> Result<Folder, Error> {
        let fd = rfs::open(path, DIR_FLAGS, Mode::empty()).map_err(|e| open_error(path, e))?;
        Ok(Folder {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The path this folder was opened at (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A second handle on the same folder.
    pub fn try_clone(&self) -> Result<Folder, Error> {
        let fd = self
            .fd
            .try_clone()
            .map_err(|e| io_failed("cannot open", &self.path, &e))?;
        Ok(Folder {
            fd,
            path: self.path.clone(),
        })
    }

    /// The folder's own metadata.
    pub fn stat(&self) -> Result<rfs::Stat, Error> {
        rfs::fstat(&self.fd).map_err(|e| io_failed("cannot read", &self.path, &e.into()))
    }

    /// Opens the subfolder `relative` (names separated by `/`), each name without following a
    /// link.
    pub fn subfolder(&self, relative: &str) -> Result<Folder, Error> {
        let mut current = self.try_clone()?;
        for name in relative.split('/').filter(|n| !n.is_empty()) {
            current = current.child(name)?;
        }
        Ok(current)
    }

    fn child(&self, name: &str) -> Result<Folder, Error> {
        let path = self.path.join(name);
        let fd = rfs::openat(&self.fd, name, DIR_FLAGS, Mode::empty())
            .map_err(|e| open_error(&path, e))?;
        Ok(Folder { fd, path })
    }

    /// The folder holding `relative`, and `relative`'s last name.
    fn parent_of<'a>(&self, relative: &'a str) -> Result<(Folder, &'a str), Error> {
        match relative.rsplit_once('/') {
            Some((parent, name)) => Ok((self.subfolder(parent)?, name)),
            None => Ok((self.try_clone()?, relative)),
        }
    }

    /// Metadata of `relative` without following a link; None when it does not exist.
    pub fn entry_stat(&self, relative: &str) -> Result<Option<rfs::Stat>, Error> {
        let (parent, name) = self.parent_of(relative)?;
        match rfs::statat(&parent.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(stat)),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(io_failed("cannot read", &parent.path.join(name), &e.into())),
        }
    }

    /// Creates the subfolder `relative` with mode 0700 exactly (whatever the umask); an
    /// existing entry of that name is refused.
    pub fn create_dir(&self, relative: &str) -> Result<Folder, Error> {
        let (parent, name) = self.parent_of(relative)?;
        let path = parent.path.join(name);
        rfs::mkdirat(&parent.fd, name, Mode::from_raw_mode(PRIVATE_DIR))
            .map_err(|e| io_failed("cannot create", &path, &e.into()))?;
        let folder = parent.child(name)?;
        rfs::fchmod(&folder.fd, Mode::from_raw_mode(PRIVATE_DIR))
            .map_err(|e| io_failed("cannot set the mode of", &path, &e.into()))?;
        Ok(folder)
    }

    /// Opens the subfolder `name`, creating it (0700) when missing. An existing one must be a
    /// folder (not a link) that nobody but its owner (the caller or root) can change.
    pub fn ensure_dir(&self, name: &str) -> Result<(Folder, bool), Error> {
        match self.create_dir(name) {
            Ok(folder) => Ok((folder, true)),
            Err(_) if self.entry_stat(name).ok().flatten().is_some() => {
                let folder = self.child(name)?;
                let stat = folder.stat()?;
                if let Some(problem) = owner_problem(&folder.path, &stat) {
                    return Err(problem.into_error());
                }
                Ok((folder, false))
            }
            Err(e) => Err(e),
        }
    }

    /// Creates a new file with exactly `mode`. It is created 0600 (never group- or
    /// other-readable, whatever the umask), refusing an existing file or a link, and only
    /// then given its final mode.
    pub fn write_new_file(&self, relative: &str, contents: &[u8], mode: u32) -> Result<(), Error> {
        let (parent, name) = self.parent_of(relative)?;
        let path = parent.path.join(name);
        let fd = rfs::openat(
            &parent.fd,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| io_failed("cannot create", &path, &e.into()))?;
        let mut file = File::from(fd);
        file.write_all(contents)
            .map_err(|e| io_failed("cannot write", &path, &e))?;
        rfs::fchmod(&file, Mode::from_raw_mode(mode))
            .map_err(|e| io_failed("cannot set the mode of", &path, &e.into()))
    }

    /// Reads the regular file `name` of this folder (never through a link), at most `limit`
    /// bytes, with its mode. Wiped on drop: it may be a key.
    pub fn read_file(&self, name: &str, limit: u64) -> Result<(Zeroizing<Vec<u8>>, u32), Error> {
        let path = self.path.join(name);
        let fd = rfs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| open_error(&path, e))?;
        let stat = rfs::fstat(&fd).map_err(|e| io_failed("cannot read", &path, &e.into()))?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(Error::Refused(format!(
                "{} is not a regular file: dockertls reads only plain files in the PKI folder",
                path.display()
            )));
        }
        // A file someone else owns or may write could be rewritten in place: checked here, as
        // it is read, for every file of the PKI (`check_trusted` checks the folders).
        if let Some(problem) = owner_mode_problem(&path, stat.st_uid, stat.st_mode, false, false) {
            return Err(problem.into_error());
        }
        let mut bytes = Zeroizing::new(Vec::new());
        File::from(fd)
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(|e| io_failed("cannot read", &path, &e))?;
        Ok((bytes, stat.st_mode & 0o7777))
    }

    /// Removes the subfolder `name` if it is empty (rmdir: never a folder with anything in it).
    pub fn remove_empty_dir(&self, name: &str) -> Result<(), Error> {
        rfs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR)
            .map_err(|e| io_failed("cannot remove", &self.path.join(name), &e.into()))
    }

    /// The names in this folder with their types (without following links), sorted.
    pub fn entries(&self) -> Result<Vec<(String, FileType)>, Error> {
        let dir = rfs::Dir::read_from(&self.fd)
            .map_err(|e| io_failed("cannot read", &self.path, &e.into()))?;
        let mut out = Vec::new();
        for entry in dir {
            let entry = entry.map_err(|e| io_failed("cannot read", &self.path, &e.into()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "." || name == ".." {
                continue;
            }
            let kind = match entry.file_type() {
                FileType::Unknown => self
                    .entry_stat(&name)?
                    .map_or(FileType::Unknown, |s| FileType::from_raw_mode(s.st_mode)),
                kind => kind,
            };
            out.push((name, kind));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Renames `from` (in this folder) to `to` in `target`, with renameat2's `flags`.
    pub fn rename(
        &self,
        from: &str,
        target: &Folder,
        to: &str,
        flags: RenameFlags,
    ) -> Result<(), Error> {
        rfs::renameat_with(&self.fd, from, &target.fd, to, flags).map_err(|e| {
            Error::Failed(format!(
                "cannot move {} to {}: {}",
                self.path.join(from).display(),
                target.path.join(to).display(),
                io::Error::from(e)
            ))
        })
    }

    /// Removes the tree `name` of this folder: its files and folders, never through a link.
    pub fn remove_tree(&self, name: &str) -> Result<(), Error> {
        self.remove_tree_depth(name, 0)
    }

    fn remove_tree_depth(&self, name: &str, depth: u32) -> Result<(), Error> {
        let path = self.path.join(name);
        let is_dir = self
            .entry_stat(name)?
            .is_some_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Directory);
        if is_dir {
            if depth > 32 {
                return Err(Error::Failed(format!(
                    "{} is nested too deep to remove",
                    path.display()
                )));
            }
            let folder = self.child(name)?;
            for (entry, _) in folder.entries()? {
                folder.remove_tree_depth(&entry, depth + 1)?;
            }
            rfs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR)
        } else {
            rfs::unlinkat(&self.fd, name, AtFlags::empty())
        }
        .map_err(|e| io_failed("cannot remove", &path, &e.into()))
    }

    /// fsync(2) of the folder itself: its entries are durable.
    pub fn sync(&self) -> Result<(), Error> {
        rfs::fsync(&self.fd).map_err(|e| io_failed("cannot flush", &self.path, &e.into()))
    }

    /// fsync(2) of the regular file `name` of this folder (opened without following a link):
    /// its contents are durable. One file costs one journal commit, not a flush of everything
    /// other programs have written on the file system (syncfs).
    pub fn sync_file(&self, name: &str) -> Result<(), Error> {
        let path = self.path.join(name);
        let fd = rfs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| open_error(&path, e))?;
        rfs::fsync(&fd).map_err(|e| io_failed("cannot flush", &path, &e.into()))
    }

    /// fsync(2) of every regular file of this folder and of the folder itself (a few files: a
    /// staged server or client folder).
    pub fn sync_files(&self) -> Result<(), Error> {
        for (name, kind) in self.entries()? {
            if kind == FileType::RegularFile {
                self.sync_file(&name)?;
            }
        }
        self.sync()
    }

    /// Makes everything written on this folder's file system durable with one syncfs(2): the
    /// same guarantee as an fsync of every staged file and folder, at the cost of one flush.
    pub fn sync_filesystem(&self) -> Result<(), Error> {
        rfs::syncfs(&self.fd).map_err(|e| io_failed("cannot flush", &self.path, &e.into()))
    }
}

/// The error for a folder or file that cannot be opened, naming the link or the non-folder.
fn open_error(path: &Path, err: rustix::io::Errno) -> Error {
    let name = path.display();
    // O_NOFOLLOW with O_DIRECTORY reports a link as "not a directory": say what it is.
    let is_link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    match err {
        rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR if is_link => Error::Refused(format!(
            "{name} is a symbolic link: dockertls never follows one inside the PKI folder; remove it"
        )),
        rustix::io::Errno::NOTDIR => Error::Refused(format!("{name} is not a folder")),
        rustix::io::Errno::NOENT => Error::Refused(format!("{name} is missing")),
        other => io_failed("cannot open", path, &other.into()),
    }
}

/// A private staging folder (0700) inside an opened folder, removed on drop unless emptied of
/// purpose by its owner. Staging folders a killed run left behind are removed first: call
/// with the folder's lock held, so no other run is using them.
pub struct StagingArea {
    parent: Folder,
    name: String,
    folder: Folder,
}

impl StagingArea {
    /// Makes a new staging folder in `parent`.
    pub fn create(parent: &Folder) -> Result<StagingArea, Error> {
        for (name, kind) in parent.entries()? {
            if kind == FileType::Directory && name.starts_with(STAGING_PREFIX) {
                // A killed run's swaps are finished first (its backup keeps only old
                // folders); if that fails, nothing goes on.
                let stale = parent.subfolder(&name)?;
                workspace::salvage_swapped(parent, &stale).map_err(|err| {
                    Error::Failed(format!(
                        "{} was left by a dockertls run that was killed, and what it changed cannot be finished: {err}; nothing was changed: fix that, then run again",
                        stale.path.display()
                    ))
                })?;
                let _ = parent.remove_tree(&name);
            }
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        for attempt in 0..100u32 {
            let name = format!("{STAGING_PREFIX}{}-{nanos:x}-{attempt}", std::process::id());
            match parent.entry_stat(&name)? {
                Some(_) => continue,
                None => {
                    let folder = parent.create_dir(&name)?;
                    return Ok(StagingArea {
                        parent: parent.try_clone()?,
                        name,
                        folder,
                    });
                }
            }
        }
        Err(Error::Failed(format!(
            "cannot find a free staging folder name in {}",
            parent.path.display()
        )))
    }

    /// The staging folder.
    pub fn folder(&self) -> &Folder {
        &self.folder
    }
}

impl Drop for StagingArea {
    fn drop(&mut self) {
        let _ = self.parent.remove_tree(&self.name);
    }
}

/// A private staging folder being filled: what is written there appears in DIR only when it
/// is moved into place whole. Paths are relative to DIR, as [`Holder`] gives them.
pub trait Stage {
    /// The staging folder.
    fn area(&self) -> Result<&Folder, Error>;

    /// Creates a folder and its missing parents in the staging area, 0700 whatever the umask.
    fn mkdir(&self, relative: &str) -> Result<(), Error> {
        let area = self.area()?;
        ensure_parents(area, relative)?;
        area.create_dir(relative).map(drop)
    }

    /// Writes a new file in the staging area with exactly `mode`; flushed to disk all at once
    /// before anything is moved into place.
    fn write(&self, relative: &str, contents: &[u8], mode: u32) -> Result<(), Error> {
        self.area()?.write_new_file(relative, contents, mode)
    }

    /// Stages the folder of a server or client: the CA certificate, the certificate and its
    /// key, with Docker's modes.
    fn write_pair(&self, holder: &Holder, ca_pem: &str, issued: &Issued) -> Result<(), Error> {
        let folder = holder.folder();
        let area = self.area()?;
        ensure_parents(area, &folder)?;
        // The new folder, opened once for its three files (a rotation of 1,200 leaves opens
        // 1,200 folders, not 3,600 paths).
        let staged = area.create_dir(&folder)?;
        staged.write_new_file(layout::CA_CERT, ca_pem.as_bytes(), CERT_FILE)?;
        staged.write_new_file(holder.cert_name(), issued.cert_pem.as_bytes(), CERT_FILE)?;
        staged.write_new_file(holder.key_name(), issued.key_pem.as_bytes(), KEY_FILE)
    }

    /// Stages `ca/`: the certificate and the key, encrypted with `passphrase` when given.
    fn write_ca(&self, ca: &Issued, passphrase: Option<&Passphrase>) -> Result<(), Error> {
        let holder = Holder::Ca;
        self.mkdir(&holder.folder())?;
        self.write(&holder.cert(), ca.cert_pem.as_bytes(), CERT_FILE)?;
        match passphrase {
            Some(pass) => {
                let encrypted = crate::secret::encrypt_key(&ca.key_pem, pass)?;
                self.write(&holder.key(), encrypted.as_bytes(), KEY_FILE)
            }
            None => self.write(&holder.key(), ca.key_pem.as_bytes(), KEY_FILE),
        }
    }
}

/// Creates (0700) the missing folders above `relative` in `base`; existing ones must be real
/// folders of ours.
pub(crate) fn ensure_parents(base: &Folder, relative: &str) -> Result<(), Error> {
    let Some((parents, _)) = relative.rsplit_once('/') else {
        return Ok(());
    };
    let mut current = base.try_clone()?;
    for name in parents.split('/').filter(|n| !n.is_empty()) {
        current = current.ensure_dir(name)?.0;
    }
    Ok(())
}

/// A private folder inside DIR where a whole PKI is written before it is moved into place.
/// Dropping it without `commit` removes everything it created.
pub struct Staging {
    dir: PathBuf,
    folder: Option<Folder>,
    staging: Option<StagingArea>,
    /// The top-most folder this run created for DIR, removed again on failure.
    created: Option<PathBuf>,
    lock: Option<File>,
}

impl Staging {
    /// Creates DIR if needed (mode 0700), takes DIR's lock, and makes the staging folder.
    pub fn create(dir: &Path) -> Result<Staging, Error> {
        let mut staging = Staging {
            dir: dir.to_path_buf(),
            folder: None,
            staging: None,
            created: None,
            lock: None,
        };
        if fs::symlink_metadata(dir).is_err() {
            let top = first_missing(dir);
            DirBuilder::new()
                .recursive(true)
                .mode(PRIVATE_DIR)
                .create(dir)
                .map_err(|e| unwritable(dir, &e))?;
            staging.created = Some(top.clone());
            // The umask may have taken bits from 0700 (even the owner's): set it exactly.
            let mut current = dir.to_path_buf();
            loop {
                fs::set_permissions(&current, fs::Permissions::from_mode(PRIVATE_DIR))
                    .map_err(|e| io_failed("cannot set the mode of", &current, &e))?;
                if current == top {
                    break;
                }
                match current.parent() {
                    Some(parent) => current = parent.to_path_buf(),
                    None => break,
                }
            }
        }
        let folder = Folder::open(dir)?;
        // Checked again now that DIR exists: no one but its owner may change it.
        check_trusted(dir)?;
        staging.lock = Some(lock_folder(&folder)?);
        staging.staging = Some(StagingArea::create(&folder)?);
        staging.folder = Some(folder);
        Ok(staging)
    }

    fn live(&self) -> Result<&Folder, Error> {
        self.folder
            .as_ref()
            .ok_or_else(|| Error::Failed(format!("{} is not open", self.dir.display())))
    }

    /// Moves the staged entries into DIR. Entries of an existing PKI go first to
    /// DIR/backup/<UTC timestamp>/, whose path is returned. On failure, everything is moved
    /// back as it was.
    pub fn commit(
        mut self,
        entries: &[&str],
        now: OffsetDateTime,
    ) -> Result<Option<PathBuf>, Error> {
        let area = self.area()?.try_clone()?;
        let live = self.live()?.try_clone()?;
        area.sync_filesystem()?;
        // Re-check under the lock: another run may have written since the first check.
        let mut present = Vec::new();
        for entry in PKI_ENTRIES {
            if live.entry_stat(entry)?.is_some() {
                present.push(entry);
            }
        }
        let mut journal = Journal::default();
        let result = commit_entries(&live, &area, entries, &present, now, &mut journal);
        match result {
            Ok(backup) => {
                self.created = None;
                Ok(backup)
            }
            Err(err) => {
                journal.undo();
                Err(err)
            }
        }
    }
}

fn commit_entries(
    live: &Folder,
    area: &Folder,
    entries: &[&str],
    present: &[&str],
    now: OffsetDateTime,
    journal: &mut Journal,
) -> Result<Option<PathBuf>, Error> {
    let backup = if present.is_empty() {
        None
    } else {
        let backup = create_backup_dir(live, now, journal)?;
        for entry in present {
            journal.rename(live, entry, &backup, entry)?;
        }
        backup.sync()?;
        Some(backup.path().to_path_buf())
    };
    for entry in entries {
        journal.rename(area, entry, live, entry)?;
    }
    live.sync()?;
    Ok(backup)
}

impl Stage for Staging {
    fn area(&self) -> Result<&Folder, Error> {
        self.staging
            .as_ref()
            .map(StagingArea::folder)
            .ok_or_else(|| Error::Failed("the staging folder is gone".into()))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        self.staging.take();
        if let Some(lock) = self.lock.take() {
            if self.created.is_some()
                && let Some(folder) = &self.folder
            {
                let _ = rfs::unlinkat(&folder.fd, LOCK_FILE, AtFlags::empty());
            }
            drop(lock);
        }
        self.folder.take();
        if let Some(created) = self.created.take() {
            // Only folders this run made, and only if empty: never a user's file.
            let mut current = self.dir.clone();
            loop {
                if fs::remove_dir(&current).is_err() || current == created {
                    break;
                }
                match current.parent() {
                    Some(parent) => current = parent.to_path_buf(),
                    None => break,
                }
            }
        }
    }
}

/// Takes the lock file of an opened folder. It is opened without following a link and
/// without blocking (a FIFO planted there would hang an ordinary open), and must be a plain
/// file of ours with one name: anything else is refused, never truncated or chmod-ed.
pub fn lock_folder(folder: &Folder) -> Result<File, Error> {
    let lock_path = folder.path.join(LOCK_FILE);
    let not_plain = |what: &str| {
        Error::Refused(format!(
            "{} is {what}, not the plain lock file dockertls keeps there: remove it (rm {}) and run again",
            lock_path.display(),
            lock_path.display()
        ))
    };
    let opened = rfs::openat(
        &folder.fd,
        LOCK_FILE,
        OFlags::WRONLY | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    );
    let fd = match opened {
        Ok(fd) => fd,
        Err(err) => {
            let kind = folder
                .entry_stat(LOCK_FILE)
                .ok()
                .flatten()
                .map(|s| FileType::from_raw_mode(s.st_mode));
            return Err(match kind {
                Some(FileType::Symlink) => not_plain("a symbolic link"),
                Some(FileType::Fifo) => not_plain("a FIFO"),
                Some(FileType::Socket) => not_plain("a socket"),
                Some(FileType::CharacterDevice | FileType::BlockDevice) => not_plain("a device"),
                Some(FileType::Directory) => not_plain("a folder"),
                _ => unwritable(&folder.path, &err.into()),
            });
        }
    };
    let stat = rfs::fstat(&fd).map_err(|e| io_failed("cannot read", &lock_path, &e.into()))?;
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => {}
        FileType::Fifo => return Err(not_plain("a FIFO")),
        FileType::CharacterDevice | FileType::BlockDevice => return Err(not_plain("a device")),
        _ => return Err(not_plain("not a regular file")),
    }
    if !trusted_owner(stat.st_uid) || stat.st_nlink != 1 {
        return Err(not_plain(&if stat.st_nlink != 1 {
            format!("a file with {} hard links", stat.st_nlink)
        } else {
            format!("owned by uid {}", stat.st_uid)
        }));
    }
    rfs::fchmod(&fd, Mode::from_raw_mode(0o600))
        .map_err(|e| io_failed("cannot set the mode of", &lock_path, &e.into()))?;
    let lock = File::from(fd);
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(fs::TryLockError::WouldBlock) => Err(Error::refused(format!(
            "another dockertls run is working in {}",
            folder.path.display()
        ))
        .hint("wait for it to finish, then run this again")),
        Err(fs::TryLockError::Error(e)) => Err(io_failed("cannot lock", &lock_path, &e)),
    }
}

/// The renames done so far, undone in reverse order if a later step fails.
#[derive(Default)]
struct Journal {
    renames: Vec<(Folder, String, Folder, String)>,
    created_dirs: Vec<(Folder, String)>,
}

impl Journal {
    fn rename(
        &mut self,
        from: &Folder,
        name: &str,
        to: &Folder,
        to_name: &str,
    ) -> Result<(), Error> {
        from.rename(name, to, to_name, RenameFlags::NOREPLACE)
            .map_err(|e| Error::Failed(format!("{e}; nothing was changed")))?;
        self.renames.push((
            from.try_clone()?,
            name.to_string(),
            to.try_clone()?,
            to_name.to_string(),
        ));
        Ok(())
    }

    fn undo(&mut self) {
        for (from, name, to, to_name) in self.renames.drain(..).rev() {
            let _ = to.rename(&to_name, &from, &name, RenameFlags::NOREPLACE);
        }
        for (parent, name) in self.created_dirs.drain(..).rev() {
            let _ = rfs::unlinkat(&parent.fd, name.as_str(), AtFlags::REMOVEDIR);
        }
    }
}

/// Creates DIR/backup/<UTC timestamp>/ (0700), with a suffix if that name is taken. An
/// existing DIR/backup must be a real folder of ours: a link there is refused, not followed.
fn create_backup_dir(
    dir: &Folder,
    now: OffsetDateTime,
    journal: &mut Journal,
) -> Result<Folder, Error> {
    let (backups, created) = dir.ensure_dir(BACKUP_DIR)?;
    if created {
        journal
            .created_dirs
            .push((dir.try_clone()?, BACKUP_DIR.into()));
    }
    let stamp = backup_stamp(now);
    for attempt in 1..100 {
        let name = if attempt == 1 {
            stamp.clone()
        } else {
            format!("{stamp}-{attempt}")
        };
        if backups.entry_stat(&name)?.is_some() {
            continue;
        }
        let folder = backups.create_dir(&name)?;
        journal.created_dirs.push((backups.try_clone()?, name));
        return Ok(folder);
    }
    Err(Error::Failed(format!(
        "cannot find a free backup folder name in {}",
        backups.path().display()
    )))
}

/// Creates DIR/backup/<UTC timestamp>/ (0700), with a suffix if that name is taken.
pub fn new_backup_dir(dir: &Folder, now: OffsetDateTime) -> Result<Folder, Error> {
    create_backup_dir(dir, now, &mut Journal::default())
}

/// The backup folder name: the UTC time, sortable, safe in paths (`20261129T021548Z`).
pub fn backup_stamp(now: OffsetDateTime) -> String {
    let utc = now.to_offset(::time::UtcOffset::UTC);
    utc.format(format_description!(
        "[year][month][day]T[hour][minute][second]Z"
    ))
    .unwrap_or_else(|_| utc.unix_timestamp().to_string())
}

fn first_missing(dir: &Path) -> PathBuf {
    let mut top = dir.to_path_buf();
    while let Some(parent) = top.parent() {
        if parent.as_os_str().is_empty() || fs::symlink_metadata(parent).is_ok() {
            break;
        }
        top = parent.to_path_buf();
    }
    top
}

fn unwritable(dir: &Path, err: &io::Error) -> Error {
    Error::Refused(format!(
        "--dir {}: cannot write there: {err}",
        dir.display()
    ))
}

/// Why a folder cannot be trusted with keys: someone other than the caller or root can
/// change what it holds.
pub struct TrustProblem {
    /// The folder at fault (DIR, one of its parents, or a folder inside it).
    pub path: PathBuf,
    /// What is wrong and what it lets others do.
    pub message: String,
    /// The exact command that fixes it.
    pub fix: String,
    /// True for a mode problem (anyone may write), false for a foreign owner.
    pub writable: bool,
}

impl TrustProblem {
    /// The refusal of a command that reads or writes the PKI.
    pub fn into_error(self) -> Error {
        Error::Refused(format!(
            "{}; dockertls does not read or write keys there\nhint: check what it holds, then run: {}",
            self.message, self.fix
        ))
    }
}

/// Refuses a PKI folder that someone other than the caller (or root) could change: DIR, each
/// of its parents and the folders dockertls keeps in it (`ca/`, `server/`, `clients/`,
/// `clients/NAME/`, `backup/`) must be owned by the caller or root and not writable by group
/// or others. A parent writable by others is accepted only with the sticky bit (as `/tmp`):
/// then no one else can rename DIR away. A DIR that does not exist yet is checked from its
/// nearest existing parent. Called by every command that reads or writes the PKI.
pub fn check_trusted(dir: &Path) -> Result<(), Error> {
    check_trusted_within(dir, Reach::All)
}

/// Which folders of a PKI a command reads or writes, so that the trust check stats those (and
/// DIR, its parents and the folders kept in DIR) and not the folders it never opens: a
/// `server add` in a PKI of 1,000 clients has no reason to look at 1,000 client folders. Every
/// file is still checked as it is read (`Folder::read_file`) and every folder entered to write
/// is checked as it is entered (`Folder::ensure_dir`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Every folder of every server and client (the default of every command).
    All,
    /// DIR's own entries and the CA folder: what is read before the CA key is used.
    Ca,
    /// The CA folder and every server folder (`server add`: the new folder, and the revocation
    /// list and policy written into each server folder), not the client folders.
    Servers,
}

/// [`check_trusted`] of the folders `reach` names.
pub fn check_trusted_within(dir: &Path, reach: Reach) -> Result<(), Error> {
    match trust_problem_within(dir, reach) {
        Some(problem) => Err(problem.into_error()),
        None => Ok(()),
    }
}

/// Refuses a folder (a self-contained server folder) one of whose entries is a link, or is
/// owned or writable by someone other than the caller or root.
pub fn check_entries_trusted(folder: &Path) -> Result<(), Error> {
    let entries: Vec<PathBuf> = fs::read_dir(folder)
        .map(|entries| entries.flatten().take(10_000).map(|e| e.path()).collect())
        .unwrap_or_default();
    match entries_problem(entries) {
        Some(problem) => Err(problem.into_error()),
        None => Ok(()),
    }
}

/// The first reason `dir` (a PKI folder) cannot be trusted, if any.
pub fn trust_problem(dir: &Path) -> Option<TrustProblem> {
    trust_problem_within(dir, Reach::All)
}

/// [`trust_problem`] of the folders `reach` names (DIR, its parents and what DIR keeps are
/// always checked).
pub fn trust_problem_within(dir: &Path, reach: Reach) -> Option<TrustProblem> {
    if let Some(problem) = folder_trust_problem(dir) {
        return Some(problem);
    }
    // What dockertls keeps inside DIR: a link there would take keys elsewhere, and a folder or
    // file of another user (or writable by others) lets them swap or rewrite it.
    let pki = Pki::new(dir);
    let mut inside: Vec<PathBuf> = KEPT_ENTRIES.iter().map(|n| dir.join(n)).collect();
    let list = |folder: &Path| -> Vec<PathBuf> {
        if !fs::symlink_metadata(folder).is_ok_and(|m| m.is_dir()) {
            return Vec::new();
        }
        fs::read_dir(folder)
            .map(|entries| entries.flatten().take(10_000).map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    // Every folder of a server or a client is checked itself (a link, another owner, writable
    // by others); the files in it are checked when a command reads them (`Folder::read_file`):
    // the check costs one stat a folder, not a walk of every folder, whatever the PKI's size.
    let legacy = pki.path(layout::Legacy::SERVER_DIR);
    for folder in [pki.ca_dir(), legacy] {
        inside.extend(list(&folder));
    }
    if reach != Reach::Ca {
        inside.extend(list(&pki.servers_dir()));
    }
    if reach == Reach::All {
        inside.extend(list(&pki.clients_dir()));
    }
    entries_problem(inside)
}

/// The first of `paths` that is a link, or that someone else owns or may write.
fn entries_problem(paths: Vec<PathBuf>) -> Option<TrustProblem> {
    for path in paths {
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            return Some(TrustProblem {
                message: format!(
                    "{} is a symbolic link: dockertls never follows one inside the PKI folder",
                    path.display()
                ),
                fix: format!("rm {}", quote(&path)),
                path,
                writable: true,
            });
        }
        if let Some(problem) = meta_problem(&path, &meta, false) {
            return Some(problem);
        }
    }
    None
}

/// The first reason a folder holding keys or certificates cannot be trusted: the folder
/// itself (owner, group/other write) and every parent (owner, group/other write without the
/// sticky bit), along the path as given and along the path with links resolved.
pub fn folder_trust_problem(dir: &Path) -> Option<TrustProblem> {
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let existing = if fs::symlink_metadata(&absolute).is_ok() {
        absolute.clone()
    } else {
        nearest_existing_ancestor(&absolute)
    };
    let folder_exists = existing == absolute;
    if let Some(problem) = foreign_link_problem(&absolute) {
        return Some(problem);
    }
    if folder_exists
        && let Ok(meta) = fs::metadata(&absolute)
        && let Some(problem) = meta_problem(&absolute, &meta, false)
    {
        return Some(problem);
    }
    parents_problem(&absolute, &existing, folder_exists)
}

/// A link on the way to DIR (DIR itself included) is only as trustworthy as its owner:
/// whoever owns it can point it at a PKI of their own between the check and the read (as
/// fs.protected_symlinks would refuse, were it on).
fn foreign_link_problem(absolute: &Path) -> Option<TrustProblem> {
    use std::os::unix::fs::MetadataExt;
    for step in absolute.ancestors() {
        let Ok(meta) = fs::symlink_metadata(step) else {
            continue;
        };
        if meta.file_type().is_symlink() && !trusted_owner(meta.uid()) {
            let me = rustix::process::geteuid().as_raw();
            return Some(TrustProblem {
                message: format!(
                    "{} is a symbolic link owned by uid {}, not by you (uid {me}) or root: that user can point it at a folder of their own",
                    step.display(),
                    meta.uid()
                ),
                fix: format!(
                    "dockertls --dir {} ... (the folder it points to now, by its own path)",
                    quote(&fs::canonicalize(absolute).unwrap_or_else(|_| absolute.to_path_buf()))
                ),
                path: step.to_path_buf(),
                writable: true,
            });
        }
    }
    None
}

/// The first parent of DIR (along the path as given and along the path with links
/// resolved) that someone else could change. `existing` is DIR, or its nearest existing
/// ancestor when DIR does not exist yet.
fn parents_problem(absolute: &Path, existing: &Path, folder_exists: bool) -> Option<TrustProblem> {
    let start = |path: &Path| {
        if folder_exists {
            path.parent().map(Path::to_path_buf)
        } else {
            Some(path.to_path_buf())
        }
    };
    let mut parents: Vec<PathBuf> = Vec::new();
    let lexical_start = if folder_exists {
        absolute.parent().map(Path::to_path_buf)
    } else {
        Some(existing.to_path_buf())
    };
    parents.extend(
        lexical_start
            .iter()
            .flat_map(|p| p.ancestors().map(Path::to_path_buf)),
    );
    if let Ok(resolved) = fs::canonicalize(existing) {
        parents.extend(
            start(&resolved)
                .iter()
                .flat_map(|p| p.ancestors().map(Path::to_path_buf)),
        );
    }
    for parent in parents {
        let Ok(meta) = fs::symlink_metadata(&parent) else {
            continue;
        };
        // A link's own mode means nothing; the folder holding it is checked as a parent
        // too, and where it leads along the resolved path.
        if meta.file_type().is_symlink() {
            continue;
        }
        if let Some(problem) = meta_problem(&parent, &meta, true) {
            return Some(TrustProblem {
                message: format!(
                    "{} (a parent of {}) {}",
                    parent.display(),
                    absolute.display(),
                    problem.message
                ),
                fix: problem.fix,
                path: parent,
                writable: problem.writable,
            });
        }
    }
    None
}

/// Whether files of `uid` may be trusted: the caller's, root's, and under sudo (the caller
/// is root and SUDO_UID is set) those of the user who ran sudo, who is the operator: that
/// keeps `sudo dockertls install --dir ~/pki` working, while a third user's folder is refused.
fn trusted_owner(uid: u32) -> bool {
    let (me, sudo) = owners();
    uid == me || uid == 0 || (me == 0 && sudo == Some(uid))
}

/// The caller's uid and SUDO_UID: asked once a process (a check of a large PKI asks for
/// every folder).
fn owners() -> (u32, Option<u32>) {
    static OWNERS: std::sync::OnceLock<(u32, Option<u32>)> = std::sync::OnceLock::new();
    *OWNERS.get_or_init(|| {
        let me = rustix::process::geteuid().as_raw();
        let sudo = std::env::var("SUDO_UID")
            .ok()
            .and_then(|v| v.parse::<u32>().ok());
        (me, sudo)
    })
}

/// The problem with one folder's or file's owner or mode, if any. For a parent, group/other
/// write is accepted with the sticky bit.
fn meta_problem(path: &Path, meta: &fs::Metadata, parent: bool) -> Option<TrustProblem> {
    use std::os::unix::fs::MetadataExt;
    owner_mode_problem(path, meta.uid(), meta.mode(), meta.is_dir(), parent)
}

/// The owner-and-mode check of a folder dockertls enters or creates inside the PKI.
fn owner_problem(path: &Path, stat: &rfs::Stat) -> Option<TrustProblem> {
    owner_mode_problem(path, stat.st_uid, stat.st_mode, true, false)
}

fn owner_mode_problem(
    path: &Path,
    uid: u32,
    mode: u32,
    is_dir: bool,
    parent: bool,
) -> Option<TrustProblem> {
    let me = owners().0;
    let mode = mode & 0o7777;
    let quoted = quote(path);
    let what = if parent {
        String::new()
    } else {
        format!("{} ", path.display())
    };
    if !trusted_owner(uid) {
        return Some(TrustProblem {
            message: format!(
                "{what}is owned by uid {uid}, not by you (uid {me}) or root: that user can {}",
                if is_dir {
                    "replace any file in it"
                } else {
                    "rewrite it"
                }
            ),
            fix: format!("chown {me} {quoted}"),
            path: path.to_path_buf(),
            writable: false,
        });
    }
    let sticky = mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !(parent && sticky) {
        let consequence = if parent {
            "they can rename the folder below it away and put their own in its place"
        } else if is_dir {
            "they can replace its certificates and keys with their own"
        } else {
            "they can rewrite it"
        };
        return Some(TrustProblem {
            message: format!(
                "{what}is mode {mode:04o}, writable by group or others: {consequence}"
            ),
            fix: format!("chmod go-w {quoted}"),
            path: path.to_path_buf(),
            writable: true,
        });
    }
    None
}

fn quote(path: &Path) -> String {
    crate::render::shell_quote(&path.display().to_string())
}
