//! Red-team review (branch `review`): every change all-old or all-new, under SIGKILL at a
//! system call (strace's fault injection, as tests/common::kill_sweep does). These tests FAIL
//! on main 76b8539.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// A PKI with two servers (each with a CRL), clients alice and bob.
fn two_server_pki(pki: &Path) {
    init_ok(pki, &["--host", "h1.example", "--client", "alice,bob"]);
    ok_in(pki, &["server", "add", "web2", "--host", "web2.example"]);
    ok_in(pki, &["crl", "refresh"]);
}

/// The serials (lower-case hex, no leading zeros) a server folder's crl.pem revokes.
fn crl_serials(openssl: &Path, crl: &Path) -> Vec<String> {
    let out = Command::new(openssl)
        .args(["crl", "-noout", "-text", "-in"])
        .arg(crl)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("Serial Number: "))
        .map(|s| s.trim_start_matches('0').to_ascii_lowercase())
        .collect()
}

fn cert_serial(openssl: &Path, cert: &Path) -> String {
    let out = Command::new(openssl)
        .args(["x509", "-noout", "-serial", "-in"])
        .arg(cert)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_start_matches("serial=")
        .trim_start_matches('0')
        .to_ascii_lowercase()
}

/// `client revoke bob` killed at each renameat2: the state file must never say "revoked"
/// while a server's CRL does not revoke bob, unless a plain re-run of the same command
/// completes the revocation. On main the state file is renamed first; a kill before the
/// CRLs' renames leaves bob listed as revoked (client list: "revoked", verify: ok) while no
/// CRL revokes him, and the re-run refuses ("client bob is revoked already", exit 2).
#[test]
fn review_a_killed_revoke_never_leaves_a_revoked_client_unrevoked_by_the_crls() {
    let Some(strace) = find_tool("strace", "crash tests inject SIGKILL with strace") else {
        return;
    };
    let Some(openssl) = find_tool("openssl", "reads the CRLs") else {
        return;
    };
    let mut killed = 0;
    for n in 1..20 {
        let work = private_tempdir();
        let pki = work.path().join("pki");
        two_server_pki(&pki);
        let bob = cert_serial(&openssl, &pki.join("clients/bob/cert.pem"));
        let out = Command::new(&strace)
            .args(["-f", "-qq", "-o", "/dev/null", "-e"])
            .arg(format!("inject=renameat2:signal=KILL:when={n}"))
            .arg(env!("CARGO_BIN_EXE_dockertls"))
            .arg("--dir")
            .arg(&pki)
            .args(["client", "revoke", "bob"])
            .output()
            .unwrap();
        if out.status.success() {
            break;
        }
        killed += 1;
        // What a user does after a crash: run the same command again.
        let again = run_in(&pki, &["client", "revoke", "bob"]);
        let state = std::fs::read_to_string(pki.join("dockertls.json")).unwrap();
        let recorded = state.contains(&format!("\"{bob}\""));
        for server in ["h1.example", "web2"] {
            let crl = pki.join("servers").join(server).join("crl.pem");
            let revokes = crl_serials(&openssl, &crl).contains(&bob);
            assert_eq!(
                recorded,
                revokes,
                "kill at renameat2 #{n}, then a re-run ({}): the state file says bob revoked = \
                 {recorded}, but servers/{server}/crl.pem revokes bob = {revokes}",
                streams(&again).trim()
            );
        }
    }
    assert!(killed > 0, "no run was killed: the sweep tested nothing");
}
