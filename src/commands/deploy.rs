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

/// How long the probe after a restart retries a daemon that does not answer yet.
const PROBE_WAIT: Duration = Duration::from_secs(15);
/// The most hosts deployed at once.
const MAX_JOBS: i64 = 64;

/// Runs `deploy`.
pub fn run(dir: &Path, args: &DeployArgs) -> Result<Outcome, Error> {
    let options = args
        .ssh_options
        .iter()
        .map(|o| SshOption::parse(o))
        .collect::<Result<Vec<_>, _>>()?;
    let settings = settings(dir, args)?;
    if args.all {
        return Err(
            Error::refused("deploy --all needs the fleet layout (servers/NAME)")
                .hint("deploy one server: dockertls deploy NAME [USER@]HOST[:PORT]"),
        );
    }
    let name = args.name.clone().unwrap_or_default();
    let Some(host) = &args.host else {
        return Err(Error::refused(format!(
            "deploy {name}: give the host, as [USER@]HOST[:PORT]"
        ))
        .hint(format!("dockertls deploy {name} root@docker1.example.com")));
    };
    let ssh = Ssh {
        target: Target::parse(host)?,
        options,
    };
    store::check_trusted(dir)?;
    let source = Source::legacy(dir, &name)?;
    let report = deploy::deploy(&source, &ssh, &settings);
    Ok(single(report, args.format))
}

/// The settings every host of the run shares, checked before any host is touched.
fn settings(dir: &Path, args: &DeployArgs) -> Result<Settings, Error> {
    if !(1..=MAX_JOBS).contains(&args.jobs) {
        return Err(Error::refused(format!(
            "--jobs {}: give 1 to {MAX_JOBS}",
            args.jobs
        )));
    }
    let root = &args.remote_root;
    if !root.starts_with('/') || root.chars().any(char::is_control) {
        return Err(Error::refused(format!(
            "--remote-root {}: give an absolute path on the host",
            crate::escape::field(&format!("{root:?}"))
        )));
    }
    if let Some(command) = &args.restart_command {
        let words = shell_words::split(command).unwrap_or_default();
        if words.is_empty() || command.chars().any(char::is_control) {
            return Err(Error::refused(format!(
                "--restart-command {}: give a command line without control characters",
                crate::escape::field(&format!("{command:?}"))
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
        remote_root: root.clone(),
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
