//! `verify --daemon-config` against a real dockerd: every daemon.json form below is judged by
//! verify, then started with a private dockerd exactly as written. Where verify's `tlsverify`
//! check is ok, plain HTTP and TLS without a client certificate get no API answer (and a client
//! certificate does, so the listener was really there); where it fails, dockerd indeed serves
//! plain HTTP, or TLS to anyone, or refuses to start, as verify's message says.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::server_folder;
use common::{dockertls, find_tool, free_port, init_ok, is_root, peers_required};

/// One daemon.json form: SOCK is a private unix socket, PORT a free 127.0.0.1 port, TLS the
/// server's TLS files (`"tlscacert": ..., "tlscert": ..., "tlskey": ...`). `starts`: whether
/// the real dockerd 20.10 starts with it (measured).
struct Form {
    name: &'static str,
    json: &'static str,
    starts: bool,
}

const FORMS: &[Form] = &[
    // tlsverify ok: TLS with client certificates on every TCP listener, or no TCP listener.
    Form {
        name: "tcp and tlsverify",
        json: r#"{"hosts": ["unix://SOCK", "tcp://127.0.0.1:PORT"], "tlsverify": true, TLS}"#,
        starts: true,
    },
    Form {
        name: "tls alone requires client certificates",
        json: r#"{"hosts": ["unix://SOCK", "tcp://127.0.0.1:PORT"], "tls": true, TLS}"#,
        starts: true,
    },
    Form {
        name: "tls false is overridden by tlsverify",
        json: r#"{"hosts": ["unix://SOCK", "tcp://127.0.0.1:PORT"], "tls": false, "tlsverify": true, TLS}"#,
        starts: true,
    },
    Form {
        name: "tlsverify null still turns TLS on",
        json: r#"{"hosts": ["unix://SOCK", "tcp://127.0.0.1:PORT"], "tlsverify": null, TLS}"#,
        starts: true,
    },
    Form {
        name: "no scheme with tlsverify",
        json: r#"{"hosts": ["unix://SOCK", "127.0.0.1:PORT"], "tlsverify": true, TLS}"#,
        starts: true,
    },
    Form {
        name: "whitespace with tlsverify",
        json: r#"{"hosts": ["unix://SOCK", " \ttcp://127.0.0.1:PORT\n"], "tlsverify": true, TLS}"#,
        starts: true,
    },
    Form {
        name: "url parts with tlsverify",
        json: r#"{"hosts": ["unix://SOCK", "tcp://u@127.0.0.1:PORT?x#y"], "tlsverify": true, TLS}"#,
        starts: true,
    },
    Form {
        name: "doubled scheme with tlsverify",
        json: r#"{"hosts": ["unix://unix://SOCK", "tcp://tcp://127.0.0.1:PORT"], "tlsverify": true, TLS}"#,
        starts: true,
    },
    Form {
        name: "duplicate key, the last true",
        json: r#"{"hosts": ["unix://SOCK", "tcp://127.0.0.1:PORT"], "tlsverify": false, "tlsverify": true, TLS}"#,
        starts: true,
    },
    Form {
        name: "unix only",
        json: r#"{"hosts": ["unix://SOCK"]}"#,
        starts: true,
    },
    Form {
        name: "tlsverify without tlskey",
        json: r#"{"hosts": ["unix://SOCK", "tcp://127.0.0.1:PORT"], "tlsverify": true, "tlscacert": "TLSDIR/ca.pem", "tlscert": "TLSDIR/server-cert.pem"}"#,
        starts: false,
    },
    // An object under a non-object key: its "tlsverify" counts as set (so TLS with client
    // certificates), whatever its value; verify fails the file for the confusion, not the port.
    Form {
        name: "nested tlsverify true",
        json: r#"{"hosts": ["unix://SOCK", "tcp://127.0.0.1:PORT"], "x": {"tlsverify": true}, TLS}"#,
        starts: true,
    },
    Form {
        name: "nested tlsverify false",
        json: r#"{"hosts": ["unix://SOCK", "tcp://127.0.0.1:PORT"], "x": {"tlsverify": false}, TLS}"#,
        starts: true,
    },
    // tlsverify warn: fd:// without client certificates (dockerd needs systemd's sockets).
    Form {
        name: "fd without systemd or tlsverify",
        json: r#"{"hosts": ["unix://SOCK", "fd://"]}"#,
        starts: false,
    },
    // tlsverify fail: plain HTTP.
    Form {
        name: "tcp without tls keys",
        json: r#"{"hosts": ["unix://SOCK", "tcp://127.0.0.1:PORT"], TLS}"#,
        starts: true,
    },
    Form {
        name: "no scheme without tlsverify",
        json: r#"{"hosts": ["unix://SOCK", "127.0.0.1:PORT"], TLS}"#,
        starts: true,
    },
    Form {
        name: "port only without tlsverify",
        json: r#"{"hosts": ["unix://SOCK", ":PORT"]}"#,
        starts: true,
    },
    Form {
        name: "empty tcp host without tlsverify",
        json: r#"{"hosts": ["unix://SOCK", "tcp://:PORT"]}"#,
        starts: true,
    },
    Form {
        name: "whitespace without tlsverify",
        json: r#"{"hosts": ["unix://SOCK", "  tcp://127.0.0.1:PORT "]}"#,
        starts: true,
    },
    Form {
        name: "tls false",
        json: r#"{"hosts": ["unix://SOCK", "tcp://127.0.0.1:PORT"], "tls": false, TLS}"#,
        starts: true,
    },
    Form {
        name: "tls null",
        json: r#"{"hosts": ["unix://SOCK", "tcp://127.0.0.1:PORT"], "tls": null, TLS}"#,
        starts: true,
    },
    Form {
        name: "url parts without tlsverify",
        json: r#"{"hosts": ["unix://SOCK", "tcp://u@127.0.0.1:PORT?x"]}"#,
        starts: true,
    },
    Form {
        name: "text after the object is ignored",
        json: r#"{"hosts": ["unix://SOCK", "tcp://127.0.0.1:PORT"]} {"tlsverify": true, TLS}"#,
        starts: true,
    },
    // serde_json refuses these, Go does not: dockerd starts and serves plain HTTP, so verify
    // must not say "will not start".
    Form {
        name: "nesting deeper than serde_json reads, without tlsverify",
        json: r#"{"hosts": ["unix://SOCK", "tcp://127.0.0.1:PORT"], "builder": {"junk": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}"#,
        starts: true,
    },
    Form {
        name: "a lone surrogate escape, without tlsverify",
        json: r#"{"hosts": ["unix://SOCK", "tcp://127.0.0.1:PORT"], "labels": ["a=\ud800"]}"#,
        starts: true,
    },
    // tlsverify fail: TLS without client certificates.
    Form {
        name: "tlsverify false",
        json: r#"{"hosts": ["unix://SOCK", "tcp://127.0.0.1:PORT"], "tlsverify": false, TLS}"#,
        starts: true,
    },
    Form {
        name: "tls true, tlsverify false",
        json: r#"{"hosts": ["unix://SOCK", "tcp://127.0.0.1:PORT"], "tls": true, "tlsverify": false, TLS}"#,
        starts: true,
    },
    Form {
        name: "duplicate key, the last false",
        json: r#"{"hosts": ["unix://SOCK", "tcp://127.0.0.1:PORT"], "tlsverify": true, "tlsverify": false, TLS}"#,
        starts: true,
    },
    // dockerd refuses to start.
    Form {
        name: "upper-case scheme",
        json: r#"{"hosts": ["unix://SOCK", "TCP://127.0.0.1:PORT"]}"#,
        starts: false,
    },
    Form {
        name: "ssh scheme",
        json: r#"{"hosts": ["unix://SOCK", "ssh://127.0.0.1:PORT"]}"#,
        starts: false,
    },
    Form {
        name: "npipe on linux",
        json: r#"{"hosts": ["unix://SOCK", "npipe:////./pipe/docker_engine", "tcp://127.0.0.1:PORT"]}"#,
        starts: false,
    },
    Form {
        name: "fd without systemd",
        json: r#"{"hosts": ["unix://SOCK", "fd://"], "tlsverify": true, TLS}"#,
        starts: false,
    },
    Form {
        name: "hosts a string",
        json: r#"{"hosts": "tcp://127.0.0.1:PORT"}"#,
        starts: false,
    },
    Form {
        name: "Hosts capitalised",
        json: r#"{"Hosts": ["unix://SOCK", "tcp://127.0.0.1:PORT"]}"#,
        starts: false,
    },
    Form {
        name: "TLSVerify capitalised",
        json: r#"{"hosts": ["unix://SOCK", "tcp://127.0.0.1:PORT"], "TLSVerify": true, TLS}"#,
        starts: false,
    },
    Form {
        name: "tlsverify a string",
        json: r#"{"hosts": ["unix://SOCK", "tcp://127.0.0.1:PORT"], "tlsverify": "true", TLS}"#,
        starts: false,
    },
    Form {
        name: "tcp with a path",
        json: r#"{"hosts": ["unix://SOCK", "tcp://127.0.0.1:PORT/docker"]}"#,
        starts: false,
    },
    Form {
        name: "socket path without a scheme",
        json: r#"{"hosts": ["unix://SOCK", "SOCK.2", "tcp://127.0.0.1:PORT"]}"#,
        starts: false,
    },
    Form {
        name: "port out of range",
        json: r#"{"hosts": ["unix://SOCK", "tcp://127.0.0.1:99999", "tcp://127.0.0.1:PORT"]}"#,
        starts: false,
    },
    Form {
        name: "escaped ASCII in the host",
        json: r#"{"hosts": ["unix://SOCK", "tcp://127.0.0.%31:PORT"]}"#,
        starts: false,
    },
    Form {
        name: "IPv6 brackets without a port",
        json: r#"{"hosts": ["unix://SOCK", "tcp://[::1]", "tcp://127.0.0.1:PORT"]}"#,
        starts: false,
    },
];

/// What the running dockerd answered on PORT.
#[derive(Debug)]
enum Outcome {
    Refused,
    Running {
        plain: bool,
        tls_without_cert: bool,
        tls_with_cert: bool,
    },
}

/// A dockerd started from a daemon.json as written; stopped by its own pid when dropped.
struct Daemon {
    child: Child,
    dir: PathBuf,
}

impl Daemon {
    fn start(dockerd: &Path, dir: &Path) -> Daemon {
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let child = Command::new(dockerd)
            .arg("--config-file")
            .arg(dir.join("daemon.json"))
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .args(["--iptables=false", "--bridge=none", "--storage-driver=vfs"])
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH")
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        Daemon {
            child,
            dir: dir.to_path_buf(),
        }
    }

    /// Waits until dockerd exits or answers on its unix socket (by then every listener exists).
    fn ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if UnixStream::connect(self.dir.join("docker.sock"))
                .is_ok_and(|mut stream| api_answers(&mut stream))
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "dockerd neither served nor exited within 90 s:\n{}",
            self.log()
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SIGTERM by pid lets dockerd stop its containerd; never by name.
            let _ = Command::new("kill")
                .arg(self.child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        // dockerd bind-mounts its data root; a dockerd stopped early can leave the mount.
        let data = self.dir.join("data");
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        if mounts
            .lines()
            .any(|line| line.split(' ').nth(1) == data.to_str())
        {
            let _ = Command::new("umount").arg(&data).status();
        }
    }
}

/// Writes DIR/daemon.json from `template` with PORT a free port and starts dockerd from it;
/// the port, the file, the daemon and whether it serves. A port picked free may be taken by
/// another test before dockerd binds it: then dockerd starts again on another.
fn start_on_a_free_port(dockerd: &Path, dir: &Path, template: &str) -> (u16, String, Daemon, bool) {
    for attempt in 1.. {
        let port = free_port();
        let json = template.replace("PORT", &port.to_string());
        std::fs::write(dir.join("daemon.json"), &json).unwrap();
        let mut daemon = Daemon::start(dockerd, dir);
        let ready = daemon.ready();
        if ready || attempt == 5 || !daemon.log().contains("address already in use") {
            return (port, json, daemon, ready);
        }
        eprintln!("dockerd: port {port} was taken meanwhile; another");
    }
    unreachable!()
}

/// Sends GET /_ping over plain HTTP; true when the Docker API answered.
fn api_answers(stream: &mut (impl Read + Write)) -> bool {
    let request = b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n";
    if stream.write_all(request).is_err() {
        return false;
    }
    let mut response = Vec::new();
    let _ = stream.take(64 * 1024).read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).to_ascii_lowercase();
    text.starts_with("http/1.") && text.contains("\r\napi-version:")
}

fn plain_http_answers(port: u16) -> bool {
    ["127.0.0.1", "::1"].iter().any(|ip| {
        TcpStream::connect((*ip, port)).is_ok_and(|mut stream| {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            api_answers(&mut stream)
        })
    })
}

/// GET /_ping over TLS (Python's strict client), with or without the client certificate.
fn tls_answers(python: &Path, port: u16, client: &Path, with_cert: bool) -> bool {
    let mut command = Command::new(python);
    command
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/tls_client.py"))
        .arg("docker.example.com")
        .arg(port.to_string())
        .arg(client.join("ca.pem"));
    if with_cert {
        command
            .arg(client.join("cert.pem"))
            .arg(client.join("key.pem"));
    }
    command.output().is_ok_and(|o| o.status.success())
}

#[test]
fn verify_verdicts_hold_for_a_real_dockerd_started_from_each_form() {
    let Some(dockerd) = find_tool("dockerd", "install docker.io to run the real-dockerd tests")
    else {
        return;
    };
    let Some(python) = find_tool("python3", "the TLS client is Python's ssl module") else {
        return;
    };
    if !is_root() {
        assert!(!peers_required(), "the dockerd tests need root");
        eprintln!("SKIPPED: dockerd needs root");
        return;
    }
    // Not under the shared /tmp: verify rightly fails TLS files below a folder others can write.
    let work = common::private_tempdir();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "docker.example.com", "--client", "alice"]);
    let tls = work.path().join("tls");
    std::fs::create_dir(&tls).unwrap();
    for (name, mode) in [
        ("ca.pem", 0o444),
        ("server-cert.pem", 0o444),
        ("server-key.pem", 0o400),
    ] {
        std::fs::copy(server_folder(&pki).join(name), tls.join(name)).unwrap();
        std::fs::set_permissions(tls.join(name), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let client = pki.join("clients/alice");
    let tls_keys = r#""tlscacert": "TLSDIR/ca.pem", "tlscert": "TLSDIR/server-cert.pem", "tlskey": "TLSDIR/server-key.pem""#;

    let check = |index: usize, form: &Form| {
        let dir = work.path().join(format!("form{index}"));
        std::fs::create_dir(&dir).unwrap();
        let template = form
            .json
            .replace("TLS}", &format!("{tls_keys}}}"))
            .replace("TLSDIR", tls.to_str().unwrap())
            .replace("SOCK", dir.join("docker.sock").to_str().unwrap());
        let (port, json, daemon, ready) = start_on_a_free_port(&dockerd, &dir, &template);
        let output = dockertls()
            .args(["verify", "--format", "json", "--daemon-config"])
            .arg(dir.join("daemon.json"))
            .output()
            .unwrap();
        let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let checks = common::check_map(&document["targets"][0]["checks"]);
        let (verdict, message) = checks["tlsverify"].clone();

        let outcome = if ready {
            Outcome::Running {
                plain: plain_http_answers(port),
                tls_without_cert: tls_answers(&python, port, &client, false),
                tls_with_cert: tls_answers(&python, port, &client, true),
            }
        } else {
            Outcome::Refused
        };
        let log = daemon.log();
        drop(daemon);
        let context = format!(
            "{}: {json}\nverify: {checks:?}\ndockerd: {outcome:?}\n{}",
            form.name,
            log.lines()
                .filter(|l| l.contains("level=error")
                    || l.contains("failed")
                    || l.contains("unable"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert_eq!(
            matches!(outcome, Outcome::Running { .. }),
            form.starts,
            "{context}"
        );
        match (verdict.as_str(), &outcome) {
            // Nothing reachable without a client certificate; with one, the API answers
            // wherever verify says a TCP listener is.
            (
                "ok",
                Outcome::Running {
                    plain,
                    tls_without_cert,
                    tls_with_cert,
                },
            ) => {
                assert!(!plain && !tls_without_cert, "{context}");
                assert_eq!(*tls_with_cert, message.contains("tcp://"), "{context}");
            }
            ("ok", Outcome::Refused) => {}
            ("fail", Outcome::Refused) => {
                assert!(message.contains("will not start"), "{context}");
            }
            (
                "fail",
                Outcome::Running {
                    plain,
                    tls_without_cert,
                    ..
                },
            ) => {
                if message.contains("plain HTTP") {
                    assert!(plain, "{context}");
                } else if message.contains("was not judged: it may") {
                    // verify could not read the file as dockerd does, and says so; here the
                    // forms are ones that do serve plain HTTP, which "it may" must not hide.
                    assert!(plain, "{context}");
                } else {
                    assert!(message.contains("without a certificate"), "{context}");
                    assert!(*tls_without_cert && !plain, "{context}");
                }
            }
            ("warn", Outcome::Refused) => {
                assert!(message.contains("fd://"), "{context}");
            }
            _ => panic!("unexpected verdict {verdict}: {context}"),
        }
        // A form verify passes overall must not expose anything either.
        if output.status.code() == Some(0) {
            assert_eq!(verdict, "ok", "{context}");
        }
    };
    // A few daemons at a time: each one starts its own containerd.
    for (chunk_index, chunk) in FORMS.chunks(3).enumerate() {
        std::thread::scope(|scope| {
            for (offset, form) in chunk.iter().enumerate() {
                let check = &check;
                scope.spawn(move || check(chunk_index * 3 + offset, form));
            }
        });
    }
}
