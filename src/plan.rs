//! Validated intent. Raw command-line values become an `InitPlan` here, or one clear error;
//! nothing deeper sees an unchecked value.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::cli::InitArgs;
use crate::error::Error;
use crate::names::{self, Address};
use crate::pki::KeyType;

/// The longest validity accepted, in days (100 years): beyond that is a typo.
pub const MAX_DAYS: i64 = 36_500;

/// A leaf's validity when nothing says otherwise (`--days`' default).
pub const DEFAULT_LEAF_DAYS: i64 = 365;

/// The CA's validity when nothing says otherwise (`--ca-days`' default).
pub const DEFAULT_CA_DAYS: i64 = 3650;

/// Everything `init` needs, checked.
#[derive(Debug)]
pub struct InitPlan {
    pub dir: PathBuf,
    /// The name clients dial: the server certificate's CN and first SAN.
    pub host: Address,
    /// All SANs of the server certificate, `host` first, without duplicates.
    pub sans: Vec<Address>,
    pub clients: Vec<String>,
    pub key_type: KeyType,
    pub leaf_days: i64,
    pub ca_days: i64,
    pub listen: SocketAddr,
    pub install_dir: PathBuf,
    pub dockerd: PathBuf,
    pub force: bool,
    /// Things the user should know about how the input was read (duplicates, normalisation).
    pub notes: Vec<String>,
}

impl InitPlan {
    /// Validates the `init` arguments.
    pub fn from_args(dir: &Path, args: &InitArgs) -> Result<InitPlan, Error> {
        let refuse = Error::Refused;
        let mut notes = Vec::new();

        let host = args.host.as_deref().ok_or_else(|| {
            refuse("missing --host NAME: the name or IP address clients dial (on a terminal, without --yes, a wizard asks)".into())
        })?;
        let host = names::parse_address("--host", host).map_err(refuse)?;
        notes.extend(host.note);
        let host = host.address;
        let mut sans = vec![host.clone()];
        let mut seen: HashSet<Address> = sans.iter().cloned().collect();
        for input in &args.allow {
            let parsed = names::parse_address("--allow", input).map_err(refuse)?;
            notes.extend(parsed.note);
            if seen.insert(parsed.address.clone()) {
                sans.push(parsed.address);
            } else {
                notes.push(format!(
                    "--allow {input}: {} is listed already; it appears once in the certificate",
                    parsed.address
                ));
            }
        }
        let loopback = Address::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        if !args.no_loopback && seen.insert(loopback.clone()) {
            sans.push(loopback);
        }

        let mut clients = Vec::new();
        let mut seen_clients = HashSet::new();
        for input in &args.clients {
            let name = names::parse_client_name(input).map_err(refuse)?;
            // Folder names may be case-insensitive on the machine the files are copied to.
            if !seen_clients.insert(name.to_ascii_lowercase()) {
                return Err(refuse(format!(
                    "--client '{input}' is given twice: each user needs one distinct name"
                )));
            }
            clients.push(name);
        }
        if clients.is_empty() {
            clients.push("client".to_string());
        }

        let key_type = KeyType::from_name(&args.key_type).ok_or_else(|| {
            refuse(format!(
                "--key-type '{}' is not a known key type (one of {})",
                args.key_type,
                crate::cli::KEY_TYPES.join(", ")
            ))
        })?;

        let ca_days = check_days("--ca-days", args.ca_days)?;
        let leaf_days = check_days("--days", args.days)?;
        if leaf_days > ca_days {
            return Err(refuse(format!(
                "--days {leaf_days} is longer than --ca-days {ca_days}: a certificate cannot outlive its CA"
            )));
        }

        let listen = parse_listen(&args.listen)?;
        let install_dir = check_install_dir(&args.install_dir)?;
        let dockerd = check_dockerd(&args.dockerd)?;

        Ok(InitPlan {
            dir: dir.to_path_buf(),
            host,
            sans,
            clients,
            key_type,
            leaf_days,
            ca_days,
            listen,
            install_dir,
            dockerd,
            force: args.force,
            notes,
        })
    }

    /// The server certificate's CN: the dialled name, if it fits in a CN.
    pub fn server_cn(&self) -> String {
        let host = self.host.to_string();
        if host.len() <= names::CLIENT_NAME_MAX {
            host
        } else {
            // A CN holds 64 characters; Go and OpenSSL match on the SANs anyway.
            "docker daemon".to_string()
        }
    }
}

fn check_days(flag: &str, days: i64) -> Result<i64, Error> {
    if days < 1 {
        return Err(Error::Refused(format!(
            "{flag} {days}: a validity must be at least 1 day"
        )));
    }
    if days > MAX_DAYS {
        return Err(Error::Refused(format!(
            "{flag} {days}: longer than {MAX_DAYS} days (100 years) is refused as a likely typo"
        )));
    }
    Ok(days)
}

fn parse_listen(input: &str) -> Result<SocketAddr, Error> {
    let listen: SocketAddr = input.parse().map_err(|_| {
        Error::Refused(format!(
            "--listen '{input}': not an ADDR:PORT such as 0.0.0.0:2376 or [::]:2376"
        ))
    })?;
    if listen.port() == 0 {
        return Err(Error::Refused(format!(
            "--listen '{input}': port 0 is not a port clients can dial (Docker's TLS port is 2376)"
        )));
    }
    Ok(listen)
}

/// A path that goes into daemon.json: absolute, with nothing that could confuse a reader.
fn check_install_dir(path: &Path) -> Result<PathBuf, Error> {
    let text = path.to_str().ok_or_else(|| {
        Error::Refused(format!(
            "--install-dir '{}': not valid UTF-8",
            path.display()
        ))
    })?;
    if !path.is_absolute() {
        return Err(Error::Refused(format!(
            "--install-dir '{text}': must be an absolute path on the daemon host, such as /etc/docker/tls"
        )));
    }
    if text
        .chars()
        .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        return Err(Error::Refused(format!(
            "--install-dir '{}': contains a control character, a quote or a backslash",
            text.escape_default()
        )));
    }
    let trimmed = text.trim_end_matches('/');
    Ok(PathBuf::from(if trimmed.is_empty() {
        "/"
    } else {
        trimmed
    }))
}

/// dockerd's path goes into a systemd ExecStart= line, where '%', '$', quotes and white space
/// have meanings: accept plain paths only.
fn check_dockerd(path: &Path) -> Result<PathBuf, Error> {
    let text = path.to_string_lossy();
    if !path.is_absolute() {
        return Err(Error::Refused(format!(
            "--dockerd '{text}': must be an absolute path, such as /usr/bin/dockerd"
        )));
    }
    if let Some(bad) = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+')))
    {
        return Err(Error::Refused(format!(
            "--dockerd '{}': '{}' is not allowed in the ExecStart= path (letters, digits, / . _ - + only)",
            text.escape_default(),
            bad.escape_default()
        )));
    }
    Ok(path.to_path_buf())
}
