//! A PKI folder that someone else can change is never trusted: every command that reads or
//! writes the PKI refuses it (verify reports it), naming the folder and the exact fix, and
//! changes nothing. Links inside the PKI are refused, never followed, and a lock file that is
//! not a plain file is refused at once instead of hanging the command.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::server_folder;
use common::{dockertls, files, init_ok, is_root, tree};

/// The uid of `nobody`: a user other than the caller.
const OTHER_UID: u32 = 65534;

fn run(dir: &Path, args: &[&str]) -> Output {
    dockertls()
        .env_remove("SUDO_UID")
        .arg("--dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), None).unwrap();
}

/// A small PKI (client alice) at `dir`.
fn pki(dir: &Path) {
    init_ok(
        dir,
        &[
            "--host",
            "docker.example.com",
            "--client",
            "alice",
            "--key-type",
            "ed25519",
        ],
    );
}

/// A daemon host's root for `install --root`: Docker's unit and nothing else.
fn install_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let unit = root.path().join("lib/systemd/system/docker.service");
    std::fs::create_dir_all(unit.parent().unwrap()).unwrap();
    std::fs::write(
        unit,
        "[Unit]\nDescription=Docker Application Container Engine\n\n[Service]\nType=notify\n\
         ExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock\n\n\
         [Install]\nWantedBy=multi-user.target\n",
    )
    .unwrap();
    root
}

/// Every command that reads or writes the PKI, with the folder `install` may write to.
fn commands(root: &Path) -> Vec<Vec<String>> {
    let root = root.display().to_string();
    [
        vec!["client", "add", "bob"],
        vec!["client", "list"],
        vec!["env", "alice"],
        vec!["rotate", "--all"],
        vec!["install", "--root", &root],
        vec!["client", "remove", "alice"],
        vec!["init", "--host", "docker.example.com", "--force"],
    ]
    .into_iter()
    .map(|args| args.into_iter().map(String::from).collect())
    .collect()
}

/// Each command is refused with exit 2, one `error:` line naming `culprit` and a `hint:`
/// line with `fix`; nothing changes in the PKI or the install root. verify reports a failed
/// `permissions` check naming `culprit` (or a warning for a foreign owner) when
/// `verify_status` is given.
fn assert_all_refused(dir: &Path, culprit: &Path, fix: &str, verify_status: Option<&str>) {
    assert_refused_by(dir, culprit, fix, verify_status, |_| true);
}

/// As `assert_all_refused`, for the commands `which` picks.
fn assert_refused_by(
    dir: &Path,
    culprit: &Path,
    fix: &str,
    verify_status: Option<&str>,
    which: impl Fn(&[String]) -> bool,
) {
    let root = install_root();
    let installed = tree(root.path());
    for args in commands(root.path()).into_iter().filter(|a| which(a)) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let before = files(dir);
        let output = run(dir, &args);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{args:?}: {err}");
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(&culprit.display().to_string()),
            "{args:?}: {err}"
        );
        assert!(
            lines[1].starts_with("hint: ") && lines[1].contains(fix),
            "{args:?}: {err}"
        );
        assert_eq!(files(dir), before, "{args:?} changed the PKI");
        assert_eq!(
            tree(root.path()),
            installed,
            "{args:?} wrote to the install root"
        );
    }
    let Some(verify_status) = verify_status else {
        return;
    };
    let output = run(dir, &["verify", "--format", "json", "--warn-days", "0"]);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let flagged = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["checks"].as_array().unwrap().iter())
        .any(|c| {
            c["id"] == "permissions"
                && c["status"] == verify_status
                && c["message"]
                    .as_str()
                    .unwrap()
                    .contains(&culprit.display().to_string())
        });
    assert!(
        flagged,
        "verify did not report {}: {report:#}",
        culprit.display()
    );
}

fn root_only() -> bool {
    if !is_root() {
        eprintln!("SKIPPED: needs root (chown to another uid)");
        return false;
    }
    true
}

#[test]
fn a_pki_folder_writable_by_others_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("pki");
    pki(&dir);
    chmod(&dir, 0o777);
    assert_all_refused(
        &dir,
        &dir,
        &format!("chmod go-w {}", dir.display()),
        Some("fail"),
    );
    chmod(&dir, 0o770);
    assert_all_refused(
        &dir,
        &dir,
        &format!("chmod go-w {}", dir.display()),
        Some("fail"),
    );
}

#[test]
fn a_pki_folder_owned_by_another_user_is_refused() {
    if !root_only() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("pki");
    pki(&dir);
    chown(&dir, OTHER_UID);
    assert_all_refused(
        &dir,
        &dir,
        &format!("chown 0 {}", dir.display()),
        Some("warn"),
    );
    // Under sudo, the folder of the user who ran sudo is the operator's own: trusted.
    let list = |sudo_uid: &str| {
        dockertls()
            .env("SUDO_UID", sudo_uid)
            .arg("--dir")
            .arg(&dir)
            .args(["client", "list"])
            .output()
            .unwrap()
    };
    let output = list(&OTHER_UID.to_string());
    assert!(output.status.success(), "{}", stderr(&output));
    let output = list("1234");
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
}

/// The reported attack: another user replaced server/ with their own CA's files; install
/// must not put them on the daemon host.
#[test]
fn a_folder_inside_the_pki_owned_by_another_user_is_refused() {
    if !root_only() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("pki");
    pki(&dir);
    let server = server_folder(&dir);
    chown(&server, OTHER_UID);
    assert_all_refused(
        &dir,
        &server,
        &format!("chown 0 {}", server.display()),
        Some("warn"),
    );
    chown(&server, 0);
    // A file of another user in a folder of ours: its owner can rewrite it in place. Every
    // command that reads it refuses (the folders are checked by every command; a file when it
    // is read: the check of a PKI of 1,000 clients stays one stat a folder).
    let cert = server.join("server-cert.pem");
    chown(&cert, OTHER_UID);
    let reads_the_server =
        |args: &[String]| ["env", "rotate", "install"].contains(&args[0].as_str());
    assert_refused_by(
        &dir,
        &cert,
        &format!("chown 0 {}", cert.display()),
        None,
        reads_the_server,
    );
    chown(&cert, 0);
    let alice = dir.join("clients/alice");
    chmod(&alice, 0o757);
    assert_all_refused(
        &dir,
        &alice,
        &format!("chmod go-w {}", alice.display()),
        Some("fail"),
    );
}

#[test]
fn a_group_writable_parent_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let shared = work.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    let dir = shared.join("pki");
    pki(&dir);
    chmod(&shared, 0o775);
    assert_all_refused(
        &dir,
        &shared,
        &format!("chmod go-w {}", shared.display()),
        Some("fail"),
    );
}

/// A parent writable by all but sticky and root-owned, as /tmp: no one else can rename the
/// PKI folder away, so every command works there.
#[test]
fn a_sticky_root_owned_parent_like_tmp_is_accepted() {
    if !root_only() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let tmp = work.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    chmod(&tmp, 0o1777);
    let dir = tmp.join("pki");
    pki(&dir);
    let root = install_root();
    for args in commands(root.path()) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = run(&dir, &args);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    }
    let output = run(&dir, &["verify", "--warn-days", "0"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // Without the sticky bit the same parent lets anyone rename the PKI away.
    chmod(&tmp, 0o777);
    assert_all_refused(
        &dir,
        &tmp,
        &format!("chmod go-w {}", tmp.display()),
        Some("fail"),
    );
}

#[test]
fn init_refuses_an_existing_folder_others_can_change() {
    let work = tempfile::tempdir().unwrap();
    let open = work.path().join("open");
    std::fs::create_dir(&open).unwrap();
    chmod(&open, 0o777);
    let output = common::init(&open, &["--host", "docker.example.com"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains(&format!("chmod go-w {}", open.display())));
    assert!(tree(&open).is_empty(), "init wrote into {}", open.display());
    assert_eq!(
        common::mode(&open),
        0o777,
        "init changed the mode it refused"
    );
    if is_root() {
        let theirs = work.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        chmod(&theirs, 0o700);
        chown(&theirs, OTHER_UID);
        let output = common::init(&theirs, &["--host", "docker.example.com"]);
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        assert!(
            stderr(&output).contains("is owned by uid 65534"),
            "{}",
            stderr(&output)
        );
        assert!(tree(&theirs).is_empty());
        // A new folder below a group-writable parent: refused before anything is created.
        let shared = work.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        chmod(&shared, 0o770);
        let output = common::init(&shared.join("pki"), &["--host", "docker.example.com"]);
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        assert!(tree(&shared).is_empty());
    }
}

/// What an attacker with a link inside DIR would have the next command write or read.
fn assert_link_refused(dir: &Path, link: &Path, args: &[&str]) {
    let elsewhere = tempfile::tempdir().unwrap();
    let _ = std::fs::remove_dir_all(link);
    std::os::unix::fs::symlink(elsewhere.path(), link).unwrap();
    let before = files(dir);
    let output = run(dir, args);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {err}");
    assert!(
        err.starts_with("error: ") && err.contains(&link.display().to_string()),
        "{args:?}: {err}"
    );
    assert!(err.contains("symbolic link"), "{args:?}: {err}");
    assert!(
        tree(elsewhere.path()).is_empty(),
        "{args:?} wrote through the link"
    );
    assert_eq!(files(dir), before, "{args:?} changed the PKI");
    std::fs::remove_file(link).unwrap();
}

#[test]
fn a_backup_link_is_refused_by_every_command_that_backs_up() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("pki");
    pki(&dir);
    let backup = dir.join("backup");
    for args in [
        vec!["rotate", "--all"],
        vec!["rotate", "--ca"],
        vec!["client", "remove", "alice"],
        vec!["init", "--host", "docker.example.com", "--force"],
    ] {
        assert_link_refused(&dir, &backup, &args);
    }
}

#[test]
fn a_link_in_place_of_a_pki_folder_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("pki");
    pki(&dir);
    let alice = dir.join("clients/alice");
    let saved = work.path().join("alice");
    std::fs::rename(&alice, &saved).unwrap();
    for args in [
        vec!["rotate", "--client", "alice"],
        vec!["client", "remove", "alice"],
        vec!["client", "add", "bob"],
        vec!["env", "alice"],
    ] {
        assert_link_refused(&dir, &alice, &args);
    }
    std::fs::rename(&saved, &alice).unwrap();
    let server = server_folder(&dir);
    let saved = work.path().join("server");
    std::fs::rename(&server, &saved).unwrap();
    for args in [vec!["rotate", "--server"], vec!["env", "alice"]] {
        assert_link_refused(&dir, &server, &args);
    }
}

/// A lock file that is a FIFO (or a link, or a folder) is refused at once with a clear
/// message: opening a FIFO without O_NONBLOCK would hang the command forever.
#[test]
fn a_lock_file_that_is_not_a_plain_file_is_refused_at_once() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("pki");
    pki(&dir);
    let lock = dir.join(".dockertls.lock");
    let _ = std::fs::remove_file(&lock);
    let status = Command::new("mkfifo").arg(&lock).status().unwrap();
    assert!(status.success());
    for args in [
        vec!["client", "add", "bob"],
        vec!["rotate", "--all"],
        vec!["client", "remove", "alice"],
        vec!["init", "--host", "docker.example.com", "--force"],
    ] {
        let before = files(&dir);
        let started = Instant::now();
        let output = run_with_deadline(&dir, &args, Duration::from_secs(20));
        let err = stderr(&output);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{args:?} hung on the FIFO"
        );
        assert_eq!(output.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("is a FIFO") && err.contains(&lock.display().to_string()),
            "{args:?}: {err}"
        );
        assert_eq!(files(&dir), before);
    }
    std::fs::remove_file(&lock).unwrap();
    let elsewhere = tempfile::NamedTempFile::new().unwrap();
    chmod(elsewhere.path(), 0o644);
    std::os::unix::fs::symlink(elsewhere.path(), &lock).unwrap();
    let output = run(&dir, &["rotate", "--all"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("a symbolic link"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        common::mode(elsewhere.path()),
        0o644,
        "the link's target was touched"
    );
}

/// Runs a command, killing it after `deadline` (a hang must fail the test, not stall it).
fn run_with_deadline(dir: &Path, args: &[&str], deadline: Duration) -> Output {
    let mut child = dockertls()
        .arg("--dir")
        .arg(dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// probe --client reads the client's key and CA from the PKI: a folder others can change
/// could hand it their CA, so it is refused too (exit 3: nothing was checked).
#[test]
fn probe_refuses_a_client_from_a_pki_others_can_change() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("pki");
    pki(&dir);
    chmod(&dir, 0o777);
    let output = run(&dir, &["probe", "tcp://127.0.0.1:9", "--client", "alice"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{err}");
    assert!(
        err.starts_with("error: ")
            && err.contains(&format!(
                "hint: check what it holds, then run: chmod go-w {}",
                dir.display()
            )),
        "{err}"
    );
}

/// A path to DIR through a folder of another user (here via a link inside it) is refused:
/// that user can point the link at their own PKI. The resolved path is checked too.
#[test]
fn a_path_through_another_users_folder_is_refused() {
    if !root_only() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let mine = work.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    pki(&mine.join("pki"));
    let theirs = work.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::symlink(&mine, theirs.join("link")).unwrap();
    chown(&theirs, OTHER_UID);
    let through = theirs.join("link/pki");
    let output = run(&through, &["client", "list"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!("{} (a parent of", theirs.display())),
        "{}",
        stderr(&output)
    );
    // The other way round: a link of ours leading into their folder.
    chown(&theirs, 0);
    std::fs::remove_file(theirs.join("link")).unwrap();
    let hidden = work.path().join("hidden");
    std::fs::create_dir(&hidden).unwrap();
    std::fs::rename(mine.join("pki"), hidden.join("pki")).unwrap();
    chown(&hidden, OTHER_UID);
    std::os::unix::fs::symlink(&hidden, mine.join("link")).unwrap();
    let output = run(&mine.join("link/pki"), &["client", "list"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&hidden.display().to_string()),
        "{}",
        stderr(&output)
    );
}
