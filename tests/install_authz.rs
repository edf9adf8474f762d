//! `install --authz --root`: the plugin's units, the CRL and the policy beside ca.pem,
//! docker.service ordered after the plugin's socket, "authorization-plugins" merged into
//! daemon.json; every unit checked with `systemd-analyze verify`; refusals change nothing.
//! And `verify --daemon-config` on such a setup: authorization on, the CRL current or not.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{dockertls, find_tool, init_ok, is_root, ok_in, peers_required, streams, tree};

const UNIT: &str = "[Unit]\nDescription=Docker Application Container Engine\nRequires=docker.socket\n\n[Service]\nType=notify\nExecStart=/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock\nExecReload=/bin/kill -s HUP $MAINPID\n\n[Install]\nWantedBy=multi-user.target\n";

struct Host {
    _work: tempfile::TempDir,
    pki: PathBuf,
    root: PathBuf,
}

/// A PKI with alice (admin) and bob (read-only, then revoked: the CRL lists him), and a fake
/// daemon host with Debian's docker.service.
fn host() -> Option<Host> {
    if !is_root() {
        assert!(
            !peers_required(),
            "install sets root ownership: run the tests as root"
        );
        eprintln!("SKIPPED: install sets root ownership, which needs root");
        return None;
    }
    let work = common::private_tempdir();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "localhost", "--client", "alice,bob"]);
    ok_in(&pki, &["client", "role", "bob", "read-only"]);
    ok_in(&pki, &["client", "revoke", "bob"]);
    let root = work.path().join("root");
    write(&root, "/lib/systemd/system/docker.service", UNIT);
    Some(Host {
        _work: work,
        pki,
        root,
    })
}

fn write(root: &Path, path: &str, text: &str) {
    let path = root.join(path.trim_start_matches('/'));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn read(root: &Path, path: &str) -> String {
    std::fs::read_to_string(root.join(path.trim_start_matches('/'))).unwrap()
}

fn server_dir(pki: &Path) -> PathBuf {
    std::fs::read_dir(pki.join("servers"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
}

fn install(h: &Host) -> Output {
    dockertls()
        .arg("--dir")
        .arg(&h.pki)
        .args(["install", "--authz", "--root"])
        .arg(&h.root)
        .output()
        .unwrap()
}

/// `systemd-analyze verify` of the plugin's units and docker.service under --root (the
/// programs they start stubbed, since verify checks that they exist).
fn analyze(h: &Host) {
    let Some(analyze) = find_tool("systemd-analyze", "systemd-analyze verifies the units") else {
        return;
    };
    let units = h.root.join("lib/systemd/system");
    for entry in std::fs::read_dir("/lib/systemd/system").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".target") && !units.join(&name).exists() {
            let _ = std::fs::copy(entry.path(), units.join(&name));
        }
    }
    write(
        &h.root,
        "/lib/systemd/system/docker.socket",
        "[Socket]\nListenStream=/run/docker.sock\n",
    );
    let binary = env!("CARGO_BIN_EXE_dockertls");
    for program in ["/usr/sbin/dockerd", "/bin/kill", binary] {
        write(&h.root, program, "#!/bin/sh\n");
        let path = h.root.join(program.trim_start_matches('/'));
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    let output = Command::new(analyze)
        .arg("verify")
        .arg(format!("--root={}", h.root.display()))
        .args([
            "docker.service",
            "dockertls-authz.socket",
            "dockertls-authz.service",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success()
            && !stderr.contains("dockertls")
            && !stderr.contains("docker.service"),
        "systemd-analyze verify refuses the units:\n{stderr}"
    );
}

#[test]
fn install_authz_puts_the_plugin_in_place() {
    let Some(h) = host() else {
        return;
    };
    // The dry run lists every file, changes nothing.
    let before = tree(&h.root);
    let dry = dockertls()
        .arg("--dir")
        .arg(&h.pki)
        .args(["install", "--authz", "--dry-run", "--root"])
        .arg(&h.root)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(dry.status.success(), "{}", streams(&dry));
    assert!(
        text.contains("/etc/docker/tls/crl.pem (0444, root:root): a certificate revocation list"),
        "{text}"
    );
    assert!(
        text.contains("+ListenStream=/run/docker/plugins/dockertls.sock"),
        "{text}"
    );
    assert!(text.contains("\"authorization-plugins\""), "{text}");
    assert_eq!(tree(&h.root), before, "the dry run changed files");
    let out = install(&h);
    assert!(out.status.success(), "{}", streams(&out));
    let server = server_dir(&h.pki);
    for file in ["crl.pem", "authz.json"] {
        let installed = h.root.join("etc/docker/tls").join(file);
        assert_eq!(
            std::fs::read(&installed).unwrap(),
            std::fs::read(server.join(file)).unwrap(),
            "{file}"
        );
        assert_eq!(common::mode(&installed), 0o444, "{file}");
    }
    let socket = read(&h.root, "/etc/systemd/system/dockertls-authz.socket");
    assert!(
        socket.contains("ListenStream=/run/docker/plugins/dockertls.sock\n"),
        "{socket}"
    );
    assert!(socket.contains("SocketMode=0600\n"), "{socket}");
    let service = read(&h.root, "/etc/systemd/system/dockertls-authz.service");
    let exec = format!(
        "ExecStart={} authz serve --socket /run/docker/plugins/dockertls.sock --tls-dir /etc/docker/tls\n",
        env!("CARGO_BIN_EXE_dockertls")
    );
    assert!(service.contains(&exec), "{service}");
    let dropin = read(
        &h.root,
        "/etc/systemd/system/docker.service.d/zz-dockertls-authz.conf",
    );
    assert!(
        dropin.contains("Requires=dockertls-authz.socket\nAfter=dockertls-authz.socket\n"),
        "{dropin}"
    );
    let daemon: serde_json::Value =
        serde_json::from_str(&read(&h.root, "/etc/docker/daemon.json")).unwrap();
    assert_eq!(
        daemon["authorization-plugins"],
        serde_json::json!(["dockertls"])
    );
    assert_eq!(daemon["tlsverify"], true);
    analyze(&h);
    // Again: nothing to change.
    let again = install(&h);
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(
        again.status.success() && stdout.contains("nothing to change"),
        "{}",
        streams(&again)
    );
}

#[test]
fn the_plugins_daemon_json_names_already_are_kept() {
    let Some(h) = host() else {
        return;
    };
    write(
        &h.root,
        "/etc/docker/daemon.json",
        "{\n  \"authorization-plugins\": [\"opa-docker-authz\"],\n  \"debug\": true\n}\n",
    );
    let out = install(&h);
    assert!(out.status.success(), "{}", streams(&out));
    let daemon: serde_json::Value =
        serde_json::from_str(&read(&h.root, "/etc/docker/daemon.json")).unwrap();
    assert_eq!(
        daemon["authorization-plugins"],
        serde_json::json!(["opa-docker-authz", "dockertls"])
    );
    assert_eq!(daemon["debug"], true);
}

/// install --authz refused: exit 2, one error line and a hint, nothing under --root changed.
fn refused(h: &Host, needle: &str) {
    let before = tree(&h.root);
    let out = install(h);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", streams(&out));
    common::assert_one_error(&stderr, "install --authz");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    assert_eq!(tree(&h.root), before, "a refusal changed files");
}

#[test]
fn no_crl_or_a_foreign_one_is_refused_and_nothing_changes() {
    let Some(h) = host() else {
        return;
    };
    let crl = server_dir(&h.pki).join("crl.pem");
    let good = std::fs::read(&crl).unwrap();
    std::fs::remove_file(&crl).unwrap();
    refused(&h, "crl.pem is missing");
    // A CRL signed by another CA.
    let other = h.pki.parent().unwrap().join("other");
    init_ok(&other, &["--host", "localhost", "--client", "eve"]);
    ok_in(&other, &["client", "revoke", "eve"]);
    std::fs::copy(server_dir(&other).join("crl.pem"), &crl).unwrap();
    refused(&h, "not signed by the CA");
    std::fs::write(&crl, good).unwrap();
    // A policy the plugin could not use.
    let policy = server_dir(&h.pki).join("authz.json");
    let kept = std::fs::read(&policy).unwrap();
    std::fs::write(&policy, "{\"format\": 9}").unwrap();
    refused(&h, "not a dockertls policy");
    std::fs::write(&policy, kept).unwrap();
    // "authorization-plugins" that is not a list: dockertls cannot be added to it.
    write(
        &h.root,
        "/etc/docker/daemon.json",
        "{\"authorization-plugins\": \"opa\"}\n",
    );
    refused(&h, "not a list of plugin names");
    std::fs::remove_file(h.root.join("etc/docker/daemon.json")).unwrap();
    let out = install(&h);
    assert!(out.status.success(), "{}", streams(&out));
}

#[test]
fn verify_daemon_config_reports_authorization_and_the_crl() {
    let work = common::private_tempdir();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "localhost", "--client", "alice,bob"]);
    ok_in(&pki, &["client", "revoke", "bob"]);
    let tls = work.path().join("tls");
    std::fs::create_dir(&tls).unwrap();
    let server = server_dir(&pki);
    for file in ["ca.pem", "server-cert.pem", "server-key.pem", "crl.pem"] {
        std::fs::copy(server.join(file), tls.join(file)).unwrap();
    }
    let config = work.path().join("daemon.json");
    let daemon = |plugins: &str| {
        format!(
            "{{\"hosts\": [\"tcp://0.0.0.0:2376\"], \"tls\": true, \"tlsverify\": true, \"tlscacert\": \"{0}/ca.pem\", \"tlscert\": \"{0}/server-cert.pem\", \"tlskey\": \"{0}/server-key.pem\"{plugins}}}",
            tls.display()
        )
    };
    let checks = |args: &[&str]| {
        let mut command = Command::new(args[0]);
        command.args(&args[1..]);
        let out = command.output().unwrap();
        let report: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", streams(&out)));
        common::check_map(&report["targets"][0]["checks"])
    };
    let bin = env!("CARGO_BIN_EXE_dockertls");
    let verify = [
        bin,
        "verify",
        "--format",
        "json",
        "--daemon-config",
        config.to_str().unwrap(),
    ];
    std::fs::write(&config, daemon("")).unwrap();
    let off = checks(&verify);
    assert!(off["authorization"].1.starts_with("off"), "{off:?}");
    std::fs::write(
        &config,
        daemon(", \"authorization-plugins\": [\"dockertls\"]"),
    )
    .unwrap();
    let on = checks(&verify);
    assert!(on["authorization"].1.contains("on"), "{on:?}");
    assert_eq!(on["crl"].0, "ok", "{on:?}");
    assert!(on["crl"].1.contains("lists 1 revoked"), "{on:?}");
    if let Some(faketime) = common::faketime_tool("faketime ages the CRL") {
        let mut late = vec![faketime.to_str().unwrap(), "-f", "+40d"];
        late.extend(verify);
        let stale = checks(&late);
        assert_eq!(stale["crl"].0, "warn", "{stale:?}");
        assert!(stale["crl"].1.contains("past its nextUpdate"), "{stale:?}");
    }
    let other = work.path().join("other");
    init_ok(&other, &["--host", "localhost"]);
    ok_in(&other, &["crl", "refresh"]);
    std::fs::copy(server_dir(&other).join("crl.pem"), tls.join("crl.pem")).unwrap();
    let forged = checks(&verify);
    assert_eq!(forged["crl"].0, "fail", "{forged:?}");
    assert!(
        forged["crl"].1.contains("not signed by the CA"),
        "{forged:?}"
    );
}

/// `install ARGS --root` (no --authz).
fn plain_install(h: &Host, args: &[&str]) -> Output {
    dockertls()
        .arg("--dir")
        .arg(&h.pki)
        .arg("install")
        .args(args)
        .arg("--root")
        .arg(&h.root)
        .output()
        .unwrap()
}

/// Review item 1: once the plugin is in place, every later install (plain, `--from`, and so
/// deploy's) keeps its revocation list and policy current without --authz, and says so; the
/// units stay as install --authz wrote them. A host without the plugin gets no list.
#[test]
fn a_plain_install_keeps_the_plugins_lists_current_where_the_plugin_is_in_place() {
    let Some(h) = host() else {
        return;
    };
    let out = install(&h);
    assert!(out.status.success(), "{}", streams(&out));
    let service = read(&h.root, "/etc/systemd/system/dockertls-authz.service");
    let host_crl = "/etc/docker/tls/crl.pem";
    let first_crl = std::fs::read(server_dir(&h.pki).join("crl.pem")).unwrap();
    // daemon.json names the plugin: a plain install from the PKI brings alice's revocation.
    ok_in(&h.pki, &["client", "revoke", "alice"]);
    let folder_crl = server_dir(&h.pki).join("crl.pem");
    assert_ne!(
        read(&h.root, host_crl),
        std::fs::read_to_string(&folder_crl).unwrap()
    );
    let out = plain_install(&h, &[]);
    assert!(out.status.success(), "{}", streams(&out));
    assert!(
        streams(&out).contains("plugin is in place"),
        "{}",
        streams(&out)
    );
    assert_eq!(
        read(&h.root, host_crl),
        std::fs::read_to_string(&folder_crl).unwrap()
    );
    assert_eq!(
        read(&h.root, "/etc/systemd/system/dockertls-authz.service"),
        service
    );
    // Only the units tell (daemon.json no longer names it): install --from does the same.
    write(&h.root, "/etc/docker/daemon.json", "{}\n");
    let folder = server_dir(&h.pki);
    let before = read(&h.root, host_crl);
    ok_in(&h.pki, &["client", "role", "bob", "admin"]);
    ok_in(&h.pki, &["crl", "refresh"]);
    let out = plain_install(&h, &["--from", folder.to_str().unwrap(), "--force"]);
    assert!(out.status.success(), "{}", streams(&out));
    assert_eq!(
        read(&h.root, host_crl),
        std::fs::read_to_string(&folder_crl).unwrap()
    );
    assert_ne!(
        read(&h.root, host_crl),
        before,
        "crl refresh made a new list"
    );
    assert_eq!(
        read(&h.root, "/etc/docker/tls/authz.json"),
        std::fs::read_to_string(folder.join("authz.json")).unwrap()
    );
    assert!(!read(&h.root, "/etc/docker/daemon.json").contains("authorization-plugins"));
    // An older list in the folder never replaces the host's newer one (it would let alice in).
    let current = read(&h.root, host_crl);
    std::fs::write(&folder_crl, &first_crl).unwrap();
    for authz in [&[][..], &["--authz"][..]] {
        let mut args = vec!["--from", folder.to_str().unwrap(), "--force"];
        args.extend(authz);
        let out = plain_install(&h, &args);
        assert!(out.status.success(), "{}", streams(&out));
        assert!(streams(&out).contains("is kept"), "{}", streams(&out));
        assert_eq!(read(&h.root, host_crl), current, "{args:?}");
    }
    // A folder with no CRL is refused there, and nothing changes.
    std::fs::remove_file(&folder_crl).unwrap();
    let before = tree(&h.root);
    let out = plain_install(&h, &["--from", folder.to_str().unwrap(), "--force"]);
    assert_eq!(out.status.code(), Some(2), "{}", streams(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    common::assert_one_error(&stderr, "install");
    assert!(stderr.contains("plugin is in place"), "{stderr}");
    assert_eq!(tree(&h.root), before, "a refusal changed files");
    // A host without the plugin: no list, no unit.
    let fresh = h.root.parent().unwrap().join("fresh");
    write(&fresh, "/lib/systemd/system/docker.service", UNIT);
    let h2 = Host {
        _work: common::private_tempdir(),
        pki: h.pki.clone(),
        root: fresh.clone(),
    };
    let out = plain_install(&h2, &[]);
    assert!(out.status.success(), "{}", streams(&out));
    assert!(!fresh.join("etc/docker/tls/crl.pem").exists());
    assert!(
        !fresh
            .join("etc/systemd/system/dockertls-authz.service")
            .exists()
    );
}
