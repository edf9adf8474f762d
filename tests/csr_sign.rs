//! Issue 12: `sign` through the binary, and every command facing an entry whose key lives
//! elsewhere (client list, server list, verify, rotate, env).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

struct Pki {
    work: tempfile::TempDir,
    dir: PathBuf,
}

impl Pki {
    fn new() -> Pki {
        let work = private_tempdir();
        let dir = work.path().join("pki");
        init_ok(&dir, &["--host", "ca-side.example", "--client", "alice"]);
        Pki { work, dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Output {
        run_in(&self.dir, args)
    }

    fn ok(&self, args: &[&str]) -> String {
        ok_in(&self.dir, args)
    }

    /// `request` into a new folder `out`: its CSR's path.
    fn request(&self, args: &[&str], out: &str) -> PathBuf {
        let out = self.path(out);
        let output = dockertls()
            .arg("request")
            .args(args)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", streams(&output));
        let csr = if args[0] == "server" {
            "server.csr"
        } else {
            "client.csr"
        };
        out.join(csr)
    }
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn openssl() -> Option<PathBuf> {
    find_tool(
        "openssl",
        "CSRs from openssl req, certificates read by openssl x509 -text",
    )
}

#[test]
fn sign_takes_nothing_a_greedy_openssl_csr_asks_for_and_says_so() {
    let Some(openssl) = openssl() else { return };
    let pki = Pki::new();
    let csr = pki.path("greedy.csr");
    let status = Command::new(&openssl)
        .args([
            "req",
            "-new",
            "-nodes",
            "-newkey",
            "rsa:2048",
            "-subj",
            "/CN=evil.example/O=Evil",
        ])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "extendedKeyUsage=serverAuth,codeSigning"])
        .args(["-addext", "subjectAltName=DNS:evil.example,IP:203.0.113.7"])
        .arg("-keyout")
        .arg(pki.path("greedy.key"))
        .arg("-out")
        .arg(&csr)
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", streams(&status));
    let out = pki.ok(&[
        "sign",
        s(&csr),
        "--server",
        "web",
        "--host",
        "web.example",
        "--no-loopback",
    ]);
    for said in [
        "the CSR asked for the SANs: evil.example, 203.0.113.7",
        "not taken from the CSR: the subject CN=evil.example, O=Evil",
        "not taken from the CSR: the SANs evil.example, 203.0.113.7 (name them with --allow, or take the CSR's with --accept-csr-sans)",
        "not taken from the CSR: CA:TRUE",
        "not taken from the CSR: the extended key usage serverAuth, codeSigning",
        "CN=web.example, SANs: web.example",
        "RSA 2048 bits",
    ] {
        assert!(out.contains(said), "{said:?} not in:\n{out}");
    }
    let cert = pki.dir.join("servers/web/server-cert.pem");
    let text = Command::new(&openssl)
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&cert)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("CA:FALSE") && !text.contains("CA:TRUE"),
        "{text}"
    );
    assert!(
        !text.contains("Code Signing") && text.contains("TLS Web Server Authentication"),
        "{text}"
    );
    assert!(
        !text.contains("evil") && !text.contains("203.0.113.7") && !text.contains("Evil"),
        "{text}"
    );
    assert!(text.contains("DNS:web.example"), "{text}");
    let verify = Command::new(&openssl)
        .args(["verify", "-x509_strict", "-purpose", "sslserver", "-CAfile"])
        .arg(pki.dir.join("ca/ca.pem"))
        .arg(&cert)
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", streams(&verify));

    // With --accept-csr-sans (signing the same key's request again): its DNS and IP SANs, and
    // still nothing else.
    let out = pki.ok(&[
        "sign",
        s(&csr),
        "--server",
        "web",
        "--accept-csr-sans",
        "--no-loopback",
    ]);
    assert!(
        out.contains("taken from the CSR (--accept-csr-sans): evil.example"),
        "{out}"
    );
    let text = Command::new(&openssl)
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&cert)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("DNS:web.example, DNS:evil.example, IP Address:203.0.113.7"),
        "{text}"
    );
    assert!(
        text.contains("CA:FALSE") && !text.contains("Code Signing"),
        "{text}"
    );
    assert!(text.contains("Subject: CN = web.example"), "{text}");
}

#[test]
fn sign_bad_input_is_one_line_exit_2_and_changes_nothing() {
    let Some(openssl) = openssl() else { return };
    let pki = Pki::new();
    let good = pki.request(&["server", "--host", "web.example"], "host");
    pki.ok(&[
        "sign",
        s(&good),
        "--server",
        "keyless",
        "--host",
        "web.example",
    ]);
    let weak = pki.path("weak.csr");
    let made = Command::new(&openssl)
        .args([
            "req",
            "-new",
            "-nodes",
            "-newkey",
            "rsa:1024",
            "-subj",
            "/CN=x",
            "-keyout",
            "/dev/null",
            "-out",
        ])
        .arg(&weak)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", streams(&made));
    let der = pki.path("flipped.der");
    let mut bytes = {
        use rustls_pki_types::pem::PemObject;
        rustls_pki_types::CertificateSigningRequestDer::from_pem_slice(
            &std::fs::read(&good).unwrap(),
        )
        .unwrap()
        .as_ref()
        .to_vec()
    };
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&der, &bytes).unwrap();
    let huge = pki.path("huge.csr");
    std::fs::write(&huge, vec![b'A'; 70 * 1024]).unwrap();
    let fifo = pki.path("fifo.csr");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let g = s(&good);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["sign", s(&der), "--client", "bob"],
            "signature does not verify",
        ),
        (
            vec!["sign", s(&weak), "--client", "bob"],
            "an RSA key of 1024 bits",
        ),
        (
            vec!["sign", s(&huge), "--client", "bob"],
            "more than the 65536 bytes",
        ),
        (
            vec!["sign", "/dev/zero", "--client", "bob"],
            "a character device",
        ),
        (vec!["sign", s(&fifo), "--client", "bob"], "a FIFO"),
        (
            vec!["sign", "/no/such.csr", "--client", "bob"],
            "cannot read /no/such.csr",
        ),
        (
            vec!["sign", g, "--client", "alice"],
            "its key is in this PKI",
        ),
        (
            vec!["sign", g, "--server", "ca-side.example"],
            "its key is in this PKI",
        ),
        (vec!["sign", g, "--server", "new"], "sign needs --host"),
        (
            vec!["sign", g, "--server", "keyless", "--listen", "0.0.0.0:2377"],
            "keeps its daemon.json",
        ),
        (
            vec![
                "sign",
                g,
                "--server",
                "new",
                "--host",
                "h.example",
                "--listen",
                "nope",
            ],
            "--listen",
        ),
        (
            vec![
                "sign",
                g,
                "--server",
                "new",
                "--host",
                "h.example",
                "--install-dir",
                "etc/tls",
            ],
            "absolute path",
        ),
        (
            vec!["sign", g, "--server", "new", "--host", "https://h.example"],
            "is a URL",
        ),
        (
            vec!["sign", g, "--server", "../x", "--host", "h.example"],
            "one path component",
        ),
        (
            vec!["sign", g, "--client", "bob", "--days", "5000"],
            "a certificate cannot outlive its CA",
        ),
        (
            vec!["sign", g, "--client", "bob", "--days", "0"],
            "--days 0",
        ),
        (vec!["sign", g, "--client", "ALICE"], "differs only in case"),
        (
            vec!["sign", g, "--server", "KEYLESS", "--host", "h.example"],
            "differs only in case",
        ),
    ];
    for (args, expected) in cases {
        let before = tree(pki.work.path());
        let output = pki.run(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            streams(&output)
        );
        assert_one_error(&stderr, &format!("{args:?}"));
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_eq!(tree_diff(&before, &tree(pki.work.path())), "", "{args:?}");
    }
}

#[test]
fn keyless_entries_are_listed_verified_and_rotated_for_what_they_are() {
    let pki = Pki::new();
    let server_csr = pki.request(&["server", "--host", "web.example"], "host");
    let client_csr = pki.request(&["client", "bob"], "bob");
    pki.ok(&[
        "sign",
        s(&server_csr),
        "--server",
        "web",
        "--host",
        "web.example",
        "--days",
        "30",
    ]);
    pki.ok(&["sign", s(&client_csr), "--client", "bob", "--days", "30"]);

    let clients = pki.ok(&["client", "list"]);
    assert!(
        clients
            .lines()
            .any(|l| l.starts_with("bob ") && l.ends_with("ok (key elsewhere)")),
        "{clients}"
    );
    assert!(
        clients
            .lines()
            .any(|l| l.starts_with("alice ") && l.ends_with(" ok")),
        "{clients}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&pki.ok(&["client", "list", "--format", "json"])).unwrap();
    assert_eq!(json["clients"][1]["key"], "elsewhere", "{json}");
    let servers = pki.ok(&["server", "list"]);
    assert!(
        servers
            .lines()
            .any(|l| l.starts_with("web ") && l.ends_with("(key elsewhere)")),
        "{servers}"
    );

    // verify: what is there is checked, the absent key is not a failure.
    let verify = pki.run(&["verify", "--format", "json"]);
    assert_eq!(verify.status.code(), Some(0), "{}", streams(&verify));
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(report.contains("the key lives elsewhere"), "{report}");
    // ... and what is wrong with it still is: the SAN a client dials, and the chain.
    let wrong_host = pki.run(&[
        "verify",
        s(&pki.dir.join("servers/web")),
        "--host",
        "other.example",
    ]);
    assert_eq!(
        wrong_host.status.code(),
        Some(2),
        "{}",
        streams(&wrong_host)
    );
    let other = pki.path("other");
    init_ok(&other, &["--host", "x.example"]);
    let ca = pki.dir.join("servers/web/ca.pem");
    let mut perms = std::fs::metadata(&ca).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    std::fs::set_permissions(&ca, perms.clone()).unwrap();
    let saved = std::fs::read(&ca).unwrap();
    std::fs::copy(other.join("ca/ca.pem"), &ca).unwrap();
    let chain = pki.run(&["verify"]);
    assert_eq!(chain.status.code(), Some(2), "{}", streams(&chain));
    assert!(
        String::from_utf8_lossy(&chain.stdout).contains("servers/web"),
        "{}",
        streams(&chain)
    );
    std::fs::write(&ca, saved).unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o444);
    std::fs::set_permissions(&ca, perms).unwrap();

    // env: the lines, and where the key must be.
    let env = pki.run(&["env", "bob", "--server", "web"]);
    assert!(env.status.success(), "{}", streams(&env));
    let stderr = String::from_utf8_lossy(&env.stderr);
    assert!(
        stderr.contains("warning: client bob's key lives where it was made"),
        "{stderr}"
    );

    // rotate, 25 days on (both are due): says which request and sign to run, exit 1, writes
    // nothing for them (no key, no new certificate).
    let Some(faketime) = common::faketime_tool("runs rotate in the future") else {
        return;
    };
    let before = tree(&pki.dir.join("servers/web"));
    let bob_before = tree(&pki.dir.join("clients/bob"));
    let rotate = Command::new(&faketime)
        .args(["-f", "+25d"])
        .arg(env!("CARGO_BIN_EXE_dockertls"))
        .arg("--dir")
        .arg(&pki.dir)
        .arg("rotate")
        .output()
        .unwrap();
    assert_eq!(rotate.status.code(), Some(1), "{}", streams(&rotate));
    let stderr = String::from_utf8_lossy(&rotate.stderr);
    assert!(
        stderr.contains("server web (expires on")
            && stderr.contains("dockertls request server --host web.example --out DIR")
            && stderr.contains("sign DIR/server.csr --server web"),
        "{stderr}"
    );
    assert!(
        stderr.contains("client bob (expires on")
            && stderr.contains("sign DIR/client.csr --client bob"),
        "{stderr}"
    );
    assert_eq!(tree_diff(&before, &tree(&pki.dir.join("servers/web"))), "");
    assert_eq!(
        tree_diff(&bob_before, &tree(&pki.dir.join("clients/bob"))),
        ""
    );
    // Nothing due today: exit 0.
    let today = pki.run(&["rotate"]);
    assert_eq!(today.status.code(), Some(0), "{}", streams(&today));

    // rotate --ca would strand them: refused, nothing changed.
    let before = files(&pki.dir);
    let ca = pki.run(&["rotate", "--ca"]);
    assert_eq!(ca.status.code(), Some(2), "{}", streams(&ca));
    assert_one_error(&String::from_utf8_lossy(&ca.stderr), "rotate --ca");
    assert_eq!(tree_diff(&before, &files(&pki.dir)), "");
}

#[test]
fn a_server_folder_left_by_a_killed_run_goes_to_the_backup() {
    let pki = Pki::new();
    let csr = pki.request(&["server", "--host", "web.example"], "host");
    // servers/web without a state entry: what a run killed before its commit point leaves.
    let leftover = pki.dir.join("servers/web");
    std::fs::create_dir(&leftover).unwrap();
    std::fs::write(leftover.join("half.pem"), "half").unwrap();
    pki.ok(&["sign", s(&csr), "--server", "web", "--host", "web.example"]);
    assert!(!leftover.join("half.pem").exists());
    assert!(leftover.join("server-cert.pem").exists());
    let kept: Vec<String> = tree(&pki.dir.join("backup"))
        .into_iter()
        .map(|(path, _, _)| path)
        .collect();
    assert!(
        kept.iter().any(|p| p.ends_with("servers/web/half.pem")),
        "{kept:?}"
    );
}

#[test]
fn signing_a_keyless_server_again_keeps_its_sans_unless_told_otherwise() {
    let pki = Pki::new();
    let csr = pki.request(&["server", "--host", "web.example"], "host");
    let args = ["sign", s(&csr), "--server", "web"];
    let made = [
        "--host",
        "web.example",
        "--allow",
        "10.0.0.7,web.lan",
        "--no-loopback",
    ];
    pki.ok(&[&args[..], &made[..]].concat());
    // Again without --host or --allow (a renewal): the same SANs.
    let renewed = pki.ok(&args);
    assert!(
        renewed.contains("SANs: web.example, 10.0.0.7, web.lan\n"),
        "{renewed}"
    );
    // With --allow: the SANs named (and 127.0.0.1, as for a new server).
    let again = pki.ok(&[&args[..], &["--allow", "10.0.0.8"]].concat());
    assert!(
        again.contains("SANs: web.example, 10.0.0.8, 127.0.0.1\n"),
        "{again}"
    );
}
