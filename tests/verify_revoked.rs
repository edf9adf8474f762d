//! `verify` of a PKI says which client folders hold a revoked certificate (check `revoked`):
//! in text, JSON and Prometheus metrics; a re-issued client reads ok again; a revocation of a
//! certificate no folder holds says nothing; a PKI of the first format verifies as before.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{dockertls, files, find_tool, init_ok, ok_in as ok, streams, tree_diff};

/// A PKI with clients alice and bob (one server), bob revoked for key compromise.
fn revoked_pki() -> (tempfile::TempDir, PathBuf) {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(
        &pki,
        &["--host", "docker.example.com", "--client", "alice,bob"],
    );
    ok(
        &pki,
        &["client", "revoke", "bob", "--reason", "key-compromise"],
    );
    (work, pki)
}

fn verify(pki: &Path, format: &str) -> Output {
    dockertls()
        .args(["verify", "--format", format])
        .arg(pki)
        .output()
        .unwrap()
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", streams(output)))
}

/// The JSON target at `path`.
fn target<'a>(document: &'a serde_json::Value, path: &Path) -> &'a serde_json::Value {
    let path = path.display().to_string();
    document["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["path"] == path.as_str())
        .unwrap_or_else(|| panic!("no target {path} in {document:#}"))
}

/// A target's check `id`, if it has one.
fn check<'a>(target: &'a serde_json::Value, id: &str) -> Option<&'a serde_json::Value> {
    target["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
}

fn serial(cert: &Path) -> String {
    dockertls::store::state::read_leaf(cert).unwrap().serial
}

/// The value of the sample `name{labels}` in a metrics document.
fn sample(text: &str, name: &str, labels: &str) -> Option<String> {
    let head = if labels.is_empty() {
        format!("{name} ")
    } else {
        format!("{name}{{{labels}}} ")
    };
    text.lines()
        .find_map(|l| l.strip_prefix(&head).map(str::to_string))
}

#[test]
fn a_revoked_client_folder_never_reads_ok_in_text() {
    let (_work, pki) = revoked_pki();
    let bob = serial(&pki.join("clients/bob/cert.pem"));
    let before = files(&pki);
    let output = verify(&pki, "text");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(1), "{}", streams(&output));
    let line = |folder: &str| {
        let head = format!("{}  client", pki.join(folder).display());
        text.lines()
            .find(|l| l.starts_with(&head))
            .unwrap_or_else(|| panic!("no line for {folder}:\n{text}"))
            .to_string()
    };
    assert!(line("clients/bob").ends_with("WARN"), "{text}");
    assert!(line("clients/alice").ends_with("OK"), "{text}");
    let warning =
        format!("    warn revoked: client bob's certificate (serial {bob}) was revoked on ");
    let at = text.find(&warning).unwrap_or_else(|| panic!("{text}"));
    let rest = &text[at..];
    assert!(rest.contains("(reason key-compromise)"), "{text}");
    // No server records the plugin: the line says dockerd alone still lets bob in.
    assert!(
        rest.contains("no server of this PKI is recorded as running it"),
        "{text}"
    );
    let hint = rest.lines().nth(1).unwrap();
    assert!(
        hint.starts_with("        hint: ")
            && hint.contains("--authz")
            && hint.contains("dockertls client remove bob"),
        "{text}"
    );
    assert_eq!(text.matches("warn revoked").count(), 1, "{text}");
    assert!(
        text.ends_with("4 targets: 3 ok, 1 warn, 0 fail; 1 revoked client certificate\n"),
        "{text}"
    );
    let diff = tree_diff(&before, &files(&pki));
    assert!(diff.is_empty(), "verify changed the PKI:\n{diff}");
}

#[test]
fn json_and_metrics_carry_the_revocation() {
    let (_work, pki) = revoked_pki();
    let bob_serial = serial(&pki.join("clients/bob/cert.pem"));
    let output = verify(&pki, "json");
    assert_eq!(output.status.code(), Some(1), "{}", streams(&output));
    let document = json(&output);
    assert_eq!(document["status"], "warn");
    assert_eq!(document["summary"]["warn"], 1);
    let bob = target(&document, &pki.join("clients/bob"));
    assert_eq!(bob["status"], "warn");
    assert_eq!(bob["revoked"]["serial"], bob_serial.as_str());
    assert_eq!(bob["revoked"]["reason"], "key-compromise");
    assert!(bob["revoked"]["at"].as_str().unwrap().starts_with("20"));
    let revoked = check(bob, "revoked").unwrap();
    assert_eq!(revoked["status"], "warn");
    assert!(
        revoked["message"].as_str().unwrap().contains(&bob_serial),
        "{revoked}"
    );
    assert!(
        revoked["hint"]
            .as_str()
            .unwrap()
            .contains("client remove bob")
    );
    let alice = target(&document, &pki.join("clients/alice"));
    assert_eq!(alice["status"], "ok");
    assert!(alice.get("revoked").is_none(), "{alice}");
    assert_eq!(check(alice, "revoked").unwrap()["status"], "ok");

    let output = verify(&pki, "prometheus");
    assert_eq!(output.status.code(), Some(1), "{}", streams(&output));
    let text = String::from_utf8(output.stdout.clone()).unwrap();
    let labels = |name: &str| {
        format!(
            "path=\"{}\",kind=\"client\"",
            pki.join("clients").join(name).display()
        )
    };
    let revoked = |name: &str| {
        sample(
            &text,
            "dockertls_check_status",
            &format!("{},check=\"revoked\"", labels(name)),
        )
    };
    assert_eq!(revoked("bob").as_deref(), Some("1"), "{text}");
    assert_eq!(revoked("alice").as_deref(), Some("0"), "{text}");
    assert_eq!(
        sample(&text, "dockertls_target_status", &labels("bob")).as_deref(),
        Some("1")
    );
    assert_eq!(
        sample(&text, "dockertls_verify_status", "").as_deref(),
        Some("1")
    );
    if let Some(promtool) = find_tool("promtool", "promtool checks the metrics") {
        let mut child = Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&output.stdout)
            .unwrap();
        let checked = child.wait_with_output().unwrap();
        assert!(checked.status.success(), "{}", streams(&checked));
    }
}

/// Where a server is recorded as running the plugin (what `deploy --authz` writes into its
/// entry), the line says the plugin refuses the certificate there, and asks for no --authz.
#[test]
fn the_line_names_the_servers_that_run_the_plugin() {
    let (_work, pki) = revoked_pki();
    let state_file = pki.join("dockertls.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    let servers = state["servers"].as_object_mut().unwrap();
    let (name, entry) = servers.iter_mut().next().unwrap();
    let name = name.clone();
    entry[dockertls::authz_policy::keys::SERVER_AUTHZ] = true.into();
    std::fs::write(&state_file, serde_json::to_vec_pretty(&state).unwrap()).unwrap();
    let document = json(&verify(&pki, "json"));
    let revoked = check(target(&document, &pki.join("clients/bob")), "revoked").unwrap();
    let message = revoked["message"].as_str().unwrap();
    assert_eq!(revoked["status"], "warn");
    assert!(
        message.contains(&format!("the dockertls plugin refuses it on server {name}")),
        "{message}"
    );
    let hint = revoked["hint"].as_str().unwrap();
    assert!(
        !hint.contains("--authz") && hint.contains("client remove bob"),
        "{hint}"
    );
}

/// A server folder whose crl.pem does not list the revocation (a run stopped after the state
/// file, a folder restored) is named, with `crl refresh`; after it, it is not.
#[test]
fn a_crl_behind_the_records_is_named_until_refreshed() {
    let (_work, pki) = revoked_pki();
    let server = common::server_folder(&pki);
    let server_name = server.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::remove_file(server.join("crl.pem")).unwrap();
    let document = json(&verify(&pki, "json"));
    let revoked = check(target(&document, &pki.join("clients/bob")), "revoked").unwrap();
    let message = revoked["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "the crl.pem of server {server_name} does not list it"
        )),
        "{message}"
    );
    assert!(
        revoked["hint"]
            .as_str()
            .unwrap()
            .contains("dockertls crl refresh"),
        "{revoked}"
    );
    // The server folder says so too.
    let crl = check(target(&document, &server), "crl").unwrap();
    assert_eq!(crl["status"], "warn", "{crl}");
    assert!(
        crl["message"].as_str().unwrap().contains("is missing"),
        "{crl}"
    );
    ok(&pki, &["crl", "refresh"]);
    let document = json(&verify(&pki, "json"));
    let revoked = check(target(&document, &pki.join("clients/bob")), "revoked").unwrap();
    assert_eq!(revoked["status"], "warn");
    assert!(
        !revoked["message"]
            .as_str()
            .unwrap()
            .contains("does not list"),
        "{revoked}"
    );
    assert_eq!(
        check(target(&document, &server), "crl").unwrap()["status"],
        "ok"
    );
}

/// A removed client's folder is gone, but a server folder whose crl.pem lacks its revocation
/// (an older list put back) lets a kept copy of its files in: the server's `crl` check names
/// it; bob (on both lists) is not said to be missing.
#[test]
fn a_server_crl_lacking_a_removed_client_is_named() {
    let (work, pki) = revoked_pki();
    let server = common::server_folder(&pki);
    let older = work.path().join("crl-1.pem");
    std::fs::copy(server.join("crl.pem"), &older).unwrap();
    let alice = serial(&pki.join("clients/alice/cert.pem"));
    ok(&pki, &["client", "remove", "alice"]);
    let output = verify(&pki, "text");
    assert_eq!(output.status.code(), Some(1), "{}", streams(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(!text.contains("warn crl"), "{text}");
    std::fs::remove_file(server.join("crl.pem")).unwrap();
    std::fs::copy(&older, server.join("crl.pem")).unwrap();
    let output = verify(&pki, "text");
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{}", streams(&output));
    let line = format!(
        "does not list 1 of the 2 certificates the PKI records as revoked (alice (serial {alice})): the dockertls plugin on its host lets them in"
    );
    assert!(
        text.contains("    warn crl: crl.pem of server ") && text.contains(&line),
        "{text}"
    );
    assert!(
        text.contains("hint: sign it again into every server folder: dockertls crl refresh"),
        "{text}"
    );
    assert_eq!(text.matches("does not list").count(), 1, "{text}");
}

/// Re-issued (a new, unrevoked serial): bob reads ok again; removed: the revocation of a
/// certificate no folder holds says nothing.
#[test]
fn a_reissued_or_removed_client_reads_ok() {
    let (_work, pki) = revoked_pki();
    let old = serial(&pki.join("clients/bob/cert.pem"));
    ok(&pki, &["rotate", "--client", "bob", "--all"]);
    assert_ne!(serial(&pki.join("clients/bob/cert.pem")), old);
    let output = verify(&pki, "json");
    assert_eq!(output.status.code(), Some(0), "{}", streams(&output));
    let document = json(&output);
    let bob = target(&document, &pki.join("clients/bob"));
    assert_eq!(bob["status"], "ok");
    assert!(bob.get("revoked").is_none(), "{bob}");
    let message = check(bob, "revoked").unwrap()["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "an earlier certificate of bob, serial {old}, was revoked"
        )),
        "{message}"
    );

    ok(&pki, &["client", "remove", "alice"]);
    let output = verify(&pki, "text");
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", streams(&output));
    assert!(!text.contains("revoked"), "{text}");
    assert!(text.ends_with(": 3 ok, 0 warn, 0 fail\n"), "{text}");
}

/// A state file whose revocations cannot be read: a client's revocation is unknown, which is
/// a warning (never ok), and verify changes nothing.
#[test]
fn unreadable_records_are_a_warning() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "docker.example.com", "--client", "alice"]);
    let state_file = pki.join("dockertls.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    state["revoked"] =
        serde_json::json!([{"serial": "zz", "name": "alice", "at": "2026-01-01T00:00:00Z"}]);
    std::fs::write(&state_file, serde_json::to_vec_pretty(&state).unwrap()).unwrap();
    let before = files(&pki);
    let output = verify(&pki, "json");
    assert_eq!(output.status.code(), Some(1), "{}", streams(&output));
    let document = json(&output);
    let revoked = check(target(&document, &pki.join("clients/alice")), "revoked").unwrap();
    assert_eq!(revoked["status"], "warn");
    let message = revoked["message"].as_str().unwrap();
    assert!(
        message.starts_with("whether client alice is revoked is unknown: ")
            && message.contains("dockertls.json"),
        "{message}"
    );
    assert!(tree_diff(&before, &files(&pki)).is_empty());
}

/// A PKI made before revocations existed (format 1, no state file): verify reports what it
/// always did, with no `revoked` check, field or words, and changes nothing.
#[test]
fn a_pki_of_the_first_format_verifies_as_before() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    common::format1_pki(&pki);
    let before = files(&pki);
    let output = verify(&pki, "json");
    assert_eq!(output.status.code(), Some(0), "{}", streams(&output));
    let document = json(&output);
    assert_eq!(document["status"], "ok");
    for target in document["targets"].as_array().unwrap() {
        assert!(target.get("revoked").is_none(), "{target}");
        assert!(check(target, "revoked").is_none(), "{target}");
    }
    let text = verify(&pki, "text");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(!text.contains("revoked"), "{text}");
    let metrics = verify(&pki, "prometheus");
    let metrics = String::from_utf8_lossy(&metrics.stdout);
    assert!(!metrics.contains("revoked"), "{metrics}");
    assert!(tree_diff(&before, &files(&pki)).is_empty());
}

/// 40 days on, the 30-day list is past its nextUpdate: the server folder warns (it still
/// revokes bob, who stays a warning too).
#[test]
fn a_server_crl_past_its_next_update_warns() {
    let Some(faketime) = common::faketime_tool("runs verify 40 days on") else {
        return;
    };
    let (_work, pki) = revoked_pki();
    let output = Command::new(faketime)
        .args(["-f", "+40d"])
        .arg(env!("CARGO_BIN_EXE_dockertls"))
        .args(["verify", "--format", "json"])
        .arg(&pki)
        .output()
        .unwrap();
    let document = json(&output);
    let server = common::server_folder(&pki);
    let crl = check(target(&document, &server), "crl").unwrap();
    assert_eq!(crl["status"], "warn", "{crl}");
    assert!(
        crl["message"]
            .as_str()
            .unwrap()
            .contains("is past its nextUpdate"),
        "{crl}"
    );
    assert!(
        crl["hint"]
            .as_str()
            .unwrap()
            .contains("dockertls crl refresh")
    );
    let bob = target(&document, &pki.join("clients/bob"));
    assert_eq!(check(bob, "revoked").unwrap()["status"], "warn");
}
