//! What issue 14 records in the state file (DIR/dockertls.json), as typed views of its
//! top-level keys: `"contexts"` (the docker contexts `dockertls context` made) and
//! `"imported"` (where an imported PKI came from, and whether its CA key came with it). Kept
//! in the state's preserved extra keys, so the other parts' fields never conflict with these.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::registry::State;

/// The top-level key of the contexts.
pub const CONTEXTS: &str = "contexts";
/// The top-level key of the import facts.
pub const IMPORTED: &str = "imported";

/// A docker context dockertls made and keeps in step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextRecord {
    pub name: String,
    pub client: String,
    pub server: String,
}

/// Where an imported PKI came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Imported {
    /// The folder imported (as given, made absolute).
    pub from: String,
    /// `recipe`, `docker-machine` or `dind`.
    pub layout: String,
    /// RFC 3339.
    pub at: String,
    /// `here` or `absent`: without the CA key, signing commands cannot run.
    pub ca_key: String,
}

/// The contexts recorded (an entry that does not parse is skipped, and kept on rewrite only
/// if nothing changes the list).
pub fn contexts(state: &State) -> Vec<ContextRecord> {
    state
        .extra
        .get(CONTEXTS)
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|v| serde_json::from_value(v.clone()).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Replaces the recorded contexts (an empty list removes the key).
pub fn set_contexts(state: &mut State, list: &[ContextRecord]) {
    if list.is_empty() {
        state.extra.shift_remove(CONTEXTS);
    } else {
        let values = list
            .iter()
            .filter_map(|c| serde_json::to_value(c).ok())
            .collect();
        state
            .extra
            .insert(CONTEXTS.to_string(), Value::Array(values));
    }
}

/// The import facts, when the PKI was imported.
pub fn imported(state: &State) -> Option<Imported> {
    serde_json::from_value(state.extra.get(IMPORTED)?.clone()).ok()
}

/// Records the import facts.
pub fn set_imported(state: &mut State, facts: &Imported) {
    if let Ok(value) = serde_json::to_value(facts) {
        state.extra.insert(IMPORTED.to_string(), value);
    }
}

/// The refusal of a signing command in a PKI without its CA key, saying why the key is not
/// there when the PKI was imported without it.
pub fn no_ca_key(dir: &std::path::Path, key_path: &std::path::Path) -> crate::error::Error {
    let why = match State::load(dir).ok().flatten().as_ref().and_then(imported) {
        Some(facts) if facts.ca_key == "absent" => format!(
            " (the PKI was imported from {} without its CA key)",
            facts.from
        ),
        _ => String::new(),
    };
    crate::error::Error::refused(format!(
        "{} is not there, so nothing can be signed{why}",
        key_path.display()
    ))
    .hint("put the CA key there (mode 0400), or replace the CA with dockertls rotate --ca (every client then needs its new folder)")
}
