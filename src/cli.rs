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
    /// Add, list, revoke or remove client certificates, or set a client's role.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Add, list or remove servers: one self-contained folder servers/NAME per daemon, all
    /// under the same CA (every client folder trusts them all).
    #[command(subcommand)]
    Server(ServerCommand),
    /// Print the DOCKER_HOST/DOCKER_TLS_VERIFY/DOCKER_CERT_PATH lines for a client (or the
    /// docker context command).
    Env(EnvArgs),
    /// Re-issue expiring certificates with fresh keys, add SANs to the server certificate, or
    /// replace the CA.
    Rotate(RotateArgs),
    /// On the daemon host, as root: put a server's files in place, merge the TLS keys into
    /// /etc/docker/daemon.json and write the systemd drop-in, without clobbering anything.
    Install(InstallArgs),
    /// Copy a server's folder to its daemon host over SSH and run dockertls install there (as
    /// root, or through sudo -n).
    Deploy(DeployArgs),
    /// Audit Docker TLS cert dirs (ours, Docker docs', docker-machine's, dind's, a fleet):
    /// exit 0 ok, 1 warning, 2 failure, 3 nothing could be checked.
    Verify(VerifyArgs),
    /// Connect to a live daemon with a client certificate and say exactly what is wrong:
    /// exit 0 ok, 1 warning, 2 failure, 3 could not run.
    Probe(ProbeArgs),
    /// Where a key will live: make the key and a certificate signing request (CSR) for the CA
    /// (no CA needed here).
    #[command(subcommand)]
    Request(RequestCommand),
    /// Where the CA is: sign a CSR for a server or a client whose key lives elsewhere; the CA
    /// decides every extension.
    Sign(SignArgs),
    /// Adopt a PKI made elsewhere (Docker's openssl recipe, docker-machine, dind) into --dir,
    /// keeping its CA and certificates, and say what to fix.
    Import(ImportArgs),
    /// Create or update a docker context for a client (CA, certificate and key together);
    /// rotate keeps it in step.
    Context(ContextArgs),
    /// The certificate revocation list the dockertls authorization plugin enforces.
    #[command(subcommand)]
    Crl(CrlCommand),
    /// Custom roles for the dockertls authorization plugin (admin and read-only are built in).
    #[command(subcommand)]
    Role(RoleCommand),
    /// Docker's authorization plugin: revocation (CRL), per-user roles and an audit log for
    /// every API call.
    #[command(subcommand)]
    Authz(AuthzCommand),
    /// Manage DIR/backup: the folders each change fills with the files it replaced.
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Print a shell completion script (bash, zsh, fish, powershell) on stdout.
    Completions(CompletionsArgs),
    /// Write one man page per command (dockertls.1, dockertls-init.1, ...) into a folder.
    Man(ManArgs),
}

// issue 14 (import): `import` and `context`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The folder to import: the recipe's (ca.pem, ca-key.pem, server-cert.pem, ...),
    /// docker-machine's (~/.docker/machine) or dind's (/certs). It is never changed.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,

    /// The name or IP address clients dial the server at (repeatable): checked against the
    /// server certificate; the first names the server.
    #[arg(long = "host", value_name = "NAME")]
    pub hosts: Vec<String>,

    /// Say what would be imported and what to fix, and change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Replace an existing PKI in --dir (or what an interrupted run left), after moving it to
    /// DIR/backup/<UTC timestamp>/.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ContextArgs {
    /// The client whose certificate the context uses.
    #[arg(value_name = "CLIENT", required_unless_present = "remove")]
    pub client: Option<String>,

    /// The server the context dials (needed when the PKI has several).
    #[arg(long, value_name = "NAME")]
    pub server: Option<String>,

    /// The context's name [default: dockertls-HOST].
    #[arg(long, value_name = "CTX")]
    pub name: Option<String>,

    /// Remove this context (made by dockertls) instead.
    #[arg(long, value_name = "CTX", conflicts_with_all = ["client", "server", "name"])]
    pub remove: Option<String>,
}

// ---- Issue 12 (csr): `sign` ----

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("holder").required(true).args(["server", "client"])))]
pub struct SignArgs {
    /// The CSR file (PEM or DER), as `dockertls request` or `openssl req` made it.
    #[arg(value_name = "CSR")]
    pub csr: PathBuf,

    /// Sign a server certificate into servers/NAME (new, or one whose key lives elsewhere).
    #[arg(long, value_name = "NAME", conflicts_with = "client")]
    pub server: Option<String>,

    /// Sign a client certificate into clients/NAME (CN = NAME).
    #[arg(long, value_name = "NAME")]
    pub client: Option<String>,

    /// The name or IP address clients dial: the CN and first SAN [default: the server's
    /// recorded host, when it exists].
    #[arg(long, value_name = "NAME", conflicts_with = "client")]
    pub host: Option<String>,

    /// Another address or DNS name the daemon is reached at (repeatable, or comma-separated).
    #[arg(
        long = "allow",
        value_name = "ADDR",
        value_delimiter = ',',
        conflicts_with = "client"
    )]
    pub allow: Vec<String>,

    /// Do not add 127.0.0.1 to the server certificate.
    #[arg(long, conflicts_with = "client")]
    pub no_loopback: bool,

    /// Also take the DNS names and IP addresses the CSR asks for (they are listed either way).
    #[arg(long, conflicts_with = "client")]
    pub accept_csr_sans: bool,

    /// Validity in days.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 365,
        allow_negative_numbers = true
    )]
    pub days: i64,

    /// A new server: the address and port dockerd listens on, for daemon.json's "hosts"
    /// [default: 0.0.0.0:2376].
    #[arg(long, value_name = "ADDR:PORT", conflicts_with = "client")]
    pub listen: Option<String>,

    /// A new server: where its files will live on the daemon host [default: /etc/docker/tls].
    #[arg(long, value_name = "PATH", conflicts_with = "client")]
    pub install_dir: Option<PathBuf>,

    /// A new server: dockerd's path on the daemon host, for the systemd override
    /// [default: /usr/bin/dockerd].
    #[arg(long, value_name = "PATH", conflicts_with = "client")]
    pub dockerd: Option<PathBuf>,
}

// ---- Issue 12 (csr): `request` ----

#[derive(Debug, Subcommand)]
pub enum RequestCommand {
    /// The daemon's key (server-key.pem) and server.csr, for `dockertls sign --server`.
    Server(RequestServerArgs),
    /// A user's key (key.pem) and client.csr, for `dockertls sign --client`.
    Client(RequestClientArgs),
}

#[derive(Debug, Args)]
pub struct RequestServerArgs {
    /// The name or IP address clients dial (the CSR's CN and first SAN).
    #[arg(long, value_name = "NAME", required = true)]
    pub host: String,

    /// Another address or DNS name the daemon is reached at (repeatable, or comma-separated).
    #[arg(long = "allow", value_name = "ADDR", value_delimiter = ',')]
    pub allow: Vec<String>,

    /// The type of the new key.
    #[arg(long, value_name = "TYPE", value_enum, default_value_t = KeyType::EcdsaP256)]
    pub key_type: KeyType,

    /// The folder to write to (created 0700 when missing; existing files are never replaced).
    #[arg(long, value_name = "DIR", required = true)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct RequestClientArgs {
    /// The user's name: the certificate's CN.
    #[arg(value_name = "NAME")]
    pub name: String,

    /// The type of the new key.
    #[arg(long, value_name = "TYPE", value_enum, default_value_t = KeyType::EcdsaP256)]
    pub key_type: KeyType,

    /// The folder to write to (created 0700 when missing; existing files are never replaced).
    #[arg(long, value_name = "DIR", required = true)]
    pub out: PathBuf,
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

// --- eco (issue 14) ---
/// verify's output format: text, JSON, or Prometheus metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerifyFormat {
    Text,
    Json,
    Prometheus,
}

/// A shell `completions` prints a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to print the completion script for.
    #[arg(value_name = "SHELL", value_enum)]
    pub shell: CompletionShell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The folder to write the pages into (created if missing; pages there are replaced).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}
// --- end eco ---

/// `deploy` (issue 12).
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The server to deploy (its folder servers/NAME).
    #[arg(value_name = "NAME", required_unless_present = "all")]
    pub name: Option<String>,

    /// Its daemon host, reached with ssh: [USER@]HOST[:PORT], IPv6 in brackets
    /// ([2001:db8::1]:22) [default: the host it was last deployed to].
    #[arg(value_name = "HOST")]
    pub host: Option<String>,

    /// Deploy every server whose host is remembered: a line (or JSON record) per host.
    #[arg(long, conflicts_with_all = ["name", "host"])]
    pub all: bool,

    /// Hosts deployed at once with --all.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 4,
        allow_negative_numbers = true
    )]
    pub jobs: i64,

    /// Then restart dockerd there (systemctl, or --restart-command) and probe it from here
    /// with a client folder of the PKI.
    #[arg(long)]
    pub restart: bool,

    /// Restart even though that stops the host's running containers (live-restore off), and
    /// let install replace different "hosts" or tls* values in its daemon.json.
    #[arg(long)]
    pub force: bool,

    /// An option for ssh, as Key=Value (repeatable); none that turns host-key checking off.
    #[arg(long = "ssh-option", value_name = "OPT")]
    pub ssh_options: Vec<String>,

    /// Also put the authorization plugin in place there (install --authz: the CRL, the
    /// policy, the plugin's units); remembered for the server, so later deploys keep them
    /// current.
    #[arg(long)]
    pub authz: bool,

    /// The command that restarts dockerd on the host, instead of systemctl (hosts without
    /// systemd, and tests).
    #[arg(long, value_name = "CMD", requires = "restart")]
    pub restart_command: Option<String>,

    /// Run install on the host with --root PREFIX (for tests and containers; remembered with
    /// the host) [default: /].
    #[arg(long, value_name = "PREFIX")]
    pub remote_root: Option<String>,

    /// Output format.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Why a certificate is revoked (RFC 5280 reason codes), for `client revoke --reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RevokeReason {
    Unspecified,
    KeyCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    PrivilegeWithdrawn,
}

#[derive(Debug, Subcommand)]
pub enum CrlCommand {
    /// Re-sign the revocation list with new dates (where the CA key is; run it from a timer)
    /// and write it, with the policy, into every server folder.
    Refresh,
}

#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Define a role as an allow-list of METHOD /path rules.
    Add(RoleAddArgs),
    /// Delete a custom role that no client has.
    Remove(RoleRemoveArgs),
    /// List the roles and who has each.
    List(RoleListArgs),
}

#[derive(Debug, Args)]
pub struct RoleAddArgs {
    /// The role's name (letters, digits, '-', '_', '.').
    #[arg(value_name = "ROLE")]
    pub name: String,

    /// A request the role allows: METHOD (GET, HEAD, POST, PUT, DELETE or *) and a path
    /// pattern ('*' one segment, '**' once: any number of segments), e.g. 'GET /containers/**'
    /// (repeatable).
    #[arg(long = "allow", value_name = "RULE", required = true)]
    pub allow: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RoleRemoveArgs {
    /// The custom role to delete.
    #[arg(value_name = "ROLE")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct RoleListArgs {
    /// Output format.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = Format::Text)]
    pub format: Format,
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

    // eco (issue 14)
    /// Put back what the last install replaced (from its backups) and remove what it created.
    #[arg(long, conflicts_with_all = ["dry_run", "force", "restart", "from", "server"])]
    pub rollback: bool,

    /// With --restart: run CMD (split as a shell would, run without a shell) instead of
    /// systemctl, for hosts without systemd and for tests; it must return once dockerd serves.
    #[arg(long, value_name = "CMD", requires = "restart")]
    pub restart_command: Option<String>,

    /// Install from this server folder (a copy of DIR/servers/NAME: ca.pem, server-cert.pem,
    /// server-key.pem, daemon.json) instead of the PKI in --dir.
    #[arg(long, value_name = "FOLDER", conflicts_with = "server")]
    pub from: Option<PathBuf>,

    /// Install DIR/servers/NAME [default: the only server of the PKI].
    #[arg(long, value_name = "NAME")]
    pub server: Option<String>,

    /// Also put the dockertls authorization plugin in place: its systemd socket and service,
    /// the revocation list and the policy, and "authorization-plugins" in daemon.json.
    #[arg(long)]
    pub authz: bool,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Issue a client certificate for each NAME from the existing CA.
    Add(ClientAddArgs),
    /// List client certificates with their expiry.
    List(ClientListArgs),
    /// Move a client's files to the backup and revoke its certificate.
    Remove(ClientRemoveArgs),
    /// Revoke a client's certificate (its folder is kept): the authorization plugin refuses it.
    Revoke(ClientRevokeArgs),
    /// Give a client a role (admin, read-only, or one made with dockertls role add).
    Role(ClientRoleArgs),
}

#[derive(Debug, Args)]
pub struct ClientRevokeArgs {
    /// The client whose certificate to revoke.
    #[arg(value_name = "NAME")]
    pub name: String,

    /// Why, as the revocation list records it.
    #[arg(long, value_name = "REASON", value_enum, default_value_t = RevokeReason::Unspecified)]
    pub reason: RevokeReason,
}

#[derive(Debug, Args)]
pub struct ClientRoleArgs {
    /// The client.
    #[arg(value_name = "NAME")]
    pub name: String,

    /// The role: admin, read-only, or a custom role.
    #[arg(value_name = "ROLE")]
    pub role: String,
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

    /// The role the authorization plugin gives them [default: admin].
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
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

    /// Revoke the client certificates this run replaces, once --grace days have passed (by
    /// the next rotate or crl refresh), so their users have time to take their new folders.
    #[arg(long)]
    pub revoke_old: bool,

    /// Days before the replaced client certificates are revoked (0: at once).
    #[arg(
        long,
        value_name = "DAYS",
        requires = "revoke_old",
        default_value_t = 7,
        allow_negative_numbers = true
    )]
    pub grace: i64,
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

    /// Output format (prometheus: node_exporter textfile-collector metrics).
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = VerifyFormat::Text)]
    pub format: VerifyFormat,

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
