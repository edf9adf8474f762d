//! `client revoke`, `client remove`, `crl refresh` and `rotate --revoke-old` through the binary:
//! the CRL in every server folder is read and checked by OpenSSL (signature against ca.pem,
//! the serials it lists, `openssl verify -crl_check` refusing exactly the revoked client), and
//! bad input is one line, exit 2, nothing changed.

mod common;
#[path = "support/refusal.rs"]
mod refusal;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{files, find_tool, init_ok, ok_in as ok, run_in, streams, tree_diff};

/// A PKI with clients alice and bob (one server).
fn pki() -> (tempfile::TempDir, PathBuf) {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(
        &pki,
        &["--host", "docker.example.com", "--client", "alice,bob"],
    );
    (work, pki)
}

/// The server folders of the PKI.
fn server_dirs(pki: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(pki.join("servers"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no server folder in {}", pki.display());
    dirs
}

/// A certificate's serial as OpenSSL prints it (upper-case hex).
fn serial(openssl: &Path, cert: &Path) -> String {
    let out = Command::new(openssl)
        .args(["x509", "-noout", "-serial", "-in"])
        .arg(cert)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    text.strip_prefix("serial=").unwrap().to_string()
}

/// `openssl crl -CAfile ca.pem -noout -text` on a CRL: must verify; returns the text.
fn crl_text(openssl: &Path, folder: &Path) -> String {
    let out = Command::new(openssl)
        .args(["crl", "-noout", "-text", "-in"])
        .arg(folder.join("crl.pem"))
        .arg("-CAfile")
        .arg(folder.join("ca.pem"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.contains("verify OK"),
        "openssl crl refuses {}: {stderr}",
        folder.display()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `openssl verify -crl_check` of a client certificate against a server folder's CA and CRL.
fn verify_with_crl(openssl: &Path, folder: &Path, cert: &Path) -> (bool, String) {
    let out = Command::new(openssl)
        .args(["verify", "-crl_check", "-CAfile"])
        .arg(folder.join("ca.pem"))
        .arg("-CRLfile")
        .arg(folder.join("crl.pem"))
        .arg(cert)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn state(pki: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(pki.join("dockertls.json")).unwrap()).unwrap()
}

#[test]
fn revoke_puts_the_certificate_on_a_crl_openssl_checks() {
    let Some(openssl) = find_tool("openssl", "openssl reads and checks the CRL") else {
        return;
    };
    let (_work, pki) = pki();
    let bob = pki.join("clients/bob/cert.pem");
    let alice = pki.join("clients/alice/cert.pem");
    let out = ok(
        &pki,
        &["client", "revoke", "bob", "--reason", "key-compromise"],
    );
    assert!(out.contains("revoked client bob"), "{out}");
    assert!(bob.exists(), "revoke keeps the folder");
    for folder in server_dirs(&pki) {
        let text = crl_text(&openssl, &folder);
        assert!(text.contains(&serial(&openssl, &bob)), "{text}");
        assert!(!text.contains(&serial(&openssl, &alice)), "{text}");
        assert!(text.contains("Key Compromise"), "{text}");
        assert!(
            text.contains("X509v3 CRL Number: \n                1"),
            "{text}"
        );
        assert!(text.contains("Version 2"), "{text}");
        assert_eq!(common::mode(&folder.join("crl.pem")), 0o444);
        let (ok_bob, why) = verify_with_crl(&openssl, &folder, &bob);
        assert!(!ok_bob && why.contains("certificate revoked"), "{why}");
        let (ok_alice, why) = verify_with_crl(&openssl, &folder, &alice);
        assert!(ok_alice, "{why}");
    }
    let listed: serde_json::Value =
        serde_json::from_str(&ok(&pki, &["client", "list", "--format", "json"])).unwrap();
    let status = |i: usize| listed["clients"][i]["status"].as_str().unwrap().to_string();
    assert_eq!(
        (status(0), status(1)),
        ("ok".into(), "revoked".into()),
        "{listed}"
    );
    let recorded = state(&pki);
    assert_eq!(recorded["revoked"][0]["name"], "bob");
    assert_eq!(recorded["revoked"][0]["reason"], "key-compromise");
    assert_eq!(recorded["crl_number"], 1);
    // The next revocation keeps the first: both listed, a higher CRL number.
    ok(&pki, &["client", "revoke", "alice"]);
    for folder in server_dirs(&pki) {
        let text = crl_text(&openssl, &folder);
        assert!(text.contains(&serial(&openssl, &bob)), "{text}");
        assert!(text.contains(&serial(&openssl, &alice)), "{text}");
        assert!(
            text.contains("X509v3 CRL Number: \n                2"),
            "{text}"
        );
    }
}

#[test]
fn remove_revokes_and_moves_the_folder_to_the_backup() {
    let Some(openssl) = find_tool("openssl", "openssl reads and checks the CRL") else {
        return;
    };
    let (_work, pki) = pki();
    let bob_serial = serial(&openssl, &pki.join("clients/bob/cert.pem"));
    let out = ok(&pki, &["client", "remove", "bob"]);
    assert!(out.contains("revoked its certificate"), "{out}");
    assert!(!pki.join("clients/bob").exists());
    for folder in server_dirs(&pki) {
        let text = crl_text(&openssl, &folder);
        assert!(text.contains(&bob_serial), "{text}");
        assert!(text.contains("Cessation Of Operation"), "{text}");
    }
    assert!(state(&pki)["clients"].get("bob").is_none());
}

#[test]
fn refresh_re_signs_the_same_list_with_new_dates() {
    let Some(openssl) = find_tool("openssl", "openssl reads the CRL") else {
        return;
    };
    let (_work, pki) = pki();
    ok(&pki, &["client", "revoke", "bob"]);
    let folder = server_dirs(&pki).remove(0);
    let before = crl_text(&openssl, &folder);
    let bob = serial(&openssl, &pki.join("clients/bob/cert.pem"));
    let Some(faketime) = common::faketime_tool("faketime runs refresh 20 days later") else {
        return;
    };
    let out = Command::new(faketime)
        .args(["-f", "+20d"])
        .arg(env!("CARGO_BIN_EXE_dockertls"))
        .arg("--dir")
        .arg(&pki)
        .args(["crl", "refresh"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", streams(&out));
    let after = crl_text(&openssl, &folder);
    assert!(after.contains(&bob), "{after}");
    assert!(
        after.contains("X509v3 CRL Number: \n                2"),
        "{after}"
    );
    let next = |text: &str| {
        text.lines()
            .find(|l| l.contains("Next Update"))
            .unwrap()
            .to_string()
    };
    assert_ne!(next(&before), next(&after), "the dates did not move");
}

#[test]
fn rotate_revoke_old_revokes_the_replaced_certificate_after_the_grace() {
    let Some(openssl) = find_tool("openssl", "openssl reads the CRL") else {
        return;
    };
    let (_work, pki) = pki();
    let old = serial(&openssl, &pki.join("clients/alice/cert.pem"));
    ok(
        &pki,
        &[
            "rotate",
            "--client",
            "alice",
            "--all",
            "--revoke-old",
            "--grace",
            "3",
        ],
    );
    let new = serial(&openssl, &pki.join("clients/alice/cert.pem"));
    assert_ne!(old, new);
    // Not yet: the grace runs.
    assert!(state(&pki).get("revoked").is_none(), "{}", state(&pki));
    assert_eq!(state(&pki)["superseded"][0]["name"], "alice");
    let Some(faketime) = common::faketime_tool("faketime runs refresh after the grace") else {
        return;
    };
    let out = Command::new(faketime)
        .args(["-f", "+4d"])
        .arg(env!("CARGO_BIN_EXE_dockertls"))
        .arg("--dir")
        .arg(&pki)
        .args(["crl", "refresh"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", streams(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("revoked the certificate of alice"),
        "{stdout}"
    );
    for folder in server_dirs(&pki) {
        let text = crl_text(&openssl, &folder);
        assert!(text.contains(&old) && !text.contains(&new), "{text}");
        assert!(text.contains("Superseded"), "{text}");
    }
    // --grace 0: at once.
    let old = new;
    ok(
        &pki,
        &[
            "rotate",
            "--client",
            "alice",
            "--all",
            "--revoke-old",
            "--grace",
            "0",
        ],
    );
    for folder in server_dirs(&pki) {
        assert!(crl_text(&openssl, &folder).contains(&old));
    }
}

/// Runs a refused command: one error line (and a hint), exit 2, the PKI unchanged.
fn refused(pki: &Path, args: &[&str], needle: &str) {
    let before = files(pki);
    let out = run_in(pki, args);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {}", streams(&out));
    let (error, _) = refusal::assert_refusal(&out.stderr);
    assert!(
        error.contains(needle),
        "{args:?}: {needle:?} not in {error}"
    );
    let diff = tree_diff(&before, &files(pki));
    assert!(diff.is_empty(), "{args:?} changed the PKI:\n{diff}");
}

#[test]
fn bad_input_is_one_line_exit_2_and_changes_nothing() {
    let (_work, pki) = pki();
    // Migrated (format 2) first, so only the command under test could change anything.
    ok(&pki, &["client", "revoke", "alice"]);
    refused(&pki, &["client", "revoke", "carol"], "no client 'carol'");
    refused(&pki, &["client", "revoke", "../bob"], "../bob");
    refused(
        &pki,
        &["client", "revoke", "bob", "--reason", "bored"],
        "bored",
    );
    refused(&pki, &["client", "remove", "carol"], "no client 'carol'");
    refused(&pki, &["rotate", "--grace", "3"], "--revoke-old");
    let empty = tempfile::tempdir().unwrap();
    refused(empty.path(), &["crl", "refresh"], "holds no dockertls PKI");
    refused(
        empty.path(),
        &["client", "revoke", "bob"],
        "holds no dockertls PKI",
    );
}

#[test]
fn every_server_folder_carries_the_list_through_server_add_and_rotate() {
    let Some(openssl) = find_tool("openssl", "openssl reads and checks the CRL") else {
        return;
    };
    let (_work, pki) = pki();
    let bob = serial(&openssl, &pki.join("clients/bob/cert.pem"));
    ok(&pki, &["client", "revoke", "bob"]);
    ok(&pki, &["client", "role", "alice", "read-only"]);
    ok(
        &pki,
        &["server", "add", "web2", "--host", "web2.example.com"],
    );
    let dirs = server_dirs(&pki);
    assert_eq!(dirs.len(), 2);
    for folder in &dirs {
        assert!(
            crl_text(&openssl, folder).contains(&bob),
            "{}",
            folder.display()
        );
        assert!(folder.join("authz.json").exists(), "{}", folder.display());
    }
    // A re-issued server keeps them; a new CA signs the list again (the old one would not
    // verify against the new ca.pem).
    ok(&pki, &["rotate", "--server", "web2", "--all"]);
    ok(&pki, &["rotate", "--ca"]);
    for folder in &server_dirs(&pki) {
        let text = crl_text(&openssl, folder);
        assert!(text.contains(&bob), "{text}");
        assert!(folder.join("authz.json").exists(), "{}", folder.display());
    }
}

/// The serials the CRL of a server folder lists, checked against its ca.pem (panics on a CRL
/// that does not verify: a half-written or mixed file); None without a CRL.
fn listed(folder: &Path) -> Option<Vec<String>> {
    let crl = std::fs::read(folder.join("crl.pem")).ok()?;
    let ca = std::fs::read(folder.join("ca.pem")).unwrap();
    let info = dockertls::crl::read(&crl, &ca)
        .unwrap_or_else(|why| panic!("{}: crl.pem {why}", folder.display()));
    Some(info.serials)
}

/// `client revoke` killed at every write, rename and flush: each crl.pem is whole (it
/// verifies) at every instant, and once the state file records the revocation, `crl refresh`
/// puts it on every server's list; otherwise the revocation runs again. Never a revocation
/// recorded and lost.
#[test]
fn revoke_survives_a_kill_at_any_write_or_rename() {
    let Some(strace) = find_tool("strace", "crash tests inject SIGKILL with strace") else {
        return;
    };
    let mut killed_runs = 0;
    for syscall in ["write", "renameat2", "fsync", "syncfs"] {
        for n in 1..200 {
            let (_work, pki) = pki();
            let bob = dockertls::store::state::read_leaf(&pki.join("clients/bob/cert.pem"))
                .unwrap()
                .serial;
            let output = Command::new(&strace)
                .args(["-f", "-qq", "-o", "/dev/null", "-e"])
                .arg(format!("inject={syscall}:signal=KILL:when={n}"))
                .arg(env!("CARGO_BIN_EXE_dockertls"))
                .arg("--dir")
                .arg(&pki)
                .args(["client", "revoke", "bob"])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            if stderr.contains("ptrace") || stderr.contains("Operation not permitted") {
                assert!(
                    !common::peers_required(),
                    "strace cannot trace here: {stderr}"
                );
                eprintln!("SKIPPED: strace cannot trace here");
                return;
            }
            for folder in server_dirs(&pki) {
                listed(&folder);
            }
            let killed = output.status.code().is_none() || output.status.code() == Some(137);
            if !killed {
                assert!(output.status.success(), "{syscall} #{n}: {stderr}");
                break;
            }
            killed_runs += 1;
            let recorded = state(&pki)["revoked"]
                .as_array()
                .is_some_and(|r| r.iter().any(|e| e["serial"] == bob.as_str()));
            let again: &[&str] = if recorded {
                &["crl", "refresh"]
            } else {
                &["client", "revoke", "bob"]
            };
            ok(&pki, again);
            for folder in server_dirs(&pki) {
                let serials = listed(&folder).expect("a CRL after the re-run");
                assert!(serials.contains(&bob), "{syscall} #{n}: bob not listed");
                let leftovers: Vec<_> = std::fs::read_dir(&folder)
                    .unwrap()
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".new"))
                    .collect();
                assert!(leftovers.is_empty(), "{syscall} #{n}: {leftovers:?}");
            }
        }
    }
    assert!(
        killed_runs > 0,
        "no run was killed: the sweep tested nothing"
    );
    eprintln!("client revoke: {killed_runs} runs killed mid-way; no revocation lost");
}

#[test]
fn remove_under_an_expired_ca_still_removes_and_says_it_did_not_revoke() {
    let Some(faketime) = common::faketime_tool("faketime runs remove after the CA's end") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(
        &pki,
        &[
            "--host",
            "docker.example.com",
            "--client",
            "alice,bob",
            "--ca-days",
            "30",
            "--days",
            "20",
        ],
    );
    let out = Command::new(faketime)
        .args(["-f", "+40d"])
        .arg(env!("CARGO_BIN_EXE_dockertls"))
        .arg("--dir")
        .arg(&pki)
        .args(["client", "remove", "bob"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", streams(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("NOT revoked") && stdout.contains("CA expired"),
        "{stdout}"
    );
    assert!(!pki.join("clients/bob").exists());
    assert!(!server_dirs(&pki)[0].join("crl.pem").exists());
}

/// A PKI made by dockertls before many servers (format 1): the first revocation migrates it,
/// then lists the certificate in the one server folder; verify then warns about bob's folder
/// (revoked, still there) and nothing else.
#[test]
fn revoke_on_a_pki_of_the_first_format() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    common::format1_pki(&pki);
    let bob = dockertls::store::state::read_leaf(&pki.join("clients/bob/cert.pem"))
        .unwrap()
        .serial;
    ok(&pki, &["client", "revoke", "bob"]);
    let folders = server_dirs(&pki);
    assert_eq!(folders.len(), 1);
    assert_eq!(listed(&folders[0]), Some(vec![bob]));
    let output = run_in(&pki, &["verify", "--warn-days", "0", "--format", "json"]);
    assert_eq!(output.status.code(), Some(1), "{}", streams(&output));
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    for target in document["targets"].as_array().unwrap() {
        let revoked = target["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("clients/bob"));
        let expected = if revoked { "warn" } else { "ok" };
        assert_eq!(target["status"], expected, "{target}");
        for check in target["checks"].as_array().unwrap() {
            let expected = if revoked && check["id"] == "revoked" {
                "warn"
            } else {
                "ok"
            };
            assert_eq!(check["status"], expected, "{check}");
        }
    }
}

/// An encrypted CA key: the passphrase file unlocks it; without it (and no terminal) the
/// revocation is refused and nothing changes.
#[test]
fn revoke_with_an_encrypted_ca_key() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    let pass = work.path().join("pass");
    std::fs::write(&pass, "correct horse battery staple\n").unwrap();
    std::fs::set_permissions(&pass, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = common::dockertls()
        .arg("--dir")
        .arg(&pki)
        .arg("--ca-passphrase-file")
        .arg(&pass)
        .args([
            "init",
            "--host",
            "docker.example.com",
            "--client",
            "alice,bob",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", streams(&out));
    ok(&pki, &["client", "role", "alice", "read-only"]);
    refused(&pki, &["client", "revoke", "bob"], "encrypted");
    let out = common::dockertls()
        .arg("--dir")
        .arg(&pki)
        .arg("--ca-passphrase-file")
        .arg(&pass)
        .args(["client", "revoke", "bob"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", streams(&out));
    assert!(listed(&server_dirs(&pki)[0]).is_some_and(|s| s.len() == 1));
}

/// Review item 4: revoking a client revoked already finishes the job (a run stopped after the
/// state file, its commit point, left the server lists without it): the list is signed again
/// and written into every server folder, even one that lost it, exit 0.
#[test]
fn revoking_again_writes_the_list_into_every_server_folder_again() {
    let (_work, pki) = pki();
    ok(&pki, &["client", "revoke", "alice"]);
    let folder = server_dirs(&pki).remove(0);
    let before = std::fs::read_to_string(folder.join("crl.pem")).unwrap();
    // What a run killed after the state file leaves: the old list (here: none).
    std::fs::remove_file(folder.join("crl.pem")).unwrap();
    let out = ok(&pki, &["client", "revoke", "alice"]);
    assert!(
        out.contains("was revoked already") && out.contains("signed the list again"),
        "{out}"
    );
    let after = std::fs::read_to_string(folder.join("crl.pem"))
        .expect("a second revoke did not write the list back into the server folder");
    assert_ne!(before, after, "the list was not signed again");
    assert!(
        state(&pki).to_string().contains("alice"),
        "alice is no longer recorded as revoked"
    );
}

/// Minor 1: a malformed entry in the state file's "revoked" list is named in dockertls's own
/// words, with the fix (not "replace the CA", not a date library's message); nothing changed.
#[test]
fn a_malformed_revoked_entry_is_named_with_its_fix() {
    let (_work, pki) = pki();
    ok(&pki, &["client", "revoke", "alice"]);
    let path = pki.join("dockertls.json");
    let good = std::fs::read_to_string(&path).unwrap();
    for (entry, needle) in [
        (
            r#"{"serial": "zz", "name": "x", "at": "2026-01-01T00:00:00Z"}"#,
            "entry #1 has the serial 'zz', which is not a certificate serial in hex",
        ),
        (
            r#"{"serial": "0a", "name": "x", "at": "yesterday"}"#,
            "entry #1 has the \"at\" 'yesterday', which is not a date and time",
        ),
    ] {
        let mut state: serde_json::Value = serde_json::from_str(&good).unwrap();
        state["revoked"] = serde_json::from_str(&format!("[{entry}]")).unwrap();
        std::fs::write(&path, state.to_string()).unwrap();
        refused(&pki, &["crl", "refresh"], needle);
        let out = run_in(&pki, &["crl", "refresh"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("rotate --ca"), "{stderr}");
    }
}
