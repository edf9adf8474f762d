//! Validated intent. Raw command-line values become an `InitPlan` here, or one clear error;
//! nothing deeper sees an unchecked value.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::cli::{ClientAddArgs, InitArgs, RotateArgs};
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

        let mut clients = client_names("--client", &args.clients).map_err(refuse)?;
        if clients.is_empty() {
            clients.push("client".to_string());
        }
        let key_type = args.key_type;

        let ca_days = check_days("--ca-days", args.ca_days, 1)?;
        let leaf_days = check_days("--days", args.days, 1)?;
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

/// The one rule for a number of days (`--days`, `--ca-days`, `--within`, the wizard's
/// answers): a whole number from `min` to [`MAX_DAYS`].
pub fn check_days(flag: &str, days: i64, min: i64) -> Result<i64, Error> {
    if (min..=MAX_DAYS).contains(&days) {
        Ok(days)
    } else {
        Err(Error::Refused(days_message(flag, &days.to_string(), min)))
    }
}

/// The most backup folders `--keep-backups` / `backup prune --keep` accept: more is a typo.
pub const MAX_KEEP_BACKUPS: i64 = 10_000;

/// The one rule for a number of backup folders to keep: 0 to [`MAX_KEEP_BACKUPS`].
pub fn check_keep(flag: &str, keep: i64) -> Result<usize, Error> {
    match usize::try_from(keep) {
        Ok(n) if keep <= MAX_KEEP_BACKUPS => Ok(n),
        _ => Err(Error::Refused(format!(
            "{flag} {keep}: give a number of backup folders to keep, from 0 to {MAX_KEEP_BACKUPS}"
        ))),
    }
}

/// The message of [`check_days`], also for an answer that is not a number.
pub fn days_message(flag: &str, input: &str, min: i64) -> String {
    format!(
        "{flag} {}: give a whole number of days from {min} to {MAX_DAYS} (100 years; more is refused as a likely typo)",
        crate::escape::value(input)
    )
}

/// The one rule for a list of new client names (`init --client`, `client add`, `rotate
/// --client`, the wizard): each a valid name, none given twice. Names that differ only in
/// case count as the same: the folder clients/NAME is copied to users' machines, where the
/// file system may ignore case (macOS, Windows) and Alice/ would overwrite alice/.
pub fn client_names<S: AsRef<str>>(flag: &str, inputs: &[S]) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = Vec::new();
    for input in inputs {
        let name = names::parse_client_name(input.as_ref())?;
        if let Some(first) = same_name(&names, &name) {
            let why = if first == name {
                String::new()
            } else {
                format!(
                    " (as '{first}': names that differ only in case are one folder on some systems)"
                )
            };
            return Err(format!(
                "{flag} '{name}' is given twice{why}: give each user one distinct name"
            ));
        }
        names.push(name);
    }
    Ok(names)
}

/// The clients `rotate --client` selects: the same name given twice selects it once (it names
/// one existing folder); two spellings that differ only in case are refused, as everywhere.
fn selected_clients<S: AsRef<str>>(inputs: &[S]) -> Result<Vec<String>, String> {
    let mut unique: Vec<&str> = Vec::new();
    for input in inputs {
        if !unique.contains(&input.as_ref()) {
            unique.push(input.as_ref());
        }
    }
    client_names("--client", &unique)
}

/// The name in `names` that is `name` when case is ignored.
pub fn same_name<'a>(names: &'a [String], name: &str) -> Option<&'a str> {
    names
        .iter()
        .find(|n| n.eq_ignore_ascii_case(name))
        .map(String::as_str)
}

/// Everything `client add` needs, checked.
#[derive(Debug)]
pub struct ClientAddPlan {
    /// The new clients, distinct ignoring case.
    pub names: Vec<String>,
    /// Validity of each certificate.
    pub days: i64,
}

impl ClientAddPlan {
    /// Validates the `client add` arguments.
    pub fn from_args(args: &ClientAddArgs) -> Result<ClientAddPlan, Error> {
        Ok(ClientAddPlan {
            names: client_names("client add", &args.names).map_err(Error::Refused)?,
            days: check_days("--days", args.days, 1)?,
        })
    }
}

/// What `rotate` was asked to select.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateScope {
    /// `--ca`: a new CA and everything re-issued under it.
    NewCa,
    /// `--server` and/or `--client`: only those.
    Selected,
    /// Neither: every certificate, when due.
    Everything,
}

/// Everything `rotate` needs, checked.
#[derive(Debug)]
pub struct RotatePlan {
    pub scope: RotateScope,
    /// `--within N`: re-issue what expires within N days, instead of the renewal rule
    /// (`pki::Window::Rule`).
    pub within: Option<i64>,
    /// `--keep-backups N`: the backup folders kept after a successful run.
    pub keep_backups: usize,
    /// `--all`: re-issue every selected certificate whatever its expiry.
    pub all: bool,
    /// `--server` (with or without names).
    pub server: bool,
    /// `--server NAME` names, distinct (empty: every server).
    pub servers: Vec<String>,
    /// `--client` names, distinct.
    pub clients: Vec<String>,
    /// SANs to add to the server certificate, distinct.
    pub allow: Vec<Address>,
    pub dry_run: bool,
    /// How the input was read (normalised addresses).
    pub notes: Vec<String>,
    /// `--revoke-old --grace DAYS` (issue 13): revoke the replaced client certificates after
    /// that many days.
    pub revoke_old: Option<i64>,
}

impl RotatePlan {
    /// Validates the `rotate` arguments.
    pub fn from_args(args: &RotateArgs) -> Result<RotatePlan, Error> {
        let within = args
            .within
            .map(|days| check_days("--within", days, 0))
            .transpose()?;
        let keep_backups = check_keep("--keep-backups", args.keep_backups)?;
        let server = args.server.is_some();
        if !args.allow.is_empty() && !server {
            return Err(Error::Refused(
                "--allow adds SANs to the server certificate: add --server".into(),
            ));
        }
        let selected = server || !args.clients.is_empty();
        if args.ca && (selected || args.all || !args.allow.is_empty()) {
            return Err(Error::Refused(
                "--ca re-issues everything under a new CA: drop --server, --client, --all and --allow"
                    .into(),
            ));
        }
        let mut notes = Vec::new();
        let mut allow = Vec::new();
        for input in &args.allow {
            let parsed = names::parse_address("--allow", input).map_err(Error::Refused)?;
            notes.extend(parsed.note);
            if !allow.contains(&parsed.address) {
                allow.push(parsed.address);
            }
        }
        let scope = match (args.ca, selected) {
            (true, _) => RotateScope::NewCa,
            (false, true) => RotateScope::Selected,
            (false, false) => RotateScope::Everything,
        };
        Ok(RotatePlan {
            scope,
            within,
            keep_backups,
            all: args.all,
            server,
            servers: selected_servers(args.server.as_deref().unwrap_or_default())?,
            clients: selected_clients(&args.clients).map_err(Error::Refused)?,
            allow,
            dry_run: args.dry_run,
            notes,
            revoke_old: args
                .revoke_old
                .then(|| check_days("--grace", args.grace, 0))
                .transpose()?,
        })
    }
}

/// The `--server NAME` names of rotate, checked, each once.
fn selected_servers(inputs: &[String]) -> Result<Vec<String>, Error> {
    let mut names = Vec::new();
    for input in inputs {
        let name = crate::store::registry::parse_server_name("--server", input)?;
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

pub fn parse_listen(input: &str) -> Result<SocketAddr, Error> {
    let shown = crate::escape::value(input);
    let listen: SocketAddr = input.parse().map_err(|_| {
        Error::Refused(format!(
            "--listen '{shown}': not an ADDR:PORT such as 0.0.0.0:2376 or [::]:2376"
        ))
    })?;
    if listen.port() == 0 {
        return Err(Error::Refused(format!(
            "--listen '{shown}': port 0 is not a port clients can dial (Docker's TLS port is 2376)"
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
    // Kept whole up to PATH_MAX, escaped (escape::path).
    let shown = crate::escape::path(path);
    let Some(text) = path.to_str() else {
        return Err(format!(
            "{what} '{shown}': not valid UTF-8; give a path such as /etc/docker/tls"
        ));
    };
    if text
        .chars()
        .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        return Err(format!(
            "{what} '{shown}': contains a control character, a quote or a backslash; give a plain path such as /etc/docker/tls"
        ));
    }
    if !text.starts_with('/') {
        return Err(format!(
            "{what} '{shown}': must be an absolute path on the daemon host, such as /etc/docker/tls"
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
            "{what} '{shown}': has a '..' component, which a link could send elsewhere; give the path without it, such as /etc/docker/tls"
        ));
    }
    if text != "/" && parts.iter().any(|p| p.is_empty() || *p == ".") {
        return Err(format!(
            "{what} '{shown}': has an empty or '.' component (// or /./); write it as {}",
            crate::escape::path(Path::new(&clean(&parts)))
        ));
    }
    Ok(PathBuf::from(text))
}

/// dockerd's path goes into a systemd ExecStart= line, where '%', '$', quotes and white space
/// have meanings: accept plain paths only.
pub fn check_dockerd(path: &Path) -> Result<PathBuf, Error> {
    let text = path.to_string_lossy();
    let shown = crate::escape::path(path);
    if !path.is_absolute() {
        return Err(Error::Refused(format!(
            "--dockerd '{shown}': must be an absolute path, such as /usr/bin/dockerd"
        )));
    }
    if let Some(bad) = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+')))
    {
        return Err(Error::Refused(format!(
            "--dockerd '{shown}': '{}' is not allowed in the ExecStart= path (letters, digits, / . _ - + only)",
            bad.escape_default()
        )));
    }
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_name_given_twice_is_refused_whatever_its_case() {
        assert_eq!(
            client_names("--client", &["alice", "bob"]).unwrap(),
            ["alice", "bob"]
        );
        for twice in [["alice", "alice"], ["Alice", "alice"], ["bob", "BOB"]] {
            let err = client_names("--client", &twice).unwrap_err();
            assert!(err.starts_with("--client '"), "{err}");
            assert!(err.contains("given twice"), "{err}");
        }
        assert_eq!(same_name(&["Alice".to_string()], "aLICE"), Some("Alice"));
        assert_eq!(same_name(&["alice".to_string()], "alicia"), None);
        let exact = client_names("--client", &["alice", "alice"]).unwrap_err();
        assert!(!exact.contains("as 'alice'"), "{exact}");
    }

    #[test]
    fn rotate_selects_a_client_named_twice_once_but_refuses_two_spellings() {
        assert_eq!(
            selected_clients(&["alice", "bob", "alice"]).unwrap(),
            ["alice", "bob"]
        );
        let err = selected_clients(&["alice", "ALICE"]).unwrap_err();
        assert!(err.contains("as 'alice'"), "{err}");
    }

    #[test]
    fn days_have_one_rule_and_one_message() {
        assert_eq!(check_days("--days", 1, 1).unwrap(), 1);
        assert_eq!(check_days("--within", 0, 0).unwrap(), 0);
        assert_eq!(check_days("--days", MAX_DAYS, 1).unwrap(), MAX_DAYS);
        for (flag, days, min) in [
            ("--days", 0, 1),
            ("--within", -1, 0),
            ("--ca-days", MAX_DAYS + 1, 1),
        ] {
            let err = check_days(flag, days, min).unwrap_err().to_string();
            assert_eq!(err, days_message(flag, &days.to_string(), min));
            assert!(err.starts_with(&format!("{flag} {days}: ")), "{err}");
            assert!(err.contains(&format!("from {min} to {MAX_DAYS}")), "{err}");
        }
    }

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
