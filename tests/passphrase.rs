//! A passphrase-protected CA key: written as PKCS#8 PBES2 that OpenSSL reads, unlocked from a
//! file (or a prompt on a terminal) by everything that signs, and a wrong passphrase changes
//! nothing.

mod common;
#[path = "support/refusal.rs"]
mod refusal;

use std::path::Path;
use std::process::{Command, Output};

use common::server_file;
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

/// Writes a passphrase file readable by its owner only, as dockertls demands.
fn write_secret(path: &Path, contents: impl AsRef<[u8]>) {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    std::io::Write::write_all(&mut file, contents.as_ref()).unwrap();
}

#[test]
fn an_encrypted_ca_key_is_readable_by_openssl_and_unlocks_signing() {
    let work = tempfile::tempdir().unwrap();
    let pass = work.path().join("pass");
    write_secret(&pass, "correct horse battery\n");
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
    for leaf in [
        "servers/docker.example.com/server-key.pem",
        "clients/client/key.pem",
    ] {
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
    write_secret(&wrong, "not the passphrase");
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
    write_secret(&pass, "openssl passphrase\n");
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
    write_secret(&short, "abc\n");
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

/// Runs dockertls with a deadline: a read that never ends (a FIFO, /dev/zero) fails the test
/// instead of hanging it.
fn run_within(dir: &Path, args: &[&str], seconds: u64) -> Output {
    let mut child = dockertls()
        .arg("--dir")
        .arg(dir)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} still running after {seconds} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn mkfifo(path: &Path) {
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

/// The same passphrase file protects a key for dockertls and for `openssl -passin file:`,
/// both ways: OpenSSL 3.0 takes the first line without its LF and keeps everything else (a CR
/// before it, trailing spaces), or the whole file when it has no newline.
#[test]
fn a_passphrase_file_means_the_same_to_dockertls_and_openssl_both_ways() {
    let Some(openssl) = find_tool("openssl", "openssl reads the same passphrase files") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let openssl_opens = |key: &Path, passin: &str| {
        Command::new(&openssl)
            .args(["pkey", "-noout", "-in"])
            .arg(key)
            .args(["-passin", passin])
            .output()
            .unwrap()
            .status
            .success()
    };
    let cases: [(&str, &[u8], &str); 5] = [
        ("lf", b"correct horse\n", "correct horse"),
        ("no-newline", b"correct horse", "correct horse"),
        ("spaces", b"correct horse  \n", "correct horse  "),
        (
            "two-lines",
            b"correct horse\nsecond line\n",
            "correct horse",
        ),
        ("crlf", b"correct horse\r\n", "correct horse\r"),
    ];
    for (name, contents, meant) in cases {
        let pass = work.path().join(format!("{name}.pass"));
        write_secret(&pass, contents);
        let passin = format!("file:{}", pass.display());

        // dockertls encrypts, openssl decrypts with the same file (and the meant passphrase).
        let pki = work.path().join(format!("{name}-dockertls"));
        let output = init(
            &pki,
            &[
                "--host",
                "docker.example.com",
                "--ca-passphrase-file",
                pass.to_str().unwrap(),
            ],
        );
        let key = pki.join("ca/ca-key.pem");
        if name == "crlf" {
            // A CR nobody can type at a prompt: refused for a new key, with the fix.
            assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
            let err = stderr(&output);
            assert!(
                err.starts_with("error: the CA passphrase (from --ca-passphrase-file "),
                "{err}"
            );
            assert!(
                err.contains("carriage return") && err.contains("\nhint: remove it: sed -i"),
                "{err}"
            );
            refusal::assert_refusal(&output.stderr);
            assert!(!pki.exists());
        } else {
            assert!(output.status.success(), "{name}: {}", stderr(&output));
            assert!(
                openssl_opens(&key, &passin),
                "{name}: openssl -passin {passin}"
            );
            assert!(openssl_opens(&key, &format!("pass:{meant}")), "{name}");
            if meant.ends_with(' ') {
                assert!(
                    !openssl_opens(&key, &format!("pass:{}", meant.trim_end())),
                    "{name}"
                );
            }
        }

        // openssl encrypts with the file, dockertls signs with the same file.
        let pki = work.path().join(format!("{name}-openssl"));
        assert!(
            init(&pki, &["--host", "docker.example.com"])
                .status
                .success()
        );
        let key = pki.join("ca/ca-key.pem");
        let encrypted = work.path().join(format!("{name}.enc"));
        let output = Command::new(&openssl)
            .args(["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(&encrypted)
            .args(["-passout", &passin])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        std::fs::copy(&encrypted, &key).unwrap();
        assert!(openssl_opens(&key, &format!("pass:{meant}")), "{name}");
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
        assert!(output.status.success(), "{name}: {}", stderr(&output));
        // A file holding only what one would type (no CR, no trailing spaces) is another
        // passphrase, for dockertls as for openssl.
        if meant != meant.trim_end() {
            let typed = work.path().join(format!("{name}.typed"));
            write_secret(&typed, format!("{}\n", meant.trim_end()));
            let output = run(
                &pki,
                &[
                    "client",
                    "add",
                    "bob",
                    "--ca-passphrase-file",
                    typed.to_str().unwrap(),
                ],
            );
            assert_eq!(output.status.code(), Some(1), "{name}: {}", stderr(&output));
            assert!(stderr(&output).contains("wrong passphrase"));
            assert!(!openssl_opens(&key, &format!("file:{}", typed.display())));
        }
    }
}

/// What OpenSSL would read differently from what the file seems to say is refused, naming the
/// file; and a passphrase file that others can read is refused as ssh refuses such a key.
#[test]
fn passphrase_files_openssl_would_misread_or_others_can_read_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    let pass = work.path().join("pass");
    write_secret(&pass, "correct horse\n");
    assert!(
        init(
            &pki,
            &[
                "--host",
                "docker.example.com",
                "--ca-passphrase-file",
                pass.to_str().unwrap()
            ]
        )
        .status
        .success()
    );
    let before = files(&pki);
    let long = [b'a'; 1024];
    let cases: [(&str, &[u8], &str); 5] = [
        ("empty", b"", "the file is empty"),
        (
            "empty-line",
            b"\ncorrect horse\n",
            "the first line is empty",
        ),
        ("nul", b"correct\0horse\n", "NUL byte"),
        ("long", &long, "longer than 1023 bytes"),
        ("long-line", b"", "longer than 1023 bytes"),
    ];
    for (name, contents, why) in cases {
        let file = work.path().join(name);
        if name == "long-line" {
            write_secret(&file, [&[b'b'; 2000][..], b"\n"].concat());
        } else {
            write_secret(&file, contents);
        }
        for args in [&["client", "add", "bob"][..], &["rotate", "--ca"]] {
            let mut args = args.to_vec();
            args.extend(["--ca-passphrase-file", file.to_str().unwrap()]);
            let output = run(&pki, &args);
            assert_eq!(output.status.code(), Some(2), "{name}: {}", stderr(&output));
            let err = stderr(&output);
            assert!(
                err.starts_with(&format!("error: --ca-passphrase-file {}: ", file.display())),
                "{err}"
            );
            assert!(err.contains(why), "{name}: {err}");
            refusal::assert_refusal(&output.stderr);
        }
    }
    // Exactly 1023 bytes is what openssl reads in full: accepted (and the wrong passphrase).
    let max = work.path().join("max");
    write_secret(&max, [&[b'c'; 1023][..], b"\n"].concat());
    let output = run(
        &pki,
        &[
            "client",
            "add",
            "bob",
            "--ca-passphrase-file",
            max.to_str().unwrap(),
        ],
    );
    assert!(
        stderr(&output).contains("wrong passphrase"),
        "{}",
        stderr(&output)
    );

    use std::os::unix::fs::PermissionsExt;
    for mode in [0o644, 0o640, 0o604, 0o620, 0o602, 0o660] {
        std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(mode)).unwrap();
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
        assert_eq!(output.status.code(), Some(2), "{mode:o}");
        let err = stderr(&output);
        assert!(err.contains(&format!("(mode {mode:04o})")), "{err}");
        let (_, hint) = refusal::assert_refusal(&output.stderr);
        assert_eq!(hint, Some(format!("chmod 600 {}", pass.display())), "{err}");
        assert!(!err.contains("correct horse"));
    }
    // A file of another user (who could change it) is refused too, as ssh does.
    if common::is_root() {
        std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&pass, Some(65534), Some(65534)).unwrap();
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
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        let err = stderr(&output);
        assert!(err.contains("belongs to another user (uid 65534)"), "{err}");
        assert!(refusal::assert_refusal(&output.stderr).1.is_some(), "{err}");
        std::os::unix::fs::chown(&pass, Some(0), Some(0)).unwrap();
    }
    for mode in [0o600, 0o400] {
        std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(mode)).unwrap();
        let output = run(
            &pki,
            &[
                "client",
                "add",
                format!("ok{mode:o}").as_str(),
                "--ca-passphrase-file",
                pass.to_str().unwrap(),
            ],
        );
        assert!(output.status.success(), "{mode:o}: {}", stderr(&output));
    }
    let after: Vec<_> = files(&pki)
        .into_iter()
        .filter(|(p, ..)| !p.contains("ok600") && !p.contains("ok400"))
        .collect();
    let before: Vec<_> = before
        .into_iter()
        .filter(|(p, ..)| !p.contains("ok600"))
        .collect();
    assert_eq!(after.len(), before.len());
}

/// A passphrase file, or a PKI file, that is a device or a FIFO is refused at once: nothing
/// reads /dev/zero forever or waits for a FIFO's writer.
#[test]
fn devices_and_fifos_are_refused_at_once() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    let pass = work.path().join("pass");
    write_secret(&pass, "correct horse\n");
    assert!(
        init(
            &pki,
            &[
                "--host",
                "docker.example.com",
                "--client",
                "alice,bob",
                "--ca-passphrase-file",
                pass.to_str().unwrap()
            ]
        )
        .status
        .success()
    );
    let fifo = work.path().join("fifo");
    mkfifo(&fifo);
    let fifo_s = fifo.to_str().unwrap();
    for file in ["/dev/zero", "/dev/urandom", fifo_s] {
        for args in [
            &["client", "add", "carol"][..],
            &["rotate", "--all"],
            &["rotate", "--ca"],
        ] {
            let mut args = args.to_vec();
            args.extend(["--ca-passphrase-file", file]);
            let output = run_within(&pki, &args, 20);
            assert_eq!(
                output.status.code(),
                Some(2),
                "{args:?}: {}",
                stderr(&output)
            );
            let err = stderr(&output);
            assert!(err.starts_with(&format!("error: {file} is ")), "{err}");
            assert!(err.contains("not a regular file"), "{err}");
        }
        // init refuses it before making anything.
        let fresh = work.path().join("fresh");
        let output = dockertls()
            .arg("--dir")
            .arg(&fresh)
            .args([
                "init",
                "--host",
                "docker.example.com",
                "--ca-passphrase-file",
                file,
            ])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        assert!(!fresh.exists());
    }

    // A client's cert.pem that is a link to /dev/zero: never followed (the store opens every
    // file with O_NOFOLLOW), reported at once as unreadable, naming the link; nothing read
    // from it. (The trust check stats folders; a file is checked as it is read: issue 12.)
    let alice = pki.join("clients/alice/cert.pem");
    std::fs::remove_file(&alice).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &alice).unwrap();
    let output = run_within(&pki, &["client", "list", "--format", "json"], 20);
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let row = &json["clients"][0];
    assert_eq!(row["status"], "unreadable", "{row}");
    assert!(
        row["error"]
            .as_str()
            .unwrap()
            .contains("clients/alice/cert.pem is a symbolic link"),
        "{row}"
    );
    // env reads it: refused, naming the link.
    let output = run_within(&pki, &["env", "alice"], 20);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("clients/alice/cert.pem is a symbolic link"),
        "{}",
        stderr(&output)
    );
    // A cert.pem that is a FIFO: client list reports it as unreadable, at once.
    std::fs::remove_file(&alice).unwrap();
    mkfifo(&alice);
    let bob = pki.join("clients/bob/cert.pem");
    std::fs::remove_file(&bob).unwrap();
    mkfifo(&bob);
    let output = run_within(&pki, &["client", "list", "--format", "json"], 20);
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    for row in json["clients"].as_array().unwrap().iter().take(2) {
        assert_eq!(row["status"], "unreadable", "{row}");
        assert!(
            row["error"]
                .as_str()
                .unwrap()
                .contains("not a regular file"),
            "{row}"
        );
    }
    let output = run_within(&pki, &["client", "list"], 20);
    assert!(output.status.success(), "{}", stderr(&output));
    // rotate reads every selected certificate: refused, nothing changed.
    let before = files(&pki);
    let output = run_within(
        &pki,
        &[
            "rotate",
            "--client",
            "alice",
            "--ca-passphrase-file",
            pass.to_str().unwrap(),
        ],
        20,
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("not a regular file"),
        "{}",
        stderr(&output)
    );
    assert_eq!(files(&pki), before);
    // env reads the server certificate.
    let server = server_file(&pki, "server-cert.pem");
    std::fs::remove_file(&server).unwrap();
    mkfifo(&server);
    let output = run_within(&pki, &["env", "carol"], 20);
    assert_ne!(output.status.code(), Some(0));
    let output = run_within(&pki, &["env", "alice"], 20);
    assert_ne!(output.status.code(), Some(0));
    let output = run_within(&pki, &["env", "alice"], 20);
    assert!(
        stderr(&output).contains("not a regular file") || stderr(&output).contains("no client"),
        "{}",
        stderr(&output)
    );
}
