//! Roles through the binary: `client role`, `client add --role`, `role add|remove|list`; the
//! policy (authz.json, the format `authz serve` reads) in every server folder; everyone admin
//! on first use; bad input is one line, exit 2, nothing changed.

mod common;
#[path = "support/refusal.rs"]
mod refusal;

use std::path::{Path, PathBuf};

use common::{files, init_ok, ok_in as ok, run_in, streams, tree_diff};

fn pki() -> (tempfile::TempDir, PathBuf) {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(
        &pki,
        &["--host", "docker.example.com", "--client", "alice,bob"],
    );
    (work, pki)
}

/// The policy of every server folder (all the same); None when there is none.
fn policy(pki: &Path) -> Option<serde_json::Value> {
    let mut seen: Option<Vec<u8>> = None;
    for entry in std::fs::read_dir(pki.join("servers")).unwrap() {
        let path = entry.unwrap().path().join("authz.json");
        let bytes = std::fs::read(&path).ok()?;
        assert_eq!(common::mode(&path), 0o444);
        if let Some(first) = &seen {
            assert_eq!(first, &bytes, "server folders disagree");
        }
        seen = Some(bytes);
    }
    seen.map(|b| serde_json::from_slice(&b).unwrap())
}

#[test]
fn first_role_records_everyone_as_admin_and_writes_the_policy() {
    let (_work, pki) = pki();
    // No role used yet: no policy (the plugin treats everyone as admin).
    ok(&pki, &["role", "list"]);
    assert!(policy(&pki).is_none());
    let out = ok(&pki, &["client", "role", "bob", "read-only"]);
    assert!(
        out.contains("every other client was recorded as admin"),
        "{out}"
    );
    let p = policy(&pki).expect("authz.json in every server folder");
    assert_eq!(p["format"], 1);
    assert_eq!(p["unix_socket_requests"], "allow");
    assert_eq!(
        p["clients"],
        serde_json::json!({"alice": "admin", "bob": "read-only"})
    );
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(pki.join("dockertls.json")).unwrap()).unwrap();
    assert_eq!(state["clients"]["alice"]["role"], "admin");
    // New clients: their --role, else admin.
    ok(&pki, &["client", "add", "carol", "--role", "read-only"]);
    ok(&pki, &["client", "add", "dave"]);
    let p = policy(&pki).unwrap();
    assert_eq!(p["clients"]["carol"], "read-only");
    assert_eq!(p["clients"]["dave"], "admin");
    // A removed client leaves the policy.
    ok(&pki, &["client", "remove", "dave"]);
    assert!(policy(&pki).unwrap()["clients"].get("dave").is_none());
}

#[test]
fn custom_roles_are_allow_lists_in_the_policy() {
    let (_work, pki) = pki();
    ok(
        &pki,
        &[
            "role",
            "add",
            "deployer",
            "--allow",
            "GET /**",
            "--allow",
            "POST /containers/*/restart",
        ],
    );
    ok(&pki, &["client", "role", "bob", "deployer"]);
    let p = policy(&pki).unwrap();
    assert_eq!(
        p["roles"]["deployer"]["allow"],
        serde_json::json!([
            {"method": "GET", "path": "/**"},
            {"method": "POST", "path": "/containers/*/restart"}
        ])
    );
    assert_eq!(p["clients"]["bob"], "deployer");
    assert_eq!(p["clients"]["alice"], "admin");
    let listed: serde_json::Value =
        serde_json::from_str(&ok(&pki, &["role", "list", "--format", "json"])).unwrap();
    let deployer = listed["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"] == "deployer")
        .unwrap();
    assert_eq!(deployer["clients"], serde_json::json!(["bob"]));
    // In use: not removable; once no one has it, gone from the policy.
    let out = run_in(&pki, &["role", "remove", "deployer"]);
    assert_eq!(out.status.code(), Some(2), "{}", streams(&out));
    ok(&pki, &["client", "role", "bob", "admin"]);
    ok(&pki, &["role", "remove", "deployer"]);
    assert!(policy(&pki).unwrap()["roles"].get("deployer").is_none());
}

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
fn bad_roles_and_rules_are_one_line_exit_2_and_change_nothing() {
    let (_work, pki) = pki();
    ok(&pki, &["role", "add", "ops", "--allow", "GET /info"]);
    refused(
        &pki,
        &["client", "role", "bob", "root"],
        "role 'root' is not defined",
    );
    refused(
        &pki,
        &["client", "role", "carol", "admin"],
        "no client 'carol'",
    );
    refused(
        &pki,
        &["client", "add", "carol", "--role", "nope"],
        "role 'nope' is not defined",
    );
    refused(
        &pki,
        &["role", "add", "admin", "--allow", "GET /**"],
        "built in",
    );
    refused(
        &pki,
        &["role", "add", "OPS", "--allow", "GET /**"],
        "exists already",
    );
    refused(
        &pki,
        &["role", "add", "x y", "--allow", "GET /**"],
        "not a role name",
    );
    refused(&pki, &["role", "add", "r", "--allow", "PATCH /x"], "PATCH");
    // Minor 8: the plugin strips /vX.Y before matching: such a rule could never match.
    for versioned in ["GET /v1.41/info", "GET /v1.41", "* /v1/**"] {
        refused(
            &pki,
            &["role", "add", "r", "--allow", versioned],
            "matched without the /vX.Y prefix",
        );
    }
    refused(
        &pki,
        &["role", "add", "r", "--allow", "GET /**/x/**"],
        "'**'",
    );
    refused(
        &pki,
        &["role", "add", "r", "--allow", "GET"],
        "METHOD /path",
    );
    refused(&pki, &["role", "add", "r"], "--allow");
    refused(&pki, &["role", "remove", "read-only"], "built in");
    refused(&pki, &["role", "remove", "ghost"], "no custom role 'ghost'");
    ok(&pki, &["client", "role", "bob", "ops"]);
    refused(&pki, &["role", "remove", "ops"], "given to bob");
}

/// Review item 4 (minor 7): `role add` of the same role with the same rules is a re-run of an
/// add stopped after the state file: it writes the policy again (exit 0); other rules under
/// that name are still refused.
#[test]
fn adding_the_same_role_again_writes_the_policy_again() {
    let (_work, pki) = pki();
    ok(&pki, &["role", "add", "ops", "--allow", "GET /**"]);
    let written = policy(&pki).unwrap();
    for entry in std::fs::read_dir(pki.join("servers")).unwrap() {
        std::fs::remove_file(entry.unwrap().path().join("authz.json")).unwrap();
    }
    let out = ok(&pki, &["role", "add", "ops", "--allow", "GET /**"]);
    assert!(out.contains("exists already with these rules"), "{out}");
    let mut again = policy(&pki).expect("the re-run did not write the policy back");
    // Each policy written carries a revision one higher (the plugin refuses an older one).
    assert_eq!(
        (&written["revision"], &again["revision"]),
        (&1.into(), &2.into())
    );
    again["revision"] = written["revision"].clone();
    assert_eq!(again, written);
    refused(
        &pki,
        &["role", "add", "ops", "--allow", "GET /info"],
        "exists already",
    );
}
