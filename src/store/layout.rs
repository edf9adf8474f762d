//! Where everything lives in a PKI folder. This is the one place that spells a path of the
//! layout; every other module asks [`Pki`] or [`Holder`]:
//!
//! ```text
//! DIR/ca/ca.pem, ca-key.pem                           the CA
//! DIR/server/ca.pem, server-cert.pem, server-key.pem  the daemon's files
//! DIR/clients/NAME/ca.pem, cert.pem, key.pem          one folder a user (DOCKER_CERT_PATH)
//! DIR/daemon.json, DIR/override.conf                  the daemon's configuration
//! DIR/backup/<UTC stamp>/                             what a change replaced
//! DIR/.dockertls.lock, DIR/.dockertls-staging-*       one run at a time; work in progress
//! ```
//!
//! Many servers (`servers/NAME/`) will be a new [`Holder`] variant and a `Pki::server_dir`
//! argument: callers that name `Holder::server()` keep working.

use std::path::{Path, PathBuf};

/// The CA's folder.
pub const CA_DIR: &str = "ca";
/// The daemon's folder.
pub const SERVER_DIR: &str = "server";
/// The folder of the client folders.
pub const CLIENTS_DIR: &str = "clients";
/// The folder of backups, one subfolder a run.
pub const BACKUP_DIR: &str = "backup";
/// The daemon.json fragment `init` writes.
pub const DAEMON_JSON: &str = "daemon.json";
/// The systemd drop-in `init` writes.
pub const OVERRIDE_CONF: &str = "override.conf";
/// The lock file: one run changes DIR at a time.
pub const LOCK_FILE: &str = ".dockertls.lock";
/// The name prefix of staging folders.
pub const STAGING_PREFIX: &str = ".dockertls-staging-";

/// The CA certificate's name in every folder (Docker's `ca.pem`).
pub const CA_CERT: &str = "ca.pem";
/// The CA key's name in `ca/`.
pub const CA_KEY: &str = "ca-key.pem";
/// The server certificate's name (Docker's documented `server-cert.pem`).
pub const SERVER_CERT: &str = "server-cert.pem";
/// The server key's name.
pub const SERVER_KEY: &str = "server-key.pem";
/// A client certificate's name (what the docker CLI reads from DOCKER_CERT_PATH).
pub const CLIENT_CERT: &str = "cert.pem";
/// A client key's name.
pub const CLIENT_KEY: &str = "key.pem";

/// The entries of DIR that make up a PKI; their presence means "a PKI is here".
pub const PKI_ENTRIES: [&str; 5] = [CA_DIR, SERVER_DIR, CLIENTS_DIR, DAEMON_JSON, OVERRIDE_CONF];

/// Everything dockertls keeps directly in DIR (what folder trust checks).
pub const KEPT_ENTRIES: [&str; 6] = [
    CA_DIR,
    SERVER_DIR,
    CLIENTS_DIR,
    BACKUP_DIR,
    DAEMON_JSON,
    OVERRIDE_CONF,
];

/// A folder of the PKI that holds one certificate and its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holder {
    /// `ca/`: the CA certificate and key.
    Ca,
    /// `server/`: the daemon's certificate, key and CA.
    Server,
    /// `clients/NAME/`: one user's certificate, key and CA.
    Client(String),
}

impl Holder {
    /// The daemon's folder.
    pub fn server() -> Holder {
        Holder::Server
    }

    /// A client's folder.
    pub fn client(name: &str) -> Holder {
        Holder::Client(name.to_string())
    }

    /// The client's name, for a client.
    pub fn client_name(&self) -> Option<&str> {
        match self {
            Holder::Client(name) => Some(name),
            _ => None,
        }
    }

    /// The folder, relative to DIR (`server`, `clients/NAME`).
    pub fn folder(&self) -> String {
        match self {
            Holder::Ca => CA_DIR.to_string(),
            Holder::Server => SERVER_DIR.to_string(),
            Holder::Client(name) => format!("{CLIENTS_DIR}/{name}"),
        }
    }

    /// The certificate's file name in the folder.
    pub fn cert_name(&self) -> &'static str {
        match self {
            Holder::Ca => CA_CERT,
            Holder::Server => SERVER_CERT,
            Holder::Client(_) => CLIENT_CERT,
        }
    }

    /// The key's file name in the folder.
    pub fn key_name(&self) -> &'static str {
        match self {
            Holder::Ca => CA_KEY,
            Holder::Server => SERVER_KEY,
            Holder::Client(_) => CLIENT_KEY,
        }
    }

    /// The certificate, relative to DIR.
    pub fn cert(&self) -> String {
        format!("{}/{}", self.folder(), self.cert_name())
    }

    /// The key, relative to DIR.
    pub fn key(&self) -> String {
        format!("{}/{}", self.folder(), self.key_name())
    }

    /// How messages name it: `the CA`, `server`, `client NAME`.
    pub fn label(&self) -> String {
        match self {
            Holder::Ca => "the CA".to_string(),
            Holder::Server => "server".to_string(),
            Holder::Client(name) => format!("client {name}"),
        }
    }
}

/// A PKI folder: DIR, and where each thing is in it.
#[derive(Clone, Debug)]
pub struct Pki {
    dir: PathBuf,
}

impl Pki {
    /// The PKI in `dir` (nothing is read).
    pub fn new(dir: &Path) -> Pki {
        Pki {
            dir: dir.to_path_buf(),
        }
    }

    /// DIR.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// DIR/relative, for a relative path this module gave.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }

    /// The folder of `holder`.
    pub fn folder(&self, holder: &Holder) -> PathBuf {
        self.path(&holder.folder())
    }

    /// The certificate of `holder`.
    pub fn cert(&self, holder: &Holder) -> PathBuf {
        self.path(&holder.cert())
    }

    /// The key of `holder`.
    pub fn key(&self, holder: &Holder) -> PathBuf {
        self.path(&holder.key())
    }

    /// DIR/ca.
    pub fn ca_dir(&self) -> PathBuf {
        self.folder(&Holder::Ca)
    }

    /// DIR/server.
    pub fn server_dir(&self) -> PathBuf {
        self.folder(&Holder::server())
    }

    /// DIR/clients.
    pub fn clients_dir(&self) -> PathBuf {
        self.path(CLIENTS_DIR)
    }

    /// DIR/clients/NAME.
    pub fn client_dir(&self, name: &str) -> PathBuf {
        self.folder(&Holder::client(name))
    }

    /// DIR/backup.
    pub fn backups(&self) -> PathBuf {
        self.path(BACKUP_DIR)
    }

    /// DIR/backup/STAMP.
    pub fn backup_dir(&self, stamp: &str) -> PathBuf {
        self.backups().join(stamp)
    }

    /// DIR/daemon.json.
    pub fn daemon_json(&self) -> PathBuf {
        self.path(DAEMON_JSON)
    }

    /// DIR/override.conf.
    pub fn override_conf(&self) -> PathBuf {
        self.path(OVERRIDE_CONF)
    }

    /// DIR/.dockertls.lock.
    pub fn lock_file(&self) -> PathBuf {
        self.path(LOCK_FILE)
    }
}

/// The three files of a client folder (DOCKER_CERT_PATH): CA, certificate, key.
pub fn client_files(folder: &Path) -> (PathBuf, PathBuf, PathBuf) {
    (
        folder.join(CA_CERT),
        folder.join(CLIENT_CERT),
        folder.join(CLIENT_KEY),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_holder_has_docker_names() {
        let pki = Pki::new(Path::new("/p"));
        assert_eq!(pki.cert(&Holder::Ca), Path::new("/p/ca/ca.pem"));
        assert_eq!(pki.key(&Holder::Ca), Path::new("/p/ca/ca-key.pem"));
        assert_eq!(
            pki.key(&Holder::server()),
            Path::new("/p/server/server-key.pem")
        );
        assert_eq!(
            pki.cert(&Holder::client("alice")),
            Path::new("/p/clients/alice/cert.pem")
        );
        assert_eq!(pki.client_dir("bob"), Path::new("/p/clients/bob"));
        assert_eq!(pki.backup_dir("X"), Path::new("/p/backup/X"));
        assert_eq!(Holder::client("a").label(), "client a");
    }
}
