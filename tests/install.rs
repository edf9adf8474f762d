//! `install --root` over temporary trees: Docker's and Debian's units, existing daemon.json
//! with hardening keys, existing drop-ins, no daemon.json, invalid JSON, conflicting hosts,
//! dry runs, idempotence; and a real dockerd started from the merged daemon.json.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{
    Dockerd, docker_version, dockertls, find_tool, init_ok, is_root, mode, peers_required,
    server_file, server_folder, tree, write_program,
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
    let work = common::private_tempdir();
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
            std::fs::read(server_folder(&h.pki).join(file)).unwrap()
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
    let key = std::fs::read_to_string(server_file(&h.pki, "server-key.pem")).unwrap();
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
            server_folder(&h.pki).join(file),
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
    std::fs::remove_file(server_file(&h.pki, "server-key.pem")).unwrap();
    std::fs::copy(
        h.pki.join("clients/alice/key.pem"),
        server_file(&h.pki, "server-key.pem"),
    )
    .unwrap();
    let output = install(&h, &[]);
    assert_eq!(output.status.code(), Some(2));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("key-match"), "{message}");
    // The check runs on a private copy of what is installed; the message names the PKI.
    assert!(
        !message.contains("/proc/")
            && message.contains(&server_file(&h.pki, "server-key.pem").display().to_string()),
        "{message}"
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

// ---------------------------------------------------------------------------------------------
// Links, hard links, FIFOs, devices and huge files on the way: refused, nothing written
// anywhere (issue 10, HIGH 2).

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs install with a deadline: a read that blocks (a FIFO) must not hang it.
fn install_within(pki: &Path, root: &Path, extra: &[&str], secs: u64) -> Output {
    let mut child = dockertls()
        .arg("--dir")
        .arg(pki)
        .args(["install", "--root"])
        .arg(root)
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("install did not finish within {secs} s: it blocked on a read");
}

fn symlink(target: impl AsRef<Path>, link: &Path) {
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, link).unwrap();
}

fn mknod(path: &Path, kind: &[&str]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let status = std::process::Command::new("mknod")
        .arg(path)
        .args(kind)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn links_fifos_devices_and_hard_links_on_the_way_are_refused_and_nothing_leaves_the_root() {
    let Some(h) = host("/lib/systemd/system/docker.service", DEBIAN_UNIT) else {
        return;
    };
    let work = h.root.parent().unwrap().to_path_buf();
    let secret = "root:$6$the-shadow-hash-never-printed:19000:0:99999:7:::\n";
    type Setup = Box<dyn Fn(&Path, &Path)>;
    let cases: Vec<(&str, Setup, &str)> = vec![
        (
            "/etc/docker a link to a folder outside the root",
            Box::new(|root: &Path, outside: &Path| {
                std::fs::create_dir_all(outside.join("docker")).unwrap();
                symlink(outside.join("docker"), &root.join("etc/docker"));
            }),
            "etc/docker is a symbolic link",
        ),
        (
            "/etc a link outside (the drop-in would leave too)",
            Box::new(|root: &Path, outside: &Path| {
                std::fs::create_dir_all(outside.join("etc/docker")).unwrap();
                symlink(outside.join("etc"), &root.join("etc"));
            }),
            "etc is a symbolic link",
        ),
        (
            "/etc/docker/tls a link outside",
            Box::new(|root: &Path, outside: &Path| {
                std::fs::create_dir_all(outside.join("tls")).unwrap();
                symlink(outside.join("tls"), &root.join("etc/docker/tls"));
            }),
            "etc/docker/tls is a symbolic link",
        ),
        (
            "the drop-in folder a link outside",
            Box::new(|root: &Path, outside: &Path| {
                std::fs::create_dir_all(outside.join("d")).unwrap();
                symlink(
                    outside.join("d"),
                    &root.join("etc/systemd/system/docker.service.d"),
                );
            }),
            "docker.service.d is a symbolic link",
        ),
        (
            "/etc/docker a relative link that stays inside the root",
            Box::new(|root: &Path, _: &Path| {
                std::fs::create_dir_all(root.join("srv/docker")).unwrap();
                symlink("../srv/docker", &root.join("etc/docker"));
            }),
            "etc/docker is a symbolic link",
        ),
        (
            "daemon.json a link to a file outside",
            Box::new(|root: &Path, outside: &Path| {
                std::fs::write(outside.join("daemon.json"), HARDENED).unwrap();
                symlink(
                    outside.join("daemon.json"),
                    &root.join("etc/docker/daemon.json"),
                );
            }),
            "daemon.json is a symbolic link",
        ),
        (
            "daemon.json a hard link to a secret file",
            Box::new(move |root: &Path, outside: &Path| {
                std::fs::write(outside.join("shadow"), secret).unwrap();
                std::fs::create_dir_all(root.join("etc/docker")).unwrap();
                std::fs::hard_link(outside.join("shadow"), root.join("etc/docker/daemon.json"))
                    .unwrap();
            }),
            "daemon.json has 2 hard links",
        ),
        (
            "daemon.json a FIFO",
            Box::new(|root: &Path, _: &Path| mknod(&root.join("etc/docker/daemon.json"), &["p"])),
            "daemon.json is a FIFO, not a regular file",
        ),
        (
            "daemon.json /dev/zero",
            Box::new(|root: &Path, _: &Path| {
                mknod(&root.join("etc/docker/daemon.json"), &["c", "1", "5"])
            }),
            "daemon.json is a character device",
        ),
        (
            "daemon.json of 2 MiB",
            Box::new(|root: &Path, _: &Path| {
                std::fs::create_dir_all(root.join("etc/docker")).unwrap();
                let file = std::fs::File::create(root.join("etc/docker/daemon.json")).unwrap();
                file.set_len(2 << 20).unwrap();
            }),
            "more than the 1048576 install reads",
        ),
        (
            "daemon.json not UTF-8",
            Box::new(|root: &Path, _: &Path| {
                std::fs::create_dir_all(root.join("etc/docker")).unwrap();
                std::fs::write(
                    root.join("etc/docker/daemon.json"),
                    b"{\"debug\": \"\xff\"}\n",
                )
                .unwrap();
            }),
            "daemon.json is not UTF-8 text",
        ),
        (
            "the installed server key a link outside",
            Box::new(|root: &Path, outside: &Path| {
                std::fs::write(outside.join("key.pem"), "old key").unwrap();
                symlink(
                    outside.join("key.pem"),
                    &root.join("etc/docker/tls/server-key.pem"),
                );
            }),
            "server-key.pem is a symbolic link",
        ),
        (
            "the unit a FIFO",
            Box::new(|root: &Path, _: &Path| {
                mknod(&root.join("etc/systemd/system/docker.service"), &["p"])
            }),
            "docker.service is a FIFO",
        ),
        (
            "the unit a character device",
            Box::new(|root: &Path, _: &Path| {
                std::fs::remove_file(root.join("lib/systemd/system/docker.service")).unwrap();
                mknod(
                    &root.join("lib/systemd/system/docker.service"),
                    &["c", "1", "5"],
                )
            }),
            "docker.service is a character device",
        ),
        (
            "a drop-in a FIFO",
            Box::new(|root: &Path, _: &Path| {
                mknod(
                    &root.join("etc/systemd/system/docker.service.d/10-x.conf"),
                    &["p"],
                )
            }),
            "10-x.conf is a FIFO",
        ),
    ];
    for (index, (what, setup, words)) in cases.iter().enumerate() {
        let root = work.join(format!("root-{index}"));
        let outside = work.join(format!("outside-{index}"));
        std::fs::create_dir_all(&outside).unwrap();
        write(&root, "/lib/systemd/system/docker.service", DEBIAN_UNIT);
        setup(&root, &outside);
        let before = (tree(&root), tree(&outside));
        let output = install_within(&h.pki, &root, &[], 30);
        let message = stderr_of(&output);
        assert_eq!(output.status.code(), Some(2), "{what}: {message}");
        assert!(
            message.contains(words),
            "{what}: {message:?} lacks {words:?}"
        );
        // One `error:` line, and where there is something to do, one `hint:` line.
        let lines: Vec<&str> = message.lines().collect();
        assert!(
            lines[0].starts_with("error: ")
                && (lines.len() == 1 || (lines.len() == 2 && lines[1].starts_with("hint: "))),
            "{what}: {message}"
        );
        assert!(!message.contains("shadow-hash"), "{what}: {message}");
        assert_eq!(
            (tree(&root), tree(&outside)),
            before,
            "{what}: a refused install changed files"
        );
        // The dry run refuses the same way, and creates nothing either.
        let output = install_within(&h.pki, &root, &["--dry-run"], 30);
        assert_eq!(output.status.code(), Some(2), "{what} (dry run)");
        assert_eq!((tree(&root), tree(&outside)), before, "{what} (dry run)");
    }

    // The PKI it copies from: a link there is refused too.
    let copied = work.join("copied");
    std::fs::create_dir_all(copied.join("server")).unwrap();
    for file in ["ca.pem", "server-cert.pem"] {
        std::fs::copy(
            server_folder(&h.pki).join(file),
            copied.join("server").join(file),
        )
        .unwrap();
    }
    symlink(
        server_file(&h.pki, "server-key.pem"),
        &copied.join("server/server-key.pem"),
    );
    let output = install_within(&copied, &h.root, &[], 30);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains("server-key.pem is a symbolic link"),
        "{}",
        stderr_of(&output)
    );
    assert!(!h.root.join("etc").exists());
}

#[test]
fn unit_files_are_read_as_in_the_booted_image_and_never_outside_it() {
    let Some(h) = host("/usr/lib/systemd/system/docker.service", DOCKER_UNIT) else {
        return;
    };
    let work = h.root.parent().unwrap().to_path_buf();
    // Merged /usr: /lib is an absolute link to /usr/lib, which means PREFIX/usr/lib.
    symlink("/usr/lib", &h.root.join("lib"));
    // A unit linked to an absolute path that exists outside the root (and not inside it):
    // followed inside the root only, so it is absent and the packaged unit is used.
    let outside = work.join("evil.service");
    std::fs::write(
        &outside,
        "[Service]\nExecStart=/outside-evil/dockerd -H fd://\n",
    )
    .unwrap();
    symlink(&outside, &h.root.join("etc/systemd/system/docker.service"));
    // A drop-in linked to /dev/null is masked: systemd ignores it, and so does install.
    symlink(
        "/dev/null",
        &h.root
            .join("usr/lib/systemd/system/docker.service.d/50-masked.conf"),
    );
    mknod(&h.root.join("dev/null"), &["c", "1", "3"]);
    let before_outside = std::fs::read(&outside).unwrap();
    ok(&h, &[]);
    assert_eq!(
        exec_start(&h),
        "ExecStart=\nExecStart=/usr/bin/dockerd --containerd=/run/containerd/containerd.sock"
    );
    assert_eq!(std::fs::read(&outside).unwrap(), before_outside);
}

// ---------------------------------------------------------------------------------------------
// All or nothing (issue 10, MEDIUM 4): a kill at any step, a failure at any step, a full disk.

/// The five files install switches, in its order.
const LIVE: [&str; 5] = [
    "/etc/docker/tls/ca.pem",
    "/etc/docker/tls/server-cert.pem",
    "/etc/docker/tls/server-key.pem",
    "/etc/systemd/system/docker.service.d/zz-dockertls.conf",
    "/etc/docker/daemon.json",
];
type Live = Vec<Option<(u32, Vec<u8>)>>;

fn live(root: &Path) -> Live {
    LIVE.iter()
        .map(|p| {
            let path = root.join(p.trim_start_matches('/'));
            std::fs::read(&path).ok().map(|c| (mode(&path), c))
        })
        .collect()
}

fn copy_tree(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

/// A host before and after an install that changes every one of the five files.
struct Fixture {
    work: tempfile::TempDir,
    template: PathBuf,
    pki: PathBuf,
    args: Vec<&'static str>,
    old: Live,
    new: Live,
}

/// A host where another PKI (port 2377) was installed and the drop-in edited by hand; the new
/// PKI (port 2376) changes the three TLS files, the drop-in and daemon.json (--force: hosts).
fn upgrade_fixture() -> Option<Fixture> {
    let h = host("/lib/systemd/system/docker.service", DEBIAN_UNIT)?;
    let work = h._work;
    let old_pki = work.path().join("old-pki");
    init_ok(
        &old_pki,
        &["--host", "localhost", "--listen", "0.0.0.0:2377"],
    );
    let template = h.root;
    write(&template, "/etc/docker/daemon.json", HARDENED);
    let output = dockertls()
        .arg("--dir")
        .arg(&old_pki)
        .args(["install", "--root"])
        .arg(&template)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let dropin = template.join("etc/systemd/system/docker.service.d/zz-dockertls.conf");
    let mut text = std::fs::read_to_string(&dropin).unwrap();
    text.push_str("# edited by hand\n");
    std::fs::set_permissions(&dropin, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    std::fs::write(&dropin, text).unwrap();
    finish_fixture(work, template, h.pki, vec!["--force"])
}

/// A host with only Docker's unit: install creates every folder and file.
fn fresh_fixture() -> Option<Fixture> {
    let h = host("/lib/systemd/system/docker.service", DOCKER_UNIT)?;
    finish_fixture(h._work, h.root, h.pki, Vec::new())
}

fn finish_fixture(
    work: tempfile::TempDir,
    template: PathBuf,
    pki: PathBuf,
    args: Vec<&'static str>,
) -> Option<Fixture> {
    let old = live(&template);
    let expected = work.path().join("expected");
    copy_tree(&template, &expected);
    let output = dockertls()
        .arg("--dir")
        .arg(&pki)
        .args(["install", "--root"])
        .arg(&expected)
        .args(&args)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let new = live(&expected);
    for (index, (o, n)) in old.iter().zip(&new).enumerate() {
        assert_ne!(
            o, n,
            "{} does not change: the fixture tests less",
            LIVE[index]
        );
    }
    Some(Fixture {
        work,
        template,
        pki,
        args,
        old,
        new,
    })
}

/// install under strace with one fault injected (`inject=...`), PATH without dockerd (its
/// --validate child would take the injected fault instead).
fn install_under_strace(strace: &Path, fault: &str, f: &Fixture, root: &Path) -> Output {
    std::process::Command::new(strace)
        .args(["-f", "-qq", "-o", "/dev/null", "-e"])
        .arg(fault)
        .arg(env!("CARGO_BIN_EXE_dockertls"))
        .arg("--dir")
        .arg(&f.pki)
        .args(["install", "--root"])
        .arg(root)
        .args(&f.args)
        .env("PATH", "/usr/bin:/bin")
        .env_remove("DOCKERTLS_DIR")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

fn strace_works(output: &Output) -> bool {
    let text = stderr_of(output);
    // strace's own complaint, not install's message about an injected EPERM.
    if text.lines().any(|l| l.starts_with("strace:")) {
        assert!(!peers_required(), "strace cannot trace here: {text}");
        eprintln!("SKIPPED: strace cannot trace here");
        return false;
    }
    true
}

/// Names install gives its journal and temporary files.
fn leftovers(root: &Path) -> Vec<String> {
    tree(root)
        .into_iter()
        .map(|(p, _, _)| p)
        .filter(|p| p.contains(".dockertls-install"))
        .collect()
}

/// The `.bak` files that `root` has and the template had not, each checked against the file
/// it backs up: its contents before the install.
fn check_backups(f: &Fixture, root: &Path, what: &str) {
    let before: Vec<String> = tree(&f.template).into_iter().map(|(p, _, _)| p).collect();
    let mut backed_up = Vec::new();
    for (path, _, contents) in tree(root) {
        if !path.ends_with(".bak") || before.contains(&path) {
            continue;
        }
        let index = LIVE
            .iter()
            .position(|l| path.starts_with(&format!("{}.", l.trim_start_matches('/'))))
            .unwrap_or_else(|| panic!("{what}: a backup of what? {path}"));
        let old = f.old[index].as_ref().map(|(_, c)| c.clone());
        assert_eq!(
            Some(contents),
            old,
            "{what}: {path} is not the previous file"
        );
        backed_up.push(index);
    }
    backed_up.sort();
    let expected: Vec<usize> = (0..LIVE.len()).filter(|i| f.old[*i].is_some()).collect();
    assert_eq!(
        backed_up, expected,
        "{what}: one backup of each replaced file"
    );
}

/// After any interruption: daemon.json is JSON, no key is open to group or other.
fn check_invariants(root: &Path, what: &str) {
    if let Ok(text) = std::fs::read_to_string(root.join("etc/docker/daemon.json")) {
        let value: Result<serde_json::Value, _> = serde_json::from_str(&text);
        assert!(
            value.is_ok_and(|v| v.is_object()),
            "{what}: daemon.json is not a JSON object: {text}"
        );
    }
    for (path, mode, _) in tree(root) {
        if path.contains("key") {
            assert_eq!(mode & 0o077, 0, "{what}: {path} is mode {mode:o}");
        }
    }
}

/// Kills install at the Nth call of each syscall, for N = 1, 2, ... until a run completes.
/// After each kill the five files are all old, or a committed journal is there; the next run
/// says what it found in one line and leaves all new, no journal and no temporary file, and
/// one backup of each replaced file.
fn kill_sweep(f: &Fixture, syscalls: &[&str]) {
    let Some(strace) = find_tool("strace", "crash tests inject SIGKILL with strace") else {
        return;
    };
    let old_tree = tree(&f.template);
    let mut killed_runs = 0;
    let mut rolled_forward = 0;
    for syscall in syscalls {
        for n in 1..600 {
            let what = format!("SIGKILL at {syscall} #{n}");
            let root = f.work.path().join("killed");
            let _ = std::fs::remove_dir_all(&root);
            copy_tree(&f.template, &root);
            let fault = format!("inject={syscall}:signal=KILL:when={n}");
            let output = install_under_strace(&strace, &fault, f, &root);
            if !strace_works(&output) {
                return;
            }
            let killed = stderr_of(&output).contains("SIGKILL")
                || output.status.code() == Some(137)
                || output.status.code().is_none();
            check_invariants(&root, &what);
            if !killed {
                assert!(output.status.success(), "{what}: {}", stderr_of(&output));
                assert_eq!(live(&root), f.new, "{what}");
                break;
            }
            killed_runs += 1;
            let journal: Vec<String> = leftovers(&root)
                .into_iter()
                .filter(|p| p.starts_with("etc/docker/.dockertls-install."))
                .collect();
            let committed = journal.iter().any(|p| p.ends_with(".commit"));
            // daemon.json is switched last: once it is new, so is everything it points at.
            let now = live(&root);
            if now[4] == f.new[4] {
                assert_eq!(now, f.new, "{what}: a new daemon.json before the rest");
            }
            if !committed {
                let now = live(&root);
                assert!(
                    now == f.old || (journal.is_empty() && now == f.new),
                    "{what}: a mix of old and new files without a committed journal"
                );
            }
            if journal.is_empty() && live(&root) == f.old {
                // Nothing changed but, at most, /etc/docker made empty for the journal.
                let files: Vec<_> = tree(&root)
                    .into_iter()
                    .filter(|(p, _, _)| !old_tree.iter().any(|(q, _, _)| q == p))
                    .map(|(p, _, _)| p)
                    .collect();
                assert!(
                    files.iter().all(|p| p == "etc" || p == "etc/docker"),
                    "{what}: left {files:?}"
                );
            }
            let output = dockertls()
                .arg("--dir")
                .arg(&f.pki)
                .args(["install", "--root"])
                .arg(&root)
                .args(&f.args)
                .output()
                .unwrap();
            let message = stderr_of(&output);
            assert!(output.status.success(), "{what}: the next run: {message}");
            if journal.is_empty() {
                assert!(!message.contains("interrupted"), "{what}: {message}");
            } else {
                let notes: Vec<&str> = message
                    .lines()
                    .filter(|l| l.contains("interrupted") || l.contains("killed before"))
                    .collect();
                assert_eq!(notes.len(), 1, "{what}: {message}");
                assert!(notes[0].starts_with("note: found "), "{what}: {message}");
                if committed {
                    assert!(notes[0].contains("finished it"), "{what}: {message}");
                    rolled_forward += 1;
                }
            }
            assert_eq!(live(&root), f.new, "{what}: the next run");
            assert_eq!(
                leftovers(&root),
                Vec::<String>::new(),
                "{what}: left behind"
            );
            check_backups(f, &root, &what);
            for path in LIVE {
                let meta = std::fs::metadata(root.join(path.trim_start_matches('/'))).unwrap();
                assert_eq!(
                    std::os::unix::fs::MetadataExt::nlink(&meta),
                    1,
                    "{what}: {path}"
                );
            }
        }
    }
    assert!(
        killed_runs > 0,
        "no run was killed: the sweep tested nothing"
    );
    assert!(rolled_forward > 0, "no kill fell after the switch point");
    eprintln!("{killed_runs} installs killed mid-way ({rolled_forward} rolled forward)");
}

#[test]
fn install_survives_a_kill_at_any_step_over_an_existing_install() {
    let Some(f) = upgrade_fixture() else {
        return;
    };
    kill_sweep(
        &f,
        &[
            "write", "fsync", "renameat", "linkat", "unlinkat", "fchmod", "fchown", "openat2",
        ],
    );
}

#[test]
fn install_survives_a_kill_at_any_step_on_a_fresh_host() {
    let Some(f) = fresh_fixture() else {
        return;
    };
    kill_sweep(&f, &["mkdirat", "write", "renameat", "fsync"]);
}

/// Makes the Nth call of each syscall fail: install exits non-zero with one `error:` line and
/// the host is byte for byte as before (exit 1 leaves nothing behind), or it completes.
fn failure_sweep(f: &Fixture, faults: &[(&str, &str)]) {
    let Some(strace) = find_tool("strace", "fault tests inject errors with strace") else {
        return;
    };
    let before = tree(&f.template);
    let mut failed_runs = 0;
    for (syscall, errno) in faults {
        for n in 1..600 {
            let what = format!("{errno} at {syscall} #{n}");
            let root = f.work.path().join("failed");
            let _ = std::fs::remove_dir_all(&root);
            copy_tree(&f.template, &root);
            let fault = format!("inject={syscall}:error={errno}:when={n}");
            let output = install_under_strace(&strace, &fault, f, &root);
            if !strace_works(&output) {
                return;
            }
            if output.status.success() {
                assert_eq!(live(&root), f.new, "{what}");
                break;
            }
            failed_runs += 1;
            let message = stderr_of(&output);
            assert!(
                message.starts_with("error: ") && message.lines().count() == 1,
                "{what}: {message}"
            );
            assert_eq!(tree(&root), before, "{what}: {message}");
        }
    }
    assert!(failed_runs > 0, "no run failed: the sweep tested nothing");
    eprintln!("{failed_runs} installs failed mid-way, each leaving the host as it was");
}

#[test]
fn a_failure_at_any_step_leaves_the_host_as_it_was() {
    let Some(f) = upgrade_fixture() else {
        return;
    };
    failure_sweep(
        &f,
        &[
            ("write", "ENOSPC"),
            ("fsync", "EIO"),
            ("renameat", "ENOSPC"),
            ("linkat", "ENOSPC"),
            ("fchown", "EPERM"),
            ("fchmod", "EPERM"),
            ("openat2", "ENOSPC"),
        ],
    );
}

#[test]
fn a_failure_on_a_fresh_host_leaves_no_folder_behind() {
    let Some(f) = fresh_fixture() else {
        return;
    };
    // /etc/docker is made first (it holds the journal and the lock): exactly as before means
    // it is there from the start.
    std::fs::create_dir_all(f.template.join("etc/docker")).unwrap();
    failure_sweep(
        &f,
        &[
            ("mkdirat", "ENOSPC"),
            ("write", "ENOSPC"),
            ("renameat", "EIO"),
        ],
    );
}

#[test]
fn a_full_disk_changes_nothing() {
    let Some(f) = upgrade_fixture() else {
        return;
    };
    let point = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=400k", "tmpfs"])
        .arg(point.path())
        .status()
        .unwrap();
    assert!(status.success());
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(point.path().to_path_buf());
    let root = point.path().join("root");
    copy_tree(&f.template, &root);
    // Fill the disk to the last byte.
    let filler = point.path().join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let block = vec![0u8; 4096];
    while std::io::Write::write_all(&mut file, &block).is_ok() {}
    drop(file);
    let before = tree(&root);
    let output = install_within(&f.pki, &root, &f.args, 30);
    let message = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains("No space left on device") && message.contains("nothing was changed"),
        "{message}"
    );
    assert_eq!(tree(&root), before, "a full disk changed the host");
    std::fs::remove_file(&filler).unwrap();
    let output = install_within(&f.pki, &root, &f.args, 30);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(live(&root), f.new);
    assert!(leftovers(&root).is_empty());
}

#[test]
fn the_key_is_created_private_whatever_the_umask() {
    let Some(f) = upgrade_fixture() else {
        return;
    };
    let Some(strace) = find_tool("strace", "strace shows the mode each file is created with")
    else {
        return;
    };
    let root = f.work.path().join("umask");
    copy_tree(&f.template, &root);
    let log = f.work.path().join("trace");
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$@\"")
        .arg("sh")
        .arg(&strace)
        .args(["-f", "-qq", "-o"])
        .arg(&log)
        .args(["-e", "trace=openat2,fchmod,linkat"])
        .arg(env!("CARGO_BIN_EXE_dockertls"))
        .arg("--dir")
        .arg(&f.pki)
        .args(["install", "--root"])
        .arg(&root)
        .args(&f.args)
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    if !strace_works(&output) {
        return;
    }
    assert!(output.status.success(), "{}", stderr_of(&output));
    let trace = std::fs::read_to_string(&log).unwrap();
    let created: Vec<&str> = trace.lines().filter(|l| l.contains("O_CREAT")).collect();
    assert!(created.len() >= 5, "{trace}");
    for line in &created {
        assert!(line.contains("mode=0600"), "created open to others: {line}");
    }
    // The staged key: created 0600, then fchmod 0400 on the same descriptor, nothing else.
    let key_line = created
        .iter()
        .find(|l| l.contains("server-key.pem.new"))
        .unwrap_or_else(|| panic!("{trace}"));
    let fd = key_line.rsplit("= ").next().unwrap().trim();
    let chmods: Vec<&str> = trace
        .lines()
        .filter(|l| l.contains(&format!("fchmod({fd}, ")))
        .collect();
    assert!(chmods.iter().any(|l| l.contains(", 0400)")), "{trace}");
    assert_eq!(mode(&root.join("etc/docker/tls/server-key.pem")), 0o400);
    // The previous key's backup is the same file under a second name: never a copy.
    let backup = tree(&root)
        .into_iter()
        .find(|(p, _, _)| p.starts_with("etc/docker/tls/server-key.pem.") && p.ends_with(".bak"))
        .unwrap();
    assert_eq!(backup.1, 0o400);
}

// ---------------------------------------------------------------------------------------------
// Backups never overwrite each other (issue 10, MEDIUM 10).

#[test]
fn installs_within_one_second_keep_every_backup() {
    let Some(h) = host("/lib/systemd/system/docker.service", DEBIAN_UNIT) else {
        return;
    };
    let Some(faketime) = common::faketime_tool("the same-second test freezes the clock") else {
        return;
    };
    let other = h.root.parent().unwrap().join("other-pki");
    init_ok(&other, &["--host", "localhost"]);
    write(&h.root, "/etc/docker/daemon.json", HARDENED);
    // A frozen clock a minute on: every run below is in the same second.
    let date = std::process::Command::new("date")
        .args(["-u", "-d", "+1 min", "+%Y-%m-%d %H:%M:%S"])
        .output()
        .unwrap();
    let frozen = String::from_utf8_lossy(&date.stdout).trim().to_string();
    let run = |pki: &Path| {
        // `-f`: the clock stands still (without it, it runs on and a slow run crosses a second).
        let output = std::process::Command::new(&faketime)
            .args(["-f", &frozen])
            .arg(env!("CARGO_BIN_EXE_dockertls"))
            .arg("--dir")
            .arg(pki)
            .args(["install", "--root"])
            .arg(&h.root)
            .env("TZ", "UTC")
            .env_remove("DOCKERTLS_DIR")
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr_of(&output));
    };
    run(&h.pki);
    // Someone drops "tlsverify" from daemon.json; then another PKI puts it back, then the
    // first PKI again, all in the same second. (install keeps every byte it does not own, so
    // only a change to a key of its own makes it rewrite the file.)
    let installed = read(&h.root, "/etc/docker/daemon.json");
    let edited: String = installed
        .lines()
        .filter(|line| !line.contains("\"tlsverify\""))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_ne!(
        edited, installed,
        "the installed daemon.json has no tlsverify line"
    );
    serde_json::from_str::<serde_json::Value>(&edited).expect("still JSON without that line");
    write(&h.root, "/etc/docker/daemon.json", &edited);
    let first_ca = read(&h.root, "/etc/docker/tls/ca.pem");
    run(&other);
    let second_ca = read(&h.root, "/etc/docker/tls/ca.pem");
    run(&h.pki);
    let backups = |prefix: &str| -> Vec<(String, String)> {
        tree(&h.root)
            .into_iter()
            .filter(|(p, _, _)| p.starts_with(prefix) && p.ends_with(".bak"))
            .map(|(p, _, c)| (p, String::from_utf8(c).unwrap()))
            .collect()
    };
    let daemon = backups("etc/docker/daemon.json.");
    let ca = backups("etc/docker/tls/ca.pem.");
    let stamp = frozen.replace(['-', ':'], "").replace(' ', "T") + "Z";
    let contents: Vec<&str> = daemon.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(contents.len(), 2, "{daemon:?}");
    assert!(contents.contains(&HARDENED) && contents.contains(&edited.as_str()));
    let contents: Vec<&str> = ca.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(contents.len(), 2);
    assert!(contents.contains(&first_ca.as_str()) && contents.contains(&second_ca.as_str()));
    for (path, _) in daemon.iter().chain(&ca) {
        assert!(path.contains(&stamp), "{path} is not from {stamp}");
    }
}

#[test]
fn tls_paths_that_would_overwrite_each_other_are_refused() {
    let Some(h) = host("/lib/systemd/system/docker.service", DOCKER_UNIT) else {
        return;
    };
    let generated: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(server_file(&h.pki, "daemon.json")).unwrap())
            .unwrap();
    let cases = [
        ("tlskey", "/etc/docker/tls/ca.pem", "named twice"),
        ("tlskey", "/etc/docker/daemon.json", "named twice"),
        (
            "tlscert",
            "/etc/systemd/system/docker.service.d/zz-dockertls.conf",
            "named twice",
        ),
        ("tlscert", "/etc/docker/tls/", "absolute path of a file"),
        (
            "tlscacert",
            "etc/docker/tls/ca.pem",
            "absolute path of a file",
        ),
        (
            "tlskey",
            "/etc/docker/../key.pem",
            "absolute path of a file",
        ),
        (
            "tlskey",
            "/etc/docker/tls/./key.pem",
            "absolute path of a file",
        ),
        ("tlskey", "/etc/docker/tls/key\n.pem", "control characters"),
    ];
    let before = tree(&h.root);
    for (key, value, words) in cases {
        let mut config = generated.clone();
        config[key] = serde_json::json!(value);
        std::fs::set_permissions(
            server_file(&h.pki, "daemon.json"),
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .unwrap();
        std::fs::write(server_file(&h.pki, "daemon.json"), config.to_string()).unwrap();
        let output = install(&h, &[]);
        let message = stderr_of(&output);
        assert_eq!(output.status.code(), Some(2), "{key}={value:?}: {message}");
        assert!(message.contains(words), "{key}={value:?}: {message}");
        assert_eq!(message.lines().count(), 1, "{message}");
        assert_eq!(tree(&h.root), before, "{key}={value:?}");
    }
}

#[test]
fn a_second_install_is_refused_while_one_is_working() {
    let Some(h) = host("/lib/systemd/system/docker.service", DOCKER_UNIT) else {
        return;
    };
    std::fs::create_dir_all(h.root.join("etc/docker")).unwrap();
    let lock = std::fs::File::open(h.root.join("etc/docker")).unwrap();
    lock.lock().unwrap();
    let before = tree(&h.root);
    let output = install(&h, &[]);
    let message = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(
        message.contains("another dockertls install is working"),
        "{message}"
    );
    assert_eq!(tree(&h.root), before);
    drop(lock);
    ok(&h, &[]);
}

/// A host left by a run killed just after its switch point (a committed journal, some files
/// switched), or while undoing a failed switch (a `.rollback` journal).
fn interrupted(f: &Fixture, strace: &Path, faults: &str, journal: &str) -> PathBuf {
    let root = f.work.path().join("interrupted");
    let _ = std::fs::remove_dir_all(&root);
    copy_tree(&f.template, &root);
    let mut command = std::process::Command::new(strace);
    command.args(["-f", "-qq", "-o", "/dev/null"]);
    for fault in faults.split(' ') {
        command.args(["-e", fault]);
    }
    let output = command
        .arg(env!("CARGO_BIN_EXE_dockertls"))
        .arg("--dir")
        .arg(&f.pki)
        .args(["install", "--root"])
        .arg(&root)
        .args(&f.args)
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(!output.status.success(), "{faults}: not interrupted");
    assert!(
        leftovers(&root)
            .iter()
            .any(|p| p == &format!("etc/docker/.dockertls-install.{journal}")),
        "{faults}: {:?}",
        leftovers(&root)
    );
    root
}

#[test]
fn recovery_itself_survives_a_kill() {
    let Some(f) = upgrade_fixture() else {
        return;
    };
    let Some(strace) = find_tool("strace", "crash tests inject SIGKILL with strace") else {
        return;
    };
    let mut killed_runs = 0;
    // renameat #1 is the switch point, #2.. the switch; fsync after the failed rename #3 is in
    // the undo.
    // The fsyncs before the journal becomes `.rollback` when rename #4 fails: a kill at the
    // second one after it falls inside the undo.
    let log = f.work.path().join("trace");
    let root = f.work.path().join("traced");
    copy_tree(&f.template, &root);
    let output = std::process::Command::new(&strace)
        .args(["-f", "-qq", "-o"])
        .arg(&log)
        .args([
            "-e",
            "trace=renameat,fsync",
            "-e",
            "inject=renameat:error=ENOSPC:when=4",
        ])
        .arg(env!("CARGO_BIN_EXE_dockertls"))
        .arg("--dir")
        .arg(&f.pki)
        .args(["install", "--root"])
        .arg(&root)
        .args(&f.args)
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    if !strace_works(&output) {
        return;
    }
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    let trace = std::fs::read_to_string(&log).unwrap();
    let fsyncs_before = trace
        .lines()
        .take_while(|l| !l.contains(".dockertls-install.rollback"))
        .filter(|l| l.contains("fsync("))
        .count();
    let in_undo = format!(
        "inject=renameat:error=ENOSPC:when=4 inject=fsync:signal=KILL:when={}",
        fsyncs_before + 2
    );
    for (faults, journal) in [
        ("inject=renameat:signal=KILL:when=3", "commit"),
        (in_undo.as_str(), "rollback"),
    ] {
        let template = interrupted(&f, &strace, faults, journal);
        let mixed = live(&template);
        assert!(
            mixed != f.old && mixed != f.new,
            "{faults}: not half switched"
        );
        // A dry run reports the journal and changes nothing.
        let before = tree(&template);
        let output = install_within(&f.pki, &template, &["--dry-run", "--force"], 30);
        assert!(output.status.success(), "{}", stderr_of(&output));
        let out = String::from_utf8_lossy(&output.stdout);
        assert!(
            out.starts_with("would first finish or undo the install interrupted at ")
                && out.contains(&format!(
                    ".dockertls-install.{journal}: run dockertls install"
                )),
            "{out}"
        );
        assert_eq!(tree(&template), before);
        for syscall in ["renameat", "unlinkat", "fsync", "linkat"] {
            for n in 1..200 {
                let what = format!("{journal} journal, SIGKILL at {syscall} #{n}");
                let root = f.work.path().join("recovering");
                let _ = std::fs::remove_dir_all(&root);
                copy_tree(&template, &root);
                let fault = format!("inject={syscall}:signal=KILL:when={n}");
                let output = install_under_strace(&strace, &fault, &f, &root);
                if !strace_works(&output) {
                    return;
                }
                check_invariants(&root, &what);
                if output.status.success() {
                    break;
                }
                killed_runs += 1;
                let output = install_within(&f.pki, &root, &f.args, 30);
                assert!(output.status.success(), "{what}: {}", stderr_of(&output));
                assert_eq!(live(&root), f.new, "{what}");
                assert_eq!(leftovers(&root), Vec::<String>::new(), "{what}");
                check_backups(&f, &root, &what);
            }
        }
    }
    assert!(killed_runs > 0, "no recovery was killed");
}

#[test]
fn dockerd_validate_reads_the_merged_file_from_memory() {
    let Some(h) = host("/lib/systemd/system/docker.service", DOCKER_UNIT) else {
        return;
    };
    // A stand-in for dockerd 23+: refuses the config file unless it is the merged one.
    let bin = h.root.parent().unwrap().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("dockerd");
    write_program(
        &fake,
        "#!/bin/sh\n[ \"$1\" = --validate ] && [ \"$2\" = --config-file ] || exit 3\n\
         grep -q '\"tlsverify\": true' \"$3\" || { echo \"cannot read $3\" >&2; exit 1; }\n\
         grep -q '\"debug\": true' \"$3\" && { echo 'the following directives are specified both as a flag and in the configuration file: debug' >&2; exit 1; }\n\
         echo 'configuration OK'\n",
    );
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let run = || {
        dockertls()
            .arg("--dir")
            .arg(&h.pki)
            .args(["install", "--root"])
            .arg(&h.root)
            .env("PATH", &path)
            .env("TMPDIR", "/nonexistent")
            .output()
            .unwrap()
    };
    write(&h.root, "/etc/docker/daemon.json", "{\"debug\": true}\n");
    let before = tree(&h.root);
    let output = run();
    let message = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(
        message.contains("dockerd --validate refuses the merged daemon.json")
            && message.contains("specified both as a flag"),
        "{message}"
    );
    assert_eq!(tree(&h.root), before);
    write(&h.root, "/etc/docker/daemon.json", "{\"icc\": false}\n");
    let output = run();
    assert!(output.status.success(), "{}", stderr_of(&output));
}

/// A merged daemon.json that dockerd would refuse to start from (verify's judgement: a hosts
/// entry it refuses, a key in the wrong case, `hosts` as a string) is refused before anything
/// is written, dry run or not: dockerd 20.10 has no --validate to catch it.
#[test]
fn a_merged_daemon_json_dockerd_would_refuse_is_not_installed() {
    let Some(h) = host("/lib/systemd/system/docker.service", DEBIAN_UNIT) else {
        return;
    };
    let pki_json = server_file(&h.pki, "daemon.json");
    let original = std::fs::read_to_string(&pki_json).unwrap();
    let cases: [(&str, Option<&str>, &str); 3] = [
        ("a TCP:// host in the PKI", None, "TCP://"),
        ("hosts as a string in the PKI", None, "\"hosts\""),
        (
            "a key in the wrong case on the host",
            Some("{\"TLSVerify\": false}\n"),
            "TLSVerify",
        ),
    ];
    for (index, (what, on_host, words)) in cases.iter().enumerate() {
        let ours = match index {
            0 => original.replace("tcp://", "TCP://"),
            1 => {
                let mut value: serde_json::Value = serde_json::from_str(&original).unwrap();
                value["hosts"] = value["hosts"][0].clone();
                value.to_string()
            }
            _ => original.clone(),
        };
        std::fs::set_permissions(
            &pki_json,
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .unwrap();
        std::fs::write(&pki_json, &ours).unwrap();
        let _ = std::fs::remove_file(h.root.join("etc/docker/daemon.json"));
        if let Some(text) = on_host {
            write(&h.root, "/etc/docker/daemon.json", text);
        }
        let before = tree(&h.root);
        for extra in [&[][..], &["--dry-run"]] {
            let output = install(&h, extra);
            let message = stderr_of(&output);
            assert_eq!(output.status.code(), Some(2), "{what}: {message}");
            assert!(
                message.contains("the merged /etc/docker/daemon.json"),
                "{what}: {message}"
            );
            assert!(message.contains(words), "{what}: {message}");
            assert_eq!(tree(&h.root), before, "{what}: a refusal changed files");
        }
    }
}

/// Review m3: a server folder whose server-key.pem group or others can read is refused by
/// install (--from and from the PKI), as deploy refuses it and verify fails it; nothing changes.
#[test]
fn a_server_key_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let Some(h) = host("/lib/systemd/system/docker.service", DOCKER_UNIT) else {
        return;
    };
    let folder = h.root.parent().unwrap().join("carried");
    std::fs::create_dir(&folder).unwrap();
    for file in ["ca.pem", "server-cert.pem", "server-key.pem", "daemon.json"] {
        std::fs::copy(server_folder(&h.pki).join(file), folder.join(file)).unwrap();
    }
    let key = folder.join("server-key.pem");
    let from = ["--from", folder.to_str().unwrap()];
    for bad in [0o644, 0o640, 0o604, 0o620] {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(bad)).unwrap();
        let before = tree(&h.root);
        let output = install(&h, &from);
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(2), "{bad:o}: {stderr}");
        common::assert_one_error(&stderr, "install --from");
        assert!(stderr.contains(&format!("mode {bad:04o}")), "{stderr}");
        assert!(stderr.contains("hint: "), "{stderr}");
        assert_eq!(tree(&h.root), before, "{bad:o}: a refusal changed files");
    }
    let pki_key = server_file(&h.pki, "server-key.pem");
    std::fs::set_permissions(&pki_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(install(&h, &[]).status.code(), Some(2));
    std::fs::set_permissions(&pki_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400)).unwrap();
    ok(&h, &from);
}
