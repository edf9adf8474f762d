//! Reading a PKI made elsewhere: Docker's openssl recipe folder, docker-machine's
//! `~/.docker/machine`, dind's `/certs`. Read-only: every file is opened without following a
//! link (a link inside a source is refused, never followed), checked to be a regular file and
//! read up to a bound. Each certificate is paired with the key whose public half matches it.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use zeroize::Zeroizing;

use crate::audit::material::{self, MAX_FILE_SIZE};
use crate::error::Error;

/// Which tool made the PKI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// docs.docker.com "Protect the Docker daemon socket": one folder.
    Recipe,
    /// docker-machine: certs/ and machines/NAME/.
    DockerMachine,
    /// The docker:dind image: ca/, server/, client/.
    Dind,
}

impl Layout {
    /// The state file's spelling.
    pub fn id(self) -> &'static str {
        match self {
            Layout::Recipe => "recipe",
            Layout::DockerMachine => "docker-machine",
            Layout::Dind => "dind",
        }
    }

    /// The layout in words, for the report.
    pub fn describe(self) -> &'static str {
        match self {
            Layout::Recipe => "Docker's openssl recipe folder",
            Layout::DockerMachine => "docker-machine's folder",
            Layout::Dind => "dind's /certs",
        }
    }
}

/// One file read from the source (wiped on drop: it may be a key).
pub struct Material {
    pub path: PathBuf,
    pub bytes: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Material({})", self.path.display())
    }
}

/// A leaf certificate's purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
}

/// A leaf certificate of the source, with its key when the source holds it.
#[derive(Debug)]
pub struct Leaf {
    pub role: Role,
    /// The name the source gives it (docker-machine's machine), or its CN.
    pub name: String,
    pub cert: Material,
    pub key: Option<Material>,
}

/// A PKI found at a path.
#[derive(Debug)]
pub struct Source {
    pub layout: Layout,
    pub root: PathBuf,
    pub ca_cert: Material,
    pub ca_key: Option<Material>,
    pub leaves: Vec<Leaf>,
}

/// Candidate files of one source folder: (certificate names, key names, where a leaf's role
/// is taken from its file name when its EKU does not say).
struct Folder<'a> {
    dir: PathBuf,
    certs: &'a [(&'a str, Option<Role>)],
    keys: &'a [&'a str],
    name: Option<String>,
}

/// Reads the PKI at `root`.
pub fn read(root: &Path) -> Result<Source, Error> {
    let meta = fs::metadata(root).map_err(|e| {
        Error::refused(format!("import {}: {}", crate::escape::path(root), io_reason(&e)))
            .hint("give the folder that holds ca.pem (the recipe), ~/.docker/machine (docker-machine) or /certs (dind)")
    })?;
    if !meta.is_dir() {
        return Err(Error::refused(format!(
            "import {}: is not a folder",
            crate::escape::path(root)
        ))
        .hint("give the folder that holds ca.pem, not a file in it"));
    }
    let is_dir =
        |name: &str| fs::symlink_metadata(root.join(name)).is_ok_and(|m| m.file_type().is_dir());
    let exists = |name: &str| fs::symlink_metadata(root.join(name)).is_ok();
    if is_dir("ca") && (is_dir("server") || is_dir("client")) {
        return read_dind(root);
    }
    if is_dir("certs") && exists("certs/ca.pem") {
        return read_machine(root);
    }
    if root.file_name().is_some_and(|n| n == "certs")
        && let Some(parent) = root.parent()
        && fs::symlink_metadata(parent.join("machines")).is_ok_and(|m| m.is_dir())
    {
        return read_machine(parent);
    }
    if exists("ca.pem") {
        return read_recipe(root);
    }
    Err(Error::refused(format!(
        "import {}: holds no PKI dockertls can import (no ca.pem, certs/ca.pem or ca/cert.pem)",
        root.display()
    ))
    .hint("give the folder that holds ca.pem (the recipe), ~/.docker/machine (docker-machine) or /certs (dind)"))
}

fn read_recipe(root: &Path) -> Result<Source, Error> {
    let folder = Folder {
        dir: root.to_path_buf(),
        certs: &[
            ("server-cert.pem", Some(Role::Server)),
            ("cert.pem", Some(Role::Client)),
        ],
        keys: &["server-key.pem", "key.pem"],
        name: None,
    };
    let ca_cert = required(root, "ca.pem")?;
    let ca_key = read_file(&root.join("ca-key.pem"))?;
    let leaves = read_folder(&folder, &ca_cert)?;
    finish(Layout::Recipe, root, ca_cert, ca_key, leaves)
}

fn read_machine(root: &Path) -> Result<Source, Error> {
    let certs = root.join("certs");
    let ca_cert = required(&certs, "ca.pem")?;
    let ca_key = read_file(&certs.join("ca-key.pem"))?;
    let client = Folder {
        dir: certs.clone(),
        certs: &[("cert.pem", Some(Role::Client))],
        keys: &["key.pem"],
        name: None,
    };
    let mut leaves = read_folder(&client, &ca_cert)?;
    let machines = root.join("machines");
    // A link in place of machines/ is not followed (nor one in place of a machine's folder).
    let real = fs::symlink_metadata(&machines).is_ok_and(|m| m.file_type().is_dir());
    let listing = if real {
        fs::read_dir(&machines)
    } else {
        Err(std::io::ErrorKind::NotFound.into())
    };
    let mut names: Vec<String> = match listing {
        Ok(entries) => entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    for name in names {
        let folder = Folder {
            dir: machines.join(&name),
            certs: &[("server.pem", Some(Role::Server))],
            keys: &["server-key.pem"],
            name: Some(name),
        };
        leaves.extend(read_folder(&folder, &ca_cert)?);
    }
    finish(Layout::DockerMachine, root, ca_cert, ca_key, leaves)
}

fn read_dind(root: &Path) -> Result<Source, Error> {
    let ca_dir = root.join("ca");
    let ca_cert = required(&ca_dir, "cert.pem")?;
    let ca_key = read_file(&ca_dir.join("key.pem"))?;
    let mut leaves = Vec::new();
    for (sub, role) in [("server", Role::Server), ("client", Role::Client)] {
        let dir = root.join(sub);
        if !fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        let certs = [("cert.pem", Some(role))];
        let folder = Folder {
            dir,
            certs: &certs,
            keys: &["key.pem"],
            name: None,
        };
        leaves.extend(read_folder(&folder, &ca_cert)?);
    }
    finish(Layout::Dind, root, ca_cert, ca_key, leaves)
}

/// Checks the CA certificate and its key, and that there is something to import.
fn finish(
    layout: Layout,
    root: &Path,
    ca_cert: Material,
    ca_key: Option<Material>,
    leaves: Vec<Leaf>,
) -> Result<Source, Error> {
    let der = first_der(&ca_cert)?;
    let (_, ca) = X509Certificate::from_der(&der).map_err(|e| {
        Error::refused(format!(
            "{} is not a valid certificate ({})",
            ca_cert.path.display(),
            material::x509_error_text(&e)
        ))
    })?;
    if !ca
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|bc| bc.value.ca)
    {
        return Err(Error::refused(format!(
            "{} is not a CA certificate (no basicConstraints CA:TRUE)",
            ca_cert.path.display()
        )));
    }
    if let Some(key) = &ca_key
        && let Ok(file) = material::parse_private_key(&key.bytes)
        && !crate::audit::checks::key_matches(&ca, &file.public).unwrap_or(true)
    {
        return Err(Error::refused(format!(
            "{} is not the key of {}",
            key.path.display(),
            ca_cert.path.display()
        )));
    }
    Ok(Source {
        layout,
        root: root.to_path_buf(),
        ca_cert,
        ca_key,
        leaves,
    })
}

/// The leaves of one folder: each certificate signed by the CA, paired with its key.
fn read_folder(folder: &Folder<'_>, ca_cert: &Material) -> Result<Vec<Leaf>, Error> {
    let ca_der = first_der(ca_cert)?;
    let ca = X509Certificate::from_der(&ca_der).ok().map(|(_, c)| c);
    let mut keys: Vec<Option<Material>> = Vec::new();
    for name in folder.keys {
        keys.push(read_file(&folder.dir.join(name))?);
    }
    let mut leaves = Vec::new();
    for (name, role_by_name) in folder.certs {
        let Some(cert) = read_file(&folder.dir.join(name))? else {
            continue;
        };
        let der = first_der(&cert)?;
        let (_, parsed) = X509Certificate::from_der(&der).map_err(|e| {
            Error::refused(format!(
                "{} is not a valid certificate ({})",
                cert.path.display(),
                material::x509_error_text(&e)
            ))
        })?;
        if let Some(ca) = &ca
            && parsed.verify_signature(Some(ca.public_key())).is_err()
        {
            return Err(Error::refused(format!(
                "{} was not signed by {}: it cannot be imported with that CA",
                cert.path.display(),
                ca_cert.path.display()
            ))
            .hint("import each CA's folder into its own --dir"));
        }
        let role = role_of(&parsed).or(*role_by_name).unwrap_or(Role::Client);
        let key = keys
            .iter_mut()
            .position(|k| {
                k.as_ref().is_some_and(|k| {
                    material::parse_private_key(&k.bytes).is_ok_and(|file| {
                        crate::audit::checks::key_matches(&parsed, &file.public) == Ok(true)
                    })
                })
            })
            .and_then(|index| keys[index].take());
        // An encrypted key cannot be matched (nor loaded by dockerd): say so rather than
        // import the certificate as if its key lived elsewhere.
        if key.is_none()
            && let Some(locked) = keys.iter().flatten().find(|k| {
                crate::import::keys::protection(&k.bytes) != crate::import::keys::Protection::Plain
            })
        {
            return Err(Error::refused(format!(
                "{} is encrypted: dockerd and the docker CLI cannot load an encrypted key",
                locked.path.display()
            ))
            .hint(format!(
                "decrypt it in a copy of the folder (openssl pkey -in {0} -out {0}.plain, then mv {0}.plain {0}), and import that",
                locked.path.display()
            )));
        }
        let leaf_name = folder.name.clone().unwrap_or_else(|| common_name(&parsed));
        leaves.push(Leaf {
            role,
            name: leaf_name,
            cert,
            key,
        });
    }
    Ok(leaves)
}

/// A leaf's role by its extendedKeyUsage, when that says one.
fn role_of(cert: &X509Certificate<'_>) -> Option<Role> {
    let eku = cert.extended_key_usage().ok().flatten()?.value;
    match (eku.server_auth, eku.client_auth) {
        (true, false) => Some(Role::Server),
        (false, true) => Some(Role::Client),
        _ => None,
    }
}

/// The certificate's CN (empty when it has none).
pub fn common_name(cert: &X509Certificate<'_>) -> String {
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The first certificate of a file, as DER.
pub fn first_der(file: &Material) -> Result<Vec<u8>, Error> {
    let bundle = material::parse_certificates(&file.bytes)
        .map_err(|why| Error::refused(format!("{} {why}", file.path.display())))?;
    bundle
        .ders
        .into_iter()
        .next()
        .ok_or_else(|| Error::refused(format!("{} holds no certificate", file.path.display())))
}

fn required(dir: &Path, name: &str) -> Result<Material, Error> {
    read_file(&dir.join(name))?
        .ok_or_else(|| Error::refused(format!("import: {} is missing", dir.join(name).display())))
}

/// Reads a regular file, not through a link, up to `MAX_FILE_SIZE`; `None` when absent.
pub fn read_file(path: &Path) -> Result<Option<Material>, Error> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let refuse = |why: String| Error::refused(format!("import: {} {why}", path.display()));
    let fd = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(rustix::io::Errno::LOOP) => {
            return Err(refuse(
                "is a symbolic link: dockertls does not follow links in a PKI it imports".into(),
            )
            .hint("copy the PKI into a folder of its own (cp -rL) and import that"));
        }
        Err(err) => return Err(refuse(io_reason(&std::io::Error::from(err)))),
    };
    let file = fs::File::from(fd);
    let meta = file.metadata().map_err(|e| refuse(io_reason(&e)))?;
    if !meta.is_file() {
        return Err(refuse("is not a regular file".into()));
    }
    if meta.len() > MAX_FILE_SIZE {
        return Err(refuse(format!(
            "is larger than {} KiB: not certificate material",
            MAX_FILE_SIZE / 1024
        )));
    }
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| refuse(io_reason(&e)))?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(refuse("grew while it was read".into()));
    }
    Ok(Some(Material {
        path: path.to_path_buf(),
        bytes,
    }))
}

fn io_reason(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => "does not exist".into(),
        std::io::ErrorKind::PermissionDenied => "cannot be read: permission denied".into(),
        _ => format!("cannot be read: {err}"),
    }
}
