//! `dockertls deploy`: the flags checked once into a `deploy::Settings` and the targets, the
//! hosts deployed (several at once with --all), and a line or JSON record per host.

use std::path::Path;
use std::time::Duration;

use crate::cli::{DeployArgs, Format};
use crate::deploy::ssh::{Ssh, SshOption, Target};
use crate::deploy::{self, HostReport, HostState, Settings, Source};
use crate::error::{Error, Exit};
use crate::findings::{Notice, Outcome};
use crate::store;
use crate::store::registry::{self, State};
use crate::store::workspace::Workspace;
use ::time::OffsetDateTime;

/// How long the probe after a restart retries a daemon that does not answer yet.
const PROBE_WAIT: Duration = Duration::from_secs(15);
/// The state file's key, in a server's entry, for the `--remote-root` it was deployed with
/// (only when not `/`: tests and containers).
const REMOTE_ROOT_KEY: &str = "remote-root";
/// The state file's key, in a server's entry, set once it was deployed with `--authz`: later
/// deploys (`deploy --all` from a timer) keep installing its CRL and policy.
const AUTHZ_KEY: &str = crate::authz_policy::keys::SERVER_AUTHZ;
/// The most hosts deployed at once.
const MAX_JOBS: i64 = 64;

/// Runs `deploy`.
pub fn run(dir: &Path, args: &DeployArgs, now: OffsetDateTime) -> Result<Outcome, Error> {
    let options = args
        .ssh_options
        .iter()
        .map(|o| SshOption::parse(o))
        .collect::<Result<Vec<_>, _>>()?;
    // A host given on the command line is checked before the PKI is even read.
    if let Some(host) = &args.host {
        Target::parse(host)?;
    }
    let mut settings = settings(dir, args)?;
    let state = registry::open(dir, now)?;
    // The control sockets of the shared SSH connections: private (0700), removed at the end.
    // Without it (no temporary folder), each call connects anew.
    let control = tempfile::Builder::new()
        .prefix("dockertls-ssh-")
        .tempdir()
        .ok();
    let control_path = control.as_ref().map(|c| c.path().to_path_buf());
    let jobs = targets(dir, args, &state, &options, control_path.as_deref())?;
    if args.all {
        let pairs: Vec<(&Source, &Ssh, &str)> = jobs
            .iter()
            .map(|j| (&j.source, &j.ssh, j.root.as_str()))
            .collect();
        let reports = deploy::deploy_all(&pairs, &settings, args.jobs as usize);
        remember(dir, now, &reports, &jobs);
        return Ok(many(&reports, args.format));
    }
    let Some(job) = jobs.first() else {
        return Err(Error::refused("nothing to deploy"));
    };
    settings.remote_root = job.root.clone();
    let report = deploy::deploy(&job.source, &job.ssh, &settings);
    remember(dir, now, std::slice::from_ref(&report), &jobs);
    Ok(single(report, args.format))
}

/// One host to deploy: the server's folder, how to reach the host, install's root there.
struct Job {
    source: Source,
    ssh: Ssh,
    root: String,
}

/// The (server folder, ssh, remote root) of each host to deploy, all checked before any host
/// is touched: a server that does not exist, a missing or bad host, an unreadable folder.
fn targets(
    dir: &Path,
    args: &DeployArgs,
    state: &State,
    options: &[SshOption],
    control: Option<&Path>,
) -> Result<Vec<Job>, Error> {
    let pki = store::Pki::new(dir);
    let names: Vec<String> = if args.all {
        let remembered: Vec<String> = state
            .servers()
            .iter()
            .filter(|(_, entry)| entry.deploy.is_some())
            .map(|(name, _)| name.clone())
            .collect();
        if remembered.is_empty() {
            return Err(Error::refused(format!(
                "deploy --all: no server of {} has been deployed yet, so none has a host to go to",
                dir.display()
            ))
            .hint("deploy each server once: dockertls deploy NAME [USER@]HOST[:PORT]"));
        }
        remembered
    } else {
        let wanted = args.name.clone().unwrap_or_default();
        if !state.servers().contains_key(&wanted) {
            let known: Vec<&str> = state.servers().keys().map(String::as_str).collect();
            return Err(Error::refused(format!(
                "deploy '{}': {} has no such server (servers: {})",
                crate::escape::value(&wanted),
                dir.display(),
                known.join(", ")
            ))
            .hint("dockertls server list shows them"));
        }
        vec![wanted]
    };
    let mut out = Vec::new();
    for (index, name) in names.into_iter().enumerate() {
        let entry = &state.servers()[&name];
        let host = match (&args.host, &entry.deploy) {
            (Some(given), _) => given.clone(),
            (None, Some(remembered)) => remembered.clone(),
            (None, None) => {
                return Err(Error::refused(format!(
                    "deploy {name}: give its host, as [USER@]HOST[:PORT] (it has not been deployed before)"
                ))
                .hint(format!("dockertls deploy {name} root@{}", entry.host)));
            }
        };
        let target = Target::parse(&host)?;
        let remembered = entry.extra.get(REMOTE_ROOT_KEY).and_then(|v| v.as_str());
        let root = match (&args.remote_root, remembered) {
            (Some(given), _) => given.clone(),
            (None, Some(remembered)) if args.host.is_none() => remembered.to_string(),
            _ => "/".to_string(),
        };
        check_remote_root(&root)?;
        // What is sent must not be changeable by anyone else: the folder, its parents (DIR
        // among them) and its files.
        let folder = pki.server_dir(&name);
        if let Some(problem) = store::folder_trust_problem(&folder) {
            return Err(problem.into_error());
        }
        store::check_entries_trusted(&folder)?;
        let mut source = Source::folder(&folder, &name, Some(&entry.host))?;
        source.authz = args.authz || entry.extra.get(AUTHZ_KEY) == Some(&true.into());
        let ssh = Ssh {
            target,
            options: options.to_vec(),
            control: control.and_then(|folder| job_folder(folder, index)),
        };
        out.push(Job { source, ssh, root });
    }
    Ok(out)
}

/// A folder of its own for job `index`'s control socket: two servers deployed to the same
/// host (same user and port) must not share a connection, or the first job's `ssh -O exit`
/// would end the second's session. None (no sharing) if it cannot be made.
fn job_folder(control: &Path, index: usize) -> Option<std::path::PathBuf> {
    let folder = control.join(index.to_string());
    std::fs::create_dir(&folder).ok()?;
    Some(folder)
}

/// After the run, under the PKI lock: each host that succeeded is remembered for its server
/// (and its remote root, when not `/`). Failing to record it is a warning, not a failure: the
/// hosts are deployed.
fn remember(dir: &Path, now: OffsetDateTime, reports: &[HostReport], jobs: &[Job]) {
    let done: Vec<(usize, &HostReport)> = reports
        .iter()
        .enumerate()
        .filter(|(_, r)| r.error.is_none())
        .collect();
    if done.is_empty() {
        return;
    }
    let result = (|| -> Result<(), Error> {
        let ws = Workspace::open(dir, now)?;
        let mut state = registry::State::load_in(ws.dir())?.unwrap_or_default();
        let mut changed = false;
        for (i, report) in done {
            let root = (jobs[i].root != "/").then(|| serde_json::Value::from(jobs[i].root.clone()));
            if let Some(entry) = state.servers.get_mut(&report.server) {
                let host = Some(jobs[i].ssh.target.display());
                if jobs[i].source.authz && entry.extra.get(AUTHZ_KEY) != Some(&true.into()) {
                    entry.extra.insert(AUTHZ_KEY.into(), true.into());
                    changed = true;
                }
                if entry.deploy != host || entry.extra.get(REMOTE_ROOT_KEY) != root.as_ref() {
                    entry.deploy = host;
                    match root {
                        Some(root) => entry.extra.insert(REMOTE_ROOT_KEY.into(), root),
                        None => entry.extra.shift_remove(REMOTE_ROOT_KEY),
                    };
                    changed = true;
                }
            }
        }
        if changed {
            state.save(&ws)?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        eprintln!(
            "warning: the hosts are deployed, but {} could not record them: {}",
            dir.display(),
            e.message()
        );
    }
}

fn check_remote_root(root: &str) -> Result<(), Error> {
    if !root.starts_with('/') || root.chars().any(char::is_control) {
        return Err(Error::refused(format!(
            "--remote-root '{}': give an absolute path on the host",
            crate::escape::value(root)
        )));
    }
    Ok(())
}

/// Every host's line (or JSON record), in server order; exit 0 when all are done, 1 when some
/// failed.
fn many(reports: &[HostReport], format: Format) -> Outcome {
    let mut stdout = String::new();
    for report in reports {
        match format {
            Format::Text => stdout.push_str(&text(report)),
            Format::Json => stdout.push_str(&format!("{}\n", json(report))),
        }
    }
    let failed = reports.iter().filter(|r| r.error.is_some()).count();
    let mut outcome = Outcome::report(&stdout);
    outcome.exit = exit_of(reports);
    if failed > 0 {
        outcome.notices.push(Notice::Error(Error::failed(format!(
            "{failed} of {} hosts failed (each host's line says what state it is in)",
            reports.len()
        ))));
    }
    outcome
}

/// The settings every host of the run shares, checked before any host is touched.
fn settings(dir: &Path, args: &DeployArgs) -> Result<Settings, Error> {
    if !(1..=MAX_JOBS).contains(&args.jobs) {
        return Err(Error::refused(format!(
            "--jobs {}: give 1 to {MAX_JOBS}",
            args.jobs
        )));
    }
    if let Some(root) = &args.remote_root {
        check_remote_root(root)?;
    }
    if let Some(command) = &args.restart_command {
        let words = shell_words::split(command).unwrap_or_default();
        if words.is_empty() || command.chars().any(char::is_control) {
            return Err(Error::refused(format!(
                "--restart-command '{}': give a command line without control characters",
                crate::escape::value(command)
            ))
            .hint("e.g. --restart-command 'service docker restart'"));
        }
    }
    let probe_client = if args.restart {
        Some(probe_client(dir)?)
    } else {
        None
    };
    Ok(Settings {
        restart: args.restart,
        force: args.force,
        restart_command: args.restart_command.clone(),
        remote_root: "/".into(),
        probe_client,
        probe_wait: PROBE_WAIT,
    })
}

/// The client folder the daemon is probed with after a restart: the first one with its key.
fn probe_client(dir: &Path) -> Result<(String, std::path::PathBuf), Error> {
    let pki = store::Pki::new(dir);
    let mut names = store::state::client_names(dir);
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let folder = pki.client_dir(&name);
            (name, folder)
        })
        .find(|(_, folder)| folder.join(store::layout::CLIENT_KEY).is_file())
        .ok_or_else(|| {
            Error::refused(format!(
                "--restart probes the daemon afterwards with a client folder of {}, and it has none with its key",
                dir.display()
            ))
            .hint("add one first: dockertls client add NAME")
        })
}

/// One host's result as the command's outcome: its lines on stdout, its error on stderr.
fn single(report: HostReport, format: Format) -> Outcome {
    let stdout = match format {
        // A failure's line is the error on stderr; stdout keeps what was done before it.
        Format::Text if report.error.is_some() => report
            .lines
            .iter()
            .map(|line| format!("{line}\n"))
            .collect(),
        Format::Text => text(&report),
        Format::Json => format!("{}\n", json(&report)),
    };
    let mut outcome = Outcome::report(&stdout);
    if let Some(error) = report.error {
        outcome.exit = error.exit();
        outcome.notices.push(Notice::Error(error));
    }
    outcome
}

/// `HOST (server NAME): STATE`, then what was done, indented.
pub fn text(report: &HostReport) -> String {
    let verdict = match (&report.error, report.state) {
        (None, HostState::Current) => "done, already current".to_string(),
        (None, _) => "done".to_string(),
        (Some(e), state) => format!("failed ({}): {}", state.name(), e.message()),
    };
    let mut out = format!("{} (server {}): {verdict}\n", report.host, report.server);
    for line in &report.lines {
        out.push_str(&format!("  {line}\n"));
    }
    out
}

/// The JSON record of one host.
pub fn json(report: &HostReport) -> serde_json::Value {
    serde_json::json!({
        "server": report.server,
        "host": report.host,
        "ok": report.error.is_none(),
        "state": report.state.name(),
        "error": report.error.as_ref().map(|e| e.message().to_string()),
        "hint": report.error.as_ref().and_then(|e| e.hint_text().map(str::to_string)),
        "details": report.lines,
    })
}

/// The exit status of a run over several hosts: 0 all done, 1 some failed.
pub fn exit_of(reports: &[HostReport]) -> Exit {
    if reports.iter().all(|r| r.error.is_none()) {
        Exit::Success
    } else {
        Exit::FailedOrWarning
    }
}
