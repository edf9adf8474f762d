//! `dockertls crl refresh`, and the step every change of revocations or roles shares: the
//! record saved in the state file (the commit point), then the CRL signed from it and written,
//! with the policy, into every server folder.

use std::path::{Path, PathBuf};

use ::time::OffsetDateTime;

use crate::authz_policy::Record;
use crate::cli::CrlCommand;
use crate::crl;
use crate::error::Error;
use crate::findings::Outcome;
use crate::pki::Ca;
use crate::store::authz::{self as files, ServerFiles};
use crate::store::registry::State;
use crate::store::state::{self, date};
use crate::store::workspace::{self, Workspace};

/// Runs a `crl` subcommand.
pub fn run(
    dir: &Path,
    command: &CrlCommand,
    passphrase_file: Option<&Path>,
    now: OffsetDateTime,
) -> Result<Outcome, Error> {
    match command {
        CrlCommand::Refresh => refresh(dir, passphrase_file, now),
    }
}

/// Re-signs the list with new dates (revoking first what `rotate --revoke-old` superseded
/// and whose grace has passed), and writes it into every server folder.
fn refresh(
    dir: &Path,
    passphrase_file: Option<&Path>,
    now: OffsetDateTime,
) -> Result<Outcome, Error> {
    workspace::require_pki(dir)?;
    workspace::finish_interrupted(dir, now)?;
    let (ca, _) = state::load_ca(dir, passphrase_file)?;
    crate::commands::client::check_ca_valid(&ca, now)?;
    let ws = Workspace::open(dir, now)?;
    state::require_current_ca(&ws, &ca)?;
    let mut state = load_state(&ws)?;
    let mut record = files::record(&state)?;
    let due = record.revoke_due(now);
    let published = publish(&ws, &mut state, &mut record, &ca, now)?;
    let mut out = String::new();
    for name in &due {
        out.push_str(&format!(
            "revoked the certificate of {name} that rotate --revoke-old replaced (its grace has passed)\n"
        ));
    }
    out.push_str(&published.summary());
    Ok(Outcome::report(&out))
}

/// The locked PKI's state file (a Workspace migrates a format-1 PKI first).
pub(crate) fn load_state(ws: &Workspace) -> Result<State, Error> {
    State::load_in(ws.dir())?.ok_or_else(|| {
        Error::Failed(format!(
            "{} has no state file after migration: run the command again",
            ws.dir().path().display()
        ))
    })
}

/// What [`publish`] did.
pub(crate) struct Published {
    pub number: u64,
    pub revoked: usize,
    pub next_update: OffsetDateTime,
    pub folders: Vec<PathBuf>,
}

impl Published {
    /// What a command says after publishing.
    pub fn summary(&self) -> String {
        let folders: Vec<String> = self
            .folders
            .iter()
            .map(|f| f.display().to_string())
            .collect();
        let into = if folders.is_empty() {
            "no server folder yet".to_string()
        } else {
            folders.join(", ")
        };
        format!(
            "signed revocation list #{} ({} revoked; renew by {} with dockertls crl refresh) into {into}\n\
             next: put each server folder on its host (dockertls install --authz there, or deploy): the plugin reloads it within a second\n",
            self.number,
            self.revoked,
            date(self.next_update),
        )
    }
}

/// Signs CRL number (last + 1) listing `record`'s revocations, saves `record` in the state
/// file (the commit point), then writes crl.pem and, once roles are in use, authz.json into
/// every server folder. Signing comes first: if it fails, nothing was changed.
pub(crate) fn publish(
    ws: &Workspace,
    state: &mut State,
    record: &mut Record,
    ca: &Ca,
    now: OffsetDateTime,
) -> Result<Published, Error> {
    let number = record.crl_number.saturating_add(1);
    let signed = crl::issue(ca, number, &record.revoked, now).map_err(|why| {
        Error::refused(format!("{why}; nothing was changed"))
            .hint("replace the CA with dockertls rotate --ca")
    })?;
    if record.roles_in_use() {
        record.policy_revision = record.policy_revision.saturating_add(1);
    }
    let policy = files::policy(ws, record)?;
    record.crl_number = number;
    files::set_record(state, record);
    state.save(ws)?;
    let folders = files::write_server_files(
        ws,
        state,
        &ServerFiles {
            crl: Some(signed.pem),
            policy,
        },
    )?;
    Ok(Published {
        number,
        revoked: record.revoked.len(),
        next_update: signed.next_update,
        folders,
    })
}

/// Saves `record` (roles only: no CRL is signed, so no CA key is needed) and writes the policy
/// into every server folder.
pub(crate) fn publish_policy(
    ws: &Workspace,
    state: &mut State,
    record: &Record,
) -> Result<Vec<PathBuf>, Error> {
    let mut record = record.clone();
    record.policy_revision = record.policy_revision.saturating_add(1);
    let record = &record;
    let policy = files::policy(ws, record)?;
    files::set_record(state, record);
    state.save(ws)?;
    files::write_server_files(ws, state, &ServerFiles { crl: None, policy })
}

/// `rotate`'s step, under its lock after its swaps. With `--revoke-old` (`grace_days`), the
/// client certificates it replaced (`replaced`: name and old serial) are recorded as
/// superseded, to be revoked once the grace has passed (at once for 0 days); whatever is due
/// is revoked. Once a CRL was signed, it is signed again with `ca` (the new CA after `--ca`);
/// both files (or the policy alone, when roles are used without a CRL) are written into every
/// server folder, so a folder `server add` made has them too. Returns what to report.
pub(crate) fn republish(
    ws: &Workspace,
    ca: &Ca,
    replaced: &[(String, String)],
    grace_days: Option<i64>,
    now: OffsetDateTime,
) -> Result<String, Error> {
    let mut state = load_state(ws)?;
    let mut record = files::record(&state)?;
    let mut out = String::new();
    if let Some(days) = grace_days {
        let revoke_after = crate::pki::add_days(now, days);
        for (name, serial) in replaced {
            record.superseded.push(crl::Superseded {
                serial: serial.clone(),
                name: name.clone(),
                revoke_after,
            });
        }
        if !replaced.is_empty() && days > 0 {
            out.push_str(&format!(
                "the replaced client certificates are revoked after {} (by the next rotate or crl refresh): give each user their new folder before then\n",
                date(revoke_after)
            ));
        }
    }
    let due = record.revoke_due(now);
    for name in &due {
        out.push_str(&format!("revoked the replaced certificate of {name}\n"));
    }
    // A list exists (or is needed now): signed again, by the CA that signs from now on.
    if record.crl_number > 0 || !record.superseded.is_empty() || !due.is_empty() {
        let published = publish(ws, &mut state, &mut record, ca, now)?;
        out.push_str(&published.summary());
    } else if record.roles_in_use() {
        // Roles without a list: the policy only (the state is unchanged).
        let policy = ServerFiles {
            crl: None,
            policy: files::policy(ws, &record)?,
        };
        files::write_server_files(ws, &state, &policy)?;
    }
    Ok(out)
}
