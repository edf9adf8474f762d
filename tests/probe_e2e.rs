//! `probe` against real dockerd instances, each set up with one fault, and without a daemon.

mod common;
#[path = "support/refusal.rs"]
mod refusal;

use std::path::Path;
use std::process::{Command, Output};

use common::server_file;
use common::{Dockerd, dockertls, find_tool, init_ok, refused_port};

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
    // Whether anonymous clients get in does not depend on the name dialled: still checked.
    assert_eq!(checks["client-auth"].0, "ok", "{checks:?}");
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
    assert_eq!(checks["client-auth"].0, "ok", "{checks:?}");

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
    assert!(
        checks["tls"]
            .1
            .contains("the daemon refused the client certificate (TLS alert "),
        "{checks:?}"
    );

    // Nothing listening.
    let (_held, port) = refused_port();
    let output = probe(
        &pki,
        &[
            &format!("tcp://127.0.0.1:{port}"),
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
    let Some(faketime) = common::faketime_tool("the expired certificate is made under faketime")
    else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    let status = Command::new(&faketime)
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

    // The renewal rule of rotate and verify (issue 15): a fresh 10-day certificate is not
    // due; 8 days later (the probe's clock moved by faketime), with a fifth left, it is.
    let soon = work.path().join("soon");
    init_ok(&soon, &["--host", "localhost", "--days", "10"]);
    let Some(daemon) = Dockerd::start(&soon) else {
        return;
    };
    let endpoint = format!("tcp://localhost:{}", daemon.port);
    let args = ["probe", &endpoint, "--client", "client", "--format", "json"];
    let output = probe(&soon, &args[1..]);
    let (_, checks) = outcome(&output);
    assert_eq!(output.status.code(), Some(0), "{checks:?}");
    assert!(
        checks["server-certificate"]
            .1
            .contains("valid for 9 more days"),
        "{checks:?}"
    );
    let output = Command::new(faketime)
        .arg("-f")
        .arg("+8d")
        .arg(env!("CARGO_BIN_EXE_dockertls"))
        .arg("--dir")
        .arg(&soon)
        .args(args)
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CERT_PATH")
        .output()
        .unwrap();
    let (_, checks) = outcome(&output);
    assert_eq!(output.status.code(), Some(1), "{checks:?}");
    let message = &checks["server-certificate"].1;
    assert!(
        message.contains("due for renewal since") && message.contains("dockertls rotate"),
        "{message}"
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
    // The handshake is not said to have used the client certificate: it was never asked for.
    assert!(
        checks["tls"]
            .1
            .ends_with("handshake; the daemon did not ask for a client certificate"),
        "{checks:?}"
    );
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
    let (_held, port) = refused_port();
    let endpoint = format!("tcp://127.0.0.1:{port}");
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
        refusal::assert_refusal(&output.stderr);
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile servers, in this test process: no daemon needed. Each handles every connection on a
// thread of its own, for as long as the test process lives.

mod hostile {
    use crate::common::server_file;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::path::Path;
    use std::process::{Command, Output, Stdio};
    use std::sync::Arc;
    use std::thread;
    use std::time::{Duration, Instant};

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use rustls::server::WebPkiClientVerifier;
    use rustls::{RootCertStore, ServerConfig, ServerConnection, StreamOwned};

    /// Listens on 127.0.0.1 and hands each connection to `handle`; returns the port.
    pub fn serve(handle: impl Fn(TcpStream) + Send + Sync + 'static) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = Arc::new(handle);
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let handle = handle.clone();
                thread::spawn(move || handle(stream));
            }
        });
        port
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::aws_lc_rs::default_provider())
    }

    /// A TLS server with the PKI's real server certificate; with `client_auth`, it demands a
    /// client certificate from the PKI's CA, as dockerd with tlsverify does.
    pub fn daemon_tls(pki: &Path, client_auth: bool) -> Arc<ServerConfig> {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(server_file(pki, "server-cert.pem"))
                .unwrap()
                .map(Result::unwrap)
                .collect();
        let key = PrivateKeyDer::from_pem_file(server_file(pki, "server-key.pem")).unwrap();
        tls_config(
            chain,
            key,
            client_auth.then(|| server_file(pki, "ca.pem")).as_deref(),
        )
    }

    pub fn tls_config(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        client_ca: Option<&Path>,
    ) -> Arc<ServerConfig> {
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_ca {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_file_iter(ca).unwrap() {
                    roots.add(cert.unwrap()).unwrap();
                }
                builder.with_client_cert_verifier(
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                        .build()
                        .unwrap(),
                )
            }
            None => builder.with_no_client_auth(),
        };
        Arc::new(builder.with_single_cert(chain, key).unwrap())
    }

    /// Serves TLS with `config`; after a request's head, `answer` gets the path and the stream.
    pub fn serve_tls(
        config: Arc<ServerConfig>,
        answer: impl Fn(&str, &mut StreamOwned<ServerConnection, TcpStream>) + Send + Sync + 'static,
    ) -> u16 {
        serve(move |stream| {
            let conn = ServerConnection::new(config.clone()).unwrap();
            let mut tls = StreamOwned::new(conn, stream);
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match tls.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => return, // refused handshake (no client certificate) or closed
                }
            }
            let head = String::from_utf8_lossy(&head);
            let path = head.split(' ').nth(1).unwrap_or("").to_string();
            answer(&path, &mut tls);
        })
    }

    /// What one run of the binary did, and how long and how much memory it took.
    pub struct Run {
        pub output: Output,
        pub elapsed: Duration,
        /// Peak resident memory in KiB (VmHWM), as last sampled.
        pub peak_kib: u64,
    }

    /// Runs the command, killing it after `limit` (a hung probe must fail the test, not hang it).
    pub fn run_bounded(mut command: Command, limit: Duration) -> Run {
        let work = tempfile::tempdir().unwrap();
        let out = std::fs::File::create(work.path().join("out")).unwrap();
        let err = std::fs::File::create(work.path().join("err")).unwrap();
        let start = Instant::now();
        let mut child = command
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap();
        let mut peak_kib = 0;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            let status =
                std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
            if let Some(kib) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak_kib = peak_kib.max(kib);
            }
            if start.elapsed() > limit {
                child.kill().unwrap();
                child.wait().unwrap();
                panic!("still running after {limit:?}: killed");
            }
            thread::sleep(Duration::from_millis(20));
        };
        Run {
            elapsed: start.elapsed(),
            peak_kib,
            output: Output {
                status,
                stdout: std::fs::read(work.path().join("out")).unwrap(),
                stderr: std::fs::read(work.path().join("err")).unwrap(),
            },
        }
    }

    /// Raw control characters that must never reach a terminal: ESC, CSI in its 8-bit form
    /// (UTF-8 C2 9B), and the bidi override U+202E.
    pub fn assert_no_raw_controls(bytes: &[u8], what: &str) {
        let text = String::from_utf8_lossy(bytes);
        assert!(
            !bytes.contains(&0x1b)
                && !text.contains('\u{9b}')
                && !text.contains('\u{202e}')
                && !text.contains('\r'),
            "{what} carries raw control characters: {text:?}"
        );
    }
}

use std::io::{Read, Write};
use std::time::Duration;

use hostile::{assert_no_raw_controls, daemon_tls, run_bounded, serve, serve_tls};

/// `probe ENDPOINT --client client --timeout 2 [--format json]`, killed after 15 s.
fn probe_hostile(pki: &Path, endpoint: &str, json: bool) -> hostile::Run {
    let mut command = dockertls();
    command
        .arg("--dir")
        .arg(pki)
        .args(["probe", endpoint, "--client", "client", "--timeout", "2"])
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CERT_PATH");
    if json {
        command.args(["--format", "json"]);
    }
    run_bounded(command, Duration::from_secs(15))
}

/// The probe finished within its --timeout 2 (plus start-up slack).
fn assert_within_deadline(run: &hostile::Run) {
    assert!(
        run.elapsed < Duration::from_secs(4),
        "--timeout 2 took {:?}: {}",
        run.elapsed,
        String::from_utf8_lossy(&run.output.stdout)
    );
}

/// No verdict blames certificates or CAs when the server showed nothing against them.
fn assert_no_certificate_blame(checks: &std::collections::BTreeMap<String, (String, String)>) {
    for (id, (status, message)) in checks.iter().filter(|(_, (status, _))| status != "ok") {
        assert!(
            id != "client-certificate" && id != "server-certificate",
            "{id}: {status}: {message}"
        );
        assert!(
            !message.contains("CA") && !message.contains("tlscacert"),
            "{id}: {message}"
        );
    }
}

#[test]
fn a_silent_server_times_out_within_the_deadline_and_blames_no_ca() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "localhost"]);
    // Accepts, reads what it is sent, never answers.
    let port = serve(|mut stream| {
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink);
    });
    let endpoint = format!("tcp://127.0.0.1:{port}");
    let run = probe_hostile(&pki, &endpoint, true);
    assert_within_deadline(&run);
    let (_, checks) = outcome(&run.output);
    assert_eq!(run.output.status.code(), Some(2), "{checks:?}");
    assert_eq!(checks["connect"].0, "ok");
    let (status, message) = &checks["tls"];
    assert_eq!(status, "fail");
    assert!(
        message.starts_with("timed out: ")
            && message.contains("TLS handshake did not finish within --timeout 2s")
            && message.contains("raise --timeout"),
        "{message}"
    );
    assert_no_certificate_blame(&checks);
    // The text says the same.
    let run = probe_hostile(&pki, &endpoint, false);
    assert_within_deadline(&run);
    let text = String::from_utf8_lossy(&run.output.stdout);
    assert!(text.contains("fail tls: timed out: "), "{text}");
}

#[test]
fn a_trickling_server_cannot_stretch_the_deadline() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "localhost"]);
    // During the handshake: a TLS record header announcing 16 KiB, then one byte a second.
    let port = serve(|mut stream| {
        let _ = stream.write_all(&[0x16, 0x03, 0x03, 0x40, 0x00]);
        while stream.write_all(&[0]).is_ok() {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let run = probe_hostile(&pki, &format!("tcp://127.0.0.1:{port}"), true);
    assert_within_deadline(&run);
    let (_, checks) = outcome(&run.output);
    assert_eq!(run.output.status.code(), Some(2), "{checks:?}");
    assert!(
        checks["tls"].1.starts_with("timed out: ") && checks["tls"].1.contains("--timeout 2s"),
        "{checks:?}"
    );
    assert_no_certificate_blame(&checks);

    // After a genuine handshake with the client certificate: the answer, a byte a second.
    let port = serve_tls(daemon_tls(&pki, true), |_, tls| {
        for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK"
            .iter()
            .cycle()
        {
            if tls.write_all(&[*byte]).and_then(|()| tls.flush()).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let run = probe_hostile(&pki, &format!("tcp://127.0.0.1:{port}"), true);
    assert_within_deadline(&run);
    let (document, checks) = outcome(&run.output);
    assert_eq!(run.output.status.code(), Some(2), "{checks:?}");
    assert_eq!(checks["tls"].0, "ok", "{checks:?}");
    assert_eq!(document["tls_version"], "TLS 1.3");
    assert_eq!(checks["api"].0, "fail");
    assert!(
        checks["api"]
            .1
            .starts_with("timed out: the answer to GET /_ping did not finish within --timeout 2s"),
        "{checks:?}"
    );
    assert_no_certificate_blame(&checks);
}

#[test]
fn an_endless_answer_is_cut_at_the_size_limit() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "localhost"]);
    // Authenticated: it demands and checks the client certificate, then never stops talking.
    let port = serve_tls(daemon_tls(&pki, true), |_, tls| {
        let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n");
        let block = [b'A'; 16 * 1024];
        while tls.write_all(&block).is_ok() {}
    });
    let run = probe_hostile(&pki, &format!("tcp://127.0.0.1:{port}"), true);
    assert_within_deadline(&run);
    // Sampled from /proc while it ran (0 would mean never sampled); the old probe grew to 2 GB.
    assert!(
        run.peak_kib > 0 && run.peak_kib < 64 * 1024,
        "peak memory {} KiB",
        run.peak_kib
    );
    let (_, checks) = outcome(&run.output);
    assert_eq!(run.output.status.code(), Some(2), "{checks:?}");
    assert_eq!(checks["tls"].0, "ok", "{checks:?}");
    let (status, message) = &checks["api"];
    assert_eq!(status, "fail");
    assert!(
        message.starts_with("answer too large: the answer to GET /_ping went past 64 KiB")
            && message.contains("check the port in DOCKER_HOST"),
        "{message}"
    );
    // The anonymous client was refused by the same server: the probe still says so.
    assert_eq!(checks["client-auth"].0, "ok", "{checks:?}");
    assert_no_certificate_blame(&checks);
}

#[test]
fn a_server_that_closes_at_once_is_not_blamed_on_certificates() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "localhost"]);
    let port = serve(drop);
    let run = probe_hostile(&pki, &format!("tcp://127.0.0.1:{port}"), true);
    assert_within_deadline(&run);
    let (_, checks) = outcome(&run.output);
    assert_eq!(run.output.status.code(), Some(2), "{checks:?}");
    assert!(
        checks["tls"].1.contains("before tcp://127.0.0.1:")
            && checks["tls"].1.contains("presented a TLS certificate"),
        "{checks:?}"
    );
    assert_no_certificate_blame(&checks);
}

#[test]
fn anonymous_clients_are_checked_even_when_the_name_is_not_in_the_sans() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    // SANs: localhost only; the probe dials 127.0.0.1.
    init_ok(&pki, &["--host", "localhost", "--no-loopback"]);
    // tlsverify off: anyone gets an answer.
    let port = serve_tls(daemon_tls(&pki, false), |_, tls| {
        let _ =
            tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nApi-Version: 1.41\r\n\r\nOK");
    });
    let run = probe_hostile(&pki, &format!("tcp://127.0.0.1:{port}"), true);
    let (_, checks) = outcome(&run.output);
    assert_eq!(run.output.status.code(), Some(2), "{checks:?}");
    assert!(
        checks["server-certificate"]
            .1
            .contains("127.0.0.1 is not in the daemon certificate's SANs"),
        "{checks:?}"
    );
    assert_eq!(checks["client-auth"].0, "fail", "{checks:?}");
    assert!(
        checks["client-auth"]
            .1
            .contains("anyone who reaches the port is root"),
        "{checks:?}"
    );
}

#[test]
fn control_characters_from_an_unauthenticated_server_never_reach_the_terminal() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "localhost"]);
    let hostile = "\x1b[2J\x1b[H\u{9b}32mALL OK\u{202e}\r";
    // A SAN is ASCII (IA5String): ESC and CR only.
    let hostile_san = "\x1b[2J\x1b[HALL OK\r.example";
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), hostile_san.to_string()])
            .unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, hostile);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, hostile);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let config = hostile::tls_config(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        None,
    );
    let port = serve_tls(config, move |_, tls| {
        let body = "\x1b[2J\x1b[HALL OK";
        let _ = write!(
            tls,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
    });
    let endpoint = format!("tcp://localhost:{port}");
    let run = probe_hostile(&pki, &endpoint, false);
    let text = String::from_utf8_lossy(&run.output.stdout);
    assert_eq!(run.output.status.code(), Some(2), "{text}");
    assert_no_raw_controls(&run.output.stdout, "probe's text");
    assert_no_raw_controls(&run.output.stderr, "probe's stderr");
    // Shown, escaped: the subject, the issuer, the SAN.
    assert!(
        text.contains("\\u001b[2J\\u001b[H\\u009b32mALL OK\\u202e\\u000d"),
        "{text}"
    );
    assert!(text.contains("SANs      localhost, \\u001b[2J"), "{text}");

    // JSON: the same values, escaped as JSON escapes, so they parse back unchanged.
    let run = probe_hostile(&pki, &endpoint, true);
    assert_no_raw_controls(&run.output.stdout, "probe's JSON");
    let (document, _) = outcome(&run.output);
    let sans = document["server_certificate"]["sans"].as_array().unwrap();
    assert_eq!(sans[1], hostile_san);
    assert!(
        document["server_certificate"]["subject"]
            .as_str()
            .unwrap()
            .contains(hostile),
        "{document:#}"
    );
}

#[test]
fn control_characters_in_an_authenticated_daemons_answers_never_reach_the_terminal() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "localhost"]);
    let port = serve_tls(daemon_tls(&pki, true), |path, tls| {
        let (status, body) = if path == "/version" {
            (
                "200 OK",
                "{\"Version\": \"\\u001b[2J\\u009b\\u202eALL OK\", \"ApiVersion\": \"\\u001b]0;x\\u0007\"}",
            )
        } else {
            ("500 Oops", "\x1b[2J\x1b[H\u{9b}32mALL OK\u{202e}\r\n")
        };
        let _ = write!(
            tls,
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
    });
    let run = probe_hostile(&pki, &format!("tcp://127.0.0.1:{port}"), false);
    let text = String::from_utf8_lossy(&run.output.stdout);
    assert_eq!(run.output.status.code(), Some(2), "{text}");
    assert_no_raw_controls(&run.output.stdout, "probe's text");
    assert!(
        text.contains(
            "fail api: /_ping answered HTTP 500: \\u001b[2J\\u001b[H\\u009b32mALL OK\\u202e"
        ),
        "{text}"
    );
    assert!(
        text.contains("daemon    Docker \\u001b[2J\\u009b\\u202eALL OK, API \\u001b]0;x\\u0007"),
        "{text}"
    );
    let run = probe_hostile(&pki, &format!("tcp://127.0.0.1:{port}"), true);
    assert_no_raw_controls(&run.output.stdout, "probe's JSON");
    let (document, _) = outcome(&run.output);
    assert_eq!(document["daemon"]["version"], "\x1b[2J\u{9b}\u{202e}ALL OK");
}

/// Review item m9: a daemon's long answers (a 60 KB error body, 30 KB version strings, within
/// probe's 64 KiB limit) are cut in probe's report, which stays in short lines.
#[test]
fn a_daemons_long_answers_are_cut_in_the_report() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "localhost"]);
    let port = serve_tls(daemon_tls(&pki, true), |path, tls| {
        let long = "v".repeat(60_000);
        let (status, body) = if path == "/version" {
            let half = &long[..30_000];
            (
                "200 OK",
                format!("{{\"Version\": \"{half}\", \"ApiVersion\": \"{half}\"}}"),
            )
        } else {
            ("500 Oops", long)
        };
        let _ = write!(
            tls,
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
    });
    let run = probe_hostile(&pki, &format!("tcp://127.0.0.1:{port}"), false);
    let text = String::from_utf8_lossy(&run.output.stdout);
    assert_eq!(run.output.status.code(), Some(2), "{text}");
    for line in text.lines() {
        assert!(line.len() <= 1024, "a line of {} bytes", line.len());
    }
    assert!(
        text.contains("fail api: /_ping answered HTTP 500: vvvv")
            && text.contains("v... (60000 bytes)"),
        "{text}"
    );
    assert!(
        text.contains("daemon    Docker vvvv") && text.contains("v... (30000 bytes), API vvvv"),
        "{text}"
    );
}

#[test]
fn malformed_endpoints_are_usage_errors() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "localhost"]);
    for endpoint in [
        "tcp://[::1]x",
        "tcp://[::1]:2376x",
        "tcp://127.0.0.1:0",
        "tcp://127.0.0.1:65536",
        "tcp://:2376",
        "tcp://127.0.0.1:2376/v1.41",
        "tcp://\x1b[2Jhost:2376",
        "http://127.0.0.1:2376",
    ] {
        let output = probe(&pki, &[endpoint, "--client", "client"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(3), "{endpoint:?}: {stderr}");
        assert_eq!(
            refusal::assert_refusal(&output.stderr).1,
            None,
            "{endpoint:?}"
        );
        assert!(stderr.contains("tcp://HOST:PORT"), "{stderr}");
        assert!(output.stdout.is_empty());
        assert_no_raw_controls(&output.stderr, "the error");
    }
    // DOCKER_HOST is parsed the same way.
    let output = dockertls()
        .arg("--dir")
        .arg(&pki)
        .args(["probe", "--client", "client"])
        .env("DOCKER_HOST", "tcp://[::1]x")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
}

#[test]
fn the_deadline_covers_the_version_request_and_the_anonymous_check() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "localhost"]);
    // /_ping at once, /version a byte a second.
    let port = serve_tls(daemon_tls(&pki, true), |path, tls| {
        if path == "/_ping" {
            let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK");
            return;
        }
        for byte in b"HTTP/1.1 200 OK\r\n".iter().cycle() {
            if tls.write_all(&[*byte]).and_then(|()| tls.flush()).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let run = probe_hostile(&pki, &format!("tcp://127.0.0.1:{port}"), true);
    assert_within_deadline(&run);
    let (_, checks) = outcome(&run.output);
    assert_eq!(run.output.status.code(), Some(1), "{checks:?}");
    assert_eq!(checks["api"].0, "warn", "{checks:?}");
    assert!(
        checks["api"].1.starts_with(
            "timed out: the answer to GET /version did not finish within --timeout 2s"
        ),
        "{checks:?}"
    );

    // Everything at once for a client with a certificate; silence for one without.
    let ca = server_file(&pki, "ca.pem");
    let config = {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_file_iter(&ca).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.into(),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()
        .unwrap();
        std::sync::Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_client_cert_verifier(verifier)
                .with_single_cert(
                    rustls::pki_types::CertificateDer::pem_file_iter(server_file(
                        &pki,
                        "server-cert.pem",
                    ))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect(),
                    rustls::pki_types::PrivateKeyDer::from_pem_file(server_file(
                        &pki,
                        "server-key.pem",
                    ))
                    .unwrap(),
                )
                .unwrap(),
        )
    };
    let port = serve_tls(config, |path, tls| {
        if tls.conn.peer_certificates().is_none() {
            std::thread::sleep(Duration::from_secs(60));
            return;
        }
        let body = if path == "/version" {
            "{\"Version\": \"20.10.24\", \"ApiVersion\": \"1.41\"}"
        } else {
            "OK"
        };
        let _ = write!(
            tls,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
    });
    let run = probe_hostile(&pki, &format!("tcp://127.0.0.1:{port}"), true);
    assert_within_deadline(&run);
    let (_, checks) = outcome(&run.output);
    assert_eq!(run.output.status.code(), Some(1), "{checks:?}");
    assert_eq!(checks["api"].0, "ok", "{checks:?}");
    assert_eq!(checks["client-auth"].0, "warn", "{checks:?}");
    assert!(
        checks["client-auth"].1.starts_with(
            "could not try a connection without a client certificate: timed out: the answer to GET /_ping did not finish within --timeout 2s"
        ),
        "{checks:?}"
    );
}

#[test]
fn client_files_that_are_fifos_or_huge_are_refused_at_once() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "localhost"]);
    let folder = work.path().join("odd");
    std::fs::create_dir(&folder).unwrap();
    for file in ["cert.pem", "key.pem"] {
        std::fs::copy(pki.join("clients/client").join(file), folder.join(file)).unwrap();
    }
    let status = Command::new("mkfifo")
        .arg(folder.join("ca.pem"))
        .status()
        .unwrap();
    assert!(status.success());
    let (_held, port) = refused_port();
    let endpoint = format!("tcp://127.0.0.1:{port}");
    let probe_folder = || {
        let mut command = dockertls();
        command
            .args(["probe", &endpoint, "--format", "json", "--cert-path"])
            .arg(&folder);
        run_bounded(command, Duration::from_secs(15))
    };
    let run = probe_folder();
    assert_within_deadline(&run);
    let (_, checks) = outcome(&run.output);
    assert!(
        checks["client-files"]
            .1
            .contains("is a FIFO (named pipe), not a regular file"),
        "{checks:?}"
    );
    std::fs::remove_file(folder.join("ca.pem")).unwrap();
    let huge = std::fs::File::create(folder.join("ca.pem")).unwrap();
    huge.set_len(64 * 1024 * 1024).unwrap();
    let run = probe_folder();
    assert_within_deadline(&run);
    let (_, checks) = outcome(&run.output);
    assert!(
        checks["client-files"]
            .1
            .contains("bytes, more than the 1048576 bytes"),
        "{checks:?}"
    );
}

/// A server certificate dated from 1950 (UTCTime allows it; Go's dockerd and docker CLI accept
/// it) cannot be read by rustls' webpki: probe says so plainly, with what to do, and shows no
/// Rust name such as "BadEncoding".
#[test]
fn a_server_certificate_from_before_1970_is_explained_not_misnamed() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "localhost"]);
    let read = |path: &str| std::fs::read_to_string(pki.join(path)).unwrap();
    let ca_key = rcgen::KeyPair::from_pem(&read("ca/ca-key.pem")).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(&read("ca/ca.pem"), ca_key).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
    params.not_before = rcgen::date_time_ymd(1950, 1, 1);
    params.not_after = rcgen::date_time_ymd(2090, 1, 1);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let config = hostile::tls_config(vec![cert.der().clone()], key, None);
    let port = serve_tls(config, |_, tls| {
        let _ = write!(tls, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK");
    });
    let endpoint = format!("tcp://127.0.0.1:{port}");
    let run = probe_hostile(&pki, &endpoint, true);
    let (document, checks) = outcome(&run.output);
    let (status, message) = &checks["server-certificate"];
    assert_eq!(status, "warn", "{document:#}");
    assert!(
        message.contains("1950") && message.contains("before 1970"),
        "{message}"
    );
    assert!(
        message.contains("Go's dockerd and the docker CLI accept"),
        "{message}"
    );
    let hint = document["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "server-certificate")
        .map(|c| c["hint"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default();
    assert!(hint.contains("re-issue"), "{document:#}");
    let text = probe_hostile(&pki, &endpoint, false);
    let text = String::from_utf8_lossy(&text.output.stdout);
    assert!(
        text.contains("\n      hint: to probe this daemon"),
        "{text}"
    );
    assert!(!text.contains("BadEncoding") && !format!("{document}").contains("BadEncoding"));
}
