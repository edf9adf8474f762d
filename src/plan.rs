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

fn check_install_dir(path: &Path) -> Result<PathBuf, Error> {
    check_absolute_path("--install-dir", path).map_err(Error::Refused)
}

/// The one rule for a path that goes into daemon.json (`--install-dir` for `init`, and the
/// `tlscacert`/`tlscert`/`tlskey` values that `install` copies to): UTF-8, absolute, and
/// written one way only, so that what a reader sees is where the files go. No `.` or `..`
/// component (which a link could send elsewhere), no empty component (`//`), no control
/// character, quote or backslash; one trailing `/` is dropped. `what` names the value in the
/// message.
pub fn check_absolute_path(what: &str, path: &Path) -> Result<PathBuf, String> {
    let Some(text) = path.to_str() else {
        return Err(format!(
            "{what} '{}': not valid UTF-8; give a path such as /etc/docker/tls",
            path.to_string_lossy().escape_default()
        ));
    };
    if text
        .chars()
        .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        return Err(format!(
            "{what} '{}': contains a control character, a quote or a backslash; give a plain path such as /etc/docker/tls",
            text.escape_default()
        ));
    }
    if !text.starts_with('/') {
        return Err(format!(
            "{what} '{text}': must be an absolute path on the daemon host, such as /etc/docker/tls"
        ));
    }
    // One trailing '/' names the same folder: dropped (as `init` always did).
    let text = match text.strip_suffix('/') {
        Some(trimmed) if !trimmed.is_empty() && !trimmed.ends_with('/') => trimmed,
        _ => text,
    };
    let parts: Vec<&str> = text.split('/').skip(1).collect();
    let clean = |parts: &[&str]| {
        let kept: Vec<&str> = parts
            .iter()
            .copied()
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        format!("/{}", kept.join("/"))
    };
    if parts.contains(&"..") {
        return Err(format!(
            "{what} '{text}': has a '..' component, which a link could send elsewhere; give the path without it, such as /etc/docker/tls"
        ));
    }
    if text != "/" && parts.iter().any(|p| p.is_empty() || *p == ".") {
        return Err(format!(
            "{what} '{text}': has an empty or '.' component (// or /./); write it as {}",
            clean(&parts)
        ));
    }
    Ok(PathBuf::from(text))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_paths_are_absolute_and_written_one_way_only() {
        for good in [
            "/etc/docker/tls",
            "/",
            "/srv/docker tls/x.pem",
            "/opt/caf\u{e9}",
        ] {
            assert_eq!(
                check_absolute_path("--install-dir", Path::new(good)).unwrap(),
                Path::new(good)
            );
        }
        assert_eq!(
            check_absolute_path("--install-dir", Path::new("/etc/docker/tls/")).unwrap(),
            Path::new("/etc/docker/tls")
        );
        for (bad, why) in [
            ("etc/docker/tls", "absolute"),
            ("", "absolute"),
            ("./tls", "absolute"),
            ("/etc/docker/../tls", "'..'"),
            ("/..", "'..'"),
            ("/etc/docker/tls//", "write it as /etc/docker/tls"),
            ("/etc//docker/tls", "write it as /etc/docker/tls"),
            ("/etc/./docker/tls", "write it as /etc/docker/tls"),
            ("/etc/docker/tls/.", "write it as /etc/docker/tls"),
            ("/etc/docker\ntls", "control character"),
            ("/etc/\u{7f}", "control character"),
            ("/etc/\"x", "quote"),
            ("/etc/a\\b", "backslash"),
        ] {
            let err = check_absolute_path("--install-dir", Path::new(bad)).unwrap_err();
            assert!(err.starts_with("--install-dir '"), "{err}");
            assert!(err.contains(why), "{bad}: {err}");
        }
        use std::os::unix::ffi::OsStrExt;
        let err = check_absolute_path(
            "--install-dir",
            Path::new(std::ffi::OsStr::from_bytes(b"/etc/\xff")),
        )
        .unwrap_err();
        assert!(err.contains("not valid UTF-8"), "{err}");
    }
}
