//! The state file DIR/dockertls.json (format 2): which servers and clients the PKI has, and
//! what dockertls knows about each beyond their files. Written only under DIR's lock, whole:
//! a temporary file, flushed, renamed over the old one. Keys this version does not know (at
//! the top level and in each entry) are kept as they were on every rewrite, so an older
//! dockertls never drops what a newer one recorded; a `format` above 2 is refused.
//!
//! Format 1 (one server: DIR/server/, DIR/daemon.json, DIR/override.conf, no state file) is
//! migrated by [`migrate`] under the lock, the first time a command that uses this model runs:
//! the server folder is built in staging and moved to DIR/servers/NAME, then the state file is
//! written (the commit point), then the old entries are moved to DIR/backup/STAMP/. A run killed
//! at any step leaves a PKI the next run completes.

use std::collections::BTreeMap;
use std::path::Path;

use rustix::fs::{FileType, RenameFlags};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::Error;
use crate::store::layout::{
    CLIENT_KEY, CLIENTS_DIR, DAEMON_JSON, Legacy, OVERRIDE_CONF, SERVER_CERT, SERVER_KEY,
    SERVERS_DIR, STATE_FILE,
};
use crate::store::workspace::Workspace;
use crate::store::{Folder, Holder, Pki};

/// The format this version writes and reads.
pub const FORMAT: u64 = 2;
/// The most a state file may hold (1,000s of servers and clients fit many times over).
const MAX_STATE_SIZE: u64 = 16 * 1024 * 1024;
/// The longest server name (a certificate CN holds 64 characters).
pub const SERVER_NAME_MAX: usize = 64;

/// Where a private key lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum KeyPlace {
    /// In the PKI folder (what init and client add make).
    #[default]
    Here,
    /// On the machine that made it (`request`/`sign`): no key file in the PKI.
    Elsewhere,
}

/// One server of the state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerEntry {
    /// The name clients dial (init's --host, server add's --host).
    pub host: String,
    #[serde(default)]
    pub key: KeyPlace,
    /// Where `deploy` last put it (`user@host:port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<String>,
    /// Keys this version does not know, kept as they were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One client of the state file. The folder clients/NAME is what makes a client; an entry
/// records what its files cannot say (a client without an entry has its key here).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ClientEntry {
    #[serde(default)]
    pub key: KeyPlace,
    /// Keys this version does not know (issue 13's "role", ...), kept as they were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// DIR/dockertls.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub format: u64,
    #[serde(default)]
    pub servers: BTreeMap<String, ServerEntry>,
    #[serde(default)]
    pub clients: BTreeMap<String, ClientEntry>,
    /// Top-level keys this version does not know, kept as they were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Default for State {
    fn default() -> State {
        State {
            format: FORMAT,
            servers: BTreeMap::new(),
            clients: BTreeMap::new(),
            extra: Map::new(),
        }
    }
}

impl State {
    /// The servers, by name (sorted).
    pub fn servers(&self) -> &BTreeMap<String, ServerEntry> {
        &self.servers
    }

    /// The clients with an entry, by name (sorted).
    pub fn clients(&self) -> &BTreeMap<String, ClientEntry> {
        &self.clients
    }

    /// The server names, sorted.
    pub fn server_names(&self) -> Vec<String> {
        self.servers.keys().cloned().collect()
    }

    /// Reads DIR/dockertls.json (never through a link, at most 16 MiB); None when there is
    /// none (format 1, or no PKI). A format above 2 is refused.
    pub fn load(dir: &Path) -> Result<Option<State>, Error> {
        State::load_in(&Folder::open(dir)?)
    }

    /// [`State::load`] from DIR's opened folder.
    pub fn load_in(dir: &Folder) -> Result<Option<State>, Error> {
        if dir.entry_stat(STATE_FILE)?.is_none() {
            return Ok(None);
        }
        let path = dir.path().join(STATE_FILE);
        let (bytes, _) = dir.read_file(STATE_FILE, MAX_STATE_SIZE + 1)?;
        if bytes.len() as u64 > MAX_STATE_SIZE {
            return Err(Error::Refused(format!(
                "{} is over 16 MiB: not a dockertls state file",
                path.display()
            )));
        }
        State::parse(&bytes, &path).map(Some)
    }

    /// Parses a state file's bytes (`path` names it in messages).
    pub fn parse(bytes: &[u8], path: &Path) -> Result<State, Error> {
        let not_ours = |why: String| {
            Error::refused(format!("{} {why}", path.display())).hint(
                "restore it from DIR/backup/, or move it away to have dockertls treat DIR as a PKI of the first format",
            )
        };
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| not_ours(format!("is not valid JSON ({e})")))?;
        // serde_json keeps the last of two equal keys: a second "servers" or "format" would
        // silently hide the first (and drop it on the next rewrite).
        serde_json::from_slice::<NoDuplicateKeys>(bytes)
            .map_err(|e| not_ours(crate::escape::quoted_values(&e.to_string())))?;
        match value.get("format").and_then(Value::as_u64) {
            Some(FORMAT) => {}
            Some(newer) if newer > FORMAT => {
                return Err(Error::refused(format!(
                    "{} is format {newer}, made by a newer dockertls (this one reads format {FORMAT})",
                    path.display()
                ))
                .hint("use that newer dockertls with this PKI"));
            }
            _ => return Err(not_ours(format!("has no \"format\": {FORMAT}"))),
        }
        let state: State = serde_json::from_value(value).map_err(|e| {
            // serde quotes the value it refused, which may be 100 KB: cut.
            not_ours(format!(
                "is not a dockertls state file ({})",
                crate::escape::quoted_values(&e.to_string())
            ))
        })?;
        for name in state.servers.keys() {
            parse_server_name("server", name).map_err(|e| not_ours(e.message().to_string()))?;
        }
        Ok(state)
    }

    /// The text written to disk.
    pub fn to_text(&self) -> Result<String, Error> {
        serde_json::to_string_pretty(self)
            .map(|mut text| {
                text.push('\n');
                text
            })
            .map_err(|e| Error::Failed(format!("cannot write the state file: {e}")))
    }

    /// Writes DIR/dockertls.json under the lock `ws` holds: a new file, flushed, renamed
    /// over the old one, and the folder flushed (all-old or all-new at every instant).
    pub fn save(&self, ws: &Workspace) -> Result<(), Error> {
        write_state(ws.dir(), self)
    }

    /// The one server when `wanted` is None and there is exactly one; `wanted` when it names
    /// one. `flag` names the option in messages (`--server`).
    pub fn resolve_server(&self, dir: &Path, wanted: Option<&str>) -> Result<String, Error> {
        let names = self.server_names();
        let listed = || {
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        };
        match wanted {
            Some(wanted) => {
                let name = parse_server_name("--server", wanted)?;
                if self.servers.contains_key(&name) {
                    return Ok(name);
                }
                Err(Error::refused(format!(
                    "--server {name}: no server '{name}' in {} (servers: {})",
                    dir.display(),
                    listed()
                ))
                .hint("list them with dockertls server list, or add it with dockertls server add NAME --host HOST"))
            }
            None => match names.as_slice() {
                [one] => Ok(one.clone()),
                [] => Err(Error::refused(format!("{} has no server", dir.display()))
                    .hint("add one with dockertls server add NAME --host HOST")),
                _ => Err(Error::refused(format!(
                    "{} has {} servers ({}): say which with --server NAME",
                    dir.display(),
                    names.len(),
                    listed()
                ))),
            },
        }
    }
}

/// Writes the state file in the opened DIR (the caller holds DIR's lock).
pub(crate) fn write_state(dir: &Folder, state: &State) -> Result<(), Error> {
    let text = state.to_text()?;
    let temp = format!(".{STATE_FILE}.new");
    if dir.entry_stat(&temp)?.is_some() {
        // Left by a run killed before its rename: never the state (that is the old name).
        dir.remove_tree(&temp)?;
    }
    dir.write_new_file(&temp, text.as_bytes(), 0o644)?;
    dir.sync_file(&temp)?;
    dir.rename(&temp, dir, STATE_FILE, RenameFlags::empty())?;
    dir.sync()
}

/// A JSON document read only to refuse an object that names one key twice, at any depth.
struct NoDuplicateKeys;

impl<'de> serde::Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NoDuplicateKeys)
    }
}

impl<'de> serde::de::Visitor<'de> for NoDuplicateKeys {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(self)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(self)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen = std::collections::BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "names the key \"{}\" twice in one object: which one holds is unclear",
                    crate::escape::value(&key)
                )));
            }
            map.next_value::<NoDuplicateKeys>()?;
        }
        Ok(self)
    }
}

/// Checks a server name: one path component (it names the folder servers/NAME) of letters,
/// digits, '.', '_' and '-', at most 64, not starting with '.' or '-'. `flag` names the value.
pub fn parse_server_name(flag: &str, input: &str) -> Result<String, Error> {
    let shown = crate::escape::value(input);
    let why = |reason: &str| Error::Refused(format!("{flag} '{shown}': {reason}"));
    if input.is_empty() {
        return Err(Error::Refused(format!(
            "{flag} is empty: give a server name such as web1"
        )));
    }
    if input.contains('/') || input.contains('\\') {
        return Err(why(
            "must be one path component (it names the folder servers/NAME): no '/' or '\\'",
        ));
    }
    if input.starts_with('.') || input.starts_with('-') {
        return Err(why("must not start with '.' or '-'"));
    }
    if input.chars().count() > SERVER_NAME_MAX {
        return Err(why("is longer than 64 characters"));
    }
    if let Some(bad) = input
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(why(&format!(
            "'{}' is not allowed (letters, digits, '.', '_', '-')",
            bad.escape_default()
        )));
    }
    Ok(input.to_string())
}

/// A server name made from a host name or address (init's first --host, a format-1 server
/// certificate's CN): lowercase, every character a name may not hold turned into '-'
/// (`fd00::1` → `fd00--1`), at most 64, `server` if nothing is left.
pub fn server_name_for(host: &str) -> String {
    let mapped: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let trimmed: String = mapped
        .trim_start_matches(['.', '-'])
        .chars()
        .take(SERVER_NAME_MAX)
        .collect();
    if trimmed.is_empty() {
        "server".to_string()
    } else {
        trimmed
    }
}

/// Whether DIR still has format-1 entries, no state file, or the staging folder of a killed
/// run: then the lock is needed to finish ([`migrate`], and the staging folder's removal).
pub fn needs_migration(dir: &Folder) -> Result<bool, Error> {
    if dir.entry_stat(STATE_FILE)?.is_none() {
        return Ok(true);
    }
    for entry in Legacy::ENTRIES {
        if dir.entry_stat(entry)?.is_some() {
            return Ok(true);
        }
    }
    // Another process's staging folder (this one's belongs to a Workspace it holds).
    let own = format!("{}{}-", crate::store::STAGING_PREFIX, std::process::id());
    let staging = |(name, _): &(String, FileType)| {
        name.starts_with(crate::store::STAGING_PREFIX) && !name.starts_with(&own)
    };
    Ok(dir.entries()?.iter().any(staging))
}

/// Brings the locked PKI of `ws` to format 2 (see the module's text). Does nothing when it
/// is format 2 already. Returns the backup folder the old entries went to, if any.
pub fn migrate(ws: &mut Workspace) -> Result<Option<std::path::PathBuf>, Error> {
    // Read first: a state file this version cannot read stops every change.
    let current = State::load_in(ws.dir())?;
    if !needs_migration(ws.dir())? {
        return Ok(None);
    }
    if current.is_none() {
        let state = stage_format_1(ws)?;
        write_state(ws.dir(), &state)?;
    }
    // The state file is in place: what is left of format 1 is the old copy.
    let mut moved = false;
    for entry in Legacy::ENTRIES {
        if ws.dir().entry_stat(entry)?.is_some() {
            ws.move_to_backup(entry)?;
            moved = true;
        }
    }
    Ok(if moved { Some(ws.backup_dir()?) } else { None })
}

/// Builds servers/NAME from format 1's server/, daemon.json and override.conf, and moves it
/// into DIR; returns the state to write. A servers/ folder already there was left by a run
/// killed before it wrote the state file: it is moved to the backup, then made again.
fn stage_format_1(ws: &mut Workspace) -> Result<State, Error> {
    let mut state = State::default();
    let dir = ws.dir().try_clone()?;
    let pki = Pki::new(dir.path());
    // First, before anything is staged: a client folder name dockertls refuses stops it.
    state.clients = client_entries(&dir)?;
    if dir.entry_stat(SERVERS_DIR)?.is_some() {
        ws.move_to_backup(SERVERS_DIR)?;
    }
    if dir.entry_stat(Legacy::SERVER_DIR)?.is_some() {
        let cert = crate::store::state::read_leaf(&pki.path(Legacy::SERVER_DIR).join(SERVER_CERT))?;
        let name = server_name_for(&cert.cn);
        let holder = Holder::server(&name);
        let folder = holder.folder();
        let legacy = dir.subfolder(Legacy::SERVER_DIR)?;
        ws.copy_in(&legacy, &folder)?;
        let staged = ws.staged(&folder)?;
        for file in [DAEMON_JSON, OVERRIDE_CONF] {
            if dir.entry_stat(file)?.is_some() {
                let (bytes, mode) = dir.read_file(file, crate::audit::material::MAX_FILE_SIZE)?;
                staged.write_new_file(file, &bytes, mode)?;
            }
        }
        let key = if legacy.entry_stat(SERVER_KEY)?.is_some() {
            KeyPlace::Here
        } else {
            KeyPlace::Elsewhere
        };
        ws.flush()?;
        ws.add(&folder)?;
        let host = cert
            .sans
            .iter()
            .map(ToString::to_string)
            .find(|s| *s == cert.cn)
            .or_else(|| cert.sans.first().map(ToString::to_string))
            .unwrap_or(cert.cn.clone());
        state.servers.insert(
            name,
            ServerEntry {
                host,
                key,
                deploy: None,
                extra: Map::new(),
            },
        );
    }
    Ok(state)
}

/// An entry for each client folder: whether its key is here.
fn client_entries(dir: &Folder) -> Result<BTreeMap<String, ClientEntry>, Error> {
    let mut clients = BTreeMap::new();
    if dir.entry_stat(CLIENTS_DIR)?.is_none() {
        return Ok(clients);
    }
    let folder = dir.subfolder(CLIENTS_DIR)?;
    for (name, kind) in folder.entries()? {
        if kind != FileType::Directory {
            continue;
        }
        if let Err(why) = crate::names::parse_client_name(&name) {
            let reason = why.split_once("': ").map_or(why.as_str(), |(_, r)| r);
            return Err(Error::refused(format!(
                "{} is not a client name dockertls keeps ({reason}): the PKI was not moved to the current layout, nothing was changed",
                crate::escape::path(&dir.path().join(CLIENTS_DIR).join(&name))
            ))
            .hint("rename that folder to letters, digits, '.', '_', '-', '@' (at most 64, not starting with '.' or '-'), or move it out of clients/, then run the command again"));
        }
        let key = match folder.subfolder(&name)?.entry_stat(CLIENT_KEY)? {
            Some(_) => KeyPlace::Here,
            None => KeyPlace::Elsewhere,
        };
        clients.insert(
            name,
            ClientEntry {
                key,
                extra: Map::new(),
            },
        );
    }
    Ok(clients)
}

/// The state of the PKI in `dir`, migrating a format-1 PKI first (under the lock). Every
/// command that reads the model calls this (or opens a [`Workspace`], which migrates too).
pub fn open(dir: &Path, now: ::time::OffsetDateTime) -> Result<State, Error> {
    open_within(dir, now, crate::store::Reach::All)
}

/// [`open`] for a command that reads or writes only the folders `reach` names (the trust
/// check stats those; a migration checks everything).
pub fn open_within(
    dir: &Path,
    now: ::time::OffsetDateTime,
    reach: crate::store::Reach,
) -> Result<State, Error> {
    crate::store::workspace::require_pki_within(dir, reach)?;
    let folder = Folder::open(dir)?;
    if needs_migration(&folder)? {
        // A format-1 PKI that cannot be migrated is refused before the lock file is made.
        if folder.entry_stat(STATE_FILE)?.is_none() {
            client_entries(&folder)?;
        }
        drop(Workspace::open(dir, now)?);
    }
    State::load_in(&folder)?.ok_or_else(|| {
        Error::Failed(format!(
            "{} is missing after migration: run the command again",
            Pki::new(dir).state_file().display()
        ))
    })
}

/// The server names of the PKI in `dir`, sorted (migrating a format-1 PKI first).
pub fn server_names(dir: &Path, now: ::time::OffsetDateTime) -> Result<Vec<String>, Error> {
    Ok(open(dir, now)?.server_names())
}

/// The one server of `dir`, or the one `wanted` names (see [`State::resolve_server`]).
pub fn resolve_server(
    dir: &Path,
    wanted: Option<&str>,
    now: ::time::OffsetDateTime,
) -> Result<String, Error> {
    open(dir, now)?.resolve_server(dir, wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_survive_a_rewrite() {
        let text = br#"{"format": 2, "revoked": [{"serial": "0a"}],
            "servers": {"web1": {"host": "h.example", "key": "here", "x": 1}},
            "clients": {"alice": {"key": "elsewhere", "role": "admin"}}}"#;
        let state = State::parse(text, Path::new("s")).unwrap();
        let again = State::parse(state.to_text().unwrap().as_bytes(), Path::new("s")).unwrap();
        assert_eq!(state, again);
        let written: Value = serde_json::from_str(&state.to_text().unwrap()).unwrap();
        assert_eq!(written["revoked"][0]["serial"], "0a");
        assert_eq!(written["servers"]["web1"]["x"], 1);
        assert_eq!(written["clients"]["alice"]["role"], "admin");
        assert_eq!(state.clients["alice"].key, KeyPlace::Elsewhere);
    }

    #[test]
    fn a_key_named_twice_is_refused_at_any_depth() {
        let path = Path::new("dockertls.json");
        for text in [
            r#"{"format": 2, "format": 3, "servers": {}, "clients": {}}"#,
            r#"{"format": 2, "servers": {"g": {"host": "g", "key": "here"}}, "servers": {}, "clients": {}}"#,
            r#"{"format": 2, "servers": {"a": {"host": "a", "host": "b", "key": "here"}}, "clients": {}}"#,
            r#"{"format": 2, "servers": {}, "clients": {}, "x": [{"k": 1, "k": 2}]}"#,
        ] {
            let err = State::parse(text.as_bytes(), path).expect_err(text);
            assert!(err.message().contains("twice"), "{}", err.message());
            assert_eq!(err.exit_code(), 2);
        }
        let fine = r#"{"format": 2, "servers": {"a": {"host": "a", "key": "here"}}, "clients": {"a": {"key": "here"}}}"#;
        State::parse(fine.as_bytes(), path).unwrap();
    }

    #[test]
    fn a_newer_format_or_a_foreign_file_is_refused() {
        let err = State::parse(br#"{"format": 3}"#, Path::new("s")).unwrap_err();
        assert!(err.message().contains("made by a newer dockertls"), "{err}");
        for bad in [
            &b"{}"[..],
            b"[]",
            b"nope",
            br#"{"format": 2, "servers": {"../x": {"host": "h"}}}"#,
        ] {
            assert!(State::parse(bad, Path::new("s")).is_err());
        }
    }

    #[test]
    fn server_names_are_safe_folder_names() {
        assert_eq!(server_name_for("Docker.Example.COM"), "docker.example.com");
        assert_eq!(server_name_for("fd00::1"), "fd00--1");
        assert_eq!(server_name_for("docker daemon"), "docker-daemon");
        assert_eq!(server_name_for("..."), "server");
        for bad in ["", "a/b", ".x", "-x", "a b", "é", &"x".repeat(65)] {
            assert!(parse_server_name("--server", bad).is_err(), "{bad}");
        }
        assert!(parse_server_name("--server", "web-1.prod_2").is_ok());
    }
}
