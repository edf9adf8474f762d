//! Command-line declarations only (clap derive). Values stay raw here; `plan` validates them,
//! so every input is checked in one place before any key is generated.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The key algorithm of every key of a PKI (`--key-type`), in the order `--help` lists them.
/// (Variants carry no doc comment: clap would turn `--help` into its long layout.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyType {
    #[value(name = "ecdsa-p256")]
    EcdsaP256,
    #[value(name = "ecdsa-p384")]
    EcdsaP384,
    #[value(name = "ed25519")]
    Ed25519,
    #[value(name = "rsa-2048")]
    Rsa2048,
    #[value(name = "rsa-3072")]
    Rsa3072,
    #[value(name = "rsa-4096")]
    Rsa4096,
}

impl KeyType {
    /// The name `--key-type` takes (`ecdsa-p256`). (`pki` says what each type means.)
    pub fn name(self) -> &'static str {
        match self {
            KeyType::EcdsaP256 => "ecdsa-p256",
            KeyType::EcdsaP384 => "ecdsa-p384",
            KeyType::Ed25519 => "ed25519",
            KeyType::Rsa2048 => "rsa-2048",
            KeyType::Rsa3072 => "rsa-3072",
            KeyType::Rsa4096 => "rsa-4096",
        }
    }

    /// Its trade-off in a few words (the wizard's menu).
    pub fn trade_off(self) -> &'static str {
        match self {
            KeyType::EcdsaP256 => "fast, small, accepted everywhere (recommended)",
            KeyType::EcdsaP384 => "a larger curve, a little slower",
            KeyType::Ed25519 => "modern and fast; needs Go 1.13+ and OpenSSL 1.1.1+ peers",
            KeyType::Rsa2048 => "for old clients that only speak RSA",
            KeyType::Rsa3072 => "RSA with a longer life",
            KeyType::Rsa4096 => "what Docker's docs use; slow to generate, large",
        }
    }
}

/// The shell `env --shell` prints for: POSIX sh (bash, zsh), fish, PowerShell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Sh,
    Fish,
    Powershell,
}

/// An output format: text for people, JSON for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Make the Docker daemon's remote API safe to expose over TCP with mutual TLS.
#[derive(Debug, Parser)]
#[command(name = "dockertls", version, about, max_term_width = 100)]
pub struct Cli {
    /// The PKI folder: dockertls.json, ca/, servers/NAME/, clients/NAME/, backup/.
    #[arg(
        long,
        global = true,
        env = "DOCKERTLS_DIR",
        default_value = "docker-tls"
    )]
    pub dir: PathBuf,

    /// A file whose first line is the CA key's passphrase (for an encrypted CA key; otherwise
    /// you are asked on the terminal).
    #[arg(long, global = true, value_name = "FILE")]
    pub ca_passphrase_file: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a CA, a server certificate, client certificates, daemon.json and the systemd
    /// override.
    Init(InitArgs),
    /// Audit Docker TLS cert dirs (ours, Docker docs', docker-machine's, dind's, a fleet):
    /// exit 0 ok, 1 warning, 2 failure, 3 nothing could be checked.
    Verify(VerifyArgs),
    /// Connect to a live daemon with a client certificate and say exactly what is wrong:
    /// exit 0 ok, 1 warning, 2 failure, 3 could not run.
    Probe(ProbeArgs),
    /// Add, list or remove client certificates.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Print the DOCKER_HOST/DOCKER_TLS_VERIFY/DOCKER_CERT_PATH lines for a client (or the
    /// docker context command).
    Env(EnvArgs),
    /// Re-issue expiring certificates with fresh keys, add SANs to the server certificate, or
    /// replace the CA.
    Rotate(RotateArgs),
    /// On the daemon host, as root: put server/ in place, merge the TLS keys into
    /// /etc/docker/daemon.json and write the systemd drop-in, without clobbering anything.
    Install(InstallArgs),
    /// Manage DIR/backup: the folders each change fills with the files it replaced.
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Add, list or remove servers: one self-contained folder servers/NAME per daemon, all
    /// under the same CA (every client folder trusts them all).
    #[command(subcommand)]
    Server(ServerCommand),
    /// Docker's authorization plugin: revocation (CRL), per-user roles and an audit log for
    /// every API call.
    #[command(subcommand)]
    Authz(AuthzCommand),
}

// fleet-core (issue 12): `server add|list|remove`.
#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Issue a server certificate from the existing CA and write its folder servers/NAME.
    Add(ServerAddArgs),
    /// List the servers with their host, port and expiry.
    List(ServerListArgs),
    /// Move a server's folder to the backup and forget it.
    Remove(ServerRemoveArgs),
}

#[derive(Debug, Args)]
pub struct ServerAddArgs {
    /// The server's name: its folder servers/NAME (letters, digits, '.', '_', '-').
    #[arg(value_name = "NAME")]
    pub name: String,

    /// The name or IP address clients dial: the certificate's CN and first SAN.
    #[arg(long, value_name = "NAME", required = true)]
    pub host: String,

    /// Another address or DNS name the daemon is reached at (repeatable, or comma-separated).
    #[arg(long = "allow", value_name = "ADDR", value_delimiter = ',')]
    pub allow: Vec<String>,

    /// Do not add 127.0.0.1 to the server certificate.
    #[arg(long)]
    pub no_loopback: bool,

    /// Validity in days.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 365,
        allow_negative_numbers = true
    )]
    pub days: i64,

    /// The address and port dockerd listens on, for daemon.json's "hosts".
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:2376")]
    pub listen: String,

    /// Where the server files will live on the daemon host.
    #[arg(long, value_name = "PATH", default_value = "/etc/docker/tls")]
    pub install_dir: PathBuf,

    /// dockerd's path on the daemon host, for the systemd override.
    #[arg(long, value_name = "PATH", default_value = "/usr/bin/dockerd")]
    pub dockerd: PathBuf,
}

#[derive(Debug, Args)]
pub struct ServerListArgs {
    /// Output format.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct ServerRemoveArgs {
    /// The server to remove.
    #[arg(value_name = "NAME")]
    pub name: String,
}

// --- authz (issue 13, authz-serve) ---

#[derive(Debug, Subcommand)]
pub enum AuthzCommand {
    /// Serve the authorization plugin on a unix socket (or the one systemd passes): every API
    /// call over TLS is allowed only for a certificate of the CA that is not revoked and whose
    /// role allows it.
    Serve(AuthzServeArgs),
}

/// Whether requests without a client certificate (the local unix socket) are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UnixSocketRequests {
    Allow,
    Deny,
}

#[derive(Debug, Args)]
pub struct AuthzServeArgs {
    /// The unix socket to listen on; dockerd finds it through /etc/docker/plugins/NAME.spec
    /// (unix:///PATH) or at /run/docker/plugins/NAME.sock. Not needed when systemd passes the
    /// socket.
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// The folder of ca.pem, crl.pem and authz.json (re-read when they change).
    #[arg(long, value_name = "DIR", default_value = "/etc/docker/tls")]
    pub tls_dir: PathBuf,

    /// Requests without a client certificate (the local unix socket): allowed unless this or
    /// authz.json's "unix_socket_requests" says deny; this flag wins.
    #[arg(long, value_enum, value_name = "POLICY")]
    pub unix_socket_requests: Option<UnixSocketRequests>,

    /// Append the audit lines (one JSON line per decision) to FILE instead of stderr.
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,

    /// Rotate the audit log to FILE.1 when it would grow past this many MiB.
    #[arg(long, value_name = "MIB", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub audit_log_max_mib: u64,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Delete all but the newest N backup folders (they hold old private keys).
    Prune(BackupPruneArgs),
}

#[derive(Debug, Args)]
pub struct BackupPruneArgs {
    /// How many of the newest backup folders to keep.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 5,
        allow_negative_numbers = true
    )]
    pub keep: i64,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Treat PREFIX as / (to stage an image, or for tests).
    #[arg(long, value_name = "PREFIX", default_value = "/")]
    pub root: PathBuf,

    /// Print a diff of every file that would be created or changed, and change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Replace different "hosts" or tls* values in an existing daemon.json (after a backup).
    #[arg(long)]
    pub force: bool,

    /// Then run systemctl daemon-reload and systemctl restart docker, and probe the daemon.
    #[arg(long)]
    pub restart: bool,

    /// Install from this server folder (a copy of DIR/servers/NAME: ca.pem, server-cert.pem,
    /// server-key.pem, daemon.json) instead of the PKI in --dir.
    #[arg(long, value_name = "FOLDER", conflicts_with = "server")]
    pub from: Option<PathBuf>,

    /// Install DIR/servers/NAME [default: the only server of the PKI].
    #[arg(long, value_name = "NAME")]
    pub server: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Issue a client certificate for each NAME from the existing CA.
    Add(ClientAddArgs),
    /// List client certificates with their expiry.
    List(ClientListArgs),
    /// Move a client's files to the backup (dockerd has no revocation: see the message).
    Remove(ClientRemoveArgs),
}

#[derive(Debug, Args)]
pub struct ClientAddArgs {
    /// Client names: the certificate CN and the folder clients/NAME (repeatable or
    /// comma-separated).
    #[arg(required = true, value_name = "NAME", value_delimiter = ',')]
    pub names: Vec<String>,

    /// Validity in days.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 365,
        allow_negative_numbers = true
    )]
    pub days: i64,
}

#[derive(Debug, Args)]
pub struct ClientListArgs {
    /// Output format.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct ClientRemoveArgs {
    /// The client to remove.
    #[arg(value_name = "NAME")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct EnvArgs {
    /// The client whose folder to use.
    #[arg(value_name = "NAME")]
    pub name: String,

    /// The shell to print for.
    #[arg(long, value_name = "SHELL", value_enum, default_value_t = Shell::Sh)]
    pub shell: Shell,

    /// Print the `docker context create` command instead.
    #[arg(long)]
    pub context: bool,

    /// The server to dial (servers/NAME) [default: the only one].
    #[arg(long, value_name = "NAME")]
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// Re-issue certificates that expire within DAYS days [default: when less than a third
    /// of its lifetime remains, at most 30 days].
    #[arg(long, value_name = "DAYS", allow_negative_numbers = true)]
    pub within: Option<i64>,

    /// Keep the newest N backup folders and delete older ones after a successful run.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 5,
        allow_negative_numbers = true
    )]
    pub keep_backups: i64,

    /// Re-issue every selected certificate, whatever its expiry.
    #[arg(long)]
    pub all: bool,

    /// Select the server certificates: every server, or the NAMEs given (repeatable or
    /// comma-separated).
    #[arg(long, value_name = "NAME", num_args = 0..=1, value_delimiter = ',')]
    pub server: Option<Vec<String>>,

    /// Select this client (repeatable).
    #[arg(long = "client", value_name = "NAME", value_delimiter = ',')]
    pub clients: Vec<String>,

    /// Add a SAN to the server certificate (with --server, of one server; repeatable or
    /// comma-separated).
    #[arg(long = "allow", value_name = "ADDR", value_delimiter = ',')]
    pub allow: Vec<String>,

    /// Create a new CA and re-issue everything under it.
    #[arg(long)]
    pub ca: bool,

    /// Say what would change and why, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The daemon, as tcp://HOST:PORT [default: $DOCKER_HOST].
    #[arg(value_name = "tcp://HOST:PORT")]
    pub endpoint: Option<String>,

    /// The folder holding ca.pem, cert.pem and key.pem [default: $DOCKER_CERT_PATH, else
    /// ~/.docker].
    #[arg(long, value_name = "DIR", conflicts_with = "client")]
    pub cert_path: Option<PathBuf>,

    /// Use clients/NAME of the PKI in --dir.
    #[arg(long, value_name = "NAME")]
    pub client: Option<String>,

    /// Dial servers/NAME of the PKI in --dir (its host and port) [default with --client and
    /// no endpoint: the only server].
    #[arg(long, value_name = "NAME", conflicts_with = "endpoint")]
    pub server: Option<String>,

    /// Seconds the whole probe may take: every connection, handshake and answer.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub timeout: f64,

    /// Output format.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Cert dirs, or trees to search for them [default: the PKI in --dir].
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// A name or IP the server certificate must cover (repeatable).
    #[arg(long = "host", value_name = "NAME")]
    pub hosts: Vec<String>,

    /// Warn about certificates that expire within N days [default: when less than a third of
    /// its lifetime remains, at most 30 days].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub warn_days: Option<i64>,

    /// Output format.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Also audit the TLS setup of this daemon.json (e.g. /etc/docker/daemon.json) and the
    /// files it names, with the CIS Docker Benchmark file checks.
    #[arg(long, value_name = "FILE")]
    pub daemon_config: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// The name or IP address clients dial: the server certificate's CN and first SAN.
    /// Without it, on a terminal, a wizard asks for everything.
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,

    /// The server's name: its folder servers/NAME [default: the --host, made a folder name].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Another address or DNS name the daemon is reached at (repeatable, or comma-separated).
    #[arg(long = "allow", value_name = "ADDR", value_delimiter = ',')]
    pub allow: Vec<String>,

    /// Do not add 127.0.0.1 to the server certificate.
    #[arg(long)]
    pub no_loopback: bool,

    /// A client certificate for this user (CN = NAME; repeatable) [default: client].
    #[arg(long = "client", value_name = "NAME", value_delimiter = ',')]
    pub clients: Vec<String>,

    /// The type of every key of the PKI.
    #[arg(long, value_name = "TYPE", value_enum, default_value_t = KeyType::EcdsaP256)]
    pub key_type: KeyType,

    /// Validity of the server and client certificates, in days.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 365,
        allow_negative_numbers = true
    )]
    pub days: i64,

    /// Validity of the CA certificate, in days.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 3650,
        allow_negative_numbers = true
    )]
    pub ca_days: i64,

    /// The address and port dockerd listens on, for daemon.json's "hosts".
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:2376")]
    pub listen: String,

    /// Where the server files will live on the daemon host.
    #[arg(long, value_name = "PATH", default_value = "/etc/docker/tls")]
    pub install_dir: PathBuf,

    /// dockerd's path on the daemon host, for the systemd override
    /// (/usr/sbin/dockerd with Debian's docker.io).
    #[arg(long, value_name = "PATH", default_value = "/usr/bin/dockerd")]
    pub dockerd: PathBuf,

    /// Replace an existing PKI in --dir, after moving it to DIR/backup/<UTC timestamp>/.
    #[arg(long)]
    pub force: bool,

    /// Protect ca/ca-key.pem with a passphrase (asked twice on the terminal, or read from
    /// --ca-passphrase-file, which implies this).
    #[arg(long)]
    pub encrypt_ca_key: bool,

    /// Never prompt: missing input is an error (also without a terminal).
    #[arg(long)]
    pub yes: bool,
}
