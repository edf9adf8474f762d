//! Issue 12: keys born where they live. CSRs made by `openssl req` and by `dockertls request`
//! are read, judged and signed as the CA decides; openssl checks every certificate.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use dockertls::csr::{self, Csr};
use dockertls::names::Address;
use dockertls::pki::{self, KeyType, LeafRequest, Role};

fn openssl() -> Option<PathBuf> {
    find_tool(
        "openssl",
        "CSRs made by openssl req, certificates checked by openssl",
    )
}

fn run_ok(command: &mut Command) -> String {
    let output = command.output().expect("run");
    assert!(output.status.success(), "{command:?}: {}", streams(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `openssl req` with a new key from `newkey` (`rsa:2048`, `ec`...) and extra arguments; the
/// CSR's path.
fn openssl_req(openssl: &Path, dir: &Path, tag: &str, newkey: &[&str], extra: &[&str]) -> PathBuf {
    let key = dir.join(format!("{tag}.key"));
    let csr = dir.join(format!("{tag}.csr"));
    run_ok(
        Command::new(openssl)
            .args(["req", "-new", "-nodes", "-subj", "/CN=requested.example"])
            .args(newkey)
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr)
            .args(extra),
    );
    csr
}

fn ca() -> (pki::Issued, pki::Ca) {
    let key = KeyType::EcdsaP256.generate().unwrap();
    pki::new_ca(key, ::time::OffsetDateTime::now_utc(), 30).unwrap()
}

fn parse_file(path: &Path) -> Result<Csr, String> {
    csr::parse(&path.display().to_string(), &std::fs::read(path).unwrap())
}

/// Signs `csr` as the CA decides for `role`, with `sans` named by the operator; writes the CA
/// and the certificate into `dir` and returns the certificate's path and the decision.
fn sign(
    dir: &Path,
    csr: &Csr,
    role: Role,
    cn: &str,
    sans: &[Address],
    accept: bool,
) -> (PathBuf, csr::Decision) {
    let (ca_issued, ca) = ca();
    let decision = csr::decide(csr, cn, sans, accept);
    let leaf = LeafRequest {
        cn,
        sans: &decision.sans,
        role,
        now: ::time::OffsetDateTime::now_utc(),
        days: 10,
    };
    let signed = ca
        .issue_for_public_key(&leaf, &csr.key, csr.key.rsa)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), &ca_issued.cert_pem).unwrap();
    let cert = dir.join("cert.pem");
    std::fs::write(&cert, &signed.cert_pem).unwrap();
    (cert, decision)
}

fn x509_text(openssl: &Path, cert: &Path) -> String {
    run_ok(
        Command::new(openssl)
            .args(["x509", "-noout", "-text", "-in"])
            .arg(cert),
    )
}

fn public_key_of(openssl: &Path, args: &[&str], path: &Path) -> String {
    run_ok(Command::new(openssl).args(args).arg(path))
}

#[test]
fn openssl_req_csrs_of_every_accepted_key_type_are_signed_for_their_own_key() {
    let Some(openssl) = openssl() else { return };
    let work = tempfile::tempdir().unwrap();
    let kinds: [(&str, &[&str], bool); 5] = [
        ("rsa2048", &["-newkey", "rsa:2048"], true),
        ("rsa3072", &["-newkey", "rsa:3072"], true),
        (
            "p256",
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            false,
        ),
        (
            "p384",
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
            false,
        ),
        ("ed25519", &["-newkey", "ed25519"], false),
    ];
    for (tag, newkey, rsa) in kinds {
        let dir = work.path().join(tag);
        std::fs::create_dir(&dir).unwrap();
        let csr_path = openssl_req(&openssl, &dir, tag, newkey, &[]);
        let csr = parse_file(&csr_path).unwrap_or_else(|e| panic!("{tag}: {e}"));
        assert_eq!(csr.key.rsa, rsa, "{tag}");
        let host = Address::Dns("docker.example.com".into());
        let (cert, decision) = sign(
            &dir,
            &csr,
            Role::Server,
            "docker.example.com",
            &[host],
            false,
        );
        // The CN was not the one asked for: said.
        assert!(
            decision
                .dropped
                .iter()
                .any(|d| d.contains("CN=requested.example")),
            "{tag}: {:?}",
            decision.dropped
        );
        let verify = Command::new(&openssl)
            .args([
                "verify",
                "-x509_strict",
                "-purpose",
                "sslserver",
                "-verify_hostname",
            ])
            .arg("docker.example.com")
            .arg("-CAfile")
            .arg(dir.join("ca.pem"))
            .arg(&cert)
            .output()
            .unwrap();
        assert!(verify.status.success(), "{tag}: {}", streams(&verify));
        // The certificate carries exactly the key of the request.
        assert_eq!(
            public_key_of(&openssl, &["x509", "-noout", "-pubkey", "-in"], &cert),
            public_key_of(
                &openssl,
                &["pkey", "-pubout", "-in"],
                &dir.join(format!("{tag}.key"))
            ),
            "{tag}"
        );
        let text = x509_text(&openssl, &cert);
        assert!(
            text.contains("Subject: CN = docker.example.com"),
            "{tag}: {text}"
        );
    }
}

#[test]
fn a_greedy_csr_gets_none_of_what_it_asks_for() {
    let Some(openssl) = openssl() else { return };
    let work = tempfile::tempdir().unwrap();
    let greedy = [
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        "-addext",
        "extendedKeyUsage=serverAuth,codeSigning",
        "-addext",
        "subjectAltName=DNS:evil.example,IP:203.0.113.7,email:x@evil.example",
        "-addext",
        "nsComment=please",
    ];
    let csr_path = openssl_req(
        &openssl,
        work.path(),
        "greedy",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        &greedy,
    );
    let csr = parse_file(&csr_path).unwrap();
    let host = Address::Dns("docker.example.com".into());
    let (cert, decision) = sign(
        work.path(),
        &csr,
        Role::Server,
        "docker.example.com",
        std::slice::from_ref(&host),
        false,
    );
    let text = x509_text(&openssl, &cert);
    assert!(
        text.contains("CA:FALSE") && !text.contains("CA:TRUE"),
        "{text}"
    );
    assert!(
        !text.contains("Certificate Sign") && !text.contains("CRL Sign"),
        "{text}"
    );
    assert!(!text.contains("Code Signing"), "{text}");
    assert!(text.contains("TLS Web Server Authentication"), "{text}");
    assert!(!text.contains("evil"), "{text}");
    assert!(!text.contains("203.0.113.7"), "{text}");
    assert!(
        !text.contains("please") && !text.contains("Netscape"),
        "{text}"
    );
    assert!(text.contains("DNS:docker.example.com"), "{text}");
    let dropped = decision.dropped.join("\n");
    for said in [
        "CA:TRUE",
        "Key Cert Sign",
        "codeSigning",
        "evil.example, 203.0.113.7",
        "email:x@evil.example",
        "2.16.840.1.113730.1.13",
        "CN=requested.example",
    ] {
        assert!(dropped.contains(said), "{said} not said in:\n{dropped}");
    }

    // --accept-csr-sans takes its DNS and IP SANs, and nothing else.
    let (cert, decision) = sign(
        work.path(),
        &csr,
        Role::Server,
        "docker.example.com",
        std::slice::from_ref(&host),
        true,
    );
    let text = x509_text(&openssl, &cert);
    assert!(
        text.contains("DNS:docker.example.com, DNS:evil.example, IP Address:203.0.113.7"),
        "{text}"
    );
    assert!(
        text.contains("CA:FALSE") && !text.contains("Code Signing"),
        "{text}"
    );
    assert!(!text.contains("email"), "{text}");
    assert_eq!(decision.taken_from_csr.len(), 2);
}

#[test]
fn a_client_csr_gets_client_auth_only() {
    let Some(openssl) = openssl() else { return };
    let work = tempfile::tempdir().unwrap();
    let csr_path = openssl_req(
        &openssl,
        work.path(),
        "alice",
        &["-newkey", "rsa:2048"],
        &["-addext", "extendedKeyUsage=serverAuth,clientAuth"],
    );
    let csr = parse_file(&csr_path).unwrap();
    let (cert, _) = sign(work.path(), &csr, Role::Client, "alice", &[], false);
    let text = x509_text(&openssl, &cert);
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    assert!(!text.contains("TLS Web Server Authentication"), "{text}");
    assert!(
        text.contains("Key Encipherment"),
        "RSA as dockertls' own: {text}"
    );
    let verify = Command::new(&openssl)
        .args(["verify", "-x509_strict", "-purpose", "sslclient", "-CAfile"])
        .arg(work.path().join("ca.pem"))
        .arg(&cert)
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", streams(&verify));
}

/// A certificate signed from a CSR has the same extensions, in the same order and with the same
/// criticality, as one dockertls makes with its own key.
#[test]
fn a_csr_made_certificate_is_identical_in_form_to_a_dockertls_made_one() {
    use x509_parser::prelude::*;
    let (_, ca) = ca();
    let now = ::time::OffsetDateTime::now_utc();
    let sans = [Address::Dns("docker.example.com".into())];
    for key_type in [KeyType::EcdsaP256, KeyType::Rsa2048, KeyType::Ed25519] {
        for role in [Role::Server, Role::Client] {
            let sans: &[Address] = if role == Role::Server { &sans } else { &[] };
            let leaf = LeafRequest {
                cn: "docker.example.com",
                sans,
                role,
                now,
                days: 10,
            };
            let own = ca
                .issue(&leaf, key_type.generate().unwrap())
                .unwrap()
                .cert_pem;
            let request = csr::make_request(key_type, "docker.example.com", sans).unwrap();
            let parsed = csr::parse("req", request.csr_pem.as_bytes()).unwrap();
            let from_csr = ca
                .issue_for_public_key(&leaf, &parsed.key, parsed.key.rsa)
                .unwrap();
            let shape = |pem: &str| {
                let (_, pem) = parse_x509_pem(pem.as_bytes()).unwrap();
                let cert = pem.parse_x509().unwrap();
                let extensions: Vec<(String, bool)> = cert
                    .extensions()
                    .iter()
                    .map(|e| (e.oid.to_id_string(), e.critical))
                    .collect();
                let ku = cert.key_usage().unwrap().map(|k| k.value.flags);
                let eku = cert
                    .extended_key_usage()
                    .unwrap()
                    .map(|e| (e.value.server_auth, e.value.client_auth));
                (
                    extensions,
                    ku,
                    eku,
                    cert.subject().to_string(),
                    cert.raw_serial().len(),
                )
            };
            assert_eq!(
                shape(&own),
                shape(&from_csr.cert_pem),
                "{key_type:?} {role:?}"
            );
        }
    }
}

#[test]
fn a_flipped_signature_byte_a_weak_key_or_sha1_is_refused_in_one_line() {
    let Some(openssl) = openssl() else { return };
    let work = tempfile::tempdir().unwrap();
    // A byte of the signature flipped (the last byte of the DER is the signature's).
    let good = openssl_req(
        &openssl,
        work.path(),
        "good",
        &["-newkey", "rsa:2048"],
        &["-outform", "DER"],
    );
    let mut der = std::fs::read(&good).unwrap();
    assert!(parse_file(&good).is_ok(), "a DER request is read as such");
    let last = der.len() - 1;
    der[last] ^= 0x01;
    let err = csr::parse("flipped.csr", &der).unwrap_err();
    assert!(err.contains("signature does not verify"), "{err}");
    // ... and in the signed part: the subject's name changed.
    let mut der = std::fs::read(&good).unwrap();
    let at = der.windows(9).position(|w| w == b"requested").unwrap();
    der[at] = b'R';
    let err = csr::parse("renamed.csr", &der).unwrap_err();
    assert!(err.contains("signature does not verify"), "{err}");

    let weak = openssl_req(&openssl, work.path(), "weak", &["-newkey", "rsa:1024"], &[]);
    let err = parse_file(&weak).unwrap_err();
    assert!(err.contains("an RSA key of 1024 bits"), "{err}");
    for (tag, curve) in [("p521", "P-521"), ("k256", "secp256k1")] {
        let csr = openssl_req(
            &openssl,
            work.path(),
            tag,
            &[
                "-newkey",
                "ec",
                "-pkeyopt",
                &format!("ec_paramgen_curve:{curve}"),
            ],
            &[],
        );
        let err = parse_file(&csr).unwrap_err();
        assert!(err.contains("an ECDSA key on the curve"), "{curve}: {err}");
    }
    let sha1 = openssl_req(
        &openssl,
        work.path(),
        "sha1",
        &["-newkey", "rsa:2048"],
        &["-sha1"],
    );
    let err = parse_file(&sha1).unwrap_err();
    assert!(err.contains("SHA-1"), "{err}");
    assert!(!err.contains('\n'), "{err}");
}

#[test]
fn garbage_trailing_junk_and_other_pem_are_refused_in_one_line() {
    let request = csr::make_request(KeyType::EcdsaP256, "x", &[]).unwrap();
    let pem = request.csr_pem.clone();
    use rustls_pki_types::pem::PemObject;
    let der = rustls_pki_types::CertificateSigningRequestDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .as_ref()
        .to_vec();
    let (ca_issued, _) = ca();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "neither a PEM"),
        ("text", b"hello\n".to_vec(), "neither a PEM"),
        ("binary", vec![0xff; 100], "neither a PEM"),
        (
            "junk after",
            format!("{pem}junk\n").into_bytes(),
            "before or after",
        ),
        (
            "junk before",
            format!("junk\n{pem}").into_bytes(),
            "before or after",
        ),
        (
            "two",
            format!("{pem}{pem}").into_bytes(),
            "more than one PEM block",
        ),
        (
            "certificate",
            ca_issued.cert_pem.into_bytes(),
            "neither a PEM",
        ),
        ("der junk", [der.as_slice(), b"x"].concat(), "1 bytes after"),
        (
            "der cut",
            der[..der.len() - 3].to_vec(),
            "not a valid PKCS#10",
        ),
        (
            "bad base64",
            pem.replacen("-----\n", "-----\n!!", 1).into_bytes(),
            "does not decode",
        ),
    ];
    for (what, bytes, expected) in cases {
        let err = csr::parse("in.csr", &bytes).unwrap_err();
        assert!(err.contains(expected), "{what}: {err}");
        assert!(
            err.starts_with("in.csr") || err.contains("in.csr"),
            "{what}: {err}"
        );
        assert!(!err.contains('\n'), "{what}: {err}");
    }
    // With white space around it, and as DER, the same request is read.
    assert!(csr::parse("in.csr", format!("\n\n{pem}\n\n").as_bytes()).is_ok());
    assert!(csr::parse("in.csr", pem.replace('\n', "\r\n").as_bytes()).is_ok());
    assert!(csr::parse("in.csr", &der).is_ok());
}

// ---- `dockertls request` through the binary ----

#[test]
fn request_writes_a_0400_key_and_its_csr_and_never_replaces_them() {
    let work = private_tempdir();
    let out = work.path().join("host");
    let ok = dockertls()
        .args([
            "request",
            "server",
            "--host",
            "docker.example.com",
            "--allow",
            "10.0.0.5",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", streams(&ok));
    assert_eq!(mode(&out), 0o700);
    assert_eq!(mode(&out.join("server-key.pem")), 0o400);
    assert_eq!(mode(&out.join("server.csr")), 0o444);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        stdout.contains(
            "dockertls sign server.csr --server NAME --host docker.example.com --allow 10.0.0.5"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains("PRIVATE"), "{stdout}");
    let csr = parse_file(&out.join("server.csr")).unwrap();
    assert_eq!(csr.common_name.as_deref(), Some("docker.example.com"));
    assert_eq!(
        csr.sans,
        [
            Address::Dns("docker.example.com".into()),
            Address::Ip("10.0.0.5".parse().unwrap())
        ]
    );
    let key = std::fs::read_to_string(out.join("server-key.pem")).unwrap();
    let key = rcgen::KeyPair::from_pem(&key).unwrap();
    assert!(
        csr::holds_key(&csr, &key),
        "the CSR is for the key beside it"
    );

    // Again into the same folder: refused, nothing changed.
    let before = tree(work.path());
    let again = dockertls()
        .args(["request", "server", "--host", "docker.example.com", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2), "{}", streams(&again));
    assert_one_error(&String::from_utf8_lossy(&again.stderr), "again");
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(tree_diff(&before, &tree(work.path())), "");

    // A client request beside it (other names): key.pem and client.csr.
    let client = dockertls()
        .args([
            "request",
            "client",
            "alice",
            "--key-type",
            "ed25519",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(client.status.success(), "{}", streams(&client));
    assert_eq!(mode(&out.join("key.pem")), 0o400);
    let csr = parse_file(&out.join("client.csr")).unwrap();
    assert_eq!(
        (csr.common_name.as_deref(), csr.key.description.as_str()),
        (Some("alice"), "Ed25519")
    );
}

#[test]
fn request_key_is_created_0400_under_any_umask() {
    let Some(strace) = find_tool("strace", "shows the mode each file is created with") else {
        return;
    };
    let work = private_tempdir();
    for umask in ["000", "077"] {
        let out = work.path().join(format!("u{umask}"));
        let script = format!(
            "umask {umask}; exec {} -f -e trace=openat,mkdir,mkdirat -o {}/trace {} request client bob --out {}",
            strace.display(),
            work.path().display(),
            env!("CARGO_BIN_EXE_dockertls"),
            out.display()
        );
        let output = Command::new("sh").args(["-c", &script]).output().unwrap();
        assert!(output.status.success(), "{}", streams(&output));
        let trace = std::fs::read_to_string(work.path().join("trace")).unwrap();
        let created: Vec<&str> = trace.lines().filter(|l| l.contains("key.pem")).collect();
        assert_eq!(created.len(), 1, "{trace}");
        assert!(
            created[0].contains("O_CREAT|O_EXCL") && created[0].contains("0400"),
            "{}",
            created[0]
        );
        assert_eq!(mode(&out.join("key.pem")), 0o400, "umask {umask}");
        assert_eq!(mode(&out), 0o700, "umask {umask}");
        assert_eq!(mode(&out.join("client.csr")), 0o444, "umask {umask}");
    }
}

#[test]
fn request_bad_input_is_one_line_exit_2_and_changes_nothing() {
    let work = private_tempdir();
    let base = work.path();
    std::fs::create_dir(base.join("taken")).unwrap();
    std::fs::write(base.join("taken/key.pem"), "mine").unwrap();
    std::fs::write(base.join("file"), "x").unwrap();
    std::os::unix::fs::symlink(base.join("elsewhere"), base.join("link")).unwrap();
    std::fs::create_dir(base.join("elsewhere")).unwrap();
    std::fs::create_dir(base.join("open")).unwrap();
    std::fs::set_permissions(
        base.join("open"),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let out = |name: &str| base.join(name).display().to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "server".into(),
                "--host".into(),
                "https://x.example".into(),
                "--out".into(),
                out("new"),
            ],
            "is a URL",
        ),
        (
            vec![
                "server".into(),
                "--host".into(),
                "x.example".into(),
                "--allow".into(),
                "*.x".into(),
                "--out".into(),
                out("new"),
            ],
            "wildcards",
        ),
        (
            vec![
                "client".into(),
                "../evil".into(),
                "--out".into(),
                out("new"),
            ],
            "one path component",
        ),
        (
            vec![
                "client".into(),
                "bob\u{1b}[2J".into(),
                "--out".into(),
                out("new"),
            ],
            "not allowed",
        ),
        (
            vec![
                "client".into(),
                "alice".into(),
                "--out".into(),
                out("taken"),
            ],
            "already exists",
        ),
        (
            vec!["client".into(), "alice".into(), "--out".into(), out("file")],
            "not a folder",
        ),
        (
            vec!["client".into(), "alice".into(), "--out".into(), out("link")],
            "symbolic link",
        ),
        (
            vec![
                "client".into(),
                "alice".into(),
                "--out".into(),
                out("missing/new"),
            ],
            "not an existing folder",
        ),
        (
            vec!["client".into(), "alice".into(), "--out".into(), out("open")],
            "others",
        ),
        (
            vec![
                "client".into(),
                "alice".into(),
                "--out".into(),
                out("open/new"),
            ],
            "others",
        ),
        (
            vec![
                "client".into(),
                "alice".into(),
                "--key-type".into(),
                "rsa-1024".into(),
                "--out".into(),
                out("new"),
            ],
            "invalid value",
        ),
        (vec!["client".into(), "alice".into()], "--out"),
    ];
    for (args, expected) in cases {
        let before = tree(base);
        let output = dockertls().arg("request").args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            streams(&output)
        );
        assert_one_error(&stderr, &format!("{args:?}"));
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains('\u{1b}'), "{args:?}: escaped");
        assert_eq!(tree_diff(&before, &tree(base)), "", "{args:?}");
    }
}

#[test]
fn request_failing_half_way_leaves_nothing_behind() {
    let Some(strace) = find_tool("strace", "injects a full disk into request's writes") else {
        return;
    };
    let work = private_tempdir();
    // The second write(2) is the CSR's (the first is the key's): the disk is full there.
    for (when, existing) in [(2, false), (2, true), (1, false)] {
        let out = work.path().join(format!("out-{when}-{existing}"));
        if existing {
            std::fs::create_dir(&out).unwrap();
            std::fs::write(out.join("notes.txt"), "mine").unwrap();
        }
        let before = tree(work.path());
        let output = Command::new(&strace)
            .args(["-f", "-o", "/dev/null", "-e", "trace=write"])
            .arg("-e")
            .arg(format!("inject=write:error=ENOSPC:when={when}"))
            .arg(env!("CARGO_BIN_EXE_dockertls"))
            .args(["request", "client", "carol", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{}", streams(&output));
        assert!(stderr.contains("No space left on device"), "{stderr}");
        assert_one_error(&stderr, "ENOSPC");
        assert_eq!(
            tree_diff(&before, &tree(work.path())),
            "",
            "when={when} existing={existing}"
        );
    }
}

/// `request` killed at any write, rename, flush or removal: its folder holds either no key
/// (and a re-run completes) or the key and the request for it; never a key without its
/// request, and a re-run never leaves a temporary file.
#[test]
fn request_killed_at_any_step_leaves_a_key_only_with_its_request() {
    let Some(strace) = find_tool("strace", "crash tests inject SIGKILL with strace") else {
        return;
    };
    let work = private_tempdir();
    let request = |out: &Path| {
        let mut command = dockertls();
        command.args(["request", "server", "--host", "docker.example.com", "--out"]);
        command.arg(out);
        command
    };
    let mut killed = 0;
    for syscall in ["write", "renameat2", "fsync", "unlinkat", "mkdirat"] {
        for n in 1..20 {
            let out = work.path().join(format!("out-{syscall}-{n}"));
            let mut traced = Command::new(&strace);
            traced
                .args(["-f", "-qq", "-o", "/dev/null", "-e"])
                .arg(format!("inject={syscall}:signal=KILL:when={n}"))
                .arg(env!("CARGO_BIN_EXE_dockertls"))
                .args(["request", "server", "--host", "docker.example.com", "--out"])
                .arg(&out);
            let output = traced.output().unwrap();
            if output.status.success() {
                break;
            }
            killed += 1;
            let key = out.join("server-key.pem");
            if key.exists() {
                assert!(
                    out.join("server.csr").exists(),
                    "{syscall} #{n}: a key without its request"
                );
                let csr = parse_file(&out.join("server.csr")).unwrap();
                let key = rcgen::KeyPair::from_pem(&std::fs::read_to_string(&key).unwrap());
                assert!(
                    csr::holds_key(&csr, &key.unwrap()),
                    "{syscall} #{n}: a key without its request"
                );
                continue;
            }
            let stale_request = out.join("server.csr").exists();
            let again = request(&out).output().unwrap();
            assert!(
                again.status.success(),
                "{syscall} #{n}: {}",
                streams(&again)
            );
            // A request left without its key is replaced, and said.
            assert_eq!(
                String::from_utf8_lossy(&again.stderr).contains("had no key beside it"),
                stale_request,
                "{syscall} #{n}: {}",
                streams(&again)
            );
            let names: Vec<String> = std::fs::read_dir(&out)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            let mut sorted = names.clone();
            sorted.sort();
            assert_eq!(sorted, ["server-key.pem", "server.csr"], "{syscall} #{n}");
            let csr = parse_file(&out.join("server.csr")).unwrap();
            let key = std::fs::read_to_string(out.join("server-key.pem")).unwrap();
            assert!(
                csr::holds_key(&csr, &rcgen::KeyPair::from_pem(&key).unwrap()),
                "{syscall} #{n}: the re-run's request is not for its key"
            );
            assert_eq!(mode(&out.join("server-key.pem")), 0o400);
        }
    }
    assert!(killed > 5, "too few runs were killed ({killed})");
}
