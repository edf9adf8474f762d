//! A passphrase-protected CA key: written as PKCS#8 PBES2 that OpenSSL reads, unlocked from a
//! file (or a prompt on a terminal) by everything that signs, and a wrong passphrase changes
//! nothing.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{dockertls, files, find_tool, init};

fn run(dir: &Path, args: &[&str]) -> Output {
    dockertls()
        .arg("--dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn an_encrypted_ca_key_is_readable_by_openssl_and_unlocks_signing() {
    let work = tempfile::tempdir().unwrap();
    let pass = work.path().join("pass");
    std::fs::write(&pass, "correct horse battery\n").unwrap();
    let pki = work.path().join("pki");
    let output = init(
        &pki,
        &[
            "--host",
            "docker.example.com",
            "--ca-passphrase-file",
            pass.to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("ca/ca-key.pem is encrypted"));
    let key = std::fs::read_to_string(pki.join("ca/ca-key.pem")).unwrap();
    assert!(
        key.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{key}"
    );
    // Server and client keys are never encrypted.
    for leaf in ["server/server-key.pem", "clients/client/key.pem"] {
        assert!(
            std::fs::read_to_string(pki.join(leaf))
                .unwrap()
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
    }
    if let Some(openssl) = find_tool("openssl", "openssl must decrypt the CA key") {
        let decrypt = |passin: &str| {
            Command::new(&openssl)
                .args(["pkey", "-noout", "-in"])
                .arg(pki.join("ca/ca-key.pem"))
                .args(["-passin", passin])
                .output()
                .unwrap()
        };
        let right = decrypt(&format!("file:{}", pass.display()));
        assert!(right.status.success(), "{}", stderr(&right));
        assert!(!decrypt("pass:wrong").status.success());
    }
    // verify accepts an encrypted CA key (only the CA key may be encrypted).
    assert_eq!(run(&pki, &["verify"]).status.code(), Some(0));

    // Signing with the passphrase file works.
    let p = pass.to_str().unwrap();
    let output = run(&pki, &["client", "add", "alice", "--ca-passphrase-file", p]);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = run(&pki, &["rotate", "--all", "--ca-passphrase-file", p]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(run(&pki, &["verify"]).status.code(), Some(0));

    // A wrong passphrase: exit 1, a clear message, nothing written.
    let wrong = work.path().join("wrong");
    std::fs::write(&wrong, "not the passphrase").unwrap();
    let before = files(&pki);
    for args in [
        vec!["client", "add", "bob"],
        vec!["rotate", "--all"],
        vec!["rotate", "--ca"],
    ] {
        let mut args = args.clone();
        args.extend(["--ca-passphrase-file", wrong.to_str().unwrap()]);
        let output = run(&pki, &args);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains("wrong passphrase"),
            "{}",
            stderr(&output)
        );
        assert!(!stderr(&output).contains("not the passphrase"));
        assert_eq!(files(&pki), before, "{args:?} changed the PKI");
    }
    // No passphrase and no terminal: refused at once, naming the flag.
    let output = run(&pki, &["client", "add", "bob"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--ca-passphrase-file"),
        "{}",
        stderr(&output)
    );

    // A new CA keeps its key protected with the same passphrase.
    let output = run(&pki, &["rotate", "--ca", "--ca-passphrase-file", p]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        std::fs::read_to_string(pki.join("ca/ca-key.pem"))
            .unwrap()
            .starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    );
    assert!(
        run(&pki, &["client", "add", "carol", "--ca-passphrase-file", p])
            .status
            .success()
    );
}

#[test]
fn a_ca_key_encrypted_by_openssl_works_too() {
    let Some(openssl) = find_tool("openssl", "openssl encrypts the CA key for this test") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    assert!(
        init(
            &pki,
            &["--host", "docker.example.com", "--key-type", "rsa-2048"]
        )
        .status
        .success()
    );
    let pass = work.path().join("pass");
    std::fs::write(&pass, "openssl passphrase\n").unwrap();
    let key = pki.join("ca/ca-key.pem");
    // PKCS#8 PBES2 with PBKDF2 and AES-256-CBC: what OpenSSL 3's genrsa -aes256 writes.
    let encrypted = work.path().join("enc.pem");
    let output = Command::new(&openssl)
        .args(["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&encrypted)
        .args(["-passout", &format!("file:{}", pass.display())])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    std::fs::copy(&encrypted, &key).unwrap();
    let output = run(
        &pki,
        &[
            "client",
            "add",
            "alice",
            "--ca-passphrase-file",
            pass.to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(run(&pki, &["verify"]).status.code(), Some(0));

    // OpenSSL's legacy encryption (Proc-Type) gets the conversion command.
    let output = Command::new(&openssl)
        .args(["rsa", "-traditional", "-aes256", "-in"])
        .arg(&encrypted)
        .args([
            "-passin",
            &format!("file:{}", pass.display()),
            "-passout",
            "pass:openssl passphrase",
            "-out",
        ])
        .arg(&key)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        std::fs::read_to_string(&key)
            .unwrap()
            .contains("Proc-Type: 4,ENCRYPTED")
    );
    let output = run(
        &pki,
        &[
            "client",
            "add",
            "bob",
            "--ca-passphrase-file",
            pass.to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("openssl pkcs8 -topk8"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn encrypt_ca_key_without_terminal_or_file_is_refused_at_once() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    let output = init(&pki, &["--host", "docker.example.com", "--encrypt-ca-key"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--ca-passphrase-file"),
        "{}",
        stderr(&output)
    );
    assert!(!pki.exists());
    let short = work.path().join("short");
    std::fs::write(&short, "abc\n").unwrap();
    let output = init(
        &pki,
        &[
            "--host",
            "docker.example.com",
            "--ca-passphrase-file",
            short.to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("shorter than 8"),
        "{}",
        stderr(&output)
    );
    assert!(!pki.exists());
}
