//! The only code that writes to the PKI folder. Its promises: a key file is never readable by
//! group or other at any instant; every file appears at its final path complete (written in a
//! private staging folder, then renamed into place); a symlink at an output path is refused,
//! never followed; an existing PKI is replaced only when asked, after moving it to a backup;
//! a failed run removes what it staged and leaves the folder as it found it.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ::time::OffsetDateTime;
use ::time::macros::format_description;

use crate::error::{Error, io_failed};

/// Mode of folders that hold keys, and of the staging and backup folders.
pub const PRIVATE_DIR: u32 = 0o700;
/// Mode of private keys (CIS Docker Benchmark 3.10/3.12/3.14 want exactly 0400).
pub const KEY_FILE: u32 = 0o400;
/// Mode of certificates (CIS 3.9/3.11/3.13: 0444 or stricter).
pub const CERT_FILE: u32 = 0o444;
/// Mode of daemon.json and override.conf (CIS 3.17/3.18: 0644 or stricter).
pub const CONFIG_FILE: u32 = 0o644;

/// The entries of DIR that make up a PKI; their presence means "a PKI is here".
pub const PKI_ENTRIES: [&str; 5] = ["ca", "server", "clients", "daemon.json", "override.conf"];

const LOCK_FILE: &str = ".dockertls.lock";

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
            return Ok(Vec::new());
        }
        Err(err) if err.raw_os_error() == Some(libc::ENOTDIR) => {
            return Err(Error::Refused(format!(
                "--dir {}: a part of that path is a file, not a directory",
                dir.display()
            )));
        }
        Err(err) => {
            return Err(Error::Refused(format!("--dir {}: {err}", dir.display())));
        }
    }
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
    if !present.is_empty() && !force {
        return Err(Error::Refused(format!(
            "{} already holds a PKI ({}); nothing was changed. Use another --dir, or --force to replace it after a backup to {}/backup/",
            dir.display(),
            present.join(", "),
            dir.display()
        )));
    }
    let backup = dir.join("backup");
    if let Ok(meta) = fs::symlink_metadata(&backup)
        && !meta.is_dir()
    {
        return Err(Error::Refused(format!(
            "{} is not a directory: dockertls keeps backups there; move it away",
            backup.display()
        )));
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

/// A private folder inside DIR where a whole PKI is written before it is moved into place.
/// Dropping it without `commit` removes everything it created.
pub struct Staging {
    dir: PathBuf,
    staging: Option<tempfile::TempDir>,
    /// The top-most folder this run created for DIR, removed again on failure.
    created: Option<PathBuf>,
    lock: Option<(File, PathBuf)>,
}

impl Staging {
    /// Creates DIR if needed (mode 0700), takes DIR's lock, and makes the staging folder.
    pub fn create(dir: &Path) -> Result<Staging, Error> {
        let mut staging = Staging {
            dir: dir.to_path_buf(),
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
        staging.lock = Some(lock_dir(dir)?);
        staging.staging = Some(make_staging(dir)?);
        Ok(staging)
    }

    fn root(&self) -> &Path {
        match &self.staging {
            Some(temp) => temp.path(),
            None => &self.dir,
        }
    }

    /// Creates a folder (relative to DIR) in the staging area, mode 0700 whatever the umask.
    pub fn mkdir(&self, relative: &str) -> Result<(), Error> {
        create_private_dir(&self.root().join(relative))
    }

    /// Writes a file (relative to DIR) in the staging area with exactly `mode`; flushed to
    /// disk all at once by `commit`, before anything is moved into place.
    pub fn write(&self, relative: &str, contents: &[u8], mode: u32) -> Result<(), Error> {
        write_new_file(&self.root().join(relative), contents, mode)
    }

    /// Moves the staged entries into DIR. Entries of an existing PKI go first to
    /// DIR/backup/<UTC timestamp>/, whose path is returned. On failure, everything is moved
    /// back as it was.
    pub fn commit(
        mut self,
        entries: &[&str],
        now: OffsetDateTime,
    ) -> Result<Option<PathBuf>, Error> {
        let staged_root = self.root().to_path_buf();
        sync_filesystem(&staged_root)?;
        // Re-check under the lock: another run may have written since the first check.
        let present: Vec<&str> = PKI_ENTRIES
            .into_iter()
            .filter(|entry| fs::symlink_metadata(self.dir.join(entry)).is_ok())
            .collect();
        let mut journal = Journal::default();
        let result = self.commit_inner(entries, &present, now, &staged_root, &mut journal);
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

    fn commit_inner(
        &self,
        entries: &[&str],
        present: &[&str],
        now: OffsetDateTime,
        staged_root: &Path,
        journal: &mut Journal,
    ) -> Result<Option<PathBuf>, Error> {
        let backup = if present.is_empty() {
            None
        } else {
            let backup = create_backup_dir(&self.dir, now, journal)?;
            for entry in present {
                journal.rename(&self.dir.join(entry), &backup.join(entry))?;
            }
            sync_dir(&backup)?;
            Some(backup)
        };
        for entry in entries {
            journal.rename(&staged_root.join(entry), &self.dir.join(entry))?;
        }
        sync_dir(&self.dir)?;
        Ok(backup)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Some(temp) = self.staging.take() {
            let _ = temp.close();
        }
        if let Some((lock, path)) = self.lock.take() {
            if self.created.is_some() {
                let _ = fs::remove_file(path);
            }
            drop(lock);
        }
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

/// Takes DIR's lock file (0600, created if needed) without waiting: a second run is refused.
pub fn lock_dir(dir: &Path) -> Result<(File, PathBuf), Error> {
    let lock_path = dir.join(LOCK_FILE);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc_nofollow())
        .open(&lock_path)
        .map_err(|e| unwritable(dir, &e))?;
    lock.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(|e| io_failed("cannot set the mode of", &lock_path, &e))?;
    match lock.try_lock() {
        Ok(()) => Ok((lock, lock_path)),
        Err(fs::TryLockError::WouldBlock) => Err(Error::Refused(format!(
            "another dockertls run is working in {}; wait for it to finish",
            dir.display()
        ))),
        Err(fs::TryLockError::Error(e)) => Err(io_failed("cannot lock", &lock_path, &e)),
    }
}

/// Makes a private staging folder in DIR, after removing those a killed run left behind.
/// Call with DIR's lock held: then no other run is using them.
pub fn make_staging(dir: &Path) -> Result<tempfile::TempDir, Error> {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if is_dir
                && entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(STAGING_PREFIX)
            {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
    let temp = tempfile::Builder::new()
        .prefix(STAGING_PREFIX)
        .permissions(fs::Permissions::from_mode(PRIVATE_DIR))
        .tempdir_in(dir)
        .map_err(|e| unwritable(dir, &e))?;
    // The mode given at creation is reduced by the umask: set it exactly.
    fs::set_permissions(temp.path(), fs::Permissions::from_mode(PRIVATE_DIR))
        .map_err(|e| io_failed("cannot set the mode of", temp.path(), &e))?;
    Ok(temp)
}

/// The name prefix of staging folders.
pub const STAGING_PREFIX: &str = ".dockertls-staging-";

/// Creates a folder with mode 0700 exactly, whatever the umask.
pub fn create_private_dir(path: &Path) -> Result<(), Error> {
    DirBuilder::new()
        .mode(PRIVATE_DIR)
        .create(path)
        .map_err(|e| io_failed("cannot create", path, &e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(PRIVATE_DIR))
        .map_err(|e| io_failed("cannot set the mode of", path, &e))
}

/// Creates a new file with exactly `mode`. It is created 0600 (never group- or
/// other-readable, whatever the umask), refusing an existing file or a symlink, and only
/// then given its final mode.
pub fn write_new_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc_nofollow())
        .open(path)
        .map_err(|e| io_failed("cannot create", path, &e))?;
    file.write_all(contents)
        .map_err(|e| io_failed("cannot write", path, &e))?;
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| io_failed("cannot set the mode of", path, &e))
}

/// The renames done so far, undone in reverse order if a later step fails.
#[derive(Default)]
struct Journal {
    renames: Vec<(PathBuf, PathBuf)>,
    created_dirs: Vec<PathBuf>,
}

impl Journal {
    fn rename(&mut self, from: &Path, to: &Path) -> Result<(), Error> {
        fs::rename(from, to).map_err(|e| {
            Error::Failed(format!(
                "cannot move {} to {}: {e}; nothing was changed",
                from.display(),
                to.display()
            ))
        })?;
        self.renames.push((from.to_path_buf(), to.to_path_buf()));
        Ok(())
    }

    fn undo(&mut self) {
        for (from, to) in self.renames.drain(..).rev() {
            let _ = fs::rename(&to, &from);
        }
        for dir in self.created_dirs.drain(..).rev() {
            let _ = fs::remove_dir(dir);
        }
    }
}

fn create_backup_dir(
    dir: &Path,
    now: OffsetDateTime,
    journal: &mut Journal,
) -> Result<PathBuf, Error> {
    let backups = dir.join("backup");
    match DirBuilder::new().mode(PRIVATE_DIR).create(&backups) {
        Ok(()) => {
            journal.created_dirs.push(backups.clone());
            fs::set_permissions(&backups, fs::Permissions::from_mode(PRIVATE_DIR))
                .map_err(|e| io_failed("cannot set the mode of", &backups, &e))?;
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_failed("cannot create", &backups, &e)),
    }
    let stamp = backup_stamp(now);
    for attempt in 1..100 {
        let name = if attempt == 1 {
            stamp.clone()
        } else {
            format!("{stamp}-{attempt}")
        };
        let path = backups.join(name);
        match DirBuilder::new().mode(PRIVATE_DIR).create(&path) {
            Ok(()) => {
                journal.created_dirs.push(path.clone());
                fs::set_permissions(&path, fs::Permissions::from_mode(PRIVATE_DIR))
                    .map_err(|e| io_failed("cannot set the mode of", &path, &e))?;
                return Ok(path);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_failed("cannot create", &path, &e)),
        }
    }
    Err(Error::Failed(format!(
        "cannot find a free backup folder name in {}",
        backups.display()
    )))
}

/// The backup folder name: the UTC time, sortable, safe in paths (`20261129T021548Z`).
pub fn backup_stamp(now: OffsetDateTime) -> String {
    let utc = now.to_offset(::time::UtcOffset::UTC);
    utc.format(format_description!(
        "[year][month][day]T[hour][minute][second]Z"
    ))
    .unwrap_or_else(|_| utc.unix_timestamp().to_string())
}

/// Makes everything written under `path` durable with one syncfs(2): the same guarantee as an
/// fsync of every staged file and folder, at the cost of one flush instead of one per file.
pub fn sync_filesystem(path: &Path) -> Result<(), Error> {
    let dir = File::open(path).map_err(|e| io_failed("cannot flush", path, &e))?;
    // SAFETY: syncfs only reads the descriptor, which `dir` keeps open for the call.
    let status = unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&dir)) };
    if status == 0 {
        Ok(())
    } else {
        Err(io_failed("cannot flush", path, &io::Error::last_os_error()))
    }
}

pub fn sync_dir(path: &Path) -> Result<(), Error> {
    File::open(path)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| io_failed("cannot flush", path, &e))
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

/// O_NOFOLLOW: opening a path whose last component is a symlink fails instead of following it.
fn libc_nofollow() -> i32 {
    libc::O_NOFOLLOW | libc::O_CLOEXEC
}

/// Creates DIR/backup/<UTC timestamp>/ (0700), with a suffix if that name is taken.
pub fn new_backup_dir(dir: &Path, now: OffsetDateTime) -> Result<PathBuf, Error> {
    create_backup_dir(dir, now, &mut Journal::default())
}
