//! The `init` contract, through the real binary: what it writes and with which modes, what it
//! refuses, and that a refused or failed run leaves the folder as it was.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{
    dockertls, find_tool, init, init_ok, is_root, mode, peers_required, server_file, server_folder,
    tree,
};

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every file `init` writes, with its exact mode.
const LAYOUT: [(&str, u32); 18] = [
    ("", 0o700),
    ("dockertls.json", 0o644),
    ("ca", 0o700),
    ("ca/ca.pem", 0o444),
    ("ca/ca-key.pem", 0o400),
    ("servers", 0o700),
    ("servers/example.com", 0o700),
    ("servers/example.com/ca.pem", 0o444),
    ("servers/example.com/server-cert.pem", 0o444),
    ("servers/example.com/server-key.pem", 0o400),
    ("servers/example.com/daemon.json", 0o644),
    ("servers/example.com/override.conf", 0o644),
    ("clients", 0o700),
    ("clients/alice", 0o700),
    ("clients/alice/ca.pem", 0o444),
    ("clients/alice/cert.pem", 0o444),
    ("clients/alice/key.pem", 0o400),
    (".dockertls.lock", 0o600),
];

#[test]
fn modes_are_exact_whatever_the_umask() {
    for umask in ["000", "077", "022", "277"] {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path().join("pki");
        let output = Command::new("sh")
            .arg("-c")
            .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_dockertls"))
            .arg("--dir")
            .arg(&dir)
            .args(["init", "--host", "example.com", "--client", "alice"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "umask {umask}: {}",
            stderr(&output)
        );
        for (path, expected) in LAYOUT {
            let actual = mode(&dir.join(path));
            assert_eq!(actual, expected, "umask {umask}: {path} is {actual:o}");
        }
        let names: Vec<String> = tree(&dir).into_iter().map(|(name, _, _)| name).collect();
        let expected: Vec<&str> = LAYOUT
            .iter()
            .map(|(p, _)| *p)
            .filter(|p| !p.is_empty())
            .collect();
        let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        expected.sort();
        assert_eq!(
            names, expected,
            "umask {umask}: unexpected entries (a staging folder left?)"
        );
    }
}

/// strace shows the mode each file is created with: keys must never exist, even for an
/// instant, with group or other bits.
#[test]
fn no_file_is_ever_created_readable_by_group_or_other() {
    let Some(strace) = find_tool("strace", "install strace to trace file creation modes") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let log = work.path().join("trace");
    let output = Command::new(strace)
        .args([
            "-f",
            "-qq",
            "-e",
            "trace=openat,creat,mkdir,mkdirat,chmod,fchmodat,fchmod",
            "-o",
        ])
        .arg(&log)
        .arg(env!("CARGO_BIN_EXE_dockertls"))
        .arg("--dir")
        .arg(work.path().join("pki"))
        .args(["init", "--host", "example.com", "--client", "alice,bob"])
        .env("DOCKERTLS_DIR", "unused")
        .output()
        .unwrap();
    if !output.status.success() && stderr(&output).contains("ptrace") {
        assert!(
            !peers_required(),
            "strace cannot trace here: {}",
            stderr(&output)
        );
        eprintln!("SKIPPED: strace cannot trace here");
        return;
    }
    assert!(output.status.success(), "{}", stderr(&output));
    let trace = std::fs::read_to_string(&log).unwrap();
    let mut created = 0;
    for line in trace.lines() {
        if line.contains("O_CREAT") {
            created += 1;
            assert!(
                line.contains(", 0600)"),
                "created with another mode: {line}"
            );
        }
        // Folders are set to 0700 by path; nothing else is changed by path.
        if line.contains("chmod(") && !line.contains("fchmod(") {
            assert!(line.contains(", 0700)"), "chmod by path: {line}");
        }
        if line.contains("fchmod(") {
            let allowed = ["0400)", "0444)", "0600)", "0644)", "0700)"];
            assert!(allowed.iter().any(|m| line.contains(m)), "{line}");
        }
    }
    // 2 CA, 3 server and 2x3 client files, daemon.json, override.conf, the state file, the
    // lock.
    assert_eq!(created, 15, "{trace}");
}

#[test]
fn writes_daemon_json_override_and_a_summary_without_secrets() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("pki");
    let output = init_ok(
        &dir,
        &[
            "--host",
            "example.com",
            "--allow",
            "192.168.1.1",
            "--client",
            "alice",
        ],
    );
    let daemon: serde_json::Value =
        serde_json::from_slice(&std::fs::read(server_file(&dir, "daemon.json")).unwrap()).unwrap();
    assert_eq!(
        daemon,
        serde_json::json!({
            "hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"],
            "tls": true,
            "tlsverify": true,
            "tlscacert": "/etc/docker/tls/ca.pem",
            "tlscert": "/etc/docker/tls/server-cert.pem",
            "tlskey": "/etc/docker/tls/server-key.pem"
        })
    );
    let text = std::fs::read_to_string(server_file(&dir, "daemon.json")).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains("\"hosts\"") && l.contains("tcp://0.0.0.0:2376"))
    );
    let unit = std::fs::read_to_string(server_file(&dir, "override.conf")).unwrap();
    assert!(unit.contains(
        "\nExecStart=\nExecStart=/usr/bin/dockerd --containerd=/run/containerd/containerd.sock\n"
    ));

    let summary = stdout(&output);
    let abs = dir.canonicalize().unwrap();
    for expected in [
        format!(
            "DOCKER_HOST=tcp://example.com:2376 DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH={}/clients/alice",
            abs.display()
        ),
        "docker context create dockertls-example.com".to_string(),
        "systemctl daemon-reload && systemctl restart docker".to_string(),
        "/etc/docker/tls".to_string(),
        "for example.com, 192.168.1.1, 127.0.0.1".to_string(),
        "expires ".to_string(),
    ] {
        assert!(
            summary.contains(&expected),
            "summary lacks {expected:?}:\n{summary}"
        );
    }
    let all_output = format!("{summary}{}", stderr(&output));
    assert!(!all_output.contains("PRIVATE KEY"));
    for key in [
        "ca/ca-key.pem",
        "servers/example.com/server-key.pem",
        "clients/alice/key.pem",
    ] {
        let pem = std::fs::read_to_string(dir.join(key)).unwrap();
        for line in pem.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!all_output.contains(line), "key material of {key} printed");
        }
    }
}

#[test]
fn options_shape_the_certificates() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("pki");
    let output = init_ok(
        &dir,
        &[
            "--host",
            "2001:db8::1",
            "--allow",
            "node1,::ffff:10.1.2.3,node1",
            "--no-loopback",
            "--days",
            "30",
            "--ca-days",
            "90",
            "--listen",
            "[::]:12376",
            "--install-dir",
            "/srv/tls/",
            "--dockerd",
            "/usr/sbin/dockerd",
        ],
    );
    let notes = stderr(&output);
    assert!(
        notes.contains("note: ::ffff:10.1.2.3 is IPv4-mapped: stored as the IPv4 address 10.1.2.3"),
        "{notes}"
    );
    assert!(notes.contains("node1 is listed already"), "{notes}");
    let summary = stdout(&output);
    assert!(
        summary.contains("for 2001:db8::1, node1, 10.1.2.3\n"),
        "{summary}"
    );
    assert!(
        summary.contains("DOCKER_HOST='tcp://[2001:db8::1]:12376'"),
        "{summary}"
    );
    let daemon = std::fs::read_to_string(server_file(&dir, "daemon.json")).unwrap();
    assert!(
        daemon.contains("\"tcp://[::]:12376\"") && daemon.contains("\"/srv/tls/server-key.pem\""),
        "{daemon}"
    );
    assert!(
        std::fs::read_to_string(server_file(&dir, "override.conf"))
            .unwrap()
            .contains("ExecStart=/usr/sbin/dockerd ")
    );

    let validity = |path: &str| {
        let pem = std::fs::read(dir.join(path)).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
        let cert = pem.parse_x509().unwrap();
        let v = cert.validity();
        (v.not_after.timestamp() - v.not_before.timestamp()) / 60
    };
    assert_eq!(
        validity(&format!(
            "servers/{}/server-cert.pem",
            server_folder(&dir).file_name().unwrap().to_string_lossy()
        )),
        30 * 24 * 60 + 5
    );
    assert_eq!(validity("clients/client/cert.pem"), 30 * 24 * 60 + 5);
    assert_eq!(validity("ca/ca.pem"), 90 * 24 * 60 + 5);
}

#[test]
fn dockertls_dir_comes_from_the_environment() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("from-env");
    let output = dockertls()
        .env("DOCKERTLS_DIR", &dir)
        .args(["init", "--host", "example.com"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(dir.join("clients/client/key.pem").is_file());
}

/// Runs init with bad arguments and checks the refusal: exit 2, one line naming the value,
/// and nothing created or changed.
fn refused(args: &[&str], expected: &[&str]) {
    let work = tempfile::tempdir().unwrap();
    let fresh = work.path().join("fresh");
    let output = init(&fresh, args);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {message}");
    assert_eq!(
        message.lines().count(),
        1,
        "{args:?}: not one line: {message}"
    );
    assert!(message.starts_with("error: "), "{message}");
    for part in expected {
        assert!(
            message.contains(part),
            "{args:?}: {message:?} lacks {part:?}"
        );
    }
    assert!(!message.contains("panicked"));
    assert!(!fresh.exists(), "{args:?} created {}", fresh.display());
    assert!(stdout(&output).is_empty());
    // An existing empty folder stays empty.
    let existing = work.path().join("existing");
    std::fs::create_dir(&existing).unwrap();
    let output = init(&existing, args);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        tree(&existing).is_empty(),
        "{args:?} wrote into an existing folder"
    );
}

#[test]
fn bad_addresses_are_refused_before_anything_is_written() {
    let long_label = "a".repeat(64);
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["--host", ""], vec!["--host is empty"]),
        (vec!["--host", "a..b"], vec!["'a..b'", "empty label"]),
        (vec!["--host", &long_label], vec!["at most 63"]),
        (
            vec!["--host", "docker.example.com."],
            vec!["ends with a dot", "pass docker.example.com"],
        ),
        (vec!["--host", "my host"], vec!["'my host'", "white space"]),
        (
            vec!["--allow", "*.example.com"],
            vec!["'*.example.com'", "wildcard"],
        ),
        (
            vec!["--allow", "host:2376"],
            vec!["'host:2376'", "port", "--allow host"],
        ),
        (
            vec!["--host", "tcp://host:2376"],
            vec!["'tcp://host:2376'", "URL", "--host host"],
        ),
        (
            vec!["--allow", "256.1.1.1"],
            vec!["'256.1.1.1'", "not a valid IPv4"],
        ),
        (
            vec!["--allow", "0.0.0.0"],
            vec!["'0.0.0.0'", "bind address", "clients dial"],
        ),
        (vec!["--host", "::"], vec!["'::'", "bind address"]),
        (vec!["--allow", "fe80::1%eth0"], vec!["zone"]),
        (
            vec!["--allow", "ok.example,bad_name"],
            vec!["'bad_name'", "'_'"],
        ),
    ];
    for (mut args, expected) in cases {
        if !args.contains(&"--host") {
            args.extend(["--host", "example.com"]);
        }
        refused(&args, &expected);
    }
}

#[test]
fn bad_options_are_refused_before_anything_is_written() {
    let h = ["--host", "example.com"];
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["--days", "0"], vec!["--days 0", "from 1 to"]),
        (vec!["--days", "-5"], vec!["--days -5", "from 1 to"]),
        (
            vec!["--days", "4000"],
            vec!["--days 4000", "--ca-days 3650", "outlive"],
        ),
        (vec!["--ca-days", "0"], vec!["--ca-days 0"]),
        (vec!["--days", "ten"], vec!["'ten'", "--days"]),
        (vec!["--ca-days", "99999"], vec!["--ca-days 99999", "typo"]),
        (
            vec!["--key-type", "rsa-1024"],
            vec!["'rsa-1024'", "ecdsa-p256"],
        ),
        (
            vec!["--client", "../x"],
            vec!["'../x'", "one path component"],
        ),
        (vec!["--client", "a/b"], vec!["'a/b'", "one path component"]),
        (vec!["--client", ""], vec!["--client is empty"]),
        (vec!["--client", ".hidden"], vec!["'.hidden'", "'.'"]),
        (
            vec!["--client", "alice", "--client", "alice"],
            vec!["'alice'", "twice"],
        ),
        (vec!["--client", "Bob,bob"], vec!["'bob'", "twice"]),
        (
            vec!["--listen", "2376"],
            vec!["--listen '2376'", "ADDR:PORT"],
        ),
        (vec!["--listen", "0.0.0.0:0"], vec!["port 0"]),
        (
            vec!["--install-dir", "etc/tls"],
            vec!["--install-dir 'etc/tls'", "absolute"],
        ),
        (
            vec!["--dockerd", "dockerd"],
            vec!["--dockerd 'dockerd'", "absolute"],
        ),
        (
            vec!["--dockerd", "/usr/bin/dockerd %n"],
            vec!["' '", "ExecStart"],
        ),
        (vec!["--bogus"], vec!["'--bogus'"]),
    ];
    for (args, expected) in cases {
        let all: Vec<&str> = h.iter().copied().chain(args).collect();
        refused(&all, &expected);
    }
    // Missing --host names the flag.
    refused(&[], &["--host"]);
}

#[test]
fn an_existing_pki_is_never_overwritten_without_force() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("pki");
    init_ok(&dir, &["--host", "example.com"]);
    let before = tree(&dir);
    let output = init(&dir, &["--host", "other.example.com"]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("already holds a PKI") && message.contains("--force"),
        "{message}"
    );
    assert_eq!(tree(&dir), before, "a refused init changed the PKI");

    // A lone leftover entry counts as a PKI too.
    let partial = work.path().join("partial");
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::write(partial.join("daemon.json"), "{}").unwrap();
    assert_eq!(
        init(&partial, &["--host", "example.com"]).status.code(),
        Some(2)
    );
    assert_eq!(std::fs::read(partial.join("daemon.json")).unwrap(), b"{}");
}

#[test]
fn force_moves_the_old_pki_to_a_backup_first() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("pki");
    init_ok(&dir, &["--host", "example.com", "--client", "alice"]);
    let before = tree(&dir);
    let output = init_ok(
        &dir,
        &["--host", "example.com", "--client", "bob", "--force"],
    );
    let backups: Vec<_> = std::fs::read_dir(dir.join("backup"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(backups.len(), 1);
    let backup = backups[0].path();
    let stamp = backup.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        stamp.len() == 16 && stamp.ends_with('Z') && stamp.as_bytes()[8] == b'T',
        "{stamp}"
    );
    assert!(
        stdout(&output).contains(&stamp),
        "the summary names the backup"
    );
    assert_eq!(mode(&dir.join("backup")), 0o700);
    assert_eq!(mode(&backup), 0o700);
    // The old PKI is in the backup, byte for byte and mode for mode.
    let backed_up = tree(&backup);
    let old: Vec<_> = before
        .into_iter()
        .filter(|(p, _, _)| p != ".dockertls.lock")
        .collect();
    assert_eq!(backed_up, old);
    // The new PKI replaced it.
    assert!(dir.join("clients/bob/key.pem").is_file());
    assert!(!dir.join("clients/alice").exists());
    assert_ne!(
        std::fs::read(dir.join("ca/ca.pem")).unwrap(),
        std::fs::read(backup.join("ca/ca.pem")).unwrap()
    );
    // A second --force keeps the first backup.
    init_ok(&dir, &["--host", "example.com", "--force"]);
    assert_eq!(std::fs::read_dir(dir.join("backup")).unwrap().count(), 2);
    assert_eq!(tree(&backup), backed_up);
}

#[test]
fn symlinks_are_refused_never_followed() {
    let work = tempfile::tempdir().unwrap();
    let target = work.path().join("elsewhere");
    std::fs::create_dir(&target).unwrap();
    for entry in [
        "ca",
        "servers",
        "clients",
        "dockertls.json",
        "server",
        "daemon.json",
        "override.conf",
    ] {
        for force in [false, true] {
            let dir = work.path().join(format!("pki-{entry}-{force}"));
            std::fs::create_dir(&dir).unwrap();
            std::os::unix::fs::symlink(&target, dir.join(entry)).unwrap();
            let mut args = vec!["--host", "example.com"];
            if force {
                args.push("--force");
            }
            let output = init(&dir, &args);
            assert_eq!(
                output.status.code(),
                Some(2),
                "{entry}: {}",
                stderr(&output)
            );
            assert!(
                stderr(&output).contains("symbolic link"),
                "{}",
                stderr(&output)
            );
            assert!(tree(&target).is_empty(), "wrote through a symlink");
            assert_eq!(tree(&dir).len(), 1, "{entry}: wrote next to the link");
        }
    }
    let link = work.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let output = init(&link, &["--host", "example.com"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains(&target.canonicalize().unwrap().display().to_string()),
        "{}",
        stderr(&output)
    );
    assert!(tree(&target).is_empty());
}

#[test]
fn unusable_dirs_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let output = init(&file, &["--host", "example.com"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("not a directory"),
        "{}",
        stderr(&output)
    );
    let output = init(&file.join("below"), &["--host", "example.com"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("not a directory"),
        "{}",
        stderr(&output)
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

/// Mounts a tmpfs (root only) for the unwritable and disk-full cases.
fn tmpfs(options: &str) -> Option<(tempfile::TempDir, impl Drop)> {
    if !is_root() || find_tool("mount", "mount is needed for the tmpfs tests").is_none() {
        assert!(!peers_required(), "the tmpfs tests need root");
        eprintln!("SKIPPED: the tmpfs tests need root");
        return None;
    }
    let point = tempfile::tempdir().unwrap();
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", options, "tmpfs"])
        .arg(point.path())
        .status()
        .unwrap();
    if !status.success() {
        assert!(!peers_required(), "cannot mount a tmpfs here");
        eprintln!("SKIPPED: cannot mount a tmpfs here");
        return None;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let guard = Unmount(point.path().to_path_buf());
    Some((point, guard))
}

#[test]
fn a_read_only_dir_is_refused_before_generating() {
    let Some((point, _guard)) = tmpfs("ro,size=64k,mode=0755") else {
        return;
    };
    for dir in [point.path().to_path_buf(), point.path().join("new")] {
        let output = init(&dir, &["--host", "example.com"]);
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        assert!(
            stderr(&output).contains("cannot write there"),
            "{}",
            stderr(&output)
        );
    }
}

fn fill_disk_and_check(point: &Path) {
    let dir = point.join("pki");
    let many: Vec<String> = (0..40).map(|i| format!("user{i}")).collect();
    let output = init(
        &dir,
        &["--host", "example.com", "--client", &many.join(",")],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let message = stderr(&output);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.contains("No space left on device")
            && message.contains(&point.display().to_string()),
        "{message}"
    );
    assert!(!dir.exists(), "a failed init left {:?}", tree(&dir));
    assert!(
        tree(point).is_empty(),
        "a failed init left {:?}",
        tree(point)
    );
}

#[test]
fn a_full_disk_leaves_no_partial_pki_and_keeps_the_old_one() {
    let Some((point, _guard)) = tmpfs("size=96k") else {
        return;
    };
    fill_disk_and_check(point.path());

    // With --force over an existing PKI: the old PKI stays exactly as it was.
    let dir = point.path().join("pki");
    init_ok(&dir, &["--host", "example.com"]);
    let before = tree(&dir);
    let many: Vec<String> = (0..40).map(|i| format!("user{i}")).collect();
    let output = init(
        &dir,
        &[
            "--host",
            "example.com",
            "--force",
            "--client",
            &many.join(","),
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(tree(&dir), before, "a failed --force changed the old PKI");
}
