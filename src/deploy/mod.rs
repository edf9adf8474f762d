//! `deploy`: put one server's self-contained folder on its daemon host over SSH and run
//! `dockertls install` there. One look at the host (changes nothing) decides what to send:
//! files already installed with the same SHA-256 are not sent again, and this binary goes
//! only where the host has no identical one (after checking the OS, architecture and C
//! library). Then one connection carries a tar stream into a private folder the remote script
//! always removes, and runs install, which is transactional: a failure leaves the host's
//! previous files working.

pub mod remote;
pub mod source;
pub mod ssh;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::error::Error;
use remote::{Entry, Host};
pub use source::Source;
use ssh::Ssh;

/// How to deploy, the same for every host of a run (validated from the flags).
#[derive(Debug, Clone)]
pub struct Settings {
    pub restart: bool,
    pub force: bool,
    /// install's `--restart-command` on the host (for hosts without systemd, and tests).
    pub restart_command: Option<String>,
    /// install's `--root` on the host ("/" unless for tests and containers).
    pub remote_root: String,
    /// The client folder the daemon is probed with after a restart.
    pub probe_client: Option<(String, PathBuf)>,
    /// How long the probe after a restart may keep retrying a daemon that is still starting.
    pub probe_wait: Duration,
}

/// Where a host stands after a deploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostState {
    /// Nothing was sent or changed there.
    Unchanged,
    /// install refused or rolled back: the previous files are in place and working.
    PreviousKept,
    /// The connection broke while install ran: install is transactional (the previous or the
    /// new files, never a mix); `dockertls deploy` again finishes or repeats it.
    Unknown,
    /// The new files are in place (dockerd may still need a restart).
    Installed,
    /// The files were already current: nothing was written.
    Current,
}

impl HostState {
    /// A few words for the per-host line and the JSON record.
    pub fn name(self) -> &'static str {
        match self {
            HostState::Unchanged => "unchanged",
            HostState::PreviousKept => "previous files kept",
            HostState::Unknown => "unknown (connection lost during install)",
            HostState::Installed => "installed",
            HostState::Current => "already current",
        }
    }
}

/// What happened on one host.
pub struct HostReport {
    pub server: String,
    pub host: String,
    pub state: HostState,
    /// None when everything succeeded.
    pub error: Option<Error>,
    /// What install printed there, and what deploy added (sent files, restart, probe).
    pub lines: Vec<String>,
}

impl HostReport {
    fn failed(source: &Source, ssh: &Ssh, state: HostState, error: Error) -> HostReport {
        HostReport {
            server: source.name.clone(),
            host: ssh.target.display(),
            state,
            error: Some(error),
            lines: Vec::new(),
        }
    }
}

/// Deploys one server folder to one host; never panics, every failure is in the report. Its
/// calls share one SSH connection, ended here.
pub fn deploy(source: &Source, ssh: &Ssh, settings: &Settings) -> HostReport {
    let report = deploy_on(source, ssh, settings);
    ssh.close();
    report
}

fn deploy_on(source: &Source, ssh: &Ssh, settings: &Settings) -> HostReport {
    let unchanged = |e| HostReport::failed(source, ssh, HostState::Unchanged, e);
    let hostname = match ssh.check_config() {
        Ok(hostname) => hostname,
        Err(e) => return unchanged(e),
    };
    let host = match look(source, ssh, settings) {
        Ok(host) => host,
        Err(e) => return unchanged(e),
    };
    if let Err(e) = judge_restart(source, ssh, settings, &host) {
        return unchanged(e);
    }
    let plan = match plan_sending(source, ssh, &host) {
        Ok(plan) => plan,
        Err(e) => return unchanged(e),
    };
    let mut report = match send_and_install(source, ssh, settings, &plan) {
        Ok(report) => report,
        Err((state, e)) => return HostReport::failed(source, ssh, state, e),
    };
    if settings.restart
        && let Err(e) = restart_and_probe(source, ssh, &hostname, settings, &mut report)
    {
        report.error = Some(e);
    }
    report
}

/// After install with `--restart`: install restarted dockerd if it changed something; a host
/// that was already current is restarted only when its daemon does not serve this server
/// certificate yet (a deploy without --restart before, say), so a timer's run stops nothing.
/// Then the probe from here.
fn restart_and_probe(
    source: &Source,
    ssh: &Ssh,
    hostname: &str,
    settings: &Settings,
    report: &mut HostReport,
) -> Result<(), Error> {
    if report.state == HostState::Current {
        if serves_ours(source, hostname, settings) {
            report
                .lines
                .push("nothing changed there and dockerd serves these files: not restarted".into());
        } else {
            restart_remote(ssh, settings)?;
            report.lines.push(
                "nothing changed there, but dockerd did not serve these files: restarted it".into(),
            );
        }
    }
    probe_after_restart(source, hostname, settings, &mut report.lines)
}

/// Whether the daemon answers with exactly the server certificate of `source`.
fn serves_ours(source: &Source, hostname: &str, settings: &Settings) -> bool {
    let Some((_, folder)) = &settings.probe_client else {
        return false;
    };
    let Some(ours) = source.server_cert_sha256() else {
        return false;
    };
    let endpoint = crate::probe::Endpoint {
        host: probe_host(source, hostname),
        port: source.listen_port,
    };
    let hint = |_: &[String], _: &str| String::new();
    let now = ::time::OffsetDateTime::now_utc();
    let report = crate::probe::probe(&endpoint, folder, Duration::from_secs(10), now, &hint);
    report.server_cert.is_some_and(|c| c.der_sha256 == ours)
}

/// Restarts dockerd on the host: systemctl, or the `--restart-command` words.
fn restart_remote(ssh: &Ssh, settings: &Settings) -> Result<(), Error> {
    let words = match &settings.restart_command {
        Some(command) => shell_words::split(command).unwrap_or_default(),
        None => Vec::new(),
    };
    let mut args = vec![remote::RESTART];
    args.extend(words.iter().map(String::as_str));
    let ran = ssh.run(&ssh::remote_command(remote::AS_ROOT, &args), b"")?;
    match ran.status {
        Some(0) => Ok(()),
        Some(255) => Err(ssh::connection_error(&ssh.target, &ran.stderr)),
        _ => Err(Error::failed(format!(
            "restarting dockerd on {} failed: {}; its files are current",
            ssh.target.display(),
            first_line(&ran.stderr)
        ))
        .hint("see the daemon's log there (journalctl -u docker)")),
    }
}

/// The look at the host: who we are there, its system, and what is installed.
fn look(source: &Source, ssh: &Ssh, settings: &Settings) -> Result<Host, Error> {
    let installed: Vec<&str> = source.tls.iter().map(|f| f.installed.as_str()).collect();
    let mut args = vec![remote::LOOK, settings.remote_root.as_str()];
    args.extend(&installed);
    let ran = ssh.run(&ssh::remote_command(remote::AS_ROOT, &args), b"")?;
    if ran.status == Some(255) {
        return Err(ssh::connection_error(&ssh.target, &ran.stderr));
    }
    if let Some(why) = remote::sudo_problem(&ran.stderr) {
        return Err(sudo_error(ssh, why));
    }
    if ran.status != Some(0) {
        return Err(Error::failed(format!(
            "cannot look at {}: {}; nothing was sent",
            ssh.target.display(),
            first_line(&ran.stderr)
        )));
    }
    Ok(Host::parse(&ran.stdout, installed.len()))
}

fn sudo_error(ssh: &Ssh, why: &str) -> Error {
    let user = ssh.target.user.as_deref().unwrap_or("that user");
    Error::failed(format!(
        "{}: {why}; nothing was changed",
        ssh.target.display()
    ))
    .hint(format!(
        "deploy as root@{} (PermitRootLogin prohibit-password), or give {user} passwordless sudo there (a sudoers line: {user} ALL=(root) NOPASSWD: ALL)",
        ssh.target.host
    ))
}

/// `--restart` needs a dockerd there, and stops its containers unless live-restore is on.
fn judge_restart(
    source: &Source,
    ssh: &Ssh,
    settings: &Settings,
    host: &Host,
) -> Result<(), Error> {
    if !settings.restart {
        return Ok(());
    }
    let name = ssh.target.display();
    if host.dockerd.is_none() {
        return Err(Error::failed(format!(
            "{name} has no dockerd on its PATH: --restart has nothing to restart; nothing was sent"
        ))
        .hint("install Docker there first (Debian: apt-get install docker.io), or deploy without --restart"));
    }
    if !settings.force && !host.live_restore() && !source.live_restore {
        return Err(Error::refused(format!(
            "restarting dockerd on {name} stops its running containers (live-restore is not on in its daemon.json); nothing was sent"
        ))
        .hint("add --force to restart anyway, or set \"live-restore\": true in its /etc/docker/daemon.json first"));
    }
    Ok(())
}

/// What goes over the wire, and what the host copies from its installed files instead.
struct Sending {
    /// (file name in the folder, installed path) of the files already current there.
    current: Vec<(String, String)>,
    /// Whether this binary is sent (else the host's own dockertls is used).
    binary: bool,
    notes: Vec<String>,
}

fn plan_sending(source: &Source, ssh: &Ssh, host: &Host) -> Result<Sending, Error> {
    let mut current = Vec::new();
    for (file, installed) in source.tls.iter().zip(&host.installed) {
        match (&file.sha256, installed) {
            (Some(ours), Some(theirs)) if ours == theirs => {}
            (Some(_), _) => continue,
            // Not in the folder (a key that lives elsewhere): the host's own is used.
            (None, Some(_)) => {}
            (None, None) => {
                return Err(Error::refused(format!(
                    "server {} has no {} here (it lives elsewhere), and {} has none at {}; nothing was sent",
                    source.name,
                    file.name,
                    ssh.target.display(),
                    file.installed
                ))
                .hint("put the key made with dockertls request at that path on the host first, then deploy again"));
            }
        }
        current.push((file.name.clone(), file.installed.clone()));
    }
    let ours = own_binary()?;
    let mut notes = Vec::new();
    let binary = match &host.binary {
        Some((sum, _)) if *sum == ours.sha256 => false,
        other => match remote::binary_runs_there(&ours.os, ours.libc.as_deref(), host) {
            Ok(()) => true,
            Err(why) => match other {
                Some((_, version)) if *version == own_version() => {
                    notes.push(format!("using the host's own {version}: {why}"));
                    false
                }
                _ => {
                    return Err(Error::failed(format!(
                        "cannot run dockertls on {}: {why}, and it has no {} of its own; nothing was sent",
                        ssh.target.display(),
                        own_version()
                    ))
                    .hint("install the same dockertls version on that host (on its PATH), then deploy again"));
                }
            },
        },
    };
    Ok(Sending {
        current,
        binary,
        notes,
    })
}

/// Sends the folder (and the binary) and runs install there.
fn send_and_install(
    source: &Source,
    ssh: &Ssh,
    settings: &Settings,
    plan: &Sending,
) -> Result<HostReport, (HostState, Error)> {
    let unchanged = |e| (HostState::Unchanged, e);
    let ours = own_binary().map_err(unchanged)?;
    let skipped = |name: &str| plan.current.iter().any(|(n, _)| n == name);
    let mut entries: Vec<Entry<'_>> = source
        .files
        .iter()
        .filter(|f| !skipped(&f.name))
        .map(|f| Entry {
            path: f.path.clone(),
            contents: &f.contents,
            mode: f.mode,
        })
        .collect();
    if plan.binary {
        entries.push(Entry {
            path: "dockertls".into(),
            contents: &ours.bytes,
            mode: 0o700,
        });
    }
    let stream = remote::bundle(&entries).map_err(unchanged)?;
    let command = deploy_command(settings, source, plan);
    let words: Vec<&str> = command.iter().map(String::as_str).collect();
    let ran = ssh
        .run(&ssh::remote_command(remote::AS_ROOT, &words), &stream)
        .map_err(unchanged)?;
    let mut lines = plan.notes.clone();
    let sent: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    lines.push(format!(
        "sent {}{}",
        if sent.is_empty() {
            "nothing".into()
        } else {
            sent.join(", ")
        },
        if plan.current.is_empty() {
            String::new()
        } else {
            let names: Vec<&str> = plan.current.iter().map(|(n, _)| n.as_str()).collect();
            format!(" (already current there, not sent: {})", names.join(", "))
        }
    ));
    let state = judge_install(ssh, &ran)?;
    lines.extend(ran.stdout.lines().map(str::to_string));
    if settings.restart && state == HostState::Current {
        lines.push("nothing changed there, so dockerd was not restarted".into());
    }
    lines.extend(
        ran.stderr
            .lines()
            .filter(|l| l.starts_with("note: "))
            .map(str::to_string),
    );
    Ok(HostReport {
        server: source.name.clone(),
        host: ssh.target.display(),
        state,
        error: None,
        lines,
    })
}

/// The deploy script's arguments: prefix, folder, install mode, the files to copy there, and
/// install's flags.
fn deploy_command(settings: &Settings, source: &Source, plan: &Sending) -> Vec<String> {
    let mut words = vec![
        remote::DEPLOY.to_string(),
        settings.remote_root.clone(),
        source::STREAM_FOLDER.to_string(),
        plan.current.len().to_string(),
    ];
    for (name, installed) in &plan.current {
        words.push(name.clone());
        words.push(installed.clone());
    }
    if settings.force {
        words.push("--force".into());
    }
    if source.authz {
        words.push("--authz".into());
    }
    if settings.restart {
        words.push("--restart".into());
        if let Some(command) = &settings.restart_command {
            words.push("--restart-command".into());
            words.push(command.clone());
        }
    }
    words
}

/// What install's exit says about the host.
fn judge_install(ssh: &Ssh, ran: &ssh::Ran) -> Result<HostState, (HostState, Error)> {
    let name = ssh.target.display();
    let script_error = || {
        ran.stderr
            .lines()
            .find_map(|l| l.strip_prefix("dockertls-deploy: "))
            .unwrap_or("no reason given")
            .to_string()
    };
    match ran.status {
        Some(0) if ran.stdout.contains("nothing to change") => Ok(HostState::Current),
        Some(0) => Ok(HostState::Installed),
        Some(255) => Err((
            HostState::Unknown,
            ssh::connection_error(&ssh.target, &ran.stderr),
        )),
        Some(
            remote::NO_EXEC_DIR | remote::UNPACK_FAILED | remote::COPY_FAILED | remote::NO_BINARY,
        ) => Err((
            HostState::Unchanged,
            Error::failed(format!("{name}: {}; nothing was installed", script_error())),
        )),
        _ => {
            let (message, hint) = install_error(&ran.stderr);
            let error = Error::failed(format!(
                "install on {name} failed: {message}; the host keeps its previous files"
            ));
            let error = match hint {
                Some(hint) => error.hint(hint),
                None => error,
            };
            Err((HostState::PreviousKept, error))
        }
    }
}

/// install's own `error:` and `hint:` lines from its stderr.
fn install_error(stderr: &str) -> (String, Option<String>) {
    // The remote dockertls's own lines, which cut the values they echo (an older one's are
    // bounded by the 16 KiB guard of every printed line).
    let message = stderr
        .lines()
        .find_map(|l| l.strip_prefix("error: "))
        .map_or_else(|| first_line(stderr), str::to_string);
    let hint = stderr
        .lines()
        .find_map(|l| l.strip_prefix("hint: "))
        .map(str::to_string);
    (message, hint)
}

fn first_line(text: &str) -> String {
    crate::escape::excerpt(
        text.lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("no reason given"),
    )
}

/// After `--restart`: the daemon probed from here with a client folder of the PKI, retried
/// while it is still starting (a refused connection) for at most `probe_wait`.
fn probe_after_restart(
    source: &Source,
    ssh_hostname: &str,
    settings: &Settings,
    lines: &mut Vec<String>,
) -> Result<(), Error> {
    let endpoint = crate::probe::Endpoint {
        host: probe_host(source, ssh_hostname),
        port: source.listen_port,
    };
    let shown = if endpoint.host.contains(':') {
        format!("tcp://[{}]:{}", endpoint.host, endpoint.port)
    } else {
        format!("tcp://{}:{}", endpoint.host, endpoint.port)
    };
    let Some((client, folder)) = &settings.probe_client else {
        lines.push(format!(
            "no client folder to probe with: run dockertls probe {} --client NAME",
            shown
        ));
        return Ok(());
    };
    let hint = |_: &[String], _: &str| String::from("dockertls rotate --server --allow ADDR");
    let deadline = Instant::now() + settings.probe_wait;
    let report = loop {
        let now = ::time::OffsetDateTime::now_utc();
        let report = crate::probe::probe(&endpoint, folder, Duration::from_secs(10), now, &hint);
        let refused = report
            .checks
            .iter()
            .any(|c| c.id == "connect" && c.status == crate::audit::Status::Fail);
        if !refused || Instant::now() >= deadline {
            break report;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let status = report.status();
    lines.push(format!("probe of {} as {client}: {}", shown, status.name()));
    let bad: Vec<String> = report
        .checks
        .iter()
        .filter(|c| c.status == crate::audit::Status::Fail)
        .map(|c| format!("{}: {}", c.id, c.message))
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    Err(Error::failed(format!(
        "the daemon on {} does not pass the probe after the restart ({}); the new files are installed",
        shown,
        bad.join("; ")
    ))
    .hint(format!(
        "see its log (journalctl -u docker), and run: dockertls probe {} --client {client}",
        shown
    )))
}

/// The name the probe dials: the server's own host (what its clients dial, and what its
/// certificate names) when it resolves from here, else the host ssh connected to.
fn probe_host(source: &Source, ssh_hostname: &str) -> String {
    use std::net::ToSocketAddrs;
    match &source.host {
        Some(host)
            if (host.as_str(), source.listen_port)
                .to_socket_addrs()
                .is_ok() =>
        {
            host.clone()
        }
        _ => ssh_hostname.to_string(),
    }
}

/// This running executable, read once: its bytes, SHA-256, system and C library.
pub struct OwnBinary {
    pub bytes: Zeroizing<Vec<u8>>,
    pub sha256: String,
    /// "Linux x86_64", as `uname -s -m` says.
    pub os: String,
    /// "glibc 2.36" when linked against glibc (this machine's version, as a floor).
    pub libc: Option<String>,
}

/// The most this binary may weigh when read to be sent.
const MAX_BINARY: u64 = 512 << 20;

fn own_binary() -> Result<&'static OwnBinary, Error> {
    static OWN: OnceLock<Result<OwnBinary, String>> = OnceLock::new();
    OWN.get_or_init(read_own_binary)
        .as_ref()
        .map_err(|e| Error::failed(e.clone()))
}

fn read_own_binary() -> Result<OwnBinary, String> {
    use std::io::Read;
    let mut bytes = Zeroizing::new(Vec::new());
    std::fs::File::open("/proc/self/exe")
        .and_then(|f| f.take(MAX_BINARY).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read this dockertls binary (/proc/self/exe): {e}"))?;
    let uname = rustix::system::uname();
    let os = format!(
        "{} {}",
        uname.sysname().to_string_lossy(),
        uname.machine().to_string_lossy()
    );
    let libc = cfg!(target_env = "gnu").then(|| {
        std::process::Command::new("getconf")
            .arg("GNU_LIBC_VERSION")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|v| v.starts_with("glibc "))
            .unwrap_or_else(|| "glibc 99.0".into())
    });
    Ok(OwnBinary {
        sha256: sha256_hex(&bytes),
        bytes,
        os,
        libc,
    })
}

/// `dockertls VERSION`, as `--version` prints it.
pub fn own_version() -> String {
    format!("dockertls {}", env!("CARGO_PKG_VERSION"))
}

/// The SHA-256 of `bytes` in lower-case hex (as sha256sum prints it).
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Deploys each (server, host, remote root) `jobs` at a time; the reports in the order given.
pub fn deploy_all(
    pairs: &[(&Source, &Ssh, &str)],
    settings: &Settings,
    jobs: usize,
) -> Vec<HostReport> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<Option<HostReport>>> = Mutex::new(pairs.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, pairs.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((source, ssh, root)) = pairs.get(i) else {
                        break;
                    };
                    let mut settings = settings.clone();
                    settings.remote_root = root.to_string();
                    let report = deploy(source, ssh, &settings);
                    if let Ok(mut done) = done.lock() {
                        done[i] = Some(report);
                    }
                }
            });
        }
    });
    done.into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}
