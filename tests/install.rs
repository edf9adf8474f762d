//! `install --root` over temporary trees: Docker's and Debian's units, existing daemon.json
//! with hardening keys, existing drop-ins, no daemon.json, invalid JSON, conflicting hosts,
//! dry runs, idempotence; and a real dockerd started from the merged daemon.json.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{
    Dockerd, docker_version, dockertls, find_tool, init_ok, is_root, mode, peers_required, tree,
};

const DOCKER_UNIT: &str = "[Unit]\nDescription=Docker Application Container Engine\nRequires=docker.socket\n\n[Service]\nType=notify\n\
ExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock\nExecReload=/bin/kill -s HUP $MAINPID\nLimitNOFILE=infinity\n\n[Install]\nWantedBy=multi-user.target\n";
const DEBIAN_UNIT: &str = "[Unit]\nDescription=Docker Application Container Engine\nRequires=docker.socket\n\n[Service]\nType=notify\nEnvironmentFile=-/etc/default/docker\n\
ExecStart=/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock $DOCKER_OPTS\nExecReload=/bin/kill -s HUP $MAINPID\n\n[Install]\nWantedBy=multi-user.target\n";
const HARDENED: &str = r#"{
  "icc": false,
  "userns-remap": "default",
  "log-driver": "journald",
  "no-new-privileges": true,
  "userland-proxy": false,
  "live-restore": true,
  "default-ulimits": {"nofile": {"Name": "nofile", "Hard": 64000, "Soft": 64000}}
}
"#;

struct Host {
    _work: tempfile::TempDir,
    pki: PathBuf,
    root: PathBuf,
}

/// A PKI and a fake daemon host with a unit file at `unit_path`.
fn host(unit_path: &str, unit: &str) -> Option<Host> {
    if !is_root() {
        assert!(
            !peers_required(),
            "install sets root ownership: run the tests as root"
        );
        eprintln!("SKIPPED: install sets root ownership, which needs root");
        return None;
    }
    // Not under the shared /tmp: verify --daemon-config fails TLS files below a folder others
    // can write to.
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "localhost", "--client", "alice"]);
    let root = work.path().join("root");
    write(&root, unit_path, unit);
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

fn install(h: &Host, extra: &[&str]) -> Output {
    dockertls()
        .arg("--dir")
        .arg(&h.pki)
        .args(["install", "--root"])
        .arg(&h.root)
        .args(extra)
        .output()
        .unwrap()
}

fn ok(h: &Host, extra: &[&str]) -> String {
    let output = install(h, extra);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn exec_start(h: &Host) -> String {
    read(
        &h.root,
        "/etc/systemd/system/docker.service.d/zz-dockertls.conf",
    )
    .lines()
    .filter(|l| l.starts_with("ExecStart="))
    .collect::<Vec<_>>()
    .join("\n")
}

#[test]
fn docker_packages_unit_and_no_daemon_json() {
    let Some(h) = host("/lib/systemd/system/docker.service", DOCKER_UNIT) else {
        return;
    };
    let out = ok(&h, &[]);
    assert!(out.contains("created /etc/docker/daemon.json"), "{out}");
    assert_eq!(
        exec_start(&h),
        "ExecStart=\nExecStart=/usr/bin/dockerd --containerd=/run/containerd/containerd.sock"
    );
    let tls = h.root.join("etc/docker/tls");
    assert_eq!(mode(&tls), 0o700);
    for (file, expected) in [
        ("ca.pem", 0o444),
        ("server-cert.pem", 0o444),
        ("server-key.pem", 0o400),
    ] {
        assert_eq!(mode(&tls.join(file)), expected, "{file}");
        assert_eq!(
            std::fs::read(tls.join(file)).unwrap(),
            std::fs::read(h.pki.join("server").join(file)).unwrap()
        );
    }
    assert_eq!(mode(&h.root.join("etc/docker/daemon.json")), 0o644);
    let daemon: serde_json::Value =
        serde_json::from_str(&read(&h.root, "/etc/docker/daemon.json")).unwrap();
    assert_eq!(daemon["tlsverify"], true);
    // Root-owned, as the CIS checks want: verify --daemon-config agrees (paths under --root
    // are rewritten to be checked here).
    let config = read(&h.root, "/etc/docker/daemon.json")
        .replace("/etc/docker/tls", &tls.display().to_string());
    let copy = h.root.join("check.json");
    std::fs::write(&copy, config).unwrap();
    let output = dockertls()
        .args(["verify", "--daemon-config"])
        .arg(&copy)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn debian_unit_hardened_daemon_json_and_other_dropins_survive() {
    let Some(h) = host("/lib/systemd/system/docker.service", DEBIAN_UNIT) else {
        return;
    };
    write(&h.root, "/etc/docker/daemon.json", HARDENED);
    let other = "[Service]\nEnvironment=HTTP_PROXY=http://proxy.example:3128\nLimitNOFILE=4096\n";
    write(
        &h.root,
        "/etc/systemd/system/docker.service.d/override.conf",
        other,
    );
    write(
        &h.root,
        "/etc/systemd/system/docker.service.d/10-debug.conf",
        "[Service]\nExecStart=\nExecStart=/usr/sbin/dockerd -H fd:// -H tcp://0.0.0.0:2375 --debug $DOCKER_OPTS\n",
    );
    let out = ok(&h, &[]);
    // The effective ExecStart was the drop-in's: its other flags are kept, every -H removed.
    assert_eq!(
        exec_start(&h),
        "ExecStart=\nExecStart=/usr/sbin/dockerd --debug $DOCKER_OPTS"
    );
    assert!(
        out.contains("without -H fd://, -H tcp://0.0.0.0:2375"),
        "{out}"
    );
    assert_eq!(
        read(
            &h.root,
            "/etc/systemd/system/docker.service.d/override.conf"
        ),
        other
    );
    // Every hardening key kept, in order, with its value; ours appended.
    let merged: serde_json::Value =
        serde_json::from_str(&read(&h.root, "/etc/docker/daemon.json")).unwrap();
    let keys: Vec<&String> = merged.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "icc",
            "userns-remap",
            "log-driver",
            "no-new-privileges",
            "userland-proxy",
            "live-restore",
            "default-ulimits",
            "hosts",
            "tls",
            "tlsverify",
            "tlscacert",
            "tlscert",
            "tlskey"
        ]
    );
    let original: serde_json::Value = serde_json::from_str(HARDENED).unwrap();
    for (key, value) in original.as_object().unwrap() {
        assert_eq!(&merged[key], value, "{key}");
    }
    // The previous file is backed up next to it.
    let backups: Vec<PathBuf> = std::fs::read_dir(h.root.join("etc/docker"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".bak"))
        .collect();
    assert_eq!(backups.len(), 1);
    assert_eq!(std::fs::read_to_string(&backups[0]).unwrap(), HARDENED);
    assert!(
        out.contains("backed up the previous file as /etc/docker/daemon.json."),
        "{out}"
    );

    // Idempotent: nothing changes, no new backup.
    let before = tree(&h.root);
    let out = ok(&h, &[]);
    assert!(out.starts_with("nothing to change"), "{out}");
    assert_eq!(tree(&h.root), before);
}

#[test]
fn dry_run_shows_diffs_and_changes_nothing() {
    let Some(h) = host("/usr/lib/systemd/system/docker.service", DOCKER_UNIT) else {
        return;
    };
    write(&h.root, "/etc/docker/daemon.json", HARDENED);
    let before = tree(&h.root);
    let out = ok(&h, &["--dry-run"]);
    assert_eq!(tree(&h.root), before, "a dry run changed files");
    assert!(
        out.contains("--- /etc/docker/daemon.json\n+++ /etc/docker/daemon.json\n"),
        "{out}"
    );
    assert!(out.contains("+  \"tlsverify\": true,"), "{out}");
    assert!(
        out.contains("+++ /etc/systemd/system/docker.service.d/zz-dockertls.conf"),
        "{out}"
    );
    assert!(
        out.contains("server-key.pem (0400, root:root): a private key, not shown"),
        "{out}"
    );
    let key = std::fs::read_to_string(h.pki.join("server/server-key.pem")).unwrap();
    assert!(
        !out.contains(key.lines().nth(1).unwrap()),
        "the key was printed"
    );
    assert!(out.ends_with("dry run: nothing was changed\n"));
}

#[test]
fn invalid_json_and_conflicts_stop_before_any_change() {
    let Some(h) = host("/lib/systemd/system/docker.service", DOCKER_UNIT) else {
        return;
    };
    write(
        &h.root,
        "/etc/docker/daemon.json",
        "{\n  \"icc\": false,\n  \"debug\": tru\n}\n",
    );
    let before = tree(&h.root);
    let output = install(&h, &[]);
    let message = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        message.contains("line 3") && message.contains("\"debug\": tru"),
        "{message}"
    );
    assert_eq!(tree(&h.root), before);

    write(
        &h.root,
        "/etc/docker/daemon.json",
        "{\"hosts\": [\"unix:///var/run/docker.sock\", \"tcp://0.0.0.0:2375\"], \"tlsverify\": \"true\", \"debug\": true}\n",
    );
    let before = tree(&h.root);
    let output = install(&h, &[]);
    let message = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(message.contains("\"hosts\": [\"unix:///var/run/docker.sock\",\"tcp://0.0.0.0:2375\"] -> [\"unix:///var/run/docker.sock\",\"tcp://0.0.0.0:2376\"]"), "{message}");
    assert!(
        message.contains("\"tlsverify\": \"true\" -> true") && message.contains("--force"),
        "{message}"
    );
    assert_eq!(tree(&h.root), before);
    ok(&h, &["--force"]);
    let merged: serde_json::Value =
        serde_json::from_str(&read(&h.root, "/etc/docker/daemon.json")).unwrap();
    assert_eq!(merged["tlsverify"], true, "a boolean, not a string");
    assert_eq!(merged["debug"], true);
}

#[test]
fn a_folder_with_only_server_is_enough() {
    let Some(h) = host("/lib/systemd/system/docker.service", DOCKER_UNIT) else {
        return;
    };
    let copied = h.root.join("copied");
    std::fs::create_dir_all(copied.join("server")).unwrap();
    for file in ["ca.pem", "server-cert.pem", "server-key.pem"] {
        std::fs::copy(
            h.pki.join("server").join(file),
            copied.join("server").join(file),
        )
        .unwrap();
    }
    let output = dockertls()
        .arg("--dir")
        .arg(&copied)
        .args(["install", "--root"])
        .arg(&h.root)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("using /etc/docker/tls and tcp://0.0.0.0:2376")
    );
    assert_eq!(mode(&h.root.join("etc/docker/tls/server-key.pem")), 0o400);
    let daemon: serde_json::Value =
        serde_json::from_str(&read(&h.root, "/etc/docker/daemon.json")).unwrap();
    assert_eq!(daemon["tlskey"], "/etc/docker/tls/server-key.pem");
}

#[test]
fn refusals_name_the_problem() {
    let Some(h) = host("/lib/systemd/system/docker.service", DOCKER_UNIT) else {
        return;
    };
    // No unit at all.
    let empty = h.root.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let output = dockertls()
        .arg("--dir")
        .arg(&h.pki)
        .args(["install", "--root"])
        .arg(&empty)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no docker.service"));
    assert!(tree(&empty).is_empty());
    // --restart with --root.
    let output = install(&h, &["--restart"]);
    assert_eq!(output.status.code(), Some(2));
    // A server pair that does not match is never installed.
    std::fs::remove_file(h.pki.join("server/server-key.pem")).unwrap();
    std::fs::copy(
        h.pki.join("clients/alice/key.pem"),
        h.pki.join("server/server-key.pem"),
    )
    .unwrap();
    let output = install(&h, &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("key-match"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!h.root.join("etc/docker").exists());
}

#[test]
fn a_real_dockerd_serves_tls_from_the_merged_daemon_json() {
    let Some(h) = host("/lib/systemd/system/docker.service", DEBIAN_UNIT) else {
        return;
    };
    let Some(docker) = find_tool("docker", "install docker.io for the docker CLI") else {
        return;
    };
    write(&h.root, "/etc/docker/daemon.json", HARDENED);
    ok(&h, &[]);
    let mut config: serde_json::Value =
        serde_json::from_str(&read(&h.root, "/etc/docker/daemon.json")).unwrap();
    // The sandbox cannot remap users (no subordinate ids here), and icc=false needs iptables,
    // which the test daemon runs without; the TLS paths live under --root.
    config.as_object_mut().unwrap().remove("userns-remap");
    config.as_object_mut().unwrap().remove("icc");
    for key in ["tlscacert", "tlscert", "tlskey"] {
        let path = config[key].as_str().unwrap().to_string();
        config[key] = serde_json::json!(h.root.join(path.trim_start_matches('/')));
    }
    let Some(daemon) = Dockerd::start_config(config) else {
        return;
    };
    let output = docker_version(
        &docker,
        &format!("tcp://localhost:{}", daemon.port),
        &h.pki.join("clients/alice"),
    );
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        daemon.log()
    );
}
