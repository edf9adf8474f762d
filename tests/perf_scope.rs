//! Issue 12's speed work keeps its safety: `server add` checks only the folders it reads and
//! writes (the CA and the servers), still refusing a server folder others can write; `rotate`
//! moves the old folder into the backup after its swap, and what it leaves is the old files in
//! the backup and new files in place, each with one name and its mode.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::{assert_one_error, init_ok, ok_in, private_tempdir, run_in, tree, tree_diff};

fn two_servers(pki: &Path) {
    init_ok(
        pki,
        &["--host", "localhost", "--name", "a", "--client", "alice"],
    );
    ok_in(pki, &["server", "add", "b", "--host", "localhost"]);
}

#[test]
fn server_add_refuses_a_server_folder_others_can_write() {
    let tmp = private_tempdir();
    let pki = tmp.path().join("pki");
    two_servers(&pki);
    let b = pki.join("servers/b");
    let mode = std::fs::metadata(&b).unwrap().mode() & 0o7777;
    std::fs::set_permissions(
        &b,
        std::os::unix::fs::PermissionsExt::from_mode(mode | 0o020),
    )
    .unwrap();
    let before = tree(&pki);
    let out = run_in(&pki, &["server", "add", "c", "--host", "localhost"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_one_error(&stderr, "server add with servers/b group-writable");
    assert!(stderr.contains("servers/b"), "{stderr}");
    assert!(stderr.contains("writable by group or others"), "{stderr}");
    let diff = tree_diff(&before, &tree(&pki));
    assert!(diff.is_empty(), "server add changed the PKI:\n{diff}");
}

fn backup_dir(pki: &Path) -> PathBuf {
    let mut stamps: Vec<PathBuf> = std::fs::read_dir(pki.join("backup"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(stamps.len(), 1, "{stamps:?}");
    stamps.pop().unwrap()
}

#[test]
fn rotate_backs_up_the_old_files_with_their_modes_and_one_name_each() {
    let tmp = private_tempdir();
    let pki = tmp.path().join("pki");
    two_servers(&pki);
    let files = [
        ("clients/alice/key.pem", 0o400),
        ("clients/alice/cert.pem", 0o444),
        ("servers/b/server-key.pem", 0o400),
        ("servers/b/daemon.json", 0o644),
        ("servers/b/override.conf", 0o644),
    ];
    let old: Vec<Vec<u8>> = files
        .iter()
        .map(|(f, _)| std::fs::read(pki.join(f)).unwrap())
        .collect();
    ok_in(&pki, &["rotate", "--all"]);
    let backup = backup_dir(&pki);
    for ((file, mode), old) in files.iter().zip(&old) {
        let saved = backup.join(file);
        let live = pki.join(file);
        assert_eq!(&std::fs::read(&saved).unwrap(), old, "{file}: backup");
        let (saved_meta, live_meta) = (
            std::fs::symlink_metadata(&saved).unwrap(),
            std::fs::symlink_metadata(&live).unwrap(),
        );
        assert_eq!(saved_meta.mode() & 0o7777, *mode, "{file}: backup mode");
        assert_eq!(live_meta.mode() & 0o7777, *mode, "{file}: live mode");
        // The old folder is gone: the backup is the old file's only name, and the live file
        // is its own (a later change to one never shows in the other).
        assert_eq!(saved_meta.nlink(), 1, "{file}: backup links");
        assert_eq!(live_meta.nlink(), 1, "{file}: live links");
        if file.contains("key") || file.contains("cert") {
            assert_ne!(&std::fs::read(&live).unwrap(), old, "{file}: not re-issued");
        } else {
            assert_eq!(&std::fs::read(&live).unwrap(), old, "{file}: not kept");
        }
    }
}
