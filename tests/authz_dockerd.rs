//! `dockertls authz serve` behind a real dockerd (`authorization-plugins`, found through a spec
//! file) and the docker CLI over TLS with client folders from `dockertls init`: roles,
//! revocation without a dockerd restart, a forged CRL ignored, the local socket unaffected,
//! and the recovery after the plugin is killed under traffic.

mod authz_support;
mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use authz_support::{
    Plugin, Spec, client_cert, docker, forged_ca_key, pki_ca, replace_file, serial_of,
    server_folder, sign_crl,
};
use common::{Dockerd, find_tool, init_ok, private_tempdir};

/// A PKI with clients, a plugin folder (ca.pem + authz.json), a plugin and a dockerd using it.
struct Setup {
    _work: tempfile::TempDir,
    pki: PathBuf,
    tls: PathBuf,
    plugin: Plugin,
    spec: Spec,
    daemon: Dockerd,
    docker: PathBuf,
}

impl Setup {
    fn start(tag: &str, policy: &str) -> Option<Setup> {
        let docker = find_tool("docker", "install docker.io (it brings the docker CLI)")?;
        let work = private_tempdir();
        let pki = work.path().join("pki");
        init_ok(
            &pki,
            &["--host", "localhost", "--client", "alice,bob,carol,dave"],
        );
        let tls = work.path().join("tls");
        std::fs::create_dir(&tls).unwrap();
        std::fs::copy(pki.join("ca/ca.pem"), tls.join("ca.pem")).unwrap();
        std::fs::write(tls.join("authz.json"), policy).unwrap();
        let plugin = Plugin::start(&tls, &work.path().join("plugin.sock"), &[]);
        let spec = Spec::new(tag, &plugin.socket);
        let server = server_folder(&pki);
        let daemon = Dockerd::start_config(serde_json::json!({
            "tls": true, "tlsverify": true,
            "tlscacert": server.join("ca.pem"),
            "tlscert": server.join("server-cert.pem"),
            "tlskey": server.join("server-key.pem"),
            "authorization-plugins": [spec.name],
        }))?;
        Some(Setup {
            _work: work,
            pki,
            tls,
            plugin,
            spec,
            daemon,
            docker,
        })
    }

    fn tcp(&self) -> String {
        format!("tcp://localhost:{}", self.daemon.port)
    }

    fn unix(&self) -> String {
        format!(
            "unix://{}",
            self.daemon.root.path().join("docker.sock").display()
        )
    }

    fn as_client(&self, name: &str, args: &[&str]) -> Output {
        docker(
            &self.docker,
            &self.tcp(),
            Some(&self.pki.join("clients").join(name)),
            args,
        )
    }

    fn local(&self, args: &[&str]) -> Output {
        docker(&self.docker, &self.unix(), None, args)
    }

    fn ok(&self, output: Output, what: &str) -> String {
        assert!(
            output.status.success(),
            "{what} failed: {}\nplugin:\n{}\ndockerd:\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.plugin.log(),
            self.daemon.log()
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The command was refused by this plugin with a message holding `why`.
    fn denied(&self, output: Output, what: &str, why: &str) {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let by = format!("authorization denied by plugin {}: ", self.spec.name);
        assert!(
            !output.status.success() && stderr.contains(&by) && stderr.contains(why),
            "{what}: not denied with '{why}': {stderr}\nplugin:\n{}",
            self.plugin.log()
        );
    }
}

/// An image and a created container made by the admin: a tarball import, no registry.
fn make_container(setup: &Setup) {
    let rootfs = setup.pki.parent().unwrap().join("rootfs.tar");
    let status = std::process::Command::new("tar")
        .arg("-cf")
        .arg(&rootfs)
        .arg("-C")
        .arg(setup.pki.parent().unwrap())
        .arg("tls")
        .status()
        .unwrap();
    assert!(status.success());
    let rootfs = rootfs.to_str().unwrap();
    setup.ok(
        setup.as_client("alice", &["import", rootfs, "dockertls-test/empty:1"]),
        "import",
    );
    setup.ok(
        setup.as_client(
            "alice",
            &["create", "--name", "web", "dockertls-test/empty:1", "/none"],
        ),
        "create",
    );
}

const POLICY: &str =
    r#"{"format": 1, "clients": {"alice": "admin", "bob": "read-only", "carol": "admin"}}"#;

#[test]
fn roles_decide_what_each_client_may_do() {
    let Some(setup) = Setup::start("roles", POLICY) else {
        return;
    };
    make_container(&setup);
    // read-only: ps, logs, inspect (container and image), version, info.
    let listed = setup.ok(setup.as_client("bob", &["ps", "-a"]), "bob ps");
    assert!(listed.contains("web"), "{listed}");
    setup.ok(setup.as_client("bob", &["logs", "web"]), "bob logs");
    setup.ok(setup.as_client("bob", &["inspect", "web"]), "bob inspect");
    setup.ok(
        setup.as_client("bob", &["image", "inspect", "dockertls-test/empty:1"]),
        "bob image inspect",
    );
    setup.ok(setup.as_client("bob", &["version"]), "bob version");
    // ... and nothing that runs, changes or hands out data.
    let role = "has the role 'read-only', which does not allow";
    setup.denied(
        setup.as_client("bob", &["run", "dockertls-test/empty:1"]),
        "bob run",
        role,
    );
    setup.denied(
        setup.as_client("bob", &["exec", "web", "true"]),
        "bob exec",
        role,
    );
    setup.denied(setup.as_client("bob", &["rm", "web"]), "bob rm", role);
    setup.denied(
        setup.as_client("bob", &["cp", "web:/tls", "/tmp/x"]),
        "bob cp",
        role,
    );
    setup.denied(
        setup.as_client("bob", &["export", "web"]),
        "bob export",
        role,
    );
    setup.denied(
        setup.as_client("bob", &["save", "dockertls-test/empty:1"]),
        "bob save",
        role,
    );
    // A valid certificate whose CN has no role is denied.
    setup.denied(
        setup.as_client("dave", &["ps"]),
        "dave ps",
        "'dave' (serial",
    );
    setup.denied(
        setup.as_client("dave", &["ps"]),
        "dave ps",
        "has no role in authz.json",
    );
    // The local socket is unaffected; the admin can do everything.
    setup.ok(setup.local(&["ps", "-a"]), "local ps");
    setup.ok(setup.as_client("alice", &["rm", "web"]), "alice rm");
    // The audit log has one line per decision, with who, what and why.
    let log = setup.plugin.log();
    let denial = log
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["cn"] == "bob" && line["method"] == "DELETE")
        .unwrap_or_else(|| panic!("no audit line for bob's rm:\n{log}"));
    assert_eq!(denial["decision"], "deny");
    assert_eq!(denial["role"], "read-only");
    assert_eq!(
        denial["uri"].as_str().unwrap().rsplit('/').next(),
        Some("web")
    );
    assert!(denial["serial"].as_str().is_some_and(|s| s.len() >= 2));
    assert_eq!(denial["sha256"].as_str().map(str::len), Some(64));
}

#[test]
fn a_revoked_client_is_refused_within_a_second_and_a_forged_crl_is_ignored() {
    let Some(setup) = Setup::start("revoke", POLICY) else {
        return;
    };
    setup.ok(setup.as_client("carol", &["ps"]), "carol before");
    let (ca_cert, ca_key) = pki_ca(&setup.pki);
    let carol = serial_of(&client_cert(&setup.pki, "carol"));
    replace_file(
        &setup.tls.join("crl.pem"),
        sign_crl(&ca_cert, &ca_key, &[carol]).as_bytes(),
    );
    let placed = Instant::now();
    std::thread::sleep(Duration::from_secs(1).saturating_sub(placed.elapsed()));
    setup.denied(
        setup.as_client("carol", &["ps"]),
        "carol after the CRL",
        "'carol'",
    );
    setup.denied(
        setup.as_client("carol", &["ps"]),
        "carol after the CRL",
        "is revoked",
    );
    setup.ok(
        setup.as_client("alice", &["ps"]),
        "alice with carol revoked",
    );
    setup.ok(setup.as_client("bob", &["ps"]), "bob with carol revoked");
    setup.ok(setup.local(&["ps"]), "local with carol revoked");

    // A CRL under the same CA name but signed by another key, revoking alice and not carol:
    // not used; the last good one stays in force and the log says why.
    let alice = serial_of(&client_cert(&setup.pki, "alice"));
    replace_file(
        &setup.tls.join("crl.pem"),
        sign_crl(&ca_cert, &forged_ca_key(), &[alice]).as_bytes(),
    );
    std::thread::sleep(Duration::from_secs(1));
    setup.ok(
        setup.as_client("alice", &["ps"]),
        "alice after a forged CRL",
    );
    setup.denied(
        setup.as_client("carol", &["ps"]),
        "carol after a forged CRL",
        "is revoked",
    );
    let log = setup.plugin.log();
    assert!(
        log.contains("crl.pem: is not signed by the CA in ca.pem (signature does not verify); NOT used, the last good one stays in force"),
        "{log}"
    );
}

#[test]
fn killing_the_plugin_under_traffic_recovers_without_a_dockerd_restart() {
    let Some(mut setup) = Setup::start("kill", POLICY) else {
        return;
    };
    let socket = setup.plugin.socket.clone();
    let tls = setup.tls.clone();
    // Traffic from two clients while the plugin dies.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let traffic: Vec<_> = ["alice", "bob"]
        .into_iter()
        .map(|name| {
            let (docker, host) = (setup.docker.clone(), setup.tcp());
            let folder = setup.pki.join("clients").join(name);
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut results = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let started = Instant::now();
                    let output = docker_ps(&docker, &host, &folder);
                    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
                    results.push((output.status.success(), started.elapsed(), stderr));
                }
                results
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    setup.plugin.kill();
    // A call made while no plugin answers: dockerd cannot connect, retries (1 s, then 2 s) with
    // the request intact, and the call goes through once a plugin answers on the same socket.
    std::thread::sleep(Duration::from_millis(200));
    let during = {
        let (docker, host) = (setup.docker.clone(), setup.tcp());
        let folder = setup.pki.join("clients").join("alice");
        std::thread::spawn(move || {
            let started = Instant::now();
            (docker_ps(&docker, &host, &folder), started.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(1800));
    setup.plugin = Plugin::start(&tls, &socket, &[]);
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (output, took) = during.join().unwrap();
    assert!(
        output.status.success() && took > Duration::from_secs(1),
        "the call made during the outage (took {took:?}): {}\nplugin:\n{}\ndockerd:\n{}",
        String::from_utf8_lossy(&output.stderr),
        setup.plugin.log(),
        setup.daemon.log()
    );
    // A call the plugin died answering is retried by dockerd with its body already consumed
    // (moby pkg/plugins callWithRetry): it arrives empty, and is denied (fail closed) with a
    // message saying to run it again. No call fails any other way.
    for handle in traffic {
        let results = handle.join().unwrap();
        let bad: Vec<_> = results
            .iter()
            .filter(|(ok, _, stderr)| !*ok && !stderr.contains(EMPTY_REQUEST))
            .collect();
        assert!(
            bad.is_empty(),
            "calls failed across the restart other than as an empty retry: {bad:?}\nplugin:\n{}\ndockerd:\n{}",
            setup.plugin.log(),
            setup.daemon.log()
        );
    }
    setup.ok(setup.as_client("alice", &["ps"]), "alice after the restart");
    setup.denied(
        setup.as_client("bob", &["rm", "x"]),
        "bob after the restart",
        "does not allow",
    );
    setup.ok(setup.local(&["ps"]), "local after the restart");
}

/// What the plugin answers to an empty request (as in `src/authz/decide.rs`).
const EMPTY_REQUEST: &str = "the authorization request arrived empty (dockerd re-sends a call \
     without its body when the plugin restarted while answering it); denied, run the command again";

fn docker_ps(docker: &Path, host: &str, folder: &Path) -> Output {
    authz_support::docker(docker, host, Some(folder), &["ps"])
}
