//! `--install-dir`: init and install judge the path by one rule (plan::check_absolute_path),
//! so that nothing init accepts is refused later by install, and nothing install refuses is
//! written by init.

mod common;

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Output;

use common::server_file;
use common::{dockertls, init_ok, is_root, peers_required};

const UNIT: &str = "[Service]\nType=notify\nExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock\n";

fn install_dry_run(pki: &Path, root: &Path) -> Output {
    dockertls()
        .arg("--dir")
        .arg(pki)
        .args(["install", "--dry-run", "--root"])
        .arg(root)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn init_and_install_accept_and_refuse_the_same_install_dirs() {
    if !is_root() {
        assert!(
            !peers_required(),
            "install needs root: run the tests as root"
        );
        eprintln!("SKIPPED: install sets root ownership, which needs root");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    let unit = root.join("lib/systemd/system/docker.service");
    std::fs::create_dir_all(unit.parent().unwrap()).unwrap();
    std::fs::write(&unit, UNIT).unwrap();
    // A PKI whose daemon.json is edited by hand below.
    let edited = work.path().join("edited");
    init_ok(&edited, &["--host", "localhost"]);
    let original = std::fs::read_to_string(server_file(&edited, "daemon.json")).unwrap();

    let candidates: Vec<(&[u8], bool)> = vec![
        (b"/etc/docker/tls", true),
        (b"/etc/docker/tls/", true),
        (b"/srv/docker tls", true),
        (b"/etc/docker/../tls", false),
        (b"/etc/docker/..", false),
        (b"/etc/./docker", false),
        (b"/etc//docker", false),
        (b"/etc/docker//", false),
        (b"etc/docker/tls", false),
        (b"./tls", false),
        (b"/etc/docker\ntls", false),
        (b"/etc/docker\x1b[31m", false),
        (b"/etc/\"x", false),
        (b"/etc/a\\b", false),
        (b"/etc/caf\xe9", false),
    ];
    for (index, (candidate, good)) in candidates.into_iter().enumerate() {
        let shown = String::from_utf8_lossy(candidate)
            .escape_default()
            .to_string();
        let pki = work.path().join(format!("pki{index}"));
        let dir = std::ffi::OsStr::from_bytes(candidate);
        let output = dockertls()
            .arg("--dir")
            .arg(&pki)
            .args(["init", "--host", "localhost", "--install-dir"])
            .arg(dir)
            .output()
            .unwrap();
        let stderr = text(&output.stderr);
        assert_ne!(output.status.code(), Some(101), "{shown}: {stderr}");
        if good {
            assert!(output.status.success(), "{shown}: {stderr}");
            // What init wrote, install takes.
            let installed = install_dry_run(&pki, &root);
            assert!(
                installed.status.success(),
                "{shown}: {}",
                text(&installed.stderr)
            );
        } else {
            assert_eq!(output.status.code(), Some(2), "{shown}: init accepted it");
            assert!(
                stderr.starts_with("error: --install-dir '"),
                "{shown}: {stderr}"
            );
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(!pki.exists(), "{shown}: init created {}", pki.display());
        }
        // The same folder written into daemon.json by hand: install judges it the same way.
        if let Ok(dir) = std::str::from_utf8(candidate) {
            let dir = dir
                .strip_suffix('/')
                .filter(|d| !d.is_empty())
                .unwrap_or(dir);
            let json = serde_json::Value::String(dir.to_string()).to_string();
            let edited_json = original.replace("/etc/docker/tls", json.trim_matches('"'));
            std::fs::write(server_file(&edited, "daemon.json"), edited_json).unwrap();
            let installed = install_dry_run(&edited, &root);
            let stderr = text(&installed.stderr);
            assert_ne!(installed.status.code(), Some(101), "{stderr}");
            assert_eq!(
                installed.status.success(),
                good,
                "{shown}: install said {stderr}"
            );
        }
    }
}
