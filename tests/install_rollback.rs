//! Issue 14 item 7: `install --rollback` puts back what the last install replaced (TLS files,
//! daemon.json, the drop-in) and removes what it created, with install's journal: all or
//! nothing, a killed rollback finished or undone by the next run. Over temporary --root trees.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{
    assert_one_error, dockertls, find_tool, init_ok, is_root, peers_required, streams, tree,
    tree_diff,
};

const DEBIAN_UNIT: &str = "[Unit]\nDescription=Docker Application Container Engine\n\n[Service]\nType=notify\nEnvironmentFile=-/etc/default/docker\n\
ExecStart=/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock $DOCKER_OPTS\nExecReload=/bin/kill -s HUP $MAINPID\n\n[Install]\nWantedBy=multi-user.target\n";
const DAEMON_JSON: &str = "{\n  \"log-driver\": \"journald\",\n  \"live-restore\": true\n}\n";

type Tree = Vec<(String, u32, Vec<u8>)>;

/// The record install keeps of its last run (dockertls's own, beside the journal).
const RECORD: &str = "etc/docker/.dockertls-last-install.json";

/// The tree without the record.
fn host_files(root: &Path) -> Tree {
    without_record(tree(root))
}

fn without_record(tree: Tree) -> Tree {
    tree.into_iter().filter(|(p, _, _)| p != RECORD).collect()
}

/// A host that had a daemon.json, after one install (`first`), then after a second one from
/// another PKI (in `root`).
struct Fixture {
    work: tempfile::TempDir,
    root: PathBuf,
    first: Tree,
}

fn install(pki: Option<&Path>, root: &Path, extra: &[&str]) -> Output {
    let mut command = dockertls();
    if let Some(pki) = pki {
        command.arg("--dir").arg(pki);
    }
    command
        .args(["install", "--root"])
        .arg(root)
        .args(extra)
        .output()
        .unwrap()
}

fn ok(output: Output, what: &str) -> String {
    assert!(output.status.success(), "{what}: {}", streams(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn fixture() -> Option<Fixture> {
    if !is_root() {
        assert!(
            !peers_required(),
            "install sets root ownership: run the tests as root"
        );
        eprintln!("SKIPPED: install sets root ownership, which needs root");
        return None;
    }
    let work = common::private_tempdir();
    let (one, two) = (work.path().join("pki1"), work.path().join("pki2"));
    init_ok(&one, &["--host", "localhost", "--listen", "0.0.0.0:2377"]);
    init_ok(&two, &["--host", "localhost", "--client", "bob"]);
    let root = work.path().join("root");
    for (path, text) in [
        ("lib/systemd/system/docker.service", DEBIAN_UNIT),
        ("etc/docker/daemon.json", DAEMON_JSON),
    ] {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    ok(install(Some(&one), &root, &[]), "first install");
    let first = tree(&root);
    ok(install(Some(&two), &root, &["--force"]), "second install");
    assert!(!tree_diff(&first, &tree(&root)).is_empty());
    Some(Fixture { work, root, first })
}

#[test]
fn rollback_puts_back_the_previous_install_byte_for_byte() {
    let Some(f) = fixture() else {
        return;
    };
    let report = ok(install(None, &f.root, &["--rollback"]), "rollback");
    assert!(
        report.contains("put back /etc/docker/daemon.json from daemon.json."),
        "{report}"
    );
    let diff = tree_diff(&without_record(f.first.clone()), &host_files(&f.root));
    assert!(diff.is_empty(), "not the first install's state:\n{diff}");
    let record = std::fs::read_to_string(f.root.join(RECORD)).unwrap();
    assert!(record.contains("\"rolled_back\""), "{record}");

    // One level: again, nothing to roll back (one line, exit 2, nothing changed).
    let before = tree(&f.root);
    let output = install(None, &f.root, &["--rollback"]);
    assert_eq!(output.status.code(), Some(2), "{}", streams(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: nothing to roll back: the last install was rolled back already"),
        "{stderr}"
    );
    assert_eq!(tree_diff(&before, &tree(&f.root)), "");
}

#[test]
fn rollback_of_a_first_install_removes_what_it_created() {
    let Some(f) = fixture() else {
        return;
    };
    let host = f.work.path().join("host");
    std::fs::create_dir(&host).unwrap();
    let unit = host.join("lib/systemd/system/docker.service");
    std::fs::create_dir_all(unit.parent().unwrap()).unwrap();
    std::fs::write(&unit, DEBIAN_UNIT).unwrap();
    let pristine = tree(&host);
    ok(
        install(Some(&f.work.path().join("pki2")), &host, &[]),
        "install",
    );
    let report = ok(install(None, &host, &["--rollback"]), "rollback");
    assert!(
        report.contains("removed /etc/docker/daemon.json (the last install created it)"),
        "{report}"
    );
    // Everything it made is gone but /etc/docker, which holds the journal's lock and the record.
    let left: Tree = host_files(&host)
        .into_iter()
        .filter(|(p, _, _)| p != "etc" && p != "etc/docker")
        .collect();
    assert_eq!(tree_diff(&pristine, &left), "");
}

#[test]
fn refusals_are_one_line_and_change_nothing() {
    let Some(f) = fixture() else {
        return;
    };
    // A host no install touched: not even /etc/docker is made.
    let empty = f.work.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let output = install(None, &empty, &["--rollback"]);
    assert_eq!(output.status.code(), Some(2), "{}", streams(&output));
    assert_one_error(
        &String::from_utf8_lossy(&output.stderr),
        "nothing installed",
    );
    assert_eq!(tree(&empty), Vec::new());

    let refused = |extra: &[&str], needle: &str, what: &str| {
        let before = tree(&f.root);
        let output = install(None, &f.root, extra);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{what}: {}",
            streams(&output)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_one_error(&stderr, what);
        assert!(stderr.contains(needle), "{what}: {stderr}");
        assert_eq!(tree_diff(&before, &tree(&f.root)), "", "{what}");
    };
    refused(&["--rollback", "--dry-run"], "--dry-run", "with --dry-run");
    refused(&["--rollback", "--force"], "--force", "with --force");

    // A file edited since the install is not rolled back over.
    let daemon_json = f.root.join("etc/docker/daemon.json");
    let edited = std::fs::read_to_string(&daemon_json)
        .unwrap()
        .replace("journald", "local");
    std::fs::write(&daemon_json, edited).unwrap();
    refused(
        &["--rollback"],
        "daemon.json changed since the last install",
        "edited",
    );

    // A backup that is gone.
    let edited = std::fs::read_to_string(&daemon_json)
        .unwrap()
        .replace("local", "journald");
    std::fs::write(&daemon_json, edited).unwrap();
    let tls = f.root.join("etc/docker/tls");
    let backup = std::fs::read_dir(&tls)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.to_string_lossy().contains("server-key.pem.")
                && p.extension().is_some_and(|e| e == "bak")
        })
        .expect("a backup of the key");
    std::fs::remove_file(&backup).unwrap();
    refused(&["--rollback"], "is gone", "backup gone");
}

fn copy_tree(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_killed_rollback_is_finished_or_undone_by_the_next_run() {
    let Some(f) = fixture() else {
        return;
    };
    let Some(strace) = find_tool("strace", "crash tests inject SIGKILL with strace") else {
        return;
    };
    let mut killed_runs = 0;
    for syscall in ["linkat", "renameat", "renameat2", "unlinkat", "fsync"] {
        for n in 1..300 {
            let what = format!("SIGKILL at {syscall} #{n}");
            let root = f.work.path().join("killed");
            let _ = std::fs::remove_dir_all(&root);
            copy_tree(&f.root, &root);
            let output = Command::new(&strace)
                .args(["-f", "-qq", "-o", "/dev/null", "-e"])
                .arg(format!("inject={syscall}:signal=KILL:when={n}"))
                .arg(env!("CARGO_BIN_EXE_dockertls"))
                .args(["install", "--rollback", "--root"])
                .arg(&root)
                .env_remove("DOCKERTLS_DIR")
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            if stderr.lines().any(|l| l.starts_with("strace:")) {
                assert!(!peers_required(), "strace cannot trace here: {stderr}");
                eprintln!("SKIPPED: strace cannot trace here");
                return;
            }
            let killed = stderr.contains("SIGKILL") || output.status.code().is_none();
            for (path, mode, contents) in tree(&root) {
                if path.contains("key") {
                    assert_eq!(mode & 0o077, 0, "{what}: {path} is mode {mode:o}");
                }
                if path == "etc/docker/daemon.json" {
                    let value: serde_json::Value = serde_json::from_slice(&contents).unwrap();
                    assert!(value.is_object(), "{what}");
                }
            }
            let first = without_record(f.first.clone());
            if !killed {
                assert!(output.status.success(), "{what}: {stderr}");
                assert_eq!(tree_diff(&first, &host_files(&root)), "", "{what}");
                break;
            }
            killed_runs += 1;
            // The next run finishes or undoes it, then rolls back only if it was undone; killed
            // after the switch was complete, the rollback is done and it says so.
            let again = install(None, &root, &["--rollback"]);
            let message = String::from_utf8_lossy(&again.stderr);
            assert!(
                again.status.success()
                    || (again.status.code() == Some(2) && message.contains("rolled back already")),
                "{what}: the next run: {}",
                streams(&again)
            );
            let diff = tree_diff(&first, &host_files(&root));
            assert!(diff.is_empty(), "{what}: after the next run:\n{diff}");
            let leftovers: Vec<String> = tree(&root)
                .into_iter()
                .map(|(p, _, _)| p)
                .filter(|p| p.contains(".dockertls-install"))
                .collect();
            assert!(leftovers.is_empty(), "{what}: left {leftovers:?}");
        }
    }
    assert!(
        killed_runs > 0,
        "no run was killed: the sweep tested nothing"
    );
    eprintln!("{killed_runs} rollbacks killed mid-way, each finished or undone by the next run");
}

#[test]
fn a_mode_only_change_is_rolled_back_to_the_previous_mode() {
    let Some(f) = fixture() else {
        return;
    };
    // The second install left daemon.json's contents alone but must fix a mode set by hand.
    ok(
        install(None, &f.root, &["--rollback"]),
        "rollback to the first install",
    );
    let daemon_json = f.root.join("etc/docker/daemon.json");
    std::fs::set_permissions(&daemon_json, std::fs::Permissions::from_mode(0o600)).unwrap();
    let before = host_files(&f.root);
    let report = ok(
        install(Some(&f.work.path().join("pki1")), &f.root, &[]),
        "again",
    );
    assert!(
        report.contains("updated /etc/docker/daemon.json (0644"),
        "{report}"
    );
    let report = ok(
        install(None, &f.root, &["--rollback"]),
        "rollback of the mode",
    );
    assert!(
        report.contains("put back mode 0600 of /etc/docker/daemon.json"),
        "{report}"
    );
    assert_eq!(tree_diff(&before, &host_files(&f.root)), "");
}
