//! Where everything lives in a PKI folder. This is the one place that spells a path of the
//! layout; every other module asks [`Pki`] or [`Holder`]:
//!
//! ```text
//! DIR/dockertls.json                                 the state file (format 2)
//! DIR/ca/ca.pem, ca-key.pem                           the CA
//! DIR/servers/NAME/ca.pem, server-cert.pem, server-key.pem, daemon.json, override.conf
//!                                                     one self-contained folder a daemon
//! DIR/clients/NAME/ca.pem, cert.pem, key.pem          one folder a user (DOCKER_CERT_PATH)
//! DIR/backup/<UTC stamp>/                             what a change replaced
//! DIR/.dockertls.lock, DIR/.dockertls-staging-*       one run at a time; work in progress
//! ```
//!
//! Format 1 (before many servers) had `DIR/server/` and `DIR/daemon.json`,
//! `DIR/override.conf`; `store::registry` migrates it (see [`Legacy`]).

use std::path::{Path, PathBuf};

/// The CA's folder.
pub const CA_DIR: &str = "ca";
/// The folder of the server folders (format 2).
pub const SERVERS_DIR: &str = "servers";
/// The state file (format 2): its presence means format 2.
pub const STATE_FILE: &str = "dockertls.json";
/// A server's certificate revocation list, in its server folder.
pub const CRL: &str = "crl.pem";
/// A server's authorization policy, in its server folder.
pub const AUTHZ_POLICY: &str = "authz.json";
/// The folder of the client folders.
pub const CLIENTS_DIR: &str = "clients";
/// The folder of backups, one subfolder a run.
pub const BACKUP_DIR: &str = "backup";
/// The daemon.json fragment `init` writes (in each server folder).
pub const DAEMON_JSON: &str = "daemon.json";
/// The systemd drop-in `init` writes (in each server folder).
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

/// The entries of DIR that make up a PKI (either format); their presence means "a PKI is
/// here". `init --force` moves those present to the backup.
pub const PKI_ENTRIES: [&str; 7] = [
    CA_DIR,
    SERVERS_DIR,
    CLIENTS_DIR,
    STATE_FILE,
    Legacy::SERVER_DIR,
    Legacy::DAEMON_JSON,
    Legacy::OVERRIDE_CONF,
];

/// What `init` writes into DIR, the state file last (the commit point).
pub const INIT_ENTRIES: [&str; 4] = [CA_DIR, SERVERS_DIR, CLIENTS_DIR, STATE_FILE];

/// Everything dockertls keeps directly in DIR (what folder trust checks).
pub const KEPT_ENTRIES: [&str; 8] = [
    CA_DIR,
    SERVERS_DIR,
    CLIENTS_DIR,
    BACKUP_DIR,
    STATE_FILE,
    Legacy::SERVER_DIR,
    Legacy::DAEMON_JSON,
    Legacy::OVERRIDE_CONF,
];

/// The format-1 layout (one server): what migration reads and then moves to the backup.
pub struct Legacy;

impl Legacy {
    /// `DIR/server/`: the one daemon's ca.pem, server-cert.pem, server-key.pem.
    pub const SERVER_DIR: &'static str = "server";
    /// `DIR/daemon.json`.
    pub const DAEMON_JSON: &'static str = DAEMON_JSON;
    /// `DIR/override.conf`.
    pub const OVERRIDE_CONF: &'static str = OVERRIDE_CONF;
    /// The entries of DIR that only format 1 has, in the order migration moves them away.
    pub const ENTRIES: [&'static str; 3] =
        [Self::SERVER_DIR, Self::DAEMON_JSON, Self::OVERRIDE_CONF];
}

/// The files of a self-contained server folder, in the order they are listed.
pub const SERVER_FILES: [&str; 5] = [CA_CERT, SERVER_CERT, SERVER_KEY, DAEMON_JSON, OVERRIDE_CONF];

/// A folder of the PKI that holds one certificate and its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holder {
    /// `ca/`: the CA certificate and key.
    Ca,
    /// `servers/NAME/`: one daemon's certificate, key, CA and configuration.
    Server(String),
    /// `clients/NAME/`: one user's certificate, key and CA.
    Client(String),
}

impl Holder {
    /// A server's folder.
    pub fn server(name: &str) -> Holder {
        Holder::Server(name.to_string())
    }

    /// The server's name, for a server.
    pub fn server_name(&self) -> Option<&str> {
        match self {
            Holder::Server(name) => Some(name),
            _ => None,
        }
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

    /// The folder, relative to DIR (`servers/NAME`, `clients/NAME`).
    pub fn folder(&self) -> String {
        match self {
            Holder::Ca => CA_DIR.to_string(),
            Holder::Server(name) => format!("{SERVERS_DIR}/{name}"),
            Holder::Client(name) => format!("{CLIENTS_DIR}/{name}"),
        }
    }

    /// The certificate's file name in the folder.
    pub fn cert_name(&self) -> &'static str {
        match self {
            Holder::Ca => CA_CERT,
            Holder::Server(_) => SERVER_CERT,
            Holder::Client(_) => CLIENT_CERT,
        }
    }

    /// The key's file name in the folder.
    pub fn key_name(&self) -> &'static str {
        match self {
            Holder::Ca => CA_KEY,
            Holder::Server(_) => SERVER_KEY,
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

    /// How messages name it: `the CA`, `server NAME`, `client NAME`.
    pub fn label(&self) -> String {
        match self {
            Holder::Ca => "the CA".to_string(),
            Holder::Server(name) => format!("server {name}"),
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

    /// DIR/servers.
    pub fn servers_dir(&self) -> PathBuf {
        self.path(SERVERS_DIR)
    }

    /// DIR/servers/NAME: the self-contained folder of one daemon.
    pub fn server_dir(&self, name: &str) -> PathBuf {
        self.folder(&Holder::server(name))
    }

    /// DIR/servers/NAME/FILE (one of [`SERVER_FILES`], [`CRL`], [`AUTHZ_POLICY`]).
    pub fn server_file(&self, name: &str, file: &str) -> PathBuf {
        self.server_dir(name).join(file)
    }

    /// DIR/dockertls.json.
    pub fn state_file(&self) -> PathBuf {
        self.path(STATE_FILE)
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

    /// DIR/servers/NAME/daemon.json.
    pub fn daemon_json(&self, name: &str) -> PathBuf {
        self.server_file(name, DAEMON_JSON)
    }

    /// DIR/servers/NAME/override.conf.
    pub fn override_conf(&self, name: &str) -> PathBuf {
        self.server_file(name, OVERRIDE_CONF)
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
            pki.key(&Holder::server("a")),
            Path::new("/p/servers/a/server-key.pem")
        );
        assert_eq!(pki.daemon_json("a"), Path::new("/p/servers/a/daemon.json"));
        assert_eq!(pki.state_file(), Path::new("/p/dockertls.json"));
        assert_eq!(
            pki.cert(&Holder::client("alice")),
            Path::new("/p/clients/alice/cert.pem")
        );
        assert_eq!(pki.client_dir("bob"), Path::new("/p/clients/bob"));
        assert_eq!(pki.backup_dir("X"), Path::new("/p/backup/X"));
        assert_eq!(Holder::client("a").label(), "client a");
    }
}
