//! Helpers of the `authz serve` tests: run the plugin, talk to its socket, sign CRLs with the
//! PKI's CA, register the plugin with dockerd through a spec file.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    CertificateRevocationListParams, Issuer, KeyIdMethod, KeyPair, RevocationReason,
    RevokedCertParams, SerialNumber,
};

/// A running `dockertls authz serve`, killed (by its own pid) when dropped.
pub struct Plugin {
    child: Child,
    pub socket: PathBuf,
    pub log: PathBuf,
}

impl Plugin {
    /// Starts the plugin on `socket`, reading `tls_dir`, with `extra` arguments; waits until
    /// it answers.
    pub fn start(tls_dir: &Path, socket: &Path, extra: &[&str]) -> Plugin {
        let log = socket.with_extension("log");
        let stderr = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_dockertls"))
            .args(["authz", "serve", "--socket"])
            .arg(socket)
            .arg("--tls-dir")
            .arg(tls_dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut plugin = Plugin {
            child,
            socket: socket.to_path_buf(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(socket).is_err() {
            if let Ok(Some(status)) = plugin.child.try_wait() {
                panic!("authz serve exited with {status}: {}", plugin.log());
            }
            assert!(
                Instant::now() < deadline,
                "authz serve did not listen: {}",
                plugin.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        plugin
    }

    /// What it wrote on stderr so far (log lines and audit lines).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Makes `change` to the plugin's files and waits until the plugin has read it: its log
    /// holds `logged` once more than before. It polls every 200 ms, but a loaded machine may
    /// starve it for longer: the wait is for the line (up to 30 s), not for a fixed time.
    pub fn reload(&self, logged: &str, change: impl FnOnce()) {
        let count = || self.log().matches(logged).count();
        let before = count();
        change();
        let deadline = Instant::now() + Duration::from_secs(30);
        while count() <= before {
            assert!(
                Instant::now() < deadline,
                "the plugin did not log '{logged}' within 30 s of the change:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().unwrap()
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `/etc/docker/plugins/NAME.spec` naming a socket; removed when dropped.
pub struct Spec {
    pub name: String,
    path: PathBuf,
}

impl Spec {
    /// A spec file with a name unique to this process and `tag`.
    pub fn new(tag: &str, socket: &Path) -> Spec {
        let name = format!("dockertls-test-{}-{tag}", std::process::id());
        let dir = Path::new("/etc/docker/plugins");
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join(format!("{name}.spec"));
        std::fs::write(&path, format!("unix://{}\n", socket.display())).unwrap();
        Spec { name, path }
    }
}

impl Drop for Spec {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// POSTs `body` to the plugin's `path` (one connection); the status and the JSON answer.
pub fn call(socket: &Path, path: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: plugin\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let _ = stream.write_all(body);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let json = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| serde_json::from_str(body).unwrap_or(serde_json::Value::Null))
        .unwrap_or(serde_json::Value::Null);
    (status, json)
}

/// An AuthZReq body as dockerd sends it over TLS for `cert_pem`.
pub fn tls_request(cert_pem: &str, cn: &str, method: &str, uri: &str) -> Vec<u8> {
    use base64::Engine as _;
    let cert = base64::engine::general_purpose::STANDARD.encode(cert_pem);
    serde_json::to_vec(&serde_json::json!({
        "User": cn, "UserAuthNMethod": "TLS", "RequestMethod": method, "RequestUri": uri,
        "RequestHeaders": {"User-Agent": "test"}, "RequestPeerCertificates": [cert]
    }))
    .unwrap()
}

/// The client certificate PEM of `pki/clients/NAME`.
pub fn client_cert(pki: &Path, name: &str) -> String {
    std::fs::read_to_string(pki.join("clients").join(name).join("cert.pem")).unwrap()
}

/// A certificate's serial bytes.
pub fn serial_of(cert_pem: &str) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject as _;
    let der = rustls_pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    cert.raw_serial().to_vec()
}

/// A CRL revoking `serials`, signed by `ca_cert_pem` + `ca_key_pem`.
pub fn sign_crl(ca_cert_pem: &str, ca_key_pem: &str, serials: &[Vec<u8>]) -> String {
    let key = KeyPair::from_pem(ca_key_pem).unwrap();
    let issuer = Issuer::from_ca_cert_pem(ca_cert_pem, key).unwrap();
    let now = ::time::OffsetDateTime::now_utc();
    let params = CertificateRevocationListParams {
        this_update: now - ::time::Duration::minutes(1),
        next_update: now + ::time::Duration::days(30),
        crl_number: SerialNumber::from(now.unix_timestamp() as u64),
        issuing_distribution_point: None,
        revoked_certs: serials
            .iter()
            .map(|serial| RevokedCertParams {
                serial_number: SerialNumber::from_slice(serial),
                revocation_time: now,
                reason_code: Some(RevocationReason::CessationOfOperation),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    params.signed_by(&issuer).unwrap().pem().unwrap()
}

/// The PKI's CA certificate and key.
pub fn pki_ca(pki: &Path) -> (String, String) {
    (
        std::fs::read_to_string(pki.join("ca/ca.pem")).unwrap(),
        std::fs::read_to_string(pki.join("ca/ca-key.pem")).unwrap(),
    )
}

/// A forger's key for the PKI's CA name: a CRL signed with it names the real CA as its issuer
/// but its signature does not verify.
pub fn forged_ca_key() -> String {
    KeyPair::generate().unwrap().serialize_pem()
}

/// Writes `bytes` to `path` as the PKI does: a temporary file, then rename.
pub fn replace_file(path: &Path, bytes: &[u8]) {
    let temp = path.with_extension("tmp-test");
    std::fs::write(&temp, bytes).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

/// The folder holding the daemon's server-cert.pem (format 1: server/, format 2:
/// servers/NAME/).
pub fn server_folder(pki: &Path) -> PathBuf {
    let one = pki.join("server");
    if one.join("server-cert.pem").exists() {
        return one;
    }
    let servers = pki.join("servers");
    std::fs::read_dir(&servers)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.join("server-cert.pem").exists())
        .expect("a server folder")
}

/// Runs the docker CLI against `host` as the client of folder `cert_path` (None: no TLS).
pub fn docker(docker: &Path, host: &str, cert_path: Option<&Path>, args: &[&str]) -> Output {
    let mut command = Command::new(docker);
    command
        .args(args)
        .env("DOCKER_HOST", host)
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .stdin(Stdio::null());
    if let Some(cert_path) = cert_path {
        command
            .env("DOCKER_TLS_VERIFY", "1")
            .env("DOCKER_CERT_PATH", cert_path)
            .env("DOCKER_CONFIG", cert_path.join(".no-such-docker-config"));
    } else {
        command.env("DOCKER_CONFIG", "/nonexistent-docker-config");
    }
    command.output().unwrap()
}
