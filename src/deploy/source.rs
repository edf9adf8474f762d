//! What `deploy` sends: a server's folder of the PKI, read once (never through a link), with
//! the installed path and SHA-256 of each TLS file so the host can say which it already has.

use std::path::Path;

use zeroize::Zeroizing;

use crate::error::Error;
use crate::store::{Folder, layout};

/// The server folder's name in the stream (the host runs `install --from` on it).
pub const STREAM_FOLDER: &str = "server";
/// The most one file of a server folder may weigh.
const MAX_FILE: u64 = 1 << 20;

/// One file to send. No `Debug`: it may be the server key.
pub struct SourceFile {
    /// Its name in the server folder (`server-key.pem`).
    pub name: String,
    /// Its path in the stream.
    pub path: String,
    pub contents: Zeroizing<Vec<u8>>,
    pub mode: u32,
}

/// A TLS file daemon.json names: where install puts it, and its fingerprint.
#[derive(Debug, Clone)]
pub struct TlsFile {
    pub name: String,
    /// The absolute path on the host (daemon.json's tlscacert, tlscert or tlskey).
    pub installed: String,
    /// None when the folder lacks it (a key that lives elsewhere: on the host, say).
    pub sha256: Option<String>,
}

/// One server's files, ready to send. No `Debug`: it holds the server key.
pub struct Source {
    pub name: String,
    /// The name its clients dial (the state file's `host`), when known.
    pub host: Option<String>,
    pub files: Vec<SourceFile>,
    pub tls: Vec<TlsFile>,
    /// daemon.json's tcp port (what the probe after a restart dials).
    pub listen_port: u16,
    /// Whether our own daemon.json turns live-restore on.
    pub live_restore: bool,
    /// Whether install runs with `--authz` there (the plugin, its CRL and policy).
    pub authz: bool,
}

/// daemon.json's keys for the TLS files, with the file name each has in a server folder.
const TLS_KEYS: [(&str, &str); 3] = [
    ("tlscacert", layout::CA_CERT),
    ("tlscert", layout::SERVER_CERT),
    ("tlskey", layout::SERVER_KEY),
];

impl Source {
    /// A self-contained server folder: every plain file in it.
    /// `host` is the name its clients dial (the state file's), when known.
    pub fn folder(folder: &Path, name: &str, host: Option<&str>) -> Result<Source, Error> {
        let opened = Folder::open(folder)?;
        let mut files = Vec::new();
        for (file, kind) in opened.entries()?.into_iter().take(64) {
            if kind != rustix::fs::FileType::RegularFile {
                continue;
            }
            let (contents, mode) = opened.read_file(&file, MAX_FILE)?;
            files.push(SourceFile {
                path: format!("{STREAM_FOLDER}/{file}"),
                name: file,
                contents,
                mode,
            });
        }
        let mut source = Source::new(name, files)?;
        source.host = host.map(str::to_string);
        Ok(source)
    }

    /// The SHA-256 of the server certificate's DER, if the folder has one.
    pub fn server_cert_sha256(&self) -> Option<[u8; 32]> {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        let file = self.files.iter().find(|f| f.name == layout::SERVER_CERT)?;
        let der = CertificateDer::from_pem_slice(&file.contents).ok()?;
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der)
            .as_ref()
            .try_into()
            .ok()
    }

    fn new(name: &str, files: Vec<SourceFile>) -> Result<Source, Error> {
        let daemon_json = files
            .iter()
            .find(|f| f.name == layout::DAEMON_JSON)
            .ok_or_else(|| {
                Error::refused(format!("server {name} has no {}", layout::DAEMON_JSON))
            })?;
        let json: serde_json::Value =
            serde_json::from_slice(&daemon_json.contents).map_err(|e| {
                Error::refused(format!(
                    "server {name}: its {} is not JSON ({e})",
                    layout::DAEMON_JSON
                ))
            })?;
        let mut tls = Vec::new();
        for (key, file) in TLS_KEYS {
            let installed = json[key].as_str().unwrap_or_default();
            if !installed.starts_with('/') || installed.chars().any(char::is_control) {
                return Err(Error::refused(format!(
                    "server {name}: {}'s \"{key}\" must be an absolute path on the host",
                    layout::DAEMON_JSON
                ))
                .hint("give the server folder the daemon.json dockertls wrote"));
            }
            let local = files.iter().find(|f| f.name == file);
            tls.push(TlsFile {
                name: file.into(),
                installed: installed.into(),
                sha256: local.map(|f| super::sha256_hex(&f.contents)),
            });
        }
        Ok(Source {
            name: name.into(),
            host: None,
            listen_port: crate::dockerd_hosts::first_tcp_port(&json["hosts"]).unwrap_or(2376),
            live_restore: json["live-restore"] == serde_json::Value::Bool(true),
            authz: false,
            files,
            tls,
        })
    }
}
