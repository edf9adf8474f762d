//! Rotation (and the refusals of client, env and rotate): the contract through the binary,
//! expiry under faketime, crashes (SIGKILL injected by strace at every write, rename and
//! flush), a full disk, the lock, and real dockerd before and after each change.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::server_file;
use common::{
    Dockerd, docker_version, files, find_tool, init_ok, is_root, kill_sweep, mode, ok_in as ok,
    peers_required, run_in as run, tree, verify_ok,
};

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The tree without the lock file (which a run may create).

#[test]
fn bad_input_changes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "docker.example.com", "--client", "alice"]);
    let before = files(&pki);
    let empty = work.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let cases: Vec<(&Path, Vec<&str>, &str)> = vec![
        (&pki, vec!["client", "add", "alice"], "exists already"),
        (&pki, vec!["client", "add", "../x"], "one path component"),
        (&pki, vec!["client", "add", "bob", "bob"], "twice"),
        (
            &pki,
            vec!["client", "add", "bob", "--days", "0"],
            "--days 0",
        ),
        (
            &pki,
            vec!["client", "add", "bob", "--days", "4000"],
            "cannot outlive its CA",
        ),
        (&pki, vec!["client", "remove", "zoe"], "no client 'zoe'"),
        (&pki, vec!["env", "zoe"], "no client 'zoe'"),
        (&pki, vec!["rotate", "--client", "zoe"], "no client 'zoe'"),
        (
            &pki,
            vec!["rotate", "--client", "a/b"],
            "one path component",
        ),
        (&pki, vec!["rotate", "--allow", "10.0.0.1"], "add --server"),
        (
            &pki,
            vec!["rotate", "--server", "--allow", "0.0.0.0"],
            "bind address",
        ),
        (
            &pki,
            vec!["rotate", "--ca", "--server"],
            "--ca re-issues everything",
        ),
        (&pki, vec!["rotate", "--within", "-1"], "--within -1"),
        (&empty, vec!["rotate"], "holds no dockertls PKI"),
        (
            &empty,
            vec!["client", "add", "bob"],
            "holds no dockertls PKI",
        ),
        (&empty, vec!["client", "list"], "holds no dockertls PKI"),
    ];
    for (dir, args, words) in cases {
        let output = run(dir, &args);
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {message}");
        common::assert_one_error(&message, &format!("{args:?}"));
        assert!(
            message.contains(words),
            "{args:?}: {message:?} lacks {words:?}"
        );
    }
    common::assert_same_tree(&before, &files(&pki), "a refused command changed the PKI");
    assert!(tree(&empty).is_empty());
    // A dry run changes nothing either.
    let out = ok(&pki, &["rotate", "--all", "--dry-run"]);
    assert!(
        out.contains("would re-issue server docker.example.com: --all")
            && out.contains("would re-issue client alice: --all"),
        "{out}"
    );
    assert_eq!(files(&pki), before);
}

fn faketime(offset: &str, dir: &Path, args: &[&str]) -> Option<Output> {
    let faketime = common::faketime_tool("expiry tests run the binary under faketime")?;
    Some(
        Command::new(faketime)
            .arg("-f")
            .arg(offset)
            .arg(env!("CARGO_BIN_EXE_dockertls"))
            .arg("--dir")
            .arg(dir)
            .args(args)
            .output()
            .unwrap(),
    )
}

#[test]
fn rotate_reissues_what_expires_within_the_window() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(
        &pki,
        &[
            "--host",
            "docker.example.com",
            "--allow",
            "10.0.0.1",
            "--client",
            "alice,bob",
            "--days",
            "365",
        ],
    );
    ok(&pki, &["client", "add", "carol", "--days", "200"]);
    let server_before = std::fs::read(server_file(&pki, "server-cert.pem")).unwrap();
    // 300 days on: only carol (expired) is due... and nobody else within 30 days.
    let Some(output) = faketime("+300d", &pki, &["rotate", "--dry-run"]) else {
        return;
    };
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        out.contains("would re-issue client carol: expires on")
            && !out.contains("would re-issue server"),
        "{out}"
    );
    // 340 days on: everything is within 30 days.
    let output = faketime("+340d", &pki, &["rotate"]).unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", stderr(&output));
    for label in [
        "server docker.example.com",
        "client alice",
        "client bob",
        "client carol",
    ] {
        assert!(
            out.contains(&format!("re-issued {label} (expires on")),
            "{label}: {out}"
        );
    }
    assert!(out.contains("restart dockerd"), "{out}");
    // The SANs and subject are kept; the key is fresh; the old files are in the backup.
    let server_after = std::fs::read(server_file(&pki, "server-cert.pem")).unwrap();
    assert_ne!(server_before, server_after);
    let (_, pem) = x509_parser::pem::parse_x509_pem(&server_after).unwrap();
    let cert = pem.parse_x509().unwrap();
    let sans = format!(
        "{:?}",
        cert.subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
    );
    assert!(
        sans.contains("docker.example.com")
            && sans.contains("[10, 0, 0, 1]")
            && sans.contains("[127, 0, 0, 1]"),
        "{sans}"
    );
    assert_eq!(cert.subject().to_string(), "CN=docker.example.com");
    let backup = std::fs::read_dir(pki.join("backup"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    assert_eq!(
        std::fs::read(backup.join("servers/docker.example.com/server-cert.pem")).unwrap(),
        server_before
    );
    assert_eq!(
        mode(&backup.join("servers/docker.example.com/server-key.pem")),
        0o400
    );
    // Right after: nothing to rotate.
    let output = faketime("+340d", &pki, &["rotate"]).unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("nothing to rotate"));
    assert!(output.status.success());
}

#[test]
fn allow_adds_sans_and_the_ca_can_be_replaced() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "docker.example.com", "--client", "alice"]);
    let out = ok(
        &pki,
        &[
            "rotate",
            "--server",
            "--allow",
            "10.9.8.7,node2.example.com",
        ],
    );
    assert!(out.contains("adds 10.9.8.7, node2.example.com"), "{out}");
    let output = run(
        &pki,
        &[
            "verify",
            "--host",
            "10.9.8.7",
            "--host",
            "node2.example.com",
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    // Only the server changed.
    assert_eq!(std::fs::read_dir(pki.join("backup")).unwrap().count(), 1);

    let old_ca = std::fs::read(pki.join("ca/ca.pem")).unwrap();
    let old_client = std::fs::read(pki.join("clients/alice/cert.pem")).unwrap();
    let out = ok(&pki, &["rotate", "--ca"]);
    assert!(
        out.contains("created a new CA")
            && out.contains("every client needs its new folder now: clients/alice"),
        "{out}"
    );
    assert_ne!(std::fs::read(pki.join("ca/ca.pem")).unwrap(), old_ca);
    assert_ne!(
        std::fs::read(pki.join("clients/alice/cert.pem")).unwrap(),
        old_client
    );
    verify_ok(&pki);
    // The SANs added before survive the CA change.
    assert_eq!(
        run(&pki, &["verify", "--host", "10.9.8.7"]).status.code(),
        Some(0)
    );
    let backups: Vec<PathBuf> = std::fs::read_dir(pki.join("backup"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(
        backups
            .iter()
            .any(|b| std::fs::read(b.join("ca/ca.pem")).is_ok_and(|c| c == old_ca)),
        "the old CA is kept"
    );
}

#[test]
fn the_restart_hint_names_the_install_dir_of_the_pki() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(
        &pki,
        &[
            "--host",
            "docker.example.com",
            "--install-dir",
            "/srv/docker tls",
        ],
    );
    let out = ok(&pki, &["rotate", "--server", "--all"]);
    assert!(
        out.contains("install -m 0400 -o root -g root servers/docker.example.com/server-key.pem '/srv/docker tls/'")
            && out.contains("servers/docker.example.com/ca.pem servers/docker.example.com/server-cert.pem '/srv/docker tls/'"),
        "{out}"
    );
    assert!(!out.contains("/etc/docker/tls"), "{out}");
    // The default install dir when init was not told otherwise.
    let other = work.path().join("other");
    init_ok(&other, &["--host", "docker.example.com"]);
    let out = ok(&other, &["rotate", "--server", "--all"]);
    assert!(
        out.contains("servers/docker.example.com/server-key.pem /etc/docker/tls/\n"),
        "{out}"
    );
}

#[test]
fn a_second_run_is_refused_while_the_lock_is_held() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "docker.example.com"]);
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(pki.join(".dockertls.lock"))
        .unwrap();
    lock.lock().unwrap();
    let before = files(&pki);
    for args in [vec!["rotate", "--all"], vec!["client", "add", "bob"]] {
        let output = run(&pki, &args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&output).contains("another dockertls run is working"),
            "{}",
            stderr(&output)
        );
    }
    assert_eq!(files(&pki), before);
    drop(lock);
    // A child another test thread forks holds a copy of our descriptor (and so the lock)
    // until it execs: give that moment time (a loaded machine may take seconds) before the
    // run must succeed. A refused run changes nothing, so trying again is safe.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut output = run(&pki, &["rotate", "--all"]);
    while !output.status.success() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        output = run(&pki, &["rotate", "--all"]);
    }
    assert!(output.status.success(), "{}", common::streams(&output));
}

#[test]
fn rotate_survives_a_kill_at_any_write_rename_or_flush() {
    kill_sweep(
        &["rotate", "--all"],
        &["write", "renameat2", "syncfs", "fsync", "unlinkat"],
    );
}

/// A rotation killed at any rename leaves, after the next run (which finishes its swaps),
/// a backup holding only the folders as they were before it: a staged folder never swapped in
/// is not left there for an old one. A client name with '@' (which the swap record once could
/// not hold: review_swap's defect 2) is among them.
#[test]
fn a_killed_rotation_leaves_only_old_folders_in_its_backup() {
    let Some(strace) = find_tool("strace", "crash tests inject SIGKILL with strace") else {
        return;
    };
    let mut killed = 0;
    for n in 1..40 {
        let work = tempfile::tempdir().unwrap();
        let pki = work.path().join("pki");
        init_ok(
            &pki,
            &[
                "--host",
                "docker.example.com",
                "--client",
                "alice,bob,ops@example.com",
            ],
        );
        let before: std::collections::HashMap<String, Vec<u8>> =
            common::pem_files(&pki).into_iter().collect();
        let output = Command::new(&strace)
            .args(["-f", "-qq", "-o", "/dev/null", "-e"])
            .arg(format!("inject=renameat2:signal=KILL:when={n}"))
            .arg(env!("CARGO_BIN_EXE_dockertls"))
            .arg("--dir")
            .arg(&pki)
            .args(["rotate", "--all"])
            .output()
            .unwrap();
        if output.status.success() {
            break;
        }
        killed += 1;
        // The next run that changes the PKI finishes the killed one first.
        ok(&pki, &["client", "add", "zed"]);
        verify_ok(&pki);
        for (path, contents) in common::pem_files(&pki.join("backup")) {
            // backup/STAMP/clients/alice/cert.pem: as clients/alice/cert.pem was before.
            let live_path = path.split_once('/').map_or("", |(_, rest)| rest);
            assert_eq!(
                before.get(live_path),
                Some(&contents),
                "renameat2 #{n}: backup/{path} is not the old file"
            );
        }
    }
    assert!(killed > 4, "too few runs were killed ({killed})");
}

#[test]
fn rotate_ca_survives_a_kill_at_any_rename() {
    kill_sweep(&["rotate", "--ca"], &["renameat2", "syncfs", "fsync"]);
}

#[test]
fn a_full_disk_leaves_the_old_files_byte_identical() {
    if !is_root() {
        assert!(
            !peers_required(),
            "the full-disk test mounts a tmpfs (root)"
        );
        eprintln!("SKIPPED: the full-disk test mounts a tmpfs (root)");
        return;
    }
    let point = tempfile::tempdir().unwrap();
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=200k", "tmpfs"])
        .arg(point.path())
        .status()
        .unwrap();
    assert!(status.success());
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(point.path().to_path_buf());
    let pki = point.path().join("pki");
    init_ok(
        &pki,
        &[
            "--host",
            "docker.example.com",
            "--client",
            "alice,bob,carol",
        ],
    );
    // Fill the disk but for a few KiB: enough to start, not to finish.
    let filler = point.path().join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 512 * 1024]);
    let free = {
        let output = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(point.path())
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .nth(1)
            .unwrap_or("0")
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
    };
    assert_eq!(free, 0, "the filler should take all the space");
    std::fs::remove_file(&filler).unwrap();
    let meta_free = 8 * 4096;
    let used = 200 * 1024 - meta_free;
    let _ = std::fs::write(&filler, vec![0u8; used]);
    let before = files(&pki);
    for args in [
        vec!["rotate", "--all"],
        vec!["rotate", "--ca"],
        vec!["client", "add", "dave,erin,frank,gina"],
    ] {
        let output = run(&pki, &args);
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {message}");
        assert!(
            message.contains("No space left on device"),
            "{args:?}: {message}"
        );
        assert!(
            message.contains(&pki.display().to_string()),
            "{args:?}: names no path: {message}"
        );
        let after: Vec<_> = files(&pki)
            .into_iter()
            .filter(|(p, _, _)| !p.starts_with("backup"))
            .collect();
        let before: Vec<_> = before
            .iter()
            .filter(|(p, _, _)| !p.starts_with("backup"))
            .cloned()
            .collect();
        assert_eq!(after, before, "{args:?} changed the PKI on a full disk");
    }
    std::fs::remove_file(&filler).unwrap();
    ok(&pki, &["rotate", "--all"]);
    verify_ok(&pki);
}

#[test]
fn real_dockerd_follows_rotation() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "localhost", "--client", "alice,bob"]);
    let Some(docker) = find_tool("docker", "install docker.io for the docker CLI") else {
        return;
    };
    let Some(mut daemon) = Dockerd::start(&pki) else {
        return;
    };
    let host = |d: &Dockerd| format!("tcp://localhost:{}", d.port);
    let connects =
        |d: &Dockerd, folder: &Path| docker_version(&docker, &host(d), folder).status.success();
    let alice = pki.join("clients/alice");
    let keep = |name: &str| {
        let copy = work.path().join(format!("old-{name}"));
        std::fs::create_dir_all(&copy).unwrap();
        for file in ["ca.pem", "cert.pem", "key.pem"] {
            std::fs::copy(pki.join("clients").join(name).join(file), copy.join(file)).unwrap();
        }
        copy
    };
    assert!(connects(&daemon, &alice));

    // Rotate the server, restart: an existing client still connects.
    let old_bob = keep("bob");
    ok(&pki, &["rotate", "--server", "--all"]);
    daemon.stop();
    drop(daemon);
    let Some(daemon) = Dockerd::start(&pki) else {
        return;
    };
    assert!(
        connects(&daemon, &alice),
        "alice after a server rotation: {}",
        daemon.log()
    );
    // Rotate a client: the new certificate connects.
    ok(&pki, &["rotate", "--client", "bob", "--all"]);
    assert!(connects(&daemon, &pki.join("clients/bob")));
    // Add a client: it connects.
    ok(&pki, &["client", "add", "carol"]);
    assert!(connects(&daemon, &pki.join("clients/carol")));

    // Replace the CA, restart: new client certificates connect, old ones are refused.
    let old_alice = keep("alice");
    drop(daemon);
    ok(&pki, &["rotate", "--ca"]);
    let Some(daemon) = Dockerd::start(&pki) else {
        return;
    };
    for name in ["alice", "bob", "carol"] {
        assert!(
            connects(&daemon, &pki.join("clients").join(name)),
            "{name} after rotate --ca"
        );
    }
    // An old folder fails (its ca.pem no longer verifies the daemon); with the new ca.pem the
    // old certificate is refused by dockerd itself.
    assert!(!connects(&daemon, &old_alice));
    std::fs::set_permissions(
        old_bob.join("ca.pem"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::copy(pki.join("ca/ca.pem"), old_bob.join("ca.pem")).unwrap();
    let output = docker_version(&docker, &host(&daemon), &old_bob);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("bad certificate"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `verify` running while `rotate` swaps folders reads each folder's certificate and key from
/// one side of the swap: never a false key mismatch, never a file reported missing.
#[test]
fn verify_during_rotate_never_reports_a_false_mismatch() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    // Many small folders: each rotation swaps them all, each verify reads them all.
    init_ok(
        &pki,
        &[
            "--host",
            "docker.example.com",
            "--client",
            "a",
            "--client",
            "b",
            "--client",
            "c",
            "--client",
            "d",
            "--client",
            "e",
            "--client",
            "f",
            "--key-type",
            "ed25519",
        ],
    );
    let stop = Arc::new(AtomicBool::new(false));
    let rotator = {
        let (pki, stop) = (pki.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut rotations = 0;
            while !stop.load(Ordering::Relaxed) && rotations < 600 {
                let output = run(&pki, &["rotate", "--all"]);
                assert!(output.status.success(), "rotate: {}", stderr(&output));
                rotations += 1;
            }
            rotations
        })
    };
    let started = Instant::now();
    let mut verifies = 0;
    let mut bad = Vec::new();
    while verifies < 1200 && started.elapsed() < Duration::from_secs(60) {
        let output = run(&pki, &["verify", "--format", "json", "--warn-days", "0"]);
        verifies += 1;
        let report: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|_| panic!("verify printed no JSON: {}", stderr(&output)));
        for target in report["targets"].as_array().into_iter().flatten() {
            for check in target["checks"].as_array().into_iter().flatten() {
                if check["status"] == "fail" {
                    bad.push(format!(
                        "{}: {} {}",
                        target["path"], check["id"], check["message"]
                    ));
                }
            }
        }
        if !bad.is_empty() {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let rotations = rotator.join().unwrap();
    assert!(
        bad.is_empty(),
        "after {verifies} verify runs and {rotations} rotations: {bad:#?}"
    );
    assert!(
        rotations >= 5,
        "only {rotations} rotations ran beside {verifies} verify runs"
    );
    verify_ok(&pki);
}

/// `--keep-backups 0` deletes every backup, this run's too: the report does not point at a
/// folder that is gone.
#[test]
fn keep_backups_zero_says_the_previous_files_were_not_kept() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "docker.example.com", "--client", "alice"]);
    let out = ok(&pki, &["rotate", "--all", "--keep-backups", "0"]);
    assert!(
        out.contains("the previous files were not kept (--keep-backups 0)")
            && !out.contains("the previous files are in"),
        "{out}"
    );
    let left = std::fs::read_dir(pki.join("backup")).map_or(0, |d| d.count());
    assert_eq!(left, 0, "{out}");
}
