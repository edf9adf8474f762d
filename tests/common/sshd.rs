//! Real OpenSSH servers standing in for daemon hosts: `/usr/sbin/sshd -D -f CONFIG` as root
//! on 127.0.0.1 with its own host key, port, authorized_keys and SFTP subsystem, stopped (by
//! its own pid) when dropped. The client side gets its own key and known_hosts file through
//! `--ssh-option`s: /root/.ssh is never read for keys nor written.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{find_tool, free_port, is_root, peers_required};

/// One running sshd.
pub struct Sshd {
    /// Its private folder: config, keys, known_hosts, log.
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    sshd: PathBuf,
    /// Extra sshd_config lines (e.g. `SetEnv PATH=...`; `UsePAM yes` lets a user whose
    /// password is locked log in with a key).
    extra: String,
}

impl Sshd {
    /// Starts an sshd; None (skipped visibly) without sshd, ssh-keygen or root.
    pub fn start() -> Option<Sshd> {
        Sshd::start_with("")
    }

    /// Starts an sshd with `extra` lines appended to its config.
    pub fn start_with(extra: &str) -> Option<Sshd> {
        let sshd = PathBuf::from("/usr/sbin/sshd");
        if !sshd.exists() {
            assert!(
                !peers_required(),
                "/usr/sbin/sshd missing (DOCKERTLS_REQUIRE_DOCKERD=1)"
            );
            eprintln!(
                "SKIPPED: /usr/sbin/sshd not found: install openssh-server for the deploy tests"
            );
            return None;
        }
        find_tool("ssh", "install openssh-client for the deploy tests")?;
        find_tool("ssh-keygen", "install openssh-client for the deploy tests")?;
        if !is_root() {
            assert!(!peers_required(), "the sshd tests need root");
            eprintln!("SKIPPED: sshd needs root");
            return None;
        }
        std::fs::create_dir_all("/run/sshd").unwrap();
        let dir = super::private_tempdir();
        keygen(&dir.path().join("userkey"));
        std::fs::copy(
            dir.path().join("userkey.pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        let mut server = Sshd {
            dir,
            port: free_port(),
            child: None,
            sshd,
            extra: extra.to_string(),
        };
        server.new_host_key();
        // A port picked free may be taken by another test before sshd binds it: then another.
        for attempt in 1.. {
            server.trust_host_key();
            match server.run() {
                Ok(()) => break,
                Err(log) if attempt < 5 && log.contains("Address already in use") => {
                    eprintln!("sshd: port {} was taken meanwhile; another", server.port);
                    server.port = free_port();
                }
                Err(log) => panic!("sshd exited before listening:\n{log}"),
            }
        }
        Some(server)
    }

    /// `root@127.0.0.1:PORT` (or another user).
    pub fn target(&self, user: &str) -> String {
        format!("{user}@127.0.0.1:{}", self.port)
    }

    /// The `--ssh-option` values that make ssh use this server's key and known_hosts only.
    pub fn ssh_options(&self) -> Vec<String> {
        vec![
            format!("IdentityFile={}", self.path("userkey").display()),
            "IdentitiesOnly=yes".into(),
            format!("UserKnownHostsFile={}", self.path("known_hosts").display()),
        ]
    }

    /// `--ssh-option V` for each of [`Sshd::ssh_options`], ready to append to a command line.
    pub fn ssh_args(&self) -> Vec<String> {
        self.ssh_options()
            .into_iter()
            .flat_map(|o| ["--ssh-option".to_string(), o])
            .collect()
    }

    /// A file in this server's folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Restarts the server with a NEW host key (known_hosts keeps the old one): what a
    /// reinstalled host, or a man in the middle, looks like.
    pub fn change_host_key(&mut self) {
        self.stop();
        self.new_host_key();
        if let Err(log) = self.run() {
            panic!("sshd did not start again on port {}:\n{log}", self.port);
        }
    }

    /// Stops the server (by its own pid); connections are then refused.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn new_host_key(&self) {
        let key = self.path("hostkey");
        let _ = std::fs::remove_file(&key);
        let _ = std::fs::remove_file(key.with_extension("pub"));
        keygen(&key);
    }

    /// known_hosts holds this host key for [127.0.0.1]:PORT, as after a first, checked login.
    fn trust_host_key(&self) {
        let public = std::fs::read_to_string(self.path("hostkey.pub")).unwrap();
        let mut fields = public.split_whitespace();
        let (kind, key) = (fields.next().unwrap(), fields.next().unwrap());
        std::fs::write(
            self.path("known_hosts"),
            format!("[127.0.0.1]:{} {kind} {key}\n", self.port),
        )
        .unwrap();
    }

    /// Starts sshd and waits until it says it listens; Err(its log) when it exited instead.
    fn run(&mut self) -> Result<(), String> {
        let d = self.dir.path();
        // sshd takes the first value of a keyword: the test's own lines come first.
        let config = format!(
            "{}\nPort {}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nPidFile {}\nStrictModes no\nUsePAM no\nMaxStartups 100:30:200\nSubsystem sftp /usr/lib/openssh/sftp-server\n",
            self.extra,
            self.port,
            d.join("hostkey").display(),
            d.join("authorized_keys").display(),
            d.join("sshd.pid").display(),
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        let log = d.join("sshd.log");
        let _ = std::fs::remove_file(&log);
        let mut child = Command::new(&self.sshd)
            .arg("-D")
            .arg("-f")
            .arg(d.join("sshd_config"))
            .arg("-E")
            .arg(d.join("sshd.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sshd");
        let listening = wait_listening(&mut child, self.port, &log);
        self.child = Some(child);
        listening
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "dockertls-test",
            "-f",
        ])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "ssh-keygen {}", path.display());
}

/// Waits until this sshd logs that it listens on `port` (a connect alone could reach another
/// process that took the port) and the port answers; Err(the log) when sshd exited first.
fn wait_listening(child: &mut Child, port: u16, log: &Path) -> Result<(), String> {
    let said = format!("Server listening on 127.0.0.1 port {port}.");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Ok(Some(_)) = child.try_wait() {
            return Err(text);
        }
        if text.contains(&said) && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        assert!(
            Instant::now() < deadline,
            "sshd did not listen on {port} within 60 s:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
