//! `verify --daemon-config`: whether dockerd asks the dockertls authorization plugin (check
//! `authorization`) and whether the revocation list beside its ca.pem is signed by that CA and
//! current (check `crl`). The files are read as the plugin reads them: bounded, no FIFO.

use std::path::Path;

use ::time::OffsetDateTime;
use serde_json::Value;

use crate::audit::Status;
use crate::audit::checks::Findings;
use crate::install::authz::{PLUGIN, SOCKET_PATH};
use crate::store::layout::{AUTHZ_POLICY, CRL};

/// The largest CRL or policy read (the plugin's own limit is 16 MiB).
const MAX_READ: u64 = 16 * 1024 * 1024;

/// Judges daemon.json's `authorization-plugins` and, when it names dockertls, the CRL and the
/// policy in the folder of `tlscacert` (where install puts them).
pub fn judge(bytes: &[u8], name: &str, now: OffsetDateTime, findings: &mut Findings) {
    let lossy = String::from_utf8_lossy(bytes);
    let Some(object) = serde_json::Deserializer::from_str(&lossy)
        .into_iter::<Value>()
        .next()
        .and_then(Result::ok)
        .and_then(|v| v.as_object().cloned())
    else {
        return;
    };
    let plugins: Vec<&str> = object
        .get("authorization-plugins")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !plugins.contains(&PLUGIN) {
        let others = if plugins.is_empty() {
            "no authorization plugin".to_string()
        } else {
            format!("authorization plugins {}", plugins.join(", "))
        };
        findings.record("authorization", Status::Ok, format!("off: {name} names {others}, so a removed or revoked client certificate opens the daemon until it expires; to enforce revocation and roles: dockertls install --authz"));
        return;
    }
    let socket = Path::new(SOCKET_PATH);
    if !socket.exists() {
        findings.record("authorization", Status::Warn, format!("on ({name} names the plugin {PLUGIN}), but {SOCKET_PATH} is missing: dockerd refuses every API call, and exits at start; start it with systemctl enable --now dockertls-authz.socket"));
    } else {
        findings.record(
            "authorization",
            Status::Ok,
            format!("on: {name} names the plugin {PLUGIN} ({SOCKET_PATH})"),
        );
    }
    let Some(ca) = object.get("tlscacert").and_then(Value::as_str) else {
        return;
    };
    let folder = Path::new(ca).parent().unwrap_or(Path::new("/"));
    judge_crl(Path::new(ca), &folder.join(CRL), now, findings);
    judge_policy(&folder.join(AUTHZ_POLICY), findings);
}

/// Reads a file as the plugin does (None when missing).
fn read(path: &Path) -> Result<Option<Vec<u8>>, String> {
    use std::io::Read;
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(None);
    }
    let (file, _) = crate::userfile::open_regular(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_READ + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_READ {
        return Err(format!("{} is over 16 MiB", path.display()));
    }
    Ok(Some(bytes))
}

fn judge_crl(ca: &Path, crl: &Path, now: OffsetDateTime, findings: &mut Findings) {
    let shown = crl.display();
    let (crl_bytes, ca_bytes) = match (read(crl), read(ca)) {
        (Ok(None), _) => {
            findings.record("crl", Status::Warn, format!("{shown} is missing: the plugin revokes nothing; on the machine with the CA run dockertls crl refresh, then put the server folder in place again"));
            return;
        }
        (Ok(Some(crl)), Ok(Some(ca))) => (crl, ca),
        (Err(why), _) | (_, Err(why)) => {
            findings.record("crl", Status::Fail, why);
            return;
        }
        (_, Ok(None)) => return,
    };
    let info = match crate::crl::read(&crl_bytes, &ca_bytes) {
        Ok(info) => info,
        Err(why) => {
            findings.record("crl", Status::Fail, format!("{shown} {why}: the plugin does not use it (and refuses every TLS call if it never had a good one); put the server folder's crl.pem in place again"));
            return;
        }
    };
    let number = info.number.map(|n| format!(" #{n}")).unwrap_or_default();
    let listed = info.serials.len();
    match info.next_update {
        Some(next) if next < now => findings.record("crl", Status::Warn, format!("{shown}{number} is past its nextUpdate ({}): it still revokes the {listed} certificates it lists, but a newer revocation may be missing; on the machine with the CA run dockertls crl refresh and put it in place", crate::store::state::date(next))),
        Some(next) => findings.record("crl", Status::Ok, format!("{shown}{number} is signed by the CA, lists {listed} revoked certificates, current until {}", crate::store::state::date(next))),
        None => findings.record("crl", Status::Warn, format!("{shown}{number} has no nextUpdate: no one can tell whether it is current; replace it with one from dockertls crl refresh")),
    }
}

fn judge_policy(policy: &Path, findings: &mut Findings) {
    let shown = policy.display();
    match read(policy) {
        Ok(None) => findings.record(
            "authorization",
            Status::Ok,
            format!("{shown} is absent: every valid, unrevoked client is admin"),
        ),
        Ok(Some(bytes)) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(value) if value["format"] == 1 && value["clients"].is_object() => {}
            _ => findings.record("authorization", Status::Fail, format!("{shown} is not a dockertls policy (format 1): the plugin does not use it, and refuses every TLS call if it never had a good one")),
        },
        Err(why) => findings.record("authorization", Status::Fail, why),
    }
}
