//! `probe` against real dockerd instances, each set up with one fault, and without a daemon.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{Dockerd, dockertls, find_tool, free_port, init_ok};

fn probe(pki: &Path, args: &[&str]) -> Output {
    dockertls()
        .arg("--dir")
        .arg(pki)
        .arg("probe")
        .args(args)
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CERT_PATH")
        .output()
        .unwrap()
}

/// The probe's JSON and the status of each check.
fn outcome(
    output: &Output,
) -> (
    serde_json::Value,
    std::collections::BTreeMap<String, (String, String)>,
) {
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let checks = common::check_map(&document["checks"]);
    (document, checks)
}

#[test]
fn a_good_setup_is_reported_with_its_facts() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "localhost", "--client", "alice"]);
    let Some(daemon) = Dockerd::start(&pki) else {
        return;
    };
    let endpoint = format!("tcp://127.0.0.1:{}", daemon.port);
    let output = probe(&pki, &[&endpoint, "--client", "alice", "--format", "json"]);
    let (document, checks) = outcome(&output);
    assert_eq!(output.status.code(), Some(0), "{document:#}");
    assert_eq!(document["tls_version"], "TLS 1.3");
    assert!(
        document["daemon"]["version"]
            .as_str()
            .unwrap()
            .starts_with("20.10"),
        "{document:#}"
    );
    assert!(document["daemon"]["api_version"].as_str().is_some());
    assert_eq!(
        document["server_certificate"]["sans"],
        serde_json::json!(["localhost", "127.0.0.1"])
    );
    assert_eq!(checks["client-auth"].0, "ok");
    // The text form names the same facts; DOCKER_HOST and DOCKER_CERT_PATH are the defaults.
    let output = dockertls()
        .arg("probe")
        .env("DOCKER_HOST", format!("tcp://localhost:{}", daemon.port))
        .env("DOCKER_CERT_PATH", pki.join("clients/alice"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains("TLS 1.3")
            && text.contains("SANs      localhost, 127.0.0.1")
            && text.contains("daemon    Docker 20.10"),
        "{text}"
    );
}

#[test]
fn each_fault_gets_its_diagnosis() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "localhost", "--no-loopback"]);
    let other = work.path().join("other");
    init_ok(&other, &["--host", "localhost"]);
    let Some(daemon) = Dockerd::start(&pki) else {
        return;
    };
    let by_name = format!("tcp://localhost:{}", daemon.port);
    let by_ip = format!("tcp://127.0.0.1:{}", daemon.port);
    assert_eq!(
        probe(&pki, &[&by_name, "--client", "client"]).status.code(),
        Some(0)
    );

    // The dialled address is not among the SANs.
    let output = probe(&pki, &[&by_ip, "--client", "client", "--format", "json"]);
    let (_, checks) = outcome(&output);
    assert_eq!(output.status.code(), Some(2));
    let message = &checks["server-certificate"].1;
    assert!(
        message.contains("127.0.0.1 is not in the daemon certificate's SANs (localhost)"),
        "{message}"
    );
    assert!(
        message.contains("rotate --server --allow 127.0.0.1"),
        "{message}"
    );
    // And that command is the fix: after it and a restart, the IP is accepted.
    let output = dockertls()
        .arg("--dir")
        .arg(&pki)
        .args(["rotate", "--server", "--allow", "127.0.0.1"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    drop(daemon);
    let Some(daemon) = Dockerd::start(&pki) else {
        return;
    };
    let by_ip = format!("tcp://127.0.0.1:{}", daemon.port);
    let by_name = format!("tcp://localhost:{}", daemon.port);
    assert_eq!(
        probe(&pki, &[&by_ip, "--client", "client"]).status.code(),
        Some(0)
    );

    // ca.pem of another PKI: the daemon's certificate is not signed by it.
    let output = probe(
        &pki,
        &[
            &by_name,
            "--cert-path",
            other.join("clients/client").to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    let (_, checks) = outcome(&output);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        checks["server-certificate"]
            .1
            .contains("not signed by the CA in"),
        "{checks:?}"
    );

    // A client certificate from another CA: dockerd refuses it, and the local files say why.
    let mixed = work.path().join("mixed");
    std::fs::create_dir(&mixed).unwrap();
    std::fs::copy(pki.join("ca/ca.pem"), mixed.join("ca.pem")).unwrap();
    std::fs::copy(
        other.join("clients/client/cert.pem"),
        mixed.join("cert.pem"),
    )
    .unwrap();
    std::fs::copy(other.join("clients/client/key.pem"), mixed.join("key.pem")).unwrap();
    let output = probe(
        &pki,
        &[
            &by_name,
            "--cert-path",
            mixed.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    let (_, checks) = outcome(&output);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(checks["tls"].0, "fail");
    assert!(
        checks["client-certificate"]
            .1
            .contains("not by the CA in ca.pem"),
        "{checks:?}"
    );

    // Nothing listening.
    let output = probe(
        &pki,
        &[
            &format!("tcp://127.0.0.1:{}", free_port()),
            "--client",
            "client",
            "--format",
            "json",
        ],
    );
    let (_, checks) = outcome(&output);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        checks["connect"].1.contains("connection refused"),
        "{checks:?}"
    );
}

#[test]
fn an_expired_or_expiring_server_certificate_is_named() {
    let Some(faketime) = find_tool("faketime", "the expired certificate is made under faketime")
    else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    let status = Command::new(faketime)
        .arg("-f")
        .arg("-3d")
        .arg(env!("CARGO_BIN_EXE_dockertls"))
        .arg("--dir")
        .arg(&pki)
        .args(["init", "--host", "localhost", "--days", "1"])
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let Some(daemon) = Dockerd::start(&pki) else {
        return;
    };
    let output = probe(
        &pki,
        &[
            &format!("tcp://localhost:{}", daemon.port),
            "--client",
            "client",
            "--format",
            "json",
        ],
    );
    let (_, checks) = outcome(&output);
    assert_eq!(output.status.code(), Some(2));
    let message = &checks["server-certificate"].1;
    assert!(
        message.contains("expired")
            && message.contains("restart dockerd")
            && message.contains("clocks"),
        "{message}"
    );
    drop(daemon);

    let soon = work.path().join("soon");
    init_ok(&soon, &["--host", "localhost", "--days", "10"]);
    let Some(daemon) = Dockerd::start(&soon) else {
        return;
    };
    let output = probe(
        &soon,
        &[
            &format!("tcp://localhost:{}", daemon.port),
            "--client",
            "client",
            "--format",
            "json",
        ],
    );
    let (_, checks) = outcome(&output);
    assert_eq!(output.status.code(), Some(1), "{checks:?}");
    assert!(
        checks["server-certificate"].1.contains("expires in 9 days"),
        "{checks:?}"
    );
}

#[test]
fn plain_http_and_missing_client_verification_are_failures() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "localhost"]);

    // No tls/tlsverify: dockerd serves the API over plain HTTP.
    let Some(daemon) = Dockerd::start_with(&pki, |config| {
        let map = config.as_object_mut().unwrap();
        for key in ["tls", "tlsverify", "tlscacert", "tlscert", "tlskey"] {
            map.remove(key);
        }
    }) else {
        return;
    };
    let output = probe(
        &pki,
        &[
            &format!("tcp://localhost:{}", daemon.port),
            "--client",
            "client",
            "--format",
            "json",
        ],
    );
    let (_, checks) = outcome(&output);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        checks["tls"].1.contains("plain HTTP") && checks["tls"].1.contains("root"),
        "{checks:?}"
    );
    drop(daemon);

    // TLS, but tlsverify false and no CA: anyone gets in.
    let Some(daemon) = Dockerd::start_with(&pki, |config| {
        config["tlsverify"] = serde_json::json!(false);
        config.as_object_mut().unwrap().remove("tlscacert");
    }) else {
        return;
    };
    let output = probe(
        &pki,
        &[
            &format!("tcp://localhost:{}", daemon.port),
            "--client",
            "client",
            "--format",
            "json",
        ],
    );
    let (_, checks) = outcome(&output);
    assert_eq!(output.status.code(), Some(2), "{checks:?}");
    assert_eq!(checks["api"].0, "ok");
    assert_eq!(checks["client-auth"].0, "fail");
    assert!(
        checks["client-auth"]
            .1
            .contains("anyone who reaches the port is root"),
        "{checks:?}"
    );
}

#[test]
fn unusable_client_files_and_bad_arguments() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "localhost", "--client", "alice,bob"]);
    let endpoint = format!("tcp://127.0.0.1:{}", free_port());
    // A key that does not match its certificate.
    let swapped = work.path().join("swapped");
    std::fs::create_dir(&swapped).unwrap();
    for file in ["ca.pem", "cert.pem"] {
        std::fs::copy(pki.join("clients/alice").join(file), swapped.join(file)).unwrap();
    }
    std::fs::copy(pki.join("clients/bob/key.pem"), swapped.join("key.pem")).unwrap();
    let (_, checks) = outcome(&probe(
        &pki,
        &[
            &endpoint,
            "--cert-path",
            swapped.to_str().unwrap(),
            "--format",
            "json",
        ],
    ));
    assert!(
        checks["client-files"].1.contains("does not belong to"),
        "{checks:?}"
    );
    // An encrypted key, when openssl can make one.
    if let Some(openssl) = find_tool("openssl", "openssl encrypts a key for this test") {
        let encrypted = work.path().join("encrypted");
        std::fs::create_dir(&encrypted).unwrap();
        for file in ["ca.pem", "cert.pem"] {
            std::fs::copy(pki.join("clients/alice").join(file), encrypted.join(file)).unwrap();
        }
        let status = Command::new(openssl)
            .args(["pkey", "-aes256", "-passout", "pass:x", "-in"])
            .arg(pki.join("clients/alice/key.pem"))
            .arg("-out")
            .arg(encrypted.join("key.pem"))
            .status()
            .unwrap();
        assert!(status.success());
        let output = probe(
            &pki,
            &[
                &endpoint,
                "--cert-path",
                encrypted.to_str().unwrap(),
                "--format",
                "json",
            ],
        );
        let (_, checks) = outcome(&output);
        assert_eq!(output.status.code(), Some(2));
        assert!(checks["client-files"].1.contains("encrypted"), "{checks:?}");
    }
    // Could not run: 3.
    for args in [
        vec![],
        vec!["unix:///var/run/docker.sock"],
        vec![endpoint.as_str(), "--client", "carol"],
        vec![endpoint.as_str(), "--timeout", "0"],
        vec![endpoint.as_str(), "--bogus"],
        vec![endpoint.as_str(), "--format", "xml"],
    ] {
        let output = probe(&pki, &args);
        assert_eq!(
            output.status.code(),
            Some(3),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(String::from_utf8_lossy(&output.stderr).starts_with("error: "));
    }
}
