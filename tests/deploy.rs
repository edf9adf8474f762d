//! `dockertls deploy` against real OpenSSH servers on 127.0.0.1 (tests/common/sshd.rs), with
//! install run there under `--remote-root PREFIX`, and real dockerds started from what it
//! installed by a `--restart-command` (no systemd runs here).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::sshd::Sshd;
use common::*;

const DEBIAN_UNIT: &str = "[Unit]\nDescription=Docker Application Container Engine\n\n[Service]\nType=notify\n\
ExecStart=/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock\n\n[Install]\nWantedBy=multi-user.target\n";

/// Starts a dockerd from the daemon.json installed under PREFIX ($1), its TLS paths and unix
/// socket moved under PREFIX, its state in $2; returns once that dockerd says it serves the TLS
/// port (a connect alone could reach another process that took the port), as systemd's
/// Type=notify waits for dockerd's readiness. A dockerd started by an earlier run (its pid in
/// PREFIX/docker.pid) is stopped first.
const RESTART_SCRIPT: &str = r#"#!/bin/bash
set -eu
# The prefix and the daemon's state folder: as arguments, or from the ssh session (sshd's SetEnv,
# one pair per host, for deploy --all).
P=${1:-$DT_PREFIX} S=${2:-$DT_STATE}
if [ -f "$P/docker.pid" ]; then
  pid=$(cat "$P/docker.pid"); kill "$pid" 2>/dev/null || true
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
fi
sed -e "s#\"/etc/docker/tls/#\"$P/etc/docker/tls/#g" -e "s#unix:///var/run/docker.sock#unix://$S/docker.sock#" \
  "$P/etc/docker/daemon.json" > "$S/daemon.json"
port=$(sed -n 's#.*tcp://127.0.0.1:\([0-9]*\).*#\1#p' "$S/daemon.json")
setsid dockerd --config-file "$S/daemon.json" --data-root "$S/data" --exec-root "$S/exec" \
  --pidfile "$P/docker.pid" --iptables=false --bridge=none --storage-driver=vfs \
  </dev/null >"$S/dockerd.log" 2>&1 &
dockerd=$!
for _ in $(seq 1200); do
  if grep -q "API listen on 127.0.0.1:$port\"" "$S/dockerd.log" \
    && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then exit 0; fi
  if ! kill -0 "$dockerd" 2>/dev/null; then
    echo "dockerd exited:" >&2; tail -n 5 "$S/dockerd.log" >&2; exit 1
  fi
  sleep 0.1
done
echo "dockerd did not listen on $port within 120 s" >&2; exit 1
"#;

/// A daemon host under a prefix: Debian's docker.service, and (once restarted) a dockerd,
/// stopped by its own pid when dropped.
struct HostRoot {
    prefix: PathBuf,
    state: tempfile::TempDir,
    script: PathBuf,
}

impl HostRoot {
    fn new(work: &Path, name: &str) -> HostRoot {
        let prefix = work.join(name);
        let unit = prefix.join("lib/systemd/system/docker.service");
        std::fs::create_dir_all(unit.parent().unwrap()).unwrap();
        std::fs::write(&unit, DEBIAN_UNIT).unwrap();
        let script = work.join("restart-dockerd");
        write_program(&script, RESTART_SCRIPT);
        // Short: dockerd's sockets live under it.
        let state = tempfile::Builder::new().prefix("dt-").tempdir().unwrap();
        HostRoot {
            prefix,
            state,
            script,
        }
    }

    fn prefix(&self) -> &str {
        self.prefix.to_str().unwrap()
    }

    /// `--restart --restart-command 'SCRIPT PREFIX STATE'`.
    fn restart_args(&self) -> Vec<String> {
        vec![
            "--restart".into(),
            "--restart-command".into(),
            shell_words::join([
                self.script.to_str().unwrap(),
                self.prefix(),
                self.state.path().to_str().unwrap(),
            ]),
        ]
    }

    /// sshd_config lines that give this host's prefix and state folder to the restart script.
    fn set_env(&self) -> String {
        format!(
            "SetEnv DT_PREFIX={} DT_STATE={}",
            self.prefix(),
            self.state.path().display()
        )
    }

    fn dockerd_log(&self) -> String {
        std::fs::read_to_string(self.state.path().join("dockerd.log")).unwrap_or_default()
    }
}

impl Drop for HostRoot {
    fn drop(&mut self) {
        let Ok(pid) = std::fs::read_to_string(self.prefix.join("docker.pid")) else {
            return;
        };
        let pid = pid.trim().to_string();
        let _ = Command::new("kill").arg(&pid).status();
        for _ in 0..300 {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = Command::new("kill").args(["-9", &pid]).status();
    }
}

/// A PKI (one server, client alice) whose daemon listens on 127.0.0.1:`port`.
fn pki(work: &Path, port: u16) -> PathBuf {
    let dir = work.join("pki");
    let listen = format!("127.0.0.1:{port}");
    init_ok(
        &dir,
        &[
            "--host",
            "docker1.test",
            "--client",
            "alice",
            "--listen",
            &listen,
        ],
    );
    dir
}

/// Runs `dockertls --dir DIR deploy ARGS... <sshd's ssh options>`.
fn deploy(dir: &Path, sshd: &Sshd, args: &[&str]) -> Output {
    dockertls()
        .arg("--dir")
        .arg(dir)
        .arg("deploy")
        .args(sshd.ssh_args())
        .args(args)
        .output()
        .expect("run dockertls deploy")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn deploy_installs_restarts_and_a_client_folder_talks_to_the_daemon() {
    let work0 = private_tempdir();
    let tmp = work0.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let Some(sshd) = Sshd::start_with(&format!("SetEnv TMPDIR={}", tmp.display())) else {
        return;
    };
    let Some(docker) = find_tool("docker", "install docker.io for the docker CLI") else {
        return;
    };
    if find_tool("dockerd", "install docker.io to run the real-dockerd tests").is_none() {
        return;
    }
    let work = private_tempdir();
    let port = free_port();
    let dir = pki(work.path(), port);
    let host = HostRoot::new(work.path(), "host");
    let target = sshd.target("root");
    let mut args = vec!["docker1.test", &target, "--remote-root", host.prefix()];
    let restart = host.restart_args();
    args.extend(restart.iter().map(String::as_str));
    // A fresh host: live-restore is off, so the restart needs --force.
    args.push("--force");
    let out = deploy(&dir, &sshd, &args);
    assert!(
        out.status.success(),
        "{}\n{}",
        streams(&out),
        host.dockerd_log()
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("probe of tcp://127.0.0.1:{port} as alice: ok")),
        "{stdout}"
    );
    assert!(
        stdout.contains("dockertls"),
        "the binary was sent: {stdout}"
    );
    // The look, the sending with install, and the restart share one SSH connection: one
    // authentication (one touch of a hardware key), and the connection is ended after.
    let log = || std::fs::read_to_string(sshd.path("sshd.log")).unwrap();
    assert_eq!(log().matches("Accepted publickey").count(), 1, "{}", log());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !log().contains("Disconnected from") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        log().contains("Disconnected from"),
        "deploy left its SSH connection open: {}",
        log()
    );
    assert!(
        stdout.contains("ran "),
        "install ran the restart command: {stdout}"
    );
    assert!(
        !stdout.contains("no client folder"),
        "install probed on the host: {stdout}"
    );
    let installed = host.prefix.join("etc/docker/tls/server-key.pem");
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(dir.join("servers/docker1.test/server-key.pem")).unwrap()
    );
    assert_eq!(mode(&installed), 0o400);
    let version = docker_version(
        &docker,
        &format!("tcp://127.0.0.1:{port}"),
        &dir.join("clients/alice"),
    );
    assert!(version.status.success(), "{}", text(&version.stderr));
    // Nothing of the remote temporary folder is left behind (the session's TMPDIR, a
    // private folder, is where the deploy script made it).
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "left in the host's TMPDIR: {left:?}");
}

#[test]
fn files_already_current_on_the_host_are_not_sent_again() {
    let Some(sshd) = Sshd::start() else { return };
    let work = private_tempdir();
    let dir = pki(work.path(), free_port());
    let host = HostRoot::new(work.path(), "host");
    let target = sshd.target("root");
    let args = [
        "docker1.test",
        target.as_str(),
        "--remote-root",
        host.prefix(),
    ];
    let first = deploy(&dir, &sshd, &args);
    assert!(first.status.success(), "{}", streams(&first));
    assert!(
        text(&first.stdout).contains("server/server-key.pem"),
        "{}",
        streams(&first)
    );
    let before = tree(&host.prefix);
    let again = deploy(&dir, &sshd, &args);
    assert!(again.status.success(), "{}", streams(&again));
    let stdout = text(&again.stdout);
    assert!(stdout.contains("already current"), "{stdout}");
    assert!(
        stdout.contains("not sent: ca.pem, server-cert.pem, server-key.pem"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("server/server-key.pem"),
        "the key went again: {stdout}"
    );
    assert_same_tree(
        &before,
        &tree(&host.prefix),
        "a second deploy of the same files",
    );
}

/// Runs a deploy that must fail with one clear line naming the host, a non-zero exit and
/// the host's tree (and the PKI) unchanged; returns the error line.
fn fails_unchanged(dir: &Path, sshd: &Sshd, host: &HostRoot, args: &[&str], code: i32) -> String {
    let host_before = tree(&host.prefix);
    let pki_before = files(dir);
    let out = deploy(dir, sshd, args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{}", streams(&out));
    assert_one_error(&stderr, &format!("deploy {args:?}"));
    assert_same_tree(
        &host_before,
        &tree(&host.prefix),
        "the host after a failed deploy",
    );
    assert_same_tree(&pki_before, &files(dir), "the PKI after a failed deploy");
    eprintln!("{stderr}");
    stderr.lines().next().unwrap().to_string()
}

#[test]
fn nothing_listening_and_a_changed_host_key_change_nothing() {
    let Some(mut sshd) = Sshd::start() else {
        return;
    };
    let work = private_tempdir();
    let dir = pki(work.path(), free_port());
    let host = HostRoot::new(work.path(), "host");
    let target = sshd.target("root");
    let args = [
        "docker1.test",
        target.as_str(),
        "--remote-root",
        host.prefix(),
    ];

    sshd.change_host_key();
    let line = fails_unchanged(&dir, &sshd, &host, &args, 1);
    assert!(
        line.contains("host key of root@127.0.0.1") && line.contains("has changed"),
        "{line}"
    );

    sshd.stop();
    let line = fails_unchanged(&dir, &sshd, &host, &args, 1);
    assert!(line.contains("nothing listens there"), "{line}");
}

#[test]
fn a_sudo_that_wants_a_password_is_a_clear_error() {
    // An unprivileged user with a shell (its password may be locked: sshd then needs PAM to
    // let it in with a key); sudo has no rule for it, so `sudo -n` wants a password.
    if find_tool("sudo", "install sudo for the sudo test").is_none() {
        return;
    }
    let Some(user) = login_user() else {
        assert!(
            !peers_required(),
            "no unprivileged user with a shell (uid >= 1000)"
        );
        eprintln!("SKIPPED: no unprivileged user with a shell (uid >= 1000) to log in as");
        return;
    };
    let user = user.as_str();
    // sshd reads authorized_keys as the user, so it lives in a folder that user can reach
    // (the harness's own folder may sit under /root, 0700, as in a CI checkout under /tmp);
    // the first AuthorizedKeysFile line of the config wins.
    let keys = tempfile::Builder::new()
        .prefix("dt-keys-")
        .tempdir_in("/tmp")
        .unwrap();
    let authorized = keys.path().join("authorized_keys");
    let Some(sshd) = Sshd::start_with(&format!(
        "UsePAM yes\nAuthorizedKeysFile {}",
        authorized.display()
    )) else {
        return;
    };
    std::fs::copy(sshd.path("authorized_keys"), &authorized).unwrap();
    for (path, mode) in [(keys.path(), 0o755), (authorized.as_path(), 0o644)] {
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
    }
    let work = private_tempdir();
    let dir = pki(work.path(), free_port());
    let host = HostRoot::new(work.path(), "host");
    let target = sshd.target(user);
    let args = [
        "docker1.test",
        target.as_str(),
        "--remote-root",
        host.prefix(),
    ];
    let out = deploy(&dir, &sshd, &args);
    let line = fails_unchanged(&dir, &sshd, &host, &args, 1);
    assert!(
        line.contains("sudo there wants a password"),
        "{line}\n{}",
        streams(&out)
    );
    assert!(text(&out.stderr).contains("NOPASSWD"), "{}", streams(&out));
}

#[test]
fn a_host_without_dockerd_is_refused_for_restart() {
    // The session's PATH has every program of /usr/bin and /bin but dockerd (Debian's lives
    // in /usr/sbin, Docker's packages put it in /usr/bin).
    let work = private_tempdir();
    let bin = work.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for dir in ["/usr/bin", "/bin"] {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let name = entry.file_name();
            if name != "dockerd" && bin.join(&name).symlink_metadata().is_err() {
                std::os::unix::fs::symlink(entry.path(), bin.join(&name)).unwrap();
            }
        }
    }
    let Some(sshd) = Sshd::start_with(&format!("SetEnv PATH={}", bin.display())) else {
        return;
    };
    let dir = pki(work.path(), free_port());
    let host = HostRoot::new(work.path(), "host");
    let target = sshd.target("root");
    let mut args = vec![
        "docker1.test",
        target.as_str(),
        "--remote-root",
        host.prefix(),
        "--force",
    ];
    let restart = host.restart_args();
    args.extend(restart.iter().map(String::as_str));
    let line = fails_unchanged(&dir, &sshd, &host, &args, 1);
    assert!(line.contains("has no dockerd"), "{line}");
}

#[test]
fn a_restart_that_would_stop_containers_needs_force() {
    let Some(sshd) = Sshd::start() else { return };
    let work = private_tempdir();
    let dir = pki(work.path(), free_port());
    let host = HostRoot::new(work.path(), "host");
    let target = sshd.target("root");
    let mut args = vec![
        "docker1.test",
        target.as_str(),
        "--remote-root",
        host.prefix(),
    ];
    let restart = host.restart_args();
    args.extend(restart.iter().map(String::as_str));
    let line = fails_unchanged(&dir, &sshd, &host, &args, 2);
    assert!(line.contains("stops its running containers"), "{line}");
}

#[test]
fn a_full_disk_on_the_host_leaves_its_files_as_they_were() {
    let Some(sshd) = Sshd::start() else { return };
    let work = private_tempdir();
    let dir = pki(work.path(), free_port());
    let host = HostRoot::new(work.path(), "host");
    // The host's root is a tiny tmpfs holding only the unit and a daemon.json.
    let unit = std::fs::read(host.prefix.join("lib/systemd/system/docker.service")).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=12k,mode=755", "tmpfs"])
        .arg(&host.prefix)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        assert!(!peers_required(), "cannot mount a tmpfs");
        eprintln!("SKIPPED: cannot mount a tmpfs here");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(host.prefix.clone());
    std::fs::create_dir_all(host.prefix.join("lib/systemd/system")).unwrap();
    std::fs::write(host.prefix.join("lib/systemd/system/docker.service"), unit).unwrap();
    std::fs::create_dir_all(host.prefix.join("etc/docker")).unwrap();
    std::fs::write(
        host.prefix.join("etc/docker/daemon.json"),
        "{\"log-level\": \"warn\"}\n",
    )
    .unwrap();
    let target = sshd.target("root");
    let args = [
        "docker1.test",
        target.as_str(),
        "--remote-root",
        host.prefix(),
    ];
    let line = fails_unchanged(&dir, &sshd, &host, &args, 1);
    assert!(line.contains("the host keeps its previous files"), "{line}");
    assert!(line.contains("No space left on device"), "{line}");
}

#[test]
fn bad_input_is_one_line_exit_2_and_touches_nothing() {
    let Some(sshd) = Sshd::start() else { return };
    let work = private_tempdir();
    let dir = pki(work.path(), free_port());
    let host = HostRoot::new(work.path(), "host");
    let target = sshd.target("root");
    let p = host.prefix();
    for (args, says) in [
        (
            vec![
                "--remote-root",
                p,
                "--",
                "docker1.test",
                "-oProxyCommand=touch /tmp/x",
            ],
            "must not start with '-'",
        ),
        (
            vec!["docker1.test", "root@h\u{1b}[2J", "--remote-root", p],
            "control characters",
        ),
        (
            vec![
                "docker1.test",
                &target,
                "--remote-root",
                p,
                "--ssh-option",
                "StrictHostKeyChecking=no",
            ],
            "host-key checking",
        ),
        (
            vec![
                "docker1.test",
                &target,
                "--remote-root",
                p,
                "--ssh-option",
                "UserKnownHostsFile=/dev/null",
            ],
            "host-key checking",
        ),
        (
            vec![
                "docker1.test",
                &target,
                "--remote-root",
                p,
                "--ssh-option",
                "KnownHostsCommand=/bin/echo",
            ],
            "host-key checking",
        ),
        (
            vec!["docker1.test", &target, "--remote-root", "relative"],
            "absolute path",
        ),
        (
            vec!["docker1.test", &target, "--remote-root", p, "--jobs", "0"],
            "--jobs 0",
        ),
    ] {
        let line = fails_unchanged(&dir, &sshd, &host, &args, 2);
        assert!(line.contains(says), "{args:?}: {line}");
        assert!(!line.contains('\u{1b}'), "{line}");
    }
}

#[test]
fn a_daemon_that_fails_the_probe_after_the_restart_is_an_error() {
    let Some(sshd) = Sshd::start() else { return };
    let work = private_tempdir();
    let (_held, port) = refused_port();
    let dir = pki(work.path(), port);
    let host = HostRoot::new(work.path(), "host");
    let target = sshd.target("root");
    // A restart command that restarts nothing: no daemon answers on the port.
    let args = [
        "docker1.test",
        target.as_str(),
        "--remote-root",
        host.prefix(),
        "--restart",
        "--restart-command",
        "true",
        "--force",
    ];
    let out = deploy(&dir, &sshd, &args);
    assert_eq!(out.status.code(), Some(1), "{}", streams(&out));
    let stderr = text(&out.stderr);
    assert_one_error(&stderr, "probe after restart");
    assert!(
        stderr.contains(&format!("tcp://127.0.0.1:{port} does not pass the probe")),
        "{stderr}"
    );
    assert!(stderr.contains("the new files are installed"), "{stderr}");
    assert!(host.prefix.join("etc/docker/tls/server-cert.pem").exists());
}

/// The state file's entry of server `name`.
fn state_entry(dir: &Path, name: &str) -> serde_json::Value {
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("dockertls.json")).unwrap()).unwrap();
    state["servers"][name].clone()
}

#[test]
fn the_host_is_remembered_and_deploy_all_reports_a_record_per_host() {
    let work = private_tempdir();
    let host = HostRoot::new(work.path(), "host");
    let Some(mut sshd) = Sshd::start_with(&host.set_env()) else {
        return;
    };
    let port = free_port();
    let dir = pki(work.path(), port);
    let target = sshd.target("root");
    let refused = deploy(&dir, &sshd, &["--all"]);
    assert_eq!(refused.status.code(), Some(2), "{}", streams(&refused));
    assert_eq!(
        state_entry(&dir, "docker1.test")["deploy"],
        serde_json::Value::Null
    );

    let script = host.script.to_str().unwrap();
    let first = deploy(
        &dir,
        &sshd,
        &[
            "docker1.test",
            &target,
            "--remote-root",
            host.prefix(),
            "--restart",
            "--restart-command",
            script,
            "--force",
        ],
    );
    assert!(
        first.status.success(),
        "{}\n{}",
        streams(&first),
        host.dockerd_log()
    );
    let entry = state_entry(&dir, "docker1.test");
    assert_eq!(entry["deploy"], serde_json::json!(target), "{entry}");
    assert_eq!(
        entry["remote-root"],
        serde_json::json!(host.prefix()),
        "{entry}"
    );

    // The remembered host and root: no host argument needed, then --all with a restart, which
    // (nothing having changed) does not restart but probes the daemon.
    let again = deploy(&dir, &sshd, &["docker1.test"]);
    assert!(again.status.success(), "{}", streams(&again));
    assert!(
        text(&again.stdout).contains("already current"),
        "{}",
        streams(&again)
    );
    let all = deploy(
        &dir,
        &sshd,
        &[
            "--all",
            "--jobs",
            "2",
            "--format",
            "json",
            "--restart",
            "--restart-command",
            script,
            "--force",
        ],
    );
    assert!(
        all.status.success(),
        "{}\n{}",
        streams(&all),
        host.dockerd_log()
    );
    let records: Vec<serde_json::Value> = text(&all.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 1, "{}", streams(&all));
    assert_eq!(records[0]["server"], "docker1.test");
    assert_eq!(records[0]["host"], serde_json::json!(target));
    assert_eq!(records[0]["ok"], true);
    let details = records[0]["details"].to_string();
    assert!(
        details.contains("dockerd serves these files: not restarted"),
        "{details}"
    );
    assert!(
        details.contains(&format!("probe of tcp://127.0.0.1:{port} as alice: ok")),
        "{details}"
    );

    // A host that is down: exit 1, its record says so and that nothing changed there.
    sshd.stop();
    let down = deploy(&dir, &sshd, &["--all", "--format", "json"]);
    assert_eq!(down.status.code(), Some(1), "{}", streams(&down));
    let record: serde_json::Value = serde_json::from_str(text(&down.stdout).trim()).unwrap();
    assert_eq!(
        (record["ok"].clone(), record["state"].clone()),
        (serde_json::json!(false), serde_json::json!("unchanged"))
    );
    assert!(
        record["error"]
            .as_str()
            .unwrap()
            .contains("nothing listens there"),
        "{record}"
    );
}

#[test]
fn a_pki_in_the_first_layout_is_migrated_and_deployed() {
    let Some(sshd) = Sshd::start() else { return };
    let work = private_tempdir();
    let dir = work.path().join("old");
    format1_pki(&dir);
    let host = HostRoot::new(work.path(), "host");
    let target = sshd.target("root");
    let out = deploy(
        &dir,
        &sshd,
        &["old.example", &target, "--remote-root", host.prefix()],
    );
    assert!(out.status.success(), "{}", streams(&out));
    let key = std::fs::read(dir.join("servers/old.example/server-key.pem")).unwrap();
    assert_eq!(
        std::fs::read(host.prefix.join("etc/docker/tls/server-key.pem")).unwrap(),
        key
    );
    assert_eq!(
        state_entry(&dir, "old.example")["deploy"],
        serde_json::json!(target)
    );
}

#[test]
fn deploy_all_puts_two_servers_on_two_hosts_and_one_client_folder_talks_to_both() {
    let Some(docker) = find_tool("docker", "install docker.io for the docker CLI") else {
        return;
    };
    let work = private_tempdir();
    let hosts = [
        HostRoot::new(work.path(), "a"),
        HostRoot::new(work.path(), "b"),
    ];
    let Some(sshd_a) = Sshd::start_with(&hosts[0].set_env()) else {
        return;
    };
    let Some(sshd_b) = Sshd::start_with(&hosts[1].set_env()) else {
        return;
    };
    let ports = [free_port(), free_port()];
    let dir = work.path().join("pki");
    let listen = |p: u16| format!("127.0.0.1:{p}");
    init_ok(
        &dir,
        &[
            "--host",
            "a.test",
            "--name",
            "a",
            "--client",
            "alice",
            "--listen",
            &listen(ports[0]),
        ],
    );
    ok_in(
        &dir,
        &[
            "server",
            "add",
            "b",
            "--host",
            "b.test",
            "--listen",
            &listen(ports[1]),
        ],
    );
    let client_before = tree(&dir.join("clients/alice"));
    // Each server to its host once (no restart yet), then the fleet in one run.
    for (name, sshd, host) in [("a", &sshd_a, &hosts[0]), ("b", &sshd_b, &hosts[1])] {
        let target = sshd.target("root");
        let out = deploy(&dir, sshd, &[name, &target, "--remote-root", host.prefix()]);
        assert!(out.status.success(), "{name}: {}", streams(&out));
    }
    // Both hosts' keys in one known_hosts and one identity: what an operator's ssh has.
    let known = [&sshd_a, &sshd_b]
        .iter()
        .map(|s| std::fs::read_to_string(s.path("known_hosts")).unwrap())
        .collect::<String>();
    std::fs::write(work.path().join("known_hosts"), known).unwrap();
    std::fs::copy(sshd_a.path("userkey"), work.path().join("userkey")).unwrap();
    std::fs::write(
        sshd_b.path("authorized_keys"),
        std::fs::read(sshd_a.path("userkey.pub")).unwrap(),
    )
    .unwrap();
    let script = hosts[0].script.to_str().unwrap();
    let out = dockertls()
        .arg("--dir")
        .arg(&dir)
        .args([
            "deploy",
            "--all",
            "--jobs",
            "2",
            "--restart",
            "--restart-command",
            script,
            "--force",
        ])
        .args([
            "--ssh-option",
            &format!("IdentityFile={}", work.path().join("userkey").display()),
        ])
        .args(["--ssh-option", "IdentitiesOnly=yes"])
        .args([
            "--ssh-option",
            &format!(
                "UserKnownHostsFile={}",
                work.path().join("known_hosts").display()
            ),
        ])
        .output()
        .unwrap();
    let logs = || format!("{}\n{}", hosts[0].dockerd_log(), hosts[1].dockerd_log());
    assert!(out.status.success(), "{}\n{}", streams(&out), logs());
    let stdout = text(&out.stdout);
    for (name, port) in [("a", ports[0]), ("b", ports[1])] {
        assert!(
            stdout.contains(&format!("(server {name}): done")),
            "{stdout}"
        );
        // Deployed before without --restart: current files, but not yet served.
        assert_eq!(
            stdout
                .matches("did not serve these files: restarted it")
                .count(),
            2,
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!("probe of tcp://127.0.0.1:{port} as alice: ok")),
            "{stdout}"
        );
        let version = docker_version(
            &docker,
            &format!("tcp://127.0.0.1:{port}"),
            &dir.join("clients/alice"),
        );
        assert!(
            version.status.success(),
            "{name}: {}\n{}",
            text(&version.stderr),
            logs()
        );
    }
    assert_same_tree(
        &client_before,
        &tree(&dir.join("clients/alice")),
        "the client folder",
    );
}

#[test]
fn a_key_that_lives_on_the_host_is_taken_from_there_never_sent() {
    let Some(sshd) = Sshd::start() else { return };
    let work = private_tempdir();
    let dir = pki(work.path(), free_port());
    let host = HostRoot::new(work.path(), "host");
    let target = sshd.target("root");
    let args = [
        "docker1.test",
        target.as_str(),
        "--remote-root",
        host.prefix(),
    ];
    // A host without the key, and a folder without it: refused, nothing changed.
    let key = dir.join("servers/docker1.test/server-key.pem");
    let saved = std::fs::read(&key).unwrap();
    std::fs::remove_file(&key).unwrap();
    let line = fails_unchanged(&dir, &sshd, &host, &args, 2);
    assert!(line.contains("has no server-key.pem here"), "{line}");
    // The key in place on the host (as `request` run there leaves it): the rest is deployed.
    let installed = host.prefix.join("etc/docker/tls/server-key.pem");
    std::fs::create_dir_all(installed.parent().unwrap()).unwrap();
    std::fs::set_permissions(
        installed.parent().unwrap(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    std::fs::write(&installed, &saved).unwrap();
    std::fs::set_permissions(
        &installed,
        std::os::unix::fs::PermissionsExt::from_mode(0o400),
    )
    .unwrap();
    let out = deploy(&dir, &sshd, &args);
    assert!(out.status.success(), "{}", streams(&out));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("not sent: server-key.pem"), "{stdout}");
    assert!(host.prefix.join("etc/docker/tls/server-cert.pem").exists());
    assert_eq!(std::fs::read(&installed).unwrap(), saved);
}

#[test]
fn a_server_folder_others_can_change_is_not_sent() {
    use std::os::unix::fs::PermissionsExt;
    let Some(sshd) = Sshd::start() else { return };
    let work = private_tempdir();
    let dir = pki(work.path(), free_port());
    let host = HostRoot::new(work.path(), "host");
    let target = sshd.target("root");
    let args = [
        "docker1.test",
        target.as_str(),
        "--remote-root",
        host.prefix(),
    ];
    let folder = dir.join("servers/docker1.test");
    for (path, bad) in [(folder.clone(), 0o777), (folder.join("daemon.json"), 0o666)] {
        let good = mode(&path);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(bad)).unwrap();
        let line = fails_unchanged(&dir, &sshd, &host, &args, 2);
        assert!(line.contains(path.to_str().unwrap()), "{line}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(good)).unwrap();
    }
}

/// A user with uid >= 1000 and a login shell, if this machine has one (Debian images for CI
/// often do; this one has `cloudsdk`).
fn login_user() -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        let uid: u32 = fields.get(2)?.parse().ok()?;
        let shell = fields.get(6)?;
        let home = Path::new(fields.get(5)?);
        ((1000..65534).contains(&uid) && shell.ends_with("sh") && home.is_dir())
            .then(|| fields[0].to_string())
    })
}

#[test]
fn deploy_authz_puts_the_plugin_in_place_and_later_deploys_keep_its_crl_current() {
    let Some(sshd) = Sshd::start() else { return };
    let work = private_tempdir();
    let dir = pki(work.path(), free_port());
    ok_in(&dir, &["client", "add", "bob"]);
    ok_in(&dir, &["crl", "refresh"]);
    let host = HostRoot::new(work.path(), "host");
    let target = sshd.target("root");
    let first = deploy(
        &dir,
        &sshd,
        &[
            "docker1.test",
            &target,
            "--remote-root",
            host.prefix(),
            "--authz",
        ],
    );
    assert!(first.status.success(), "{}", streams(&first));
    let on_host = |path: &str| host.prefix.join(path.trim_start_matches('/'));
    for unit in [
        "/etc/systemd/system/dockertls-authz.socket",
        "/etc/systemd/system/dockertls-authz.service",
        "/etc/systemd/system/docker.service.d/zz-dockertls-authz.conf",
    ] {
        assert!(
            on_host(unit).is_file(),
            "{unit} missing: {}",
            streams(&first)
        );
    }
    let daemon_json = std::fs::read_to_string(on_host("/etc/docker/daemon.json")).unwrap();
    assert!(
        daemon_json.contains("\"authorization-plugins\""),
        "{daemon_json}"
    );
    let crl = || {
        std::fs::read_to_string(on_host("/etc/docker/tls/crl.pem")).expect("crl.pem on the host")
    };
    let ours = || std::fs::read_to_string(server_file(&dir, "crl.pem")).unwrap();
    assert_eq!(crl(), ours());
    assert_eq!(state_entry(&dir, "docker1.test")["authz"], true);
    // The plugin's unit runs a binary that outlives the deploy (not the one sent into the
    // temporary folder the deploy script removes), root-owned, 0755.
    let service =
        std::fs::read_to_string(on_host("/etc/systemd/system/dockertls-authz.service")).unwrap();
    let exec = service
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    assert!(!exec.contains("dockertls-deploy."), "{exec}");
    {
        use std::os::unix::fs::MetadataExt as _;
        let meta = std::fs::metadata(&exec).unwrap_or_else(|e| panic!("{exec}: {e}"));
        assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o755), "{exec}");
    }

    // A revocation later, deployed without --authz (as `deploy --all` from a timer): the
    // server remembers it, so the new list reaches the host.
    ok_in(&dir, &["client", "revoke", "bob"]);
    let before = crl();
    assert_ne!(before, ours(), "the revocation re-signed the list");
    let again = deploy(&dir, &sshd, &["docker1.test"]);
    assert!(again.status.success(), "{}", streams(&again));
    assert_eq!(crl(), ours(), "the host has the list that revokes bob");
    // revoked2: verify of the PKI warns about bob's folder and names the server the plugin
    // runs on, as this deploy --authz recorded it.
    let verify = common::run_in(&dir, &["verify", "--format", "json"]);
    let document: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    let bob = document["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| {
            t["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("clients/bob"))
        })
        .unwrap_or_else(|| panic!("{}", streams(&verify)));
    assert_eq!(bob["status"], "warn", "{bob}");
    assert!(
        bob.to_string()
            .contains("the dockertls plugin refuses it on server docker1.test"),
        "{bob}"
    );
}
