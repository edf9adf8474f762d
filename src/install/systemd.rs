//! The effective `ExecStart=` of docker.service (unit file plus drop-ins, as systemd applies
//! them), and the command line dockerd needs once daemon.json sets `hosts` and TLS. Pure.

/// A unit file or drop-in: its path (for messages) and text.
pub struct UnitFile {
    pub name: String,
    pub text: String,
}

/// The effective ExecStart command line: the unit's, then each drop-in in order, where an
/// empty `ExecStart=` resets and a later one replaces (docker.service is Type=notify: one
/// command).
pub fn effective_exec_start(unit: &UnitFile, dropins: &[UnitFile]) -> Option<String> {
    let mut current = None;
    for file in std::iter::once(unit).chain(dropins) {
        let mut in_service = false;
        for line in logical_lines(&file.text) {
            let line = line.trim();
            if line.starts_with('[') {
                in_service = line == "[Service]";
                continue;
            }
            if !in_service {
                continue;
            }
            if let Some(value) = line.strip_prefix("ExecStart=") {
                let value = value.trim();
                current = if value.is_empty() {
                    None
                } else {
                    Some(value.to_string())
                };
            }
        }
    }
    current
}

/// Joins backslash-continued lines and drops comments.
fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for raw in text.lines() {
        let trimmed = raw.trim_start();
        if pending.is_empty() && (trimmed.starts_with('#') || trimmed.starts_with(';')) {
            continue;
        }
        if let Some(head) = raw.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
        } else {
            pending.push_str(raw);
            out.push(std::mem::take(&mut pending));
        }
    }
    if !pending.is_empty() {
        out.push(pending);
    }
    out
}

/// Flags that daemon.json now sets: given twice (flag and key), dockerd refuses to start.
const TAKEN_BY_DAEMON_JSON: [&str; 6] = [
    "-H",
    "--host",
    "--tls",
    "--tlsverify",
    "--tlscacert",
    "--tlscert",
];
const TAKEN_WITH_VALUE: [&str; 5] = ["-H", "--host", "--tlscacert", "--tlscert", "--tlskey"];

/// The ExecStart for dockerd with daemon.json holding `hosts` and the TLS keys: the effective
/// command without -H/--host and TLS flags, every other flag kept. Returns the command and the
/// flags removed.
pub fn exec_start_without_hosts(exec_start: &str) -> (String, Vec<String>) {
    // systemd's "-" / "@" / "+" / "!" prefixes stay on the program.
    let words: Vec<&str> = exec_start.split_whitespace().collect();
    let mut kept = Vec::new();
    let mut removed = Vec::new();
    let mut index = 0;
    while index < words.len() {
        let word = words[index];
        let name = word.split('=').next().unwrap_or(word);
        let is_taken = index > 0
            && (TAKEN_BY_DAEMON_JSON.contains(&name)
                || name == "--tlskey"
                || (word.starts_with("-H") && word.len() > 2 && !word.starts_with("--")));
        if is_taken {
            let takes_value =
                TAKEN_WITH_VALUE.contains(&name) && !word.contains('=') && word.len() <= name.len();
            if takes_value && index + 1 < words.len() {
                removed.push(format!("{word} {}", words[index + 1]));
                index += 2;
            } else {
                removed.push(word.to_string());
                index += 1;
            }
            continue;
        }
        kept.push(word);
        index += 1;
    }
    (kept.join(" "), removed)
}

/// The drop-in dockertls installs.
pub fn dropin(exec_start: &str, removed: &[String]) -> String {
    let mut text = String::from(
        "# Written by dockertls install. daemon.json sets \"hosts\" and TLS; dockerd refuses to start\n\
         # when a setting is given both as a flag and in daemon.json, so ExecStart is reset and\n\
         # dockerd started with the other flags of the effective ExecStart.\n",
    );
    if !removed.is_empty() {
        text.push_str(&format!("# Removed flags: {}\n", removed.join(" ")));
    }
    text.push_str("# Named zz- so that it applies after every other drop-in.\n[Service]\nExecStart=\nExecStart=");
    text.push_str(exec_start);
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(text: &str) -> UnitFile {
        UnitFile {
            name: "docker.service".into(),
            text: text.into(),
        }
    }

    #[test]
    fn drops_hosts_and_tls_flags_and_keeps_the_rest() {
        let (cmd, removed) = exec_start_without_hosts(
            "/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock $DOCKER_OPTS",
        );
        assert_eq!(
            cmd,
            "/usr/sbin/dockerd --containerd=/run/containerd/containerd.sock $DOCKER_OPTS"
        );
        assert_eq!(removed, ["-H fd://"]);
        let (cmd, removed) = exec_start_without_hosts(
            "/usr/bin/dockerd --host=tcp://0.0.0.0:2375 -Hunix:///x --tlsverify --tlscacert /a --tlskey=/b --log-level warn",
        );
        assert_eq!(cmd, "/usr/bin/dockerd --log-level warn");
        assert_eq!(removed.len(), 5, "{removed:?}");
    }

    #[test]
    fn drop_ins_reset_and_replace_exec_start() {
        let base = unit(
            "[Unit]\nDescription=x\n[Service]\nType=notify\nExecStart=/usr/bin/dockerd -H fd:// \\\n  --containerd=/run/containerd/containerd.sock\n",
        );
        assert_eq!(
            effective_exec_start(&base, &[]).unwrap(),
            "/usr/bin/dockerd -H fd://    --containerd=/run/containerd/containerd.sock"
        );
        let reset =
            unit("[Service]\nExecStart=\nExecStart=/usr/bin/dockerd --debug\n# ExecStart=/nope\n");
        assert_eq!(
            effective_exec_start(&base, &[reset]).unwrap(),
            "/usr/bin/dockerd --debug"
        );
        let other = unit("[Service]\nLimitNOFILE=4096\n");
        assert!(
            effective_exec_start(&base, &[other])
                .unwrap()
                .contains("-H fd://")
        );
    }
}
