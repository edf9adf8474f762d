//! `install`'s plan: what to write on the daemon host, merged with what is there. Applying it
//! is in `commands::install`.

pub mod confined;
pub mod daemon_json;
pub mod systemd;
pub mod transaction;

use std::path::Path;

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::error::Error;
use confined::{FileRead, Links, Root};

/// dockertls's own drop-in: named to sort after every other one.
pub const DROPIN: &str = "/etc/systemd/system/docker.service.d/zz-dockertls.conf";
/// The daemon's configuration file.
pub const DAEMON_JSON: &str = "/etc/docker/daemon.json";

/// One file to put in place. No `Debug`: the contents may be the server key.
pub struct Planned {
    /// The path on the daemon host (as the operator sees it).
    pub host_path: String,
    /// The new contents (wiped when dropped).
    pub contents: Zeroizing<Vec<u8>>,
    pub mode: u32,
    /// Key material: never shown in a diff.
    pub secret: bool,
    /// What is there now (read through the confined root, wiped when dropped).
    pub existing: Option<FileRead>,
}

impl Planned {
    /// Whether writing would change anything (contents, mode or root ownership).
    pub fn changes(&self) -> bool {
        match &self.existing {
            None => true,
            Some(old) => {
                old.contents.as_slice() != self.contents.as_slice()
                    || old.mode != self.mode
                    || old.uid != 0
                    || old.gid != 0
            }
        }
    }

    /// Whether the contents change (then the previous file is backed up).
    pub fn contents_change(&self) -> bool {
        self.existing
            .as_ref()
            .is_some_and(|old| old.contents.as_slice() != self.contents.as_slice())
    }

    /// The folder and file name of the target on the host.
    pub fn split(&self) -> (String, String) {
        match self.host_path.rsplit_once('/') {
            Some((dir, name)) => (
                if dir.is_empty() {
                    "/".into()
                } else {
                    dir.into()
                },
                name.into(),
            ),
            None => ("/".into(), self.host_path.clone()),
        }
    }
}

// No `Debug` on what holds key bytes (a `{:?}` would print the server key): checked when
// compiling, as static_assertions' `assert_not_impl_any!` does. If `T: Debug`, both impls
// apply and the type parameter cannot be inferred.
const _: fn() = || {
    trait NotDebug<A> {
        fn check() {}
    }
    impl<T: ?Sized> NotDebug<()> for T {}
    impl<T: ?Sized + std::fmt::Debug> NotDebug<u8> for T {}
    let _ = <Planned as NotDebug<_>>::check;
    let _ = <Plan as NotDebug<_>>::check;
    let _ = <FileRead as NotDebug<_>>::check;
    let _ = <transaction::Change<'_> as NotDebug<_>>::check;
};

/// Everything install will do. No `Debug`: it holds the server key.
pub struct Plan {
    /// In the order they are switched: TLS files, the drop-in, daemon.json last.
    pub files: Vec<Planned>,
    /// The TLS folder on the host, created 0700 if missing.
    pub tls_dir: String,
    pub conflicts: Vec<(String, Value, Value)>,
    pub removed_flags: Vec<String>,
    pub unit: String,
    pub notes: Vec<String>,
    pub listen_port: u16,
}

/// `path` (absolute, on the host) under `root`.
pub fn under(root: &Path, path: &str) -> std::path::PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// A file install will replace, as it is now. Links are refused on the way; a hard link is
/// refused too: its other name would keep the old contents, and its contents (another file's,
/// /etc/shadow say) could end up in an error message or a backup.
fn existing(root: &Root, host: &str) -> Result<Option<FileRead>, Error> {
    let found = root.read(host, Links::Refuse)?;
    if let Some(file) = &found
        && file.nlink > 1
    {
        return Err(Error::Refused(format!(
            "{} has {} hard links: install replaces it by a rename, and reads and backs up only a file with one name; give it a name of its own (cp it, then mv the copy over it)",
            root.shown(host).display(),
            file.nlink
        )));
    }
    Ok(found)
}

/// The TLS keys to merge: from DIR/daemon.json (what init wrote), else the defaults.
fn our_keys(pki: &Root, notes: &mut Vec<String>) -> Result<Map<String, Value>, Error> {
    let path = pki.shown("daemon.json");
    let generated = match pki.read("daemon.json", Links::Refuse)? {
        Some(file) => daemon_json::parse(&String::from_utf8_lossy(&file.contents))
            .map_err(|why| Error::Refused(format!("{} {why}", path.display())))?,
        None => {
            notes.push(format!(
                "{} is missing: using /etc/docker/tls and tcp://0.0.0.0:2376",
                path.display()
            ));
            let text = crate::render::daemon_json(
                "0.0.0.0:2376"
                    .parse()
                    .map_err(|_| Error::Failed("bad default".into()))?,
                Path::new("/etc/docker/tls"),
            );
            daemon_json::parse(&text).map_err(Error::Failed)?
        }
    };
    let mut ours = Map::new();
    for key in daemon_json::TLS_KEYS {
        let value = generated.get(key).cloned().ok_or_else(|| {
            Error::Refused(format!(
                "{} has no \"{key}\": it is not the file dockertls init wrote",
                path.display()
            ))
        })?;
        ours.insert(key.to_string(), value);
    }
    if ours["tlsverify"] != Value::Bool(true) || ours["tls"] != Value::Bool(true) {
        return Err(Error::Refused(format!(
            "{} does not set \"tls\" and \"tlsverify\" to true: refusing to install a daemon without client verification",
            path.display()
        )));
    }
    for key in ["tlscacert", "tlscert", "tlskey"] {
        // One rule with init's --install-dir, and a file's path never ends in '/'.
        let ok = ours[key].as_str().is_some_and(|p| {
            !p.ends_with('/') && crate::plan::check_absolute_path(key, Path::new(p)).is_ok()
        });
        if !ok {
            return Err(Error::Refused(format!(
                "{}: \"{key}\" must be the absolute path of a file, without \".\", \"..\" or control characters; fix that value",
                path.display()
            )));
        }
    }
    Ok(ours)
}

/// The server files, read once from the PKI (no link followed) and verified as read: what is
/// installed is exactly what was checked.
fn server_files(dir: &Path, pki: &Root) -> Result<Vec<Zeroizing<Vec<u8>>>, Error> {
    let names = ["ca.pem", "server-cert.pem", "server-key.pem"];
    let mut read = Vec::new();
    for name in names {
        let host = format!("server/{name}");
        let file = pki.read(&host, Links::Refuse)?.ok_or_else(|| {
            Error::Refused(format!(
                "{} is missing: install needs the server/ folder that dockertls init wrote (--dir)",
                pki.shown(&host).display()
            ))
        })?;
        read.push(file.contents);
    }
    // Never install a server pair that dockerd would refuse: audit the bytes read, held in
    // memory (the audit reads paths: /proc/self/fd/N), so what is checked is what is installed,
    // and no copy of the key is written anywhere.
    let copies = names
        .iter()
        .zip(&read)
        .map(|(name, contents)| MemFile::new(name, contents, 0o400))
        .collect::<Result<Vec<_>, Error>>()?;
    let target = crate::audit::Target {
        path: copies[1].path(),
        kind: crate::audit::Kind::Server,
        cert: copies[1].path(),
        key: copies[2].path(),
        ca: Some(copies[0].path()),
        cis: false,
    };
    let options = crate::audit::Options {
        now: ::time::OffsetDateTime::now_utc(),
        warn_days: 0,
        hosts: Vec::new(),
    };
    let report = crate::audit::checks::audit(&target, &options);
    if let Some(check) = report
        .checks
        .iter()
        .find(|c| c.status == crate::audit::Status::Fail)
    {
        // The message names the copies in memory: name the PKI's files instead. Their three
        // descriptors are consecutive and above 2, so no path is the start of another.
        let mut message = check.message.clone();
        for (copy, name) in copies.iter().zip(names) {
            message = message.replace(
                &format!("{}", copy.path().display()),
                &format!("{}", pki.shown(&format!("server/{name}")).display()),
            );
        }
        return Err(Error::Refused(format!(
            "{} fails verification ({}: {message}); fix it before installing",
            dir.join("server").display(),
            check.id,
        )));
    }
    Ok(read)
}

/// A file held in memory (memfd), for a check that reads a path: /proc/self/fd/N.
pub struct MemFile {
    file: std::fs::File,
}

impl MemFile {
    /// A memory file holding `contents`, with `mode`.
    pub fn new(name: &str, contents: &[u8], mode: u32) -> Result<MemFile, Error> {
        let failed = |e: std::io::Error| {
            Error::Failed(format!("cannot hold {name} in memory for its check: {e}"))
        };
        let fd = rustix::fs::memfd_create(name, rustix::fs::MemfdFlags::CLOEXEC)
            .map_err(|e| failed(e.into()))?;
        rustix::fs::fchmod(&fd, rustix::fs::Mode::from_raw_mode(mode))
            .map_err(|e| failed(e.into()))?;
        let mut file = std::fs::File::from(fd);
        std::io::Write::write_all(&mut file, contents).map_err(failed)?;
        Ok(MemFile { file })
    }

    /// Its path for this process.
    pub fn path(&self) -> std::path::PathBuf {
        self.path_in("self")
    }

    /// Its path for a child process (which sees the file through this process's /proc entry).
    pub fn path_for_child(&self) -> std::path::PathBuf {
        self.path_in(&std::process::id().to_string())
    }

    fn path_in(&self, process: &str) -> std::path::PathBuf {
        use std::os::fd::AsRawFd;
        std::path::PathBuf::from(format!("/proc/{process}/fd/{}", self.file.as_raw_fd()))
    }
}

/// Builds the plan for `dir` (a PKI, or a folder holding server/ and daemon.json) onto `root`.
/// It only reads, every path through the confined `root`.
pub fn plan(dir: &Path, root: &Root, force: bool) -> Result<Plan, Error> {
    let mut notes = Vec::new();
    let pki = Root::open(dir)?;
    let mut server = server_files(dir, &pki)?.into_iter();
    let ours = our_keys(&pki, &mut notes)?;
    let listen_port = ours["hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h.as_str()?.strip_prefix("tcp://"))
        .find_map(|rest| rest.rsplit_once(':')?.1.parse().ok())
        .unwrap_or(2376);
    let mut files = Vec::new();
    let tls_paths = [
        ("tlscacert", 0o444, false),
        ("tlscert", 0o444, false),
        ("tlskey", 0o400, true),
    ];
    let mut tls_dir = String::new();
    for (key, mode, secret) in tls_paths {
        let host_path = ours[key].as_str().unwrap_or_default().to_string();
        tls_dir = Path::new(&host_path)
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        files.push(Planned {
            existing: existing(root, &host_path)?,
            host_path,
            contents: server.next().unwrap_or_default(),
            mode,
            secret,
        });
    }

    // Three different files, none of them daemon.json or the drop-in: one would overwrite
    // another (the key written as daemon.json, say).
    let mut targets: Vec<&str> = files.iter().map(|f| f.host_path.as_str()).collect();
    targets.extend([DAEMON_JSON, DROPIN]);
    targets.sort_unstable();
    if let Some(twice) = targets.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::Refused(format!(
            "{}: \"tlscacert\", \"tlscert\" and \"tlskey\" must name three different files, none of them {DAEMON_JSON} or {DROPIN}; {} is named twice",
            pki.shown("daemon.json").display(),
            twice[0]
        )));
    }

    let daemon_existing = existing(root, DAEMON_JSON)?;
    let existing_text = match &daemon_existing {
        Some(file) => Some(std::str::from_utf8(&file.contents).map_err(|_| {
            Error::Refused(format!(
                "{DAEMON_JSON} is not UTF-8 text: dockerd reads JSON in UTF-8; fix it first, nothing was changed"
            ))
        })?),
        None => None,
    };
    let merged = daemon_json::merge(existing_text, &ours).map_err(|why| {
        Error::Refused(format!(
            "{DAEMON_JSON} {why}; fix it first, nothing was changed"
        ))
    })?;
    if !merged.conflicts.is_empty() && !force {
        let list: Vec<String> = merged
            .conflicts
            .iter()
            .map(|(k, old, new)| format!("\"{k}\": {old} -> {new}"))
            .collect();
        return Err(Error::Refused(format!(
            "{DAEMON_JSON} already sets other values: {}; re-run with --force to replace them (the file is backed up first)",
            list.join(", ")
        )));
    }

    // The unit and every drop-in and environment file that feeds ExecStart, read as systemd
    // does; refuses what would make dockerd fail to start with our daemon.json.
    let dropin = systemd::plan_dropin(root, DROPIN)?;
    // Switched in this order: TLS files, the drop-in, daemon.json (see transaction).
    files.push(Planned {
        host_path: DROPIN.to_string(),
        existing: existing(root, DROPIN)?,
        contents: Zeroizing::new(dropin.contents.into_bytes()),
        mode: 0o644,
        secret: false,
    });
    files.push(Planned {
        host_path: DAEMON_JSON.to_string(),
        contents: Zeroizing::new(merged.text.into_bytes()),
        mode: 0o644,
        secret: false,
        existing: daemon_existing,
    });
    Ok(Plan {
        files,
        tls_dir,
        conflicts: merged.conflicts,
        removed_flags: dropin.removed_flags,
        unit: dropin.unit_path,
        notes,
        listen_port,
    })
}
