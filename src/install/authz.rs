//! `install --authz`: what puts the dockertls authorization plugin in place on the daemon host
//! (pure: the unit texts and the daemon.json value; `install::plan` adds them to the plan).
//!
//! dockerd refuses every API call, the local socket's too, while a plugin it names does not
//! answer, and a dockerd started while the plugin's socket is missing exits. So the plugin is
//! socket-activated: systemd holds `/run/docker/plugins/dockertls.sock` open from boot (calls
//! queue while the service restarts), docker.service requires and starts after that socket,
//! and install switches daemon.json (which names the plugin) only after the units are in place.

use serde_json::Value;

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
         Documentation=man:dockertls(1)\n\
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
         Documentation=man:dockertls(1)\n\
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
