//! `dockertls request server|client`: run where a key will live. Makes the key and a CSR for
//! the CA; no CA, no PKI folder. The key never leaves this machine.

use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, RenameFlags};

use crate::cli::{KeyType, RequestClientArgs, RequestCommand, RequestServerArgs};
use crate::csr::{self, CLIENT_CSR, SERVER_CSR};
use crate::error::{Error, io_failed};
use crate::escape;
use crate::findings::Outcome;
use crate::names::{self, Address};
use crate::render::shell_quote;
use crate::store::layout::{CLIENT_KEY, SERVER_KEY};
use crate::store::{self, CERT_FILE, KEY_FILE, PRIVATE_DIR};

/// Runs a `request` subcommand.
pub fn run(command: &RequestCommand) -> Result<Outcome, Error> {
    match command {
        RequestCommand::Server(args) => server(args),
        RequestCommand::Client(args) => client(args),
    }
}

/// What one request writes and says.
struct Plan<'a> {
    out: &'a Path,
    key_type: KeyType,
    cn: String,
    sans: Vec<Address>,
    key_file: &'static str,
    csr_file: &'static str,
}

fn server(args: &RequestServerArgs) -> Result<Outcome, Error> {
    let host = names::parse_address("--host", &args.host).map_err(Error::Refused)?;
    let mut sans = vec![host.address.clone()];
    for allow in &args.allow {
        let parsed = names::parse_address("--allow", allow).map_err(Error::Refused)?;
        if !sans.contains(&parsed.address) {
            sans.push(parsed.address);
        }
    }
    let plan = Plan {
        out: &args.out,
        key_type: args.key_type,
        cn: host.address.to_string(),
        sans,
        key_file: SERVER_KEY,
        csr_file: SERVER_CSR,
    };
    write(&plan)?;
    let allows: String = plan.sans[1..]
        .iter()
        .map(|a| format!(" --allow {}", shell_quote(&a.to_string())))
        .collect();
    let text = format!(
        "{}On the CA's machine: dockertls sign server.csr --server NAME --host {}{allows}\n\
         Then put the returned server-cert.pem and ca.pem beside the key, and on this host as root: dockertls install --from {}\n",
        written(&plan),
        shell_quote(&plan.cn),
        shell_quote(&plan.out.display().to_string()),
    );
    Ok(Outcome::report(&text))
}

fn client(args: &RequestClientArgs) -> Result<Outcome, Error> {
    let name = names::parse_client_name(&args.name).map_err(Error::Refused)?;
    let plan = Plan {
        out: &args.out,
        key_type: args.key_type,
        cn: name,
        sans: Vec::new(),
        key_file: CLIENT_KEY,
        csr_file: CLIENT_CSR,
    };
    write(&plan)?;
    let text = format!(
        "{}On the CA's machine: dockertls sign client.csr --client {}\n\
         Then put the returned cert.pem and ca.pem beside key.pem: that folder is DOCKER_CERT_PATH.\n",
        written(&plan),
        shell_quote(&plan.cn),
    );
    Ok(Outcome::report(&text))
}

fn written(plan: &Plan<'_>) -> String {
    let out = plan.out.display();
    format!(
        "wrote {out}/{} ({} key, mode 0400: it stays here) and {out}/{} (send this one to the CA)\n",
        plan.key_file,
        plan.key_type.name(),
        plan.csr_file
    )
}

/// The name a file is written under before it is renamed into place.
fn temporary(name: &str) -> String {
    format!(".{name}.dockertls-tmp")
}

/// Checks --out, makes the key and CSR, and writes both, or nothing. Each is written under a
/// temporary name and flushed; then the CSR and last the key are renamed into place. A run
/// killed before the key's rename leaves no key, so a re-run goes ahead: it removes the
/// temporary files and replaces a request left without its key.
fn write(plan: &Plan<'_>) -> Result<(), Error> {
    let target = OutDir::check(plan.out, plan.key_file, plan.csr_file)?;
    let request = csr::make_request(plan.key_type, &plan.cn, &plan.sans).map_err(|e| {
        Error::failed(format!(
            "cannot make the {} key and its request: {e}; nothing was written",
            plan.key_type.name()
        ))
    })?;
    let out = target.open_or_create()?;
    let (key_tmp, csr_tmp) = (temporary(plan.key_file), temporary(plan.csr_file));
    let result = out
        .remove_leftover(&key_tmp)
        .and_then(|()| out.remove_leftover(&csr_tmp))
        .and_then(|()| out.write_new(&key_tmp, request.key_pem.as_bytes(), KEY_FILE))
        .and_then(|()| out.write_new(&csr_tmp, request.csr_pem.as_bytes(), CERT_FILE))
        .and_then(|()| out.sync())
        .and_then(|()| out.rename(&csr_tmp, plan.csr_file, RenameFlags::empty()))
        .and_then(|()| out.rename(&key_tmp, plan.key_file, RenameFlags::NOREPLACE))
        .and_then(|()| out.sync());
    if let Err(err) = result {
        out.undo();
        return Err(err);
    }
    if target.stale_request {
        eprintln!(
            "note: {} had no key beside it (left by a run that was stopped half-way); it was replaced",
            escape::path(&plan.out.join(plan.csr_file))
        );
    }
    Ok(())
}

/// The --out folder, checked before anything is made.
struct OutDir {
    path: PathBuf,
    exists: bool,
    /// It holds the request but not the key (a run stopped between the two renames).
    stale_request: bool,
}

impl OutDir {
    /// Refuses a link, a non-folder, a folder others can change, an existing key (or a
    /// request that is not a plain file), or a missing parent; nothing is created yet.
    fn check(path: &Path, key_file: &str, csr_file: &str) -> Result<OutDir, Error> {
        let shown = crate::escape::path(path);
        let exists = match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(Error::refused(format!(
                    "--out {shown} is a symbolic link, which dockertls does not follow for a key"
                ))
                .hint("pass the folder's own path, or a new folder name"));
            }
            Ok(meta) if !meta.is_dir() => {
                return Err(Error::refused(format!(
                    "--out {shown} exists and is not a folder"
                )));
            }
            Ok(_) => true,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let parent = parent_of(path);
                if !std::fs::symlink_metadata(&parent).is_ok_and(|m| m.is_dir()) {
                    return Err(Error::refused(format!(
                        "--out {shown}: its parent {} is not an existing folder",
                        crate::escape::path(&parent)
                    ))
                    .hint("create the parent first, or pass another --out"));
                }
                false
            }
            Err(err) => return Err(Error::refused(format!("--out {shown}: {err}"))),
        };
        if let Some(problem) = store::folder_trust_problem(path) {
            return Err(problem.into_error());
        }
        let taken = |file: &str| {
            Error::refused(format!(
                "{} already exists: dockertls never replaces a key, or a request beside its key",
                crate::escape::path(&path.join(file))
            ))
            .hint("pass another --out, or move that file away first")
        };
        let mut stale_request = false;
        if exists {
            if std::fs::symlink_metadata(path.join(key_file)).is_ok() {
                return Err(taken(key_file));
            }
            match std::fs::symlink_metadata(path.join(csr_file)) {
                Ok(meta) if meta.is_file() => stale_request = true,
                Ok(_) => return Err(taken(csr_file)),
                Err(_) => {}
            }
        }
        Ok(OutDir {
            path: path.to_path_buf(),
            exists,
            stale_request,
        })
    }

    /// Opens the folder (never through a link), creating it 0700 when it was missing.
    fn open_or_create(&self) -> Result<Opened, Error> {
        let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut opened = Opened {
            fd: None,
            created_dir: None,
            path: self.path.clone(),
            created: std::cell::RefCell::new(Vec::new()),
        };
        if self.exists {
            let fd = rfs::open(&self.path, dir_flags, Mode::empty())
                .map_err(|e| io_failed("cannot open", &self.path, &e.into()))?;
            opened.fd = Some(fd);
            return Ok(opened);
        }
        let Some(name) = self.path.file_name().map(PathBuf::from) else {
            return Err(Error::refused(format!(
                "--out {}: name a new folder",
                crate::escape::path(&self.path)
            )));
        };
        let parent_path = parent_of(&self.path);
        let parent = rfs::open(&parent_path, dir_flags, Mode::empty())
            .map_err(|e| io_failed("cannot open", &parent_path, &e.into()))?;
        rfs::mkdirat(&parent, &name, Mode::from_raw_mode(PRIVATE_DIR))
            .map_err(|e| io_failed("cannot create", &self.path, &e.into()))?;
        let fd = rfs::openat(&parent, &name, dir_flags, Mode::empty());
        opened.created_dir = Some((parent, name));
        let fd = fd.map_err(|e| io_failed("cannot open", &self.path, &e.into()));
        let fd = match fd {
            Ok(fd) => fd,
            Err(err) => {
                opened.undo();
                return Err(err);
            }
        };
        // The umask may have removed bits (never added any): exactly 0700.
        let chmod = rfs::fchmod(&fd, Mode::from_raw_mode(PRIVATE_DIR));
        opened.fd = Some(fd);
        if let Err(e) = chmod {
            opened.undo();
            return Err(io_failed("cannot set the mode of", &self.path, &e.into()));
        }
        Ok(opened)
    }
}

/// `path`'s parent folder (`.` for a bare name).
fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The opened --out folder and what this run created (to undo on failure).
struct Opened {
    fd: Option<OwnedFd>,
    /// The parent and the name of the folder, when this run created it.
    created_dir: Option<(OwnedFd, PathBuf)>,
    path: PathBuf,
    created: std::cell::RefCell<Vec<String>>,
}

impl Opened {
    fn fd(&self) -> Result<&OwnedFd, Error> {
        self.fd
            .as_ref()
            .ok_or_else(|| Error::failed(format!("{} is not open", self.path.display())))
    }

    /// Removes `name`, a temporary file a stopped run left (never through a link: unlinkat
    /// removes the link itself); nothing when it is missing.
    fn remove_leftover(&self, name: &str) -> Result<(), Error> {
        match rfs::unlinkat(self.fd()?, name, AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(io_failed("cannot remove", &self.path.join(name), &e.into())),
        }
    }

    /// Renames `from` to `to` in the folder (the undo list follows the file).
    fn rename(&self, from: &str, to: &'static str, flags: RenameFlags) -> Result<(), Error> {
        rfs::renameat_with(self.fd()?, from, self.fd()?, to, flags)
            .map_err(|e| io_failed("cannot rename", &self.path.join(from), &e.into()))?;
        let mut created = self.created.borrow_mut();
        created.retain(|name| name != from);
        created.push(to.to_string());
        Ok(())
    }

    /// Creates `name` with `mode` from the start (a key is 0400 at every instant), refusing an
    /// existing file or a link, and makes it durable.
    fn write_new(&self, name: &str, contents: &[u8], mode: u32) -> Result<(), Error> {
        let path = self.path.join(name);
        let fd = rfs::openat(
            self.fd()?,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )
        .map_err(|e| io_failed("cannot create", &path, &e.into()))?;
        self.created.borrow_mut().push(name.to_string());
        let mut file = File::from(fd);
        // The umask may have removed bits (never added any): exactly `mode`.
        rfs::fchmod(&file, Mode::from_raw_mode(mode))
            .map_err(|e| io_failed("cannot set the mode of", &path, &e.into()))?;
        file.write_all(contents)
            .and_then(|()| file.sync_all())
            .map_err(|e| io_failed("cannot write", &path, &e))
    }

    fn sync(&self) -> Result<(), Error> {
        rfs::fsync(self.fd()?).map_err(|e| io_failed("cannot flush", &self.path, &e.into()))?;
        if let Some((parent, _)) = &self.created_dir {
            rfs::fsync(parent)
                .map_err(|e| io_failed("cannot flush", &parent_of(&self.path), &e.into()))?;
        }
        Ok(())
    }

    /// Removes what this run created: the folder is as it was.
    fn undo(&self) {
        if let Some(fd) = &self.fd {
            for name in self.created.borrow().iter() {
                let _ = rfs::unlinkat(fd, name.as_str(), AtFlags::empty());
            }
        }
        if let Some((parent, name)) = &self.created_dir {
            let _ = rfs::unlinkat(parent, name, AtFlags::REMOVEDIR);
        }
    }
}
