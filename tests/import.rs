//! `dockertls import`: a PKI made with Docker's openssl recipe (verbatim), docker-machine's and
//! dind's layouts, adopted into a dockertls folder.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::*;

/// The passphrase the recipe's `genrsa -aes256` is given (it would ask on the terminal).
const PASSPHRASE: &str = "recipe passphrase 1";
/// The recipe's $HOST.
const HOST: &str = "docker.example.test";

/// Runs one recipe command in `dir` (through sh, as the docs show them), panicking on failure.
fn sh(dir: &Path, line: &str) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(line)
        .current_dir(dir)
        .env("HOST", HOST)
        .output()
        .expect("run sh");
    assert!(out.status.success(), "{line}\n{}", streams(&out));
}

/// A PKI made with the commands of docs.docker.com "Protect the Docker daemon socket with
/// HTTPS", verbatim; where the recipe asks on the terminal (the CA passphrase, the CA's
/// subject) the answers are given as -passout/-passin/-subj. RSA-4096 keys are slow: made once
/// per test binary; tests copy it. None (skipped visibly) without openssl.
fn recipe() -> Option<&'static Path> {
    find_tool("openssl", "install openssl to build the recipe fixture")?;
    static RECIPE: OnceLock<PathBuf> = OnceLock::new();
    Some(RECIPE.get_or_init(|| {
        // Below target/ (not /tmp): kept for the binary's other tests, never shared.
        let dir = tempfile::Builder::new()
            .prefix("recipe-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap()
            .keep();
        std::fs::write(dir.join(".pass"), format!("{PASSPHRASE}\n")).unwrap();
        for line in [
            "openssl genrsa -aes256 -passout file:.pass -out ca-key.pem 4096",
            "openssl req -new -x509 -days 365 -key ca-key.pem -passin file:.pass -sha256 -out ca.pem -subj '/C=DE/ST=Berlin/O=Example/CN=example CA'",
            "openssl genrsa -out server-key.pem 4096",
            "openssl req -subj \"/CN=$HOST\" -sha256 -new -key server-key.pem -out server.csr",
            "echo subjectAltName = DNS:$HOST,IP:10.10.10.20,IP:127.0.0.1 >> extfile.cnf",
            "echo extendedKeyUsage = serverAuth >> extfile.cnf",
            "openssl x509 -req -days 365 -sha256 -in server.csr -CA ca.pem -CAkey ca-key.pem -passin file:.pass -CAcreateserial -out server-cert.pem -extfile extfile.cnf",
            "openssl genrsa -out key.pem 4096",
            "openssl req -subj '/CN=client' -new -key key.pem -out client.csr",
            "echo extendedKeyUsage = clientAuth > extfile-client.cnf",
            "openssl x509 -req -days 365 -sha256 -in client.csr -CA ca.pem -CAkey ca-key.pem -passin file:.pass -CAcreateserial -out cert.pem -extfile extfile-client.cnf",
            "rm -v client.csr server.csr extfile.cnf extfile-client.cnf",
            "chmod -v 0400 ca-key.pem key.pem server-key.pem",
            "chmod -v 0444 ca.pem server-cert.pem cert.pem",
            "rm .pass",
        ] {
            sh(&dir, line);
        }
        dir
    }))
}

/// A copy of the recipe folder in a private temp folder (modes kept), and a passphrase file.
fn recipe_copy(work: &Path) -> Option<(PathBuf, PathBuf)> {
    let recipe = recipe()?;
    let copy = work.join("recipe");
    std::fs::create_dir(&copy).unwrap();
    for entry in std::fs::read_dir(recipe).unwrap().flatten() {
        let to = copy.join(entry.file_name());
        std::fs::copy(entry.path(), &to).unwrap();
    }
    let pass = work.join("ca-pass");
    std::fs::write(&pass, format!("{PASSPHRASE}\n")).unwrap();
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
    Some((copy, pass))
}

fn dockertls_in(dir: &Path, args: &[&str]) -> std::process::Output {
    dockertls()
        .arg("--dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run dockertls")
}

#[test]
fn dry_run_names_the_recipe_cas_missing_key_usage_with_the_command_that_replaces_it() {
    let work = private_tempdir();
    let Some((recipe, _)) = recipe_copy(work.path()) else {
        return;
    };
    let dir = work.path().join("pki");
    let before = tree(work.path());
    let out = dockertls_in(&dir, &["import", recipe.to_str().unwrap(), "--dry-run"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", streams(&out));
    assert!(
        stdout.contains("Docker's openssl recipe folder"),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("server {HOST} from")), "{stdout}");
    assert!(stdout.contains("client client from"), "{stdout}");
    // The CA's own defect, with the command that replaces the CA.
    let line = stdout
        .lines()
        .position(|l| l.contains("the CA [ca]") && l.contains("no keyUsage"))
        .unwrap_or_else(|| panic!("no keyUsage defect:\n{stdout}"));
    let fix = stdout.lines().nth(line + 1).unwrap();
    assert!(
        fix.contains("fix: dockertls --dir") && fix.ends_with("rotate --ca"),
        "{fix}"
    );
    assert_same_tree(&before, &tree(work.path()), "a dry run changes nothing");
}

/// A small PKI made with openssl (P-256, fast): ca.pem/ca-key.pem, a server pair for `host`
/// and a client pair (CN `client_cn`), as (ca, ca-key, server cert, server key, client cert,
/// client key) file names in `dir`.
fn openssl_pki(dir: &Path, host: &str, client_cn: &str) {
    std::fs::create_dir_all(dir).unwrap();
    for line in [
        "openssl ecparam -name prime256v1 -genkey -noout -out ca-key.pem".to_string(),
        "openssl req -new -x509 -days 30 -key ca-key.pem -sha256 -out ca.pem -subj '/CN=test CA' -addext keyUsage=critical,keyCertSign,cRLSign".to_string(),
        "openssl ecparam -name prime256v1 -genkey -noout -out s-key.pem".to_string(),
        format!("openssl req -new -key s-key.pem -subj '/CN={host}' -out s.csr"),
        format!("printf 'subjectAltName=DNS:{host},IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > s.cnf"),
        "openssl x509 -req -days 30 -sha256 -in s.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out s-cert.pem -extfile s.cnf".to_string(),
        "openssl ecparam -name prime256v1 -genkey -noout -out c-key.pem".to_string(),
        format!("openssl req -new -key c-key.pem -subj '/CN={client_cn}' -out c.csr"),
        "printf 'extendedKeyUsage=clientAuth\\n' > c.cnf".to_string(),
        "openssl x509 -req -days 30 -sha256 -in c.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out c-cert.pem -extfile c.cnf".to_string(),
        "rm s.csr s.cnf c.csr c.cnf ca.srl".to_string(),
    ] {
        sh(dir, &line);
    }
}

fn mv(dir: &Path, from: &str, to: &str) {
    let to = dir.join(to);
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::rename(dir.join(from), to).unwrap();
}

fn dry_run(source: &Path, extra: &[&str]) -> (std::process::Output, String) {
    let work = private_tempdir();
    let mut args = vec!["import", source.to_str().unwrap(), "--dry-run"];
    args.extend_from_slice(extra);
    let out = dockertls_in(&work.path().join("pki"), &args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, stdout)
}

#[test]
fn docker_machine_layout_gives_each_machine_as_a_server() {
    if find_tool("openssl", "install openssl").is_none() {
        return;
    }
    let work = private_tempdir();
    let machine = work.path().join("machine");
    let tmp = work.path().join("made");
    openssl_pki(&tmp, "dev1.example", "me");
    for (from, to) in [
        ("ca.pem", "certs/ca.pem"),
        ("ca-key.pem", "certs/ca-key.pem"),
        ("c-cert.pem", "certs/cert.pem"),
        ("c-key.pem", "certs/key.pem"),
        ("s-cert.pem", "machines/dev1/server.pem"),
        ("s-key.pem", "machines/dev1/server-key.pem"),
    ] {
        mv(&tmp, from, &format!("../machine/{to}"));
    }
    for source in [machine.clone(), machine.join("certs")] {
        let (out, stdout) = dry_run(&source, &[]);
        assert!(out.status.success(), "{}", streams(&out));
        assert!(stdout.contains("docker-machine's folder"), "{stdout}");
        assert!(stdout.contains("server dev1 from"), "{stdout}");
        assert!(stdout.contains("client me from"), "{stdout}");
        assert!(!stdout.contains("no matching key"), "{stdout}");
    }
}

#[test]
fn dind_layout_pairs_server_and_client_folders() {
    if find_tool("openssl", "install openssl").is_none() {
        return;
    }
    let work = private_tempdir();
    let made = work.path().join("certs");
    openssl_pki(&made, "docker", "client");
    for (from, to) in [
        ("ca.pem", "ca/cert.pem"),
        ("ca-key.pem", "ca/key.pem"),
        ("s-cert.pem", "server/cert.pem"),
        ("s-key.pem", "server/key.pem"),
        ("c-cert.pem", "client/cert.pem"),
        ("c-key.pem", "client/key.pem"),
    ] {
        mv(&made, from, to);
    }
    std::fs::copy(made.join("ca/cert.pem"), made.join("server/ca.pem")).unwrap();
    std::fs::copy(made.join("ca/cert.pem"), made.join("client/ca.pem")).unwrap();
    let (out, stdout) = dry_run(&made, &[]);
    assert!(out.status.success(), "{}", streams(&out));
    assert!(stdout.contains("dind's /certs"), "{stdout}");
    assert!(stdout.contains("server docker from"), "{stdout}");
    assert!(stdout.contains("client client from"), "{stdout}");
    assert!(stdout.contains("nothing to fix"), "{stdout}");
}

#[test]
fn a_cn_only_server_certificate_is_named_with_the_rotate_that_adds_its_name_as_a_san() {
    if find_tool("openssl", "install openssl").is_none() {
        return;
    }
    let work = private_tempdir();
    let made = work.path().join("recipe");
    openssl_pki(&made, "h.example", "client");
    // The server certificate again, without the SAN line of the extension file.
    sh(
        &made,
        "openssl req -new -key s-key.pem -subj '/CN=old.example' -out s.csr && printf 'extendedKeyUsage=serverAuth\\n' > s.cnf && openssl x509 -req -days 30 -sha256 -in s.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out server-cert.pem -extfile s.cnf && rm s.csr s.cnf",
    );
    mv(&made, "s-key.pem", "server-key.pem");
    let (out, stdout) = dry_run(&made, &[]);
    assert!(out.status.success(), "{}", streams(&out));
    let line = stdout
        .lines()
        .position(|l| l.starts_with("  FAIL server old.example [san]"))
        .unwrap_or_else(|| panic!("the CN-only certificate is named:\n{stdout}"));
    let fix = stdout.lines().nth(line + 1).unwrap();
    assert!(
        fix.ends_with("rotate --server --all --allow old.example"),
        "{fix}"
    );
}

#[test]
fn recipe_keys_are_paired_by_their_public_half_not_their_names() {
    if find_tool("openssl", "install openssl").is_none() {
        return;
    }
    let work = private_tempdir();
    let made = work.path().join("recipe");
    openssl_pki(&made, "h.example", "client");
    // The client's key stored under the server key's name and the other way round.
    mv(&made, "s-cert.pem", "server-cert.pem");
    mv(&made, "s-key.pem", "key.pem");
    mv(&made, "c-cert.pem", "cert.pem");
    mv(&made, "c-key.pem", "server-key.pem");
    let (out, stdout) = dry_run(&made, &[]);
    assert!(out.status.success(), "{}", streams(&out));
    assert!(!stdout.contains("no matching key"), "{stdout}");
    // A certificate whose key is not there is imported without it, and said so.
    std::fs::remove_file(made.join("server-key.pem")).unwrap();
    let (out, stdout) = dry_run(&made, &[]);
    assert!(out.status.success(), "{}", streams(&out));
    assert!(
        stdout.contains("client client from") && stdout.contains("no matching key"),
        "{stdout}"
    );
}

#[test]
fn bad_sources_are_refused_in_one_line_and_nothing_is_created() {
    if find_tool("openssl", "install openssl").is_none() {
        return;
    }
    let work = private_tempdir();
    let made = work.path().join("recipe");
    openssl_pki(&made, "h.example", "client");
    mv(&made, "s-cert.pem", "server-cert.pem");
    mv(&made, "s-key.pem", "server-key.pem");
    std::os::unix::fs::symlink(made.join("c-cert.pem"), made.join("cert.pem")).unwrap();
    let empty = work.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let other = work.path().join("other");
    openssl_pki(&other, "x.example", "client");
    // A server certificate of another CA.
    let foreign = work.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::copy(made.join("ca.pem"), foreign.join("ca.pem")).unwrap();
    std::fs::copy(other.join("s-cert.pem"), foreign.join("server-cert.pem")).unwrap();
    // A server key encrypted: dockerd could not load it, so it is not imported as it is.
    let locked = work.path().join("locked");
    openssl_pki(&locked, "l.example", "client");
    mv(&locked, "s-cert.pem", "server-cert.pem");
    sh(
        &locked,
        "openssl ec -in s-key.pem -aes256 -passout pass:leafpass -out server-key.pem && rm s-key.pem",
    );
    let huge = work.path().join("huge");
    std::fs::create_dir(&huge).unwrap();
    std::fs::write(huge.join("ca.pem"), vec![b'A'; 2 << 20]).unwrap();
    let before = tree(work.path());
    for (source, what) in [
        (made.clone(), "is a symbolic link"),
        (empty.clone(), "holds no PKI dockertls can import"),
        (work.path().join("missing"), "does not exist"),
        (made.join("ca.pem"), "is not a folder"),
        (foreign.clone(), "was not signed by"),
        (huge.clone(), "is larger than"),
        (
            locked.clone(),
            "is encrypted: dockerd and the docker CLI cannot load",
        ),
    ] {
        let out = dockertls_in(
            &work.path().join("pki"),
            &["import", source.to_str().unwrap()],
        );
        assert_eq!(out.status.code(), Some(2), "{what}: {}", streams(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_one_error(&stderr, what);
        assert!(stderr.contains(what), "{what}: {stderr}");
        assert!(out.stdout.is_empty(), "{what}");
    }
    assert_same_tree(&before, &tree(work.path()), "refusals change nothing");
    // An import never replaces a PKI.
    let pki = work.path().join("existing");
    init_ok(&pki, &["--host", "h.example", "--yes"]);
    std::fs::remove_file(made.join("cert.pem")).unwrap();
    mv(&made, "c-cert.pem", "cert.pem");
    let before = tree(work.path());
    let out = dockertls_in(&pki, &["import", made.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", streams(&out));
    assert_one_error(&String::from_utf8_lossy(&out.stderr), "an existing PKI");
    assert_same_tree(&before, &tree(work.path()), "an existing PKI is left alone");
    let out = dockertls_in(
        &work.path().join("pki"),
        &["import", "x", "--host", "bad host"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", streams(&out));
}

fn docker_cli() -> Option<PathBuf> {
    find_tool("docker", "install docker.io to run the real-dockerd tests")
}

/// dockerd serving the TLS files of `folder` under the names given.
fn dockerd_from(ca: &Path, cert: &Path, key: &Path) -> Option<Dockerd> {
    Dockerd::start_config(serde_json::json!({
        "tlsverify": true,
        "tlscacert": ca,
        "tlscert": cert,
        "tlskey": key,
    }))
}

/// THE TEST of issue 14 item 1: a recipe PKI serving a real dockerd; import; rotate the
/// server; dockerd restarted from the new server files: the recipe's untouched client folder
/// still connects, and the import named the recipe CA's own defect with the command that
/// replaces the CA.
#[test]
fn recipe_pki_imported_and_rotated_keeps_its_clients_working() {
    let work = private_tempdir();
    let Some((recipe, pass)) = recipe_copy(work.path()) else {
        return;
    };
    let Some(docker) = docker_cli() else { return };
    let Some(mut daemon) = dockerd_from(
        &recipe.join("ca.pem"),
        &recipe.join("server-cert.pem"),
        &recipe.join("server-key.pem"),
    ) else {
        return;
    };
    let host = |d: &Dockerd| format!("tcp://127.0.0.1:{}", d.port);
    let out = docker_version(&docker, &host(&daemon), &recipe);
    assert!(
        out.status.success(),
        "the recipe works before: {}",
        streams(&out)
    );
    let recipe_before = tree(&recipe);

    let dir = work.path().join("pki");
    let pass_arg = pass.to_str().unwrap();
    let out = dockertls_in(
        &dir,
        &[
            "--ca-passphrase-file",
            pass_arg,
            "import",
            recipe.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "import: {}", streams(&out));
    let line = stdout
        .lines()
        .position(|l| l.contains("the CA [ca]") && l.contains("no keyUsage"))
        .unwrap_or_else(|| panic!("the import names the CA's missing keyUsage:\n{stdout}"));
    assert!(
        stdout
            .lines()
            .nth(line + 1)
            .unwrap()
            .trim_end()
            .ends_with("rotate --ca"),
        "{stdout}"
    );
    // The CA certificate is kept byte for byte (clients out there trust it), its key is
    // encrypted the dockertls way with the recipe's passphrase.
    let server = dir.join("servers").join(HOST);
    assert_eq!(
        std::fs::read(dir.join("ca/ca.pem")).unwrap(),
        std::fs::read(recipe.join("ca.pem")).unwrap()
    );
    let ca_key = std::fs::read_to_string(dir.join("ca/ca-key.pem")).unwrap();
    assert!(ca_key.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    assert_eq!(mode(&dir.join("ca/ca-key.pem")), 0o400);
    assert_eq!(mode(&server.join("server-key.pem")), 0o400);
    assert_eq!(
        std::fs::read(server.join("server-cert.pem")).unwrap(),
        std::fs::read(recipe.join("server-cert.pem")).unwrap()
    );

    let out = dockertls_in(
        &dir,
        &[
            "--ca-passphrase-file",
            pass_arg,
            "rotate",
            "--server",
            "--all",
        ],
    );
    assert!(out.status.success(), "rotate --server: {}", streams(&out));
    assert_ne!(
        std::fs::read(server.join("server-cert.pem")).unwrap(),
        std::fs::read(recipe.join("server-cert.pem")).unwrap(),
        "rotate re-issued the server certificate"
    );
    daemon.stop();
    let Some(daemon) = dockerd_from(
        &server.join("ca.pem"),
        &server.join("server-cert.pem"),
        &server.join("server-key.pem"),
    ) else {
        return;
    };
    let out = docker_version(&docker, &host(&daemon), &recipe);
    assert!(
        out.status.success(),
        "the recipe's untouched client folder still connects: {}",
        streams(&out)
    );
    assert_same_tree(
        &recipe_before,
        &tree(&recipe),
        "the source is never changed",
    );
}

/// A CA key in OpenSSL's legacy encrypted form (OpenSSL 1.x's recipe), imported with its
/// passphrase: signing works with that same passphrase afterwards.
#[test]
fn legacy_encrypted_ca_key_is_imported_and_signs() {
    if find_tool("openssl", "install openssl").is_none() {
        return;
    }
    let work = private_tempdir();
    let made = work.path().join("recipe");
    openssl_pki(&made, "h.example", "client");
    mv(&made, "s-cert.pem", "server-cert.pem");
    mv(&made, "s-key.pem", "server-key.pem");
    mv(&made, "c-cert.pem", "cert.pem");
    mv(&made, "c-key.pem", "key.pem");
    sh(
        &made,
        "openssl ec -in ca-key.pem -aes256 -passout 'pass:legacy pass 1' -out ca-key.enc && mv ca-key.enc ca-key.pem",
    );
    assert!(
        std::fs::read_to_string(made.join("ca-key.pem"))
            .unwrap()
            .contains("Proc-Type: 4,ENCRYPTED")
    );
    let pass = work.path().join("pass");
    std::fs::write(&pass, "legacy pass 1\n").unwrap();
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let wrong = work.path().join("wrong");
    std::fs::write(&wrong, "legacy pass 2\n").unwrap();
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    let dir = work.path().join("pki");
    let before = tree(work.path());
    let out = dockertls_in(
        &dir,
        &[
            "--ca-passphrase-file",
            wrong.to_str().unwrap(),
            "import",
            made.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success(), "{}", streams(&out));
    assert_one_error(&String::from_utf8_lossy(&out.stderr), "wrong passphrase");
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong passphrase"));
    assert_same_tree(
        &before,
        &tree(work.path()),
        "a wrong passphrase creates nothing",
    );

    let pass_arg = pass.to_str().unwrap();
    let out = dockertls_in(
        &dir,
        &[
            "--ca-passphrase-file",
            pass_arg,
            "import",
            made.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", streams(&out));
    let out = dockertls_in(
        &dir,
        &[
            "--ca-passphrase-file",
            pass_arg,
            "client",
            "add",
            "bob",
            "--days",
            "10",
        ],
    );
    assert!(
        out.status.success(),
        "client add on the imported PKI: {}",
        streams(&out)
    );
    // bob's certificate is signed by the imported CA.
    let ok = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(made.join("ca.pem"))
        .arg(dir.join("clients/bob/cert.pem"))
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", streams(&ok));
}

/// Without the CA key: the read-only commands work, the signing ones say why not.
#[test]
fn without_the_ca_key_read_only_commands_work_and_signing_says_why_not() {
    if find_tool("openssl", "install openssl").is_none() {
        return;
    }
    let work = private_tempdir();
    let made = work.path().join("recipe");
    openssl_pki(&made, "h.example", "client");
    mv(&made, "s-cert.pem", "server-cert.pem");
    mv(&made, "s-key.pem", "server-key.pem");
    mv(&made, "c-cert.pem", "cert.pem");
    mv(&made, "c-key.pem", "key.pem");
    std::fs::remove_file(made.join("ca-key.pem")).unwrap();
    let dir = work.path().join("pki");
    let out = dockertls_in(&dir, &["import", made.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", streams(&out));
    assert!(stdout.contains("without its key"), "{stdout}");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("dockertls.json")).unwrap()).unwrap();
    assert_eq!(state["imported"]["ca_key"], "absent", "{state}");
    // A daemon host with Docker's stock unit, for install --dry-run.
    let root = work.path().join("host");
    std::fs::create_dir_all(root.join("lib/systemd/system")).unwrap();
    std::fs::write(
        root.join("lib/systemd/system/docker.service"),
        "[Unit]\nDescription=Docker Application Container Engine\n\n[Service]\nType=notify\nExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock\n\n[Install]\nWantedBy=multi-user.target\n",
    )
    .unwrap();
    let root = root.to_str().unwrap().to_string();
    for args in [
        vec!["verify"],
        vec!["client", "list"],
        vec!["env", "client"],
        vec!["install", "--root", root.as_str(), "--dry-run"],
    ] {
        let out = dockertls_in(&dir, &args);
        assert!(
            matches!(out.status.code(), Some(0) | Some(1)),
            "{args:?}: {}",
            streams(&out)
        );
    }
    let before = tree(&dir);
    for args in [
        vec!["client", "add", "bob"],
        vec!["rotate", "--server", "--all"],
    ] {
        let out = dockertls_in(&dir, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", streams(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_one_error(&stderr, "signing without the CA key");
        assert!(stderr.contains("ca-key.pem"), "{args:?}: {stderr}");
    }
    assert_same_tree(&before, &tree(&dir), "refused signing changes nothing");
    // The fix the refusal names: a new CA, and signing works again.
    let out = dockertls_in(&dir, &["rotate", "--ca"]);
    assert!(out.status.success(), "rotate --ca: {}", streams(&out));
    let out = dockertls_in(&dir, &["client", "add", "bob", "--days", "10"]);
    assert!(
        out.status.success(),
        "client add after rotate --ca: {}",
        streams(&out)
    );
}

/// A run killed at any rename of its commit leaves no PKI or a whole one; `import --force`
/// then completes (the partial entries go to the backup) and the PKI verifies.
#[test]
fn a_killed_import_is_completed_by_a_forced_rerun() {
    if find_tool("openssl", "install openssl").is_none() {
        return;
    }
    let Some(strace) = find_tool("strace", "crash tests inject SIGKILL with strace") else {
        return;
    };
    let work = private_tempdir();
    let made = work.path().join("recipe");
    openssl_pki(&made, "h.example", "client");
    mv(&made, "s-cert.pem", "server-cert.pem");
    mv(&made, "s-key.pem", "server-key.pem");
    mv(&made, "c-cert.pem", "cert.pem");
    mv(&made, "c-key.pem", "key.pem");
    let source = made.to_str().unwrap();
    let mut killed = 0;
    for n in 1..40 {
        let dir = work.path().join(format!("pki{n}"));
        let out = Command::new(&strace)
            .args(["-f", "-qq", "-o", "/dev/null", "-e"])
            .arg(format!(
                "inject=rename,renameat,renameat2:signal=KILL:when={n}"
            ))
            .arg(env!("CARGO_BIN_EXE_dockertls"))
            .arg("--dir")
            .arg(&dir)
            .args(["import", source])
            .output()
            .unwrap();
        if out.status.success() {
            verify_ok(&dir);
            break;
        }
        killed += 1;
        let state = dir.join("dockertls.json").exists();
        if state {
            verify_ok(&dir);
        }
        let out = dockertls_in(&dir, &["import", source, "--force"]);
        assert!(out.status.success(), "rename #{n}: {}", streams(&out));
        verify_ok(&dir);
        assert!(
            !tree(&dir)
                .iter()
                .any(|(p, _, _)| p.starts_with(".dockertls-staging")),
            "rename #{n}: a staging folder was left"
        );
    }
    assert!(killed > 0, "no run was killed: the sweep tested nothing");
}

/// Review item 7 (was review/import_cn_role.sh): an imported client whose CN is not a valid
/// folder name ("docker:dind client" -> docker-dind-client) keeps its role in the plugin:
/// authz.json is keyed by the certificate's CN, which is what the plugin looks up.
#[test]
fn an_imported_client_keeps_its_role_under_its_certificate_cn() {
    if find_tool("openssl", "install openssl").is_none() {
        return;
    }
    let work = private_tempdir();
    let made = work.path().join("certs");
    openssl_pki(&made, "docker", "docker:dind client");
    for (from, to) in [
        ("ca.pem", "ca/cert.pem"),
        ("ca-key.pem", "ca/key.pem"),
        ("s-cert.pem", "server/cert.pem"),
        ("s-key.pem", "server/key.pem"),
        ("c-cert.pem", "client/cert.pem"),
        ("c-key.pem", "client/key.pem"),
    ] {
        mv(&made, from, to);
    }
    std::fs::copy(made.join("ca/cert.pem"), made.join("server/ca.pem")).unwrap();
    std::fs::copy(made.join("ca/cert.pem"), made.join("client/ca.pem")).unwrap();
    let pki = work.path().join("pki");
    for args in [
        &["import", made.to_str().unwrap()][..],
        &["client", "add", "ops", "--days", "20"],
        &["client", "role", "ops", "read-only"],
    ] {
        let out = dockertls_in(&pki, args);
        assert!(out.status.success(), "{args:?}: {}", streams(&out));
    }
    assert!(pki.join("clients/docker-dind-client").is_dir());
    let servers: Vec<_> = std::fs::read_dir(pki.join("servers")).unwrap().collect();
    assert!(!servers.is_empty());
    for server in servers {
        let text = std::fs::read_to_string(server.unwrap().path().join("authz.json")).unwrap();
        let policy: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            policy["clients"]["docker:dind client"], "admin",
            "the plugin looks the imported client up by its CN:\n{text}"
        );
        assert_eq!(policy["clients"]["ops"], "read-only", "{text}");
    }
}
