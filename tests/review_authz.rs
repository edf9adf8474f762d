//! Red-team review (branch `review`): revocation must not be undone by an older revocation
//! list. These tests FAIL on main 76b8539.

mod authz_support;
mod common;

use std::path::Path;
use std::process::Command;

use authz_support::{Plugin, call, client_cert, replace_file, tls_request};
use common::*;

const REQ: &str = "/AuthZPlugin.AuthZReq";

fn allowed(plugin: &Plugin, pki: &Path, cn: &str) -> bool {
    let body = tls_request(&client_cert(pki, cn), cn, "GET", "/v1.41/info");
    let (status, answer) = call(&plugin.socket, REQ, &body);
    assert_eq!(status, 200, "{answer}");
    answer["Allow"] == true
}

/// The plugin takes any validly signed crl.pem, also one OLDER (a lower CRL number) than the
/// one in force: putting back last week's crl.pem (a backup, `install --rollback`, a stale
/// copy deployed from another machine) silently lets a revoked client in again. The CRL
/// number dockertls writes is there to refuse exactly that.
#[test]
fn review_the_plugin_refuses_a_crl_older_than_the_one_in_force() {
    let work = private_tempdir();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "localhost", "--client", "alice,bob"]);
    ok_in(&pki, &["crl", "refresh"]);
    let crl = server_folder(&pki).join("crl.pem");
    let old = std::fs::read(&crl).unwrap(); // #1: nothing revoked
    ok_in(&pki, &["client", "revoke", "bob"]);
    let new = std::fs::read(&crl).unwrap(); // #2: bob revoked
    let tls = work.path().join("tls");
    std::fs::create_dir(&tls).unwrap();
    std::fs::copy(pki.join("ca/ca.pem"), tls.join("ca.pem")).unwrap();
    std::fs::write(tls.join("crl.pem"), &new).unwrap();
    let plugin = Plugin::start(&tls, &work.path().join("plugin.sock"), &[]);
    assert!(!allowed(&plugin, &pki, "bob"), "bob is revoked by CRL #2");
    // Waits for the plugin to have read the older list (it logs why it refused it).
    plugin.reload("crl.pem: is CRL #1, older than CRL #2 in force", || {
        replace_file(&tls.join("crl.pem"), &old)
    });
    assert!(
        !allowed(&plugin, &pki, "bob"),
        "CRL #1 replaced CRL #2 and the revoked bob is allowed again:\n{}",
        plugin.log()
    );
}

/// `install --rollback` after an install that brought a newer crl.pem puts the older one
/// back without a word: the host's plugin then lets the revoked client in again, while the
/// PKI says revoked.
#[test]
fn review_install_rollback_does_not_unrevoke() {
    if !is_root() {
        assert!(!peers_required(), "install needs root");
        eprintln!("SKIPPED: install sets root ownership, which needs root");
        return;
    }
    let Some(openssl) = find_tool("openssl", "reads the CRL") else {
        return;
    };
    let work = private_tempdir();
    let pki = work.path().join("pki");
    let root = work.path().join("root");
    let unit = root.join("lib/systemd/system/docker.service");
    std::fs::create_dir_all(unit.parent().unwrap()).unwrap();
    std::fs::write(&unit, "[Service]\nExecStart=/usr/sbin/dockerd -H fd://\n").unwrap();
    init_ok(&pki, &["--host", "h1.example", "--client", "alice,bob"]);
    ok_in(&pki, &["crl", "refresh"]);
    let root_arg = root.to_str().unwrap();
    ok_in(&pki, &["install", "--authz", "--root", root_arg]);
    ok_in(&pki, &["client", "revoke", "bob"]);
    ok_in(&pki, &["install", "--authz", "--root", root_arg]);
    let revoked_on_host = || {
        let out = Command::new(&openssl)
            .args(["crl", "-noout", "-text", "-in"])
            .arg(root.join("etc/docker/tls/crl.pem"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .matches("Serial Number")
            .count()
    };
    assert_eq!(
        revoked_on_host(),
        1,
        "the second install put bob's revocation in place"
    );
    let rollback = run_in(&pki, &["install", "--rollback", "--root", root_arg]);
    assert_eq!(
        revoked_on_host(),
        1,
        "install --rollback put back a CRL that no longer revokes bob ({}), which the \
         plugin takes: bob is let in again",
        streams(&rollback).trim()
    );
    assert!(rollback.status.success(), "{}", streams(&rollback));
    let said = String::from_utf8_lossy(&rollback.stdout);
    assert!(
        said.contains("kept /etc/docker/tls/crl.pem: it is #2") && said.contains("the older #1"),
        "the rollback does not say it kept the newer list:\n{said}"
    );
}

/// `install --authz` writes the RUNNING binary's path into a root service's ExecStart without
/// looking at who may change that file: run once from a world-writable place (a download
/// folder, a build tree, /tmp), any local user can later replace the binary and systemd runs
/// it as root at the next start. It should refuse (exit 2, nothing written) a binary, or a
/// folder on its path, that is not root's or that group/others may write.
#[test]
fn review_install_authz_refuses_a_binary_others_can_replace() {
    use std::os::unix::fs::PermissionsExt as _;
    if !is_root() {
        assert!(!peers_required(), "install needs root");
        eprintln!("SKIPPED: install sets root ownership, which needs root");
        return;
    }
    let work = private_tempdir();
    let pki = work.path().join("pki");
    let root = work.path().join("root");
    let unit = root.join("lib/systemd/system/docker.service");
    std::fs::create_dir_all(unit.parent().unwrap()).unwrap();
    std::fs::write(&unit, "[Service]\nExecStart=/usr/sbin/dockerd -H fd://\n").unwrap();
    init_ok(&pki, &["--host", "h1.example", "--client", "alice"]);
    ok_in(&pki, &["crl", "refresh"]);
    let bin_dir = work.path().join("shared");
    std::fs::create_dir(&bin_dir).unwrap();
    std::fs::set_permissions(&bin_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let bin = bin_dir.join("dockertls");
    // Copied by cp, not by this process: a child another test thread forks meanwhile would
    // inherit our write descriptor until it execs, and running the copy then fails with
    // ETXTBSY ("Text file busy"; seen 2 in 10 runs on a loaded machine). As write_program.
    let copied = Command::new("cp")
        .arg(env!("CARGO_BIN_EXE_dockertls"))
        .arg(&bin)
        .status()
        .unwrap();
    assert!(copied.success());
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o777)).unwrap();
    let before = tree(&root);
    let out = Command::new(&bin)
        .arg("--dir")
        .arg(&pki)
        .args(["install", "--authz", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    let service = root.join("etc/systemd/system/dockertls-authz.service");
    let exec = std::fs::read_to_string(&service).unwrap_or_default();
    assert_eq!(
        out.status.code(),
        Some(2),
        "install --authz from a world-writable binary succeeded; the root service runs {}",
        exec.lines()
            .find(|l| l.starts_with("ExecStart="))
            .unwrap_or("?")
    );
    assert_eq!(tree_diff(&before, &tree(&root)), "");
}

/// The same class for authz.json: each one written carries a `"revision"` one higher, and the
/// plugin refuses a policy older than the one in force (putting back the file from before
/// `client role bob read-only` must not make bob admin again).
#[test]
fn the_plugin_refuses_a_policy_older_than_the_one_in_force() {
    let work = private_tempdir();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "localhost", "--client", "alice,bob"]);
    ok_in(&pki, &["client", "role", "alice", "admin"]);
    let policy = server_folder(&pki).join("authz.json");
    let old = std::fs::read(&policy).unwrap(); // bob admin
    ok_in(&pki, &["client", "role", "bob", "read-only"]);
    let new = std::fs::read(&policy).unwrap(); // bob read-only
    let revision = |bytes: &[u8]| {
        serde_json::from_slice::<serde_json::Value>(bytes).unwrap()["revision"].clone()
    };
    assert_eq!((revision(&old), revision(&new)), (1.into(), 2.into()));
    let tls = work.path().join("tls");
    std::fs::create_dir(&tls).unwrap();
    std::fs::copy(pki.join("ca/ca.pem"), tls.join("ca.pem")).unwrap();
    std::fs::write(tls.join("authz.json"), &new).unwrap();
    let plugin = Plugin::start(&tls, &work.path().join("plugin.sock"), &[]);
    let bob_stops = || {
        let body = tls_request(
            &client_cert(&pki, "bob"),
            "bob",
            "POST",
            "/v1.41/containers/x/stop",
        );
        let (status, answer) = call(&plugin.socket, REQ, &body);
        assert_eq!(status, 200, "{answer}");
        answer["Allow"] == true
    };
    assert!(!bob_stops(), "bob is read-only by revision 2");
    // Waits for the plugin to see the file: it logs why it refused it.
    plugin.reload(
        "authz.json: is revision #1, older than revision #2 in force",
        || replace_file(&tls.join("authz.json"), &old),
    );
    assert!(
        !bob_stops(),
        "the older policy made bob admin again:\n{}",
        plugin.log()
    );
}

/// The same for authz.json: `install --rollback` keeps a policy with a higher revision than
/// its backup (putting the older one back would undo `client role bob read-only`).
#[test]
fn install_rollback_keeps_a_newer_policy() {
    if !is_root() {
        assert!(!peers_required(), "install needs root");
        eprintln!("SKIPPED: install sets root ownership, which needs root");
        return;
    }
    let work = private_tempdir();
    let pki = work.path().join("pki");
    let root = work.path().join("root");
    let unit = root.join("lib/systemd/system/docker.service");
    std::fs::create_dir_all(unit.parent().unwrap()).unwrap();
    std::fs::write(&unit, "[Service]\nExecStart=/usr/sbin/dockerd -H fd://\n").unwrap();
    init_ok(&pki, &["--host", "h1.example", "--client", "alice,bob"]);
    ok_in(&pki, &["crl", "refresh"]);
    ok_in(&pki, &["client", "role", "alice", "admin"]);
    let root_arg = root.to_str().unwrap();
    ok_in(&pki, &["install", "--authz", "--root", root_arg]);
    ok_in(&pki, &["client", "role", "bob", "read-only"]);
    ok_in(&pki, &["install", "--authz", "--root", root_arg]);
    let on_host = || std::fs::read_to_string(root.join("etc/docker/tls/authz.json")).unwrap();
    let installed = on_host();
    assert!(installed.contains("\"bob\": \"read-only\""), "{installed}");
    let rollback = run_in(&pki, &["install", "--rollback", "--root", root_arg]);
    assert!(rollback.status.success(), "{}", streams(&rollback));
    assert_eq!(
        on_host(),
        installed,
        "install --rollback put back an older authz.json ({})",
        streams(&rollback).trim()
    );
    let said = String::from_utf8_lossy(&rollback.stdout);
    assert!(
        said.contains("kept /etc/docker/tls/authz.json: it is #2") && said.contains("the older #1"),
        "{said}"
    );
}
