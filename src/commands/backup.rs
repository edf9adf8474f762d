//! `dockertls backup prune`: delete all but the newest backup folders, under DIR's lock and
//! through the store (`Workspace::prune_backups`), which never follows a link and leaves alone
//! anything in DIR/backup it did not make.

use std::path::Path;

use ::time::OffsetDateTime;

use crate::cli::BackupCommand;
use crate::error::Error;
use crate::findings::{Notice, Outcome};
use crate::plan::check_keep;
use crate::store::workspace::{Pruned, Workspace};

/// Runs `backup prune`.
pub fn run(dir: &Path, command: &BackupCommand, now: OffsetDateTime) -> Result<Outcome, Error> {
    match command {
        BackupCommand::Prune(args) => {
            let keep = check_keep("--keep", args.keep)?;
            let ws = Workspace::open(dir, now)?;
            let pruned = ws.prune_backups(keep)?;
            drop(ws);
            let mut outcome = Outcome::report(&report(&pruned));
            outcome.notices.extend(foreign_notices(&pruned));
            Ok(outcome)
        }
    }
}

/// The report lines of a prune: what was deleted and how many remain.
pub fn report(pruned: &Pruned) -> String {
    let mut out = String::new();
    for path in &pruned.removed {
        out.push_str(&format!("deleted the old backup {}\n", path.display()));
    }
    out.push_str(&format!(
        "{} backup folder{} kept (the newest)\n",
        pruned.kept,
        if pruned.kept == 1 { "" } else { "s" }
    ));
    out
}

/// One warning for each entry of DIR/backup that is not a backup dockertls made.
pub fn foreign_notices(pruned: &Pruned) -> Vec<Notice> {
    pruned
        .foreign
        .iter()
        .map(|path| {
            Notice::Warning(format!(
                "{} is not a backup folder dockertls made (another name, a link, a file, or another owner): left alone; move it out of the backup folder",
                path.display()
            ))
        })
        .collect()
}
