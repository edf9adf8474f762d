//! Independent verifiers judge what `init` writes: OpenSSL's strict chain verification and
//! pkilint's RFC 5280 lints, for every key type. (Python's VERIFY_X509_STRICT, what docker-py
//! uses, is exercised against a real dockerd in dockerd_e2e.rs.)

mod common;

use std::path::Path;
use std::process::Command;

use common::{KEY_TYPES, find_tool, init_ok};

fn run(program: &Path, args: &[&str], cwd: &Path) -> (bool, String) {
    let output = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn openssl_strict_verification_accepts_every_key_type() {
    let Some(openssl) = find_tool("openssl", "install openssl to cross-check certificates") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let other = work.path().join("other");
    init_ok(&other, &["--host", "example.com"]);
    for key_type in KEY_TYPES {
        let dir = work.path().join(key_type);
        init_ok(
            &dir,
            &[
                "--host",
                "example.com",
                "--allow",
                "192.168.1.1,2001:db8::7,docker.internal",
                "--client",
                "alice",
                "--key-type",
                key_type,
            ],
        );
        let strict = [
            "verify",
            "-x509_strict",
            "-auth_level",
            "2",
            "-CAfile",
            "ca/ca.pem",
        ];
        let check = |extra: &[&str], cert: &str, expect_ok: bool| {
            let args: Vec<&str> = strict.iter().chain(extra).chain([&cert]).copied().collect();
            let (ok, text) = run(&openssl, &args, &dir);
            assert_eq!(ok, expect_ok, "{key_type}: openssl {args:?}: {text}");
        };
        for (flag, name) in [
            ("-verify_hostname", "example.com"),
            ("-verify_hostname", "docker.internal"),
            ("-verify_ip", "192.168.1.1"),
            ("-verify_ip", "127.0.0.1"),
            ("-verify_ip", "2001:db8::7"),
        ] {
            check(
                &["-purpose", "sslserver", flag, name],
                "servers/example.com/server-cert.pem",
                true,
            );
        }
        // A name or purpose the certificate was not made for is refused: the checks bite.
        check(
            &[
                "-purpose",
                "sslserver",
                "-verify_hostname",
                "other.example.com",
            ],
            "servers/example.com/server-cert.pem",
            false,
        );
        check(
            &["-purpose", "sslserver", "-verify_ip", "192.168.1.2"],
            "servers/example.com/server-cert.pem",
            false,
        );
        check(
            &["-purpose", "sslclient"],
            "servers/example.com/server-cert.pem",
            false,
        );
        check(&["-purpose", "sslclient"], "clients/alice/cert.pem", true);
        check(&["-purpose", "sslserver"], "clients/alice/cert.pem", false);
        // Each folder's ca.pem is the CA; another init's CA does not verify these leaves.
        for ca_copy in ["servers/example.com/ca.pem", "clients/alice/ca.pem"] {
            assert_eq!(
                std::fs::read(dir.join(ca_copy)).unwrap(),
                std::fs::read(dir.join("ca/ca.pem")).unwrap()
            );
        }
        let other_ca = other.join("ca/ca.pem");
        let (ok, _) = run(
            &openssl,
            &[
                "verify",
                "-CAfile",
                other_ca.to_str().unwrap(),
                "servers/example.com/server-cert.pem",
            ],
            &dir,
        );
        assert!(
            !ok,
            "{key_type}: another CA verified this server certificate"
        );

        // Keys are unencrypted PKCS#8 and belong to their certificates.
        for (cert, key) in [
            ("ca/ca.pem", "ca/ca-key.pem"),
            (
                "servers/example.com/server-cert.pem",
                "servers/example.com/server-key.pem",
            ),
            ("clients/alice/cert.pem", "clients/alice/key.pem"),
        ] {
            let pem = std::fs::read_to_string(dir.join(key)).unwrap();
            assert!(
                pem.starts_with("-----BEGIN PRIVATE KEY-----"),
                "{key_type} {key}"
            );
            let (ok, from_key) = run(
                &openssl,
                &["pkey", "-in", key, "-pubout", "-passin", "pass:"],
                &dir,
            );
            assert!(ok, "{key_type} {key}: {from_key}");
            let (ok, from_cert) = run(&openssl, &["x509", "-in", cert, "-noout", "-pubkey"], &dir);
            assert!(ok, "{from_cert}");
            assert_eq!(
                from_key, from_cert,
                "{key_type}: {key} does not match {cert}"
            );
        }
    }
}

#[test]
fn pkilint_finds_no_rfc5280_problem() {
    let Some(python) = find_tool("python3", "pkilint is a Python package") else {
        return;
    };
    let importable = Command::new(&python)
        .args(["-c", "import pkilint"])
        .output()
        .unwrap();
    if !importable.status.success() {
        let message = "pkilint is not installed: python3 -m pip install pkilint";
        assert!(!common::peers_required(), "{message}");
        eprintln!("SKIPPED: {message}");
        return;
    }
    let lint = |dir: &Path, tool: &str, certs: &[&str]| {
        let module = format!("pkilint.bin.{tool}");
        let mut args = vec!["-m", module.as_str(), "lint", "-s", "WARNING"];
        args.extend(certs);
        run(&python, &args, dir)
    };
    let work = tempfile::tempdir().unwrap();
    for key_type in KEY_TYPES {
        let dir = work.path().join(key_type);
        // A multi-label host: pkilint reports single-label names such as localhost as invalid
        // domain syntax, which is a WebPKI concern, not Docker's.
        init_ok(
            &dir,
            &[
                "--host",
                "docker.example.com",
                "--allow",
                "10.0.0.5,2001:db8::5",
                "--key-type",
                key_type,
            ],
        );
        for cert in [
            "ca/ca.pem",
            "servers/docker.example.com/server-cert.pem",
            "clients/client/cert.pem",
        ] {
            let (ok, text) = lint(&dir, "lint_pkix_cert", &[cert]);
            assert!(ok && text.trim().is_empty(), "{key_type} {cert}: {text}");
        }
        for leaf in [
            "servers/docker.example.com/server-cert.pem",
            "clients/client/cert.pem",
        ] {
            let (ok, text) = lint(
                &dir,
                "lint_pkix_signer_signee_cert_chain",
                &["ca/ca.pem", leaf],
            );
            assert!(
                ok && text.trim().is_empty(),
                "{key_type} chain to {leaf}: {text}"
            );
        }
    }
}
