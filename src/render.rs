//! The files and texts dockertls emits, rendered from `templates/` (embedded at build time).
//! Filling is strict: a placeholder without a value, or a value without a placeholder, is a bug
//! caught by the tests rather than a half-rendered file.

use std::net::SocketAddr;
use std::path::Path;

const DAEMON_JSON: &str = include_str!("../templates/daemon.json");
const OVERRIDE_CONF: &str = include_str!("../templates/override.conf");
const NEXT_STEPS: &str = include_str!("../templates/next-steps.txt");

/// Replaces every `{{name}}` in `template`. Panics only on a template/code mismatch, which the
/// unit tests exercise for every template.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    let mut used = vec![false; values.len()];
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").expect("unclosed {{ in a template");
        let name = &after[..end];
        let index = values
            .iter()
            .position(|(key, _)| *key == name)
            .unwrap_or_else(|| panic!("template placeholder {{{{{name}}}}} has no value"));
        used[index] = true;
        out.push_str(values[index].1);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    if let Some(unused) = used.iter().position(|u| !u) {
        panic!("value {} matches no template placeholder", values[unused].0);
    }
    out
}

fn json_string(value: &str) -> String {
    serde_json::Value::String(value.to_string()).to_string()
}

/// daemon.json with exactly the TLS keys. `hosts` stays on one line: Docker Bench for
/// Security's check 2.7 only sees a tcp listener written that way.
pub fn daemon_json(listen: SocketAddr, install_dir: &Path) -> String {
    let path = |file: &str| json_string(&install_dir.join(file).to_string_lossy());
    fill(
        DAEMON_JSON,
        &[
            ("tcp_host", &json_string(&format!("tcp://{listen}"))),
            ("tlscacert", &path("ca.pem")),
            ("tlscert", &path("server-cert.pem")),
            ("tlskey", &path("server-key.pem")),
        ],
    )
}

/// The systemd drop-in that starts dockerd without `-H`.
pub fn override_conf(dockerd: &Path) -> String {
    fill(OVERRIDE_CONF, &[("dockerd", &dockerd.to_string_lossy())])
}

/// What the operator does next, with absolute paths ready to paste.
pub struct NextSteps<'a> {
    pub dir: &'a Path,
    pub install_dir: &'a Path,
    pub docker_host: &'a str,
    pub client: &'a str,
    pub context: &'a str,
}

/// Renders the next-steps text.
pub fn next_steps(steps: &NextSteps<'_>) -> String {
    let path = |p: &Path| shell_quote(&p.to_string_lossy());
    let client_dir = steps.dir.join("clients").join(steps.client);
    let file = |name: &str| client_dir.join(name).to_string_lossy().into_owned();
    // docker context's --docker value is comma-separated key=value pairs.
    let context_docker = format!(
        "host={},ca={},cert={},key={}",
        steps.docker_host,
        file("ca.pem"),
        file("cert.pem"),
        file("key.pem")
    );
    fill(
        NEXT_STEPS,
        &[
            ("dir", &path(steps.dir)),
            ("install_dir", &path(steps.install_dir)),
            ("client_dir", &path(&client_dir)),
            ("docker_host", &shell_quote(steps.docker_host)),
            ("context", &shell_quote(steps.context)),
            ("context_docker", &shell_quote(&context_docker)),
        ],
    )
}

/// What re-issues a server certificate with more SANs: in a dockertls PKI, the `rotate`
/// command that adds `missing` (keeping the CA and every other SAN); elsewhere, the SANs the
/// new certificate needs.
pub fn reissue_hint(pki: Option<&Path>, missing: &[String], all: &[String]) -> String {
    let missing: Vec<&str> = missing
        .iter()
        .map(String::as_str)
        .filter(|m| !m.is_empty())
        .collect();
    match pki.filter(|dir| dir.join("ca/ca-key.pem").is_file() && dir.join("server").is_dir()) {
        Some(dir) if !missing.is_empty() => format!(
            "dockertls --dir {} rotate --server --allow {} (then restart dockerd)",
            shell_quote(&dir.display().to_string()),
            shell_quote(&missing.join(","))
        ),
        _ => format!("a new server certificate with the SANs {}", all.join(", ")),
    }
}

/// Quotes a word for a POSIX shell only when it needs it.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%=,".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_json_is_valid_json_with_tlsverify_and_hosts_on_one_line() {
        let text = daemon_json(
            "0.0.0.0:2376".parse().unwrap(),
            Path::new("/etc/docker/tls"),
        );
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["tlsverify"], serde_json::Value::Bool(true));
        assert_eq!(value["tls"], serde_json::Value::Bool(true));
        assert_eq!(value["tlskey"], "/etc/docker/tls/server-key.pem");
        assert_eq!(value.as_object().unwrap().len(), 6);
        let hosts_line = text.lines().find(|l| l.contains("\"hosts\"")).unwrap();
        assert!(hosts_line.contains("tcp://0.0.0.0:2376"), "{hosts_line}");
        assert!(
            hosts_line.contains("unix:///var/run/docker.sock"),
            "{hosts_line}"
        );
    }

    #[test]
    fn ipv6_listen_is_bracketed() {
        let text = daemon_json("[::]:2376".parse().unwrap(), Path::new("/t"));
        assert!(text.contains("\"tcp://[::]:2376\""), "{text}");
    }

    #[test]
    fn override_resets_execstart_and_has_no_host_flag() {
        let text = override_conf(Path::new("/usr/sbin/dockerd"));
        let exec: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("ExecStart="))
            .collect();
        assert_eq!(
            exec,
            [
                "ExecStart=",
                "ExecStart=/usr/sbin/dockerd --containerd=/run/containerd/containerd.sock"
            ]
        );
        assert!(exec.iter().all(|line| !line.contains("-H")));
    }

    #[test]
    fn next_steps_fill_every_placeholder() {
        let text = next_steps(&NextSteps {
            dir: Path::new("/home/op/docker tls"),
            install_dir: Path::new("/etc/docker/tls"),
            docker_host: "tcp://example.com:2376",
            client: "alice",
            context: "example.com",
        });
        assert!(!text.contains("{{"));
        assert!(
            text.contains("DOCKER_CERT_PATH='/home/op/docker tls/clients/alice'"),
            "{text}"
        );
    }

    #[test]
    fn shell_quote_quotes_only_when_needed() {
        assert_eq!(shell_quote("/a/b"), "/a/b");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
