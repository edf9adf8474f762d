//! `--ca-passphrase-file <(pass show ca)`: the passphrase comes through a pipe the shell hands
//! over, never written to disk. A named FIFO on disk is still refused at once (no writer may
//! ever come), and an endless pipe is read only up to OpenSSL's limit.

mod common;

use common::server_file;
use common::{dockertls, find_tool};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `bash -c SCRIPT` with `$DT` the dockertls binary, killed after `seconds`.
fn bash_within(script: &str, cwd: &Path, seconds: u64) -> Output {
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(cwd)
        .env("DT", env!("CARGO_BIN_EXE_dockertls"))
        .env_remove("DOCKERTLS_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "{script}: still running after {seconds} s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Runs `bash -c SCRIPT` (within 60 s) and fails the test, showing stderr, unless it succeeds.
fn bash_ok(script: &str, cwd: &Path) {
    let out = bash_within(script, cwd, 60);
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_passphrase_from_process_substitution_unlocks_and_a_named_fifo_is_refused() {
    let Some(openssl) = find_tool("openssl", "openssl checks the key is encrypted") else {
        return;
    };
    if find_tool("bash", "bash makes the <(...) pipe").is_none() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    bash_ok(
        r#"$DT --dir pki init --host localhost --ca-passphrase-file <(printf 'correct horse\n')"#,
        work.path(),
    );
    // The CA key is encrypted with exactly that passphrase.
    let key = work.path().join("pki/ca/ca-key.pem");
    let decrypt = |pass: &str| {
        Command::new(&openssl)
            .args(["pkey", "-noout", "-passin", pass, "-in"])
            .arg(&key)
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(decrypt("pass:correct horse"));
    assert!(!decrypt("pass:wrong"));

    // Signing with it through a pipe works; a wrong one through a pipe is exit 1, nothing added.
    bash_ok(
        r#"$DT --dir pki client add bob --ca-passphrase-file <(printf 'correct horse\n')"#,
        work.path(),
    );
    assert!(work.path().join("pki/clients/bob/key.pem").is_file());
    let out = bash_within(
        r#"$DT --dir pki client add eve --ca-passphrase-file <(printf 'wrong\n')"#,
        work.path(),
        60,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(!work.path().join("pki/clients/eve").exists());

    // The same through standard input.
    bash_ok(
        r#"printf 'correct horse\n' | $DT --dir pki client add carol --ca-passphrase-file /dev/stdin"#,
        work.path(),
    );

    // An endless pipe is read up to OpenSSL's limit, then refused, at once.
    let out = bash_within(
        r#"$DT --dir pki client add eve --ca-passphrase-file <(yes x | tr -d '\n')"#,
        work.path(),
        20,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("longer than 1023 bytes"));

    // A named FIFO nobody writes to: refused at once, naming it.
    let fifo = work.path().join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    let out = dockertls()
        .arg("--dir")
        .arg(work.path().join("pki"))
        .args(["client", "add", "eve", "--ca-passphrase-file"])
        .arg(&fifo)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a FIFO"));
    assert!(!work.path().join("pki/clients/eve").exists());
}

/// A PKI at WORK/pki (client alice) whose CA key is encrypted with the passphrase in
/// WORK/pass ("correct horse", mode 0600).
fn encrypted_pki() -> tempfile::TempDir {
    let work = tempfile::tempdir().unwrap();
    let pass = work.path().join("pass");
    std::fs::write(&pass, "correct horse\n").unwrap();
    std::fs::set_permissions(&pass, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    bash_ok(
        r#"$DT --dir pki init --host localhost --ca-passphrase-file pass --client alice"#,
        work.path(),
    );
    work
}

/// Two `client add` runs that overlap (the first waits for its passphrase, the second adds the
/// same name in another case meanwhile): the name is checked again under the lock, so the
/// first is refused and never adds a second folder for the same user.
#[test]
fn a_name_added_while_a_run_waits_for_its_passphrase_is_refused_under_the_lock() {
    if find_tool("bash", "bash makes the <(...) pipe").is_none() {
        return;
    }
    let work = encrypted_pki();
    let out = bash_within(
        r#"$DT --dir pki client add carol --ca-passphrase-file <(sleep 3; printf 'correct horse\n') 2>slow.err & slow=$!
           sleep 1
           $DT --dir pki client add Carol --ca-passphrase-file pass || exit 90
           wait $slow; echo "slow=$?""#,
        work.path(),
        60,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("slow=2"), "{stdout}");
    let slow = std::fs::read_to_string(work.path().join("slow.err")).unwrap();
    assert!(slow.contains("client 'carol' exists already"), "{slow}");
    let clients: Vec<String> = std::fs::read_dir(work.path().join("pki/clients"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(clients.contains(&"Carol".to_string()), "{clients:?}");
    assert!(!clients.contains(&"carol".to_string()), "{clients:?}");
}

/// Two `rotate --server --allow` runs that overlap (the first waits for its passphrase): the
/// second is refused while the first holds the lock, or, run after it, keeps its SAN; no run
/// silently undoes another.
#[test]
fn overlapping_rotations_never_undo_each_other() {
    if find_tool("bash", "bash makes the <(...) pipe").is_none() {
        return;
    }
    let Some(openssl) = find_tool("openssl", "openssl reads the SANs") else {
        return;
    };
    let work = encrypted_pki();
    let out = bash_within(
        r#"$DT --dir pki rotate --server --allow x.example.com --ca-passphrase-file <(sleep 3; printf 'correct horse\n') 2>slow.err & slow=$!
           sleep 1
           $DT --dir pki rotate --server --allow y.example.com --ca-passphrase-file pass 2>fast.err; echo "fast=$?"
           wait $slow; echo "slow=$?""#,
        work.path(),
        60,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("slow=0"), "{stdout}");
    let sans = Command::new(&openssl)
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(server_file(&work.path().join("pki"), "server-cert.pem"))
        .output()
        .unwrap();
    let sans = String::from_utf8_lossy(&sans.stdout);
    assert!(sans.contains("x.example.com"), "{sans}");
    if stdout.contains("fast=0") {
        // It ran first; the slow run re-read the server under the lock and kept its SAN.
        assert!(sans.contains("y.example.com"), "{stdout} {sans}");
    } else {
        let fast = std::fs::read_to_string(work.path().join("fast.err")).unwrap();
        assert!(stdout.contains("fast=2"), "{stdout} {fast}");
        assert!(fast.contains("another dockertls run is working"), "{fast}");
    }
}

/// A link named like the kernel's pipe links (`pipe:[1]`) that leads to a named FIFO on disk is
/// still a FIFO nobody may ever write to: refused at once, not waited on.
#[test]
fn a_named_fifo_behind_a_pipe_like_link_is_refused_at_once() {
    let work = encrypted_pki();
    let fifo = work.path().join("pipe:[1]");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let link = work.path().join("fd");
    std::os::unix::fs::symlink("pipe:[1]", &link).unwrap();
    let out = bash_within(
        r#"$DT --dir pki client add eve --ca-passphrase-file fd"#,
        work.path(),
        10,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a FIFO"));
}
