//! Roles: the built-in `admin` and `read-only`, and the policy file (`authz.json`) that maps
//! each certificate CN to a role and defines custom roles as allow-lists. The format is the
//! contract written in the project's authz-files note and in the README.

use std::collections::HashMap;

use serde::Deserialize;

use super::route::Rule;

/// The built-in role that may do everything.
pub const ADMIN: &str = "admin";
/// The built-in role that may only read (see [`READ_ONLY_RULES`]).
pub const READ_ONLY: &str = "read-only";

/// What `read-only` allows: listing and inspecting containers, images, networks and volumes,
/// logs, events, info, version. Not: exec, attach (websocket too), archive, export, image
/// save (`/images/get`), `GET /swarm` (join tokens), exec inspect (command lines), plugins,
/// distribution (registry credentials), anything that changes state. Image names hold slashes
/// (`registry:5000/team/app`), hence `**` there; container names do not. The README's table is
/// this list; each row has a test.
pub const READ_ONLY_RULES: [(&str, &str); 17] = [
    ("GET", "/_ping"),
    ("HEAD", "/_ping"),
    ("GET", "/version"),
    ("GET", "/info"),
    ("GET", "/events"),
    ("GET", "/system/df"),
    ("GET", "/containers/json"),
    ("GET", "/containers/*/json"),
    ("GET", "/containers/*/logs"),
    ("GET", "/containers/*/top"),
    ("GET", "/containers/*/stats"),
    ("GET", "/containers/*/changes"),
    ("GET", "/images/json"),
    ("GET", "/images/**/json"),
    ("GET", "/images/**/history"),
    ("GET", "/networks/**"),
    ("GET", "/volumes/**"),
];

/// Who may do what when requests come without a certificate (the local unix socket).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnixRequests {
    Allow,
    Deny,
}

/// A role: everything, or an allow-list.
#[derive(Debug, Clone)]
pub enum Role {
    /// `admin`.
    Admin,
    /// `read-only` or a custom role.
    Allow(Vec<Rule>),
}

impl Role {
    /// Whether the role allows `method` on the routed `path`.
    pub fn allows(&self, method: &str, path: &str) -> bool {
        match self {
            Role::Admin => true,
            Role::Allow(rules) => rules.iter().any(|rule| rule.allows(method, path)),
        }
    }
}

/// The built-in `read-only` role.
pub fn read_only() -> Role {
    Role::Allow(
        READ_ONLY_RULES
            .iter()
            .map(|(method, path)| Rule::parse(method, path).expect("built-in rule"))
            .collect(),
    )
}

/// A loaded, checked `authz.json`.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The `unix_socket_requests` key, when set.
    pub unix_socket_requests: Option<UnixRequests>,
    clients: HashMap<String, String>,
    roles: HashMap<String, Role>,
    /// The `revision` key (0 when absent): review item 2.
    pub revision: u64,
}

/// What the policy says about a CN.
pub enum Lookup<'a> {
    /// The CN's role name and the role.
    Role(&'a str, &'a Role),
    /// The CN is not in `clients`.
    NoRole,
    /// The CN names a role that is not defined.
    Undefined(&'a str),
}

impl Policy {
    /// The role of `cn`.
    pub fn lookup(&self, cn: &str) -> Lookup<'_> {
        match self.clients.get(cn) {
            None => Lookup::NoRole,
            Some(name) => match self.roles.get(name.as_str()) {
                Some(role) => Lookup::Role(name, role),
                None => Lookup::Undefined(name),
            },
        }
    }
}

#[derive(Deserialize)]
struct PolicyFile {
    format: u64,
    #[serde(default)]
    unix_socket_requests: Option<UnixRequests>,
    #[serde(default)]
    clients: HashMap<String, String>,
    #[serde(default)]
    roles: HashMap<String, RoleFile>,
    #[serde(default)]
    revision: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleFile {
    allow: Vec<RuleFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    method: String,
    path: String,
}

/// The format of `authz.json` this version reads.
pub const POLICY_FORMAT: u64 = 1;

/// Parses and checks `authz.json`; the error says what is wrong (it never echoes more than a
/// name from the file).
pub fn parse_policy(bytes: &[u8]) -> Result<Policy, String> {
    let file: PolicyFile = serde_json::from_slice(bytes).map_err(|err| {
        format!(
            "is not a valid policy: {}",
            crate::escape::quoted_values(&err.to_string())
        )
    })?;
    if file.format > POLICY_FORMAT {
        return Err(format!(
            "has format {} (made by a newer dockertls; this one reads format {POLICY_FORMAT})",
            file.format
        ));
    }
    if file.format < POLICY_FORMAT {
        return Err(format!(
            "has format {}, which no dockertls wrote",
            file.format
        ));
    }
    let mut roles = HashMap::new();
    roles.insert(ADMIN.to_string(), Role::Admin);
    roles.insert(READ_ONLY.to_string(), read_only());
    for (name, role) in file.roles {
        if name == ADMIN || name == READ_ONLY {
            return Err(format!("redefines the built-in role '{name}'"));
        }
        let mut rules = Vec::with_capacity(role.allow.len());
        for rule in role.allow {
            let parsed = Rule::parse(&rule.method, &rule.path)
                .map_err(|why| format!("role '{}': {why}", crate::escape::value(&name)))?;
            rules.push(parsed);
        }
        roles.insert(name, Role::Allow(rules));
    }
    Ok(Policy {
        unix_socket_requests: file.unix_socket_requests,
        clients: file.clients,
        roles,
        revision: file.revision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_maps_cns_to_built_in_and_custom_roles() {
        let policy = parse_policy(
            br#"{"format":1,"unix_socket_requests":"deny","future":true,
                 "clients":{"alice":"admin","bob":"read-only","ci":"deployer","eve":"ghost"},
                 "roles":{"deployer":{"allow":[{"method":"POST","path":"/containers/*/restart"}]}}}"#,
        )
        .unwrap();
        assert_eq!(policy.unix_socket_requests, Some(UnixRequests::Deny));
        assert!(matches!(
            policy.lookup("alice"),
            Lookup::Role("admin", Role::Admin)
        ));
        let Lookup::Role(_, ci) = policy.lookup("ci") else {
            panic!("ci has a role")
        };
        assert!(ci.allows("POST", "/containers/web/restart"));
        assert!(!ci.allows("POST", "/containers/create"));
        assert!(matches!(policy.lookup("eve"), Lookup::Undefined("ghost")));
        assert!(matches!(policy.lookup("Alice"), Lookup::NoRole));
    }

    /// Whether read-only allows `method` on the URI dockerd passes.
    fn read_only_allows(method: &str, uri: &str) -> bool {
        let path = crate::authz::route::route_path(uri).unwrap();
        read_only().allows(method, &path)
    }

    #[test]
    fn each_row_of_the_read_only_table_allows_what_it_names() {
        // One request per row of READ_ONLY_RULES (and of the README's table), in order.
        let rows = [
            ("GET", "/_ping"),
            ("HEAD", "/_ping"),
            ("GET", "/v1.41/version"),
            ("GET", "/v1.41/info"),
            ("GET", "/v1.41/events?since=1"),
            ("GET", "/v1.41/system/df"),
            ("GET", "/v1.41/containers/json?all=1"),
            ("GET", "/v1.41/containers/web/json"),
            ("GET", "/v1.41/containers/web/logs?stdout=1"),
            ("GET", "/v1.41/containers/web/top"),
            ("GET", "/v1.41/containers/web/stats?stream=0"),
            ("GET", "/v1.41/containers/web/changes"),
            ("GET", "/v1.41/images/json"),
            ("GET", "/v1.41/images/registry:5000/team/app:1/json"),
            ("GET", "/v1.41/images/alpine/history"),
            ("GET", "/v1.41/networks/bridge"),
            ("GET", "/v1.41/volumes/data"),
        ];
        assert_eq!(rows.len(), READ_ONLY_RULES.len());
        for ((method, uri), (rule_method, rule_path)) in rows.iter().zip(READ_ONLY_RULES) {
            assert!(read_only_allows(method, uri), "{method} {uri}");
            let rule = Rule::parse(rule_method, rule_path).unwrap();
            let path = crate::authz::route::route_path(uri).unwrap();
            assert!(
                rule.allows(method, &path),
                "row {rule_method} {rule_path}: {uri}"
            );
        }
        for (method, uri) in [
            ("GET", "/networks"),
            ("GET", "/networks/"),
            ("GET", "/volumes"),
        ] {
            assert!(read_only_allows(method, uri), "{method} {uri}");
        }
    }

    #[test]
    fn read_only_refuses_changes_streams_and_the_reads_that_hand_out_secrets_or_data() {
        let refused = [
            ("POST", "/v1.41/containers/create"),
            ("POST", "/v1.41/containers/web/start"),
            ("POST", "/v1.41/containers/web/exec"),
            ("POST", "/v1.41/exec/abc/start"),
            ("GET", "/v1.41/exec/abc/json"),
            ("POST", "/v1.41/containers/web/attach?stream=1"),
            ("GET", "/v1.41/containers/web/attach/ws"),
            ("GET", "/v1.41/containers/web/export"),
            ("GET", "/v1.41/containers/web/archive?path=/etc"),
            ("HEAD", "/v1.41/containers/web/archive?path=/etc"),
            ("PUT", "/v1.41/containers/web/archive?path=/"),
            ("DELETE", "/v1.41/containers/web"),
            ("GET", "/v1.41/images/get?names=alpine"),
            ("GET", "/v1.41/images/alpine/get"),
            ("POST", "/v1.41/images/create?fromImage=alpine"),
            ("POST", "/v1.41/build"),
            ("GET", "/v1.41/swarm"),
            ("GET", "/v1.41/services"),
            ("GET", "/v1.41/secrets"),
            ("GET", "/v1.41/plugins"),
            ("POST", "/v1.41/plugins/pull"),
            ("GET", "/v1.41/distribution/alpine/json"),
            ("POST", "/v1.41/volumes/create"),
            ("POST", "/v1.41/networks/create"),
            ("DELETE", "/v1.41/networks/bridge"),
            ("POST", "/v1.41/session"),
            // The path tricks resolve to what dockerd routes: still refused.
            ("GET", "/v1.41/containers/x/../../swarm"),
            ("GET", "/v1.41/containers/x/%2e%2e/%2e%2e/images/get"),
            ("GET", "//swarm"),
            ("GET", "/v1.41/containers/web/attach/ws/"),
            ("GET", "/v1.41/containers/web%2fexport"),
            ("GET", "/v1.41/Containers/web/export"),
            ("get", "/v1.41/containers/json"),
            ("GET", "/v1.41/containers/a/b/json"),
        ];
        for (method, uri) in refused {
            assert!(!read_only_allows(method, uri), "{method} {uri}");
        }
    }

    #[test]
    fn bad_policies_are_refused_with_the_reason() {
        let cases = [
            (r#"{"clients":{}}"#, "missing field `format`"),
            (r#"{"format":2}"#, "newer dockertls"),
            (
                r#"{"format":1,"roles":{"admin":{"allow":[]}}}"#,
                "built-in role 'admin'",
            ),
            (
                r#"{"format":1,"roles":{"r":{"allow":[{"method":"GET","paths":"/"}]}}}"#,
                "unknown field",
            ),
            (
                r#"{"format":1,"roles":{"r":{"allow":[{"method":"GET","path":"x"}]}}}"#,
                "role 'r'",
            ),
            (
                r#"{"format":1,"unix_socket_requests":"maybe"}"#,
                "unknown variant",
            ),
            ("not json", "is not a valid policy"),
        ];
        for (text, want) in cases {
            let err = parse_policy(text.as_bytes()).err().unwrap_or_default();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
