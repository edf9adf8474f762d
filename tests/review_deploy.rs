//! Red-team review (branch `review`): host-key checking must not be switchable off by a
//! spelling of /dev/null that deploy's `known_hosts_off` does not recognise. These tests FAIL
//! on main 76b8539 (the defect); they pass once `--ssh-option` and `ssh -G`'s answer are
//! judged by the file the path names, not by its spelling.

mod common;

use common::sshd::Sshd;
use common::*;

/// `deploy` with the sshd's identity, then `extra` options (ssh takes the FIRST value of an
/// option, so ours come before the sshd's known_hosts).
fn deploy_with(
    dir: &std::path::Path,
    sshd: &Sshd,
    prefix: &str,
    extra: &[&str],
) -> std::process::Output {
    let mut cmd = dockertls();
    cmd.arg("--dir").arg(dir).arg("deploy");
    for option in extra {
        cmd.args(["--ssh-option", option]);
    }
    cmd.args(sshd.ssh_args()).args([
        "docker1.test",
        &sshd.target("root"),
        "--remote-root",
        prefix,
    ]);
    cmd.output().expect("run dockertls deploy")
}

#[test]
fn review_known_hosts_dev_null_spelled_differently_is_refused() {
    let Some(mut sshd) = Sshd::start() else {
        return;
    };
    let work = private_tempdir();
    let dir = work.path().join("pki");
    init_ok(&dir, &["--host", "docker1.test", "--client", "alice"]);
    let prefix = work.path().join("host");
    std::fs::create_dir(&prefix).unwrap();
    // A man in the middle: the host answers with a key nobody has seen.
    sshd.change_host_key();
    for spelling in ["/dev//null", "/dev/./null", "/dev/../dev/null"] {
        let before = tree(&dir);
        let option = format!("UserKnownHostsFile={spelling}");
        let out = deploy_with(
            &dir,
            &sshd,
            prefix.to_str().unwrap(),
            &["StrictHostKeyChecking=accept-new", &option],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{spelling}: deploy must refuse a known-hosts file that forgets every key, as it \
             refuses /dev/null; it ran: {stderr}"
        );
        assert!(stderr.contains("host-key checking"), "{spelling}: {stderr}");
        assert_eq!(tree_diff(&before, &tree(&dir)), "", "{spelling}");
        assert!(
            std::fs::read_dir(&prefix).unwrap().next().is_none(),
            "{spelling}: files were installed on a host nobody authenticated"
        );
    }
}

/// The serials crl.pem revokes, as openssl prints them (upper-case hex).
fn crl_serials(crl: &std::path::Path) -> String {
    let out = std::process::Command::new("openssl")
        .args(["crl", "-noout", "-text", "-in"])
        .arg(crl)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// After `client revoke`, dockertls says "put each server folder on its host (dockertls
/// install --authz there, or deploy)". But deploy runs `install --from` without `--authz`,
/// and a plain install never looks at crl.pem: it reports "nothing to change" and the host's
/// plugin keeps the old list, so the revoked client stays in.
#[test]
fn review_deploy_brings_a_new_crl_to_a_host_with_the_plugin() {
    let Some(sshd) = Sshd::start() else { return };
    if find_tool("openssl", "reads the CRL").is_none() {
        return;
    }
    let work = private_tempdir();
    let dir = work.path().join("pki");
    init_ok(&dir, &["--host", "docker1.test", "--client", "alice,bob"]);
    ok_in(&dir, &["crl", "refresh"]);
    let prefix = work.path().join("host");
    let unit = prefix.join("lib/systemd/system/docker.service");
    std::fs::create_dir_all(unit.parent().unwrap()).unwrap();
    std::fs::write(&unit, "[Service]\nExecStart=/usr/sbin/dockerd -H fd://\n").unwrap();
    let prefix_arg = prefix.to_str().unwrap();
    // The host got the plugin once (install --authz there).
    ok_in(&dir, &["install", "--authz", "--root", prefix_arg]);
    ok_in(&dir, &["client", "revoke", "bob"]);
    let bob = std::fs::read_to_string(dir.join("clients/bob/cert.pem")).unwrap();
    let serial = {
        let out = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-serial"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write as _;
                child.stdin.take().unwrap().write_all(bob.as_bytes())?;
                child.wait_with_output()
            })
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .trim_start_matches("serial=")
            .to_string()
    };
    let out = deploy_with(&dir, &sshd, prefix_arg, &[]);
    let host_crl = prefix.join("etc/docker/tls/crl.pem");
    assert!(
        crl_serials(&host_crl).contains(&serial),
        "deploy ({}) left the host's crl.pem without bob's revocation (serial {serial}); the \
         PKI's servers/docker1.test/crl.pem has it",
        streams(&out).trim()
    );
}
