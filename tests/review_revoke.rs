//! Red-team review (branch `review`): a revoked client stays revoked. These tests FAIL on main
//! 76b8539: `rotate --all` and `rotate --ca` (not naming the client) re-issue a
//! revoked client's certificate with a new serial that no CRL lists, and `client list` says
//! "ok" again. The documented way back in is `rotate --client NAME --all` (named on purpose).

mod common;

use common::*;

fn status_of(pki: &std::path::Path, name: &str) -> String {
    ok_in(pki, &["client", "list"])
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn review_a_bulk_rotate_does_not_reinstate_a_revoked_client() {
    for args in [&["rotate", "--all"][..], &["rotate", "--ca"][..]] {
        let work = private_tempdir();
        let pki = work.path().join("pki");
        init_ok(&pki, &["--host", "h1.example", "--client", "alice,bob"]);
        ok_in(&pki, &["client", "revoke", "bob"]);
        assert!(status_of(&pki, "bob").contains("revoked"));
        let out = ok_in(&pki, args);
        let line = status_of(&pki, "bob");
        assert!(
            line.contains("revoked"),
            "{args:?} gave the revoked bob a new certificate that no CRL lists ({line}):\n{out}"
        );
    }
}

/// The plain `rotate` a timer runs: 20 days into a 30-day lifetime every certificate is due,
/// and the revoked bob is re-issued with the rest.
#[test]
fn review_a_due_rotate_does_not_reinstate_a_revoked_client() {
    let Some(faketime) = common::faketime_tool("moves the clock to when certificates are due")
    else {
        return;
    };
    let work = private_tempdir();
    let pki = work.path().join("pki");
    init_ok(
        &pki,
        &[
            "--host",
            "h1.example",
            "--client",
            "alice,bob",
            "--days",
            "30",
        ],
    );
    ok_in(&pki, &["client", "revoke", "bob"]);
    let out = std::process::Command::new(faketime)
        .args(["-f", "+20d", env!("CARGO_BIN_EXE_dockertls"), "--dir"])
        .arg(&pki)
        .arg("rotate")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", streams(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("re-issued client bob"),
        "a due rotate re-issued the revoked bob:\n{stdout}"
    );
}

/// The rest of the class: `rotate --ca` keeps the revoked client's folder as it was (it is not
/// dropped with the old clients/), says so, and naming the client is the way back in.
#[test]
fn a_revoked_client_is_kept_as_is_and_comes_back_only_when_named() {
    let work = private_tempdir();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "h1.example", "--client", "alice,bob"]);
    ok_in(&pki, &["client", "revoke", "bob"]);
    let cert = pki.join("clients/bob/cert.pem");
    let before = std::fs::read(&cert).unwrap();
    let out = ok_in(&pki, &["rotate", "--ca"]);
    assert!(
        out.contains("kept client bob: revoked (serial ")
            && out.contains("dockertls rotate --client bob --all"),
        "rotate --ca does not say it left the revoked bob out:\n{out}"
    );
    assert_eq!(
        std::fs::read(&cert).unwrap(),
        before,
        "rotate --ca changed or dropped the revoked bob's folder"
    );
    ok_in(&pki, &["rotate", "--client", "bob", "--all"]);
    let line = status_of(&pki, "bob");
    assert!(
        line.contains(" ok"),
        "naming the revoked bob did not let it in again: {line}"
    );
}
