//! The authorization files of a PKI (issue 13): what the state file records (revocations,
//! roles, the CRL number; see `authz_policy::Record`) and the two files each server folder
//! carries beside its ca.pem, so they travel with it (`install`, `deploy`):
//!
//! ```text
//! DIR/servers/NAME/crl.pem      the CA-signed revocation list
//! DIR/servers/NAME/authz.json   each client's role and the custom roles (once roles are used)
//! ```
//!
//! The state file is the commit point: a change is saved there first, then the files are
//! written from it. A run killed in between leaves files one step behind the state, which the
//! next change (or `crl refresh`) writes again from the state; never the other way round, so a
//! revocation recorded is never lost.

use rustix::fs::RenameFlags;

use crate::authz_policy::Record;
use crate::error::Error;
use crate::store::layout::{AUTHZ_POLICY, CRL, Holder};
use crate::store::registry::State;
use crate::store::workspace::Workspace;

/// The mode of crl.pem and authz.json: public, as ca.pem.
const PUBLIC_FILE: u32 = 0o444;

/// The authorization record of `state`.
pub fn record(state: &State) -> Result<Record, Error> {
    Record::read(
        &state.extra,
        state
            .clients
            .iter()
            .map(|(name, entry)| (name, &entry.extra)),
    )
    .map_err(|why| {
        Error::refused(format!("the state file dockertls.json: {why}"))
            .hint("restore it from DIR/backup/, or fix the value it names")
    })
}

/// Writes `record` into `state` (saved by the caller). A client with a role and no entry
/// yet gets one.
pub fn set_record(state: &mut State, record: &Record) {
    for name in record.client_roles.keys() {
        state.clients.entry(name.clone()).or_default();
    }
    record.write(
        &mut state.extra,
        state
            .clients
            .iter_mut()
            .map(|(name, entry)| (name, &mut entry.extra)),
    );
}

/// Review item 7: `record`'s authz.json, keyed by each client's certificate CN (read from
/// clients/NAME/cert.pem; a client whose certificate cannot be read keeps its name, which is
/// its CN when dockertls made it). Refused, before anything is saved, when two clients with
/// the same CN would hold different roles.
pub fn policy(ws: &Workspace, record: &Record) -> Result<Option<String>, Error> {
    let dir = ws.dir().path().to_path_buf();
    let cn_of = |name: &str| {
        crate::store::state::read_cert(&dir, &Holder::client(name))
            .map_or_else(|_| name.to_string(), |leaf| leaf.cn)
    };
    record.policy_by_cn(cn_of).map_err(|why| {
        Error::refused(format!("{why}; nothing was changed"))
            .hint("give them the same role (dockertls client role NAME ROLE), or remove one (dockertls client remove NAME)")
    })
}

/// What to write into every server folder: None leaves that file as it is.
#[derive(Default)]
pub struct ServerFiles {
    pub crl: Option<String>,
    pub policy: Option<String>,
}

/// Writes crl.pem and authz.json into every server folder of `state` (the caller holds the
/// lock of `ws`): each file all-old or all-new at every instant (a new file beside it, flushed,
/// renamed over it). Returns the folders written.
pub fn write_server_files(
    ws: &Workspace,
    state: &State,
    files: &ServerFiles,
) -> Result<Vec<std::path::PathBuf>, Error> {
    let wanted: Vec<(&str, &str)> = [(CRL, &files.crl), (AUTHZ_POLICY, &files.policy)]
        .into_iter()
        .filter_map(|(name, text)| text.as_deref().map(|t| (name, t)))
        .collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let mut folders = Vec::new();
    for name in state.servers.keys() {
        let holder = Holder::server(name);
        // A server listed in the state whose folder is gone (removed by hand) is skipped:
        // there is nothing its files could travel with.
        if ws.dir().entry_stat(&holder.folder())?.is_none() {
            continue;
        }
        let folder = ws.dir().subfolder(&holder.folder())?;
        for (file, text) in &wanted {
            let temp = temp_name(file);
            if folder.entry_stat(&temp)?.is_some() {
                folder.remove_tree(&temp)?;
            }
            folder.write_new_file(&temp, text.as_bytes(), PUBLIC_FILE)?;
        }
        folders.push(folder);
    }
    // One flush for every new file, then the renames (the switch), then each folder flushed.
    ws.dir().sync_filesystem()?;
    for folder in &folders {
        for (file, _) in &wanted {
            folder.rename(&temp_name(file), folder, file, RenameFlags::empty())?;
        }
        folder.sync()?;
    }
    Ok(folders.iter().map(|f| f.path().to_path_buf()).collect())
}

/// The name a new file is written under before it replaces `file`.
fn temp_name(file: &str) -> String {
    format!(".{file}.new")
}
