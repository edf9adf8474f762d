//! Reading what a dockertls PKI holds: the CA, the server and the clients.

use std::path::Path;

use ::time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

use crate::audit::material;
use crate::error::Error;
use crate::names::Address;
use crate::pki::Ca;
use crate::secret::{self, Passphrase};
use crate::store::Folder;
use crate::store::layout::{CLIENTS_DIR, Holder, Pki};

/// A leaf certificate as read from the PKI.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub der: Vec<u8>,
    pub cn: String,
    pub sans: Vec<Address>,
    pub serial: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl Leaf {
    /// Whole days from `now` to expiry (negative once expired).
    pub fn days_left(&self, now: OffsetDateTime) -> i64 {
        crate::pki::days_left(now, self.not_after)
    }
}

/// Reads a file of the PKI: never through a link at its last name or its folder's, never a
/// FIFO or device, at most 1 MiB.
fn read_pki_file(path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>, Error> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(Error::Refused(format!("{} is not a file", path.display())));
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let folder = Folder::open(parent)?;
    read_in(&folder, &name.to_string_lossy())
}

fn read_in(folder: &Folder, name: &str) -> Result<zeroize::Zeroizing<Vec<u8>>, Error> {
    let (bytes, _) = folder.read_file(name, material::MAX_FILE_SIZE + 1)?;
    if bytes.len() as u64 > material::MAX_FILE_SIZE {
        return Err(Error::Refused(format!(
            "{} is over 1 MiB: not certificate material",
            folder.path().join(name).display()
        )));
    }
    Ok(bytes)
}

/// Reads a certificate file of the PKI.
pub fn read_leaf(path: &Path) -> Result<Leaf, Error> {
    let bytes = read_pki_file(path)?;
    let bundle = material::parse_certificates(&bytes)
        .map_err(|why| Error::Failed(format!("{} {why}", path.display())))?;
    let der = bundle.ders.into_iter().next().unwrap_or_default();
    let (_, cert) = X509Certificate::from_der(&der)
        .map_err(|e| Error::Failed(format!("{} does not parse ({e})", path.display())))?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_string();
    let sans = crate::names::certificate_sans(&cert);
    let serial = cert
        .raw_serial()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let (not_before, not_after) = (
        cert.validity().not_before.to_datetime(),
        cert.validity().not_after.to_datetime(),
    );
    drop(cert);
    Ok(Leaf {
        der,
        cn,
        sans,
        serial,
        not_before,
        not_after,
    })
}

/// Loads the CA that signs (ca/ca.pem, ca/ca-key.pem), unlocking an encrypted key with the
/// passphrase from `passphrase_file` or a prompt. Returns the passphrase when one was needed.
pub fn load_ca(
    dir: &Path,
    passphrase_file: Option<&Path>,
) -> Result<(Ca, Option<Passphrase>), Error> {
    let (pki, ca) = (Pki::new(dir), Holder::Ca);
    let (cert_path, key_path) = (pki.cert(&ca), pki.key(&ca));
    // Both from one opened ca/: a `rotate --ca` swapping it cannot pair a certificate with
    // the other side's key.
    let ca_folder = Folder::open(dir)?.subfolder(&ca.folder())?;
    let cert = String::from_utf8(read_in(&ca_folder, ca.cert_name())?.to_vec())
        .map_err(|_| Error::Refused(format!("{} is not PEM text", cert_path.display())))?;
    // issue 14 (import): a PKI without its CA key reads, but cannot sign.
    if ca_folder.entry_stat(ca.key_name())?.is_none() {
        return Err(crate::import::records::no_ca_key(dir, &key_path));
    }
    let key = read_in(&ca_folder, ca.key_name())?;
    let (key_text, passphrase) = match material::parse_private_key(&key) {
        Err(material::KeyError::Encrypted) => {
            let pass = secret::obtain(
                passphrase_file,
                &format!("Passphrase for {}", key_path.display()),
                false,
                &format!("{} is encrypted", key_path.display()),
            )?;
            (secret::decrypt_key(&key, &pass, &key_path)?, Some(pass))
        }
        Err(material::KeyError::Invalid(why)) => {
            return Err(Error::Refused(format!("{} {why}", key_path.display())));
        }
        Ok(_) => (
            zeroize::Zeroizing::new(String::from_utf8_lossy(&key).into_owned()),
            None,
        ),
    };
    // rcgen loads PKCS#8; a PKCS#1 or SEC1 CA key made elsewhere would need converting.
    let ca = Ca::load(&cert, &key_text)
        .map_err(|why| Error::Refused(format!("{}: {why}", cert_path.display())))?;
    Ok((ca, passphrase))
}

/// Refuses when `ca`, loaded before DIR's lock was taken (its passphrase is asked first), is
/// no longer the CA in `ws` (read now, under the lock): another run replaced it meanwhile, or
/// taking the lock finished a `rotate --ca` that had been stopped half-way. What `ca` signed
/// would be refused by servers that trust the new one.
pub fn require_current_ca(ws: &crate::store::workspace::Workspace, ca: &Ca) -> Result<(), Error> {
    let holder = Holder::Ca;
    let live = read_in(&ws.dir().subfolder(&holder.folder())?, holder.cert_name())?;
    if live.as_slice() == ca.cert_pem.as_bytes() {
        return Ok(());
    }
    Err(Error::refused(format!(
        "the CA in {} changed while this command was starting (another dockertls run replaced it, or finished a rotate --ca stopped half-way); nothing was changed",
        Pki::new(ws.dir().path()).cert(&holder).display()
    ))
    .hint("run this command again: it signs with the CA now in place"))
}

/// The certificate of `holder` in the PKI in `dir`.
pub fn read_cert(dir: &Path, holder: &Holder) -> Result<Leaf, Error> {
    read_leaf(&Pki::new(dir).cert(holder))
}

/// The client names in DIR/clients, sorted.
pub fn client_names(dir: &Path) -> Vec<String> {
    // Only real folders, listed without following a link at DIR/clients.
    Folder::open(dir)
        .and_then(|folder| folder.subfolder(CLIENTS_DIR))
        .and_then(|clients| clients.entries())
        .map(|entries| {
            entries
                .into_iter()
                .filter(|(_, kind)| *kind == rustix::fs::FileType::Directory)
                .map(|(name, _)| name)
                .collect()
        })
        .unwrap_or_default()
}

/// Refuses a client name that has no folder in the PKI (`flag` names the value: `--client`
/// or empty for a positional NAME).
pub fn require_clients(dir: &Path, flag: &str, wanted: &[String]) -> Result<(), Error> {
    let known = client_names(dir);
    let Some(unknown) = wanted.iter().find(|n| !known.contains(n)) else {
        return Ok(());
    };
    let listed = if known.is_empty() {
        "none".to_string()
    } else {
        known.join(", ")
    };
    let shown = crate::escape::value(unknown);
    let flag = if flag.is_empty() {
        String::new()
    } else {
        format!("{flag} {shown}: ")
    };
    Err(Error::refused(format!(
        "{flag}no client '{shown}' in {} (clients: {listed})",
        dir.display()
    ))
    .hint(match crate::plan::same_name(&known, unknown) {
        // Only the case differs: adding it would be refused as the same user.
        Some(other) => format!("did you mean '{other}'? Names are one folder whatever their case"),
        None => format!(
            "list them with dockertls client list, or add it with dockertls client add {shown}"
        ),
    }))
}

/// DIR/servers/NAME/daemon.json as written by `init` (null when it is missing or unreadable).
fn daemon_json(dir: &Path, server: &str) -> serde_json::Value {
    read_pki_file(&Pki::new(dir).daemon_json(server))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// The tcp port in the server's daemon.json's hosts (2376 if none).
pub fn listen_port(dir: &Path, server: &str) -> u16 {
    crate::dockerd_hosts::first_tcp_port(&daemon_json(dir, server)["hosts"]).unwrap_or(2376)
}

/// Where the server files live on the daemon host: the folder of the server's daemon.json's
/// `tlscert` (`init --install-dir`), if it names one.
pub fn install_dir(dir: &Path, server: &str) -> Option<std::path::PathBuf> {
    let cert = daemon_json(dir, server)["tlscert"].as_str()?.to_string();
    Path::new(&cert).parent().map(Path::to_path_buf)
}

/// A short date for messages.
pub fn date(t: OffsetDateTime) -> String {
    let d = t.date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}
