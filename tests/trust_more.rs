//! Trust beyond the PKI folder itself (found by a review after the first hardening round):
//! a link on the way to DIR owned by another user, `--dir LINK/`, folders on the daemon host
//! that others can change, and names install stages under that something else took. Each is
//! refused with exit 2, and nothing is changed.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{dockertls, init_ok, is_root, peers_required, tree};

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

/// One `error:` line, and at most one `hint:` line after it.
fn assert_refused(output: &Output, words: &str) {
    let message = stderr(output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    let lines: Vec<&str> = message.lines().collect();
    assert!(
        lines[0].starts_with("error: ")
            && (lines.len() == 1 || (lines.len() == 2 && lines[1].starts_with("hint: "))),
        "{message}"
    );
    assert!(message.contains(words), "{message:?} lacks {words:?}");
}

fn root_only() -> bool {
    if is_root() {
        return true;
    }
    assert!(
        !peers_required(),
        "these tests chown files: run them as root"
    );
    eprintln!("SKIPPED: these tests chown files, which needs root");
    false
}

/// A work folder outside the shared /tmp (whose sticky bit is part of what is tested).
fn work() -> tempfile::TempDir {
    common::private_tempdir()
}

#[test]
fn a_link_on_the_way_to_dir_must_belong_to_you_or_root() {
    if !root_only() {
        return;
    }
    let work = work();
    let real = work.path().join("real");
    std::fs::create_dir(&real).unwrap();
    init_ok(
        &real.join("pki"),
        &["--host", "localhost", "--client", "alice"],
    );
    // A sticky world-writable folder, as /tmp, holding links to the real folder.
    let shared = work.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let theirs = shared.join("theirs");
    std::os::unix::fs::symlink(&real, &theirs).unwrap();
    std::os::unix::fs::lchown(&theirs, Some(OTHER_UID), None).unwrap();
    let ours = shared.join("ours");
    std::os::unix::fs::symlink(&real, &ours).unwrap();

    let root = host_root(work.path());
    let root = root.to_str().unwrap();
    let before = tree(&real);
    for args in [
        &["client", "list"][..],
        &["client", "add", "bob"],
        &["env", "alice"],
        &["rotate", "--all"],
        &["install", "--dry-run", "--root", root],
    ] {
        let output = run(&theirs.join("pki"), args);
        assert_refused(&output, "is a symbolic link owned by uid 65534");
        assert!(
            stderr(&output).contains(&real.join("pki").display().to_string()),
            "{args:?}: the hint names the real folder: {}",
            stderr(&output)
        );
    }
    assert_eq!(tree(&real), before, "a refusal changed the PKI");
    // The same path through a link of root's own is fine.
    let output = run(&ours.join("pki"), &["client", "list"]);
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn a_trailing_slash_or_dot_does_not_get_a_linked_dir_past_the_link_check() {
    let work = work();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "localhost", "--client", "alice"]);
    let link = work.path().join("link");
    std::os::unix::fs::symlink(&pki, &link).unwrap();
    let before = tree(&pki);
    for spelled in ["", "/", "/.", "//"] {
        let dir = PathBuf::from(format!("{}{spelled}", link.display()));
        for args in [&["client", "list"][..], &["client", "add", "bob"]] {
            let output = run(&dir, args);
            assert_refused(&output, "is a symbolic link");
        }
        let output = run(&dir, &["init", "--host", "localhost", "--force"]);
        assert_refused(&output, "symbolic link");
    }
    assert_eq!(tree(&pki), before);
}

/// A daemon host's root for `install --root` with a minimal docker.service.
fn host_root(work: &Path) -> PathBuf {
    let root = work.join("root");
    let unit = root.join("lib/systemd/system/docker.service");
    std::fs::create_dir_all(unit.parent().unwrap()).unwrap();
    std::fs::write(
        &unit,
        "[Service]\nType=notify\nExecStart=/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock\n",
    )
    .unwrap();
    root
}

fn install(pki: &Path, root: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["install", "--root", root.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(pki, &args)
}

#[test]
fn install_refuses_host_folders_others_can_change() {
    if !root_only() {
        return;
    }
    let work = work();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "localhost", "--client", "alice"]);
    type Setup = fn(&Path);
    let cases: [(&str, Setup, &str); 5] = [
        (
            "the TLS folder 0777",
            |root| {
                let tls = root.join("etc/docker/tls");
                std::fs::create_dir_all(&tls).unwrap();
                std::fs::set_permissions(&tls, std::fs::Permissions::from_mode(0o777)).unwrap();
            },
            "writable",
        ),
        (
            "the TLS folder 0770",
            |root| {
                let tls = root.join("etc/docker/tls");
                std::fs::create_dir_all(&tls).unwrap();
                std::fs::set_permissions(&tls, std::fs::Permissions::from_mode(0o770)).unwrap();
            },
            "writable",
        ),
        (
            "/etc/docker owned by another user",
            |root| {
                let docker = root.join("etc/docker");
                std::fs::create_dir_all(&docker).unwrap();
                std::os::unix::fs::lchown(&docker, Some(OTHER_UID), None).unwrap();
            },
            "owned by uid 65534",
        ),
        (
            "/etc writable by others (the TLS folder does not exist yet)",
            |root| {
                let etc = root.join("etc");
                std::fs::create_dir_all(&etc).unwrap();
                std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(0o777)).unwrap();
            },
            "writable",
        ),
        (
            "the drop-in folder owned by another user",
            |root| {
                let dropins = root.join("etc/systemd/system/docker.service.d");
                std::fs::create_dir_all(&dropins).unwrap();
                std::os::unix::fs::lchown(&dropins, Some(OTHER_UID), None).unwrap();
            },
            "owned by uid 65534",
        ),
    ];
    for (index, (what, setup, words)) in cases.iter().enumerate() {
        let case = work.path().join(format!("case-{index}"));
        std::fs::create_dir(&case).unwrap();
        let root = host_root(&case);
        setup(&root);
        let before = tree(&root);
        for extra in [&[][..], &["--dry-run"]] {
            let output = install(&pki, &root, extra);
            assert_refused(&output, words);
            assert!(
                stderr(&output).contains("install puts no key"),
                "{what}: {}",
                stderr(&output)
            );
            assert_eq!(
                tree(&root),
                before,
                "{what} {extra:?}: a refusal changed files"
            );
        }
    }
    // The same host with folders as a package makes them: installed.
    let case = work.path().join("fine");
    std::fs::create_dir(&case).unwrap();
    let root = host_root(&case);
    std::fs::create_dir_all(root.join("etc/docker")).unwrap();
    let output = install(&pki, &root, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn a_refused_install_leaves_what_holds_its_temporary_names() {
    if !root_only() {
        return;
    }
    let work = work();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "localhost", "--client", "alice"]);
    let root = host_root(work.path());
    let tls = root.join("etc/docker/tls");
    std::fs::create_dir_all(&tls).unwrap();
    std::fs::set_permissions(&tls, std::fs::Permissions::from_mode(0o700)).unwrap();
    let fifo = tls.join(".dockertls-install-server-key.pem.new");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    std::fs::write(
        root.join("etc/docker/.dockertls-install-daemon.json.new"),
        "hi\n",
    )
    .unwrap();
    let link = tls.join(".dockertls-install-ca.pem.new");
    std::os::unix::fs::symlink("/nonexistent", &link).unwrap();
    let before = tree(&root);
    let output = install(&pki, &root, &[]);
    assert_refused(&output, "is in the way of install's temporary file");
    assert_eq!(tree(&root), before, "a refused install changed files");
    assert!(std::fs::symlink_metadata(&link).is_ok());
}
