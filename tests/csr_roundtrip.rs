//! Issue 12, the CSR round trip: the key is made on the "host side", the CSR signed on the "CA
//! side", the host folder assembled from request's output and what sign returned, installed
//! with `install --from` under `--root`, and a REAL dockerd started from what install put in
//! place serves the PKI's client folders and a client folder whose key was made elsewhere. The
//! keys' bytes (PEM, DER, the raw private value) appear in no file of the PKI or its backups.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const DEBIAN_UNIT: &str = "[Unit]\nDescription=Docker Application Container Engine\n\n[Service]\nType=notify\nExecStart=/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock\n\n[Install]\nWantedBy=multi-user.target\n";

fn ok(dir: Option<&Path>, args: &[&str]) -> String {
    let mut command = dockertls();
    if let Some(dir) = dir {
        command.arg("--dir").arg(dir);
    }
    let output = command.args(args).output().unwrap();
    assert!(
        output.status.success(),
        "dockertls {}:\n{}",
        args.join(" "),
        streams(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("{} -> {}: {e}", from.display(), to.display()));
}

/// Every byte string that would give the key away: its PEM body lines, its DER, and the raw
/// private value (openssl's `priv:`), so no re-encoding can hide it.
fn secrets_of(openssl: &Path, key: &Path) -> Vec<(String, Vec<u8>)> {
    use rustls_pki_types::pem::PemObject;
    let pem = std::fs::read_to_string(key).unwrap();
    let der = rustls_pki_types::PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap();
    let mut secrets = vec![("DER".to_string(), der.secret_der().to_vec())];
    for line in pem
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 40)
    {
        secrets.push((format!("PEM line {line:.8}..."), line.as_bytes().to_vec()));
    }
    let text = Command::new(openssl)
        .args(["pkey", "-noout", "-text", "-in"])
        .arg(key)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    // EC and Ed25519 keys print `priv:`, RSA keys `privateExponent:`; the hex lines follow,
    // indented, up to the next field.
    let mut lines = text.lines();
    lines
        .find(|l| *l == "priv:" || *l == "privateExponent:")
        .unwrap_or_else(|| panic!("no private value in {text}"));
    let hex: String = lines
        .take_while(|l| l.starts_with(' '))
        .flat_map(str::chars)
        .filter(char::is_ascii_hexdigit)
        .collect();
    let raw: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    assert!(raw.len() >= 32, "the private value of {}", key.display());
    secrets.push(("raw private value".to_string(), raw));
    secrets
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn assert_nowhere(pki: &Path, what: &str, secrets: &[(String, Vec<u8>)]) {
    let files = walk(pki);
    assert!(files.len() > 10, "the PKI has files to search");
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        for (kind, secret) in secrets {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_slice()),
                "{what}'s key ({kind}) is in {}",
                file.display()
            );
        }
    }
}

#[test]
fn a_key_made_on_the_host_serves_a_real_dockerd_and_never_reaches_the_ca() {
    if !is_root() {
        assert!(!peers_required(), "install and dockerd need root");
        eprintln!("SKIPPED: install and dockerd need root");
        return;
    }
    let Some(docker) = find_tool("docker", "install docker.io for the docker CLI") else {
        return;
    };
    let Some(openssl) = find_tool("openssl", "reads the keys' private values") else {
        return;
    };
    let work = private_tempdir();
    let pki = work.path().join("pki");
    let host = work.path().join("host");
    let bob = work.path().join("bob");
    init_ok(&pki, &["--host", "ca-side.example", "--client", "alice"]);

    // Host side: the daemon's key and request; a user's key and request elsewhere.
    ok(
        None,
        &[
            "request",
            "server",
            "--host",
            "localhost",
            "--out",
            s(&host),
        ],
    );
    ok(
        None,
        &[
            "request",
            "client",
            "bob",
            "--key-type",
            "rsa-2048",
            "--out",
            s(&bob),
        ],
    );

    // CA side: sign both, twice for the server (a renewal with the same request).
    for _ in 0..2 {
        let out = ok(
            Some(&pki),
            &[
                "sign",
                s(&host.join("server.csr")),
                "--server",
                "web",
                "--host",
                "localhost",
            ],
        );
        assert!(out.contains("signed server web"), "{out}");
    }
    ok(
        Some(&pki),
        &["sign", s(&bob.join("client.csr")), "--client", "bob"],
    );
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(pki.join("dockertls.json")).unwrap()).unwrap();
    assert_eq!(state["servers"]["web"]["key"], "elsewhere", "{state}");
    assert_eq!(state["servers"]["web"]["host"], "localhost", "{state}");
    assert_eq!(state["clients"]["bob"]["key"], "elsewhere", "{state}");
    let web = pki.join("servers/web");
    assert!(!web.join("server-key.pem").exists());
    assert!(!pki.join("clients/bob/key.pem").exists());

    // Assemble: what sign returned goes beside the keys.
    for file in ["ca.pem", "server-cert.pem", "daemon.json", "override.conf"] {
        copy(&web.join(file), &host.join(file));
    }
    for file in ["ca.pem", "cert.pem"] {
        copy(&pki.join("clients/bob").join(file), &bob.join(file));
    }

    // Install on the "host" from that folder, then run dockerd from what install put in place.
    let root = work.path().join("root");
    let unit = root.join("lib/systemd/system/docker.service");
    std::fs::create_dir_all(unit.parent().unwrap()).unwrap();
    std::fs::write(&unit, DEBIAN_UNIT).unwrap();
    ok(None, &["install", "--from", s(&host), "--root", s(&root)]);
    let installed = root.join("etc/docker/daemon.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&installed).unwrap()).unwrap();
    for key in ["tlscacert", "tlscert", "tlskey"] {
        let path = config[key].as_str().unwrap().to_string();
        config[key] = serde_json::json!(root.join(path.trim_start_matches('/')));
    }
    assert_eq!(
        std::fs::read(root.join("etc/docker/tls/server-key.pem")).unwrap(),
        std::fs::read(host.join("server-key.pem")).unwrap(),
        "install put the host's own key in place"
    );
    let Some(daemon) = Dockerd::start_config(config) else {
        return;
    };
    let endpoint = format!("tcp://localhost:{}", daemon.port);
    for (who, folder) in [
        ("alice (the PKI's)", pki.join("clients/alice")),
        ("bob (key made elsewhere)", bob.clone()),
    ] {
        let output = docker_version(&docker, &endpoint, &folder);
        assert!(
            output.status.success(),
            "{who}: {}\n{}",
            streams(&output),
            daemon.log()
        );
    }

    // Neither key is anywhere on the CA side, backups included.
    assert!(
        pki.join("backup").exists(),
        "the renewal made a backup to search"
    );
    assert_nowhere(
        &pki,
        "the server",
        &secrets_of(&openssl, &host.join("server-key.pem")),
    );
    assert_nowhere(&pki, "bob", &secrets_of(&openssl, &bob.join("key.pem")));
    // The search would find a key that is there: alice's is.
    let alice = secrets_of(&openssl, &pki.join("clients/alice/key.pem"));
    let found = walk(&pki).iter().any(|f| {
        let bytes = std::fs::read(f).unwrap();
        bytes
            .windows(alice[0].1.len())
            .any(|w| w == alice[0].1.as_slice())
            || bytes
                .windows(alice[1].1.len())
                .any(|w| w == alice[1].1.as_slice())
    });
    assert!(found, "the search finds a key that is in the PKI");
}
