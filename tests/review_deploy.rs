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
