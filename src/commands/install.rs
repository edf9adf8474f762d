//! `dockertls install`: apply the install plan atomically, with backups, or show it.

use std::path::Path;
use std::process::Command;

use ::time::OffsetDateTime;

use crate::cli::InstallArgs;
use crate::error::Error;
use crate::findings::Outcome;
use crate::install::confined::Root;
use crate::install::transaction::{self, Change};
use crate::install::{self, Plan, Planned, Source};
use crate::store;
use crate::store::layout::Legacy;
use crate::store::registry::{self, State};

/// Runs `install`.
pub fn run(dir: &Path, args: &InstallArgs, now: OffsetDateTime) -> Result<Outcome, Error> {
    let root = open_root(args)?;
    // eco (issue 14): the host side only; the PKI is not needed.
    if args.rollback {
        let mut out = crate::install::rollback::run(&root, &store::backup_stamp(now))?;
        out.push_str("next: systemctl daemon-reload && systemctl restart docker\n");
        return Ok(Outcome::report(&out));
    }
    let mut source = source(dir, args)?;
    source.authz = args.authz;
    // The PKI it installs from must not be changeable by anyone else (checked again before
    // anything is written).
    check_source_trusted(&source)?;
    let pending = transaction::pending(&root)?;
    if args.dry_run {
        if let Some(journal) = &pending {
            // The files are half switched: a diff against them would mislead.
            return Ok(Outcome::report(&format!(
                "would first finish or undo the install interrupted at {journal}: run dockertls install, then --dry-run again for the diff\ndry run: nothing was changed\n"
            )));
        }
        return dry_run(&source, &root, args.force, now);
    }
    // Everything is checked before anything is created (a refusal changes nothing) ...
    if pending.is_none() {
        let plan = install::plan(install::read(&source, &root, now)?, args.force)?;
        install::check_host_folders(&root, &plan)?;
        judge_merged(&plan)?;
        if !plan.files.iter().any(Planned::changes) {
            return Ok(nothing_to_change(&plan));
        }
    }
    // ... then again under the lock, after finishing or undoing an interrupted run.
    let journal_dir = transaction::lock(&root)?;
    if let Some(line) = transaction::recover(&root, &journal_dir)? {
        eprintln!("note: {line}");
    }
    let plan = install::plan(install::read(&source, &root, now)?, args.force)?;
    let changing: Vec<&Planned> = plan.files.iter().filter(|f| f.changes()).collect();
    if changing.is_empty() {
        return Ok(nothing_to_change(&plan));
    }
    for note in &plan.notes {
        eprintln!("note: {note}");
    }
    install::check_host_folders(&root, &plan)?;
    judge_merged(&plan)?;
    validate_daemon_json(&plan)?;
    // Again just before writing: the source must not have become changeable meanwhile.
    check_source_trusted(&source)?;
    let changes = changes_of(&plan, &changing);
    // eco (issue 14): with the record install --rollback reads.
    let applied = crate::install::rollback::apply_recorded(
        &root,
        &journal_dir,
        &changes,
        &store::backup_stamp(now),
    )?;
    for note in &applied.notes {
        eprintln!("note: {note}");
    }
    let mut out = report(&plan, &changing, &applied);
    if args.restart {
        // From a server folder (--from, as deploy runs it) there is no client folder here to
        // probe with: the probe is the caller's (deploy probes from the operator's machine).
        let pki = args.from.is_none().then_some(dir);
        out.push_str(&restart(
            pki,
            args.restart_command.as_deref(),
            plan.listen_port,
            args.authz,
            now,
        )?);
    } else {
        // The plugin's socket before docker: a dockerd whose daemon.json names a plugin it
        // cannot reach exits at start.
        let socket = if args.authz {
            format!(" && systemctl enable --now {}", install::authz::SOCKET_NAME)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "next: systemctl daemon-reload{socket} && systemctl restart docker, then from a client: dockertls probe tcp://HOST:{} --client NAME\n",
            plan.listen_port
        ));
    }
    Ok(Outcome::report(&out))
}

/// Where the server files come from: `--from FOLDER` (a self-contained server folder), or
/// the PKI in DIR: `--server NAME`, its only server, a PKI of the first format (read as it
/// is: install, run as root on the daemon host, never rewrites the PKI), or DIR itself when
/// it is a server folder. Nothing is written.
fn source(dir: &Path, args: &InstallArgs) -> Result<Source, Error> {
    if let Some(from) = &args.from {
        let meta = std::fs::symlink_metadata(from);
        if !meta.as_ref().is_ok_and(std::fs::Metadata::is_dir) {
            let what = match meta {
                Ok(m) if m.file_type().is_symlink() => {
                    "is a symbolic link, which dockertls does not follow"
                }
                Ok(_) => "is not a folder",
                Err(_) => "does not exist",
            };
            return Err(Error::refused(format!("--from {}: {what}", crate::escape::path(from))).hint(
                "give the server folder to install: a copy of DIR/servers/NAME (ca.pem, server-cert.pem, server-key.pem, daemon.json)",
            ));
        }
        return Ok(Source::server_folder(from));
    }
    if let Some(name) = &args.server {
        registry::parse_server_name("--server", name)?;
    }
    let pki = store::Pki::new(dir);
    let exists = |p: std::path::PathBuf| std::fs::symlink_metadata(p).is_ok();
    if exists(pki.state_file()) {
        store::check_trusted(dir)?;
        let state = State::load(dir)?.unwrap_or_default();
        let name = state.resolve_server(dir, args.server.as_deref())?;
        return Ok(Source::pki_server(dir, &name));
    }
    if let Some(name) = &args.server {
        return Err(Error::refused(format!(
            "--server {name}: {} has no state file ({}), so no named servers",
            dir.display(),
            pki.state_file().display()
        ))
        .hint("give the PKI folder that holds servers/NAME with --dir, or the server folder with --from"));
    }
    if exists(pki.path(Legacy::SERVER_DIR)) {
        return Ok(Source::legacy(dir));
    }
    if exists(dir.join(store::layout::SERVER_CERT)) {
        return Ok(Source::server_folder(dir));
    }
    Err(Error::refused(format!(
        "--dir {} holds no server folder to install",
        dir.display()
    ))
    .hint("give the server folder with --from FOLDER (a copy of DIR/servers/NAME), or the PKI with --dir"))
}

/// The folder install reads must be one no one else could change: the folder and its
/// parents, and every entry in it (the PKI's folders, or the server folder's files).
fn check_source_trusted(source: &Source) -> Result<(), Error> {
    store::check_trusted(&source.root)?;
    // The files install reads: those of the server folder (the PKI's check covers folders).
    store::check_entries_trusted(&source.root.join(&source.folder))
}

/// The root folder install works under, after checking the flags that go with it.
fn open_root(args: &InstallArgs) -> Result<Root, Error> {
    if !args.root.is_absolute() {
        return Err(Error::Refused(format!(
            "--root {}: give an absolute path",
            crate::escape::path(&args.root)
        )));
    }
    if args.restart && args.restart_command.is_none() && args.root != Path::new("/") {
        return Err(Error::Refused(
            "--restart acts on this machine's systemd: it does not go with --root".into(),
        ));
    }
    Root::open(&args.root).map_err(|_| {
        Error::Refused(format!(
            "--root {} is not a directory",
            crate::escape::path(&args.root)
        ))
    })
}

/// Says that everything is in place (with the plan's notes).
fn nothing_to_change(plan: &Plan) -> Outcome {
    for note in &plan.notes {
        eprintln!("note: {note}");
    }
    Outcome::report("nothing to change: the TLS files, daemon.json and the drop-in are in place\n")
}

/// The transaction's changes: the files that change, with the folder mode each needs.
fn changes_of<'a>(plan: &Plan, changing: &[&'a Planned]) -> Vec<Change<'a>> {
    changing
        .iter()
        .map(|file| {
            let (folder, name) = file.split();
            let is_tls = folder == plan.tls_dir;
            Change {
                dir_mode: if is_tls { store::PRIVATE_DIR } else { 0o755 },
                dir: folder,
                name,
                contents: &file.contents,
                mode: file.mode,
                existed: file.existing.is_some(),
                backed_up: file.contents_change(),
            }
        })
        .collect()
}

/// What was done: folders and files created or updated, backups, flags left out.
fn report(plan: &Plan, changing: &[&Planned], applied: &transaction::Applied) -> String {
    let mut out = String::new();
    if applied.created_dirs.contains(&plan.tls_dir) {
        out.push_str(&format!("created {} (0700)\n", plan.tls_dir));
    }
    for file in changing {
        let verb = if file.existing.is_some() {
            "updated"
        } else {
            "created"
        };
        out.push_str(&format!(
            "{verb} {} ({:04o}, root:root)\n",
            file.host_path, file.mode
        ));
    }
    for backup in &applied.backups {
        out.push_str(&format!("backed up the previous file as {backup}\n"));
    }
    if !plan.removed_flags.is_empty() {
        out.push_str(&format!(
            "the drop-in starts dockerd without {} (daemon.json sets that now)\n",
            plan.removed_flags.join(", ")
        ));
    }
    out
}

/// --dry-run: the diffs, nothing written or created.
fn dry_run(
    source: &Source,
    root: &Root,
    force: bool,
    now: OffsetDateTime,
) -> Result<Outcome, Error> {
    let plan = install::plan(install::read(source, root, now)?, force)?;
    install::check_host_folders(root, &plan)?;
    judge_merged(&plan)?;
    for note in &plan.notes {
        eprintln!("note: {note}");
    }
    let mut out = String::new();
    let changing: Vec<&Planned> = plan.files.iter().filter(|f| f.changes()).collect();
    for file in &changing {
        out.push_str(&describe(file));
    }
    if changing.is_empty() {
        out.push_str("nothing to change: everything is in place\n");
    }
    out.push_str("dry run: nothing was changed\n");
    Ok(Outcome::report(&out))
}

/// A file's entry in the dry run: a unified diff for text, a line for PEM material.
fn describe(file: &Planned) -> String {
    let action = if file.existing.is_some() {
        "change"
    } else {
        "create"
    };
    if file.secret || file.host_path.ends_with(".pem") {
        let what = if file.secret {
            "a private key, not shown"
        } else if file.host_path.ends_with(crate::store::layout::CRL) {
            "a certificate revocation list"
        } else {
            "a certificate"
        };
        let same = file
            .existing
            .as_ref()
            .is_some_and(|old| old.contents.as_slice() == file.contents.as_slice());
        let detail = if same {
            "same contents; mode or owner differ"
        } else {
            what
        };
        return format!(
            "would {action} {} ({:04o}, root:root): {detail}\n",
            file.host_path, file.mode
        );
    }
    let old = file
        .existing
        .as_ref()
        .map(|old| String::from_utf8_lossy(&old.contents).into_owned())
        .unwrap_or_default();
    let new = String::from_utf8_lossy(&file.contents);
    let from = if file.existing.is_some() {
        file.host_path.clone()
    } else {
        "/dev/null".into()
    };
    let diff = similar::TextDiff::from_lines(old.as_str(), new.as_ref())
        .unified_diff()
        .header(&from, &file.host_path)
        .to_string();
    let mut text = format!(
        "would {action} {} ({:04o}, root:root)\n",
        file.host_path, file.mode
    );
    if diff.is_empty() {
        text.push_str("  (same contents; mode or owner differ)\n");
    } else {
        text.push_str(&diff);
    }
    text
}

/// Refuses a merged daemon.json that verify would fail (a `hosts` entry dockerd refuses, a key
/// in the wrong case, `hosts` as a string...): dockerd 20.10 has no --validate, and would then
/// not start after the restart.
fn judge_merged(plan: &Plan) -> Result<(), Error> {
    let Some(file) = merged_daemon_json(plan) else {
        return Ok(());
    };
    let mut findings = crate::audit::checks::Findings::default();
    crate::audit::daemon_json::judge(&file.contents, install::DAEMON_JSON, &mut findings);
    let failed = findings.into_checks().into_iter().find(|c| {
        c.status == crate::audit::Status::Fail && (c.id == "daemon-config" || c.id == "tlsverify")
    });
    match failed {
        Some(check) => Err(Error::refused(format!(
            "the merged {}: {}; nothing was changed",
            install::DAEMON_JSON,
            check.message
        ))
        .hint(format!(
            "fix that in the PKI's daemon.json or in {} (dockertls verify --daemon-config FILE checks a file), then run dockertls install again",
            install::DAEMON_JSON
        ))),
        None => Ok(()),
    }
}

/// The daemon.json install would write, if it writes one.
fn merged_daemon_json(plan: &Plan) -> Option<&Planned> {
    plan.files
        .iter()
        .find(|f| f.host_path == install::DAEMON_JSON)
}

/// `dockerd --validate` (Docker 23+) checks the merged file before it replaces the old one.
fn validate_daemon_json(plan: &Plan) -> Result<(), Error> {
    let Some(file) = merged_daemon_json(plan) else {
        return Ok(());
    };
    // Held in memory: nothing is written outside --root, and a full /tmp does not matter.
    let Ok(copy) = install::MemFile::new("daemon.json", &file.contents, 0o644) else {
        return Ok(());
    };
    let Ok(output) = Command::new("dockerd")
        .arg("--validate")
        .arg("--config-file")
        .arg(copy.path_for_child())
        .output()
    else {
        return Ok(());
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() || text.contains("unknown flag") {
        // Success, or a dockerd older than 23.0 that cannot validate.
        return Ok(());
    }
    Err(Error::Refused(format!(
        "dockerd --validate refuses the merged daemon.json: {}",
        crate::escape::excerpt(text.trim())
    )))
}

/// The commands that restart dockerd: systemctl, or the operator's `--restart-command` (split
/// as a shell would, run without one: for hosts without systemd, and tests).
/// With `authz`, the plugin's socket is started before docker: a dockerd whose daemon.json
/// names a plugin it cannot reach exits at start.
fn restart_commands(command: Option<&str>, authz: bool) -> Result<Vec<Vec<String>>, Error> {
    let Some(command) = command else {
        let mut steps = vec![vec!["systemctl".into(), "daemon-reload".into()]];
        if authz {
            steps.push(vec![
                "systemctl".into(),
                "enable".into(),
                "--now".into(),
                install::authz::SOCKET_NAME.into(),
            ]);
        }
        steps.push(vec!["systemctl".into(), "restart".into(), "docker".into()]);
        return Ok(steps);
    };
    match shell_words::split(command) {
        Ok(words) if !words.is_empty() && !command.chars().any(char::is_control) => Ok(vec![words]),
        _ => Err(Error::refused(format!(
            "--restart-command '{}': give a command line without control characters; the files are installed",
            crate::escape::value(command)
        ))),
    }
}

/// Restarts dockerd; a restart command that fails is an error (exit 1: the new files are in
/// place, the daemon may not run them), then probes the daemon with a client of the PKI.
fn restart(
    dir: Option<&Path>,
    command: Option<&str>,
    port: u16,
    authz: bool,
    now: OffsetDateTime,
) -> Result<String, Error> {
    let mut out = String::new();
    for args in restart_commands(command, authz)? {
        let shown = shell_words::join(&args);
        match Command::new(&args[0]).args(&args[1..]).output() {
            Ok(o) if o.status.success() => out.push_str(&format!("ran {shown}\n")),
            Ok(o) => {
                return Err(Error::failed(format!(
                    "{shown} failed ({}): {}; the new files are installed, dockerd may still run the old ones",
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                ))
                .hint("see the daemon's log (journalctl -u docker), fix it, and restart dockerd"));
            }
            Err(e) => {
                return Err(Error::failed(format!(
                    "cannot run {shown}: {e}; the new files are installed, dockerd was not restarted"
                )));
            }
        }
    }
    match dir {
        Some(dir) => Ok(probe_after_restart(dir, port, now, out)),
        None => Ok(out),
    }
}

/// After the restart: the daemon probed on 127.0.0.1 with the PKI's first client folder.
fn probe_after_restart(dir: &Path, port: u16, now: OffsetDateTime, mut out: String) -> String {
    let client = crate::store::state::client_names(dir).into_iter().next();
    let Some(client) = client else {
        out.push_str(&format!("no client folder in {} to probe with: from a client, run dockertls probe tcp://HOST:{port}\n", dir.display()));
        return out;
    };
    let endpoint = crate::probe::Endpoint {
        host: "127.0.0.1".into(),
        port,
    };
    let hint = |_: &[String], _: &str| String::from("dockertls rotate --server --allow ADDR");
    let outcome = crate::probe::probe(
        &endpoint,
        &crate::store::Pki::new(dir).client_dir(&client),
        std::time::Duration::from_secs(10),
        now,
        &hint,
    );
    out.push_str(&format!(
        "probe of tcp://127.0.0.1:{port} as {client}: {}\n",
        outcome.status().name()
    ));
    for check in outcome
        .checks
        .iter()
        .filter(|c| c.status != crate::audit::Status::Ok)
    {
        out.push_str(&format!(
            "  {} {}: {}\n",
            check.status.name(),
            check.id,
            check.message
        ));
    }
    out
}
