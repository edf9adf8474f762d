//! Revocation end to end: a real dockerd asks the dockertls authorization plugin (`authz serve`,
//! reading a server folder of the PKI) about every call; `client revoke bob` shuts bob out
//! within a second, without a dockerd restart, while alice and the local socket are unaffected.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{docker_version, dockertls, find_tool, init_ok, is_root, ok_in, peers_required};

/// The plugin process and its spec file, both removed when dropped (also on a failed assert).
struct Plugin {
    child: Child,
    spec: PathBuf,
    log: PathBuf,
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.spec);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether this build has `authz serve` (the plugin, from the authz-serve work).
fn has_authz_serve() -> bool {
    dockertls()
        .args(["authz", "serve", "--help"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn server_dir(pki: &Path) -> PathBuf {
    std::fs::read_dir(pki.join("servers"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
}

/// Starts `authz serve` on `socket` for the server folder, and names it NAME for dockerd.
fn start_plugin(work: &Path, server: &Path, name: &str) -> Plugin {
    let socket = work.join("plugin.sock");
    let log = work.join("plugin.log");
    let child = dockertls()
        .args(["authz", "serve", "--socket"])
        .arg(&socket)
        .arg("--tls-dir")
        .arg(server)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    std::fs::create_dir_all("/etc/docker/plugins").unwrap();
    let spec = PathBuf::from(format!("/etc/docker/plugins/{name}.spec"));
    std::fs::write(&spec, format!("unix://{}\n", socket.display())).unwrap();
    let plugin = Plugin { child, spec, log };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(
            Instant::now() < deadline,
            "the plugin did not listen: {}",
            std::fs::read_to_string(&plugin.log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    plugin
}

#[test]
fn a_revoked_client_is_refused_within_a_second_and_no_one_else_is() {
    let Some(docker) = find_tool("docker", "install docker.io for the docker CLI") else {
        return;
    };
    if !is_root() {
        assert!(!peers_required(), "the dockerd tests need root");
        eprintln!("SKIPPED: dockerd needs root");
        return;
    }
    if !has_authz_serve() {
        eprintln!("SKIPPED: this build has no `dockertls authz serve` (the authz-serve work)");
        return;
    }
    let work = common::private_tempdir();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "localhost", "--client", "alice,bob"]);
    ok_in(&pki, &["crl", "refresh"]);
    let server = server_dir(&pki);
    let name = format!("dockertls-e2e-{}", std::process::id());
    let plugin = start_plugin(work.path(), &server, &name);
    let file = |f: &str| serde_json::json!(server.join(f));
    let Some(dockerd) = common::Dockerd::start_config(serde_json::json!({
        "tls": true,
        "tlsverify": true,
        "tlscacert": file("ca.pem"),
        "tlscert": file("server-cert.pem"),
        "tlskey": file("server-key.pem"),
        "authorization-plugins": [name],
    })) else {
        return;
    };
    let host = format!("tcp://localhost:{}", dockerd.port);
    let as_client = |who: &str| docker_version(&docker, &host, &pki.join("clients").join(who));
    for who in ["alice", "bob"] {
        let out = as_client(who);
        assert!(
            out.status.success(),
            "{who} before: {}\nplugin: {}",
            common::streams(&out),
            std::fs::read_to_string(&plugin.log).unwrap_or_default()
        );
    }
    ok_in(&pki, &["client", "revoke", "bob"]);
    // The plugin re-reads crl.pem when it changes: within a second, no dockerd restart.
    std::thread::sleep(Duration::from_secs(1));
    let bob = as_client("bob");
    let stderr = String::from_utf8_lossy(&bob.stderr);
    assert!(
        !bob.status.success()
            && stderr.contains("authorization denied by plugin")
            && stderr.contains("revoked"),
        "bob after the revocation: {}\nplugin: {}",
        common::streams(&bob),
        std::fs::read_to_string(&plugin.log).unwrap_or_default()
    );
    let alice = as_client("alice");
    assert!(
        alice.status.success(),
        "alice after: {}",
        common::streams(&alice)
    );
    // The local socket (no certificate) is unaffected.
    let local = Command::new(&docker)
        .args(["version", "--format", "{{.Server.Version}}"])
        .env(
            "DOCKER_HOST",
            format!(
                "unix://{}",
                dockerd.root.path().join("docker.sock").display()
            ),
        )
        .env("DOCKER_CONFIG", work.path().join(".no-docker-config"))
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .env_remove("DOCKER_CONTEXT")
        .output()
        .unwrap();
    assert!(
        local.status.success(),
        "local socket: {}",
        common::streams(&local)
    );
    // A role from the PKI's policy: read-only alice may read, not remove.
    ok_in(&pki, &["client", "role", "alice", "read-only"]);
    std::thread::sleep(Duration::from_secs(1));
    let version = as_client("alice");
    assert!(
        version.status.success(),
        "read-only alice reads: {}",
        common::streams(&version)
    );
    let remove = Command::new(&docker)
        .args(["rm", "no-such-container"])
        .env("DOCKER_HOST", &host)
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", pki.join("clients/alice"))
        .env("DOCKER_CONFIG", work.path().join(".no-docker-config"))
        .env_remove("DOCKER_CONTEXT")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&remove.stderr);
    assert!(
        !remove.status.success() && stderr.contains("authorization denied by plugin"),
        "read-only alice removes: {}",
        common::streams(&remove)
    );
    drop(dockerd);
    drop(plugin);
}
