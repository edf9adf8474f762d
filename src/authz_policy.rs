//! The authorization policy of a PKI: which role each client has, the custom roles, and the
//! `authz.json` file the plugin reads (format agreed with `authz serve`; see README). Pure: no
//! file I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The built-in role that may do everything (every client before roles are first used).
pub const ADMIN: &str = "admin";
/// The built-in role that may only read (the README lists its table).
pub const READ_ONLY: &str = "read-only";
/// The policy file format this dockertls writes.
pub const POLICY_FORMAT: u32 = 1;

/// The HTTP methods a rule may name (what Docker's API uses), or `*` for any.
const METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "DELETE", "*"];

/// One request a custom role allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub method: String,
    pub path: String,
}

/// A custom role: an allow-list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomRole {
    pub allow: Vec<Rule>,
}

/// Checks a role name: 1 to 64 of letters, digits, `-`, `_`, `.`, starting with a letter or a
/// digit (it appears in messages, the policy file and the audit log).
pub fn check_role_name(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "role '{}' is not a role name: use 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or a digit",
            crate::escape::value(name)
        ))
    }
}

/// Whether `name` is a built-in role.
pub fn is_builtin(name: &str) -> bool {
    name == ADMIN || name == READ_ONLY
}

/// Parses a rule as `--allow` takes it: `METHOD /path/pattern`.
pub fn parse_rule(text: &str) -> Result<Rule, String> {
    let mut words = text.split_whitespace();
    let text = crate::escape::value(text);
    let (Some(method), Some(path), None) = (words.next(), words.next(), words.next()) else {
        return Err(format!(
            "--allow '{text}' is not METHOD /path: give a method and a path pattern, e.g. 'GET /containers/**'"
        ));
    };
    if !METHODS.contains(&method) {
        return Err(format!(
            "--allow '{text}': '{}' is not a method a rule can name (GET, HEAD, POST, PUT, DELETE or *, upper case)",
            crate::escape::value(method)
        ));
    }
    check_pattern(path).map_err(|why| format!("--allow '{text}': {why}"))?;
    Ok(Rule {
        method: method.to_string(),
        path: path.to_string(),
    })
}

/// A path pattern: starts with `/`; segments `*` (one segment) or `**` (zero or more
/// segments, at most once: what the plugin matches, e.g. `/images/**/json`),
/// or literal text of printable ASCII without `%`, `?` or `#` (the plugin matches the decoded,
/// cleaned path without its query, so those could never match).
fn check_pattern(path: &str) -> Result<(), String> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err("a path pattern starts with '/'".into());
    };
    if path.len() > 256 {
        return Err("a path pattern is at most 256 characters".into());
    }
    if rest.is_empty() {
        return Ok(());
    }
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.iter().filter(|s| **s == "**").count() > 1 {
        return Err("'**' may appear once in a pattern".into());
    }
    for segment in &segments {
        match *segment {
            "" => {
                return Err("a path pattern has no empty segment ('//' or a trailing '/')".into());
            }
            "." | ".." => return Err("a path pattern has no '.' or '..' segment".into()),
            "*" | "**" => {}
            literal if literal.contains('*') => {
                return Err(format!(
                    "segment '{literal}': '*' matches a whole segment, not part of one"
                ));
            }
            literal
                if !literal
                    .chars()
                    .all(|c| c.is_ascii_graphic() && !matches!(c, '%' | '?' | '#')) =>
            {
                return Err(format!(
                    "segment '{literal}' has a character a cleaned, decoded API path cannot hold"
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The contents of `authz.json`: each client's role (CN -> role) and the custom roles. Keys in
/// a stable order, so an unchanged policy rewrites the same bytes.
pub fn render(clients: &BTreeMap<String, String>, roles: &BTreeMap<String, CustomRole>) -> String {
    let policy = serde_json::json!({
        "format": POLICY_FORMAT,
        "unix_socket_requests": "allow",
        "clients": clients,
        "roles": roles,
    });
    let mut text = serde_json::to_string_pretty(&policy).unwrap_or_default();
    text.push('\n');
    text
}

/// The state file's top-level keys this module owns (beside fleet-core's `servers` and
/// `clients`; each client's role is its entry's `"role"`).
pub mod keys {
    /// A server entry's `"authz": true`: a `deploy --authz` put the plugin on its host (set by
    /// `deploy`; `verify` reads it to say where a revocation is enforced).
    pub const SERVER_AUTHZ: &str = "authz";
    /// `[{"serial", "name", "at", "reason"}]`: what the CRL lists.
    pub const REVOKED: &str = "revoked";
    /// `[{"serial", "name", "revoke_after"}]`: `rotate --revoke-old`'s pending revocations.
    pub const SUPERSEDED: &str = "superseded";
    /// The number of the last CRL signed (each new one is one more: RFC 5280's cRLNumber).
    pub const CRL_NUMBER: &str = "crl_number";
    /// Review item 2: the revision of the last authz.json written (one more each time it is
    /// written from a saved state): the plugin refuses a policy older than the one in force.
    pub const POLICY_REVISION: &str = "policy_revision";
    /// `{"NAME": {"allow": [...]}}`: the custom roles.
    pub const ROLES: &str = "roles";
    /// A client entry's role.
    pub const ROLE: &str = "role";
}

/// What the PKI records for authorization: revocations, pending revocations, the CRL number,
/// custom roles and each client's role (only once roles are in use).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    pub revoked: Vec<crate::crl::Revocation>,
    pub superseded: Vec<crate::crl::Superseded>,
    pub crl_number: u64,
    /// The revision of the last authz.json written (its `"revision"` key).
    pub policy_revision: u64,
    pub roles: BTreeMap<String, CustomRole>,
    /// Client name (CN) -> role, for the clients that have one.
    pub client_roles: BTreeMap<String, String>,
}

/// Reads the typed value at `key` of a JSON object (absent: the default).
fn field<T: serde::de::DeserializeOwned + Default>(
    object: &serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Result<T, String> {
    match object.get(key) {
        None => Ok(T::default()),
        Some(value) => serde_json::from_value(value.clone()).map_err(|e| {
            format!(
                "its \"{key}\" is not what dockertls writes ({})",
                crate::escape::quoted_values(&e.to_string())
            )
        }),
    }
}

/// Review item 2: whether the authz.json `older` has a lower `"revision"` than `newer` (a
/// file without one is revision 0; a file that does not parse is never called older).
pub fn is_older(older: &[u8], newer: &[u8]) -> Option<(u64, u64)> {
    let revision = |bytes: &[u8]| {
        let json: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        Some(json.get("revision").and_then(|r| r.as_u64()).unwrap_or(0))
    };
    let (old, new) = (revision(older)?, revision(newer)?);
    (old < new).then_some((old, new))
}

/// Minor 1: each entry of the list `key` has a hex `serial` and an RFC 3339 `date_key`, said
/// in dockertls's own words (a library's message names neither the entry nor the fix).
fn check_entries(
    top: &serde_json::Map<String, serde_json::Value>,
    key: &str,
    date_key: &str,
) -> Result<(), String> {
    let Some(serde_json::Value::Array(entries)) = top.get(key) else {
        return Ok(());
    };
    let shown = |value: &serde_json::Value| {
        let text = match value {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        crate::escape::value(&text)
    };
    for (n, entry) in entries.iter().enumerate() {
        let at = |k: &str| entry.get(k).unwrap_or(&serde_json::Value::Null);
        let serial = at("serial");
        if serial
            .as_str()
            .is_none_or(|s| crate::crl::parse_serial(s).is_err())
        {
            return Err(format!(
                "its \"{key}\" entry #{} has the serial '{}', which is not a certificate serial in hex (as client list shows it)",
                n + 1,
                shown(serial)
            ));
        }
        let date = at(date_key);
        let parsed = date.as_str().map(|d| {
            ::time::OffsetDateTime::parse(d, &::time::format_description::well_known::Rfc3339)
        });
        if !matches!(parsed, Some(Ok(_))) {
            return Err(format!(
                "its \"{key}\" entry #{} has the \"{date_key}\" '{}', which is not a date and time such as 2026-01-31T12:00:00Z",
                n + 1,
                shown(date)
            ));
        }
    }
    Ok(())
}

impl Record {
    /// Reads the record from the state file's top-level keys and client entries (`clients`
    /// gives each client's own keys).
    pub fn read<'a>(
        top: &serde_json::Map<String, serde_json::Value>,
        clients: impl Iterator<Item = (&'a String, &'a serde_json::Map<String, serde_json::Value>)>,
    ) -> Result<Record, String> {
        check_entries(top, keys::REVOKED, "at")?;
        check_entries(top, keys::SUPERSEDED, "revoke_after")?;
        let mut record = Record {
            revoked: field(top, keys::REVOKED)?,
            superseded: field(top, keys::SUPERSEDED)?,
            crl_number: field(top, keys::CRL_NUMBER)?,
            policy_revision: field(top, keys::POLICY_REVISION)?,
            roles: field(top, keys::ROLES)?,
            client_roles: BTreeMap::new(),
        };
        for (name, role) in &record.roles {
            check_role_name(name)?;
            if is_builtin(name) {
                return Err(format!("it redefines the built-in role '{name}'"));
            }
            for rule in &role.allow {
                parse_rule(&format!("{} {}", rule.method, rule.path))?;
            }
        }
        for (name, entry) in clients {
            if let Some(role) = field::<Option<String>>(entry, keys::ROLE)? {
                record.client_roles.insert(name.clone(), role);
            }
        }
        Ok(record)
    }

    /// Writes the record back into the state file's top-level keys and client entries (empty
    /// lists are left out, so a PKI that never used authorization keeps its file as it was).
    pub fn write<'a>(
        &self,
        top: &mut serde_json::Map<String, serde_json::Value>,
        clients: impl Iterator<
            Item = (
                &'a String,
                &'a mut serde_json::Map<String, serde_json::Value>,
            ),
        >,
    ) {
        let mut put = |key: &str, value: serde_json::Value, empty: bool| {
            if empty {
                top.shift_remove(key);
            } else {
                top.insert(key.to_string(), value);
            }
        };
        put(
            keys::REVOKED,
            serde_json::json!(self.revoked),
            self.revoked.is_empty(),
        );
        put(
            keys::SUPERSEDED,
            serde_json::json!(self.superseded),
            self.superseded.is_empty(),
        );
        put(
            keys::CRL_NUMBER,
            serde_json::json!(self.crl_number),
            self.crl_number == 0,
        );
        put(
            keys::POLICY_REVISION,
            serde_json::json!(self.policy_revision),
            self.policy_revision == 0,
        );
        put(
            keys::ROLES,
            serde_json::json!(self.roles),
            self.roles.is_empty(),
        );
        for (name, entry) in clients {
            match self.client_roles.get(name) {
                Some(role) => {
                    entry.insert(keys::ROLE.to_string(), serde_json::json!(role));
                }
                None => {
                    entry.shift_remove(keys::ROLE);
                }
            }
        }
    }

    /// Whether roles are in use: a client has a role or a custom role exists. Until then
    /// there is no policy file and every valid, unrevoked client is admin.
    pub fn roles_in_use(&self) -> bool {
        !self.client_roles.is_empty() || !self.roles.is_empty()
    }

    /// Refuses a role that is neither built in nor defined.
    pub fn check_role_exists(&self, role: &str) -> Result<(), String> {
        if is_builtin(role) || self.roles.contains_key(role) {
            return Ok(());
        }
        check_role_name(role)?;
        let custom: Vec<&str> = self.roles.keys().map(String::as_str).collect();
        let known = [ADMIN, READ_ONLY]
            .into_iter()
            .chain(custom)
            .collect::<Vec<_>>();
        Err(format!(
            "role '{role}' is not defined (roles: {})",
            known.join(", ")
        ))
    }

    /// Gives `client` the role `role` (which must exist). The first time roles are used,
    /// every other client in `all_clients` is recorded as admin: what they are today.
    pub fn set_role(
        &mut self,
        all_clients: &[String],
        client: &str,
        role: &str,
    ) -> Result<(), String> {
        self.check_role_exists(role)?;
        self.start_roles(all_clients);
        self.client_roles
            .insert(client.to_string(), role.to_string());
        Ok(())
    }

    /// Records every client without a role as admin, when roles are not yet in use.
    pub fn start_roles(&mut self, all_clients: &[String]) {
        if self.roles_in_use() {
            return;
        }
        for name in all_clients {
            self.client_roles.insert(name.clone(), ADMIN.to_string());
        }
    }

    /// The serials revoked, to refuse revoking one twice.
    pub fn is_revoked(&self, serial: &str) -> bool {
        self.revoked.iter().any(|r| r.serial == serial)
    }

    /// Moves the superseded certificates whose grace has passed at `now` to the revoked list;
    /// returns their names.
    pub fn revoke_due(&mut self, now: ::time::OffsetDateTime) -> Vec<String> {
        let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.superseded)
            .into_iter()
            .partition(|s| s.revoke_after <= now);
        self.superseded = waiting;
        let mut names = Vec::new();
        for entry in due {
            if !self.is_revoked(&entry.serial) {
                names.push(entry.name.clone());
                self.revoked.push(crate::crl::Revocation {
                    serial: entry.serial,
                    name: entry.name,
                    at: now,
                    reason: crate::crl::Reason::Superseded,
                });
            }
        }
        names
    }

    /// The contents of `authz.json`, once roles are in use, keyed by client name (= CN).
    pub fn policy(&self) -> Option<String> {
        self.policy_by_cn(|name| name.to_string()).ok().flatten()
    }

    /// Review item 7: the contents of `authz.json`, once roles are in use, keyed by each
    /// client's certificate CN (`cn_of` its name): the plugin knows a client only by its CN,
    /// and an imported client's folder name may differ from it. Two clients with the same CN
    /// and different roles are refused: the plugin could not tell them apart.
    pub fn policy_by_cn(&self, cn_of: impl Fn(&str) -> String) -> Result<Option<String>, String> {
        if !self.roles_in_use() {
            return Ok(None);
        }
        let mut by_cn: BTreeMap<String, (String, String)> = BTreeMap::new();
        for (name, role) in &self.client_roles {
            let cn = cn_of(name);
            if let Some((other, other_role)) = by_cn.get(&cn)
                && other_role != role
            {
                return Err(format!(
                    "clients '{other}' and '{name}' have certificates with the same CN '{}' but different roles ({other_role}, {role}): the authorization plugin knows a client only by its CN",
                    crate::escape::value(&cn)
                ));
            }
            by_cn.insert(cn, (name.clone(), role.clone()));
        }
        let clients = by_cn
            .into_iter()
            .map(|(cn, (_, role))| (cn, role))
            .collect();
        let mut text = render(&clients, &self.roles);
        if self.policy_revision > 0 {
            // An extra top-level key: a plugin that does not know it ignores it.
            let mut json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            json["revision"] = serde_json::json!(self.policy_revision);
            text = serde_json::to_string_pretty(&json).unwrap_or_default();
            text.push('\n');
        }
        Ok(Some(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_a_method_and_a_clean_pattern() {
        let rule = parse_rule("GET /containers/**").unwrap();
        assert_eq!(
            (rule.method.as_str(), rule.path.as_str()),
            ("GET", "/containers/**")
        );
        assert!(parse_rule("*   /").is_ok());
        assert!(parse_rule("POST /containers/*/restart").is_ok());
        assert!(parse_rule("GET /images/**/json").is_ok());
        for bad in [
            "",
            "GET",
            "get /x",
            "PATCH /x",
            "GET x",
            "GET /a//b",
            "GET /a/",
            "GET /**/a/**",
            "GET /a*",
            "GET /../x",
            "GET /a%2f",
            "GET /a?b",
            "GET /a b",
        ] {
            assert!(parse_rule(bad).is_err(), "{bad}");
        }
    }

    /// Review item 7: the policy is keyed by certificate CN; two clients with one CN are fine
    /// with the same role, refused with different ones.
    #[test]
    fn the_policy_is_keyed_by_cn_and_one_cn_has_one_role() {
        let mut record = Record::default();
        record.start_roles(&["docker-dind-client".to_string(), "ops".to_string()]);
        let cn = |name: &str| match name {
            "docker-dind-client" => "docker:dind client".to_string(),
            other => other.to_string(),
        };
        let text = record.policy_by_cn(cn).unwrap().unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["clients"]["docker:dind client"], ADMIN);
        assert!(
            json["clients"].get("docker-dind-client").is_none(),
            "{text}"
        );
        let same = |_: &str| "twin".to_string();
        assert!(record.policy_by_cn(same).is_ok());
        record
            .client_roles
            .insert("ops".to_string(), READ_ONLY.to_string());
        let why = record.policy_by_cn(same).unwrap_err();
        assert!(
            why.contains("same CN 'twin'") && why.contains("different roles"),
            "{why}"
        );
    }

    /// Review item 2: a written policy carries its revision; a lower one is older.
    #[test]
    fn a_policy_carries_its_revision_and_a_lower_one_is_older() {
        let mut record = Record::default();
        record.start_roles(&["alice".to_string()]);
        record.policy_revision = 7;
        let seven = record.policy().unwrap();
        record.policy_revision = 8;
        let eight = record.policy().unwrap();
        assert!(seven.contains("\"revision\": 7"), "{seven}");
        assert_eq!(is_older(seven.as_bytes(), eight.as_bytes()), Some((7, 8)));
        assert_eq!(is_older(eight.as_bytes(), seven.as_bytes()), None);
        assert_eq!(is_older(eight.as_bytes(), eight.as_bytes()), None);
        assert_eq!(is_older(b"junk", eight.as_bytes()), None);
    }

    #[test]
    fn role_names_are_plain() {
        assert!(check_role_name("deployer").is_ok());
        assert!(check_role_name("ci.read-1").is_ok());
        for bad in ["", "-x", "a b", "a/b", "rôle", &"a".repeat(65), "a\u{1b}"] {
            assert!(check_role_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_policy_file_names_every_client_and_custom_role() {
        let clients = BTreeMap::from([
            ("alice".to_string(), ADMIN.to_string()),
            ("ci".to_string(), "deployer".to_string()),
        ]);
        let roles = BTreeMap::from([(
            "deployer".to_string(),
            CustomRole {
                allow: vec![parse_rule("GET /**").unwrap()],
            },
        )]);
        let text = render(&clients, &roles);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["format"], 1);
        assert_eq!(value["clients"]["ci"], "deployer");
        assert_eq!(value["roles"]["deployer"]["allow"][0]["path"], "/**");
        assert_eq!(text, render(&clients, &roles));
    }

    #[test]
    fn first_use_of_roles_records_everyone_as_admin() {
        let mut record = Record::default();
        assert_eq!(record.policy(), None);
        let all = ["alice".to_string(), "bob".to_string()];
        record.set_role(&all, "bob", READ_ONLY).unwrap();
        assert_eq!(record.client_roles["alice"], ADMIN);
        assert_eq!(record.client_roles["bob"], READ_ONLY);
        assert!(record.set_role(&all, "bob", "deployer").is_err());
        // Written and read back through the state file's maps.
        let mut top = serde_json::Map::new();
        let mut clients: BTreeMap<String, serde_json::Map<String, serde_json::Value>> = all
            .iter()
            .map(|n| (n.clone(), serde_json::Map::new()))
            .collect();
        record.write(&mut top, clients.iter_mut());
        assert!(!top.contains_key(keys::REVOKED));
        let again = Record::read(&top, clients.iter()).unwrap();
        assert_eq!(again, record);
    }

    #[test]
    fn superseded_certificates_are_revoked_after_their_grace() {
        use ::time::macros::datetime;
        let now = datetime!(2026-11-30 12:00 UTC);
        let mut record = Record::default();
        record.superseded.push(crate::crl::Superseded {
            serial: "0a".into(),
            name: "alice".into(),
            revoke_after: now + ::time::Duration::days(7),
        });
        assert!(record.revoke_due(now).is_empty());
        assert_eq!(record.superseded.len(), 1);
        let later = now + ::time::Duration::days(7);
        assert_eq!(record.revoke_due(later), ["alice"]);
        assert!(record.is_revoked("0a") && record.superseded.is_empty());
        assert_eq!(record.revoked[0].reason, crate::crl::Reason::Superseded);
    }

    #[test]
    fn a_state_file_with_a_bad_policy_is_refused() {
        let top: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
            r#"{"roles": {"admin": {"allow": [{"method": "GET", "path": "/**"}]}}}"#,
        )
        .unwrap();
        assert!(Record::read(&top, std::iter::empty()).is_err());
        let top: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"revoked": "x"}"#).unwrap();
        assert!(Record::read(&top, std::iter::empty()).is_err());
    }
}
