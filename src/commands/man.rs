//! `dockertls man --out DIR`: one roff page per command and subcommand (dockertls.1,
//! dockertls-client-add.1, ...), generated from the clap declarations, each written atomically
//! (a temporary file in DIR, then a rename: a link at a page's name is replaced, not followed).

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use crate::cli::{Cli, ManArgs};
use crate::error::Error;
use crate::findings::Outcome;

/// Runs `man`: writes the pages and lists them.
pub fn run(args: &ManArgs) -> Result<Outcome, Error> {
    let out = &args.out;
    let shown = crate::escape::path(out);
    match std::fs::symlink_metadata(out) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(Error::refused(format!("--out {shown}: not a directory"))
                .hint("give a folder for the man pages, e.g. --out man"));
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let parent = out.parent().filter(|p| !p.as_os_str().is_empty());
            if parent.is_some_and(|p| !p.is_dir()) {
                return Err(Error::refused(format!(
                    "--out {shown}: its parent folder does not exist"
                ))
                .hint("create the parent folder first, or give another --out"));
            }
            std::fs::create_dir(out)
                .map_err(|err| Error::refused(format!("--out {shown}: cannot create it: {err}")))?;
        }
        Err(err) => return Err(Error::refused(format!("--out {shown}: {err}"))),
    }
    let pages = pages()?;
    let mut report = String::new();
    for (name, roff) in &pages {
        write_page(out, name, roff)?;
        report.push_str(&format!("{}\n", crate::escape::path(&out.join(name))));
    }
    Ok(Outcome::report(&report))
}

/// Every page: (file name, roff text), the top command first.
pub fn pages() -> Result<Vec<(String, Vec<u8>)>, Error> {
    let mut command = Cli::command().disable_help_subcommand(true);
    // Propagates the global flags and gives each subcommand its display name
    // (dockertls-client-add), which names its page.
    command.build();
    let mut pages = Vec::new();
    collect(&command, &mut pages)?;
    Ok(pages)
}

fn collect(command: &clap::Command, pages: &mut Vec<(String, Vec<u8>)>) -> Result<(), Error> {
    let man = clap_mangen::Man::new(command.clone());
    let mut roff = Vec::new();
    man.render(&mut roff)
        .map_err(|err| Error::failed(format!("cannot render a man page: {err}")))?;
    pages.push((man.get_filename(), roff));
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(sub, pages)?;
    }
    Ok(())
}

/// Writes one page as DIR/NAME, 0644, all or nothing.
fn write_page(dir: &Path, name: &str, roff: &[u8]) -> Result<(), Error> {
    let target = dir.join(name);
    let failed = |err: std::io::Error| {
        Error::failed(format!(
            "cannot write {}: {err}",
            crate::escape::path(&target)
        ))
    };
    let mut file = tempfile::Builder::new()
        .prefix(".dockertls-man-")
        .tempfile_in(dir)
        .map_err(failed)?;
    file.write_all(roff).map_err(failed)?;
    file.as_file()
        .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .map_err(failed)?;
    file.as_file().sync_all().map_err(failed)?;
    file.persist(&target).map_err(|err| failed(err.error))?;
    Ok(())
}
