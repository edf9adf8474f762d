//! Changing an existing PKI in place: the only code that replaces files `init` wrote.
//!
//! Every changed folder (`server/`, `clients/NAME/`, `ca/`, ...) is built whole in a private
//! staging folder inside DIR and flushed to disk. The folder it replaces is first copied, with
//! its modes, to DIR/backup/<UTC timestamp>/ and flushed. Then the two folders are swapped in
//! one `renameat2(RENAME_EXCHANGE)`: at every instant DIR holds either the whole old folder or
//! the whole new one, so a key never sits beside a certificate it does not match. A run killed
//! at any point leaves each folder old or new, and its staging folder is removed by the next
//! run (which holds DIR's lock, so no other run can be using it).

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ::time::OffsetDateTime;

use crate::error::{Error, io_failed};
use crate::store;

/// A locked PKI folder being changed.
pub struct Workspace {
    dir: PathBuf,
    staging: Option<tempfile::TempDir>,
    now: OffsetDateTime,
    backup: Option<PathBuf>,
    _lock: fs::File,
}

impl Workspace {
    /// Locks DIR, which must hold a PKI, and makes a staging folder.
    pub fn open(dir: &Path, now: OffsetDateTime) -> Result<Workspace, Error> {
        require_pki(dir)?;
        let (lock, _) = store::lock_dir(dir)?;
        let staging = store::make_staging(dir)?;
        Ok(Workspace {
            dir: dir.to_path_buf(),
            staging: Some(staging),
            now,
            backup: None,
            _lock: lock,
        })
    }

    fn staging(&self) -> &Path {
        self.staging.as_ref().map_or(&self.dir, |s| s.path())
    }

    /// Creates a folder in the staging area (0700).
    pub fn mkdir(&self, relative: &str) -> Result<(), Error> {
        let path = self.staging().join(relative);
        if let Some(parent) = path.parent()
            && !parent.exists()
        {
            fs::create_dir_all(parent).map_err(|e| io_failed("cannot create", parent, &e))?;
            fs::set_permissions(parent, fs::Permissions::from_mode(store::PRIVATE_DIR))
                .map_err(|e| io_failed("cannot set the mode of", parent, &e))?;
        }
        store::create_private_dir(&path)
    }

    /// Writes a new file in the staging area with exactly `mode`.
    pub fn write(&self, relative: &str, contents: &[u8], mode: u32) -> Result<(), Error> {
        store::write_new_file(&self.staging().join(relative), contents, mode)
    }

    /// Stages a key/cert folder: `folder/ca.pem`, the certificate and its key, with Docker's
    /// modes.
    pub fn write_pair(
        &self,
        folder: &str,
        ca_pem: &str,
        issued: &crate::pki::Issued,
        cert_name: &str,
        key_name: &str,
    ) -> Result<(), Error> {
        self.mkdir(folder)?;
        self.write(
            &format!("{folder}/ca.pem"),
            ca_pem.as_bytes(),
            store::CERT_FILE,
        )?;
        self.write(
            &format!("{folder}/{cert_name}"),
            issued.cert_pem.as_bytes(),
            store::CERT_FILE,
        )?;
        self.write(
            &format!("{folder}/{key_name}"),
            issued.key_pem.as_bytes(),
            store::KEY_FILE,
        )
    }

    /// Flushes everything staged to disk (one syncfs).
    pub fn flush(&self) -> Result<(), Error> {
        store::sync_filesystem(self.staging())
    }

    /// The backup folder of this run, created on first use.
    pub fn backup_dir(&mut self) -> Result<PathBuf, Error> {
        if let Some(backup) = &self.backup {
            return Ok(backup.clone());
        }
        let backup = store::new_backup_dir(&self.dir, self.now)?;
        self.backup = Some(backup.clone());
        Ok(backup)
    }

    /// Copies DIR/relative (a folder) into the backup, files with their modes, and flushes it.
    pub fn back_up(&mut self, relative: &str) -> Result<(), Error> {
        let backup = self.backup_dir()?;
        let from = self.dir.join(relative);
        let to = backup.join(relative);
        if let Some(parent) = to.parent()
            && !parent.exists()
        {
            store::create_private_dir(parent)?;
        }
        copy_tree(&from, &to)?;
        store::sync_filesystem(&backup)
    }

    /// Swaps the staged folder with DIR/relative in one step, then discards the old one
    /// (already backed up).
    pub fn swap_in(&self, relative: &str) -> Result<(), Error> {
        let staged = self.staging().join(relative);
        let live = self.dir.join(relative);
        rename2(&staged, &live, libc::RENAME_EXCHANGE)?;
        store::sync_dir(live.parent().unwrap_or(&self.dir))?;
        // `staged` now holds the old folder.
        fs::remove_dir_all(&staged).map_err(|e| io_failed("cannot remove", &staged, &e))
    }

    /// Moves a staged folder to DIR/relative, which must not exist.
    pub fn add(&self, relative: &str) -> Result<(), Error> {
        let live = self.dir.join(relative);
        rename2(
            &self.staging().join(relative),
            &live,
            libc::RENAME_NOREPLACE,
        )?;
        store::sync_dir(live.parent().unwrap_or(&self.dir))
    }

    /// Moves DIR/relative into the backup (nothing is deleted).
    pub fn move_to_backup(&mut self, relative: &str) -> Result<PathBuf, Error> {
        let backup = self.backup_dir()?;
        let to = backup.join(relative);
        if let Some(parent) = to.parent()
            && !parent.exists()
        {
            store::create_private_dir(parent)?;
        }
        let from = self.dir.join(relative);
        fs::rename(&from, &to).map_err(|e| io_failed("cannot move", &from, &e))?;
        store::sync_dir(from.parent().unwrap_or(&self.dir))?;
        store::sync_dir(to.parent().unwrap_or(&backup))?;
        Ok(to)
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        if let Some(staging) = self.staging.take() {
            let _ = staging.close();
        }
    }
}

/// Refuses a DIR that holds no PKI, or one with a symlink where dockertls writes.
pub fn require_pki(dir: &Path) -> Result<(), Error> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(Error::Refused(format!(
                "--dir {} is a symbolic link, which dockertls does not follow",
                dir.display()
            )));
        }
        Ok(meta) if meta.is_dir() => {}
        _ => {
            return Err(Error::Refused(format!(
                "--dir {} holds no dockertls PKI (no ca/ca.pem): create one with dockertls init, or pass --dir",
                dir.display()
            )));
        }
    }
    for entry in ["ca", "server", "clients", "ca/ca.pem", "ca/ca-key.pem"] {
        let path = dir.join(entry);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(Error::Refused(format!(
                    "{} is a symbolic link: dockertls never writes through one",
                    path.display()
                )));
            }
            Ok(_) => {}
            Err(_) if entry.starts_with("ca") => {
                return Err(Error::Refused(format!(
                    "--dir {} holds no dockertls PKI ({} is missing): create one with dockertls init, or pass --dir",
                    dir.display(),
                    entry
                )));
            }
            Err(_) => {}
        }
    }
    Ok(())
}

fn rename2(from: &Path, to: &Path, flags: libc::c_uint) -> Result<(), Error> {
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| Error::Failed(format!("{} has a NUL byte", p.display())))
    };
    let (cfrom, cto) = (c(from)?, c(to)?);
    // SAFETY: both paths are valid NUL-terminated strings that outlive the call.
    let status = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            cfrom.as_ptr(),
            libc::AT_FDCWD,
            cto.as_ptr(),
            flags,
        )
    };
    if status == 0 {
        Ok(())
    } else {
        let err = std::io::Error::last_os_error();
        Err(Error::Failed(format!(
            "cannot move {} to {}: {err}",
            from.display(),
            to.display()
        )))
    }
}

/// Copies a folder tree (regular files and folders only), keeping file modes.
fn copy_tree(from: &Path, to: &Path) -> Result<(), Error> {
    store::create_private_dir(to)?;
    let entries = fs::read_dir(from).map_err(|e| io_failed("cannot read", from, &e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_failed("cannot read", from, &e))?;
        let kind = entry
            .file_type()
            .map_err(|e| io_failed("cannot read", &entry.path(), &e))?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            let meta = entry
                .metadata()
                .map_err(|e| io_failed("cannot read", &entry.path(), &e))?;
            let contents = zeroize::Zeroizing::new(
                fs::read(entry.path()).map_err(|e| io_failed("cannot read", &entry.path(), &e))?,
            );
            store::write_new_file(&target, &contents, meta.permissions().mode() & 0o7777)?;
        }
    }
    Ok(())
}
