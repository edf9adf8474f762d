//! Unattended renewal (issue 15) through the binary, under a frozen clock (`faketime -f` with
//! an absolute time): short lifetimes do not flap, `verify` agrees with `rotate`, and backups
//! are pruned to the newest N without ever following a link or touching what is not ours.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{files, tree_diff};

/// Runs dockertls with `args` on `dir` with the clock stopped at `at` (`2026-06-01 12:00:00`);
/// None (and a SKIPPED line) without faketime.
fn at(at: &str, dir: &Path, args: &[&str]) -> Option<Output> {
    let faketime = common::faketime_tool("renewal tests run the binary under faketime")?;
    let output = Command::new(faketime)
        .arg("-f")
        .arg(at)
        .arg(env!("CARGO_BIN_EXE_dockertls"))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .env_remove("DOCKERTLS_DIR")
        .output()
        .unwrap();
    assert_ne!(output.status.code(), Some(101), "{args:?} panicked");
    Some(output)
}

fn ok_at(when: &str, dir: &Path, args: &[&str]) -> Option<String> {
    let output = at(when, dir, args)?;
    assert_eq!(
        output.status.code(),
        Some(0),
        "{args:?} at {when}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

const T0: &str = "2026-06-01 12:00:00";

#[test]
fn a_ten_day_pki_is_renewed_once_when_due_and_never_flaps() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    let init = ["init", "--host", "docker.example.com", "--client", "alice"];
    let Some(_) = ok_at(T0, &pki, &[&init[..], &["--days", "10"]].concat()) else {
        return;
    };
    let made = files(&pki);
    // Right after init, twice: nothing is due, no file changes (contents and modes).
    for run in 1..=2 {
        let out = ok_at(T0, &pki, &["rotate"]).unwrap();
        assert!(out.starts_with("nothing to rotate"), "run {run}: {out}");
        // Each kept certificate says when it becomes due: 10 days + 5 minutes, a third left.
        assert!(
            out.contains("server docker.example.com: valid until 2026-06-11, due on 2026-06-08"),
            "{out}"
        );
        let diff = tree_diff(&made, &files(&pki));
        assert!(diff.is_empty(), "run {run} changed the PKI:\n{diff}");
    }
    let dry = ok_at(T0, &pki, &["rotate", "--dry-run", "--all"]).unwrap();
    assert!(
        dry.contains("would re-issue client alice: --all; due on 2026-06-08"),
        "{dry}"
    );
    // verify agrees: a fresh 10-day certificate is not "expiring soon".
    let verify = at(T0, &pki, &["verify"]).unwrap();
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let list = ok_at(T0, &pki, &["client", "list"]).unwrap();
    let alice = list.lines().find(|l| l.starts_with("alice ")).unwrap();
    assert!(
        alice.contains("2026-06-11  2026-06-08") && alice.ends_with("ok"),
        "{list}"
    );

    // 8 days on, a fifth of the lifetime is left: verify warns, rotate re-issues both, once.
    let later = "2026-06-09 12:00:00";
    let verify = at(later, &pki, &["verify"]).unwrap();
    assert_eq!(verify.status.code(), Some(1));
    let out = ok_at(later, &pki, &["rotate"]).unwrap();
    assert!(
        out.contains("re-issued server") && out.contains("re-issued client alice"),
        "{out}"
    );
    let renewed = files(&pki);
    for cert in [
        "servers/docker.example.com/server-cert.pem",
        "clients/alice/cert.pem",
    ] {
        let now = renewed.iter().find(|(p, _, _)| p == cert).unwrap();
        let then = made.iter().find(|(p, _, _)| p == cert).unwrap();
        assert_ne!(now.2, then.2, "{cert} was not re-issued");
    }
    // A third run, and a fourth, change nothing: the new certificates have their ten days.
    for run in 3..=4 {
        let out = ok_at(later, &pki, &["rotate"]).unwrap();
        assert!(out.starts_with("nothing to rotate"), "run {run}: {out}");
        let diff = tree_diff(&renewed, &files(&pki));
        assert!(diff.is_empty(), "run {run} changed the PKI:\n{diff}");
    }
    let verify = at(later, &pki, &["verify"]).unwrap();
    assert_eq!(verify.status.code(), Some(0));

    // --within at or over the lifetime would re-issue every run: refused, naming --days.
    let refused = at(later, &pki, &["rotate", "--within", "10"]).unwrap();
    let message = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{message}");
    assert!(
        message.starts_with("error: --within 10: server docker.example.com is valid for 10 days")
            && message.contains("--days"),
        "{message}"
    );
    assert!(tree_diff(&renewed, &files(&pki)).is_empty());
    // Under the lifetime, --within overrides the rule (5 days: not yet).
    let out = ok_at(later, &pki, &["rotate", "--within", "5"]).unwrap();
    assert!(
        out.contains("no selected certificate expires within 5 days"),
        "{out}"
    );
}

#[test]
fn near_the_cas_end_rotate_says_the_ca_is_due_instead_of_re_issuing_short_leaves() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    let init = ["init", "--host", "docker.example.com", "--days", "365"];
    let Some(_) = ok_at(T0, &pki, &[&init[..], &["--ca-days", "400"]].concat()) else {
        return;
    };
    let made = files(&pki);
    // 380 days on: the leaves (365 days) expired, the CA has 20 days left: a new leaf would
    // end with the CA and be due at once. Nothing is re-issued; the CA is named.
    let when = "2027-06-16 12:00:00";
    let output = at(when, &pki, &["rotate"]).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: not re-issued: server")
            && stderr.contains("the CA is due")
            && stderr.contains("dockertls rotate --ca"),
        "{stderr}"
    );
    assert!(tree_diff(&made, &files(&pki)).is_empty());
    // rotate --ca replaces everything; then nothing is due.
    let out = ok_at(when, &pki, &["rotate", "--ca"]).unwrap();
    assert!(out.contains("created a new CA"), "{out}");
    let out = ok_at(when, &pki, &["rotate"]).unwrap();
    assert!(out.starts_with("nothing to rotate"), "{out}");
}

/// The backup folders, by name.
fn backups(pki: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(pki.join("backup"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn backups_are_pruned_to_the_newest_and_nothing_foreign_is_touched() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    let Some(_) = ok_at(T0, &pki, &["init", "--host", "docker.example.com"]) else {
        return;
    };
    // Seven rotations a minute apart: the default keeps the newest five.
    for minute in 1..=7 {
        let when = format!("2026-06-01 12:{minute:02}:00");
        ok_at(&when, &pki, &["rotate", "--all"]).unwrap();
    }
    let stamps: Vec<String> = (3..=7)
        .map(|minute| format!("20260601T12{minute:02}00Z"))
        .collect();
    assert_eq!(backups(&pki), stamps);
    // --keep-backups N keeps N, after the run (its own backup is the newest).
    let out = ok_at(
        "2026-06-01 12:08:00",
        &pki,
        &["rotate", "--all", "--keep-backups", "2"],
    )
    .unwrap();
    assert!(
        out.contains("deleted the old backup") && out.contains("2 backup folders kept"),
        "{out}"
    );
    assert_eq!(backups(&pki), ["20260601T120700Z", "20260601T120800Z"]);

    // Foreign entries: a folder of the user's, a file, and links (one named like a backup)
    // to a folder outside DIR. None is followed, deleted or counted; each is named.
    let outside = work.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("precious"), "keep me").unwrap();
    let backup = pki.join("backup");
    std::fs::create_dir(backup.join("mine")).unwrap();
    std::fs::write(backup.join("mine/notes"), "mine").unwrap();
    std::fs::write(backup.join("README"), "mine").unwrap();
    std::os::unix::fs::symlink(&outside, backup.join("20990101T000000Z")).unwrap();
    std::os::unix::fs::symlink(&outside, backup.join("link")).unwrap();
    let output = at(
        "2026-06-01 12:09:00",
        &pki,
        &["backup", "prune", "--keep", "1"],
    )
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("deleted the old backup")
            && stdout.contains("20260601T120700Z")
            && stdout.contains("1 backup folder kept"),
        "{stdout}"
    );
    for name in ["mine", "README", "20990101T000000Z", "link"] {
        assert!(
            stderr.contains(&format!(
                "backup/{name} is not a backup folder dockertls made"
            )),
            "{name}: {stderr}"
        );
    }
    assert_eq!(
        backups(&pki),
        [
            "20260601T120800Z",
            "20990101T000000Z",
            "README",
            "link",
            "mine"
        ]
    );
    assert_eq!(
        std::fs::read_to_string(outside.join("precious")).unwrap(),
        "keep me"
    );
    assert_eq!(
        std::fs::read_to_string(backup.join("mine/notes")).unwrap(),
        "mine"
    );

    // A bad count is refused with one error line; DIR/backup as a link is refused, not followed.
    let refused = at(T0, &pki, &["backup", "prune", "--keep", "-1"]).unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).starts_with("error: --keep -1: "),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let moved = work.path().join("moved-backup");
    std::fs::rename(&backup, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &backup).unwrap();
    let before = files(&moved);
    let refused = at(T0, &pki, &["backup", "prune", "--keep", "0"]).unwrap();
    let message = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{message}");
    assert!(message.contains("symbolic link"), "{message}");
    assert!(tree_diff(&before, &files(&moved)).is_empty());
}
