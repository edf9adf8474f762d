//! `verify` against cert dirs made by OpenSSL alone (tests/support/fixtures.sh): good dirs in
//! every key format, the Docker docs' recipe, docker-machine's and dind's layouts, one dir per
//! failing check; plus daemon.json audits, exit codes, formats and hostile files.

mod common;
#[path = "support/refusal.rs"]
mod refusal;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{dockertls, find_tool, init_ok, is_root, peers_required};
use common::{server_file, server_folder};

fn verify(args: &[&str]) -> Output {
    dockertls().arg("verify").args(args).output().unwrap()
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// (path relative to root, kind) -> (status, {check id: (status, message)})
type Verdicts = BTreeMap<(String, String), (String, BTreeMap<String, (String, String)>)>;

fn verdicts(root: &Path, document: &serde_json::Value) -> Verdicts {
    let mut out = Verdicts::new();
    for target in document["targets"].as_array().unwrap() {
        let path = PathBuf::from(target["path"].as_str().unwrap());
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let checks = target["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let field = |k: &str| c[k].as_str().unwrap().to_string();
                (field("id"), (field("status"), field("message")))
            })
            .collect();
        let key = (rel, target["kind"].as_str().unwrap().to_string());
        out.insert(
            key,
            (target["status"].as_str().unwrap().to_string(), checks),
        );
    }
    out
}

/// Builds the OpenSSL fixtures once per test that needs them.
fn fixtures() -> Option<tempfile::TempDir> {
    find_tool("openssl", "the verify fixtures are made with openssl")?;
    common::faketime_tool("the expired-certificate fixture is made under faketime")?;
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/fixtures.sh");
    let output = Command::new("bash")
        .arg(script)
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "fixtures.sh: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(dir)
}

#[test]
fn fixtures_made_by_openssl_get_the_right_verdicts() {
    let Some(fixtures) = fixtures() else { return };
    let root = fixtures.path();
    let output = verify(&[root.to_str().unwrap(), "--format", "json"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let document = json(&output);
    let found = verdicts(root, &document);

    // Good dirs, every key format, dockertls-like profile: every check ok.
    for format in ["p256", "p384", "sec1", "ed25519", "rsa", "pkcs1"] {
        for (dir, kind) in [("ca", "ca"), ("server", "server"), ("client", "client")] {
            let key = (format!("good-{format}/{dir}"), kind.to_string());
            let (status, checks) = found
                .get(&key)
                .unwrap_or_else(|| panic!("{key:?} not found"));
            assert_eq!(status, "ok", "{key:?}: {checks:?}");
            assert!(
                checks.contains_key("key-match") && checks.contains_key("chain") == (kind != "ca"),
                "{key:?}: {checks:?}"
            );
        }
    }
    // Layouts of docker-machine, docker:dind and easy-rsa are recognised with the right kinds.
    for (path, kind) in [
        ("easyrsa/pki/ca.crt", "ca"),
        ("easyrsa/pki/issued/docker.crt", "server"),
        ("easyrsa/pki/issued/alice.crt", "client"),
        ("machine", "server"),
        ("machine", "client"),
        ("dind/ca", "ca"),
        ("dind/server", "server"),
        ("dind/client", "client"),
    ] {
        let key = (path.to_string(), kind.to_string());
        let (status, checks) = found
            .get(&key)
            .unwrap_or_else(|| panic!("{key:?} not found in {:?}", found.keys()));
        assert_eq!(status, "ok", "{key:?}: {checks:?}");
    }
    // Docker's documented recipe: its CA has no keyUsage: a warning, not a failure.
    for kind in ["ca", "server", "client"] {
        let (status, checks) = &found[&("docs".to_string(), kind.to_string())];
        assert_eq!(status, "warn", "docs {kind}: {checks:?}");
        assert_eq!(checks["ca"].0, "warn");
        assert!(checks["ca"].1.contains("no keyUsage"), "{}", checks["ca"].1);
        assert!(checks.values().all(|(s, _)| s != "fail"));
    }

    // One dir per failing check: (dir, kind, check id, status, words of the message).
    let expected = [
        (
            "files-no-ca",
            "client",
            "files",
            "fail",
            "ca.pem is missing",
        ),
        (
            "parse-garbage-key",
            "server",
            "parse",
            "fail",
            "no PEM block",
        ),
        (
            "parse-encrypted-key",
            "client",
            "parse",
            "fail",
            "encrypted",
        ),
        (
            "parse-key-in-cert",
            "client",
            "parse",
            "fail",
            "also holds a private key",
        ),
        ("ca-not-ca", "server", "ca", "fail", "not a CA"),
        (
            "chain-other-ca",
            "server",
            "chain",
            "fail",
            "fixture CA other-ca",
        ),
        (
            "validity-expired",
            "server",
            "validity",
            "fail",
            "expired on 2020-01-31",
        ),
        (
            "validity-expiring",
            "server",
            "validity",
            "warn",
            "days left",
        ),
        (
            "key-match",
            "server",
            "key-match",
            "fail",
            "does not belong",
        ),
        (
            "key-usage",
            "server",
            "key-usage",
            "fail",
            "lacks digitalSignature",
        ),
        (
            "eku-wrong",
            "server",
            "ext-key-usage",
            "fail",
            "this one has clientAuth",
        ),
        (
            "eku-missing",
            "server",
            "ext-key-usage",
            "warn",
            "no extendedKeyUsage",
        ),
        (
            "san-none",
            "server",
            "san",
            "fail",
            "only CN=docker.example.com",
        ),
        (
            "san-trailing-dot",
            "server",
            "san",
            "fail",
            "ends with a dot",
        ),
        ("key-strength", "server", "key-strength", "fail", "RSA-1024"),
        ("sig-sha1", "server", "signature-algorithm", "fail", "SHA-1"),
        ("lint-negative-serial", "server", "lint", "fail", "negative"),
        (
            "lint-no-aki",
            "server",
            "lint",
            "warn",
            "authority key identifier",
        ),
        ("perm-key", "server", "permissions", "fail", "mode 0644"),
        ("perm-cert", "server", "permissions", "warn", "mode 0666"),
    ];
    let mut covered = std::collections::BTreeSet::new();
    for (dir, kind, id, status, words) in expected {
        let key = (format!("bad/{dir}"), kind.to_string());
        let (target_status, checks) = found
            .get(&key)
            .unwrap_or_else(|| panic!("{key:?} not found"));
        let (check_status, message) = checks
            .get(id)
            .unwrap_or_else(|| panic!("{key:?} has no {id}: {checks:?}"));
        assert_eq!(check_status, status, "{key:?} {id}: {message}");
        assert!(
            message.contains(words),
            "{key:?} {id}: {message:?} lacks {words:?}"
        );
        assert_eq!(
            target_status, status,
            "{key:?} is {target_status} overall: {checks:?}"
        );
        covered.insert(id);
    }
    // The bad dirs fail or warn only where they are meant to (no collateral findings).
    for (dir, kind, id, _, _) in expected {
        let checks = &found[&(format!("bad/{dir}"), kind.to_string())].1;
        let others: Vec<_> = checks
            .iter()
            .filter(|(other, (s, _))| {
                *other != id
                    && s != "ok"
                    && !(dir == "ca-not-ca" && other.as_str() == "validity")
                    && !(dir == "sig-sha1" && other.as_str() == "chain")
            })
            .collect();
        assert!(others.is_empty(), "{dir}: unexpected {others:?}");
    }
    // Every check id but those needing --host or --daemon-config has a failing fixture.
    let all: Vec<&str> = dockertls::audit::checks::IDS.to_vec();
    // `revoked` needs a PKI's records: tests/verify_revoked.rs.
    let elsewhere = ["host", "ownership", "daemon-config", "tlsverify", "revoked"];
    for id in all.iter().filter(|id| !elsewhere.contains(id)) {
        assert!(covered.contains(id), "no fixture fails or warns on {id}");
    }
    let summary = &document["summary"];
    assert_eq!(document["status"], "fail");
    let total = summary["ok"].as_u64().unwrap()
        + summary["warn"].as_u64().unwrap()
        + summary["fail"].as_u64().unwrap();
    assert_eq!(total as usize, found.len());
}

#[test]
fn host_must_be_covered_by_a_san() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(
        &pki,
        &["--host", "docker.example.com", "--allow", "10.0.0.1"],
    );
    let server = server_folder(&pki);
    let server = server.to_str().unwrap();
    for covered in [
        "docker.example.com",
        "DOCKER.example.com",
        "10.0.0.1",
        "127.0.0.1",
        "::ffff:10.0.0.1",
    ] {
        let output = verify(&[server, "--host", covered]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{covered}: {}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
    let output = verify(&[
        server,
        "--host",
        "docker.example.com",
        "--host",
        "10.0.0.2",
        "--format",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let document = json(&output);
    let check = document["targets"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "host")
        .unwrap()
        .clone();
    assert_eq!(check["status"], "fail");
    let message = check["message"].as_str().unwrap();
    assert!(
        message.contains(
            "10.0.0.2 is not among the SANs (DNS:docker.example.com, IP:10.0.0.1, IP:127.0.0.1)"
        ),
        "{message}"
    );
    assert!(
        message.contains("dockertls --dir")
            && message.contains("rotate --server docker.example.com --allow 10.0.0.2"),
        "{message}"
    );
}

#[test]
fn a_dockertls_pki_passes_and_its_backups_are_not_audited() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(
        &pki,
        &["--host", "docker.example.com", "--client", "alice,bob"],
    );
    init_ok(
        &pki,
        &[
            "--host",
            "docker.example.com",
            "--client",
            "alice,bob",
            "--force",
        ],
    );
    // With no PATH, the PKI in --dir.
    let output = dockertls()
        .arg("--dir")
        .arg(&pki)
        .args(["verify", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let document = json(&output);
    let kinds: Vec<&str> = document["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["ca", "client", "client", "server"]);
    let target = &document["targets"][0];
    assert!(target["not_after"].as_str().unwrap().ends_with('Z'));
    assert!(target["days_left"].as_i64().unwrap() >= 3649);
    assert_eq!(
        document["summary"],
        serde_json::json!({"ok": 4, "warn": 0, "fail": 0})
    );
}

#[test]
fn exit_status_follows_the_monitoring_convention() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "docker.example.com", "--days", "20"]);
    let p = pki.to_str().unwrap();
    // 20 fresh days: ok by the renewal rule (not due before a third is left), a warning with
    // --warn-days 30, ok with 10.
    assert_eq!(verify(&[p]).status.code(), Some(0));
    assert_eq!(verify(&[p, "--warn-days", "30"]).status.code(), Some(1));
    assert_eq!(verify(&[p, "--warn-days", "10"]).status.code(), Some(0));
    // A failure.
    std::fs::set_permissions(
        server_file(&pki, "server-key.pem"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let output = verify(&[p, "--warn-days", "10"]);
    assert_eq!(output.status.code(), Some(2));
    // The text form: a line per target, an indented line per problem, a summary; no colour
    // when stdout is not a terminal.
    let text = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(
        lines[2].ends_with("FAIL") && lines[2].contains("server  CN=docker.example.com"),
        "{text}"
    );
    assert!(
        lines[3].starts_with("    fail permissions: ") && lines[3].contains("chmod 0400"),
        "{text}"
    );
    assert_eq!(lines[4], "3 targets: 2 ok, 0 warn, 1 fail");
    assert!(!text.contains('\x1b'));
    // Nothing could be checked: 3.
    let empty = work.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for args in [
        vec![empty.to_str().unwrap()],
        vec![work.path().join("missing").to_str().unwrap()],
        vec![p, empty.to_str().unwrap()],
        vec![p, "--warn-days", "-1"],
        vec![p, "--format", "xml"],
        vec![p, "--bogus"],
    ] {
        let output = verify(&args);
        assert_eq!(
            output.status.code(),
            Some(3),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        refusal::assert_refusal(&output.stderr);
    }
    let output = verify(&[empty.to_str().unwrap()]);
    let (error, hint) = refusal::assert_refusal(&output.stderr);
    assert!(error.starts_with("no cert dir found"), "{error}");
    assert!(hint.is_some_and(|h| h.contains("ca.pem")));
    // A usage error after global options that take values is still "could not check".
    for globals in [
        vec!["--dir", p],
        vec!["--ca-passphrase-file", p],
        vec!["--dir", "verify", "--ca-passphrase-file", p],
    ] {
        let output = dockertls()
            .args(&globals)
            .args(["verify", "--bogus"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(3), "{globals:?}");
    }
    // An unknown option before the subcommand, in any spelling: still verify's (or probe's)
    // usage error.
    for args in [
        &["--bogus", "verify"][..],
        &["--bogus=1", "verify"],
        &["-xy", "verify"],
        &["--ca-passphrase-file=/x", "--bogus=y", "verify"],
        &["--dir", "x", "--bogus=2", "probe", "tcp://127.0.0.1:1"],
        &["-xy", "probe"],
    ] {
        let output = dockertls().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(3), "{args:?}");
        refusal::assert_refusal(&output.stderr);
    }
    let output = dockertls()
        .args(["-xy", "client", "list"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let output = dockertls()
        .args(["--dir", "verify", "init", "--bogus"])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "init keeps exit 2 for usage errors"
    );
}

/// Copies a dockertls server folder to `dir`, root-owned with Docker's modes, and writes a
/// daemon.json naming it.
fn installed(work: &Path, config: &str) -> (PathBuf, PathBuf) {
    let pki = work.join("pki");
    init_ok(&pki, &["--host", "docker.example.com"]);
    let tls = work.join("tls");
    std::fs::create_dir(&tls).unwrap();
    for (name, mode) in [
        ("ca.pem", 0o444),
        ("server-cert.pem", 0o444),
        ("server-key.pem", 0o400),
    ] {
        std::fs::copy(server_folder(&pki).join(name), tls.join(name)).unwrap();
        std::fs::set_permissions(tls.join(name), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let daemon = work.join("daemon.json");
    let text = config.replace("TLS", tls.to_str().unwrap());
    std::fs::write(&daemon, text).unwrap();
    std::fs::set_permissions(&daemon, std::fs::Permissions::from_mode(0o644)).unwrap();
    (daemon, tls)
}

/// A work folder whose every parent is root's and 0755: under the shared /tmp, verify rightly
/// fails the TLS files' folders.
fn root_only_workdir() -> tempfile::TempDir {
    common::private_tempdir()
}

const GOOD_CONFIG: &str = r#"{"hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"], "tls": true, "tlsverify": true,
 "tlscacert": "TLS/ca.pem", "tlscert": "TLS/server-cert.pem", "tlskey": "TLS/server-key.pem", "icc": false}"#;

fn config_checks(output: &Output) -> BTreeMap<String, (String, String)> {
    common::check_map(&json(output)["targets"][0]["checks"])
}

#[test]
fn daemon_config_is_audited_with_the_cis_file_checks() {
    if !is_root() {
        assert!(!peers_required(), "the ownership checks need root");
        eprintln!("SKIPPED: the daemon.json ownership checks need root");
        return;
    }
    let work = root_only_workdir();
    let (daemon, tls) = installed(work.path(), GOOD_CONFIG);
    let d = daemon.to_str().unwrap();
    let output = verify(&["--daemon-config", d, "--format", "json"]);
    let checks = config_checks(&output);
    assert_eq!(output.status.code(), Some(0), "{checks:?}");
    for id in [
        "tlsverify",
        "daemon-config",
        "ownership",
        "permissions",
        "chain",
        "key-match",
    ] {
        assert_eq!(checks[id].0, "ok", "{id}: {checks:?}");
    }

    // CIS 3.9-3.14: owner root:root, key exactly 0400, certs 0444 or stricter.
    std::os::unix::fs::chown(tls.join("server-cert.pem"), Some(1000), Some(1000)).unwrap();
    std::fs::set_permissions(
        tls.join("server-key.pem"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::set_permissions(tls.join("ca.pem"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = verify(&["--daemon-config", d, "--format", "json"]);
    let checks = config_checks(&output);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(checks["ownership"].0, "fail");
    assert!(
        checks["ownership"]
            .1
            .contains("server-cert.pem is owned by 1000:1000"),
        "{}",
        checks["ownership"].1
    );
    // Each message cites its own CIS item: 3.9/3.10 CA cert, 3.11/3.12 server cert, 3.13/3.14 key.
    assert!(
        checks["ownership"]
            .1
            .contains("server-cert.pem is owned by 1000:1000; CIS Docker Benchmark 3.11 wants"),
        "{}",
        checks["ownership"].1
    );
    let permissions = &checks["permissions"].1;
    assert!(
        permissions
            .contains("server-key.pem is mode 0600; CIS Docker Benchmark 3.14 wants exactly 0400"),
        "{permissions}"
    );
    assert!(
        permissions
            .contains("ca.pem is mode 0644; CIS Docker Benchmark 3.10 wants 0444 or stricter"),
        "{permissions}"
    );

    // CIS 3.17/3.18 on daemon.json itself.
    std::os::unix::fs::chown(tls.join("server-cert.pem"), Some(0), Some(0)).unwrap();
    std::fs::set_permissions(
        tls.join("server-key.pem"),
        std::fs::Permissions::from_mode(0o400),
    )
    .unwrap();
    std::fs::set_permissions(tls.join("ca.pem"), std::fs::Permissions::from_mode(0o444)).unwrap();
    std::fs::set_permissions(&daemon, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::os::unix::fs::chown(&daemon, Some(1000), None).unwrap();
    let checks = config_checks(&verify(&["--daemon-config", d, "--format", "json"]));
    assert!(
        checks["permissions"].1.contains("daemon.json is mode 0666"),
        "{checks:?}"
    );
    assert!(
        checks["ownership"]
            .1
            .contains("daemon.json is owned by 1000:0"),
        "{checks:?}"
    );
}

#[test]
fn daemon_config_without_tlsverify_fails() {
    let work = root_only_workdir();
    for (config, id, words) in [
        // Without "tls" and "tlsverify", dockerd serves plain HTTP ("tls": true alone requires
        // client certificates: tests/verify_daemon.rs measures both).
        (
            GOOD_CONFIG.replace(r#""tls": true, "tlsverify": true,"#, ""),
            "tlsverify",
            "without \"tlsverify\": true",
        ),
        (
            GOOD_CONFIG.replace(r#""tlsverify": true"#, r#""tlsverify": "true""#),
            "tlsverify",
            "the string \"true\"",
        ),
        (
            GOOD_CONFIG.replace(r#", "icc": false}"#, ","),
            "daemon-config",
            "not valid JSON (line 2",
        ),
        (
            GOOD_CONFIG.replace(r#""tlskey": "TLS/server-key.pem","#, ""),
            "daemon-config",
            "names no \"tlskey\": dockerd will not start",
        ),
    ] {
        let case = tempfile::tempdir_in(work.path()).unwrap();
        let (daemon, _) = installed(case.path(), &config);
        let output = verify(&[
            "--daemon-config",
            daemon.to_str().unwrap(),
            "--format",
            "json",
        ]);
        assert_eq!(output.status.code(), Some(2), "{config}");
        let checks = config_checks(&output);
        assert_eq!(checks[id].0, "fail", "{config}: {checks:?}");
        assert!(
            checks[id].1.contains(words),
            "{:?} lacks {words:?}",
            checks[id].1
        );
    }
    let output = verify(&[
        "--daemon-config",
        work.path().join("nope.json").to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(3));
}

#[test]
fn hostile_files_never_crash_it() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path();
    let pki = root.join("pki");
    init_ok(&pki, &["--host", "docker.example.com"]);
    let good_cert = std::fs::read(pki.join("clients/client/cert.pem")).unwrap();
    let good_key = std::fs::read(pki.join("clients/client/key.pem")).unwrap();
    let ca = std::fs::read(pki.join("ca/ca.pem")).unwrap();
    let cases: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
        ("garbage", b"\x00\xff garbage".to_vec(), good_key.clone()),
        (
            "truncated",
            good_cert[..good_cert.len() / 2].to_vec(),
            good_key.clone(),
        ),
        (
            "wrong-label",
            String::from_utf8_lossy(&good_cert)
                .replace("CERTIFICATE", "X509 CRL")
                .into_bytes(),
            good_key.clone(),
        ),
        (
            "der",
            vec![0x30, 0x82, 0x01, 0x00, 0x02, 0x01],
            good_key.clone(),
        ),
        ("key-as-cert", good_key.clone(), good_key.clone()),
        ("cert-as-key", good_cert.clone(), good_cert.clone()),
        ("huge", vec![b'A'; 2 * 1024 * 1024], good_key.clone()),
        ("empty", Vec::new(), Vec::new()),
        (
            "bad-base64",
            b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n".to_vec(),
            good_key.clone(),
        ),
    ];
    for (name, cert, key) in &cases {
        let dir = root.join("fleet").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cert.pem"), cert).unwrap();
        std::fs::write(dir.join("key.pem"), key).unwrap();
        std::fs::set_permissions(dir.join("key.pem"), std::fs::Permissions::from_mode(0o400))
            .unwrap();
        std::fs::write(dir.join("ca.pem"), &ca).unwrap();
    }
    // A symlink loop in the tree, and a FIFO where a certificate should be.
    std::os::unix::fs::symlink(root.join("fleet"), root.join("fleet/garbage/loop")).unwrap();
    let fifo_dir = root.join("fleet/fifo");
    std::fs::create_dir(&fifo_dir).unwrap();
    let status = Command::new("mkfifo")
        .arg(fifo_dir.join("cert.pem"))
        .status();
    if status.is_ok_and(|s| s.success()) {
        std::fs::write(fifo_dir.join("key.pem"), &good_key).unwrap();
        std::fs::write(fifo_dir.join("ca.pem"), &ca).unwrap();
    }
    let output = verify(&[root.join("fleet").to_str().unwrap(), "--format", "json"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let document = json(&output);
    let targets = document["targets"].as_array().unwrap();
    assert!(targets.len() >= cases.len(), "{targets:?}");
    for target in targets {
        assert_eq!(target["status"], "fail", "{target}");
    }
    let text = serde_json::to_string(&document).unwrap();
    assert!(text.contains("over 1 MiB"), "{text}");
    assert!(text.contains("is DER, not PEM"), "{text}");
    assert!(
        text.contains("holds a private key, not a certificate"),
        "{text}"
    );
    assert!(
        text.contains("holds a certificate, not a private key"),
        "{text}"
    );
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "docker.example.com"]);
    let on_terminal = |no_color: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_dockertls"));
        command
            .arg("--dir")
            .arg(&pki)
            .arg("verify")
            .env("TERM", "xterm");
        match no_color {
            Some(value) => command.env("NO_COLOR", value),
            None => command.env_remove("NO_COLOR"),
        };
        let mut session = rexpect::session::spawn_command(command, Some(30_000)).unwrap();
        session.exp_eof().unwrap()
    };
    assert!(
        on_terminal(None).contains("\x1b[32mOK\x1b[0m"),
        "green OK on a terminal"
    );
    assert!(
        !on_terminal(Some("1")).contains('\x1b'),
        "no colour with NO_COLOR"
    );
    // Off a terminal: plain text.
    let output = verify(&[pki.to_str().unwrap()]);
    assert!(!String::from_utf8_lossy(&output.stdout).contains('\x1b'));
}

/// cert.pem, key.pem and ca.pem name a client folder and docker:dind's server folder alike: when
/// the certificate fits one role only, verify says what the other reading would meet.
#[test]
fn a_folder_that_fits_two_roles_says_which_role_its_certificate_fails() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "docker.example.com", "--client", "alice"]);
    let folder = |name: &str, from: &Path, cert: &str, key: &str| {
        let dir = work.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        std::fs::copy(from.join(cert), dir.join("cert.pem")).unwrap();
        std::fs::copy(from.join(key), dir.join("key.pem")).unwrap();
        std::fs::copy(from.join("ca.pem"), dir.join("ca.pem")).unwrap();
        dir
    };
    // A server certificate (serverAuth only) in what may be meant as a DOCKER_CERT_PATH folder.
    let server = folder(
        "meant-as-client",
        &server_folder(&pki),
        "server-cert.pem",
        "server-key.pem",
    );
    let eku = |output: &Output| {
        let document = json(output);
        let target = &document["targets"][0];
        (
            target["kind"].as_str().unwrap().to_string(),
            common::check_map(&target["checks"])["ext-key-usage"].clone(),
        )
    };
    let output = verify(&[server.to_str().unwrap(), "--format", "json"]);
    assert_eq!(output.status.code(), Some(0));
    let (kind, (status, message)) = eku(&output);
    assert_eq!((kind.as_str(), status.as_str()), ("server", "ok"));
    assert!(
        message.contains("as a client folder it would be refused: no clientAuth"),
        "{message}"
    );
    // When a server check fails, the other reading is a warning beside the server's fix.
    let output = verify(&[
        server.to_str().unwrap(),
        "--host",
        "other.example.com",
        "--format",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let (_, (status, message)) = eku(&output);
    assert_eq!(status, "warn", "{message}");
    assert!(
        message.contains("as a client folder it would be refused: no clientAuth"),
        "{message}"
    );
    let text = String::from_utf8_lossy(
        &verify(&[server.to_str().unwrap(), "--host", "other.example.com"]).stdout,
    )
    .into_owned();
    assert!(text.contains("no clientAuth"), "{text}");

    // A client certificate (clientAuth only) in what may be meant as dind's /certs/server.
    let client = folder(
        "meant-as-server",
        &pki.join("clients/alice"),
        "cert.pem",
        "key.pem",
    );
    let output = verify(&[client.to_str().unwrap(), "--format", "json"]);
    let (kind, (status, message)) = eku(&output);
    assert_eq!((kind.as_str(), status.as_str()), ("client", "ok"));
    assert!(
        message.contains("as a server folder it would be refused: no serverAuth"),
        "{message}"
    );
}

/// Whoever can write to a folder on the way to the TLS files can swap them under dockerd, and
/// whoever can write to daemon.json's folder can replace it (CIS 3.5/3.6).
#[test]
fn daemon_config_fails_folders_others_can_write() {
    if !is_root() {
        assert!(!peers_required(), "the ownership checks need root");
        eprintln!("SKIPPED: the folder ownership checks need root");
        return;
    }
    let run = |daemon: &Path| {
        let output = verify(&[
            "--daemon-config",
            daemon.to_str().unwrap(),
            "--format",
            "json",
        ]);
        (output.status.code(), config_checks(&output))
    };
    let set_mode = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let work = root_only_workdir();
    let (daemon, tls) = installed(work.path(), GOOD_CONFIG);
    assert_eq!(run(&daemon).0, Some(0));

    // The TLS folder 0777 with 0444/0400 files inside: anyone can swap them.
    set_mode(&tls, 0o777);
    let (code, checks) = run(&daemon);
    assert_eq!(code, Some(2));
    let message = &checks["permissions"].1;
    assert!(
        message.contains(&format!("folder {}, on the path", tls.display()))
            && message.contains("mode 0777"),
        "{message}"
    );
    set_mode(&tls, 0o755);
    // A folder above it, group-writable; then one owned by another user.
    set_mode(work.path(), 0o775);
    let (code, checks) = run(&daemon);
    assert_eq!(code, Some(2));
    assert!(checks["permissions"].1.contains("mode 0775"), "{checks:?}");
    set_mode(work.path(), 0o700);
    std::os::unix::fs::chown(&tls, Some(1000), None).unwrap();
    let (code, checks) = run(&daemon);
    assert_eq!(code, Some(2));
    assert!(
        checks["ownership"].1.contains("owned by user 1000"),
        "{checks:?}"
    );
    std::os::unix::fs::chown(&tls, Some(0), None).unwrap();
    assert_eq!(run(&daemon).0, Some(0));

    // daemon.json's folder: CIS 3.5 (root:root) and 3.6 (0755 or stricter).
    let etc = work.path().join("etc-docker");
    std::fs::create_dir(&etc).unwrap();
    let moved = etc.join("daemon.json");
    std::fs::copy(&daemon, &moved).unwrap();
    assert_eq!(run(&moved).0, Some(0));
    set_mode(&etc, 0o777);
    let (_, checks) = run(&moved);
    assert!(
        checks["permissions"].1.contains("CIS Docker Benchmark 3.6"),
        "{checks:?}"
    );
    set_mode(&etc, 0o755);
    std::os::unix::fs::chown(&etc, Some(0), Some(1000)).unwrap();
    let (_, checks) = run(&moved);
    assert!(
        checks["ownership"].1.contains("CIS Docker Benchmark 3.5"),
        "{checks:?}"
    );

    // The key in a folder below the shared, sticky /tmp: a fail even though /tmp is root's.
    let shared = tempfile::tempdir_in("/tmp").unwrap();
    let (daemon, _) = installed(shared.path(), GOOD_CONFIG);
    let (code, checks) = run(&daemon);
    assert_eq!(code, Some(2));
    assert!(
        checks["permissions"]
            .1
            .contains("folder /tmp, on the path to"),
        "{checks:?}"
    );
}

/// A dockertls PKI's backup/ holds old, rotated-out certificates: never audited as live, even
/// when ca/ was moved offline or a run was killed before the new folders were in place.
#[test]
fn backups_are_not_audited_when_the_pki_is_incomplete() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    common::init_ok(&pki, &["--host", "localhost", "--client", "alice"]);
    let rotated = dockertls()
        .arg("--dir")
        .arg(&pki)
        .args(["rotate", "--all"])
        .output()
        .unwrap();
    assert!(rotated.status.success());
    std::fs::rename(pki.join("ca"), work.path().join("ca-offline")).unwrap();
    let output = dockertls()
        .arg("--dir")
        .arg(&pki)
        .args(["verify", "--format", "json"])
        .output()
        .unwrap();
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let paths: Vec<&str> = document["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths.len(), 2, "{paths:?}");
    assert!(paths.iter().all(|p| !p.contains("backup")), "{paths:?}");
    // Nothing live left (a killed init --force, say): nothing to check, not "all ok".
    std::fs::remove_dir_all(server_folder(&pki)).unwrap();
    std::fs::remove_dir_all(pki.join("clients")).unwrap();
    let output = dockertls()
        .arg("--dir")
        .arg(&pki)
        .arg("verify")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
}

/// Exit 3 (something could not be checked) is "unknown" in the JSON too, never "ok".
#[test]
fn json_status_is_unknown_when_something_could_not_be_checked() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    common::init_ok(&pki, &["--host", "localhost"]);
    for paths in [
        vec![work.path().join("nosuch")],
        vec![work.path().join("nosuch"), pki.clone()],
    ] {
        let output = dockertls()
            .arg("verify")
            .args(&paths)
            .args(["--format", "json"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(3));
        let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(document["status"], "unknown", "{paths:?}");
    }
    let output = dockertls()
        .arg("verify")
        .arg(&pki)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(document["status"], "ok");
}
