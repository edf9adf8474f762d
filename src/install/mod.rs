//! `install` in three steps: `read` the PKI and the host (every path through a confined
//! `Root`) into a plain `HostRead`; `plan` decides from that value alone what to write on the
//! daemon host, merged with what is there (pure: unit-tested without a file system); the
//! `transaction` applies it (driven by `commands::install`).

pub mod authz;
pub mod confined;
pub mod daemon_json;
// eco (issue 14): install --rollback.
pub mod rollback;
pub mod systemd;
pub mod transaction;

use std::path::Path;

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::error::Error;
use crate::store::layout;
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
    let _ = <HostRead as NotDebug<_>>::check;
    let _ = <confined::Resolved as NotDebug<_>>::check;
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
fn read_existing(root: &Root, host: &str) -> Result<Option<FileRead>, Error> {
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

/// The TLS keys to merge: from DIR/daemon.json (what init wrote, `text`), else the defaults
/// (with a note). `path`: DIR/daemon.json as shown in messages.
fn our_keys(
    text: Option<&str>,
    path: &Path,
    notes: &mut Vec<String>,
) -> Result<Map<String, Value>, Error> {
    let generated = match text {
        Some(text) => daemon_json::parse(text)
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

/// Where install reads the server's files: a folder (opened as a confined root), the
/// subfolder of it holding ca.pem, server-cert.pem and server-key.pem, and its daemon.json.
#[derive(Debug, Clone)]
pub struct Source {
    /// The folder opened (the PKI, or the server folder itself).
    pub root: std::path::PathBuf,
    /// The folder of the three files, relative to `root` (empty: `root` itself).
    pub folder: String,
    /// daemon.json, relative to `root`.
    pub daemon_json: String,
    /// `install --authz` (issue 13): also the plugin, its units, the CRL and the policy.
    pub authz: bool,
}

impl Source {
    /// A self-contained server folder (`install --from`, or DIR/servers/NAME): every file in it.
    pub fn server_folder(folder: &Path) -> Source {
        Source {
            root: folder.to_path_buf(),
            folder: String::new(),
            daemon_json: layout::DAEMON_JSON.to_string(),
            authz: false,
        }
    }

    /// A server folder of the PKI in `dir` (`install --server NAME`).
    pub fn pki_server(dir: &Path, name: &str) -> Source {
        Source {
            root: dir.to_path_buf(),
            folder: crate::store::Holder::server(name).folder(),
            daemon_json: format!(
                "{}/{}",
                crate::store::Holder::server(name).folder(),
                layout::DAEMON_JSON
            ),
            authz: false,
        }
    }

    /// A PKI of the first format (or a copy of its server/ and daemon.json): read as it is.
    pub fn legacy(dir: &Path) -> Source {
        Source {
            root: dir.to_path_buf(),
            folder: layout::Legacy::SERVER_DIR.to_string(),
            daemon_json: layout::Legacy::DAEMON_JSON.to_string(),
            authz: false,
        }
    }

    /// `name` in the folder of the three files, relative to `root`.
    fn file(&self, name: &str) -> String {
        if self.folder.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.folder)
        }
    }
}

/// The server files, read once from the PKI (no link followed) and verified as read: what is
/// installed is exactly what was checked.
fn server_files(
    source: &Source,
    pki: &Root,
    now: ::time::OffsetDateTime,
) -> Result<Vec<Zeroizing<Vec<u8>>>, Error> {
    let names = [layout::CA_CERT, layout::SERVER_CERT, layout::SERVER_KEY];
    let mut read = Vec::new();
    for name in names {
        let host = source.file(name);
        let file = pki.read(&host, Links::Refuse)?.ok_or_else(|| {
            Error::Refused(format!(
                "{} is missing: install needs a server folder as dockertls init or server add wrote it (servers/NAME), with ca.pem, server-cert.pem and server-key.pem",
                pki.shown(&host).display()
            ))
        })?;
        if name == layout::SERVER_KEY {
            check_key_mode(&pki.shown(&host), file.mode)?;
        }
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
        now,
        warn_days: crate::pki::Window::Days(0),
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
                &format!("{}", pki.shown(&source.file(name)).display()),
            );
        }
        return Err(Error::Refused(format!(
            "{} fails verification ({}: {message}); fix it before installing",
            pki.shown(&source.folder).display(),
            check.id,
        )));
    }
    Ok(read)
}

/// Refuses a server key that group or others could read (or change) where it is: it may be
/// known to someone else already, as `verify` says and `deploy` refuses.
fn check_key_mode(shown: &Path, mode: u32) -> Result<(), Error> {
    if mode & 0o077 == 0 {
        return Ok(());
    }
    Err(Error::refused(format!(
        "{} is mode {:04o}: group or others can read the server key there, so it may be known already; nothing was changed",
        crate::escape::path(shown),
        mode & 0o7777
    ))
    .hint(format!(
        "if nobody else could have read it, chmod 600 {} and install again; else give the server a new key where the CA is (dockertls rotate)",
        crate::escape::field(&crate::render::shell_quote(&shown.display().to_string()))
    )))
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

/// Refuses to write into a folder on the daemon host that someone other than root (or the
/// caller) could change, or one of its parents: whoever can write /etc/docker/tls could swap
/// ca.pem for a CA of their own, and then mint client certificates that dockerd accepts.
pub fn check_host_folders(root: &Root, plan: &Plan) -> Result<(), Error> {
    let mut seen: Vec<String> = Vec::new();
    for file in &plan.files {
        let (folder, _) = file.split();
        if seen.contains(&folder) {
            continue;
        }
        if let Some(problem) = crate::store::folder_trust_problem(&root.shown(&folder)) {
            return Err(Error::Refused(format!(
                "{}: install puts no key, certificate or daemon.json there, nothing was changed\nhint: check what it holds, then run: {}",
                problem.message, problem.fix
            )));
        }
        seen.push(folder);
    }
    Ok(())
}

/// What install reads before it decides: the PKI's files (the server pair verified as read at
/// `now`) and the host's, each read once through a confined root. A plain value: `plan`
/// decides from it alone. No `Debug`: it holds the server key.
pub struct HostRead {
    /// DIR/daemon.json as shown in messages.
    pki_daemon_json: std::path::PathBuf,
    /// The TLS keys to merge.
    ours: Map<String, Value>,
    notes: Vec<String>,
    /// ca.pem, server-cert.pem, server-key.pem.
    server: Vec<Zeroizing<Vec<u8>>>,
    /// The files install replaces, as they are now, by host path.
    existing: std::collections::BTreeMap<String, FileRead>,
    /// docker.service, its drop-ins and environment.
    units: systemd::UnitFiles,
    /// `install --authz`: the CRL, the policy and the plugin's units.
    authz: Option<authz::AuthzRead>,
}

/// The host path `ours` gives for `key` ("tlscert"...): checked to be a string by `our_keys`.
fn tls_path(ours: &Map<String, Value>, key: &str) -> String {
    ours[key].as_str().unwrap_or_default().to_string()
}

/// The TLS files: their daemon.json key, mode, and whether they are a secret.
const TLS_FILES: [(&str, u32, bool); 3] = [
    ("tlscacert", 0o444, false),
    ("tlscert", 0o444, false),
    ("tlskey", 0o400, true),
];

/// Reads what install needs from `source` (a server folder) and from the host under `root`,
/// every path through a confined root. Reads only.
pub fn read(source: &Source, root: &Root, now: ::time::OffsetDateTime) -> Result<HostRead, Error> {
    let mut notes = Vec::new();
    let pki = Root::open(&source.root)?;
    let server = server_files(source, &pki, now)?;
    let pki_daemon_json = pki.shown(&source.daemon_json);
    let generated = pki.read(&source.daemon_json, Links::Refuse)?;
    let text = generated
        .as_ref()
        .map(|file| String::from_utf8_lossy(&file.contents).into_owned());
    let ours = our_keys(text.as_deref(), &pki_daemon_json, &mut notes)?;
    let mut existing = std::collections::BTreeMap::new();
    let targets = TLS_FILES.iter().map(|(key, _, _)| tls_path(&ours, key));
    for host_path in targets.chain([DAEMON_JSON.to_string()]) {
        if let Some(file) = read_existing(root, &host_path)? {
            existing.insert(host_path, file);
        }
    }
    let units = systemd::read_units(root, DROPIN)?;
    if let Some(file) = read_existing(root, DROPIN)? {
        existing.insert(DROPIN.to_string(), file);
    }
    // Without --authz, a host where the plugin is in place still gets its lists kept current.
    let in_place = match source.authz {
        true => None,
        false => authz::in_place(existing.get(DAEMON_JSON), root)?,
    };
    let authz = match source.authz || in_place.is_some() {
        true => {
            let ca = tls_path(&ours, "tlscacert");
            let read = authz::read(
                &pki,
                &source.folder,
                &server[0],
                &ca,
                root,
                now,
                source.authz,
            )
            .map_err(|e| match &in_place {
                Some(why) => in_place_error(&e, why),
                None => e,
            })?;
            notes.extend(read.notes.iter().cloned());
            Some(read)
        }
        false => None,
    };
    Ok(HostRead {
        pki_daemon_json,
        ours,
        notes,
        server,
        existing,
        units,
        authz,
    })
}

/// A refusal of the plugin's lists, for a plain install on a host where the plugin is in place
/// (`why`): said as such, with the same exit code and hint.
fn in_place_error(error: &Error, why: &str) -> Error {
    let message = format!(
        "{} (the dockertls plugin is in place on this host: {why}; install keeps its crl.pem and authz.json current, so nothing was changed)",
        error.message()
    );
    let base = match error.exit() {
        crate::error::Exit::FailedOrWarning => Error::failed(message),
        _ => Error::refused(message),
    };
    match error.hint_text() {
        Some(hint) => base.hint(hint.to_string()),
        None => base,
    }
}

/// Everything install will do, decided from what was read (pure: no file is read).
pub fn plan(read: HostRead, force: bool) -> Result<Plan, Error> {
    let HostRead {
        pki_daemon_json,
        mut ours,
        mut notes,
        server,
        mut existing,
        units,
        authz,
    } = read;
    let listen_port = listen_port(&ours);
    let paths: Vec<String> = TLS_FILES
        .iter()
        .map(|(key, _, _)| tls_path(&ours, key))
        .collect();
    // Three different files, none of them daemon.json or the drop-in: one would overwrite
    // another (the key written as daemon.json, say).
    let mut targets: Vec<&str> = paths.iter().map(String::as_str).collect();
    targets.extend([DAEMON_JSON, DROPIN]);
    targets.sort_unstable();
    if let Some(twice) = targets.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::Refused(format!(
            "{}: \"tlscacert\", \"tlscert\" and \"tlskey\" must name three different files, none of them {DAEMON_JSON} or {DROPIN}; {} is named twice",
            pki_daemon_json.display(),
            twice[0]
        )));
    }
    let tls_dir = paths
        .last()
        .and_then(|p| Path::new(p).parent())
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let mut files: Vec<Planned> = paths
        .into_iter()
        .zip(TLS_FILES)
        .zip(server)
        .map(|((host_path, (_, mode, secret)), contents)| Planned {
            existing: existing.remove(&host_path),
            host_path,
            contents,
            mode,
            secret,
        })
        .collect();
    let daemon_existing = existing.remove(DAEMON_JSON);
    if let Some(read) = authz {
        // Issue 13: the CRL, the policy, the plugin's units and docker's drop-in, switched
        // before daemon.json, which names the plugin. Without --authz (the plugin in place):
        // the CRL and the policy only.
        let ca_dir = Path::new(&tls_path(&ours, "tlscacert"))
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let full = read.full();
        let lists = authz::planned(read, &ca_dir);
        if full {
            let plugins = authz::plugins_for(daemon_existing.as_ref())?;
            ours.insert(authz::DAEMON_KEY.to_string(), plugins);
        } else if lists.iter().any(Planned::changes) {
            notes.push(format!(
                "the dockertls plugin is in place on this host: {} kept current with the server folder (install --authz also renews its units)",
                lists.iter().map(|f| f.host_path.as_str()).collect::<Vec<_>>().join(" and ")
            ));
        }
        files.extend(lists);
    }
    let merged = merge_daemon_json(daemon_existing.as_ref(), &ours, force)?;
    // The unit and every drop-in and environment file that feeds ExecStart, as systemd
    // assembles them; refuses what would make dockerd fail to start with our daemon.json.
    let dropin = systemd::decide(&units, DROPIN)?;
    // Switched in this order: TLS files, the drop-in, daemon.json (see transaction).
    files.push(Planned {
        host_path: DROPIN.to_string(),
        existing: existing.remove(DROPIN),
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

/// The TCP port of the first tcp:// address in "hosts" (dockerd's 2376 when none).
fn listen_port(ours: &Map<String, Value>) -> u16 {
    crate::dockerd_hosts::first_tcp_port(&ours["hosts"]).unwrap_or(2376)
}

/// daemon.json merged with our keys; other values it sets are replaced only with `force`.
fn merge_daemon_json(
    existing: Option<&FileRead>,
    ours: &Map<String, Value>,
    force: bool,
) -> Result<daemon_json::Merged, Error> {
    let existing_text = match existing {
        Some(file) => Some(std::str::from_utf8(&file.contents).map_err(|_| {
            Error::Refused(format!(
                "{DAEMON_JSON} is not UTF-8 text: dockerd reads JSON in UTF-8; fix it first, nothing was changed"
            ))
        })?),
        None => None,
    };
    let mut merged = daemon_json::merge(existing_text, ours).map_err(|why| {
        Error::Refused(format!(
            "{DAEMON_JSON} {why}; fix it first, nothing was changed"
        ))
    })?;
    // `install --authz` adds dockertls to the plugins daemon.json names, keeping them: not a
    // value replaced.
    merged
        .conflicts
        .retain(|(key, _, _)| key != authz::DAEMON_KEY);
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
    Ok(merged)
}

#[cfg(test)]
mod tests {
    //! The decision alone, from values: no file system.

    use super::*;

    const UNIT: &str = "[Service]\nExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock\n";

    fn file(text: &str, mode: u32) -> FileRead {
        FileRead {
            contents: Zeroizing::new(text.as_bytes().to_vec()),
            mode,
            uid: 0,
            gid: 0,
            nlink: 1,
        }
    }

    /// A host as read: the PKI's default keys, `existing` files, docker's packaged unit.
    fn host(pki_daemon_json: Option<&str>, existing: Vec<(&str, FileRead)>) -> HostRead {
        let mut notes = Vec::new();
        let ours = our_keys(pki_daemon_json, Path::new("pki/daemon.json"), &mut notes).unwrap();
        HostRead {
            pki_daemon_json: "pki/daemon.json".into(),
            ours,
            notes,
            server: ["CA", "CERT", "KEY"]
                .iter()
                .map(|t| Zeroizing::new(t.as_bytes().to_vec()))
                .collect(),
            existing: existing
                .into_iter()
                .map(|(path, f)| (path.to_string(), f))
                .collect(),
            authz: None,
            units: systemd::UnitFiles::from_texts(
                ("/lib/systemd/system/docker.service", UNIT),
                &[],
                &[],
            ),
        }
    }

    fn refusal(result: Result<Plan, Error>) -> String {
        match result {
            Err(Error::Refused(message)) => message,
            Err(other) => panic!("not a refusal: {other}"),
            Ok(_) => panic!("not refused"),
        }
    }

    #[test]
    fn a_fresh_host_gets_five_files_in_switch_order() {
        let plan = plan(host(None, Vec::new()), false).unwrap();
        let files: Vec<(&str, u32, bool)> = plan
            .files
            .iter()
            .map(|f| (f.host_path.as_str(), f.mode, f.secret))
            .collect();
        assert_eq!(
            files,
            [
                ("/etc/docker/tls/ca.pem", 0o444, false),
                ("/etc/docker/tls/server-cert.pem", 0o444, false),
                ("/etc/docker/tls/server-key.pem", 0o400, true),
                (DROPIN, 0o644, false),
                (DAEMON_JSON, 0o644, false),
            ]
        );
        assert_eq!(plan.files[2].contents.as_slice(), b"KEY");
        assert!(plan.files.iter().all(Planned::changes));
        assert_eq!(plan.tls_dir, "/etc/docker/tls");
        assert_eq!(plan.listen_port, 2376);
        assert_eq!(plan.removed_flags, ["-H fd://"]);
        assert_eq!(plan.unit, "/lib/systemd/system/docker.service");
        let dropin = String::from_utf8_lossy(&plan.files[3].contents).into_owned();
        assert!(dropin.ends_with("ExecStart=\nExecStart=/usr/bin/dockerd --containerd=/run/containerd/containerd.sock\n"), "{dropin}");
        assert!(plan.notes[0].contains("pki/daemon.json is missing"));
    }

    #[test]
    fn a_second_run_changes_nothing() {
        let first = plan(host(None, Vec::new()), false).unwrap();
        let installed: Vec<(&str, FileRead)> = first
            .files
            .iter()
            .map(|f| {
                let text = std::str::from_utf8(&f.contents).unwrap();
                (f.host_path.as_str(), file(text, f.mode))
            })
            .collect();
        let again = plan(host(None, installed), false).unwrap();
        assert!(!again.files.iter().any(Planned::changes));
        // A wrong mode or owner is a change, with the same contents (no backup).
        let mut loose: Vec<(&str, FileRead)> = Vec::new();
        for f in &first.files {
            let mut read = file(std::str::from_utf8(&f.contents).unwrap(), f.mode);
            if f.secret {
                read.mode = 0o644;
            }
            loose.push((f.host_path.as_str(), read));
        }
        let fixed = plan(host(None, loose), false).unwrap();
        let changing: Vec<&str> = fixed
            .files
            .iter()
            .filter(|f| f.changes())
            .map(|f| f.host_path.as_str())
            .collect();
        assert_eq!(changing, ["/etc/docker/tls/server-key.pem"]);
        assert!(!fixed.files.iter().any(Planned::contents_change));
    }

    #[test]
    fn other_values_in_daemon_json_need_force() {
        let existing = || {
            vec![(
                DAEMON_JSON,
                file(
                    "{\"hosts\": [\"tcp://0.0.0.0:2375\"], \"debug\": true}\n",
                    0o644,
                ),
            )]
        };
        let message = refusal(plan(host(None, existing()), false));
        assert!(message.contains("\"hosts\""), "{message}");
        assert!(message.contains("--force"), "{message}");
        let forced = plan(host(None, existing()), true).unwrap();
        assert_eq!(forced.conflicts.len(), 1);
        let merged = String::from_utf8_lossy(&forced.files[4].contents).into_owned();
        assert!(merged.contains("\"debug\": true"), "{merged}");
        assert!(forced.files[4].contents_change());
    }

    #[test]
    fn unusable_inputs_are_refused() {
        let not_utf8 = FileRead {
            contents: Zeroizing::new(vec![b'{', 0xff, b'}']),
            ..file("", 0o644)
        };
        let message = refusal(plan(host(None, vec![(DAEMON_JSON, not_utf8)]), false));
        assert!(message.contains("not UTF-8"), "{message}");
        // The key written over daemon.json: two targets in one.
        let pki = "{\"hosts\": [\"tcp://0.0.0.0:2376\"], \"tls\": true, \"tlsverify\": true, \"tlscacert\": \"/etc/docker/tls/ca.pem\", \"tlscert\": \"/etc/docker/tls/cert.pem\", \"tlskey\": \"/etc/docker/daemon.json\"}";
        let message = refusal(plan(host(Some(pki), Vec::new()), false));
        assert!(
            message.contains("/etc/docker/daemon.json is named twice"),
            "{message}"
        );
        // A unit with no ExecStart: the drop-in cannot be made.
        let mut read = host(None, Vec::new());
        read.units = systemd::UnitFiles::from_texts(
            ("/lib/systemd/system/docker.service", "[Service]\n"),
            &[],
            &[],
        );
        let message = refusal(plan(read, false));
        assert!(message.contains("set no ExecStart"), "{message}");
    }
}
