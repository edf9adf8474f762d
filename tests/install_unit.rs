//! `install --root`: the systemd drop-in and the daemon.json merge, against docker.service as
//! systemd assembles it (the unit, every drop-in folder in file-name order, Environment= and
//! EnvironmentFile=). Every drop-in written is checked with `systemd-analyze verify`; refusals
//! name the file and line and change nothing; a real dockerd starts from a merged daemon.json
//! full of odd-but-valid JSON.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{
    docker_version, dockertls, find_tool, free_port, init_ok, is_root, peers_required, tree,
};

const DROPIN: &str = "/etc/systemd/system/docker.service.d/zz-dockertls.conf";
const UNIT_PATH: &str = "/lib/systemd/system/docker.service";

/// Docker's upstream unit (moby/moby contrib/init/systemd/docker.service), as Docker's
/// packages install it.
const UPSTREAM_UNIT: &str = "[Unit]\nDescription=Docker Application Container Engine\nDocumentation=https://docs.docker.com\nAfter=network-online.target firewalld.service containerd.service multi-user.target\nWants=network-online.target\nRequires=docker.socket containerd.service\n\n[Service]\nType=notify\n# the default is not to use systemd for cgroups because the delegate issues still\n# exists and systemd currently does not support the cgroup feature set required\n# for containers run by docker\nExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock\nExecReload=/bin/kill -s HUP $MAINPID\nTimeoutSec=0\nRestartSec=2\nRestart=always\n\n# Note that StartLimit* options were moved from \"Service\" to \"Unit\" in systemd 229.\n# Both the old, and new location are accepted by systemd 229 and up, so using the old location\n# to make them work for either version of systemd.\nStartLimitBurst=3\n\n# Note that StartLimitInterval was renamed to StartLimitIntervalSec in systemd 230.\n# Both the old, and new name are accepted by systemd 230 and up, so using the old name to make\n# this option work for either version of systemd.\nStartLimitInterval=60s\n\n# Having non-zero Limit*s causes performance problems due to accounting overhead\n# in the kernel. We recommend using cgroups to do container-local accounting.\nLimitNOFILE=infinity\nLimitNPROC=infinity\nLimitCORE=infinity\n\n# Comment TasksMax if your systemd version does not support it.\n# Only systemd 226 and above support this option.\nTasksMax=infinity\n\n# set delegate yes so that systemd does not reset the cgroups of docker containers\nDelegate=yes\n\n# kill only the docker process, not all processes in the cgroup\nKillMode=process\nOOMScoreAdjust=-500\n\n[Install]\nWantedBy=multi-user.target\n";

/// Debian's unit text, used when docker.io's own file is not installed here.
const DEBIAN_UNIT_FALLBACK: &str = "[Unit]\nDescription=Docker Application Container Engine\nRequires=docker.socket\n\n[Service]\nType=notify\nEnvironmentFile=-/etc/default/docker\nExecStart=/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock $DOCKER_OPTS\nExecReload=/bin/kill -s HUP $MAINPID\n\n[Install]\nWantedBy=multi-user.target\n";

const DEBIAN_EXEC: &str =
    "ExecStart=/usr/sbin/dockerd --containerd=/run/containerd/containerd.sock $DOCKER_OPTS";

struct Host {
    _work: tempfile::TempDir,
    pki: PathBuf,
    root: PathBuf,
}

/// A PKI and a fake daemon host holding `unit` at /lib/systemd/system/docker.service.
fn host(unit: &str) -> Option<Host> {
    if !is_root() {
        assert!(
            !peers_required(),
            "install sets root ownership: run the tests as root"
        );
        eprintln!("SKIPPED: install sets root ownership, which needs root");
        return None;
    }
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "localhost", "--client", "alice"]);
    let root = work.path().join("root");
    write(&root, UNIT_PATH, unit);
    Some(Host {
        _work: work,
        pki,
        root,
    })
}

/// Debian's real docker.service from docker.io when installed here.
fn debian_unit() -> String {
    match std::fs::read_to_string("/lib/systemd/system/docker.service") {
        Ok(text) if text.contains("/usr/sbin/dockerd") => text,
        _ => {
            assert!(
                !peers_required(),
                "/lib/systemd/system/docker.service (docker.io) is missing"
            );
            eprintln!(
                "SKIPPED (partly): docker.io's docker.service is not installed, using a copy"
            );
            DEBIAN_UNIT_FALLBACK.to_string()
        }
    }
}

fn write(root: &Path, path: &str, text: &str) {
    let path = root.join(path.trim_start_matches('/'));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn read(root: &Path, path: &str) -> String {
    std::fs::read_to_string(root.join(path.trim_start_matches('/'))).unwrap()
}

fn install(h: &Host) -> Output {
    dockertls()
        .arg("--dir")
        .arg(&h.pki)
        .args(["install", "--root"])
        .arg(&h.root)
        .output()
        .unwrap()
}

fn ok(h: &Host) -> String {
    let output = install(h);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs install, expects a refusal with each of `needles` in its message, and checks that
/// nothing under --root changed.
fn refused(h: &Host, needles: &[&str]) -> String {
    let before = tree(&h.root);
    let output = install(h);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("\nhint: "), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(tree(&h.root), before, "a refusal changed files");
    stderr
}

/// The ExecStart lines of our drop-in.
fn exec_start(h: &Host) -> String {
    read(&h.root, DROPIN)
        .lines()
        .filter(|l| l.starts_with("ExecStart="))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `systemd-analyze verify` of docker.service as the tree under --root assembles it. The
/// units docker.service depends on and its commands are stubbed in the tree, since verify
/// checks that they exist.
fn verify(h: &Host) {
    let Some(analyze) = find_tool(
        "systemd-analyze",
        "install systemd to verify the drop-ins install writes",
    ) else {
        return;
    };
    let units = h.root.join("lib/systemd/system");
    if let Ok(entries) = std::fs::read_dir("/lib/systemd/system") {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".target") && !units.join(&name).exists() {
                let _ = std::fs::copy(entry.path(), units.join(&name));
            }
        }
    }
    for (unit, text) in [
        ("docker.socket", "[Socket]\nListenStream=/run/docker.sock\n"),
        (
            "containerd.service",
            "[Service]\nExecStart=/usr/bin/containerd\n",
        ),
    ] {
        if !units.join(unit).exists() {
            write(&h.root, &format!("/lib/systemd/system/{unit}"), text);
        }
    }
    for program in [
        "/usr/bin/dockerd",
        "/usr/sbin/dockerd",
        "/bin/kill",
        "/usr/bin/containerd",
    ] {
        let path = h.root.join(program.trim_start_matches('/'));
        if !path.exists() {
            write(&h.root, program, "#!/bin/sh\n");
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
        }
    }
    let output = Command::new(analyze)
        .arg("verify")
        .arg(format!("--root={}", h.root.display()))
        .arg("docker.service")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && !stderr.contains("docker.service"),
        "systemd-analyze verify refuses docker.service with the drop-in:\n{stderr}\n{}",
        read(&h.root, DROPIN)
    );
}

#[test]
fn debian_unit_keeps_docker_opts_and_verifies() {
    let Some(h) = host(&debian_unit()) else {
        return;
    };
    // docker.io's /etc/default/docker: comments only.
    let defaults = std::fs::read_to_string("/etc/default/docker")
        .unwrap_or_else(|_| "# Use of this file for configuring your Docker daemon is discouraged.\n#DOCKER_OPTS=\"--dns 8.8.8.8\"\n".into());
    write(&h.root, "/etc/default/docker", &defaults);
    ok(&h);
    assert_eq!(exec_start(&h), format!("ExecStart=\n{DEBIAN_EXEC}"));
    verify(&h);
    // Options without a conflicting flag stay where the operator put them.
    write(
        &h.root,
        "/etc/default/docker",
        "DOCKER_OPTS=\"--dns 8.8.8.8 --label 'site=a b'\"\n",
    );
    ok(&h);
    assert_eq!(exec_start(&h), format!("ExecStart=\n{DEBIAN_EXEC}"));
    verify(&h);
    // With the ':' prefix systemd expands no variable: $DOCKER_OPTS reaches dockerd as is.
    write(
        &h.root,
        "/etc/default/docker",
        "DOCKER_OPTS=\"-H tcp://0.0.0.0:2375\"\n",
    );
    write(
        &h.root,
        "/etc/systemd/system/docker.service.d/10-literal.conf",
        "[Service]\nExecStart=\nExecStart=:/usr/sbin/dockerd -H fd:// --label=x=$DOCKER_OPTS\n",
    );
    ok(&h);
    assert_eq!(
        exec_start(&h),
        "ExecStart=\nExecStart=:/usr/sbin/dockerd --label=x=$DOCKER_OPTS"
    );
    verify(&h);
}

#[test]
fn upstream_unit_verifies() {
    let Some(h) = host(UPSTREAM_UNIT) else {
        return;
    };
    ok(&h);
    assert_eq!(
        exec_start(&h),
        "ExecStart=\nExecStart=/usr/bin/dockerd --containerd=/run/containerd/containerd.sock"
    );
    verify(&h);
}

#[test]
fn operator_flags_quoting_and_continuations_survive() {
    let Some(h) = host(UPSTREAM_UNIT) else {
        return;
    };
    // Spaces around '=', comments inside a continuation, quotes, escapes and specifiers.
    write(
        &h.root,
        "/etc/systemd/system/docker.service.d/10-local.conf",
        "[Service]\nExecStart =\nExecStart = /usr/bin/dockerd -H fd:// \\\n# --debug is too verbose here\n  --data-root=/srv/docker \\\n  ; another note\n  --label \"team=a b\" --log-opt 'tag={{.Name}}' --label=pct=100%% -D \\\n  --label x\\x3dy --containerd=/run/containerd/containerd.sock\n",
    );
    ok(&h);
    assert_eq!(
        exec_start(&h),
        "ExecStart=\nExecStart=/usr/bin/dockerd --data-root=/srv/docker --label \"team=a b\" --log-opt 'tag={{.Name}}' --label=pct=100%% -D --label x\\x3dy --containerd=/run/containerd/containerd.sock"
    );
    verify(&h);
    // A second run finds everything in place (our own drop-in is not read back as input).
    let again = ok(&h);
    assert!(again.contains("nothing to change"), "{again}");
    // Grouped shorthands and every other spelling of the flags daemon.json owns.
    write(
        &h.root,
        "/etc/systemd/system/docker.service.d/10-local.conf",
        "[Service]\nExecStart=\nExecStart=-/usr/bin/dockerd -DH fd:// --host=tcp://0.0.0.0:2375 -Hunix:///x --tlsverify=false --tls --tlscacert /a --tlscert=/b --tlskey \"/c d\" --data-root /srv/docker\n",
    );
    ok(&h);
    assert_eq!(
        exec_start(&h),
        "ExecStart=\nExecStart=-/usr/bin/dockerd -D --data-root /srv/docker"
    );
    verify(&h);
}

#[test]
fn variables_that_give_dockerd_a_taken_flag_are_refused() {
    let unit = debian_unit();
    for (defaults, line, flag) in [
        (
            "# set by hand\nDOCKER_OPTS=\"-H tcp://0.0.0.0:2375\"\n",
            "/etc/default/docker line 2",
            "-H tcp://0.0.0.0:2375",
        ),
        (
            "DOCKER_OPTS='--dns 1.1.1.1 --tlsverify --tlscacert=/x'\n",
            "/etc/default/docker line 1",
            "--tlsverify",
        ),
        // The last assignment wins.
        (
            "DOCKER_OPTS=--debug\nDOCKER_OPTS=-Hunix:///x\n",
            "/etc/default/docker line 2",
            "-Hunix:///x",
        ),
        // systemd >= 254 reads a line after a comment ending in '\' (older ones skip it).
        (
            "# old note \\\nDOCKER_OPTS=--host=fd://\n",
            "/etc/default/docker line 2",
            "--host=fd://",
        ),
        (
            "DOCKER_OPTS=\"--tlskey /k \\\n --debug\"\n",
            "/etc/default/docker line 1",
            "--tlskey /k",
        ),
    ] {
        let Some(h) = host(&unit) else {
            return;
        };
        write(&h.root, "/etc/default/docker", defaults);
        refused(&h, &[line, flag, "DOCKER_OPTS", "remove"]);
    }

    // Environment= in a drop-in, with no environment file at all.
    let Some(h) = host(&unit) else {
        return;
    };
    write(
        &h.root,
        "/etc/systemd/system/docker.service.d/opts.conf",
        "[Service]\n\nEnvironment=\"DOCKER_OPTS=--tls -H fd://\"\n",
    );
    refused(
        &h,
        &[
            "/etc/systemd/system/docker.service.d/opts.conf line 3",
            "--tls",
        ],
    );

    // The service manager's DefaultEnvironment= applies when the unit does not set the variable;
    // UnsetEnvironment= removes a variable last.
    let Some(h) = host(&unit) else {
        return;
    };
    write(
        &h.root,
        "/etc/systemd/system.conf.d/50-opts.conf",
        "[Manager]\nDefaultEnvironment=\"DOCKER_OPTS=-H unix:///x\" LANG=C\n",
    );
    refused(
        &h,
        &[
            "/etc/systemd/system.conf.d/50-opts.conf line 2",
            "-H unix:///x",
        ],
    );
    write(
        &h.root,
        "/etc/systemd/system/docker.service.d/10-unset.conf",
        "[Service]\nUnsetEnvironment=DOCKER_OPTS\n",
    );
    ok(&h);
    assert_eq!(exec_start(&h), format!("ExecStart=\n{DEBIAN_EXEC}"));
    verify(&h);

    // A symbolic link with an absolute target is followed inside --root, never outside it.
    let Some(h) = host(&unit) else {
        return;
    };
    write(&h.root, "/dockertls-test-outside", "DOCKER_OPTS=-H fd://\n");
    std::fs::create_dir_all(h.root.join("etc/default")).unwrap();
    std::os::unix::fs::symlink("/dockertls-test-outside", h.root.join("etc/default/docker"))
        .unwrap();
    refused(&h, &["/etc/default/docker line 1", "-H fd://"]);
}

#[test]
fn later_dropins_that_undo_ours_are_refused() {
    let unit = debian_unit();
    let bad = "[Service]\nExecStart=\nExecStart=/usr/sbin/dockerd -H fd:// --debug\n";
    for path in [
        "/etc/systemd/system/docker.service.d/zzz-local.conf",
        "/run/systemd/system/docker.service.d/zzz-local.conf",
        "/usr/lib/systemd/system/docker.service.d/zzz-local.conf",
        "/lib/systemd/system/docker.service.d/zzz-local.conf",
        "/etc/systemd/system/service.d/zzz-all.conf",
    ] {
        let Some(h) = host(&unit) else {
            return;
        };
        write(&h.root, path, bad);
        refused(&h, &[&format!("{path} line 3"), "-H fd://", "rename"]);
    }
    // Line ends as systemd reads them: a lone CR ends a line, a byte order mark is dropped.
    for text in [
        "[Service]\rExecStart=\rExecStart=/usr/sbin/dockerd -H fd://\r",
        "\u{feff}[Service]\nExecStart=\nExecStart=/usr/sbin/dockerd -H fd://\n",
    ] {
        let Some(h) = host(&unit) else {
            return;
        };
        write(
            &h.root,
            "/etc/systemd/system/docker.service.d/zzz-local.conf",
            text,
        );
        refused(&h, &["zzz-local.conf line 3", "-H fd://"]);
    }
    // A later drop-in that only resets ExecStart leaves no command.
    let Some(h) = host(&unit) else {
        return;
    };
    write(
        &h.root,
        "/etc/systemd/system/docker.service.d/zzz-local.conf",
        "[Service]\nExecStart=\n",
    );
    refused(&h, &["zzz-local.conf line 2", "resets ExecStart"]);
    // docker.service linked to a unit of another name: that name's drop-ins apply too.
    let Some(h) = host(&unit) else {
        return;
    };
    std::fs::rename(
        h.root.join("lib/systemd/system/docker.service"),
        h.root.join("lib/systemd/system/moby.service"),
    )
    .unwrap();
    std::fs::create_dir_all(h.root.join("etc/systemd/system")).unwrap();
    std::os::unix::fs::symlink(
        "/lib/systemd/system/moby.service",
        h.root.join("etc/systemd/system/docker.service"),
    )
    .unwrap();
    write(
        &h.root,
        "/lib/systemd/system/moby.service.d/zzz-local.conf",
        bad,
    );
    refused(
        &h,
        &["/lib/systemd/system/moby.service.d/zzz-local.conf line 3"],
    );
    // A later ExecStart without a reset gives two commands.
    let Some(h) = host(&unit) else {
        return;
    };
    write(
        &h.root,
        "/etc/systemd/system/docker.service.d/zzz-local.conf",
        "[Service]\nExecStart=/usr/sbin/dockerd --debug\n",
    );
    refused(&h, &["zzz-local.conf line 2", "2 ExecStart"]);
    // A later Environment= that brings -H back through $DOCKER_OPTS.
    let Some(h) = host(&unit) else {
        return;
    };
    write(
        &h.root,
        "/run/systemd/system/docker.service.d/zzz-env.conf",
        "[Service]\nEnvironment=DOCKER_OPTS=-Hfd://\n",
    );
    refused(
        &h,
        &["/run/systemd/system/docker.service.d/zzz-env.conf line 2"],
    );
    // A same-named drop-in in a folder of higher priority hides ours.
    let Some(h) = host(&unit) else {
        return;
    };
    write(
        &h.root,
        "/run/systemd/system/docker.service.d/zz-dockertls.conf",
        "[Service]\n",
    );
    refused(
        &h,
        &["/run/systemd/system/docker.service.d/zz-dockertls.conf"],
    );
    // A later drop-in whose own command is clean is fine.
    let Some(h) = host(&unit) else {
        return;
    };
    write(
        &h.root,
        "/etc/systemd/system/docker.service.d/zzz-local.conf",
        "[Service]\nExecStart=\nExecStart=/usr/sbin/dockerd --containerd=/run/containerd/containerd.sock --debug\n",
    );
    ok(&h);
    verify(&h);
}

#[test]
fn earlier_dropins_apply_in_name_order_across_folders() {
    let Some(h) = host(UPSTREAM_UNIT) else {
        return;
    };
    write(
        &h.root,
        "/usr/lib/systemd/system/docker.service.d/20-b.conf",
        "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd -H fd:// --data-root=/b\n",
    );
    write(
        &h.root,
        "/run/systemd/system/docker.service.d/10-a.conf",
        "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd -H fd:// --data-root=/a\n",
    );
    ok(&h);
    assert_eq!(
        exec_start(&h),
        "ExecStart=\nExecStart=/usr/bin/dockerd --data-root=/b"
    );
    verify(&h);
    // The same name in /etc hides the one in /usr/lib.
    write(
        &h.root,
        "/etc/systemd/system/docker.service.d/20-b.conf",
        "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd -H fd:// --data-root=/c\n",
    );
    ok(&h);
    assert_eq!(
        exec_start(&h),
        "ExecStart=\nExecStart=/usr/bin/dockerd --data-root=/c"
    );
    // ...and a link to /dev/null masks it: /a applies.
    std::fs::remove_file(h.root.join("etc/systemd/system/docker.service.d/20-b.conf")).unwrap();
    std::os::unix::fs::symlink(
        "/dev/null",
        h.root.join("etc/systemd/system/docker.service.d/20-b.conf"),
    )
    .unwrap();
    ok(&h);
    assert_eq!(
        exec_start(&h),
        "ExecStart=\nExecStart=/usr/bin/dockerd --data-root=/a"
    );
    verify(&h);
}

#[test]
fn units_that_cannot_serve_daemon_json_are_refused() {
    // dockerd told to read another configuration file would never see the TLS keys.
    let Some(h) = host(UPSTREAM_UNIT) else {
        return;
    };
    write(
        &h.root,
        "/etc/systemd/system/docker.service.d/10-config.conf",
        "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd --config-file /srv/other.json\n",
    );
    refused(
        &h,
        &["10-config.conf line 3", "--config-file /srv/other.json"],
    );
    // A masked unit.
    let Some(h) = host(UPSTREAM_UNIT) else {
        return;
    };
    std::fs::create_dir_all(h.root.join("etc/systemd/system")).unwrap();
    std::os::unix::fs::symlink(
        "/dev/null",
        h.root.join("etc/systemd/system/docker.service"),
    )
    .unwrap();
    refused(&h, &["masks docker.service", "unmask"]);
    // An unterminated quote: systemd would ignore the line.
    let Some(h) = host(UPSTREAM_UNIT) else {
        return;
    };
    write(
        &h.root,
        "/etc/systemd/system/docker.service.d/10-bad.conf",
        "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd --label \"x\n",
    );
    refused(&h, &["10-bad.conf line 3", "unterminated quote"]);
}

#[test]
fn hostile_environment_files_are_bounded() {
    let unit = debian_unit();
    // A FIFO: opening it for reading must not hang.
    let Some(h) = host(&unit) else {
        return;
    };
    std::fs::create_dir_all(h.root.join("etc/default")).unwrap();
    let status = Command::new("mkfifo")
        .arg(h.root.join("etc/default/docker"))
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    refused(&h, &["/etc/default/docker", "not a regular file"]);
    assert!(started.elapsed() < Duration::from_secs(20));
    // A huge file is not read whole.
    let Some(h) = host(&unit) else {
        return;
    };
    write(&h.root, "/etc/default/docker", &"#".repeat(2 * 1024 * 1024));
    refused(&h, &["larger than 1 MiB"]);
    // A link loop.
    let Some(h) = host(&unit) else {
        return;
    };
    std::fs::create_dir_all(h.root.join("etc/default")).unwrap();
    std::os::unix::fs::symlink("/etc/default/docker", h.root.join("etc/default/docker")).unwrap();
    refused(&h, &["too many levels of symbolic links"]);
}

/// Odd but valid daemon.json that dockerd 20.10 accepts: escapes, spacing, nested values.
const ODD_DAEMON_JSON: &str = "{ \"labels\":[\"caf\\u00e9=\\u00E9t\\u00e9\", \"path=a\\/b\"] ,\r\n\t\"log-opts\" : {\"max-size\":\"1\\u0030m\", \"max-file\": \"3\"},\n  \"max-concurrent-downloads\": 3, \"shutdown-timeout\":15,\n  \"debug\" : false,\n  \"default-ulimits\": {\"nofile\": {\"Name\": \"nofile\", \"Hard\": 9223372036854775807, \"Soft\": 64000}}\n}\n";

#[test]
fn odd_daemon_json_is_kept_byte_for_byte_and_dockerd_starts_from_it() {
    let Some(h) = host(UPSTREAM_UNIT) else {
        return;
    };
    write(&h.root, "/etc/docker/daemon.json", ODD_DAEMON_JSON);
    ok(&h);
    let merged = read(&h.root, "/etc/docker/daemon.json");
    let kept = ODD_DAEMON_JSON.rfind("}}").unwrap() + 2;
    assert_eq!(&merged[..kept], &ODD_DAEMON_JSON[..kept], "{merged}");
    assert!(merged.ends_with("\n}\n"), "{merged}");
    assert!(
        merged
            .contains("\n  \"hosts\": [\"unix:///var/run/docker.sock\", \"tcp://0.0.0.0:2376\"],"),
        "{merged}"
    );
    let again = ok(&h);
    assert!(again.contains("nothing to change"), "{again}");

    // Start a real dockerd from exactly that text, with only dockertls's own values pointed at
    // the sandbox (they are dockertls's rendering, so a plain text replacement is exact).
    let Some(dockerd) = find_tool("dockerd", "install docker.io to run the real-dockerd tests")
    else {
        return;
    };
    let Some(docker) = find_tool("docker", "install docker.io for the docker CLI") else {
        return;
    };
    let sandbox = tempfile::Builder::new()
        .prefix("dockertls-dockerd-")
        .tempdir()
        .unwrap();
    let s = sandbox.path();
    let port = free_port();
    let text = merged
        .replace(
            "[\"unix:///var/run/docker.sock\", \"tcp://0.0.0.0:2376\"]",
            &format!(
                "[\"unix://{}\", \"tcp://127.0.0.1:{port}\"]",
                s.join("docker.sock").display()
            ),
        )
        .replace(
            "\"/etc/docker/tls/",
            &format!("\"{}/etc/docker/tls/", h.root.display()),
        );
    assert_ne!(text, merged);
    let config = s.join("daemon.json");
    std::fs::write(&config, &text).unwrap();
    let log = std::fs::File::create(s.join("dockerd.log")).unwrap();
    let mut child = Command::new(dockerd)
        .arg("--config-file")
        .arg(&config)
        .arg("--data-root")
        .arg(s.join("data"))
        .arg("--exec-root")
        .arg(s.join("exec"))
        .arg("--pidfile")
        .arg(s.join("docker.pid"))
        .args(["--iptables=false", "--bridge=none", "--storage-driver=vfs"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut exited = None;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            exited = Some(status);
            break;
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = docker_version(
        &docker,
        &format!("tcp://localhost:{port}"),
        &h.pki.join("clients/alice"),
    );
    // Stop it by its own pid, never by name.
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let stop = Instant::now() + Duration::from_secs(30);
    while Instant::now() < stop && !matches!(child.try_wait(), Ok(Some(_))) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(s.join("dockerd.log")).unwrap_or_default();
    assert!(exited.is_none(), "dockerd exited ({exited:?}):\n{log}");
    assert!(
        output.status.success(),
        "{}\n{log}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn environment_files_behind_links_are_read_inside_the_root_only() {
    let unit = debian_unit();
    let Some(h) = host(&unit) else {
        return;
    };
    // A file outside the root that would give dockerd a flag daemon.json owns.
    let outside = h.root.parent().unwrap().join("outside/docker");
    write(
        Path::new("/"),
        outside.to_str().unwrap(),
        "DOCKER_OPTS=\"-H tcp://0.0.0.0:2375\"\n",
    );
    std::fs::create_dir_all(h.root.join("etc/default")).unwrap();
    let link = h.root.join("etc/default/docker");
    // Relative with more ".." than there are folders, then absolute: both stop at the root,
    // where the file does not exist (EnvironmentFile=- makes that fine).
    let relative = format!("{}{}", "../".repeat(40), outside.display());
    for target in [PathBuf::from(relative), outside.clone()] {
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, &link).unwrap();
        ok(&h);
        assert_eq!(exec_start(&h), format!("ExecStart=\n{DEBIAN_EXEC}"));
    }
    // The same file where the link leads inside the root: read, and refused.
    write(
        &h.root,
        outside.to_str().unwrap(),
        "DOCKER_OPTS=\"-H tcp://0.0.0.0:2375\"\n",
    );
    refused(&h, &["DOCKER_OPTS", "-H tcp://0.0.0.0:2375"]);
}
