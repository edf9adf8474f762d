//! Helpers shared by the integration tests: run the real binary, find external peers, and
//! start a private dockerd.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Every key type `init --key-type` accepts.
pub const KEY_TYPES: [&str; 6] = [
    "ecdsa-p256",
    "ecdsa-p384",
    "ed25519",
    "rsa-2048",
    "rsa-3072",
    "rsa-4096",
];

/// The dockertls binary under test.
pub fn dockertls() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dockertls"));
    command.env_remove("DOCKERTLS_DIR").stdin(Stdio::null());
    // eco (issue 14): env and probe warn when these are set (a corporate machine's setting);
    // tests that want the warning set them themselves.
    command
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE");
    command
}

/// Runs `dockertls init --dir DIR ARGS...`.
pub fn init(dir: &Path, args: &[&str]) -> Output {
    dockertls()
        .arg("--dir")
        .arg(dir)
        .arg("init")
        .args(args)
        .output()
        .expect("run dockertls")
}

/// Runs `dockertls init` and panics with its stderr unless it succeeded.
pub fn init_ok(dir: &Path, args: &[&str]) -> Output {
    let output = init(dir, args);
    assert!(
        output.status.success(),
        "dockertls init {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Whether CI demands every external peer (dockerd, docker, openssl, pkilint, python3).
pub fn peers_required() -> bool {
    std::env::var("DOCKERTLS_REQUIRE_DOCKERD").is_ok_and(|v| v == "1")
}

/// Finds an external program; when it is missing, skips the calling test with a visible
/// message, or fails it when DOCKERTLS_REQUIRE_DOCKERD=1.
pub fn find_tool(name: &str, why: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| {
                path.metadata()
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
    });
    if found.is_none() {
        let message = format!("{name} not found on PATH: {why}");
        assert!(!peers_required(), "{message} (DOCKERTLS_REQUIRE_DOCKERD=1)");
        eprintln!("SKIPPED: {message}");
    }
    found
}

/// A `faketime [-f] SPEC PROGRAM ARGS...` for the tests: Debian's libfaketime preloaded as the
/// faketime wrapper does (`LD_PRELOAD`, `FAKETIME`; an absolute time becomes an offset from
/// now, as the wrapper makes it), without the wrapper's own named semaphore. Both the wrapper
/// and the library name theirs in /dev/shm after the pid and create them exclusively: a
/// process killed before it removed them leaves them behind, and the next process given that
/// pid fails with "sem_open: File exists" (seen on CI). Here the program is exec'd in place of
/// the shell, so it gets the shell's pid, and whatever /dev/shm holds under that pid is stale
/// and removed first. None (skipped visibly) without faketime installed.
pub fn faketime_tool(why: &str) -> Option<PathBuf> {
    static SHIM: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    find_tool("faketime", why)?;
    let shim = SHIM.get_or_init(|| {
        let lib = std::fs::read_dir("/usr/lib")
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path().join("faketime/libfaketime.so.1"))
            .chain([PathBuf::from("/usr/lib/faketime/libfaketime.so.1")])
            .find(|path| path.is_file())?;
        // Under target/ (not /tmp, where it would stay), one a test process: two test
        // binaries writing the same script while the other runs it would get ETXTBSY.
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("faketime-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let path = dir.join("faketime");
        let script = r#"#!/bin/sh
if [ "$1" = -f ]; then
  shift
  spec=$1
else
  target=$(date -d "$1" +%s) || exit 1
  offset=$((target - $(date +%s)))
  if [ "$offset" -lt 0 ]; then spec="$offset"; else spec="+$offset"; fi
fi
shift
rm -f "/dev/shm/sem.faketime_sem_$$" "/dev/shm/faketime_shm_$$"
FAKETIME="$spec" LD_PRELOAD=LIB exec "$@"
"#;
        write_program(&path, &script.replace("LIB", &lib.display().to_string()));
        Some(path)
    });
    if shim.is_none() {
        assert!(
            !peers_required(),
            "libfaketime.so.1 not found (DOCKERTLS_REQUIRE_DOCKERD=1)"
        );
        eprintln!("SKIPPED: libfaketime.so.1 not found: {why}");
    }
    shim.clone()
}

/// Whether this process runs as root (dockerd needs it).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Writes an executable script (mode 0755) through a child process: no descriptor of this
/// multi-threaded test process ever holds it open for writing. A child another test thread
/// forks would inherit such a descriptor until it execs, and running the script meanwhile fails
/// with ETXTBSY ("Text file busy").
pub fn write_program(path: &Path, text: &str) {
    use std::io::Write as _;
    let mut child = Command::new("sh")
        .args(["-c", "cat > \"$0\" && chmod 0755 \"$0\""])
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .expect("run sh");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "{}", path.display());
}

/// A port on 127.0.0.1 where nothing listens, held until the returned socket is dropped: it is
/// bound but never listening, so a connection is refused, and no other socket can take the port
/// meanwhile (a port merely picked free could be taken by a server of a test running beside).
pub fn refused_port() -> (std::os::fd::OwnedFd, u16) {
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrIn, bind, getsockname, socket,
    };
    use std::os::fd::AsRawFd as _;
    let held = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("a TCP socket");
    bind(held.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, 0)).expect("bind 127.0.0.1:0");
    let port = getsockname::<SockaddrIn>(held.as_raw_fd())
        .expect("its address")
        .port();
    (held, port)
}

/// Whether the Docker API answers GET /_ping on the unix socket `socket` (any HTTP answer: an
/// authorization plugin may deny it, and that is dockerd serving too).
fn api_answers(socket: &Path) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::os::unix::net::UnixStream::connect(socket) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    if stream
        .write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = Vec::new();
    let _ = stream.take(64 * 1024).read_to_end(&mut answer);
    answer.starts_with(b"HTTP/1.")
}

/// A dockerd started for one test from a daemon.json that dockertls generated, with only the
/// paths and hosts rewritten for the sandbox. Stopped (by its own pid) when dropped.
pub struct Dockerd {
    child: Child,
    pub port: u16,
    pub root: tempfile::TempDir,
}

impl Dockerd {
    /// Starts dockerd; returns None (skipping visibly) when dockerd or root is missing.
    pub fn start(pki: &Path) -> Option<Dockerd> {
        Dockerd::start_with(pki, |_| {})
    }

    /// Starts dockerd after `edit` has changed the (already sandboxed) daemon.json.
    pub fn start_with(pki: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> Option<Dockerd> {
        // The PKI's only server folder (or a server folder itself).
        let folder = server_folder(pki);
        let generated = std::fs::read_to_string(folder.join("daemon.json")).unwrap();
        let mut config: serde_json::Value = serde_json::from_str(&generated).unwrap();
        // The generated file points at the install dir on a daemon host; point it at the PKI.
        for (key, file) in [
            ("tlscacert", "ca.pem"),
            ("tlscert", "server-cert.pem"),
            ("tlskey", "server-key.pem"),
        ] {
            let installed = config[key].as_str().unwrap().to_string();
            let name = Path::new(&installed).file_name().unwrap();
            assert_eq!(name, Path::new(file).file_name().unwrap(), "{key}");
            config[key] = serde_json::json!(folder.join(file));
        }
        edit(&mut config);
        Dockerd::start_config(config)
    }

    /// Starts dockerd with `config`, its hosts replaced by a private socket and a free
    /// 127.0.0.1 port.
    pub fn start_config(mut config: serde_json::Value) -> Option<Dockerd> {
        let dockerd = find_tool("dockerd", "install docker.io to run the real-dockerd tests")?;
        if !is_root() {
            assert!(!peers_required(), "the dockerd tests need root");
            eprintln!("SKIPPED: dockerd needs root");
            return None;
        }
        // A port picked free may be taken by another test before dockerd binds it: then
        // another port (dockerd exits when a listener cannot be made).
        for attempt in 1.. {
            let mut daemon = Dockerd::spawn(&dockerd, &mut config);
            match daemon.wait_ready() {
                Ok(()) => return Some(daemon),
                Err(log) if attempt < 5 && log.contains("address already in use") => {
                    eprintln!("dockerd: port {} was taken meanwhile; another", daemon.port);
                }
                Err(log) => panic!("dockerd exited before serving:\n{log}"),
            }
        }
        unreachable!()
    }

    /// Starts dockerd in a new sandbox folder, on a free port.
    fn spawn(dockerd: &Path, config: &mut serde_json::Value) -> Dockerd {
        let root = tempfile::Builder::new()
            .prefix("dockertls-dockerd-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let socket = root.path().join("docker.sock");
        config["hosts"] = serde_json::json!([
            format!("unix://{}", socket.display()),
            format!("tcp://127.0.0.1:{port}")
        ]);
        let config_path = root.path().join("daemon.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        let log = std::fs::File::create(root.path().join("dockerd.log")).unwrap();
        let r = root.path();
        let child = Command::new(dockerd)
            .arg("--config-file")
            .arg(&config_path)
            .arg("--data-root")
            .arg(r.join("data"))
            .arg("--exec-root")
            .arg(r.join("exec"))
            .arg("--pidfile")
            .arg(r.join("docker.pid"))
            .args(["--iptables=false", "--bridge=none", "--storage-driver=vfs"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        Dockerd { child, port, root }
    }

    /// Waits until dockerd serves the API on its own unix socket: it makes every listener
    /// before it serves any (and exits when one fails), so then the TCP port is surely its own
    /// (a connect alone could reach another process that took the port). Err(its log) when
    /// dockerd exited first.
    fn wait_ready(&mut self) -> Result<(), String> {
        let socket = self.root.path().join("docker.sock");
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("(exit {status})\n{}", self.log()));
            }
            if api_answers(&socket) && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "dockerd did not serve on {} within 120 s:\n{}",
            socket.display(),
            self.log()
        );
    }

    /// dockerd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("dockerd.log")).unwrap_or_default()
    }

    /// Stops dockerd and waits for it, so the next start can reuse nothing by accident.
    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SIGTERM lets dockerd stop its own containerd; never kill dockerd by name: other
        // daemons may be running on this machine.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `docker version` as a client of `daemon` with DOCKER_CERT_PATH=cert_path.
/// GODEBUG makes the CLI as strict as a Go program built with current module defaults.
pub fn docker_version(docker: &Path, host: &str, cert_path: &Path) -> Output {
    Command::new(docker)
        .args(["version", "--format", "{{.Server.Version}}"])
        .env("DOCKER_HOST", host)
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", cert_path)
        .env("DOCKER_CONFIG", cert_path.join(".no-such-docker-config"))
        .env("GODEBUG", "x509negativeserial=0,rsa1024min=1")
        .env_remove("DOCKER_CONTEXT")
        .stdin(Stdio::null())
        .output()
        .expect("run docker")
}

/// File mode bits of a path (not following a symlink).
pub fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

/// Every path below `dir`, relative, sorted (for "nothing changed" checks).
pub fn tree(dir: &Path) -> Vec<(String, u32, Vec<u8>)> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, u32, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let rel = path
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let contents = if meta.is_file() {
                std::fs::read(&path).unwrap()
            } else {
                Vec::new()
            };
            out.push((rel, meta.permissions().mode() & 0o7777, contents));
            if meta.is_dir() {
                walk(base, &path, out);
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The tree without DIR's lock file (which any run may create).
pub fn files(dir: &Path) -> Vec<(String, u32, Vec<u8>)> {
    tree(dir)
        .into_iter()
        .filter(|(p, _, _)| p != ".dockertls.lock")
        .collect()
}

/// A JSON `checks` array as {id: (status, message)}.
pub fn check_map(
    checks: &serde_json::Value,
) -> std::collections::BTreeMap<String, (String, String)> {
    checks
        .as_array()
        .expect("a checks array")
        .iter()
        .map(|c| {
            let field = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (field("id"), (field("status"), field("message")))
        })
        .collect()
}

/// A refusal's stderr: one `error: ...` line, then at most one `hint: ...` line.
pub fn assert_one_error(stderr: &str, what: &str) {
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines.len() == 1 || (lines.len() == 2 && lines[1].starts_with("hint: ")),
        "{what}: not one error line (and a hint):\n{stderr}"
    );
    assert!(lines[0].starts_with("error: "), "{what}: {stderr}");
}

/// Runs `dockertls --dir DIR ARGS...`.
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    dockertls()
        .arg("--dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run dockertls")
}

/// Both streams and the exit status of a run, for a failure message.
pub fn streams(output: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `dockertls --dir DIR ARGS...`, which must succeed (else it panics showing both
/// streams); returns its stdout.
pub fn ok_in(dir: &Path, args: &[&str]) -> String {
    let output = run_in(dir, args);
    assert!(
        output.status.success(),
        "dockertls {}:\n{}",
        args.join(" "),
        streams(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A readable difference of two [`tree`]s: one line a path added, removed, or changed (in
/// mode or contents); empty when they are the same.
pub fn tree_diff(before: &[(String, u32, Vec<u8>)], after: &[(String, u32, Vec<u8>)]) -> String {
    let old: std::collections::BTreeMap<_, _> =
        before.iter().map(|(p, m, c)| (p, (m, c))).collect();
    let new: std::collections::BTreeMap<_, _> = after.iter().map(|(p, m, c)| (p, (m, c))).collect();
    let mut out = String::new();
    for (path, (mode, contents)) in &old {
        match new.get(path) {
            None => out.push_str(&format!("- {path} ({mode:04o})\n")),
            Some((m, _)) if m != mode => {
                out.push_str(&format!("~ {path}: mode {mode:04o} -> {m:04o}\n"))
            }
            Some((_, c)) if c != contents => out.push_str(&format!(
                "~ {path}: contents changed ({} -> {} bytes)\n",
                contents.len(),
                c.len()
            )),
            Some(_) => {}
        }
    }
    for (path, (mode, _)) in &new {
        if !old.contains_key(path) {
            out.push_str(&format!("+ {path} ({mode:04o})\n"));
        }
    }
    out
}

/// Panics with a readable [`tree_diff`] unless the two trees are the same.
pub fn assert_same_tree(
    before: &[(String, u32, Vec<u8>)],
    after: &[(String, u32, Vec<u8>)],
    what: &str,
) {
    let diff = tree_diff(before, after);
    assert!(diff.is_empty(), "{what}:\n{diff}");
}

/// `verify` right after a run was killed: every folder it reports is OK (each pair
/// consistent, every chain good); beside that, it may only say that a run was stopped
/// half-way (exit 3), which the next changing command finishes.
pub fn verify_consistent(dir: &Path) {
    let output = run_in(dir, &["verify", "--warn-days", "0"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let only_interrupted = output.status.code() == Some(3)
        && stdout.contains(" 0 warn, 0 fail")
        && stderr.lines().filter(|l| l.starts_with("error:")).count() == 1
        && stderr.contains("a dockertls run was stopped half-way");
    assert!(
        output.status.code() == Some(0) || only_interrupted,
        "verify after the kill:\n{}",
        streams(&output)
    );
}

/// `verify` on the whole PKI: every pair consistent, every chain good.
pub fn verify_ok(dir: &Path) {
    let output = run_in(dir, &["verify", "--warn-days", "0"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "verify after the change:\n{}",
        streams(&output)
    );
}

/// Runs `args` under strace, killing the process at the Nth call of `syscall`, for N = 1, 2,
/// ... until a run completes. After every killed run each pair must be consistent (verify
/// passes), and a plain re-run must succeed and leave a good PKI.
pub fn kill_sweep(args: &[&str], syscalls: &[&str]) {
    kill_sweep_with(args, syscalls, |_| {
        args.iter().map(|a| a.to_string()).collect()
    });
}

/// As `kill_sweep`, with the re-run's arguments computed from the PKI a killed run left.
pub fn kill_sweep_with(args: &[&str], syscalls: &[&str], rerun: impl Fn(&Path) -> Vec<String>) {
    let setup = |pki: &Path| {
        init_ok(
            pki,
            &["--host", "docker.example.com", "--client", "alice,bob"],
        );
    };
    kill_sweep_from(setup, args, syscalls, rerun);
}

/// fleet-core: as `kill_sweep_with`, on the PKI `setup` makes at the path it is given.
pub fn kill_sweep_from(
    setup: impl Fn(&Path),
    args: &[&str],
    syscalls: &[&str],
    rerun: impl Fn(&Path) -> Vec<String>,
) {
    let Some(strace) = find_tool("strace", "crash tests inject SIGKILL with strace") else {
        return;
    };
    let mut killed_runs = 0;
    for syscall in syscalls {
        for n in 1..400 {
            let work = tempfile::tempdir().unwrap();
            let pki = work.path().join("pki");
            setup(&pki);
            let kept_before = pem_files(&pki);
            let output = Command::new(&strace)
                .args(["-f", "-qq", "-o", "/dev/null", "-e"])
                .arg(format!("inject={syscall}:signal=KILL:when={n}"))
                .arg(env!("CARGO_BIN_EXE_dockertls"))
                .arg("--dir")
                .arg(&pki)
                .args(args)
                .output()
                .unwrap();
            let stderr_text = String::from_utf8_lossy(&output.stderr).into_owned();
            if stderr_text.contains("ptrace") || stderr_text.contains("Operation not permitted") {
                assert!(!peers_required(), "strace cannot trace here: {stderr_text}");
                eprintln!("SKIPPED: strace cannot trace here");
                return;
            }
            let killed = stderr_text.contains("SIGKILL")
                || output.status.code() == Some(137)
                || output.status.code().is_none();
            verify_consistent(&pki);
            if !killed {
                assert!(output.status.success(), "{syscall} #{n}: {stderr_text}");
                break;
            }
            killed_runs += 1;
            // The next run cleans up and completes.
            let again = rerun(&pki);
            let again: Vec<&str> = again.iter().map(String::as_str).collect();
            ok_in(&pki, &again);
            verify_ok(&pki);
            let leftovers: Vec<_> = tree(&pki)
                .into_iter()
                .filter(|(p, _, _)| p.starts_with(".dockertls-staging"))
                .collect();
            assert!(
                leftovers.is_empty(),
                "{syscall} #{n}: a re-run left {leftovers:?}"
            );
            // Nothing is lost: every certificate and key the PKI held before the killed run
            // is still there, in place or in a backup.
            let after: Vec<Vec<u8>> = pem_files(&pki).into_iter().map(|(_, c)| c).collect();
            for (path, contents) in &kept_before {
                assert!(
                    after.contains(contents),
                    "{syscall} #{n}: {path} as it was before the killed run is nowhere in the PKI or its backups"
                );
            }
        }
    }
    assert!(
        killed_runs > 0,
        "no run was killed: the sweep tested nothing"
    );
    eprintln!("{args:?}: {killed_runs} runs killed mid-way, every pair consistent after each");
}

/// Every certificate and key file of `pki` (`*.pem`, but CRLs, which are re-made), backups
/// included: (path, contents).
pub fn pem_files(pki: &Path) -> Vec<(String, Vec<u8>)> {
    tree(pki)
        .into_iter()
        .filter(|(path, _, _)| path.ends_with(".pem") && !path.ends_with("crl.pem"))
        .map(|(path, _, contents)| (path, contents))
        .collect()
}

/// fleet-core: the server folder of a PKI with one server (DIR/servers/NAME), or `pki`
/// itself when it is a server folder (holds server-cert.pem).
pub fn server_folder(pki: &Path) -> PathBuf {
    if pki.join("server-cert.pem").exists() {
        return pki.to_path_buf();
    }
    let mut names: Vec<PathBuf> = std::fs::read_dir(pki.join("servers"))
        .unwrap_or_else(|e| panic!("{}/servers: {e}", pki.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        names.len(),
        1,
        "{} has not exactly one server",
        pki.display()
    );
    names.pop().unwrap()
}

/// fleet-core: `relative` in the PKI's only server folder (`server_file(pki, "daemon.json")`).
pub fn server_file(pki: &Path, relative: &str) -> PathBuf {
    server_folder(pki).join(relative)
}

/// fleet-core: copies the format-1 PKI fixture (made by dockertls 0e3a3bd, server CN
/// old.example, clients alice and bob) to `dest`, with the modes git does not keep.
pub fn format1_pki(dest: &Path) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format1-pki");
    let status = Command::new("cp")
        .arg("-r")
        .arg(&fixture)
        .arg(dest)
        .status()
        .unwrap();
    assert!(status.success());
    for entry in walk(dest) {
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        let mode = if entry.is_dir() {
            0o700
        } else if name.contains("key") {
            0o400
        } else if name.ends_with(".pem") {
            0o444
        } else {
            0o644
        };
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A temporary folder none of whose parents group or others can write, not even a sticky
/// `/tmp`: what verify demands above a TLS key, and what install checks on the host. That is
/// CARGO_TARGET_TMPDIR unless the checkout itself lies below such a folder (a clone in /tmp),
/// then the home folder.
pub fn private_tempdir() -> tempfile::TempDir {
    let shared = |path: &Path| {
        path.ancestors().any(|folder| {
            std::fs::metadata(folder).is_ok_and(|m| m.permissions().mode() & 0o022 != 0)
        })
    };
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let base = if shared(&target) {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .filter(|home| !shared(home))
            .unwrap_or_else(|| PathBuf::from("/root"))
    } else {
        target
    };
    tempfile::tempdir_in(base).unwrap()
}
pub mod sshd;
