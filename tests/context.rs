//! `dockertls context`: docker contexts made with the real docker CLI (HOME in a temporary
//! folder), kept in step by `rotate`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;

/// The docker CLI with HOME (its context store) in `home`.
fn docker_in(docker: &Path, home: &Path, args: &[&str]) -> Output {
    Command::new(docker)
        .args(args)
        .env("HOME", home)
        .env_remove("DOCKER_CONFIG")
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_CERT_PATH")
        .env_remove("DOCKER_TLS_VERIFY")
        .env("GODEBUG", "x509negativeserial=0,rsa1024min=1")
        .stdin(Stdio::null())
        .output()
        .expect("run docker")
}

/// Runs dockertls with HOME in `home` and `docker` first on PATH: the CLI it drives.
fn dockertls_home(docker: &Path, home: &Path, dir: &Path, args: &[&str]) -> Output {
    dockertls()
        .env("HOME", home)
        .env("PATH", path_with(docker))
        .env_remove("DOCKER_CONFIG")
        .env_remove("DOCKER_CONTEXT")
        .arg("--dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run dockertls")
}

/// Every distinct docker CLI on PATH, first found first (None, skipping visibly, when there is
/// none). Debian's docker.io brings a 20.10 CLI at /usr/bin/docker, which a newer CLI earlier
/// on PATH hides: what dockertls asks the CLI, and how it reads the answer, must work with each
/// (20.10 and later CLIs word a missing context differently).
fn docker_clis() -> Option<Vec<PathBuf>> {
    find_tool("docker", "install docker.io to run the context tests")?;
    let mut found: Vec<PathBuf> = Vec::new();
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let Ok(cli) = std::fs::canonicalize(dir.join("docker")) else {
            continue;
        };
        if cli.is_file() && !found.contains(&cli) {
            found.push(cli);
        }
    }
    Some(found)
}

/// PATH with the folder of `docker` first.
fn path_with(docker: &Path) -> std::ffi::OsString {
    let rest = std::env::var_os("PATH").unwrap_or_default();
    let dirs =
        std::iter::once(docker.parent().unwrap().to_path_buf()).chain(std::env::split_paths(&rest));
    std::env::join_paths(dirs).unwrap()
}

/// The certificate the docker CLI stored for context `name`.
fn stored_cert(docker: &Path, home: &Path, name: &str) -> Vec<u8> {
    let out = docker_in(
        docker,
        home,
        &[
            "context",
            "inspect",
            "--format",
            "{{.Storage.TLSPath}}",
            name,
        ],
    );
    assert!(out.status.success(), "{}", streams(&out));
    let tls = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    std::fs::read(tls.join("docker/cert.pem")).unwrap()
}

/// Sets the tcp port of the PKI's only server's daemon.json "hosts".
fn listen_on(dir: &Path, port: u16) {
    let servers: Vec<PathBuf> = std::fs::read_dir(dir.join("servers"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(servers.len(), 1, "{servers:?}");
    let path = servers[0].join("daemon.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["hosts"] = serde_json::json!([format!("tcp://0.0.0.0:{port}")]);
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
}

/// THE TEST of issue 14 item 2: after `rotate --client alice`, `docker --context CTX version`
/// works against a real dockerd and the context's stored certificate is the new one.
#[test]
fn rotate_keeps_the_docker_context_in_step() {
    for docker in docker_clis().unwrap_or_default() {
        eprintln!("with the docker CLI {}", docker.display());
        rotate_keeps_the_docker_context_in_step_with(&docker);
    }
}

fn rotate_keeps_the_docker_context_in_step_with(docker: &Path) {
    let work = private_tempdir();
    let home = work.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let dir = work.path().join("pki");
    init_ok(
        &dir,
        &["--host", "127.0.0.1", "--client", "alice,bob", "--yes"],
    );
    let Some(daemon) = Dockerd::start(&dir) else {
        return;
    };
    // The operator's dockerd listens where the test's does: the server's daemon.json says so,
    // and the context dials what the PKI says.
    listen_on(&dir, daemon.port);
    let out = dockertls_home(docker, &home, &dir, &["context", "alice", "--name", "lab"]);
    assert!(out.status.success(), "{}", streams(&out));
    let old = stored_cert(docker, &home, "lab");
    assert_eq!(
        old,
        std::fs::read(dir.join("clients/alice/cert.pem")).unwrap()
    );
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("dockertls.json")).unwrap()).unwrap();
    assert_eq!(state["contexts"][0]["name"], "lab", "{state}");
    assert_eq!(state["contexts"][0]["client"], "alice", "{state}");

    let out = dockertls_home(
        docker,
        &home,
        &dir,
        &["rotate", "--client", "alice", "--all"],
    );
    assert!(out.status.success(), "{}", streams(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("docker context lab"),
        "{}",
        streams(&out)
    );
    let new = stored_cert(docker, &home, "lab");
    assert_ne!(new, old, "the context holds the new certificate");
    assert_eq!(
        new,
        std::fs::read(dir.join("clients/alice/cert.pem")).unwrap()
    );
    let out = docker_in(
        docker,
        &home,
        &[
            "--context",
            "lab",
            "version",
            "--format",
            "{{.Server.Version}}",
        ],
    );
    assert!(
        out.status.success(),
        "docker --context lab version: {}",
        streams(&out)
    );

    let out = dockertls_home(docker, &home, &dir, &["context", "--remove", "lab"]);
    assert!(out.status.success(), "{}", streams(&out));
    let out = docker_in(docker, &home, &["context", "inspect", "lab"]);
    assert!(!out.status.success(), "the context is gone");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("dockertls.json")).unwrap()).unwrap();
    assert!(state.get("contexts").is_none(), "{state}");
}

#[test]
fn a_context_dockertls_did_not_make_is_never_overwritten() {
    for docker in docker_clis().unwrap_or_default() {
        eprintln!("with the docker CLI {}", docker.display());
        a_context_dockertls_did_not_make_is_never_overwritten_with(&docker);
    }
}

fn a_context_dockertls_did_not_make_is_never_overwritten_with(docker: &Path) {
    let work = private_tempdir();
    let home = work.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let dir = work.path().join("pki");
    init_ok(&dir, &["--host", "127.0.0.1", "--client", "alice", "--yes"]);
    let out = docker_in(
        docker,
        &home,
        &[
            "context",
            "create",
            "mine",
            "--docker",
            "host=tcp://192.0.2.1:2376",
        ],
    );
    assert!(out.status.success(), "{}", streams(&out));
    let before = tree(work.path());
    for (args, what) in [
        (vec!["context", "alice", "--name", "mine"], "did not make"),
        (vec!["context", "alice", "--name", "default"], "default"),
        (
            vec!["context", "alice", "--name", "a b"],
            "a docker context name",
        ),
        (vec!["context", "nobody"], "nobody"),
        (
            vec!["context", "--remove", "mine"],
            "made no docker context mine",
        ),
        (vec!["context", "alice", "--server", "nope"], "nope"),
    ] {
        let out = dockertls_home(docker, &home, &dir, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", streams(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_one_error(&stderr, what);
        assert!(stderr.contains(what), "{args:?}: {stderr}");
    }
    assert_same_tree(&before, &tree(work.path()), "refusals change nothing");
}

/// With several servers the context names the one it dials; `rotate --server NAME` refreshes
/// that server's contexts only, and a context missing from this user's docker CLI is a
/// warning, not a failed rotation.
#[test]
fn contexts_follow_the_server_they_dial() {
    for docker in docker_clis().unwrap_or_default() {
        eprintln!("with the docker CLI {}", docker.display());
        contexts_follow_the_server_they_dial_with(&docker);
    }
}

fn contexts_follow_the_server_they_dial_with(docker: &Path) {
    let work = private_tempdir();
    let home = work.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let dir = work.path().join("pki");
    init_ok(
        &dir,
        &[
            "--host",
            "127.0.0.1",
            "--name",
            "web1",
            "--client",
            "alice",
            "--yes",
        ],
    );
    let out = dockertls_home(
        docker,
        &home,
        &dir,
        &[
            "server",
            "add",
            "web2",
            "--host",
            "127.0.0.2",
            "--listen",
            "0.0.0.0:2377",
        ],
    );
    assert!(out.status.success(), "{}", streams(&out));
    let before = tree(work.path());
    let out = dockertls_home(docker, &home, &dir, &["context", "alice"]);
    assert_eq!(out.status.code(), Some(2), "{}", streams(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_one_error(&stderr, "several servers");
    assert!(stderr.contains("web1, web2"), "{stderr}");
    assert_same_tree(&before, &tree(work.path()), "a refusal changes nothing");

    for server in ["web1", "web2"] {
        let out = dockertls_home(
            docker,
            &home,
            &dir,
            &["context", "alice", "--server", server],
        );
        assert!(out.status.success(), "{}", streams(&out));
    }
    let endpoint = |name: &str| {
        let out = docker_in(
            docker,
            &home,
            &[
                "context",
                "inspect",
                "--format",
                "{{.Endpoints.docker.Host}}",
                name,
            ],
        );
        assert!(out.status.success(), "{}", streams(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(endpoint("dockertls-127.0.0.1"), "tcp://127.0.0.1:2376");
    assert_eq!(endpoint("dockertls-127.0.0.2"), "tcp://127.0.0.2:2377");

    // Only web2's context is refreshed by web2's rotation.
    let out = dockertls_home(
        docker,
        &home,
        &dir,
        &["rotate", "--server", "web2", "--all"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", streams(&out));
    assert!(
        stdout.contains("docker context dockertls-127.0.0.2 now uses the new files"),
        "{stdout}"
    );
    assert!(!stdout.contains("dockertls-127.0.0.1"), "{stdout}");

    // A context gone from the docker CLI: the rotation stands, a warning says what to do.
    let out = docker_in(docker, &home, &["context", "rm", "dockertls-127.0.0.1"]);
    assert!(out.status.success(), "{}", streams(&out));
    let out = dockertls_home(
        docker,
        &home,
        &dir,
        &["rotate", "--client", "alice", "--all"],
    );
    assert!(out.status.success(), "{}", streams(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "warning: docker context dockertls-127.0.0.1 is not in this user's docker CLI"
        ),
        "{stderr}"
    );
    assert_eq!(
        stored_cert(docker, &home, "dockertls-127.0.0.2"),
        std::fs::read(dir.join("clients/alice/cert.pem")).unwrap()
    );
}
