//! Merging dockertls's TLS keys into an existing /etc/docker/daemon.json: every other key is
//! kept, in its order and with its value. Pure.

use serde_json::{Map, Value};

/// The keys dockertls owns in daemon.json.
pub const TLS_KEYS: [&str; 6] = [
    "hosts",
    "tls",
    "tlsverify",
    "tlscacert",
    "tlscert",
    "tlskey",
];

/// The outcome of a merge.
#[derive(Debug)]
pub struct Merged {
    /// The new file text (2-space indented, `hosts` on one line for Docker Bench 2.7).
    pub text: String,
    /// Keys whose existing values differ from ours: (key, old, new).
    pub conflicts: Vec<(String, Value, Value)>,
}

/// Parses an existing daemon.json; on failure, says where.
pub fn parse(text: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("is valid JSON but not an object ({...})".into()),
        Err(err) => {
            // At column 0 the parser has already moved past the faulty line.
            let line_no = if err.column() == 0 && err.line() > 1 {
                err.line() - 1
            } else {
                err.line()
            };
            let line = text
                .lines()
                .nth(line_no.saturating_sub(1))
                .unwrap_or_default();
            Err(format!(
                "is not valid JSON ({err}) — line {line_no}: {}",
                line.trim()
            ))
        }
    }
}

/// Sets our keys in `existing` (kept in place when present, appended otherwise).
pub fn merge(existing: Option<&Map<String, Value>>, ours: &Map<String, Value>) -> Merged {
    let mut result = existing.cloned().unwrap_or_default();
    let mut conflicts = Vec::new();
    for (key, value) in ours {
        match result.get(key) {
            Some(old) if old != value => conflicts.push((key.clone(), old.clone(), value.clone())),
            _ => {}
        }
        if let Some(slot) = result.get_mut(key) {
            *slot = value.clone();
        } else {
            result.insert(key.clone(), value.clone());
        }
    }
    Merged {
        text: render(&result),
        conflicts,
    }
}

/// Pretty JSON with `hosts` kept on one line.
pub fn render(map: &Map<String, Value>) -> String {
    let mut out = String::from("{\n");
    let entries: Vec<String> = map
        .iter()
        .map(|(key, value)| {
            let key_text = Value::String(key.clone()).to_string();
            let value_text = if key == "hosts" {
                value.to_string().replace("\",\"", "\", \"")
            } else {
                let pretty = serde_json::to_string_pretty(value).unwrap_or_default();
                pretty.replace('\n', "\n  ")
            };
            format!("  {key_text}: {value_text}")
        })
        .collect();
    out.push_str(&entries.join(",\n"));
    out.push_str("\n}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ours() -> Map<String, Value> {
        json!({"hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"], "tls": true, "tlsverify": true,
               "tlscacert": "/etc/docker/tls/ca.pem", "tlscert": "/etc/docker/tls/server-cert.pem", "tlskey": "/etc/docker/tls/server-key.pem"})
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn keeps_other_keys_in_order_and_puts_hosts_on_one_line() {
        let existing = parse(r#"{"icc": false, "userns-remap": "default", "log-driver": "journald", "default-ulimits": {"nofile": {"Name": "nofile", "Hard": 64000, "Soft": 64000}}, "live-restore": true}"#).unwrap();
        let merged = merge(Some(&existing), &ours());
        assert!(merged.conflicts.is_empty());
        let value: Value = serde_json::from_str(&merged.text).unwrap();
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "icc",
                "userns-remap",
                "log-driver",
                "default-ulimits",
                "live-restore",
                "hosts",
                "tls",
                "tlsverify",
                "tlscacert",
                "tlscert",
                "tlskey"
            ]
        );
        assert_eq!(value["default-ulimits"]["nofile"]["Hard"], 64000);
        assert!(
            merged.text.contains(
                "  \"hosts\": [\"unix:///var/run/docker.sock\", \"tcp://0.0.0.0:2376\"],\n"
            ),
            "{}",
            merged.text
        );
    }

    #[test]
    fn reports_conflicts_and_replaces_string_booleans() {
        let existing = parse(
            r#"{"hosts": ["unix:///var/run/docker.sock"], "tlsverify": "true", "debug": true}"#,
        )
        .unwrap();
        let merged = merge(Some(&existing), &ours());
        let keys: Vec<&str> = merged
            .conflicts
            .iter()
            .map(|(k, _, _)| k.as_str())
            .collect();
        assert_eq!(keys, ["hosts", "tlsverify"]);
        let value: Value = serde_json::from_str(&merged.text).unwrap();
        assert_eq!(value["tlsverify"], true);
        assert_eq!(
            value.as_object().unwrap().keys().next().unwrap(),
            "hosts",
            "an existing key keeps its place"
        );
    }

    #[test]
    fn invalid_json_says_where() {
        let err = parse("{\n  \"icc\": false,\n  \"debug\": tru\n}").unwrap_err();
        assert!(
            err.contains("line 3") && err.contains("\"debug\": tru"),
            "{err}"
        );
    }
}
