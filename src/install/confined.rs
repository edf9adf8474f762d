//! Every path `install` reads or writes, resolved by the kernel inside one root folder
//! (`--root`, `/` by default), never by string joining.
//!
//! Why openat2(2) through rustix rather than cap-std: cap-std confines paths but follows links
//! that stay inside its `Dir`, and checks that in user space one component at a time; install
//! needs two different rules, which openat2's flags give directly and atomically in the kernel:
//! - files install writes or replaces (the TLS files, daemon.json, its drop-in, their folders,
//!   the journal) and the PKI it copies from: `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, walked
//!   one component at a time so that a refusal names the link. A link anywhere on the way is
//!   refused, never followed, even a link that stays inside the root: an image's
//!   `/etc/docker -> /srv/x` must not redirect the server key either.
//! - unit files it only reads: `RESOLVE_IN_ROOT`, so links resolve as they will when the image
//!   boots (`/lib -> usr/lib` on merged-/usr systems, a unit linked in by `systemctl link`),
//!   and an absolute link still cannot leave the root.
//!
//! Every read is of a regular file (a FIFO, a device such as /dev/zero, a folder are refused
//! before reading: opened with O_NONBLOCK, then fstat) and bounded by `READ_LIMIT`.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use zeroize::Zeroizing;

use crate::error::Error;

/// Upper bound of any file install reads (PEM files, daemon.json, unit files): far above real
/// ones, small enough that a hostile file cannot exhaust memory.
pub const READ_LIMIT: u64 = 1 << 20;

/// How symbolic links on the way to a path are treated.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// Refused wherever they are (whatever install writes or replaces).
    Refuse,
    /// Followed as if the root were `/`, never out of it (unit files, read only).
    InRoot,
}

/// A folder that every path is resolved under.
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

/// A regular file as read: contents (wiped when dropped: it may be a key), mode bits, owner,
/// group, link count.
pub struct FileRead {
    pub contents: Zeroizing<Vec<u8>>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u64,
}

/// A file read with `Root::read_resolved`.
pub enum Resolved {
    Missing,
    /// /dev/null, or a link to it: systemd's mark of a masked unit or drop-in.
    Null,
    /// A regular file, and the name of the file the path resolved to (for an alias, the
    /// target's name).
    File {
        read: FileRead,
        name: String,
    },
}

/// A folder opened through a `Root` (no link on its way).
pub struct Dir {
    fd: OwnedFd,
    /// Its path as shown in messages.
    shown: PathBuf,
}

fn io(err: Errno) -> std::io::Error {
    std::io::Error::from(err)
}

/// A system call that failed on `path` (the machine, not the input: exit 1).
fn io_failed(what: &str, path: &Path, err: Errno) -> Error {
    crate::error::io_failed(what, path, &io(err))
}

/// The path below the root: `host` without its leading slashes, components checked.
fn components(host: &str) -> Result<Vec<&str>, Error> {
    let parts: Vec<&str> = host
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(Error::Refused(format!(
            "{host}: a path with \"..\" is never used by install"
        )));
    }
    Ok(parts)
}

impl Root {
    /// Opens `path` (links in the path given on the command line are the operator's choice).
    pub fn open(path: &Path) -> Result<Root, Error> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            Error::Refused(format!(
                "{}: cannot open it as a folder: {}",
                path.display(),
                io(e)
            ))
        })?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The root as given on the command line.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `host` (absolute, as on the daemon host) as it is found from here: under the root.
    pub fn shown(&self, host: &str) -> PathBuf {
        self.path.join(host.trim_start_matches('/'))
    }

    /// The folder `host`, every component a real folder (no link); None when one is missing.
    pub fn dir(&self, host: &str) -> Result<Option<Dir>, Error> {
        self.walk(host, None, &mut Vec::new())
    }

    /// The folder `host`, creating missing components with exactly `mode` (whatever the
    /// umask); the host paths of those created are appended to `created`, outermost first.
    pub fn create_dirs(
        &self,
        host: &str,
        mode: u32,
        created: &mut Vec<String>,
    ) -> Result<Dir, Error> {
        self.walk(host, Some(mode), created)?
            .ok_or_else(|| Error::Failed(format!("cannot create {}", self.shown(host).display())))
    }

    fn walk(
        &self,
        host: &str,
        create: Option<u32>,
        created: &mut Vec<String>,
    ) -> Result<Option<Dir>, Error> {
        let parts = components(host)?;
        let mut current = rustix::io::dup(&self.fd).map_err(|e| {
            Error::Failed(format!("cannot open {}: {}", self.path.display(), io(e)))
        })?;
        let mut so_far = String::new();
        for part in parts {
            so_far.push('/');
            so_far.push_str(part);
            let shown = self.shown(&so_far);
            let open = |at: &OwnedFd| {
                rustix::fs::openat2(
                    at,
                    part,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                    ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
                )
            };
            let next = match open(&current) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => match create {
                    None => return Ok(None),
                    Some(mode) => {
                        rustix::fs::mkdirat(&current, part, Mode::from_raw_mode(mode)).map_err(
                            |e| {
                                Error::Failed(format!(
                                    "cannot create {}: {}",
                                    shown.display(),
                                    io(e)
                                ))
                            },
                        )?;
                        created.push(so_far.clone());
                        let fd = open(&current).map_err(|e| {
                            Error::Failed(format!("cannot open {}: {}", shown.display(), io(e)))
                        })?;
                        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| {
                            Error::Failed(format!(
                                "cannot set the mode of {}: {}",
                                shown.display(),
                                io(e)
                            ))
                        })?;
                        fd
                    }
                },
                Err(err) => return Err(refusal(&current, part, &shown, err, "folder")),
            };
            current = next;
        }
        Ok(Some(Dir {
            fd: current,
            shown: self.shown(host),
        }))
    }

    /// Reads the regular file `host`; None when it (or a folder on its way) does not exist.
    pub fn read(&self, host: &str, links: Links) -> Result<Option<FileRead>, Error> {
        let shown = self.shown(host);
        let fd = match links {
            Links::Refuse => {
                let parts = components(host)?;
                let Some((name, parent)) = parts.split_last() else {
                    return Err(Error::Refused(format!("{host} is not a file")));
                };
                let Some(dir) = self.dir(&parent.join("/"))? else {
                    return Ok(None);
                };
                match rustix::fs::openat2(
                    &dir.fd,
                    *name,
                    OFlags::RDONLY
                        | OFlags::NONBLOCK
                        | OFlags::NOCTTY
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::empty(),
                    ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
                ) {
                    Ok(fd) => fd,
                    Err(Errno::NOENT) => return Ok(None),
                    Err(err) => return Err(refusal(&dir.fd, name, &shown, err, "file")),
                }
            }
            Links::InRoot => {
                return match self.read_resolved(host)? {
                    Resolved::File { read, .. } => Ok(Some(read)),
                    Resolved::Missing => Ok(None),
                    Resolved::Null => Err(Error::Refused(format!(
                        "{} is /dev/null (or a link to it), not a regular file",
                        shown.display()
                    ))),
                };
            }
        };
        read_regular(fd, &shown).map(Some)
    }

    /// Reads `host` as systemd finds a unit, drop-in or environment file: links resolved by
    /// the kernel as if the root were `/` (never out of it), then a regular file read as
    /// `read` does. A link to /dev/null (a masked unit) is `Null` even when the root has no
    /// /dev/null.
    pub fn read_resolved(&self, host: &str) -> Result<Resolved, Error> {
        let parts = components(host)?;
        let shown = self.shown(host);
        let opened = self.open_in_root(
            &parts.join("/"),
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY,
        );
        let fd = match opened {
            Ok(fd) => fd,
            Err(Errno::NOENT) | Err(Errno::NOTDIR) if self.links_to_null(&parts) => {
                return Ok(Resolved::Null);
            }
            Err(Errno::NOENT) | Err(Errno::NOTDIR) => return Ok(Resolved::Missing),
            Err(Errno::LOOP) => {
                return Err(Error::Refused(format!(
                    "{}: too many levels of symbolic links (a link loop)",
                    shown.display()
                )));
            }
            // The machine failing, not the input: no hint to give.
            Err(err) => return Err(io_failed("cannot read", &shown, err)),
        };
        if let Ok(stat) = rustix::fs::fstat(&fd)
            && FileType::from_raw_mode(stat.st_mode) == FileType::CharacterDevice
            && (
                rustix::fs::major(stat.st_rdev),
                rustix::fs::minor(stat.st_rdev),
            ) == (1, 3)
        {
            return Ok(Resolved::Null);
        }
        // The name it resolved to, as the kernel resolved it (an alias's target).
        let name = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .ok()
            .and_then(|p| Some(p.file_name()?.to_string_lossy().into_owned()))
            .unwrap_or_else(|| parts.last().copied().unwrap_or_default().to_string());
        let read = read_regular(fd, &shown)?;
        Ok(Resolved::File { read, name })
    }

    /// Opens `relative` (components already checked; empty for the root itself) with links
    /// resolved by the kernel as if the root were `/`, never out of it.
    fn open_in_root(&self, relative: &str, flags: OFlags) -> Result<OwnedFd, Errno> {
        rustix::fs::openat2(
            &self.fd,
            if relative.is_empty() { "." } else { relative },
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
    }

    /// Whether the last component of `parts` is a link to /dev/null (its folder resolved
    /// inside the root). Only decides between "missing" and "masked": nothing is read.
    fn links_to_null(&self, parts: &[&str]) -> bool {
        let Some((name, parent)) = parts.split_last() else {
            return false;
        };
        let Ok(dir) = self.open_in_root(&parent.join("/"), OFlags::PATH | OFlags::DIRECTORY) else {
            return false;
        };
        rustix::fs::readlinkat(&dir, *name, Vec::new())
            .is_ok_and(|target| target.as_bytes() == b"/dev/null")
    }

    /// The names of the entries of folder `host` (links followed inside the root: a read);
    /// empty when it does not exist. At most `limit` names.
    pub fn list(&self, host: &str, limit: usize) -> Result<Vec<String>, Error> {
        let relative = components(host)?.join("/");
        let fd = match self.open_in_root(&relative, OFlags::RDONLY | OFlags::DIRECTORY) {
            Ok(fd) => fd,
            Err(Errno::NOENT) | Err(Errno::NOTDIR) => return Ok(Vec::new()),
            Err(err) => return Err(io_failed("cannot read the folder", &self.shown(host), err)),
        };
        let mut names = Vec::new();
        let entries = rustix::fs::Dir::new(fd).map_err(|e| {
            Error::Refused(format!(
                "cannot read the folder {}: {}",
                self.shown(host).display(),
                io(e)
            ))
        })?;
        for entry in entries {
            let entry =
                entry.map_err(|e| io_failed("cannot read the folder", &self.shown(host), e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "." || name == ".." {
                continue;
            }
            if names.len() >= limit {
                return Err(Error::Refused(format!(
                    "{} holds more than {limit} entries: not a folder install reads",
                    self.shown(host).display()
                )));
            }
            names.push(name);
        }
        names.sort();
        Ok(names)
    }
}

/// A refusal for `name` in `at` that openat2 would not open, naming a link as a link.
fn refusal(at: &OwnedFd, name: &str, shown: &Path, err: Errno, what: &str) -> Error {
    let kind = rustix::fs::statat(at, name, AtFlags::SYMLINK_NOFOLLOW)
        .map(|s| FileType::from_raw_mode(s.st_mode))
        .ok();
    match (err, kind) {
        (_, Some(FileType::Symlink)) | (Errno::LOOP, _) => Error::Refused(format!(
            "{} is a symbolic link: install never reads or writes through one (it could send the server key or daemon.json elsewhere); replace it by a real {what}",
            shown.display()
        )),
        (Errno::NOTDIR, _) => {
            Error::Refused(format!("{} is not a folder; move it away", shown.display()))
        }
        (err, _) => Error::Refused(format!("cannot open {}: {}", shown.display(), io(err))),
    }
}

// The stat field types differ between architectures.
#[allow(clippy::unnecessary_cast)]
/// Reads an opened file after checking it is a regular file no larger than `READ_LIMIT`.
fn read_regular(fd: OwnedFd, shown: &Path) -> Result<FileRead, Error> {
    let stat = rustix::fs::fstat(&fd)
        .map_err(|e| Error::Refused(format!("cannot read {}: {}", shown.display(), io(e))))?;
    let kind = FileType::from_raw_mode(stat.st_mode);
    if kind != FileType::RegularFile {
        let what = match kind {
            FileType::Fifo => "a FIFO",
            FileType::CharacterDevice => "a character device",
            FileType::BlockDevice => "a block device",
            FileType::Directory => "a folder",
            FileType::Socket => "a socket",
            _ => "not a regular file",
        };
        return Err(Error::Refused(format!(
            "{} is {what}, not a regular file: install reads only regular files; replace it",
            shown.display()
        )));
    }
    let size = u64::try_from(stat.st_size).unwrap_or(0);
    if size > READ_LIMIT {
        return Err(Error::Refused(format!(
            "{} is larger than 1 MiB ({size} bytes, more than the {READ_LIMIT} install reads): not a file it writes or reads",
            shown.display()
        )));
    }
    let mut contents = Zeroizing::new(Vec::with_capacity(size as usize + 1));
    File::from(fd)
        .take(READ_LIMIT + 1)
        .read_to_end(&mut contents)
        .map_err(|e| Error::Refused(format!("cannot read {}: {e}", shown.display())))?;
    if contents.len() as u64 > READ_LIMIT {
        return Err(Error::Refused(format!(
            "{} grows past {READ_LIMIT} bytes while read: refusing it",
            shown.display()
        )));
    }
    Ok(FileRead {
        contents,
        mode: stat.st_mode & 0o7777,
        uid: stat.st_uid,
        gid: stat.st_gid,
        nlink: stat.st_nlink as u64,
    })
}

/// The state of one entry of a folder, not following a link.
pub struct Entry {
    pub kind: FileType,
    pub nlink: u64,
    pub ino: u64,
    pub dev: u64,
}

impl Dir {
    /// The folder as shown in messages.
    pub fn shown(&self) -> &Path {
        &self.shown
    }

    fn path_of(&self, name: &str) -> PathBuf {
        self.shown.join(name)
    }

    /// What `name` is (without following a link); None when absent.
    // The stat field types differ between architectures.
    #[allow(clippy::unnecessary_cast)]
    pub fn entry(&self, name: &str) -> Result<Option<Entry>, Error> {
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(Entry {
                kind: FileType::from_raw_mode(stat.st_mode),
                nlink: stat.st_nlink as u64,
                ino: stat.st_ino as u64,
                dev: stat.st_dev as u64,
            })),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(Error::Failed(format!(
                "cannot read {}: {}",
                self.path_of(name).display(),
                io(e)
            ))),
        }
    }

    /// Creates the new file `name`: created 0600 with O_EXCL and O_NOFOLLOW (never readable by
    /// group or other, whatever the umask), written, owned by root:root when `root_owned`,
    /// given `mode` with fchmod, flushed with fsync.
    pub fn create_file(
        &self,
        name: &str,
        contents: &[u8],
        mode: u32,
        root_owned: bool,
    ) -> Result<(), Error> {
        let shown = self.path_of(name);
        let failed = |what: &str, e: std::io::Error| {
            Error::Failed(format!("{what} {}: {e}", shown.display()))
        };
        let fd = rustix::fs::openat2(
            &self.fd,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        )
        .map_err(|e| failed("cannot create", io(e)))?;
        let mut file = File::from(fd);
        file.write_all(contents)
            .map_err(|e| failed("cannot write", e))?;
        if root_owned {
            rustix::fs::fchown(
                file.as_fd(),
                Some(rustix::fs::Uid::ROOT),
                Some(rustix::fs::Gid::ROOT),
            )
            .map_err(|e| failed("cannot set root:root on", io(e)))?;
        }
        rustix::fs::fchmod(file.as_fd(), Mode::from_raw_mode(mode))
            .map_err(|e| failed("cannot set the mode of", io(e)))?;
        rustix::fs::fsync(file.as_fd()).map_err(|e| failed("cannot write", io(e)))
    }

    /// A second name `to` for the file `from` (a backup that costs no space and no copy).
    pub fn link(&self, from: &str, to: &str) -> Result<(), Errno> {
        rustix::fs::linkat(&self.fd, from, &self.fd, to, AtFlags::empty())
    }

    /// Renames `from` to `to` in this folder (replacing `to` atomically).
    pub fn rename(&self, from: &str, to: &str) -> Result<(), Error> {
        rustix::fs::renameat(&self.fd, from, &self.fd, to).map_err(|e| {
            Error::Failed(format!(
                "cannot rename {} to {}: {}",
                self.path_of(from).display(),
                to,
                io(e)
            ))
        })
    }

    /// Removes the file `name`; absent is fine.
    pub fn unlink(&self, name: &str) -> Result<(), Error> {
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(Error::Failed(format!(
                "cannot remove {}: {}",
                self.path_of(name).display(),
                io(e)
            ))),
        }
    }

    /// Removes the empty folder `name`; absent or not empty is fine (never a user's file).
    pub fn remove_empty_dir(&self, name: &str) {
        let _ = rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR);
    }

    /// Makes the folder's entries durable.
    pub fn sync(&self) -> Result<(), Error> {
        rustix::fs::fsync(&self.fd)
            .map_err(|e| Error::Failed(format!("cannot flush {}: {}", self.shown.display(), io(e))))
    }

    /// Takes an exclusive lock on the folder for this process's life, without waiting.
    pub fn lock(&self) -> Result<(), Error> {
        match rustix::fs::flock(&self.fd, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(()),
            Err(Errno::WOULDBLOCK) => Err(Error::Refused(format!(
                "another dockertls install is working in {}; wait for it to finish",
                self.shown.display()
            ))),
            Err(e) => Err(Error::Failed(format!(
                "cannot lock {}: {}",
                self.shown.display(),
                io(e)
            ))),
        }
    }

    /// Reads the regular file `name` of this folder (no link), bounded.
    pub fn read(&self, name: &str) -> Result<Option<FileRead>, Error> {
        let shown = self.path_of(name);
        match rustix::fs::openat2(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(fd) => read_regular(fd, &shown).map(Some),
            Err(Errno::NOENT) => Ok(None),
            Err(err) => Err(refusal(&self.fd, name, &shown, err, "file")),
        }
    }

    /// The names in this folder starting with `prefix`.
    pub fn names_starting_with(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let fd = rustix::fs::openat2(
            &self.fd,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
        )
        .map_err(|e| Error::Failed(format!("cannot read {}: {}", self.shown.display(), io(e))))?;
        let mut names = Vec::new();
        for entry in rustix::fs::Dir::new(fd).map_err(|e| {
            Error::Failed(format!("cannot read {}: {}", self.shown.display(), io(e)))
        })? {
            let entry = entry.map_err(|e| {
                Error::Failed(format!("cannot read {}: {}", self.shown.display(), io(e)))
            })?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(prefix) {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }
}
