//! A very long value (a 100 KB argument, a 100 KB string in a file) is cut in the message that
//! echoes it (review item m9): the line stays short enough to read in a terminal or a journal,
//! and still names the value and says why it was refused. Nothing is created or changed.

mod common;
#[path = "support/refusal.rs"]
mod refusal;

use std::path::Path;
use std::process::Output;

use common::{dockertls, init_ok, private_tempdir, tree, tree_diff};

/// The longest line a message about a long value may print.
const MAX_LINE: usize = 1024;

/// The value given: 100 KB of one letter (a valid-looking name, so the length is the problem).
fn long() -> String {
    "a".repeat(100_000)
}

/// A command line with `{L}` where the long value goes, the flag (or word) the message must
/// name, the reason it must give, and the exit code.
struct Case {
    args: &'static [&'static str],
    names: &'static str,
    why: &'static str,
    code: i32,
}

const fn case(
    args: &'static [&'static str],
    names: &'static str,
    why: &'static str,
    code: i32,
) -> Case {
    Case {
        args,
        names,
        why,
        code,
    }
}

/// Every command and flag that takes a value. `pki` is an initialised PKI, `new` does not exist.
#[rustfmt::skip]
const CASES: &[Case] = &[
    case(&["--dir", "{L}", "init", "--host", "x"], "--dir", "the most a path can be", 2),
    case(&["--dir", "{L}", "verify"], "--dir", "the most a path can be", 3),
    case(&["--dir", "{L}", "client", "list"], "--dir", "the most a path can be", 2),
    case(&["--dir", "new", "init", "--host", "{L}"], "--host", "at most 253", 2),
    case(&["--dir", "new", "init", "--host", "x", "--name", "{L}"], "--name", "longer than 64", 2),
    case(&["--dir", "new", "init", "--host", "x", "--allow", "{L}"], "--allow", "at most 253", 2),
    case(&["--dir", "new", "init", "--host", "x", "--client", "{L}"], "--client", "longer than 64", 2),
    case(&["--dir", "new", "init", "--host", "x", "--listen", "{L}"], "--listen", "not an ADDR:PORT", 2),
    case(&["--dir", "new", "init", "--host", "x", "--install-dir", "{L}"], "--install-dir", "absolute path", 2),
    case(&["--dir", "new", "init", "--host", "x", "--dockerd", "{L}"], "--dockerd", "absolute path", 2),
    case(&["--dir", "new", "init", "--host", "x", "--key-type", "{L}"], "--key-type", "possible values", 2),
    case(&["--dir", "new", "init", "--host", "x", "--days", "{L}"], "--days", "invalid digit", 2),
    case(&["--dir", "new", "init", "--host", "x", "--ca-days", "{L}"], "--ca-days", "invalid digit", 2),
    case(&["--dir", "new", "--ca-passphrase-file", "{L}", "init", "--host", "x", "--encrypt-ca-key"], "cannot read", "File name too long", 2),
    case(&["--dir", "pki", "verify", "{L}"], "aaaa", "File name too long", 3),
    case(&["--dir", "pki", "verify", "--host", "{L}"], "--host", "at most 253", 3),
    case(&["--dir", "pki", "verify", "--warn-days", "{L}"], "--warn-days", "invalid digit", 3),
    case(&["--dir", "pki", "verify", "--daemon-config", "{L}"], "--daemon-config", "File name too long", 3),
    case(&["--dir", "pki", "verify", "--format", "{L}"], "--format", "possible values", 3),
    case(&["--dir", "pki", "probe", "{L}"], "has no tcp://", "give the daemon as tcp://HOST:PORT", 3),
    case(&["--dir", "pki", "probe", "tcp://{L}:2376"], "not a valid host name", "give the daemon as tcp://HOST:PORT", 3),
    case(&["--dir", "pki", "probe", "tcp://x:{L}"], "where the port goes", "not a number", 3),
    case(&["--dir", "pki", "probe", "--client", "{L}", "tcp://x:2376"], "--client", "longer than 64", 3),
    case(&["--dir", "pki", "probe", "--server", "{L}"], "--server", "longer than 64", 3),
    case(&["--dir", "pki", "probe", "--timeout", "{L}", "tcp://x:2376"], "--timeout", "invalid float", 3),
    case(&["--dir", "pki", "client", "add", "{L}"], "--client", "longer than 64", 2),
    case(&["--dir", "pki", "client", "add", "bob", "--role", "{L}"], "--role", "not a role name", 2),
    case(&["--dir", "pki", "client", "add", "bob", "--days", "{L}"], "--days", "invalid digit", 2),
    case(&["--dir", "pki", "client", "remove", "{L}"], "--client", "longer than 64", 2),
    case(&["--dir", "pki", "client", "revoke", "{L}"], "--client", "longer than 64", 2),
    case(&["--dir", "pki", "client", "revoke", "alice", "--reason", "{L}"], "--reason", "possible values", 2),
    case(&["--dir", "pki", "client", "role", "{L}", "admin"], "--client", "longer than 64", 2),
    case(&["--dir", "pki", "client", "role", "alice", "{L}"], "role", "not a role name", 2),
    case(&["--dir", "pki", "client", "list", "--format", "{L}"], "--format", "possible values", 2),
    case(&["--dir", "pki", "env", "{L}"], "--client", "longer than 64", 2),
    case(&["--dir", "pki", "env", "alice", "--server", "{L}"], "--server", "longer than 64", 2),
    case(&["--dir", "pki", "env", "alice", "--shell", "{L}"], "--shell", "possible values", 2),
    case(&["--dir", "pki", "rotate", "--client", "{L}"], "--client", "longer than 64", 2),
    case(&["--dir", "pki", "rotate", "--server", "{L}"], "--server", "longer than 64", 2),
    case(&["--dir", "pki", "rotate", "--server", "h.example", "--allow", "{L}"], "--allow", "at most 253", 2),
    case(&["--dir", "pki", "rotate", "--within", "{L}"], "--within", "invalid digit", 2),
    case(&["--dir", "pki", "rotate", "--keep-backups", "{L}"], "--keep-backups", "invalid digit", 2),
    case(&["--dir", "pki", "rotate", "--grace", "{L}"], "--grace", "invalid digit", 2),
    case(&["--dir", "pki", "install", "--root", "{L}", "--dry-run"], "--root", "absolute path", 2),
    case(&["--dir", "pki", "install", "--from", "{L}", "--dry-run"], "--from", "does not exist", 2),
    case(&["--dir", "pki", "install", "--server", "{L}", "--dry-run"], "--server", "longer than 64", 2),
    case(&["--dir", "pki", "backup", "prune", "--keep", "{L}"], "--keep", "invalid digit", 2),
    case(&["completions", "{L}"], "<SHELL>", "possible values", 2),
    case(&["man", "--out", "{L}"], "--out", "File name too long", 2),
    case(&["request", "server", "--host", "{L}", "--out", "req"], "--host", "at most 253", 2),
    case(&["request", "server", "--host", "x", "--allow", "{L}", "--out", "req"], "--allow", "at most 253", 2),
    case(&["request", "server", "--host", "x", "--out", "{L}"], "--out", "File name too long", 2),
    case(&["request", "client", "{L}", "--out", "req"], "--client", "longer than 64", 2),
    case(&["--dir", "pki", "sign", "{L}", "--client", "bob"], "cannot read", "File name too long", 2),
    case(&["--dir", "pki", "sign", "csr.pem", "--client", "{L}"], "--client", "longer than 64", 2),
    case(&["--dir", "pki", "sign", "csr.pem", "--server", "{L}"], "--server", "longer than 64", 2),
    case(&["--dir", "pki", "sign", "csr.pem", "--server", "s2", "--host", "{L}"], "--host", "at most 253", 2),
    case(&["--dir", "pki", "sign", "csr.pem", "--server", "s2", "--host", "x", "--listen", "{L}"], "--listen", "not an ADDR:PORT", 2),
    case(&["--dir", "pki", "deploy", "{L}", "root@host"], "deploy", "no such server", 2),
    case(&["--dir", "pki", "deploy", "h.example", "{L}"], "host", "give 1 to 255 characters", 2),
    case(&["--dir", "pki", "deploy", "h.example", "host", "--ssh-option", "{L}"], "--ssh-option", "Key=Value", 2),
    case(&["--dir", "pki", "deploy", "h.example", "host", "--remote-root", "{L}"], "--remote-root", "absolute path", 2),
    case(&["--dir", "pki", "deploy", "h.example", "host", "--jobs", "{L}"], "--jobs", "invalid digit", 2),
    case(&["--dir", "pki", "server", "add", "{L}", "--host", "x"], "server name", "longer than 64", 2),
    case(&["--dir", "pki", "server", "add", "s2", "--host", "{L}"], "--host", "at most 253", 2),
    case(&["--dir", "pki", "server", "add", "s2", "--host", "x", "--allow", "{L}"], "--allow", "at most 253", 2),
    case(&["--dir", "pki", "server", "add", "s2", "--host", "x", "--listen", "{L}"], "--listen", "not an ADDR:PORT", 2),
    case(&["--dir", "pki", "server", "add", "s2", "--host", "x", "--install-dir", "{L}"], "--install-dir", "absolute path", 2),
    case(&["--dir", "pki", "server", "add", "s2", "--host", "x", "--dockerd", "{L}"], "--dockerd", "absolute path", 2),
    case(&["--dir", "pki", "server", "remove", "{L}"], "server name", "longer than 64", 2),
    case(&["--dir", "pki", "server", "add", "s2", "--host", "x", "--days", "{L}"], "--days", "invalid digit", 2),
    case(&["--dir", "pki", "server", "list", "--format", "{L}"], "--format", "possible values", 2),
    case(&["--dir", "pki", "role", "list", "--format", "{L}"], "--format", "possible values", 2),
    case(&["--dir", "pki", "deploy", "--all", "--format", "{L}"], "--format", "possible values", 2),
    case(&["--dir", "pki", "probe", "--format", "{L}", "tcp://x:2376"], "--format", "possible values", 3),
    case(&["--dir", "pki", "sign", "csr.pem", "--client", "bob", "--days", "{L}"], "--days", "invalid digit", 2),
    case(&["--dir", "pki", "sign", "csr.pem", "--server", "s2", "--host", "x", "--install-dir", "{L}"], "--install-dir", "absolute path", 2),
    case(&["--dir", "pki", "sign", "csr.pem", "--server", "s2", "--host", "x", "--dockerd", "{L}"], "--dockerd", "absolute path", 2),
    case(&["--dir", "pki", "sign", "csr.pem", "--server", "s2", "--host", "x", "--allow", "{L}"], "--allow", "at most 253", 2),
    case(&["--dir", "new", "import", "{L}"], "import", "File name too long", 2),
    case(&["--dir", "new", "import", "pki", "--host", "{L}"], "--host", "at most 253", 2),
    case(&["--dir", "pki", "context", "{L}"], "--client", "longer than 64", 2),
    case(&["--dir", "pki", "context", "alice", "--server", "{L}"], "--server", "longer than 64", 2),
    case(&["--dir", "pki", "context", "alice", "--name", "{L}"], "--name", "2 to 128 characters", 2),
    case(&["--dir", "pki", "context", "--remove", "{L}"], "--remove", "2 to 128 characters", 2),
    case(&["--dir", "pki", "role", "add", "{L}", "--allow", "GET /info"], "role", "not a role name", 2),
    case(&["--dir", "pki", "role", "add", "r", "--allow", "{L}"], "--allow", "not METHOD /path", 2),
    case(&["--dir", "pki", "role", "add", "r", "--allow", "GET /{L}"], "--allow", "at most 256", 2),
    case(&["--dir", "pki", "role", "remove", "{L}"], "role", "not a role name", 2),
    case(&["authz", "serve", "--socket", "{L}"], "--socket", "File name too long", 2),
    case(&["authz", "serve", "--socket", "s.sock", "--unix-socket-requests", "{L}"], "--unix-socket-requests", "possible values", 2),
    case(&["authz", "serve", "--socket", "s.sock", "--audit-log-max-mib", "{L}"], "--audit-log-max-mib", "invalid digit", 2),
    case(&["--dir", "pki", "{L}"], "unrecognized subcommand", "a", 2),
    case(&["--dir", "pki", "client", "{L}"], "unrecognized subcommand", "a", 2),
    case(&["--dir", "pki", "init", "--{L}"], "unexpected argument", "found", 2),
];

/// A PKI (`pki`, with the server h.example and the client alice) and a CSR (`csr.pem`).
fn workspace() -> tempfile::TempDir {
    let work = private_tempdir();
    init_ok(
        &work.path().join("pki"),
        &["--host", "h.example", "--client", "alice"],
    );
    let made = dockertls()
        .current_dir(work.path())
        .args(["request", "client", "bob", "--out", "req"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", common::streams(&made));
    std::fs::copy(work.path().join("req/bob.csr"), work.path().join("csr.pem"))
        .or_else(|_| {
            let csr = std::fs::read_dir(work.path().join("req"))
                .unwrap()
                .flatten()
                .find(|e| e.path().extension().is_some_and(|x| x == "csr"))
                .expect("request client wrote a .csr");
            std::fs::copy(csr.path(), work.path().join("csr.pem"))
        })
        .unwrap();
    work
}

/// Everything below `dir` but the PKI's lock file, which any run may create.
fn snapshot(dir: &Path) -> Vec<(String, u32, Vec<u8>)> {
    tree(dir)
        .into_iter()
        .filter(|(p, _, _)| !p.ends_with(".dockertls.lock"))
        .collect()
}

/// Asserts a refusal about a long value: the code, one short `error:` line (and a hint),
/// naming `names`, saying `why`, with the value cut and its length told.
fn assert_cut_refusal(output: &Output, case: &Case, what: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(case.code),
        "{what}: exit code\n{}",
        stderr.get(..2000).unwrap_or(&stderr)
    );
    for line in stderr.lines() {
        assert!(
            line.len() <= MAX_LINE,
            "{what}: a line of {} bytes: {}...",
            line.len(),
            line.get(..300).unwrap_or(line)
        );
    }
    let (error, _) = refusal::assert_refusal(&output.stderr);
    assert!(
        error.contains(case.names),
        "{what}: does not name {}: {error}",
        case.names
    );
    assert!(
        error.contains(case.why),
        "{what}: does not say why ({}): {error}",
        case.why
    );
    assert!(
        error.contains(" bytes)"),
        "{what}: the value is not cut with its length: {error}"
    );
    // verify still prints its (empty) summary on stdout: short lines there too.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.lines().all(|line| line.len() <= MAX_LINE),
        "{what}: a long line on stdout"
    );
}

#[test]
fn every_flag_given_a_100_kb_value_refuses_in_one_short_line_and_changes_nothing() {
    let work = workspace();
    let long = long();
    // Every case is run, and every failing one listed (not only the first).
    let mut failed = Vec::new();
    for case in CASES {
        let args: Vec<String> = case.args.iter().map(|a| a.replace("{L}", &long)).collect();
        let what = case.args.join(" ").replace("{L}", "<100 KB>");
        let before = snapshot(work.path());
        let output = dockertls()
            .current_dir(work.path())
            .args(&args)
            .output()
            .unwrap();
        let checked = std::panic::catch_unwind(|| assert_cut_refusal(&output, case, &what));
        let diff = tree_diff(&before, &snapshot(work.path()));
        if checked.is_err() || !diff.is_empty() {
            failed.push(format!("{what}\n{diff}"));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} cases failed:\n{}",
        failed.len(),
        CASES.len(),
        failed.join("\n")
    );
}

/// Every line of both streams is at most [`MAX_LINE`] bytes, and a value was cut.
fn assert_short_lines(output: &Output, what: &str) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for line in text.lines() {
        assert!(
            line.len() <= MAX_LINE,
            "{what}: a line of {} bytes: {}...",
            line.len(),
            line.get(..300).unwrap_or(line)
        );
    }
    assert!(
        text.contains(" bytes)"),
        "{what}: no value was cut:\n{text}"
    );
}

#[test]
fn verify_cuts_long_keys_values_and_paths_read_from_daemon_json() {
    let work = private_tempdir();
    let long = long();
    let quoted = serde_json::Value::String(long.clone()).to_string();
    let documents = [
        ("an unknown key", format!("{{{quoted}: 1}}")),
        (
            "a key given twice",
            format!("{{\"debug\": {quoted}, \"debug\": {quoted}}}"),
        ),
        (
            "a key holding an object",
            format!("{{{quoted}: {{\"a\": 1}}}}"),
        ),
        (
            "a bad hosts entry",
            format!("{{\"hosts\": [\"tcp://{long}:2376/x\"]}}"),
        ),
        (
            "a hosts entry's host",
            format!("{{\"hosts\": [\"tcp://{long}:2376\"]}}"),
        ),
        ("hosts as a string", format!("{{\"hosts\": {quoted}}}")),
        (
            "tlsverify as a string",
            format!("{{\"tlsverify\": {quoted}}}"),
        ),
        (
            "a relative TLS path",
            format!(
                "{{\"hosts\": [\"tcp://0.0.0.0:2376\"], \"tls\": true, \"tlsverify\": true, \"tlscacert\": {quoted}, \"tlscert\": \"/c\", \"tlskey\": \"/k\"}}"
            ),
        ),
    ];
    for (what, document) in documents {
        let file = work.path().join("daemon.json");
        std::fs::write(&file, &document).unwrap();
        let before = tree(work.path());
        let output = dockertls()
            .arg("verify")
            .arg("--daemon-config")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            matches!(output.status.code(), Some(1 | 2)),
            "{what}: {:?}",
            output.status
        );
        assert_short_lines(&output, what);
        assert_eq!(tree_diff(&before, &tree(work.path())), "", "{what}");
    }
}

#[test]
fn a_state_file_holding_a_long_value_is_refused_in_one_short_line() {
    let work = private_tempdir();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "h.example"]);
    let state = pki.join("dockertls.json");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    json["servers"]["h.example"]["key"] = serde_json::Value::String(long());
    std::fs::write(&state, json.to_string()).unwrap();
    let before = snapshot(work.path());
    let output = common::run_in(&pki, &["server", "list"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        common::streams(&output)
    );
    assert_short_lines(&output, "state file");
    let (error, _) = refusal::assert_refusal(&output.stderr);
    assert!(
        error.contains("is not a dockertls state file (unknown variant `aaaa")
            && error.contains("expected `here` or `elsewhere`"),
        "{error}"
    );
    assert_eq!(tree_diff(&before, &snapshot(work.path())), "");
}

#[test]
fn install_cuts_long_values_read_from_daemon_json_and_the_unit() {
    let work = private_tempdir();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "h.example"]);
    let root = work.path().join("root");
    std::fs::create_dir_all(root.join("etc/docker")).unwrap();
    std::fs::create_dir_all(root.join("etc/systemd/system")).unwrap();
    let long = long();
    let cases = [
        (
            "a daemon.json that is not JSON",
            format!("{{\"debug\": \"{long}\" ,,}}"),
            "ExecStart=/usr/bin/dockerd".to_string(),
            "is not valid JSON",
        ),
        (
            "a unit naming another config file",
            "{}".to_string(),
            format!("ExecStart=/usr/bin/dockerd --config-file /{long}"),
            "dockerd would never read /etc/docker/daemon.json",
        ),
        (
            "a unit line systemd cannot parse",
            "{}".to_string(),
            format!("ExecStart=/usr/bin/dockerd \"{long}"),
            "unterminated quote",
        ),
    ];
    for (what, daemon_json, exec_start, why) in cases {
        std::fs::write(root.join("etc/docker/daemon.json"), daemon_json).unwrap();
        std::fs::write(
            root.join("etc/systemd/system/docker.service"),
            format!("[Service]\n{exec_start}\n"),
        )
        .unwrap();
        let before = snapshot(work.path());
        let output = common::run_in(
            &pki,
            &["install", "--root", root.to_str().unwrap(), "--dry-run"],
        );
        assert_eq!(
            output.status.code(),
            Some(2),
            "{what}: {}",
            common::streams(&output)
        );
        assert_short_lines(&output, what);
        let (error, _) = refusal::assert_refusal(&output.stderr);
        assert!(error.contains(why), "{what}: {error}");
        assert_eq!(tree_diff(&before, &snapshot(work.path())), "", "{what}");
    }
}

#[test]
fn verify_cuts_a_certificates_long_subject() {
    let work = private_tempdir();
    let folder = work.path().join("certs");
    std::fs::create_dir(&folder).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationalUnitName, "u".repeat(20_000));
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    for file in ["ca.pem", "cert.pem"] {
        std::fs::write(folder.join(file), cert.pem()).unwrap();
    }
    std::fs::write(folder.join("key.pem"), key.serialize_pem()).unwrap();
    let before = tree(work.path());
    let output = dockertls().arg("verify").arg(&folder).output().unwrap();
    assert_short_lines(&output, "a 20 KB subject");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("OU=uuuu"),
        "{}",
        common::streams(&output)
    );
    assert_eq!(tree_diff(&before, &tree(work.path())), "");
}
