//! `install`'s plan: what to write on the daemon host, merged with what is there. Applying it
//! is in `commands::install`.

pub mod daemon_json;
pub mod systemd;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::Error;

/// dockertls's own drop-in: named to sort after every other one.
pub const DROPIN: &str = "/etc/systemd/system/docker.service.d/zz-dockertls.conf";
/// The daemon's configuration file.
pub const DAEMON_JSON: &str = "/etc/docker/daemon.json";

/// A file as it is on the host: contents, mode, uid, gid.
pub type Existing = (Vec<u8>, u32, u32, u32);

/// One file to put in place.
#[derive(Debug)]
pub struct Planned {
    /// The path on the daemon host (as the operator sees it).
    pub host_path: String,
    /// The path written (under --root).
    pub path: PathBuf,
    pub contents: Vec<u8>,
    pub mode: u32,
    /// Key material: never shown in a diff.
    pub secret: bool,
    /// What is there now: contents, mode, uid, gid.
    pub existing: Option<Existing>,
}

impl Drop for Planned {
    // The key file's contents pass through here: wipe them.
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.contents);
        if let Some((contents, ..)) = &mut self.existing {
            zeroize::Zeroize::zeroize(contents);
        }
    }
}

impl Planned {
    /// Whether writing would change anything (contents, mode or root ownership).
    pub fn changes(&self) -> bool {
        match &self.existing {
            None => true,
            Some((contents, mode, uid, gid)) => {
                contents != &self.contents || *mode != self.mode || *uid != 0 || *gid != 0
            }
        }
    }
}

/// Everything install will do.
#[derive(Debug)]
pub struct Plan {
    pub root: PathBuf,
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
pub fn under(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

fn existing(path: &Path) -> Result<Option<Existing>, Error> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(Error::Refused(format!(
            "{} is a symbolic link: dockertls never writes through one",
            path.display()
        ))),
        Ok(meta) if !meta.is_file() => Err(Error::Refused(format!(
            "{} is not a regular file",
            path.display()
        ))),
        Ok(meta) => {
            let contents = fs::read(path)
                .map_err(|e| Error::Refused(format!("cannot read {}: {e}", path.display())))?;
            Ok(Some((
                contents,
                meta.mode() & 0o7777,
                meta.uid(),
                meta.gid(),
            )))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(Error::Refused(format!(
            "cannot read {}: {err}",
            path.display()
        ))),
    }
}

/// The TLS keys to merge: from DIR/daemon.json (what init wrote), else the defaults.
fn our_keys(dir: &Path, notes: &mut Vec<String>) -> Result<Map<String, Value>, Error> {
    let path = dir.join("daemon.json");
    let generated = match fs::read_to_string(&path) {
        Ok(text) => daemon_json::parse(&text)
            .map_err(|why| Error::Refused(format!("{} {why}", path.display())))?,
        Err(_) => {
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
        let ok = ours[key]
            .as_str()
            .is_some_and(|p| crate::plan::check_absolute_path(key, Path::new(p)).is_ok());
        if !ok {
            return Err(Error::Refused(format!(
                "{}: \"{key}\" must be an absolute path",
                path.display()
            )));
        }
    }
    Ok(ours)
}

/// Builds the plan for `dir` (a PKI, or a folder holding server/ and daemon.json) onto `root`.
pub fn plan(dir: &Path, root: &Path, force: bool) -> Result<Plan, Error> {
    let mut notes = Vec::new();
    let server = dir.join("server");
    for file in ["ca.pem", "server-cert.pem", "server-key.pem"] {
        if !server.join(file).is_file() {
            return Err(Error::Refused(format!(
                "{} is missing: install needs the server/ folder that dockertls init wrote (--dir)",
                server.join(file).display()
            )));
        }
    }
    // Never install a server pair that dockerd would refuse.
    let target = crate::audit::Target {
        path: server.clone(),
        kind: crate::audit::Kind::Server,
        cert: server.join("server-cert.pem"),
        key: server.join("server-key.pem"),
        ca: Some(server.join("ca.pem")),
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
        return Err(Error::Refused(format!(
            "{} fails verification ({}: {}); fix it before installing",
            server.display(),
            check.id,
            check.message
        )));
    }

    let ours = our_keys(dir, &mut notes)?;
    let listen_port = ours["hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h.as_str()?.strip_prefix("tcp://"))
        .find_map(|rest| rest.rsplit_once(':')?.1.parse().ok())
        .unwrap_or(2376);
    let mut files = Vec::new();
    let tls_paths = [
        ("ca.pem", "tlscacert", 0o444, false),
        ("server-cert.pem", "tlscert", 0o444, false),
        ("server-key.pem", "tlskey", 0o400, true),
    ];
    let mut tls_dir = String::new();
    for (source, key, mode, secret) in tls_paths {
        let host_path = ours[key].as_str().unwrap_or_default().to_string();
        tls_dir = Path::new(&host_path)
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let contents = fs::read(server.join(source)).map_err(|e| {
            Error::Refused(format!(
                "cannot read {}: {e}",
                server.join(source).display()
            ))
        })?;
        let path = under(root, &host_path);
        files.push(Planned {
            existing: existing(&path)?,
            host_path,
            path,
            contents,
            mode,
            secret,
        });
    }

    let daemon_path = under(root, DAEMON_JSON);
    let daemon_existing = existing(&daemon_path)?;
    let existing_text = match &daemon_existing {
        Some((contents, ..)) => Some(std::str::from_utf8(contents).map_err(|_| {
            Error::Refused(format!(
                "{DAEMON_JSON} is not UTF-8 text; fix it first, nothing was changed"
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
    files.push(Planned {
        host_path: DAEMON_JSON.to_string(),
        path: daemon_path,
        contents: merged.text.into_bytes(),
        mode: 0o644,
        secret: false,
        existing: daemon_existing,
    });

    let dropin = systemd::plan_dropin(root, DROPIN)?;
    let dropin_path = under(root, DROPIN);
    files.push(Planned {
        host_path: DROPIN.to_string(),
        existing: existing(&dropin_path)?,
        path: dropin_path,
        contents: dropin.contents.into_bytes(),
        mode: 0o644,
        secret: false,
    });
    Ok(Plan {
        root: root.to_path_buf(),
        files,
        tls_dir,
        conflicts: merged.conflicts,
        removed_flags: dropin.removed_flags,
        unit: dropin.unit_path,
        notes,
        listen_port,
    })
}
