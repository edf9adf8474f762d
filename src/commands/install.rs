//! `dockertls install`: apply the install plan atomically, with backups, or show it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use ::time::OffsetDateTime;

use crate::cli::InstallArgs;
use crate::error::{Error, io_failed};
use crate::install::{self, Plan, Planned};
use crate::store;

/// Runs `install`.
pub fn run(dir: &Path, args: &InstallArgs, now: OffsetDateTime) -> Result<(), Error> {
    if !args.root.is_absolute() {
        return Err(Error::Refused(format!(
            "--root {}: give an absolute path",
            args.root.display()
        )));
    }
    if args.restart && args.root != Path::new("/") {
        return Err(Error::Refused(
            "--restart acts on this machine's systemd: it does not go with --root".into(),
        ));
    }
    if !args.root.is_dir() {
        return Err(Error::Refused(format!(
            "--root {} is not a directory",
            args.root.display()
        )));
    }
    store::check_trusted(dir)?;
    let plan = install::plan(dir, &args.root, args.force)?;
    for note in &plan.notes {
        eprintln!("note: {note}");
    }
    let changing: Vec<&Planned> = plan.files.iter().filter(|f| f.changes()).collect();
    let mut out = String::new();
    if args.dry_run {
        for file in &changing {
            out.push_str(&describe(file));
        }
        if changing.is_empty() {
            out.push_str("nothing to change: everything is in place\n");
        }
        out.push_str("dry run: nothing was changed\n");
        let _ = std::io::stdout().write_all(crate::escape::text(&out).as_bytes());
        return Ok(());
    }
    if changing.is_empty() {
        out.push_str(
            "nothing to change: the TLS files, daemon.json and the drop-in are in place\n",
        );
        let _ = std::io::stdout().write_all(crate::escape::text(&out).as_bytes());
        return Ok(());
    }
    validate_daemon_json(&plan)?;
    // Again just before writing: the source must not have become changeable meanwhile.
    store::check_trusted(dir)?;

    let tls_dir = install::under(&plan.root, &plan.tls_dir);
    if !tls_dir.exists() {
        fs::create_dir_all(&tls_dir).map_err(|e| io_failed("cannot create", &tls_dir, &e))?;
        fs::set_permissions(&tls_dir, fs::Permissions::from_mode(store::PRIVATE_DIR))
            .map_err(|e| io_failed("cannot set the mode of", &tls_dir, &e))?;
        out.push_str(&format!("created {} (0700)\n", plan.tls_dir));
    }
    let stamp = store::backup_stamp(now);
    let mut backups = Vec::new();
    for file in &changing {
        if let Some((contents, mode, _, _)) = &file.existing
            && contents != &file.contents
        {
            let backup = file.path.with_file_name(format!(
                "{}.{stamp}.bak",
                file.path.file_name().unwrap_or_default().to_string_lossy()
            ));
            write_atomic(&backup, contents, *mode, false)?;
            backups.push(format!("{}.{stamp}.bak", file.host_path));
        }
    }
    for file in &changing {
        if let Some(parent) = file.path.parent()
            && !parent.exists()
        {
            fs::create_dir_all(parent).map_err(|e| io_failed("cannot create", parent, &e))?;
        }
        write_atomic(&file.path, &file.contents, file.mode, true)?;
        out.push_str(&format!(
            "{} {} ({:04o}, root:root)\n",
            if file.existing.is_some() {
                "updated"
            } else {
                "created"
            },
            file.host_path,
            file.mode
        ));
    }
    for backup in &backups {
        out.push_str(&format!("backed up the previous file as {backup}\n"));
    }
    if !plan.removed_flags.is_empty() {
        out.push_str(&format!(
            "the drop-in starts dockerd without {} (daemon.json sets that now)\n",
            plan.removed_flags.join(", ")
        ));
    }
    if args.restart {
        out.push_str(&restart(dir, plan.listen_port, now));
    } else {
        out.push_str(&format!(
            "next: systemctl daemon-reload && systemctl restart docker, then from a client: dockertls probe tcp://HOST:{} --client NAME\n",
            plan.listen_port
        ));
    }
    let _ = std::io::stdout().write_all(crate::escape::text(&out).as_bytes());
    Ok(())
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
        } else {
            "a certificate"
        };
        let same = file
            .existing
            .as_ref()
            .is_some_and(|(c, ..)| c == &file.contents);
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
        .map(|(c, ..)| String::from_utf8_lossy(c).into_owned())
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

/// Writes `contents` to `path` atomically: a private temporary file in the same folder, owner
/// root:root (when `chown`), mode, fsync, rename, fsync of the folder.
fn write_atomic(path: &Path, contents: &[u8], mode: u32, chown: bool) -> Result<(), Error> {
    let parent = path.parent().unwrap_or(Path::new("/"));
    let mut temp = tempfile::Builder::new()
        .prefix(".dockertls-")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(parent)
        .map_err(|e| io_failed("cannot write in", parent, &e))?;
    temp.write_all(contents)
        .map_err(|e| io_failed("cannot write", path, &e))?;
    if chown {
        std::os::unix::fs::fchown(temp.as_file(), Some(0), Some(0))
            .map_err(|e| io_failed("cannot set root:root on", path, &e))?;
    }
    temp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| io_failed("cannot set the mode of", path, &e))?;
    temp.as_file()
        .sync_all()
        .map_err(|e| io_failed("cannot write", path, &e))?;
    temp.persist(path)
        .map_err(|e| io_failed("cannot replace", path, &e.error))?;
    store::sync_dir(parent)
}

/// `dockerd --validate` (Docker 23+) checks the merged file before it replaces the old one.
fn validate_daemon_json(plan: &Plan) -> Result<(), Error> {
    let Some(file) = plan
        .files
        .iter()
        .find(|f| f.host_path == install::DAEMON_JSON)
    else {
        return Ok(());
    };
    let Ok(temp) = tempfile::Builder::new()
        .prefix("dockertls-daemon-")
        .suffix(".json")
        .tempfile()
    else {
        return Ok(());
    };
    if fs::write(temp.path(), &file.contents).is_err() {
        return Ok(());
    }
    let Ok(output) = Command::new("dockerd")
        .arg("--validate")
        .arg("--config-file")
        .arg(temp.path())
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
        text.trim()
    )))
}

fn restart(dir: &Path, port: u16, now: OffsetDateTime) -> String {
    let mut out = String::new();
    for args in [&["daemon-reload"][..], &["restart", "docker"][..]] {
        match Command::new("systemctl").args(args).output() {
            Ok(o) if o.status.success() => {
                out.push_str(&format!("ran systemctl {}\n", args.join(" ")))
            }
            Ok(o) => {
                out.push_str(&format!(
                    "systemctl {} failed: {}; see journalctl -u docker\n",
                    args.join(" "),
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
                return out;
            }
            Err(e) => {
                out.push_str(&format!("cannot run systemctl: {e}\n"));
                return out;
            }
        }
    }
    let client = crate::commands::pkistate::client_names(dir)
        .into_iter()
        .next();
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
        &dir.join("clients").join(&client),
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
