//! Finding cert dirs: Docker docs' names, docker-machine's, the docker:dind image's, a
//! DOCKER_CERT_PATH client folder, a dockertls PKI, or any tree holding such folders.

use std::fs;
use std::path::{Path, PathBuf};

use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

use super::{Kind, Target};
use crate::store::layout::{
    BACKUP_DIR, CA_CERT, CA_DIR, CA_KEY, CLIENT_CERT, CLIENT_KEY, CLIENTS_DIR, LOCK_FILE, Legacy,
    SERVER_CERT, SERVER_KEY, SERVERS_DIR, STAGING_PREFIX, STATE_FILE,
};

/// What was found under the given paths.
#[derive(Debug, Default)]
pub struct Found {
    pub targets: Vec<Target>,
    /// Paths that could not be read (named with the reason).
    pub unreadable: Vec<String>,
}

/// Finds every target at or below `root`. Symbolic links to folders are not followed, so a
/// loop in a fleet tree cannot trap the walk.
pub fn find(root: &Path, found: &mut Found) {
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) => {
                found.unreadable.push(format!("{}: {err}", dir.display()));
                continue;
            }
        };
        let mut files = Vec::new();
        let mut subdirs = Vec::new();
        for entry in entries.flatten() {
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            let name = entry.file_name();
            if file_type.is_dir() {
                subdirs.push(name);
            } else if file_type.is_file() || file_type.is_symlink() {
                files.push(name);
            }
        }
        // A dockertls PKI by its lock file (init leaves it, and it outlives a ca/ moved
        // offline or a run killed half-way), or by its layout.
        // Either format: format 2 by its state file or servers/, format 1 by server/.
        let is_pki_root = files.iter().any(|f| f == LOCK_FILE || f == STATE_FILE)
            || (subdirs.iter().any(|n| n == CA_DIR)
                && subdirs
                    .iter()
                    .any(|n| n == Legacy::SERVER_DIR || n == SERVERS_DIR || n == CLIENTS_DIR));
        for name in subdirs {
            let text = name.to_string_lossy();
            // A dockertls PKI's backups and unfinished staging folders are not live material.
            if (is_pki_root && text == BACKUP_DIR) || text.starts_with(STAGING_PREFIX) {
                continue;
            }
            pending.push(dir.join(name));
        }
        let has = |name: &str| files.iter().any(|f| f == name);
        if has("ca.crt") && subdirs_have(&dir, &["issued", "private"]) {
            easy_rsa(&dir, &mut found.targets);
        }
        classify(&dir, &has, &mut found.targets);
    }
    found
        .targets
        .sort_by(|a, b| (&a.path, a.kind).cmp(&(&b.path, b.kind)));
}

fn subdirs_have(dir: &Path, names: &[&str]) -> bool {
    names
        .iter()
        .all(|n| fs::symlink_metadata(dir.join(n)).is_ok_and(|m| m.is_dir()))
}

/// An easy-rsa PKI: pki/ca.crt, pki/private/ca.key, pki/issued/NAME.crt with
/// pki/private/NAME.key. Each issued certificate is a server or a client by its EKU.
fn easy_rsa(dir: &Path, targets: &mut Vec<Target>) {
    targets.push(Target {
        path: dir.join("ca.crt"),
        kind: Kind::Ca,
        cert: dir.join("ca.crt"),
        key: dir.join("private/ca.key"),
        ca: None,
        cis: false,
    });
    let Ok(entries) = fs::read_dir(dir.join("issued")) else {
        return;
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".crt")
                .map(str::to_string)
        })
        .collect();
    names.sort();
    for name in names {
        let cert = dir.join("issued").join(format!("{name}.crt"));
        let kind = match read_small(&cert).as_deref().and_then(role_of) {
            Some(Role::ServerOnly) => Kind::Server,
            Some(Role::Ca) => continue,
            _ => Kind::Client,
        };
        targets.push(Target {
            path: cert.clone(),
            kind,
            cert,
            key: dir.join("private").join(format!("{name}.key")),
            ca: Some(dir.join("ca.crt")),
            cis: false,
        });
    }
}

fn classify(dir: &Path, has: &dyn Fn(&str) -> bool, targets: &mut Vec<Target>) {
    let target = |kind: Kind, cert: &str, key: &str, ca: Option<&str>| Target {
        path: dir.to_path_buf(),
        kind,
        cert: dir.join(cert),
        key: dir.join(key),
        ca: ca.map(|ca| dir.join(ca)),
        cis: false,
    };
    // Server: Docker docs' names, or docker-machine's server.pem.
    if has(SERVER_CERT) || has(SERVER_KEY) || has("server.pem") {
        let cert = if !has(SERVER_CERT) && has("server.pem") {
            "server.pem"
        } else {
            SERVER_CERT
        };
        targets.push(target(Kind::Server, cert, SERVER_KEY, Some(CA_CERT)));
    }
    // A CA with its key: dockertls's ca/, or the Docker docs' all-in-one folder.
    if has(CA_KEY) {
        targets.push(target(Kind::Ca, CA_CERT, CA_KEY, None));
    }
    // cert.pem + key.pem: a DOCKER_CERT_PATH client folder, or docker:dind's /certs/server
    // (a server certificate under client names), or its /certs/ca (a CA, no ca.pem beside it).
    if has(CLIENT_CERT) || has(CLIENT_KEY) {
        let cert = read_small(&dir.join(CLIENT_CERT));
        let looks = cert.as_deref().and_then(role_of);
        let kind = match looks {
            Some(Role::Ca) if !has(CA_CERT) => Kind::Ca,
            Some(Role::ServerOnly) => Kind::Server,
            _ => Kind::Client,
        };
        let ca = (kind != Kind::Ca).then_some(CA_CERT);
        targets.push(target(kind, CLIENT_CERT, CLIENT_KEY, ca));
    }
}

enum Role {
    Ca,
    ServerOnly,
    Other,
}

fn read_small(path: &Path) -> Option<Vec<u8>> {
    let meta = fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > super::material::MAX_FILE_SIZE {
        return None;
    }
    fs::read(path).ok()
}

/// What a cert.pem is for, judged by its extensions.
fn role_of(bytes: &[u8]) -> Option<Role> {
    let bundle = super::material::parse_certificates(bytes).ok()?;
    let der = bundle.ders.first()?;
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    if cert
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|bc| bc.value.ca)
    {
        return Some(Role::Ca);
    }
    let eku = cert.extended_key_usage().ok().flatten()?;
    Some(if eku.value.server_auth && !eku.value.client_auth {
        Role::ServerOnly
    } else {
        Role::Other
    })
}

/// The targets named by a daemon.json's tlscacert/tlscert/tlskey.
pub fn daemon_config_target(config: &Path, ca: &str, cert: &str, key: &str) -> Target {
    Target {
        path: config.to_path_buf(),
        kind: Kind::Server,
        cert: PathBuf::from(cert),
        key: PathBuf::from(key),
        ca: Some(PathBuf::from(ca)),
        cis: true,
    }
}
