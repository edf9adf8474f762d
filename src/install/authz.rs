//! `install --authz`: what puts the dockertls authorization plugin in place on the daemon host
//! (pure: the unit texts and the daemon.json value; `install::plan` adds them to the plan).
//!
//! dockerd refuses every API call, the local socket's too, while a plugin it names does not
//! answer, and a dockerd started while the plugin's socket is missing exits. So the plugin is
//! socket-activated: systemd holds `/run/docker/plugins/dockertls.sock` open from boot (calls
//! queue while the service restarts), docker.service requires and starts after that socket,
//! and install switches daemon.json (which names the plugin) only after the units are in place.

use serde_json::Value;

use crate::error::Error;
use crate::store::layout::{AUTHZ_POLICY, CRL};

/// The plugin's name: dockerd finds it as /run/docker/plugins/NAME.sock.
pub const PLUGIN: &str = "dockertls";
/// The socket dockerd dials.
pub const SOCKET_PATH: &str = "/run/docker/plugins/dockertls.sock";
/// The socket unit (host path).
pub const SOCKET_UNIT: &str = "/etc/systemd/system/dockertls-authz.socket";
/// The service unit (host path).
pub const SERVICE_UNIT: &str = "/etc/systemd/system/dockertls-authz.service";
/// docker.service's drop-in ordering it after the plugin's socket (host path). Its own file,
/// beside zz-dockertls.conf, so `install` without --authz never touches it.
pub const DOCKER_DROPIN: &str = "/etc/systemd/system/docker.service.d/zz-dockertls-authz.conf";
/// daemon.json's key naming the plugins.
pub const DAEMON_KEY: &str = "authorization-plugins";
/// The socket unit's name (for systemctl).
pub const SOCKET_NAME: &str = "dockertls-authz.socket";

/// The socket unit.
pub fn socket_unit() -> String {
    format!(
        "# Written by dockertls install --authz: the authorization plugin's socket, held by systemd\n\
         # so dockerd finds it from boot and its calls wait (not fail) while the plugin restarts.\n\
         [Unit]\n\
         Description=dockertls authorization plugin socket for dockerd\n\
         Before=docker.service\n\
         \n\
         [Socket]\n\
         ListenStream={SOCKET_PATH}\n\
         SocketUser=root\n\
         SocketGroup=root\n\
         SocketMode=0600\n\
         DirectoryMode=0700\n\
         \n\
         [Install]\n\
         WantedBy=sockets.target\n"
    )
}

/// The service unit: `dockertls authz serve` from `binary`, reading `tls_dir`. Root without
/// any capability (it owns the 0700 TLS folder), with no network and a read-only system.
pub fn service_unit(binary: &str, tls_dir: &str) -> String {
    format!(
        "# Written by dockertls install --authz: the authorization plugin (see {SOCKET_UNIT}).\n\
         [Unit]\n\
         Description=dockertls authorization plugin for dockerd (revocation, roles, audit log)\n\
         Requires={SOCKET_NAME}\n\
         After={SOCKET_NAME}\n\
         \n\
         [Service]\n\
         ExecStart={binary} authz serve --socket {SOCKET_PATH} --tls-dir {tls_dir}\n\
         Restart=always\n\
         RestartSec=100ms\n\
         CapabilityBoundingSet=\n\
         NoNewPrivileges=yes\n\
         ProtectSystem=strict\n\
         ProtectHome=yes\n\
         PrivateTmp=yes\n\
         PrivateDevices=yes\n\
         PrivateNetwork=yes\n\
         RestrictAddressFamilies=AF_UNIX\n\
         ProtectKernelTunables=yes\n\
         ProtectKernelModules=yes\n\
         ProtectControlGroups=yes\n\
         LockPersonality=yes\n\
         RestrictRealtime=yes\n\
         SystemCallArchitectures=native\n"
    )
}

/// docker.service's drop-in: the plugin's socket first, and docker goes when it goes.
pub fn docker_dropin() -> String {
    format!(
        "# Written by dockertls install --authz: dockerd exits if the plugin its daemon.json names\n\
         # is missing at start, and refuses every call while it does not answer.\n\
         [Unit]\n\
         Requires={SOCKET_NAME}\n\
         After={SOCKET_NAME}\n"
    )
}

/// The `authorization-plugins` value daemon.json gets: the plugins it names already, then
/// dockertls (dockerd asks each in turn; every one must allow). None when it is not a list of
/// names (refused by the caller).
pub fn plugins_value(existing: Option<&Value>) -> Option<Value> {
    let mut names: Vec<Value> = match existing {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => items.clone(),
        Some(_) => return None,
    };
    if !names.iter().any(|n| n == PLUGIN) {
        names.push(Value::String(PLUGIN.into()));
    }
    Some(Value::Array(names))
}

/// Refuses a binary path systemd would split or misread in ExecStart (`tls_dir` likewise).
pub fn check_exec_path(what: &str, path: &str) -> Result<(), String> {
    let plain = path.starts_with('/')
        && path
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '\\' | '"' | '\'' | '$' | '%' | ';'));
    if plain {
        Ok(())
    } else {
        Err(format!(
            "{what} {path}: the plugin's unit names it in ExecStart, which needs an absolute path without spaces, quotes, '\\', '$', '%' or ';'"
        ))
    }
}

/// Refuses a binary the root plugin service would run that anyone but root could replace: the
/// file and every folder above it must be owned by root and writable by neither group nor others
/// (a root-owned sticky folder such as /tmp is fine: nobody else may rename or remove root's
/// entries in it). The path is `current_exe()`, which Linux gives with links resolved.
pub fn check_binary_owner(binary: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt as _;
    let mut at = Some(binary);
    while let Some(path) = at {
        let meta = std::fs::symlink_metadata(path)
            .map_err(|e| format!("cannot inspect {}: {e}", crate::escape::path(path)))?;
        let is_file = path == binary;
        let sticky = !is_file && meta.mode() & 0o1000 != 0;
        let who = if meta.uid() != 0 {
            Some(format!("is owned by uid {}, not root", meta.uid()))
        } else if meta.mode() & 0o022 != 0 && !sticky {
            Some(format!(
                "is writable by group or others (mode {:04o})",
                meta.mode() & 0o7777
            ))
        } else if meta.file_type().is_symlink() {
            Some("is a symbolic link".to_string())
        } else {
            None
        };
        if let Some(why) = who {
            let what = if is_file {
                "this dockertls binary"
            } else {
                "the folder"
            };
            return Err(format!(
                "{what} {} {why}: the root plugin service would run {} from there, and whoever can change it would run code as root; nothing was changed",
                crate::escape::path(path),
                crate::escape::path(binary)
            ));
        }
        at = path.parent();
    }
    Ok(())
}

/// What `install --authz` read: the server folder's CRL and policy (checked against the ca.pem
/// being installed) and the host's current version of every file it writes. No `Debug`, as the
/// rest of install's reads.
pub struct AuthzRead {
    crl: Vec<u8>,
    policy: Option<Vec<u8>>,
    /// `install --authz`: the plugin's units too; else (the plugin already in place, see
    /// [`in_place`]) only its lists, crl.pem and authz.json. Empty when not `full`.
    binary: String,
    full: bool,
    existing: std::collections::BTreeMap<String, super::FileRead>,
    /// Said before the work (a CRL past its nextUpdate).
    pub notes: Vec<String>,
}

impl AuthzRead {
    /// Whether this is `install --authz` (the units and daemon.json's plugin list as well).
    pub fn full(&self) -> bool {
        self.full
    }
}

/// Why the dockertls plugin is already in place on the host, if it is: daemon.json's
/// `authorization-plugins` names it, or one of its units exists. A plain install there keeps
/// the plugin's lists (crl.pem, authz.json) current, as install --authz would: else a revoked
/// client would stay in until someone remembered --authz.
pub fn in_place(
    daemon_json: Option<&super::FileRead>,
    host: &super::Root,
) -> Result<Option<String>, Error> {
    let named = daemon_json
        .and_then(|file| serde_json::from_slice::<Value>(&file.contents).ok())
        .and_then(|value| value.get(DAEMON_KEY).cloned())
        .is_some_and(|plugins| {
            plugins
                .as_array()
                .is_some_and(|names| names.iter().any(|n| n == PLUGIN))
        });
    if named {
        return Ok(Some(format!(
            "{}'s \"{DAEMON_KEY}\" names \"{PLUGIN}\"",
            super::DAEMON_JSON
        )));
    }
    for unit in unit_paths() {
        if super::read_existing(host, unit)?.is_some() {
            return Ok(Some(format!("{unit} exists")));
        }
    }
    Ok(None)
}

/// The host paths `install --authz` writes, besides the TLS files, in switch order.
fn unit_paths() -> [&'static str; 3] {
    [SOCKET_UNIT, SERVICE_UNIT, DOCKER_DROPIN]
}

/// Reads the CRL and policy of the server folder `folder` (relative to `pki`; "" for the
/// folder itself) and what the host has at every path install --authz writes. The CRL must be
/// signed by `ca` (the ca.pem being installed at `ca_path`, whose folder the plugin reads): a
/// CRL the plugin would refuse is not installed.
pub fn read(
    pki: &super::Root,
    folder: &str,
    ca: &[u8],
    ca_path: &str,
    host: &super::Root,
    now: ::time::OffsetDateTime,
    full: bool,
) -> Result<AuthzRead, Error> {
    let (tls_dir, ca_name) = ca_path.rsplit_once('/').unwrap_or(("", ca_path));
    if ca_name != crate::store::layout::CA_CERT {
        return Err(Error::Refused(format!(
            "\"tlscacert\" is {ca_path}: the plugin reads ca.pem, crl.pem and authz.json from one folder, so install --authz needs the CA at FOLDER/ca.pem (init --install-dir FOLDER)"
        )));
    }
    let path = |name: &str| {
        if folder.is_empty() {
            name.to_string()
        } else {
            format!("{folder}/{name}")
        }
    };
    let crl_path = path(CRL);
    let crl = pki
        .read(&crl_path, super::Links::Refuse)?
        .ok_or_else(|| {
            Error::refused(format!(
                "{} is missing: install --authz puts the revocation list in place with the plugin",
                pki.shown(&crl_path).display()
            ))
            .hint("on the machine with the CA run dockertls crl refresh, then bring the server folder here again")
        })?;
    let info = crate::crl::read(&crl.contents, ca).map_err(|why| {
        Error::refused(format!(
            "{} {why}: the plugin would not use it; nothing was changed",
            pki.shown(&crl_path).display()
        ))
        .hint("on the machine with the CA run dockertls crl refresh, then bring the server folder here again")
    })?;
    let mut notes = Vec::new();
    if info.next_update.is_some_and(|next| next < now) {
        notes.push(format!(
            "{} is past its nextUpdate: it still revokes what it lists; renew it with dockertls crl refresh where the CA is",
            pki.shown(&crl_path).display()
        ));
    }
    let policy_path = path(AUTHZ_POLICY);
    let policy = pki.read(&policy_path, super::Links::Refuse)?;
    if let Some(file) = &policy {
        check_policy(&file.contents).map_err(|why| {
            Error::refused(format!("{} {why}", pki.shown(&policy_path).display()))
                .hint("make it again with dockertls client role or role add where the PKI is")
        })?;
    }
    let binary = if full {
        plugin_binary(tls_dir)?
    } else {
        String::new()
    };
    let mut existing = std::collections::BTreeMap::new();
    let targets = [
        format!("{tls_dir}/{CRL}"),
        format!("{tls_dir}/{AUTHZ_POLICY}"),
    ];
    let units = if full { &unit_paths()[..] } else { &[] };
    for host_path in targets
        .iter()
        .map(String::as_str)
        .chain(units.iter().copied())
    {
        if let Some(file) = super::read_existing(host, host_path)? {
            existing.insert(host_path.to_string(), file);
        }
    }
    let host_crl = format!("{tls_dir}/{CRL}");
    let crl = newest_crl(
        crl.contents.to_vec(),
        info.number,
        existing.get(&host_crl),
        ca,
        &host.shown(&host_crl).display().to_string(),
        &mut notes,
    );
    Ok(AuthzRead {
        crl,
        policy: policy.map(|p| p.contents.to_vec()),
        binary,
        full,
        existing,
        notes,
    })
}

/// The CRL to install: the server folder's, unless the host already has a newer list signed by
/// the same CA (a higher CRL number): putting an older list back would let clients revoked
/// since back in, so the host's is kept, and said.
fn newest_crl(
    folder_crl: Vec<u8>,
    folder_number: Option<u64>,
    host_crl: Option<&super::FileRead>,
    ca: &[u8],
    shown: &str,
    notes: &mut Vec<String>,
) -> Vec<u8> {
    let Some(host_file) = host_crl else {
        return folder_crl;
    };
    let Ok(host_info) = crate::crl::read(&host_file.contents, ca) else {
        return folder_crl;
    };
    match (host_info.number, folder_number) {
        (Some(theirs), Some(ours)) if theirs > ours => {
            notes.push(format!(
                "{shown} is revocation list #{theirs}, newer than the server folder's #{ours}: it is kept (an older list would let clients revoked since back in); bring a current server folder (dockertls crl refresh where the CA is)"
            ));
            host_file.contents.to_vec()
        }
        _ => folder_crl,
    }
}

/// This binary's path, for the plugin's ExecStart: plain, and replaceable by root only.
fn plugin_binary(tls_dir: &str) -> Result<String, Error> {
    let binary = std::env::current_exe()
        .map_err(|e| Error::Failed(format!("cannot tell where this dockertls is: {e}")))?
        .display()
        .to_string();
    check_exec_path("this dockertls binary is at", &binary).map_err(Error::Refused)?;
    check_binary_owner(std::path::Path::new(&binary)).map_err(|why| {
        Error::refused(why).hint(
            "install dockertls where only root can change it (e.g. install -o root -m 0755 dockertls /usr/local/bin/) and run install --authz from there",
        )
    })?;
    check_exec_path("the TLS folder", tls_dir).map_err(Error::Refused)?;
    Ok(binary)
}

/// The `authorization-plugins` value for daemon.json as it is now (`existing`), refused when
/// it is not a list of names.
pub fn plugins_for(existing: Option<&super::FileRead>) -> Result<Value, Error> {
    let current = existing
        .and_then(|file| serde_json::from_slice::<Value>(&file.contents).ok())
        .and_then(|value| value.get(DAEMON_KEY).cloned());
    plugins_value(current.as_ref()).ok_or_else(|| {
        Error::refused(format!(
            "{} has \"{DAEMON_KEY}\" that is not a list of plugin names: install --authz adds \"{PLUGIN}\" to that list; nothing was changed",
            super::DAEMON_JSON
        ))
        .hint(format!("write it as a list, e.g. \"{DAEMON_KEY}\": [\"NAME\"], then run install again"))
    })
}

/// A policy file the plugin would use: JSON, format 1, with a `clients` object.
fn check_policy(bytes: &[u8]) -> Result<(), String> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| format!("is not JSON ({e}): the plugin would not use it"))?;
    if value["format"] != crate::authz_policy::POLICY_FORMAT || !value["clients"].is_object() {
        return Err("is not a dockertls policy of format 1: the plugin would not use it".into());
    }
    Ok(())
}

/// The files install --authz writes, in switch order: the CRL and the policy beside ca.pem,
/// then the units, then docker.service's drop-in (daemon.json, which names the plugin, comes
/// after all of them).
pub fn planned(read: AuthzRead, tls_dir: &str) -> Vec<super::Planned> {
    let AuthzRead {
        crl,
        policy,
        binary,
        full,
        mut existing,
        ..
    } = read;
    let mut files = vec![(format!("{tls_dir}/{CRL}"), crl, 0o444)];
    if let Some(policy) = policy {
        files.push((format!("{tls_dir}/{AUTHZ_POLICY}"), policy, 0o444));
    }
    if full {
        files.push((SOCKET_UNIT.into(), socket_unit().into_bytes(), 0o644));
        files.push((
            SERVICE_UNIT.into(),
            service_unit(&binary, tls_dir).into_bytes(),
            0o644,
        ));
        files.push((DOCKER_DROPIN.into(), docker_dropin().into_bytes(), 0o644));
    }
    files
        .into_iter()
        .map(|(host_path, contents, mode)| super::Planned {
            existing: existing.remove(&host_path),
            host_path,
            contents: zeroize::Zeroizing::new(contents),
            mode,
            secret: false,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dockertls_joins_the_plugins_daemon_json_names() {
        assert_eq!(plugins_value(None), Some(json!(["dockertls"])));
        assert_eq!(
            plugins_value(Some(&json!(["opa"]))),
            Some(json!(["opa", "dockertls"]))
        );
        assert_eq!(
            plugins_value(Some(&json!(["dockertls", "opa"]))),
            Some(json!(["dockertls", "opa"]))
        );
        assert_eq!(plugins_value(Some(&json!("opa"))), None);
        assert_eq!(plugins_value(Some(&json!([1]))), None);
    }

    #[test]
    fn a_binary_anyone_but_root_could_replace_is_refused() {
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("bin");
        std::fs::create_dir(&folder).unwrap();
        let bin = folder.join("dockertls");
        std::fs::write(&bin, "").unwrap();
        if std::fs::metadata(&bin).unwrap().uid() != 0 {
            eprintln!("SKIPPED: a root-owned binary needs root");
            return;
        }
        let mode = |path: &std::path::Path, mode: u32| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        mode(&bin, 0o755);
        assert_eq!(check_binary_owner(&bin), Ok(()));
        for (path, bad) in [
            (&bin, 0o775),
            (&bin, 0o757),
            (&folder, 0o777),
            (&folder, 0o775),
        ] {
            mode(path, bad);
            let err = check_binary_owner(&bin).unwrap_err();
            assert!(err.contains("writable by group or others"), "{err}");
            mode(path, if path == &bin { 0o755 } else { 0o700 });
        }
        // A root-owned sticky folder (as /tmp) lets nobody else replace root's entries.
        mode(&folder, 0o1777);
        assert_eq!(check_binary_owner(&bin), Ok(()));
        mode(&folder, 0o700);
        std::os::unix::fs::chown(&bin, Some(1000), None).unwrap();
        assert!(check_binary_owner(&bin).unwrap_err().contains("not root"));
        std::os::unix::fs::chown(&bin, Some(0), None).unwrap();
        std::os::unix::fs::chown(&folder, Some(1000), None).unwrap();
        assert!(check_binary_owner(&bin).unwrap_err().contains("not root"));
    }

    #[test]
    fn units_name_the_socket_dockerd_dials() {
        assert!(socket_unit().contains("ListenStream=/run/docker/plugins/dockertls.sock\n"));
        let service = service_unit("/usr/bin/dockertls", "/etc/docker/tls");
        assert!(service.contains(
            "ExecStart=/usr/bin/dockertls authz serve --socket /run/docker/plugins/dockertls.sock --tls-dir /etc/docker/tls\n"
        ));
        assert!(docker_dropin().contains("Requires=dockertls-authz.socket\n"));
        assert!(check_exec_path("x", "/usr/bin/dockertls").is_ok());
        for bad in ["dockertls", "/a b", "/a$b", "/a%i", "/a\nb"] {
            assert!(check_exec_path("x", bad).is_err(), "{bad}");
        }
    }
}
