//! End to end with real peers: a private dockerd started from the daemon.json that `init`
//! wrote, and the docker CLI using a generated client folder. Skips visibly without dockerd;
//! fails instead when DOCKERTLS_REQUIRE_DOCKERD=1 (CI).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Dockerd, docker_version, find_tool, init_ok};

/// The docker CLIs to try: the one on PATH, and Debian's 20.10 if it is a different binary.
fn docker_clis() -> Vec<PathBuf> {
    let Some(first) = find_tool("docker", "install docker.io (it brings the docker CLI)") else {
        return Vec::new();
    };
    let mut clis = vec![first.clone()];
    let debian = PathBuf::from("/usr/bin/docker");
    if debian.exists() && std::fs::canonicalize(&debian).ok() != std::fs::canonicalize(&first).ok()
    {
        clis.push(debian);
    }
    clis
}

fn accepted(docker: &Path, host: &str, cert_path: &Path, daemon: &Dockerd) {
    let output = docker_version(docker, host, cert_path);
    assert!(
        output.status.success(),
        "{} refused with {}: {}\ndockerd log:\n{}",
        docker.display(),
        cert_path.display(),
        String::from_utf8_lossy(&output.stderr),
        daemon.log()
    );
    assert!(!String::from_utf8_lossy(&output.stdout).trim().is_empty());
}

/// What a plain-HTTP client gets from the TLS port: no API answer.
fn plain_http_response(port: u16) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ =
        stream.write_all(b"GET /_ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

fn end_to_end(key_type: &str) {
    let clis = docker_clis();
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(
        &pki,
        &[
            "--host",
            "localhost",
            "--allow",
            "::1",
            "--client",
            "alice,bob",
            "--key-type",
            key_type,
        ],
    );
    let Some(daemon) = Dockerd::start(&pki) else {
        return;
    };
    if clis.is_empty() {
        return;
    }
    let by_ip = format!("tcp://127.0.0.1:{}", daemon.port);
    let by_name = format!("tcp://localhost:{}", daemon.port);

    for docker in &clis {
        // Every client folder works as DOCKER_CERT_PATH, dialled by IP SAN and by DNS SAN.
        accepted(docker, &by_ip, &pki.join("clients/alice"), &daemon);
        accepted(docker, &by_name, &pki.join("clients/bob"), &daemon);
    }

    let Some(python) = find_tool(
        "python3",
        "the docker-py-like strict client is a Python script",
    ) else {
        return;
    };
    let client = |host: &str, files: &[PathBuf]| {
        let output = Command::new(&python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/tls_client.py"))
            .arg(host)
            .arg(daemon.port.to_string())
            .args(files)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let ca = pki.join("clients/alice/ca.pem");
    // Python's VERIFY_X509_STRICT (docker-py) accepts the chain, by IP and by name.
    for host in ["127.0.0.1", "localhost", "::1"] {
        let files = [
            ca.clone(),
            pki.join("clients/alice/cert.pem"),
            pki.join("clients/alice/key.pem"),
        ];
        assert_eq!(
            client(host, &files),
            (Some(0), String::new()),
            "strict client via {host}"
        );
    }
    // No client certificate: dockerd refuses the connection.
    let (code, message) = client("127.0.0.1", std::slice::from_ref(&ca));
    assert_eq!(
        code,
        Some(1),
        "a client without a certificate was let in: {message}"
    );
    // A client certificate from another init (another CA) is refused by dockerd.
    let other = work.path().join("other");
    init_ok(&other, &["--host", "localhost", "--key-type", key_type]);
    let files = [
        ca.clone(),
        other.join("clients/client/cert.pem"),
        other.join("clients/client/key.pem"),
    ];
    let (code, message) = client("127.0.0.1", &files);
    assert_eq!(
        code,
        Some(1),
        "a client of another CA was let in: {message}"
    );
    // And the docker CLI with that other client folder fails too (its CA does not know us).
    let output = docker_version(&clis[0], &by_ip, &other.join("clients/client"));
    assert!(
        !output.status.success(),
        "docker CLI with another PKI's folder was let in"
    );

    // Plain HTTP to the TLS port gets no API answer.
    let response = plain_http_response(daemon.port);
    assert!(!response.contains("Api-Version"), "{response}");
    assert!(!response.ends_with("OK"), "{response}");
}

#[test]
fn ecdsa_p256_pki_works_with_real_dockerd() {
    end_to_end("ecdsa-p256");
}

#[test]
fn ecdsa_p384_pki_works_with_real_dockerd() {
    end_to_end("ecdsa-p384");
}

#[test]
fn ed25519_pki_works_with_real_dockerd() {
    end_to_end("ed25519");
}

#[test]
fn rsa_2048_pki_works_with_real_dockerd() {
    end_to_end("rsa-2048");
}

#[test]
fn rsa_3072_pki_works_with_real_dockerd() {
    end_to_end("rsa-3072");
}

#[test]
fn rsa_4096_pki_works_with_real_dockerd() {
    end_to_end("rsa-4096");
}
