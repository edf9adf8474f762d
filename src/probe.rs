//! `probe`'s engine: connect to a daemon as the docker CLI would (mutual TLS with the client
//! folder), ask `/_ping` and `/version`, try once without a client certificate, and turn every
//! failure into a diagnosis with its fix.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{
    AlertDescription, CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct,
    ProtocolVersion, RootCertStore, SignatureScheme, StreamOwned,
};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

use crate::audit::material::{self, KeyError};
use crate::findings::{Check, Status};

/// Docker's TLS port, used when DOCKER_HOST names none.
const DEFAULT_PORT: u16 = 2376;

/// The most the probe reads of one answer. dockerd answers `/_ping` in a few bytes and
/// `/version` in under 2 KiB; anything longer is not a Docker API, and an endless answer must
/// not fill the memory.
const MAX_ANSWER: u64 = 64 * 1024;

/// Where to connect.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    /// Parses `tcp://HOST[:PORT][/]` (the port defaults to 2376, Docker's TLS port); HOST is a
    /// DNS name, an IPv4 address, or an IPv6 address in brackets. Anything else is refused: a
    /// probe of another address than the one meant would report on the wrong daemon.
    pub fn parse(input: &str) -> Result<Endpoint, String> {
        let shown = crate::escape::value(input);
        let bad = |why: &str| {
            format!(
                "'{shown}' {why}: give the daemon as tcp://HOST:PORT (e.g. tcp://daemon.example.com:2376 or tcp://[2001:db8::1]:2376)"
            )
        };
        if input.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad("contains white space or a control character"));
        }
        let Some(rest) = input.strip_prefix("tcp://") else {
            return Err(match input.split_once("://") {
                Some((scheme, _)) => bad(&format!(
                    "is not a TCP address ({}://: unix sockets and ssh:// have no TLS to probe)",
                    crate::escape::value(scheme)
                )),
                None => bad("has no tcp:// in front"),
            });
        };
        // DOCKER_HOST may end with one '/'; a path, a query or a user is not understood.
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if let Some(c) = rest
            .chars()
            .find(|c| matches!(c, '/' | '?' | '#' | '@' | '%'))
        {
            return Err(bad(&format!(
                "has '{c}' in its address part (no path, query, user or IPv6 zone)"
            )));
        }
        let (host, port) = if let Some(inside) = rest.strip_prefix('[') {
            let (inside, after) = inside
                .split_once(']')
                .ok_or_else(|| bad("has '[' without a closing ']'"))?;
            let ip: Ipv6Addr = inside.parse().map_err(|_| {
                bad(&format!(
                    "has '{}' in brackets, not an IPv6 address",
                    crate::escape::value(inside)
                ))
            })?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or_else(|| {
                    bad(&format!(
                        "has '{}' after ']' where only :PORT may follow",
                        crate::escape::value(after)
                    ))
                })?),
            };
            (ip.to_string(), port)
        } else {
            let (host, port) = match rest.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            };
            if port.is_some_and(|p| p.contains(':')) {
                return Err(bad(
                    "has more than one ':' (an IPv6 address goes in brackets: tcp://[::1]:2376)",
                ));
            }
            check_host(host).map_err(|why| bad(&why))?;
            (host.to_ascii_lowercase(), port)
        };
        let port = match port {
            None => DEFAULT_PORT,
            Some(port) => match port.parse::<u32>() {
                _ if port.is_empty() => return Err(bad("has ':' but no port after it")),
                _ if !port.bytes().all(|b| b.is_ascii_digit()) || port.len() > 5 => {
                    return Err(bad(&format!(
                        "has '{}' where the port goes, not a number",
                        crate::escape::value(port)
                    )));
                }
                Ok(n @ 1..=65535) => n as u16,
                _ => return Err(bad(&format!("has port {port}, outside 1-65535"))),
            },
        };
        Ok(Endpoint { host, port })
    }

    fn display(&self) -> String {
        if self.host.contains(':') {
            format!("tcp://[{}]:{}", self.host, self.port)
        } else {
            format!("tcp://{}:{}", self.host, self.port)
        }
    }
}

/// An IPv4 address or a DNS name (letters, digits, '-', '_' in labels of 1 to 63).
fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("has no host name".into());
    }
    let shown = crate::escape::value(host);
    if host.parse::<Ipv4Addr>().is_ok() {
        return Ok(());
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!("has '{shown}', not an IPv4 address"));
    }
    if !host.is_ascii() {
        return Err(format!(
            "has '{shown}', not ASCII: write an international name in its xn-- form"
        ));
    }
    if host.len() > 253
        || host.split('.').any(|label| {
            label.is_empty()
                || label.len() > 63
                || label.starts_with('-')
                || label.ends_with('-')
                || !label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
    {
        return Err(format!("has '{shown}', not a valid host name"));
    }
    // The TLS name rules add one: the last label may not look like a number ("a.0x1f").
    if rustls::pki_types::DnsName::try_from(host).is_err() {
        return Err(format!(
            "has '{shown}', not a valid host name (its last label looks like a number)"
        ));
    }
    Ok(())
}

/// One deadline for the whole probe: name resolution, every connection (the anonymous-client
/// and plain-HTTP checks too), every handshake, read and write draw on the same `--timeout`.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    end: Instant,
    limit: Duration,
}

impl Deadline {
    /// A deadline `limit` from now.
    pub fn after(limit: Duration) -> Deadline {
        let now = Instant::now();
        Deadline {
            end: now.checked_add(limit).unwrap_or(now),
            limit,
        }
    }

    /// The time left, or None once the deadline has passed.
    fn remaining(&self) -> Option<Duration> {
        self.end
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
    }

    /// How the limit is named in messages: "--timeout 2s".
    fn named(&self) -> String {
        let secs = self.limit.as_secs_f64();
        if secs.fract() == 0.0 {
            format!("--timeout {secs:.0}s")
        } else {
            format!("--timeout {secs}s")
        }
    }
}

fn deadline_passed() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "the probe's deadline passed")
}

/// A TCP stream whose every read and write ends at the probe's deadline: a server that
/// trickles a byte at a time cannot stretch the probe past `--timeout`.
struct Bounded {
    sock: TcpStream,
    deadline: Deadline,
}

impl Bounded {
    fn timed(result: std::io::Result<usize>) -> std::io::Result<usize> {
        result.map_err(|err| match err.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => deadline_passed(),
            _ => err,
        })
    }
}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.deadline.remaining().ok_or_else(deadline_passed)?;
        self.sock.set_read_timeout(Some(left))?;
        Self::timed(self.sock.read(buf))
    }
}

impl Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let left = self.deadline.remaining().ok_or_else(deadline_passed)?;
        self.sock.set_write_timeout(Some(left))?;
        Self::timed(self.sock.write(buf))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.sock.flush()
    }
}

/// What the probe learnt.
#[derive(Debug, Default)]
pub struct Report {
    pub endpoint: String,
    pub cert_path: PathBuf,
    pub checks: Vec<Check>,
    pub tls_version: Option<String>,
    pub server_cert: Option<ServerCertFacts>,
    pub daemon_version: Option<String>,
    pub api_version: Option<String>,
}

impl Report {
    fn record(&mut self, id: &'static str, status: Status, message: impl Into<String>) {
        self.checks.push(Check::new(id, status, message));
    }

    /// The worst check.
    pub fn status(&self) -> Status {
        crate::findings::worst(&self.checks)
    }
}

/// The server certificate as presented.
#[derive(Debug, Clone)]
pub struct ServerCertFacts {
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
    pub not_before: ::time::OffsetDateTime,
    pub not_after: ::time::OffsetDateTime,
    /// The SHA-256 of its DER (deploy: does the daemon serve the certificate just installed?).
    pub der_sha256: [u8; 32],
}

fn facts(der: &[u8]) -> Option<ServerCertFacts> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let sans = crate::names::certificate_sans(&cert)
        .iter()
        .map(ToString::to_string)
        .collect();
    Some(ServerCertFacts {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        sans,
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
        der_sha256: aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der)
            .as_ref()
            .try_into()
            .unwrap_or([0; 32]),
    })
}

/// The client folder, read and checked the way the docker CLI would use it.
struct ClientFiles {
    roots: RootCertStore,
    ca_ders: Vec<Vec<u8>>,
    ca_subjects: Vec<String>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_der: Vec<u8>,
}

/// Reads a client file, refusing anything but a regular file (a FIFO does not block the
/// probe) and never more than MAX_FILE_SIZE.
fn read_limited(path: &Path) -> Result<Vec<u8>, String> {
    crate::userfile::read_regular(path, material::MAX_FILE_SIZE).map_err(|e| e.to_string())
}

fn load_client(cert_path: &Path) -> Result<ClientFiles, String> {
    let (ca_path, cert_file, key_file) = crate::store::layout::client_files(cert_path);
    let ca_bytes = read_limited(&ca_path)?;
    let cas = material::parse_certificates(&ca_bytes)
        .map_err(|why| format!("{} {why}", ca_path.display()))?;
    let mut roots = RootCertStore::empty();
    let mut ca_subjects = Vec::new();
    for der in &cas.ders {
        if let Ok((_, ca)) = X509Certificate::from_der(der) {
            ca_subjects.push(ca.subject().to_string());
        }
        roots.add(CertificateDer::from(der.clone())).map_err(|e| {
            format!(
                "{} holds a certificate rustls cannot use as a CA ({})",
                ca_path.display(),
                tls_error_text(&e)
            )
        })?;
    }
    let cert_bytes = read_limited(&cert_file)?;
    let certs = material::parse_certificates(&cert_bytes)
        .map_err(|why| format!("{} {why}", cert_file.display()))?;
    let key_bytes = zeroize::Zeroizing::new(read_limited(&key_file)?);
    let parsed = match material::parse_private_key(&key_bytes) {
        Ok(key) => key,
        Err(KeyError::Encrypted) => {
            return Err(format!(
                "{} is encrypted: the docker CLI cannot use an encrypted key; decrypt it with openssl pkey -in {0} -out {0}.plain",
                key_file.display()
            ));
        }
        Err(KeyError::Invalid(why)) => return Err(format!("{} {why}", key_file.display())),
    };
    let cert_der = certs.ders[0].clone();
    if let Ok((_, cert)) = X509Certificate::from_der(&cert_der)
        && crate::audit::checks::key_matches(&cert, &parsed.public) == Ok(false)
    {
        return Err(format!(
            "{} does not belong to {}: the TLS handshake cannot succeed; put back the key the certificate was issued for",
            key_file.display(),
            cert_file.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| {
        format!(
            "{} has a malformed PEM block ({})",
            key_file.display(),
            material::pem_error_text(&e)
        )
    })?;
    Ok(ClientFiles {
        roots,
        ca_ders: cas.ders.clone(),
        ca_subjects,
        chain: certs.ders.into_iter().map(CertificateDer::from).collect(),
        key,
        cert_der,
    })
}

/// Verifies like the docker CLI (WebPKI against ca.pem) and keeps what the server presented.
/// With `accept_any`, only for the no-client-certificate attempt, it accepts any server
/// certificate: that attempt asks whether the daemon lets an anonymous client in, not whether
/// the server is genuine. Handshake signatures are verified either way.
#[derive(Debug)]
struct Capturing {
    inner: Arc<WebPkiServerVerifier>,
    presented: Mutex<Option<Vec<u8>>>,
    accept_any: bool,
}

impl ServerCertVerifier for Capturing {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut presented) = self.presented.lock() {
            *presented = Some(end_entity.to_vec());
        }
        if self.accept_any {
            return Ok(ServerCertVerified::assertion());
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Presents the client certificate, and remembers whether the server asked for one: the
/// evidence that a later refusal is about the certificate.
#[derive(Debug)]
struct ClientIdentity {
    key: Arc<CertifiedKey>,
    requested: AtomicBool,
}

impl ResolvesClientCert for ClientIdentity {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.requested.store(true, Ordering::Relaxed);
        Some(self.key.clone())
    }
    fn has_certs(&self) -> bool {
        true
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Where an exchange was when it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Resolve,
    Connect,
    Handshake,
    /// Waiting for (or reading) the answer to this path.
    Answer(&'static str),
}

#[derive(Debug)]
enum ExchangeError {
    /// The name did not resolve or the TCP connection was refused: the message says why.
    Connect(String),
    /// The deadline passed.
    TimedOut(Stage),
    /// The answer to this path was longer than MAX_ANSWER.
    TooLarge(&'static str),
    Tls(rustls::Error),
    Io(Stage, std::io::Error),
    Other(String),
}

fn io_to_exchange(err: std::io::Error, stage: Stage) -> ExchangeError {
    if let Some(tls) = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return ExchangeError::Tls(tls.clone());
    }
    if err.kind() == std::io::ErrorKind::TimedOut {
        return ExchangeError::TimedOut(stage);
    }
    ExchangeError::Io(stage, err)
}

/// The addresses of the endpoint, found before the deadline.
fn resolve(endpoint: &Endpoint, deadline: &Deadline) -> Result<Vec<SocketAddr>, ExchangeError> {
    if let Ok(ip) = endpoint.host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, endpoint.port)]);
    }
    let left = deadline
        .remaining()
        .ok_or(ExchangeError::TimedOut(Stage::Resolve))?;
    // getaddrinfo has no timeout: it runs on a thread of its own, left behind if the deadline
    // passes first (the process ends soon after).
    let (sender, receiver) = std::sync::mpsc::channel();
    let target = (endpoint.host.clone(), endpoint.port);
    std::thread::Builder::new()
        .name("resolve".into())
        .spawn(move || {
            let _ = sender.send(
                target
                    .to_socket_addrs()
                    .map(|addrs| addrs.collect::<Vec<_>>()),
            );
        })
        .map_err(|e| ExchangeError::Other(format!("cannot start name resolution: {e}")))?;
    match receiver.recv_timeout(left) {
        Ok(Ok(addrs)) if !addrs.is_empty() => Ok(addrs),
        Ok(Ok(_)) => Err(ExchangeError::Connect(format!(
            "{} resolves to no address: check the name in DOCKER_HOST",
            endpoint.host
        ))),
        Ok(Err(e)) => Err(ExchangeError::Connect(format!(
            "cannot resolve {}: {e}; check the name in DOCKER_HOST",
            endpoint.host
        ))),
        Err(_) => Err(ExchangeError::TimedOut(Stage::Resolve)),
    }
}

fn connect(endpoint: &Endpoint, deadline: &Deadline) -> Result<Bounded, ExchangeError> {
    let mut last = None;
    for addr in resolve(endpoint, deadline)? {
        let left = deadline
            .remaining()
            .ok_or(ExchangeError::TimedOut(Stage::Connect))?;
        match TcpStream::connect_timeout(&addr, left) {
            Ok(sock) => {
                return Ok(Bounded {
                    sock,
                    deadline: *deadline,
                });
            }
            Err(err) => last = Some((addr, err)),
        }
    }
    let Some((addr, err)) = last else {
        return Err(ExchangeError::TimedOut(Stage::Connect));
    };
    Err(match err.kind() {
        std::io::ErrorKind::ConnectionRefused => ExchangeError::Connect(format!(
            "nothing listens on {addr} (connection refused): check that dockerd runs and that \"hosts\" in /etc/docker/daemon.json has tcp://0.0.0.0:{} (or -H in the unit file)",
            endpoint.port
        )),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
            ExchangeError::TimedOut(Stage::Connect)
        }
        _ => ExchangeError::Connect(format!("cannot connect to {addr}: {err}")),
    })
}

/// What an exchange got before it ended, for the diagnosis of a failed one.
#[derive(Debug, Default)]
struct Progress {
    /// The TLS version, once the handshake completed.
    tls_version: Option<&'static str>,
    /// Bytes of the answer received.
    answered: usize,
}

fn version_name(version: ProtocolVersion) -> &'static str {
    match version {
        ProtocolVersion::TLSv1_3 => "TLS 1.3",
        ProtocolVersion::TLSv1_2 => "TLS 1.2",
        _ => "an old TLS version",
    }
}

/// One HTTP exchange over TLS, within the deadline and MAX_ANSWER. Returns the raw response.
fn exchange(
    config: Arc<ClientConfig>,
    endpoint: &Endpoint,
    path: &'static str,
    deadline: &Deadline,
    progress: &mut Progress,
) -> Result<Vec<u8>, ExchangeError> {
    let name = ServerName::try_from(endpoint.host.clone()).map_err(|e| {
        ExchangeError::Other(format!(
            "'{}' is not a valid server name ({e})",
            endpoint.host
        ))
    })?;
    let stream = connect(endpoint, deadline)?;
    let conn = ClientConnection::new(config, name).map_err(ExchangeError::Tls)?;
    let mut tls = StreamOwned::new(conn, stream);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| io_to_exchange(e, Stage::Handshake))?;
    }
    progress.tls_version = tls.conn.protocol_version().map(version_name);
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: dockertls-probe\r\nConnection: close\r\n\r\n"
    );
    let stage = Stage::Answer(path);
    tls.write_all(request.as_bytes())
        .map_err(|e| io_to_exchange(e, stage))?;
    let mut response = Vec::new();
    let read = (&mut tls).take(MAX_ANSWER + 1).read_to_end(&mut response);
    progress.answered = response.len();
    match read {
        Ok(_) => {}
        // dockerd closes without close_notify now and then; what was read is complete.
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof && !response.is_empty() => {}
        Err(err) => return Err(io_to_exchange(err, stage)),
    }
    if response.len() as u64 > MAX_ANSWER {
        return Err(ExchangeError::TooLarge(path));
    }
    Ok(response)
}

/// An HTTP response: status code, headers (lower-cased names), body.
type HttpResponse = (u16, Vec<(String, String)>, Vec<u8>);

/// Splits an HTTP response into status code, headers and body.
fn parse_http(response: &[u8]) -> Option<HttpResponse> {
    let split = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&response[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = response[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body);
    }
    Some((status, headers, body))
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&data[..end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok());
        let Some(size) = size.filter(|s| *s > 0) else {
            break;
        };
        let start = end + 2;
        let Some(chunk) = data.get(start..start + size) else {
            break;
        };
        out.extend_from_slice(chunk);
        data = data.get(start + size + 2..).unwrap_or_default();
    }
    out
}

/// The TLS client set up from the client folder: its config, and the hooks that record what
/// the server presented and whether it asked for the client certificate.
struct Client {
    files: ClientFiles,
    provider: Arc<rustls::crypto::CryptoProvider>,
    config: Arc<ClientConfig>,
    verifier: Arc<Capturing>,
    identity: Arc<ClientIdentity>,
}

/// Reads the client folder and builds the TLS client the docker CLI would be.
fn client(cert_path: &Path) -> Result<Client, String> {
    let files = load_client(cert_path)?;
    let provider = provider();
    let verifier = WebPkiServerVerifier::builder_with_provider(
        Arc::new(files.roots.clone()),
        provider.clone(),
    )
    .build()
    .map_err(|err| format!("ca.pem cannot be used to verify the daemon: {err}"))?;
    let verifier = Arc::new(Capturing {
        inner: verifier,
        presented: Mutex::new(None),
        accept_any: false,
    });
    let key = CertifiedKey::from_der(files.chain.clone(), files.key.clone_key(), &provider)
        .map_err(|err| {
            format!(
                "the client certificate and key cannot be used for TLS: {}",
                tls_error_text(&err)
            )
        })?;
    let identity = Arc::new(ClientIdentity {
        key: Arc::new(key),
        requested: AtomicBool::new(false),
    });
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|err| format!("no TLS version to offer: {}", tls_error_text(&err)))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_client_cert_resolver(identity.clone());
    Ok(Client {
        files,
        provider,
        config: Arc::new(config),
        verifier,
        identity,
    })
}

/// Probes `endpoint` with the client folder `cert_path`, all within `timeout`.
pub fn probe(
    endpoint: &Endpoint,
    cert_path: &Path,
    timeout: Duration,
    now: ::time::OffsetDateTime,
    reissue_hint: &dyn Fn(&[String], &str) -> String,
) -> Report {
    let deadline = Deadline::after(timeout);
    let mut outcome = Report {
        endpoint: endpoint.display(),
        cert_path: cert_path.to_path_buf(),
        ..Report::default()
    };
    let client = match client(cert_path) {
        Ok(client) => client,
        Err(why) => {
            outcome.record("client-files", Status::Fail, why);
            return outcome;
        }
    };
    let usable = "holds a usable ca.pem, cert.pem and key.pem";
    outcome.record(
        "client-files",
        Status::Ok,
        format!("{} {usable}", cert_path.display()),
    );
    let mut progress = Progress::default();
    let config = client.config.clone();
    let ping = exchange(config, endpoint, "/_ping", &deadline, &mut progress);
    let presented = client
        .verifier
        .presented
        .lock()
        .ok()
        .and_then(|p| p.clone());
    let evidence = Evidence {
        presented: presented.as_deref(),
        requested: client.identity.requested.load(Ordering::Relaxed),
        progress: &progress,
    };
    let context = Context {
        client: &client,
        endpoint,
        deadline: &deadline,
        now,
        reissue_hint,
    };
    match ping {
        Ok(response) => answered(&mut outcome, &response, &evidence, &context),
        // Connect: refused or unresolvable; Other: stopped before connecting.
        Err(ExchangeError::Connect(message) | ExchangeError::Other(message)) => {
            outcome.record("connect", Status::Fail, message);
            return outcome;
        }
        Err(ExchangeError::TimedOut(stage @ (Stage::Resolve | Stage::Connect))) => {
            let (id, message) = timed_out(stage, endpoint, &deadline);
            outcome.record(id, Status::Fail, message);
            return outcome;
        }
        Err(err) => diagnose(&mut outcome, err, &evidence, &context),
    }
    if let Some(der) = &presented {
        outcome.server_cert = facts(der);
    }
    record_server_expiry(&mut outcome, &progress, now);
    // Whether anyone gets in without a certificate does not depend on our ca.pem or on the
    // name dialled: ask whenever a TLS server answered, unless the deadline already ran out
    // (that is reported).
    if presented.is_some()
        && !outcome
            .checks
            .iter()
            .any(|c| c.message.starts_with(TIMED_OUT))
    {
        anonymous(&mut outcome, endpoint, &deadline, &client);
    }
    outcome
}

/// What the diagnosis of an exchange needs besides its evidence.
struct Context<'a> {
    client: &'a Client,
    endpoint: &'a Endpoint,
    deadline: &'a Deadline,
    now: ::time::OffsetDateTime,
    reissue_hint: &'a dyn Fn(&[String], &str) -> String,
}

fn accepts(endpoint: &Endpoint) -> String {
    format!("{} accepts connections", endpoint.display())
}

/// The daemon answered `/_ping`: judge the answer, then ask `/version` for its versions.
fn answered(outcome: &mut Report, response: &[u8], evidence: &Evidence<'_>, context: &Context<'_>) {
    let (endpoint, deadline) = (context.endpoint, context.deadline);
    outcome.record("connect", Status::Ok, accepts(endpoint));
    record_handshake(outcome, evidence.progress, evidence.requested);
    match parse_http(response) {
        Some((200, _, body)) if body.trim_ascii() == b"OK" => {
            outcome.record("api", Status::Ok, "/_ping answered OK")
        }
        Some((status, _, body)) => outcome.record(
            "api",
            Status::Fail,
            format!("/_ping answered HTTP {status}: {}", excerpt(&body)),
        ),
        None => outcome.record("api", Status::Fail, "/_ping's answer is not HTTP"),
    }
    // /version only adds facts: its failures are reported when they are the deadline's or
    // the size limit's, which the rest of the probe shares.
    let config = context.client.config.clone();
    match exchange(
        config,
        endpoint,
        "/version",
        deadline,
        &mut Progress::default(),
    ) {
        Ok(response) => {
            if let Some((200, _, body)) = parse_http(&response)
                && let Ok(version) = serde_json::from_slice::<serde_json::Value>(&body)
            {
                outcome.daemon_version = version["Version"].as_str().map(str::to_string);
                outcome.api_version = version["ApiVersion"].as_str().map(str::to_string);
            }
        }
        Err(ExchangeError::TimedOut(stage)) => {
            outcome.record("api", Status::Warn, timed_out(stage, endpoint, deadline).1)
        }
        Err(ExchangeError::TooLarge(path)) => outcome.record("api", Status::Warn, too_large(path)),
        Err(_) => {}
    }
}

/// A completed handshake means the server certificate was verified against ca.pem: say how
/// long it has left.
fn record_server_expiry(outcome: &mut Report, progress: &Progress, now: ::time::OffsetDateTime) {
    let Some(server) = &outcome.server_cert else {
        return;
    };
    if progress.tls_version.is_none() {
        return;
    }
    let days = (server.not_after - now).whole_days();
    // The renewal rule `rotate` and `verify` use: less than a third of its lifetime left.
    let rule = crate::pki::Window::Rule;
    let (status, message) = if crate::pki::is_due(now, server.not_before, server.not_after, rule) {
        (
            Status::Warn,
            format!(
                "the server certificate expires in {days} days ({}; due for renewal since {}): re-issue it (dockertls rotate) and restart dockerd before then",
                server.not_after.date(),
                crate::pki::renewal_due(server.not_before, server.not_after, rule).date()
            ),
        )
    } else {
        (
            Status::Ok,
            format!("valid for {days} more days, signed by the CA in ca.pem"),
        )
    };
    outcome.record("server-certificate", status, message);
}

fn record_handshake(outcome: &mut Report, progress: &Progress, requested: bool) {
    if let Some(version) = progress.tls_version {
        outcome.tls_version = Some(version.to_string());
        outcome.record(
            "tls",
            Status::Ok,
            if requested {
                format!("{version} handshake with the client certificate")
            } else {
                // client-auth says what that means.
                format!("{version} handshake; the daemon did not ask for a client certificate")
            },
        );
    }
}

/// The start of a server's answer, for a message: escaped and cut (escape::excerpt).
fn excerpt(body: &[u8]) -> String {
    crate::escape::excerpt(String::from_utf8_lossy(body).trim())
}

/// How every message about the deadline starts.
const TIMED_OUT: &str = "timed out: ";

/// The check id and message for a deadline that passed at `stage`.
fn timed_out(stage: Stage, endpoint: &Endpoint, deadline: &Deadline) -> (&'static str, String) {
    let limit = deadline.named();
    let shared = "the whole probe shares one deadline";
    match stage {
        Stage::Resolve => (
            "connect",
            format!(
                "{TIMED_OUT}{} did not resolve within {limit} ({shared}): the DNS server does not answer; check the name in DOCKER_HOST and this machine's resolver, or raise --timeout",
                endpoint.host
            ),
        ),
        Stage::Connect => (
            "connect",
            format!(
                "{TIMED_OUT}no TCP answer from {} within {limit} ({shared}): a firewall drops the traffic, the host is down, or the address is wrong; allow tcp/{} from this machine, or raise --timeout on a slow link",
                endpoint.display(),
                endpoint.port
            ),
        ),
        Stage::Handshake => (
            "tls",
            format!(
                "{TIMED_OUT}{} accepted the connection but the TLS handshake did not finish within {limit} ({shared}): the server is stalled or too slow, or this port is not dockerd's; check the port in DOCKER_HOST, or raise --timeout on a slow link",
                endpoint.display()
            ),
        ),
        Stage::Answer(path) => (
            "api",
            format!(
                "{TIMED_OUT}the answer to GET {path} did not finish within {limit} ({shared}): the daemon is stalled or too slow; look at dockerd on the host (journalctl -u docker), or raise --timeout on a slow link"
            ),
        ),
    }
}

fn too_large(path: &str) -> String {
    format!(
        "answer too large: the answer to GET {path} went past {} KiB, the most the probe reads (dockerd's is under 2 KiB): this port does not serve the Docker API, or a proxy in front of it misbehaves; check the port in DOCKER_HOST",
        MAX_ANSWER / 1024
    )
}

/// Tries the daemon without a client certificate: it must refuse.
fn anonymous(outcome: &mut Report, endpoint: &Endpoint, deadline: &Deadline, client: &Client) {
    let any_server = Arc::new(Capturing {
        inner: client.verifier.inner.clone(),
        presented: Mutex::new(None),
        accept_any: true,
    });
    let config = ClientConfig::builder_with_provider(client.provider.clone())
        .with_safe_default_protocol_versions()
        .map(|b| {
            b.dangerous()
                .with_custom_certificate_verifier(any_server)
                .with_no_client_auth()
        });
    let Ok(config) = config else { return };
    let not_checked =
        |why: String| format!("could not try a connection without a client certificate: {why}");
    let mut progress = Progress::default();
    let (status, message) = match exchange(
        Arc::new(config),
        endpoint,
        "/_ping",
        deadline,
        &mut progress,
    ) {
        Ok(response) => anonymous_answered(&response),
        Err(ExchangeError::Tls(rustls::Error::AlertReceived(alert))) => (
            Status::Ok,
            format!(
                "connections without a client certificate are refused (TLS alert {})",
                alert_name(alert)
            ),
        ),
        Err(ExchangeError::Io(_, err))
            if matches!(
                err.kind(),
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            ) =>
        {
            (
                Status::Ok,
                "connections without a client certificate are refused (the daemon closes them)"
                    .into(),
            )
        }
        Err(ExchangeError::TooLarge(path)) => (
            Status::Warn,
            format!("{ANONYMOUS_ACCEPTED} and answers it: {}", too_large(path)),
        ),
        Err(ExchangeError::TimedOut(stage)) => (
            Status::Warn,
            not_checked(timed_out(stage, endpoint, deadline).1),
        ),
        Err(ExchangeError::Connect(message) | ExchangeError::Other(message)) => {
            (Status::Warn, not_checked(message))
        }
        Err(ExchangeError::Tls(err)) => (Status::Warn, not_checked(tls_error_text(&err))),
        Err(ExchangeError::Io(_, err)) => (Status::Warn, not_checked(err.to_string())),
    };
    outcome.record("client-auth", status, message);
}

const ANONYMOUS_ACCEPTED: &str =
    "the daemon accepts a TLS connection from a client that presents no certificate";

/// The verdict when a client without a certificate got an answer (or an empty one).
fn anonymous_answered(response: &[u8]) -> (Status, String) {
    let accepted = ANONYMOUS_ACCEPTED;
    let fix = "set \"tlsverify\": true and \"tlscacert\" in daemon.json and restart dockerd";
    match parse_http(response) {
        Some((200, _, _)) => (
            Status::Fail,
            format!(
                "{accepted} and answers it: client authentication is off, so anyone who reaches the port is root; {fix}"
            ),
        ),
        Some((status, _, _)) => (
            Status::Warn,
            format!(
                "{accepted} and answers GET /_ping with HTTP {status}; dockerd with tlsverify refuses such a client during the handshake: check that nothing but dockerd answers on this port, and {fix}"
            ),
        ),
        None if response.is_empty() => (
            Status::Ok,
            "connections without a client certificate are closed without an answer".into(),
        ),
        None => (
            Status::Warn,
            format!(
                "{accepted} and sends an answer that is not HTTP: check that nothing but dockerd answers on this port"
            ),
        ),
    }
}

/// What the failed exchange showed, beyond its error.
struct Evidence<'a> {
    /// The certificate the server presented, if it got that far.
    presented: Option<&'a [u8]>,
    /// Whether the server asked for the client certificate.
    requested: bool,
    progress: &'a Progress,
}

/// The TLS alerts a server sends when it refuses a client certificate.
fn is_certificate_alert(alert: AlertDescription) -> bool {
    matches!(
        alert,
        AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::AccessDenied
            | AlertDescription::CertificateRequired
    )
}

/// The alert's name as RFC 8446 spells it.
fn alert_name(alert: AlertDescription) -> String {
    let name = match alert {
        AlertDescription::BadCertificate => "bad_certificate",
        AlertDescription::UnsupportedCertificate => "unsupported_certificate",
        AlertDescription::CertificateRevoked => "certificate_revoked",
        AlertDescription::CertificateExpired => "certificate_expired",
        AlertDescription::CertificateUnknown => "certificate_unknown",
        AlertDescription::UnknownCA => "unknown_ca",
        AlertDescription::AccessDenied => "access_denied",
        AlertDescription::CertificateRequired => "certificate_required",
        AlertDescription::HandshakeFailure => "handshake_failure",
        AlertDescription::ProtocolVersion => "protocol_version",
        AlertDescription::InsufficientSecurity => "insufficient_security",
        AlertDescription::IllegalParameter => "illegal_parameter",
        AlertDescription::DecodeError => "decode_error",
        AlertDescription::DecryptError => "decrypt_error",
        AlertDescription::InternalError => "internal_error",
        AlertDescription::UnrecognisedName => "unrecognized_name",
        AlertDescription::NoApplicationProtocol => "no_application_protocol",
        other => return format!("number {}", u8::from(other)),
    };
    name.to_string()
}

/// How a connection ended, in words (rustls' own text for an EOF carries a URL).
fn broke_off(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::UnexpectedEof => "the connection was closed".into(),
        std::io::ErrorKind::ConnectionReset => "the connection was reset".into(),
        _ => format!("the connection broke ({err})"),
    }
}

/// Says why an exchange that reached the server (it accepted the connection) failed, from its
/// error and evidence.
fn diagnose(
    outcome: &mut Report,
    err: ExchangeError,
    evidence: &Evidence<'_>,
    context: &Context<'_>,
) {
    let (endpoint, deadline) = (context.endpoint, context.deadline);
    outcome.record("connect", Status::Ok, accepts(endpoint));
    match err {
        ExchangeError::TimedOut(stage) => {
            if evidence.progress.answered > 0 {
                record_handshake(outcome, evidence.progress, evidence.requested);
            }
            let (id, message) = timed_out(stage, endpoint, deadline);
            outcome.record(id, Status::Fail, message);
        }
        ExchangeError::TooLarge(path) => {
            // An answer came, so the daemon accepted the client certificate.
            record_handshake(outcome, evidence.progress, evidence.requested);
            outcome.record("api", Status::Fail, too_large(path));
        }
        ExchangeError::Tls(tls_err) => diagnose_tls(outcome, tls_err, evidence, context),
        ExchangeError::Io(stage, e) => diagnose_broken(outcome, stage, &e, evidence, context),
        ExchangeError::Other(message) | ExchangeError::Connect(message) => {
            outcome.record("tls", Status::Fail, message);
        }
    }
}

/// The connection broke (closed, reset) without a TLS error.
fn diagnose_broken(
    outcome: &mut Report,
    stage: Stage,
    err: &std::io::Error,
    evidence: &Evidence<'_>,
    context: &Context<'_>,
) {
    let (endpoint, deadline) = (context.endpoint, context.deadline);
    let how = broke_off(err);
    if evidence.presented.is_none() {
        // Not TLS at all: maybe the API in plain HTTP.
        let message = match plain_http(endpoint, deadline) {
            PlainHttp::Yes => plain_http_message(endpoint),
            PlainHttp::No => format!(
                "{how} before {} presented a TLS certificate: this port does not speak TLS as dockerd does, or something in between cuts the connection; check the port in DOCKER_HOST",
                endpoint.display()
            ),
            PlainHttp::TimedOut => format!(
                "{how} before {} presented a TLS certificate, and a plain-HTTP request got no answer before the deadline ({}): check the port in DOCKER_HOST",
                endpoint.display(),
                deadline.named()
            ),
        };
        outcome.record("tls", Status::Fail, message);
    } else if evidence.requested {
        // A TLS 1.2 dockerd closes the connection on a client certificate it refuses.
        outcome.record(
            "tls",
            Status::Fail,
            format!("{how} right after the daemon asked for and received the client certificate: that is how dockerd refuses one"),
        );
        let rejection = client_rejection(&context.client.files, context.now);
        outcome.record("client-certificate", Status::Fail, rejection);
    } else if let Stage::Answer(path) = stage {
        record_handshake(outcome, evidence.progress, evidence.requested);
        outcome.record(
            "api",
            Status::Fail,
            format!("{how} before any answer to GET {path}, and the daemon never asked for a client certificate: this is not how dockerd behaves; check that nothing else answers on this port"),
        );
    } else {
        outcome.record(
            "tls",
            Status::Fail,
            format!("{how} during the TLS handshake, before the daemon asked for a client certificate: look at the daemon's log (journalctl -u docker) and at anything in between"),
        );
    }
}

/// The handshake failed with a TLS error: the daemon's certificate, an alert, or not TLS.
fn diagnose_tls(
    outcome: &mut Report,
    tls_err: rustls::Error,
    evidence: &Evidence<'_>,
    context: &Context<'_>,
) {
    let (endpoint, deadline) = (context.endpoint, context.deadline);
    match tls_err {
        rustls::Error::InvalidCertificate(cert_err) => {
            server_certificate_refused(outcome, cert_err, evidence, context)
        }
        rustls::Error::AlertReceived(alert)
            if is_certificate_alert(alert) && evidence.requested =>
        {
            outcome.record(
                "tls",
                Status::Fail,
                format!(
                    "the daemon refused the client certificate (TLS alert {})",
                    alert_name(alert)
                ),
            );
            let rejection = client_rejection(&context.client.files, context.now);
            outcome.record("client-certificate", Status::Fail, rejection);
        }
        rustls::Error::AlertReceived(alert) => {
            let meaning = match alert {
                AlertDescription::HandshakeFailure
                | AlertDescription::ProtocolVersion
                | AlertDescription::InsufficientSecurity => {
                    ": it found no TLS version or cipher suite in common with this client (TLS 1.2 and 1.3, as the docker CLI offers); check the daemon's TLS settings"
                }
                _ if evidence.requested => "",
                _ => {
                    ", before asking for a client certificate; look at the daemon's log (journalctl -u docker)"
                }
            };
            outcome.record(
                "tls",
                Status::Fail,
                format!(
                    "the daemon ended the TLS handshake with alert {}{meaning}",
                    alert_name(alert)
                ),
            );
        }
        rustls::Error::InvalidMessage(_)
        | rustls::Error::InappropriateMessage { .. }
        | rustls::Error::InappropriateHandshakeMessage { .. } => {
            let plain = if evidence.presented.is_none() {
                plain_http(endpoint, deadline)
            } else {
                PlainHttp::No
            };
            let message = match plain {
                PlainHttp::Yes => plain_http_message(endpoint),
                _ => format!(
                    "the port does not speak TLS as dockerd does ({}): is it the right port?",
                    tls_error_text(&tls_err)
                ),
            };
            outcome.record("tls", Status::Fail, message);
        }
        other => outcome.record(
            "tls",
            Status::Fail,
            format!("the TLS handshake failed: {}", tls_error_text(&other)),
        ),
    }
}

/// The daemon's certificate was refused by this client: say why and what to do.
fn server_certificate_refused(
    outcome: &mut Report,
    cert_err: CertificateError,
    evidence: &Evidence<'_>,
    context: &Context<'_>,
) {
    let server = evidence.presented.and_then(facts);
    if let Some(year) = pre_1970_year(evidence.presented) {
        // webpki reads no date before 1970: the certificate may be fine for Go's clients.
        outcome.record(
            "tls",
            Status::Warn,
            "the handshake stopped: this client cannot read the daemon's certificate (see server-certificate)",
        );
        outcome.checks.push(crate::findings::Check {
            hint: Some("to probe this daemon, re-issue its certificate with dates from 1970 on (dockertls rotate --server), and restart dockerd".into()),
            ..crate::findings::Check::new(
                "server-certificate",
                Status::Warn,
                format!("the daemon's certificate has a date in {year}, before 1970, which the TLS library of this probe (rustls' webpki) cannot read, so it was not checked; Go's dockerd and the docker CLI accept such dates"),
            )
        });
        return;
    }
    outcome.record(
        "tls",
        Status::Fail,
        "the daemon's certificate was refused (see server-certificate)",
    );
    let endpoint = context.endpoint;
    let message = match cert_err {
        CertificateError::UnknownIssuer | CertificateError::BadSignature => {
            issuer_mismatch(evidence.presented, &context.client.files, outcome)
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            let sans = server.as_ref().map(|s| s.sans.clone()).unwrap_or_default();
            format!(
                "{} is not in the daemon certificate's SANs ({}): clients dialling it are refused (\"certificate is valid for ..., not {}\"); dial one of those names, or re-issue the server certificate with it: {}",
                endpoint.host,
                if sans.is_empty() { "none".to_string() } else { sans.join(", ") },
                endpoint.host,
                (context.reissue_hint)(&sans, &endpoint.host)
            )
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => format!(
            "the daemon's certificate expired{}: re-issue it and restart dockerd (dockerd does not reload certificates on SIGHUP); if it should still be valid, check the clocks of both machines",
            server.as_ref().map(|s| format!(" on {}", s.not_after.date())).unwrap_or_default()
        ),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => "the daemon's certificate is not valid yet by this machine's clock: the clock here or on the machine that issued it is wrong; check both".to_string(),
        other => format!(
            "the daemon's certificate is refused: {}",
            certificate_error_text(&other)
        ),
    };
    outcome.record("server-certificate", Status::Fail, message);
}

/// The year of the presented certificate's notBefore or notAfter when it is before 1970.
fn pre_1970_year(presented: Option<&[u8]>) -> Option<i32> {
    let (_, cert) = X509Certificate::from_der(presented?).ok()?;
    let validity = cert.validity();
    [&validity.not_before, &validity.not_after]
        .into_iter()
        .map(|t| t.to_datetime().year())
        .find(|year| *year < 1970)
}

/// A rustls error in words (its own `Display` shows Rust names such as "BadEncoding").
fn tls_error_text(err: &rustls::Error) -> String {
    match err {
        rustls::Error::InvalidCertificate(cert_err) => certificate_error_text(cert_err),
        rustls::Error::AlertReceived(alert) => {
            format!("the peer sent TLS alert {}", alert_name(*alert))
        }
        rustls::Error::InvalidMessage(_) => "a TLS message that does not parse".into(),
        rustls::Error::InappropriateMessage { .. }
        | rustls::Error::InappropriateHandshakeMessage { .. } => {
            "a TLS message out of order".into()
        }
        rustls::Error::NoCertificatesPresented => "the server presented no certificate".into(),
        rustls::Error::PeerIncompatible(_) => {
            "the peer supports no TLS version, cipher suite or group in common".into()
        }
        rustls::Error::PeerMisbehaved(_) => "the peer broke the TLS protocol".into(),
        rustls::Error::DecryptError => "a TLS record could not be decrypted".into(),
        rustls::Error::General(text) => text.clone(),
        _ => "the TLS library refused the connection".into(),
    }
}

/// Why a certificate was refused, in words.
fn certificate_error_text(err: &CertificateError) -> String {
    let text = match err {
        CertificateError::BadEncoding => "the certificate cannot be decoded",
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "the certificate has expired"
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "the certificate is not valid yet"
        }
        CertificateError::Revoked => "the certificate is revoked",
        CertificateError::UnhandledCriticalExtension => {
            "the certificate has a critical extension this client does not know"
        }
        CertificateError::UnknownIssuer => "the certificate is not signed by a CA in ca.pem",
        CertificateError::BadSignature => "the certificate's signature does not verify",
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "the certificate is not valid for the name dialled"
        }
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "the certificate is not for this purpose (extendedKeyUsage)"
        }
        _ => "the certificate is of a kind this client cannot verify",
    };
    text.to_string()
}

/// Why the daemon's certificate does not chain to ca.pem, from what it shows.
fn issuer_mismatch(presented: Option<&[u8]>, client: &ClientFiles, outcome: &Report) -> String {
    let ca_path = client_ca_path(outcome);
    let Some((_, leaf)) = presented.and_then(|der| X509Certificate::from_der(der).ok()) else {
        return format!(
            "the daemon's certificate is not signed by the CA in {ca_path} (it could not be read to say more): use the ca.pem of the CA that signed the daemon's certificate"
        );
    };
    let issuer = leaf.issuer().to_string();
    let signed_by_ca = client.ca_ders.iter().any(|der| {
        X509Certificate::from_der(der)
            .is_ok_and(|(_, ca)| leaf.verify_signature(Some(ca.public_key())).is_ok())
    });
    if signed_by_ca {
        return format!(
            "the daemon's certificate is signed by the CA in {ca_path}, yet its chain was refused: check that the CA certificate in ca.pem is a valid CA (dockertls verify {})",
            outcome.cert_path.display()
        );
    }
    let fix = "ca.pem and the daemon's certificate come from different CAs: use the ca.pem of the CA that signed the daemon's certificate, or re-issue the daemon's certificate from this CA and restart dockerd";
    let same_name = client.ca_subjects.contains(&issuer);
    // The daemon's certificate's issuer: cut when long (escape::excerpt).
    let issuer = crate::escape::excerpt(&issuer);
    if same_name {
        format!(
            "the daemon's certificate is not signed by the CA in {ca_path}: it names the same issuer ({issuer}) but another key signed it (a CA re-created under the same name); {fix}"
        )
    } else {
        format!(
            "the daemon's certificate is not signed by the CA in {ca_path}: it was issued by {issuer}, while ca.pem holds [{}]; {fix}",
            client.ca_subjects.join("; ")
        )
    }
}

fn client_ca_path(outcome: &Report) -> String {
    outcome
        .cert_path
        .join(crate::store::layout::CA_CERT)
        .display()
        .to_string()
}

fn plain_http_message(endpoint: &Endpoint) -> String {
    format!(
        "{} serves the Docker API over plain HTTP: no TLS, no client certificates, so anyone who reaches the port is root on that host; add \"tls\": true, \"tlsverify\": true and the tlscacert/tlscert/tlskey paths to daemon.json and restart dockerd",
        endpoint.display()
    )
}

/// Whether the port answers the Docker API in plain HTTP.
enum PlainHttp {
    Yes,
    No,
    TimedOut,
}

fn plain_http(endpoint: &Endpoint, deadline: &Deadline) -> PlainHttp {
    let mut stream = match connect(endpoint, deadline) {
        Ok(stream) => stream,
        Err(ExchangeError::TimedOut(_)) => return PlainHttp::TimedOut,
        Err(_) => return PlainHttp::No,
    };
    let mut response = Vec::new();
    let result = stream
        .write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        .and_then(|()| stream.take(MAX_ANSWER).read_to_end(&mut response));
    let plain = parse_http(&response).is_some_and(|(_, headers, body)| {
        headers.iter().any(|(k, _)| k == "api-version") || body.trim_ascii() == b"OK"
    });
    match result {
        _ if plain => PlainHttp::Yes,
        Err(err) if err.kind() == std::io::ErrorKind::TimedOut => PlainHttp::TimedOut,
        _ => PlainHttp::No,
    }
}

/// Why the daemon refused our client certificate, judged from the local files. Only called
/// when the daemon asked for the certificate and then refused the connection.
fn client_rejection(client: &ClientFiles, now: ::time::OffsetDateTime) -> String {
    let Ok((_, cert)) = X509Certificate::from_der(&client.cert_der) else {
        return "the client certificate cannot be read".into();
    };
    let not_after = cert.validity().not_after.to_datetime();
    if now > not_after {
        return format!(
            "the client certificate expired on {}: issue a new one for this user",
            not_after.date()
        );
    }
    if now < cert.validity().not_before.to_datetime() {
        return "the client certificate is not valid yet: check the clocks".into();
    }
    if let Ok(Some(eku)) = cert.extended_key_usage()
        && !(eku.value.client_auth || eku.value.any)
    {
        return "the client certificate lacks extendedKeyUsage clientAuth, so dockerd refuses it: issue a client certificate".into();
    }
    let signed_by_local_ca = client.ca_ders.iter().any(|der| {
        X509Certificate::from_der(der)
            .is_ok_and(|(_, ca)| cert.verify_signature(Some(ca.public_key())).is_ok())
    });
    if !signed_by_local_ca {
        return format!(
            "the client certificate was issued by {}, not by the CA in ca.pem that the daemon's certificate chains to ({}): the daemon trusts that CA, not yours; get a client certificate from the daemon's CA",
            cert.issuer(),
            client.ca_subjects.join("; ")
        );
    }
    format!(
        "the client certificate ({}, issued by {}) is valid here and signed by the CA in ca.pem, yet the daemon refused it: so the daemon checks client certificates against another CA (its tlscacert); was the CA replaced? get a client certificate from the daemon's current CA, or put the right CA in the daemon's tlscacert",
        cert.subject(),
        cert.issuer()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_like_docker_host() {
        for (input, host, port) in [
            ("tcp://example.com:2376", "example.com", 2376),
            ("tcp://Example.COM:2376/", "example.com", 2376),
            ("tcp://[::1]:12376", "::1", 12376),
            ("tcp://[2001:DB8::1]", "2001:db8::1", 2376),
            ("tcp://10.0.0.1", "10.0.0.1", 2376),
            ("tcp://docker_host-1.lan:1", "docker_host-1.lan", 1),
            ("tcp://h:65535", "h", 65535),
        ] {
            let e = Endpoint::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!((e.host.as_str(), e.port), (host, port), "{input}");
        }
        assert_eq!(
            Endpoint::parse("tcp://[::1]:12376").unwrap().display(),
            "tcp://[::1]:12376"
        );
    }

    #[test]
    fn endpoints_with_anything_not_understood_are_refused() {
        for bad in [
            "",
            "unix:///var/run/docker.sock",
            "ssh://root@host",
            "http://host:2376",
            "TCP://host:2376",
            "example.com:2376",
            "tcp://",
            "tcp:///",
            "tcp://:2376",
            "tcp://host:",
            "tcp://host:0",
            "tcp://host:65536",
            "tcp://host:99999999999",
            "tcp://host:+1",
            "tcp://host:-1",
            "tcp://host:x",
            "tcp://host:23 76",
            "tcp://host:2376x",
            "tcp://host:2376:1",
            "tcp://host:2376/path",
            "tcp://host:2376//",
            "tcp://host:2376?x=1",
            "tcp://host:2376#frag",
            "tcp://user@host:2376",
            "tcp://::1",
            "tcp://::1:2376",
            "tcp://[::1]x",
            "tcp://[::1]:",
            "tcp://[::1]:2376x",
            "tcp://[::1]2376",
            "tcp://[::1",
            "tcp://[]:2376",
            "tcp://[10.0.0.1]:2376",
            "tcp://[fe80::1%eth0]:2376",
            "tcp://[::1]]:2376",
            "tcp://999.1.1.1:2376",
            "tcp://1.2.3:2376",
            "tcp://-host:2376",
            "tcp://host-:2376",
            "tcp://a..b:2376",
            "tcp://.host:2376",
            "tcp://host.:2376",
            "tcp://hö st:2376",
            "tcp://höst:2376",
            "tcp://ho*st:2376",
            "tcp://host.0x1f:2376",
            "tcp://a.123:2376",
            "tcp://host\x1b[2J:2376",
            "tcp://host\n:2376",
            "tcp://host:2376\r",
            "tcp://\u{202e}host:2376",
            " tcp://host:2376",
            "tcp://host:2376 ",
        ] {
            let err = Endpoint::parse(bad).expect_err(bad);
            assert!(err.contains("tcp://HOST:PORT"), "{bad}: {err}");
        }
        let long = format!("tcp://{}:2376", "a".repeat(64));
        assert!(Endpoint::parse(&long).is_err());
    }

    #[test]
    fn tls_errors_are_told_in_words_not_rust_names() {
        for err in [
            rustls::Error::InvalidCertificate(CertificateError::BadEncoding),
            rustls::Error::InvalidCertificate(CertificateError::UnhandledCriticalExtension),
            rustls::Error::AlertReceived(AlertDescription::BadCertificate),
            rustls::Error::AlertReceived(AlertDescription::Unknown(200)),
            rustls::Error::NoCertificatesPresented,
            rustls::Error::DecryptError,
        ] {
            let text = tls_error_text(&err);
            let rust_name = format!("{err:?}");
            let rust_name = rust_name.split('(').next_back().unwrap_or_default();
            assert!(!text.contains(rust_name.trim_end_matches(')')), "{text}");
            assert!(text.contains(' ') && !text.contains("::"), "{text}");
        }
    }

    #[test]
    fn the_deadline_is_named_as_the_flag_is_given() {
        assert_eq!(
            Deadline::after(Duration::from_secs(2)).named(),
            "--timeout 2s"
        );
        assert_eq!(
            Deadline::after(Duration::from_secs_f64(0.5)).named(),
            "--timeout 0.5s"
        );
        assert!(Deadline::after(Duration::ZERO).remaining().is_none());
    }

    #[test]
    fn http_responses_parse_with_and_without_chunks() {
        let (status, headers, body) =
            parse_http(b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2\r\n\r\nOK")
                .unwrap();
        assert_eq!((status, body.as_slice()), (200, b"OK".as_slice()));
        assert!(headers.contains(&("api-version".into(), "1.41".into())));
        let (_, _, body) = parse_http(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n2\r\n\"}\r\n0\r\n\r\n").unwrap();
        assert_eq!(body, b"{\"a\"}");
        assert!(parse_http(b"garbage").is_none());
    }
}
