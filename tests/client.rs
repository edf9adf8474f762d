//! `client add|list|remove` through the binary: modes, key type, list output, the
//! no-revocation message and the backup.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{find_tool, init_ok, kill_sweep_with, mode, ok_in as ok, verify_ok};

#[test]
fn client_add_list_remove() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(
        &pki,
        &[
            "--host",
            "docker.example.com",
            "--client",
            "alice",
            "--key-type",
            "ed25519",
        ],
    );
    let out = ok(&pki, &["client", "add", "bob", "carol", "--days", "30"]);
    assert!(
        out.contains("added client bob") && out.contains("added client carol"),
        "{out}"
    );
    for name in ["bob", "carol"] {
        let folder = pki.join("clients").join(name);
        assert_eq!(mode(&folder), 0o700);
        assert_eq!(mode(&folder.join("key.pem")), 0o400);
        assert_eq!(mode(&folder.join("cert.pem")), 0o444);
        assert_eq!(
            std::fs::read(folder.join("ca.pem")).unwrap(),
            std::fs::read(pki.join("ca/ca.pem")).unwrap()
        );
        // Same key type as the PKI.
        let key = std::fs::read_to_string(folder.join("key.pem")).unwrap();
        assert_eq!(
            key.lines().count(),
            3,
            "an Ed25519 PKCS#8 key is one base64 line: {key}"
        );
    }
    verify_ok(&pki);
    if let Some(openssl) = find_tool("openssl", "openssl cross-checks the added client") {
        let status = Command::new(openssl)
            .args(["verify", "-x509_strict", "-purpose", "sslclient", "-CAfile"])
            .arg(pki.join("ca/ca.pem"))
            .arg(pki.join("clients/bob/cert.pem"))
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "{}",
            String::from_utf8_lossy(&status.stderr)
        );
    }

    let listed: serde_json::Value =
        serde_json::from_str(&ok(&pki, &["client", "list", "--format", "json"])).unwrap();
    let clients = listed["clients"].as_array().unwrap();
    let names: Vec<&str> = clients
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
    assert_eq!(clients[1]["days_left"], 29);
    // A fresh 30-day certificate is not due: that comes when a third of it is left (issue 15).
    assert_eq!(clients[1]["status"], "ok");
    let rfc3339 = |v: &serde_json::Value| {
        let format = time::format_description::well_known::Rfc3339;
        time::OffsetDateTime::parse(v.as_str().unwrap(), &format).unwrap()
    };
    let before_end = rfc3339(&clients[1]["not_after"]) - rfc3339(&clients[1]["due"]);
    assert_eq!(before_end.whole_days(), 10, "{:?}", clients[1]);
    assert_eq!(clients[0]["status"], "ok");
    assert_eq!(clients[0]["serial"].as_str().unwrap().len(), 32);
    let text = ok(&pki, &["client", "list"]);
    assert!(text.lines().nth(2).unwrap().starts_with("bob "), "{text}");

    let out = ok(&pki, &["client", "remove", "carol"]);
    assert!(
        out.contains("revoked its certificate")
            && out.contains("dockerd itself has no revocation")
            && out.contains("install --authz"),
        "{out}"
    );
    assert!(!pki.join("clients/carol").exists());
    let backups: Vec<PathBuf> = std::fs::read_dir(pki.join("backup"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(backups.len(), 1);
    assert_eq!(mode(&backups[0].join("clients/carol/key.pem")), 0o400);
}

#[test]
fn client_add_survives_a_kill_at_any_write_or_rename() {
    // Each new folder appears whole or not at all: a re-run adds those still missing.
    kill_sweep_with(
        &["client", "add", "carol", "dave"],
        &["write", "renameat2", "syncfs"],
        |pki| {
            let mut again = vec!["client".to_string(), "add".to_string()];
            again.extend(
                ["carol", "dave"]
                    .iter()
                    .filter(|n| !pki.join("clients").join(n).exists())
                    .map(|n| n.to_string()),
            );
            if again.len() == 2 {
                again = vec!["client".to_string(), "list".to_string()];
            }
            again
        },
    );
}
