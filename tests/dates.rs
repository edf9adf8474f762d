//! Far-future and far-past certificate dates: a CA or leaf made by `openssl ca` with
//! notBefore 1950 (UTCTime's first year), the 2049/2050 UTCTime/GeneralizedTime switch,
//! notAfter 9999-12-31T23:59:59Z (RFC 5280's "no well-defined expiration date"), notAfter
//! before notBefore, and an expired CA. No command may panic (exit 101) over them; each gives
//! an answer or one clear `error:` line.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{dockertls, find_tool, init_ok};
use common::{server_file, server_folder};

/// Runs dockertls on `pki` and checks that it neither panicked nor printed a panic.
fn run(pki: &Path, args: &[&str]) -> Output {
    let output = dockertls()
        .arg("--dir")
        .arg(pki)
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(
        output.status.code(),
        Some(101),
        "{args:?} panicked: {stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{args:?}: {stderr}"
    );
    output
}

fn ok(pki: &Path, args: &[&str]) -> String {
    let output = run(pki, args);
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `openssl ca` in a scratch folder, signing with explicit start and end dates.
struct OpensslCa {
    openssl: PathBuf,
    work: PathBuf,
}

const CA_CNF: &str = "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = new\n\
serial = serial\ndefault_md = sha256\npolicy = p\nunique_subject = no\n[p]\ncommonName = supplied\n\
[ca_ext]\nbasicConstraints = critical,CA:TRUE,pathlen:0\nkeyUsage = critical,keyCertSign,cRLSign\n\
subjectKeyIdentifier = hash\n\
[server_ext]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n\
extendedKeyUsage = serverAuth\nsubjectAltName = DNS:docker.example.com,IP:127.0.0.1\n\
subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n\
[client_ext]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n\
extendedKeyUsage = clientAuth\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n";

impl OpensslCa {
    fn new(openssl: PathBuf, work: &Path) -> OpensslCa {
        let work = work.join("openssl-ca");
        std::fs::create_dir_all(work.join("new")).unwrap();
        std::fs::write(work.join("ca.cnf"), CA_CNF).unwrap();
        std::fs::write(work.join("index.txt"), "").unwrap();
        std::fs::write(work.join("serial"), "1000\n").unwrap();
        OpensslCa { openssl, work }
    }

    fn openssl(&self, args: &[&str]) {
        let output = Command::new(&self.openssl)
            .current_dir(&self.work)
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Signs a certificate for `key` (subject CN=`cn`) and writes it to `out`; `key` itself
    /// signs when `ca` is None (a self-signed CA).
    fn sign(
        &self,
        key: &Path,
        cn: &str,
        dates: (&str, &str),
        ext: &str,
        ca: Option<&Path>,
        out: &Path,
    ) {
        let csr = self.work.join("req.csr");
        let (key, csr_s, out_s) = (
            key.to_str().unwrap(),
            csr.to_str().unwrap(),
            out.to_str().unwrap(),
        );
        self.openssl(&[
            "req",
            "-new",
            "-key",
            key,
            "-subj",
            &format!("/O=dockertls/CN={cn}"),
            "-out",
            csr_s,
        ]);
        let mut args: Vec<String> = [
            "ca", "-batch", "-config", "ca.cnf", "-notext", "-in", csr_s, "-out", out_s,
        ]
        .iter()
        .chain(&[
            "-startdate",
            dates.0,
            "-enddate",
            dates.1,
            "-extensions",
            ext,
        ])
        .map(|s| s.to_string())
        .collect();
        match ca {
            None => args.extend(["-selfsign".to_string(), "-keyfile".into(), key.into()]),
            Some(ca_dir) => {
                for (flag, file) in [("-cert", "ca.pem"), ("-keyfile", "ca-key.pem")] {
                    args.push(flag.into());
                    args.push(ca_dir.join(file).to_string_lossy().into_owned());
                }
            }
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.openssl(&args);
    }
}

/// A dockertls PKI (clients alice and bob) whose CA and certificates are replaced by ones
/// `openssl ca` signed with the given dates (UTCTime or GeneralizedTime, as OpenSSL writes
/// them: `YYMMDDHHMMSSZ` or `YYYYMMDDHHMMSSZ`). Returns None when openssl is missing.
fn pki_with_dates(
    work: &Path,
    ca: (&str, &str),
    server: (&str, &str),
    clients: (&str, &str),
) -> Option<PathBuf> {
    let openssl = find_tool(
        "openssl",
        "openssl ca makes the certificates with edge dates",
    )?;
    let pki = work.join("pki");
    init_ok(
        &pki,
        &["--host", "docker.example.com", "--client", "alice,bob"],
    );
    let signer = OpensslCa::new(openssl, work);
    let ca_dir = pki.join("ca");
    signer.sign(
        &ca_dir.join("ca-key.pem"),
        "edge CA",
        ca,
        "ca_ext",
        None,
        &ca_dir.join("ca.pem"),
    );
    let server_dir = server_folder(&pki);
    signer.sign(
        &server_dir.join("server-key.pem"),
        "docker.example.com",
        server,
        "server_ext",
        Some(&ca_dir),
        &server_dir.join("server-cert.pem"),
    );
    std::fs::copy(ca_dir.join("ca.pem"), server_dir.join("ca.pem")).unwrap();
    for name in ["alice", "bob"] {
        let dir = pki.join("clients").join(name);
        signer.sign(
            &dir.join("key.pem"),
            name,
            clients,
            "client_ext",
            Some(&ca_dir),
            &dir.join("cert.pem"),
        );
        std::fs::copy(ca_dir.join("ca.pem"), dir.join("ca.pem")).unwrap();
    }
    Some(pki)
}

/// The dates of a certificate file, as `openssl x509 -dates` prints them.
fn dates(pem: &Path) -> String {
    let output = Command::new("openssl")
        .args(["x509", "-noout", "-dates", "-in"])
        .arg(pem)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Whether the certificate verifies against the PKI's CA (openssl, strict).
fn openssl_verifies(pki: &Path, cert: &Path, purpose: &str) -> bool {
    Command::new("openssl")
        .args(["verify", "-x509_strict", "-purpose", purpose, "-CAfile"])
        .arg(pki.join("ca/ca.pem"))
        .arg(cert)
        .output()
        .unwrap()
        .status
        .success()
}

/// The read-only commands give an answer, whatever the dates.
fn read_only_commands_answer(pki: &Path) {
    run(pki, &["verify"]);
    run(pki, &["verify", "--format", "json"]);
    run(pki, &["verify", "--cis"]);
    ok(pki, &["client", "list"]);
    let json: serde_json::Value =
        serde_json::from_str(&ok(pki, &["client", "list", "--format", "json"])).unwrap();
    assert!(json["clients"].as_array().unwrap().len() >= 2, "{json}");
    for shell in ["sh", "fish", "powershell"] {
        ok(pki, &["env", "alice", "--shell", shell]);
    }
    ok(pki, &["env", "alice", "--context"]);
    ok(pki, &["rotate", "--dry-run"]);
    ok(pki, &["rotate", "--ca", "--dry-run"]);
}

const NINES: &str = "99991231235959Z";

#[test]
fn a_ca_and_leaves_valid_from_1950_to_9999_rotate_and_sign() {
    let work = tempfile::tempdir().unwrap();
    let Some(pki) = pki_with_dates(
        work.path(),
        ("500101000000Z", NINES),
        ("500101000000Z", NINES),
        ("500101000000Z", NINES),
    ) else {
        return;
    };
    assert!(dates(&pki.join("ca/ca.pem")).contains("notAfter=Dec 31 23:59:59 9999 GMT"));
    assert!(dates(&pki.join("ca/ca.pem")).contains("notBefore=Jan  1 00:00:00 1950 GMT"));
    read_only_commands_answer(&pki);
    let list = ok(&pki, &["client", "list", "--format", "json"]);
    assert!(
        list.contains("\"not_after\": \"9999-12-31T23:59:59Z\""),
        "{list}"
    );
    assert!(list.contains("\"status\": \"ok\""), "{list}");

    // A new client under a CA that never expires gets the validity asked for.
    let out = ok(&pki, &["client", "add", "carol", "--days", "36500"]);
    assert!(out.contains("added client carol"), "{out}");
    assert!(openssl_verifies(
        &pki,
        &pki.join("clients/carol/cert.pem"),
        "sslclient"
    ));
    ok(&pki, &["client", "add", "dave"]);

    // --all re-issues leaves whose lifetime is 8050 years: capped at 100 years, with a note.
    let out = ok(&pki, &["rotate", "--all"]);
    assert!(out.contains("re-issued server"), "{out}");
    assert!(
        out.contains("note: server docker.example.com was valid from 1950-01-01 to 9999-12-31"),
        "{out}"
    );
    assert!(openssl_verifies(
        &pki,
        &server_file(&pki, "server-cert.pem"),
        "sslserver"
    ));

    // --ca replaces the CA: 100 years, not a panic.
    let out = ok(&pki, &["rotate", "--ca"]);
    assert!(out.contains("created a new CA"), "{out}");
    assert!(
        out.contains("note: the CA was valid from 1950-01-01 to 9999-12-31"),
        "{out}"
    );
    assert!(!dates(&pki.join("ca/ca.pem")).contains("9999"));
    for (cert, purpose) in [
        ("servers/docker.example.com/server-cert.pem", "sslserver"),
        ("clients/alice/cert.pem", "sslclient"),
        ("clients/carol/cert.pem", "sslclient"),
    ] {
        assert!(openssl_verifies(&pki, &pki.join(cert), purpose), "{cert}");
    }
    read_only_commands_answer(&pki);
}

#[test]
fn leaves_on_both_sides_of_the_2050_switch_rotate_when_due() {
    let work = tempfile::tempdir().unwrap();
    // The server ends on UTCTime's last second, the clients on GeneralizedTime's first.
    let Some(pki) = pki_with_dates(
        work.path(),
        ("500101000000Z", NINES),
        ("491231000000Z", "491231235959Z"),
        ("20491231000000Z", "20500101000000Z"),
    ) else {
        return;
    };
    read_only_commands_answer(&pki);
    let list = ok(&pki, &["client", "list", "--format", "json"]);
    assert!(
        list.contains("\"not_after\": \"2050-01-01T00:00:00Z\""),
        "{list}"
    );
    // "Due within 100 years" would select one-day certificates whose re-issue is due again at
    // once: refused, naming --days (issue 15), and nothing changes.
    let before = common::tree(&pki);
    let refused = run(&pki, &["rotate", "--within", "36500"]);
    let message = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{message}");
    assert!(
        message.contains("--within 36500") && message.contains("--days"),
        "{message}"
    );
    assert_eq!(common::tree(&pki), before);
    // Everything, re-issued with its own one-day lifetime.
    let out = ok(&pki, &["rotate", "--all"]);
    assert!(
        out.contains("re-issued server") && out.contains("re-issued client alice"),
        "{out}"
    );
    assert!(openssl_verifies(
        &pki,
        &pki.join("clients/alice/cert.pem"),
        "sslclient"
    ));
    ok(&pki, &["rotate", "--ca"]);
    read_only_commands_answer(&pki);
}

#[test]
fn a_leaf_whose_not_after_is_before_its_not_before_is_re_issued_with_the_default_validity() {
    let work = tempfile::tempdir().unwrap();
    let Some(pki) = pki_with_dates(
        work.path(),
        ("20200101000000Z", NINES),
        ("20300101000000Z", "20200101000000Z"),
        ("20300101000000Z", "20200101000000Z"),
    ) else {
        return;
    };
    read_only_commands_answer(&pki);
    let list = ok(&pki, &["client", "list"]);
    assert!(list.contains("expired"), "{list}");
    let out = ok(&pki, &["rotate"]);
    assert!(out.contains("re-issued client alice"), "{out}");
    assert!(out.contains("the new one is valid for 365 days"), "{out}");
    assert!(openssl_verifies(
        &pki,
        &pki.join("clients/alice/cert.pem"),
        "sslclient"
    ));
    ok(&pki, &["rotate", "--ca"]);
}

#[test]
fn an_expired_ca_is_refused_for_signing_and_replaced_by_rotate_ca() {
    let work = tempfile::tempdir().unwrap();
    let Some(pki) = pki_with_dates(
        work.path(),
        ("500101000000Z", "600101000000Z"),
        ("500101000000Z", "600101000000Z"),
        ("500101000000Z", "600101000000Z"),
    ) else {
        return;
    };
    read_only_commands_answer(&pki);
    for args in [&["client", "add", "carol"][..], &["rotate", "--all"]] {
        let output = run(&pki, args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.starts_with("error: the CA expired on 1960-01-01"),
            "{stderr}"
        );
        assert!(stderr.contains("rotate --ca"), "{stderr}");
    }
    let out = ok(&pki, &["rotate", "--ca"]);
    assert!(out.contains("created a new CA"), "{out}");
    assert!(openssl_verifies(
        &pki,
        &server_file(&pki, "server-cert.pem"),
        "sslserver"
    ));
    ok(&pki, &["client", "add", "carol"]);
}

/// The machine's clock at the edges (faketime): init, client add and rotate write dates on
/// both sides of 1950 and up to 9999-12-31T23:59:59Z, and OpenSSL reads them back.
#[test]
fn init_client_add_and_rotate_at_the_edges_of_time() {
    let Some(faketime) = common::faketime_tool("faketime sets the clock to the edge dates") else {
        return;
    };
    if find_tool("openssl", "openssl reads the dates back").is_none() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    // `-f`: the clock stands still at that moment (without it, it runs on from there, and a
    // slow start on a loaded machine moves every date by a second).
    let at = |clock: &str, pki: &Path, args: &[&str]| {
        let output = Command::new(&faketime)
            .args(["-f", clock])
            .arg(env!("CARGO_BIN_EXE_dockertls"))
            .arg("--dir")
            .arg(pki)
            .args(args)
            .env_remove("DOCKERTLS_DIR")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{clock} {args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    };
    let late = work.path().join("late");
    at(
        "9999-12-31 23:50:00",
        &late,
        &[
            "init",
            "--host",
            "docker.example.com",
            "--days",
            "36500",
            "--ca-days",
            "36500",
        ],
    );
    for file in [
        "ca/ca.pem",
        "servers/docker.example.com/server-cert.pem",
        "clients/client/cert.pem",
    ] {
        let d = dates(&late.join(file));
        assert!(
            d.contains("notBefore=Dec 31 23:45:00 9999 GMT"),
            "{file}: {d}"
        );
        assert!(
            d.contains("notAfter=Dec 31 23:59:59 9999 GMT"),
            "{file}: {d}"
        );
    }
    at(
        "9999-12-31 23:55:00",
        &late,
        &["client", "add", "zoe", "--days", "36500"],
    );
    at("9999-12-31 23:56:00", &late, &["rotate", "--all"]);
    at("9999-12-31 23:57:00", &late, &["rotate", "--ca"]);
    assert!(
        dates(&late.join("clients/zoe/cert.pem")).contains("notAfter=Dec 31 23:59:59 9999 GMT")
    );

    let early = work.path().join("early");
    at(
        "1949-12-31 23:59:00",
        &early,
        &["init", "--host", "docker.example.com"],
    );
    let d = dates(&early.join("ca/ca.pem"));
    assert!(d.contains("notBefore=Dec 31 23:54:00 1949 GMT"), "{d}");
    // 1949 needs GeneralizedTime, 1959 UTCTime.
    let parsed = Command::new("openssl")
        .args(["asn1parse", "-in"])
        .arg(early.join("ca/ca.pem"))
        .output()
        .unwrap();
    let parsed = String::from_utf8_lossy(&parsed.stdout);
    assert!(
        parsed.contains("GENERALIZEDTIME   :19491231235400Z"),
        "{parsed}"
    );
    assert!(parsed.contains("UTCTIME           :5912"), "{parsed}");
    at("2049-12-31 23:58:00", &early, &["rotate", "--ca"]);
    at(
        "2049-12-31 23:59:59",
        &early,
        &["client", "add", "yann", "--days", "1"],
    );
    let d = dates(&early.join("clients/yann/cert.pem"));
    assert!(d.contains("notAfter=Jan  1 23:59:59 2050 GMT"), "{d}");
}

#[test]
fn a_ca_that_is_not_valid_yet_is_refused_for_signing_and_replaced_by_rotate_ca() {
    let work = tempfile::tempdir().unwrap();
    // Valid from UTCTime's last second: after any clock this test runs on.
    let Some(pki) = pki_with_dates(
        work.path(),
        ("491231235959Z", NINES),
        ("491231235959Z", NINES),
        ("491231235959Z", NINES),
    ) else {
        return;
    };
    read_only_commands_answer(&pki);
    let list = ok(&pki, &["client", "list"]);
    assert!(list.contains("not-yet-valid"), "{list}");
    for args in [&["client", "add", "carol"][..], &["rotate", "--all"]] {
        let output = run(&pki, args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.starts_with("error: the CA is not valid before 2049-12-31"),
            "{stderr}"
        );
    }
    ok(&pki, &["rotate", "--ca"]);
    assert!(openssl_verifies(
        &pki,
        &pki.join("clients/alice/cert.pem"),
        "sslclient"
    ));
    ok(&pki, &["client", "add", "carol"]);
}

/// probe against a real dockerd serving a certificate valid until 9999-12-31, then one that
/// expired in 1960: an answer each time, never a panic.
#[test]
fn probe_reports_far_future_and_long_expired_server_certificates() {
    // (name, the server certificate's dates, whether the probe passes); None: any answer
    // but a panic. rustls' webpki reads no date before 1970 (src/time.rs): a server
    // certificate valid from 1950 is refused by probe, though Go's dockerd and CLI take it.
    for (name, dates, expect_ok) in [
        ("nines", ("20200101000000Z", NINES), Some(true)),
        ("expired", ("500101000000Z", "600101000000Z"), Some(false)),
        ("from-1950", ("500101000000Z", NINES), None),
    ] {
        let work = tempfile::tempdir().unwrap();
        let Some(pki) = pki_with_dates(
            work.path(),
            ("500101000000Z", NINES),
            dates,
            ("500101000000Z", NINES),
        ) else {
            return;
        };
        let Some(daemon) = common::Dockerd::start(&pki) else {
            return;
        };
        let endpoint = format!("tcp://127.0.0.1:{}", daemon.port);
        for format in ["json", "text"] {
            let output = run(
                &pki,
                &["probe", &endpoint, "--client", "alice", "--format", format],
            );
            let stdout = String::from_utf8_lossy(&output.stdout);
            let Some(expect_ok) = expect_ok else {
                assert!(!stdout.is_empty(), "{name} {format}");
                continue;
            };
            assert_eq!(
                output.status.success(),
                expect_ok,
                "{name} {format}: {stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            );
            if expect_ok && format == "json" {
                let document: serde_json::Value = serde_json::from_str(&stdout).unwrap();
                let checks = common::check_map(&document["checks"]);
                assert_eq!(checks["server-certificate"].0, "ok", "{document:#}");
                assert!(
                    checks["server-certificate"].1.contains("more days"),
                    "{document:#}"
                );
            }
            if !expect_ok {
                assert!(stdout.contains("1960-01-01"), "{name} {format}: {stdout}");
            }
        }
    }
}

/// A CA with less than a day left: client add refuses (no certificate of zero days), rotate
/// re-issues up to the CA's end and says so.
#[test]
fn a_ca_with_less_than_a_day_left() {
    let Some(faketime) = common::faketime_tool("faketime moves the clock to the CA's last day")
    else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    let at = |clock: &str, args: &[&str]| {
        let output = Command::new(&faketime)
            .args(["-f", clock])
            .arg(env!("CARGO_BIN_EXE_dockertls"))
            .arg("--dir")
            .arg(&pki)
            .args(args)
            .env_remove("DOCKERTLS_DIR")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(!stderr.contains("panicked"), "{stderr}");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr,
        )
    };
    let (code, _, err) = at(
        "2030-06-01 12:00:00",
        &[
            "init",
            "--host",
            "docker.example.com",
            "--days",
            "1",
            "--ca-days",
            "1",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = at("2030-06-02 11:00:00", &["client", "add", "carol"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with("error: the CA expires on 2030-06-02 (in less than a day)"),
        "{err}"
    );
    assert!(err.contains("rotate --ca"), "{err}");
    let (code, out, err) = at("2030-06-02 11:00:00", &["rotate", "--all"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("note: some certificates end with the CA on 2030-06-02"),
        "{out}"
    );
    let (code, out, err) = at("2030-06-02 11:00:00", &["rotate", "--ca"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        !out.contains("note: some certificates end with the CA"),
        "{out}"
    );
}

/// A clock past 9999 (a broken RTC, a hostile faketime): every command refuses with one
/// clear line instead of panicking; verify and probe say they could not check (exit 3).
#[test]
fn a_clock_past_9999_is_refused_not_a_panic() {
    let Some(faketime) = common::faketime_tool("faketime sets the clock past 9999") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    common::init_ok(&pki, &["--host", "docker.example.com", "--client", "alice"]);
    for (args, code) in [
        (&["verify"][..], 3),
        (&["client", "list"], 2),
        (&["client", "add", "bob"], 2),
        (&["rotate", "--all"], 2),
        (&["env", "alice"], 2),
    ] {
        let output = Command::new(&faketime)
            .arg("10001-01-01 00:00:00")
            .arg(env!("CARGO_BIN_EXE_dockertls"))
            .arg("--dir")
            .arg(&pki)
            .args(args)
            .env_remove("DOCKERTLS_DIR")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: this machine's clock reads a year after 9999\nhint: "),
            "{args:?}: {stderr}"
        );
    }
}
