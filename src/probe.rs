//! `probe`'s engine: connect to a daemon as the docker CLI would (mutual TLS with the client
//! folder), ask `/_ping` and `/version`, try once without a client certificate, and turn every
//! failure into a diagnosis with its fix.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore,
    SignatureScheme, StreamOwned,
};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

use crate::audit::material::{self, KeyError};
use crate::audit::{Check, Status};

/// Where to connect.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    /// Parses `tcp://HOST:PORT` (the port defaults to 2376, Docker's TLS port).
    pub fn parse(input: &str) -> Result<Endpoint, String> {
        let rest = input.strip_prefix("tcp://").ok_or_else(|| {
            format!("'{input}': give the daemon as tcp://HOST:PORT (unix sockets and ssh:// have no TLS to probe)")
        })?;
        let rest = rest.trim_end_matches('/');
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("'{input}': unclosed '['"))?;
            (host.to_string(), after.strip_prefix(':'))
        } else {
            match rest.rsplit_once(':') {
                Some((host, port)) if !host.contains(':') => (host.to_string(), Some(port)),
                _ => (rest.to_string(), None),
            }
        };
        if host.is_empty() || host.contains('/') {
            return Err(format!("'{input}': no host name"));
        }
        let port = match port {
            None => 2376,
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("'{input}': '{port}' is not a port"))?,
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

/// What the probe learnt.
#[derive(Debug, Default)]
pub struct Outcome {
    pub endpoint: String,
    pub cert_path: PathBuf,
    pub checks: Vec<Check>,
    pub tls_version: Option<String>,
    pub server_cert: Option<ServerCertFacts>,
    pub daemon_version: Option<String>,
    pub api_version: Option<String>,
}

impl Outcome {
    fn record(&mut self, id: &'static str, status: Status, message: impl Into<String>) {
        self.checks.push(Check {
            id,
            status,
            message: message.into(),
        });
    }

    /// The worst check.
    pub fn status(&self) -> Status {
        crate::audit::worst(&self.checks)
    }
}

/// The server certificate as presented.
#[derive(Debug, Clone)]
pub struct ServerCertFacts {
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
    pub not_after: ::time::OffsetDateTime,
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
        not_after: cert.validity().not_after.to_datetime(),
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

fn read_limited(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() || meta.len() > material::MAX_FILE_SIZE {
        return Err(format!("{} is not a certificate file", path.display()));
    }
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn load_client(cert_path: &Path) -> Result<ClientFiles, String> {
    let ca_path = cert_path.join("ca.pem");
    let cert_file = cert_path.join("cert.pem");
    let key_file = cert_path.join("key.pem");
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
                "{} holds a certificate rustls cannot use as a CA ({e})",
                ca_path.display()
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
    let key = PrivateKeyDer::from_pem_slice(&key_bytes)
        .map_err(|e| format!("{}: {e}", key_file.display()))?;
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
#[derive(Debug)]
struct Capturing {
    inner: Arc<WebPkiServerVerifier>,
    presented: Mutex<Option<Vec<u8>>>,
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

/// Accepts any server certificate: only for the no-client-certificate attempt, which asks
/// whether the daemon lets an anonymous client in, not whether the server is genuine.
#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn connect(endpoint: &Endpoint, timeout: Duration) -> Result<TcpStream, (Status, String)> {
    let addrs: Vec<SocketAddr> = (endpoint.host.as_str(), endpoint.port)
        .to_socket_addrs()
        .map_err(|e| {
            (
                Status::Fail,
                format!(
                    "cannot resolve {}: {e}; check the name in DOCKER_HOST",
                    endpoint.host
                ),
            )
        })?
        .collect();
    let mut last = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(stream) => {
                let _ = stream.set_read_timeout(Some(timeout));
                let _ = stream.set_write_timeout(Some(timeout));
                return Ok(stream);
            }
            Err(err) => last = Some((addr, err)),
        }
    }
    let Some((addr, err)) = last else {
        return Err((
            Status::Fail,
            format!("{} resolves to no address", endpoint.host),
        ));
    };
    Err((
        Status::Fail,
        match err.kind() {
            std::io::ErrorKind::ConnectionRefused => format!(
                "nothing listens on {addr} (connection refused): check that dockerd runs and that \"hosts\" in /etc/docker/daemon.json has tcp://0.0.0.0:{} (or -H in the unit file)",
                endpoint.port
            ),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => format!(
                "no answer from {addr} within {}s: a firewall drops the traffic, or the address is wrong; allow tcp/{} from this machine",
                timeout.as_secs_f64(),
                endpoint.port
            ),
            _ => format!("cannot connect to {addr}: {err}"),
        },
    ))
}

/// One HTTP exchange over TLS. Returns the raw response, or the rustls/io error.
fn exchange(
    config: Arc<ClientConfig>,
    endpoint: &Endpoint,
    path: &str,
    timeout: Duration,
) -> Result<(Vec<u8>, Option<String>), ExchangeError> {
    let stream = connect(endpoint, timeout).map_err(ExchangeError::Connect)?;
    let name = ServerName::try_from(endpoint.host.clone()).map_err(|e| {
        ExchangeError::Other(format!(
            "'{}' is not a valid server name ({e})",
            endpoint.host
        ))
    })?;
    let conn = ClientConnection::new(config, name).map_err(ExchangeError::Tls)?;
    let mut tls = StreamOwned::new(conn, stream);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(io_to_exchange)?;
    }
    let version = tls
        .conn
        .protocol_version()
        .map(|v| format!("{v:?}").replace("TLSv1_", "TLS 1."));
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: dockertls-probe\r\nConnection: close\r\n\r\n"
    );
    tls.write_all(request.as_bytes()).map_err(io_to_exchange)?;
    let mut response = Vec::new();
    match tls.read_to_end(&mut response) {
        Ok(_) => {}
        // dockerd closes without close_notify now and then; what was read is complete.
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof && !response.is_empty() => {}
        Err(err) => return Err(io_to_exchange(err)),
    }
    Ok((response, version))
}

#[derive(Debug)]
enum ExchangeError {
    Connect((Status, String)),
    Tls(rustls::Error),
    Io(std::io::Error),
    Other(String),
}

fn io_to_exchange(err: std::io::Error) -> ExchangeError {
    if let Some(tls) = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return ExchangeError::Tls(tls.clone());
    }
    ExchangeError::Io(err)
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

/// Probes `endpoint` with the client folder `cert_path`.
pub fn probe(
    endpoint: &Endpoint,
    cert_path: &Path,
    timeout: Duration,
    now: ::time::OffsetDateTime,
    reissue_hint: &dyn Fn(&[String], &str) -> String,
) -> Outcome {
    let mut outcome = Outcome {
        endpoint: endpoint.display(),
        cert_path: cert_path.to_path_buf(),
        ..Outcome::default()
    };
    let client = match load_client(cert_path) {
        Ok(client) => {
            outcome.record(
                "client-files",
                Status::Ok,
                format!(
                    "{} holds a usable ca.pem, cert.pem and key.pem",
                    cert_path.display()
                ),
            );
            client
        }
        Err(why) => {
            outcome.record("client-files", Status::Fail, why);
            return outcome;
        }
    };
    let provider = provider();
    let verifier = match WebPkiServerVerifier::builder_with_provider(
        Arc::new(client.roots.clone()),
        provider.clone(),
    )
    .build()
    {
        Ok(verifier) => Arc::new(Capturing {
            inner: verifier,
            presented: Mutex::new(None),
        }),
        Err(err) => {
            outcome.record(
                "client-files",
                Status::Fail,
                format!("ca.pem cannot be used to verify the daemon: {err}"),
            );
            return outcome;
        }
    };
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .and_then(|builder| {
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier.clone())
                .with_client_auth_cert(client.chain.clone(), client.key.clone_key())
        });
    let config = match config {
        Ok(config) => Arc::new(config),
        Err(err) => {
            outcome.record(
                "client-files",
                Status::Fail,
                format!("the client certificate and key cannot be used for TLS: {err}"),
            );
            return outcome;
        }
    };

    match exchange(config.clone(), endpoint, "/_ping", timeout) {
        Ok((response, version)) => {
            outcome.record(
                "connect",
                Status::Ok,
                format!("{} accepts connections", endpoint.display()),
            );
            outcome.tls_version = version.clone();
            outcome.record(
                "tls",
                Status::Ok,
                format!(
                    "{} handshake with the client certificate",
                    version.unwrap_or_default()
                ),
            );
            match parse_http(&response) {
                Some((200, _, body)) if body.trim_ascii() == b"OK" => {
                    outcome.record("api", Status::Ok, "/_ping answered OK")
                }
                Some((status, _, body)) => outcome.record(
                    "api",
                    Status::Fail,
                    format!(
                        "/_ping answered HTTP {status}: {}",
                        String::from_utf8_lossy(&body).trim()
                    ),
                ),
                None => outcome.record("api", Status::Fail, "/_ping's answer is not HTTP"),
            }
            if let Ok((response, _)) = exchange(config, endpoint, "/version", timeout)
                && let Some((200, _, body)) = parse_http(&response)
                && let Ok(version) = serde_json::from_slice::<serde_json::Value>(&body)
            {
                outcome.daemon_version = version["Version"].as_str().map(str::to_string);
                outcome.api_version = version["ApiVersion"].as_str().map(str::to_string);
            }
        }
        Err(ExchangeError::Connect((status, message))) => {
            outcome.record("connect", status, message);
            return outcome;
        }
        Err(err) => {
            outcome.record(
                "connect",
                Status::Ok,
                format!("{} accepts connections", endpoint.display()),
            );
            let presented = verifier.presented.lock().ok().and_then(|p| p.clone());
            diagnose(
                &mut outcome,
                err,
                presented.as_deref(),
                &client,
                endpoint,
                timeout,
                now,
                reissue_hint,
            );
        }
    }
    if let Some(der) = verifier.presented.lock().ok().and_then(|p| p.clone()) {
        outcome.server_cert = facts(&der);
    }
    if let Some(server) = &outcome.server_cert
        && outcome.status() == Status::Ok
    {
        let days = (server.not_after - now).whole_days();
        if days < 30 {
            outcome.record("server-certificate", Status::Warn, format!("the server certificate expires in {days} days ({}): re-issue it and restart dockerd before then", server.not_after.date()));
        } else {
            outcome.record(
                "server-certificate",
                Status::Ok,
                format!("valid for {days} more days, signed by the CA in ca.pem"),
            );
        }
    }
    if outcome
        .checks
        .iter()
        .any(|c| c.id == "tls" && c.status != Status::Fail)
        || outcome.tls_version.is_some()
    {
        anonymous(&mut outcome, endpoint, timeout, &provider);
    }
    outcome
}

/// Tries the daemon without a client certificate: it must refuse.
fn anonymous(
    outcome: &mut Outcome,
    endpoint: &Endpoint,
    timeout: Duration,
    provider: &Arc<rustls::crypto::CryptoProvider>,
) {
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map(|b| {
            b.dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyServer(provider.clone())))
                .with_no_client_auth()
        });
    let Ok(config) = config else { return };
    match exchange(Arc::new(config), endpoint, "/_ping", timeout) {
        Ok((response, _)) if parse_http(&response).is_some_and(|(status, _, _)| status == 200) => outcome.record(
            "client-auth",
            Status::Fail,
            "the daemon answers clients that present no certificate: client authentication is off, so anyone who reaches the port is root; set \"tlsverify\": true and \"tlscacert\" in daemon.json and restart dockerd",
        ),
        Ok(_) | Err(ExchangeError::Tls(_)) | Err(ExchangeError::Io(_)) => outcome.record("client-auth", Status::Ok, "connections without a client certificate are refused"),
        Err(ExchangeError::Connect((_, message)) | ExchangeError::Other(message)) => outcome.record("client-auth", Status::Warn, format!("could not try a connection without a client certificate: {message}")),
    }
}

#[allow(clippy::too_many_arguments)]
fn diagnose(
    outcome: &mut Outcome,
    err: ExchangeError,
    presented: Option<&[u8]>,
    client: &ClientFiles,
    endpoint: &Endpoint,
    timeout: Duration,
    now: ::time::OffsetDateTime,
    reissue_hint: &dyn Fn(&[String], &str) -> String,
) {
    let server = presented.and_then(facts);
    let tls_err = match err {
        ExchangeError::Tls(e) => e,
        ExchangeError::Io(e) => {
            // TLS 1.2 servers may just close the connection on a certificate they refuse.
            if plain_http(endpoint, timeout) {
                outcome.record("tls", Status::Fail, plain_http_message(endpoint));
            } else {
                outcome.record(
                    "tls",
                    Status::Fail,
                    format!(
                        "the connection broke during the TLS exchange ({e}); {}",
                        client_rejection(client, now)
                    ),
                );
            }
            return;
        }
        ExchangeError::Other(message) | ExchangeError::Connect((_, message)) => {
            outcome.record("tls", Status::Fail, message);
            return;
        }
    };
    match tls_err {
        rustls::Error::InvalidCertificate(cert_err) => {
            outcome.record(
                "tls",
                Status::Fail,
                "the daemon's certificate was refused (see server-certificate)",
            );
            let message = match cert_err {
                CertificateError::UnknownIssuer | CertificateError::BadSignature => format!(
                    "the daemon's certificate is not signed by the CA in {}: it was issued by {}, while ca.pem holds [{}]; ca.pem is stale or from another PKI: use the ca.pem of the CA that signed the daemon's certificate",
                    client_ca_path(outcome),
                    server.as_ref().map_or("an unknown issuer".to_string(), |s| s.issuer.clone()),
                    client.ca_subjects.join("; ")
                ),
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                    let sans = server.as_ref().map(|s| s.sans.clone()).unwrap_or_default();
                    format!(
                        "{} is not in the daemon certificate's SANs ({}): clients dialling it are refused (\"certificate is valid for ..., not {}\"); dial one of those names, or re-issue the server certificate with it: {}",
                        endpoint.host,
                        if sans.is_empty() { "none".to_string() } else { sans.join(", ") },
                        endpoint.host,
                        reissue_hint(&sans, &endpoint.host)
                    )
                }
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => format!(
                    "the daemon's certificate expired{}: re-issue it and restart dockerd (dockerd does not reload certificates on SIGHUP); if it should still be valid, check the clocks of both machines",
                    server.as_ref().map(|s| format!(" on {}", s.not_after.date())).unwrap_or_default()
                ),
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => "the daemon's certificate is not valid yet: the clock of this machine or of the one that issued it is wrong".to_string(),
                other => format!("the daemon's certificate is refused: {other:?}"),
            };
            outcome.record("server-certificate", Status::Fail, message);
        }
        rustls::Error::AlertReceived(alert) => {
            outcome.record(
                "tls",
                Status::Fail,
                format!("the daemon refused the client certificate (TLS alert: {alert:?})"),
            );
            outcome.record(
                "client-certificate",
                Status::Fail,
                client_rejection(client, now),
            );
        }
        rustls::Error::InvalidMessage(_)
        | rustls::Error::InappropriateMessage { .. }
        | rustls::Error::InappropriateHandshakeMessage { .. } => {
            if plain_http(endpoint, timeout) {
                outcome.record("tls", Status::Fail, plain_http_message(endpoint));
            } else {
                outcome.record("tls", Status::Fail, format!("the port does not speak TLS as dockerd does ({tls_err}): is it the right port?"));
            }
        }
        other => outcome.record(
            "tls",
            Status::Fail,
            format!("the TLS handshake failed: {other}"),
        ),
    }
}

fn client_ca_path(outcome: &Outcome) -> String {
    outcome.cert_path.join("ca.pem").display().to_string()
}

fn plain_http_message(endpoint: &Endpoint) -> String {
    format!(
        "{} serves the Docker API over plain HTTP: no TLS, no client certificates, so anyone who reaches the port is root on that host; add \"tls\": true, \"tlsverify\": true and the tlscacert/tlscert/tlskey paths to daemon.json and restart dockerd",
        endpoint.display()
    )
}

/// Whether the port answers the Docker API in plain HTTP.
fn plain_http(endpoint: &Endpoint, timeout: Duration) -> bool {
    let Ok(mut stream) = connect(endpoint, timeout) else {
        return false;
    };
    if stream
        .write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut response = Vec::new();
    let _ = stream.take(64 * 1024).read_to_end(&mut response);
    parse_http(&response).is_some_and(|(_, headers, body)| {
        headers.iter().any(|(k, _)| k == "api-version") || body.trim_ascii() == b"OK"
    })
}

/// Why the daemon may have refused our client certificate, judged from the local files.
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
        "the client certificate ({}, issued by {}) is fine locally, so the daemon trusts another CA (its tlscacert): was the CA replaced? get a client certificate from the daemon's current CA, or put the right CA in the daemon's tlscacert",
        cert.subject(),
        cert.issuer()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_like_docker_host() {
        let e = Endpoint::parse("tcp://example.com:2376").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("example.com", 2376));
        let e = Endpoint::parse("tcp://[::1]:12376").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.display()),
            ("::1", 12376, "tcp://[::1]:12376".to_string())
        );
        assert_eq!(Endpoint::parse("tcp://10.0.0.1").unwrap().port, 2376);
        for bad in [
            "unix:///var/run/docker.sock",
            "tcp://host:0",
            "tcp://host:x",
            "tcp://:2376",
            "example.com:2376",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
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
