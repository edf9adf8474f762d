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
                crate::escape::value(line.trim())
            ))
        }
    }
}

/// Sets our keys in the existing daemon.json text: a key already there gets our value in
/// place, a missing one is added after the last key. Everything else (other keys and values,
/// numbers such as `1e2` or `12345678901234567890`, escapes such as `"\u00e9"` or `"\/"`,
/// spacing, comments-free layout) is kept byte for byte: only our values are spliced in.
pub fn merge(existing: Option<&str>, ours: &Map<String, Value>) -> Result<Merged, String> {
    let Some(text) = existing else {
        return Ok(Merged {
            text: render(ours),
            conflicts: Vec::new(),
        });
    };
    let parsed = parse(text)?;
    let members = members(text);
    if members.is_empty() {
        return Ok(Merged {
            text: render(ours),
            conflicts: Vec::new(),
        });
    }
    let mut conflicts = Vec::new();
    let mut splices: Vec<(usize, usize, String)> = Vec::new();
    let mut missing = Vec::new();
    for (key, value) in ours {
        match parsed.get(key) {
            Some(old) if old != value => conflicts.push((key.clone(), old.clone(), value.clone())),
            _ => {}
        }
        let mut found = false;
        for member in members.iter().filter(|m| &m.key == key) {
            found = true;
            // The same value, however written, stays as written.
            let same = serde_json::from_str::<Value>(&text[member.value.clone()])
                .is_ok_and(|old| &old == value);
            if !same {
                splices.push((member.value.start, member.value.end, value_text(key, value)));
            }
        }
        if !found {
            missing.push((key, value));
        }
    }
    if !missing.is_empty() {
        let first = &members[0];
        // New keys on their own lines, indented and ended as the first key is.
        let newline = if text[..first.key_start].contains("\r\n") {
            "\r\n"
        } else {
            "\n"
        };
        let line_start = text[..first.key_start].rfind('\n').map(|i| i + 1);
        let indent = match line_start {
            Some(start) if text[start..first.key_start].trim().is_empty() => {
                format!("{newline}{}", &text[start..first.key_start])
            }
            _ => format!("{newline}  "),
        };
        let mut added = String::new();
        for (key, value) in missing {
            let key_text = Value::String(key.clone()).to_string();
            added.push_str(&format!(",{indent}{key_text}: {}", value_text(key, value)));
        }
        let end = members[members.len() - 1].value.end;
        splices.push((end, end, added));
    }
    splices.sort_by_key(|(start, ..)| std::cmp::Reverse(*start));
    let mut result = text.to_string();
    for (start, end, replacement) in splices {
        result.replace_range(start..end, &replacement);
    }
    // The splice must give exactly the merged object.
    let mut expected = parsed;
    for (key, value) in ours {
        expected.insert(key.clone(), value.clone());
    }
    if parse(&result).ok().as_ref() != Some(&expected) {
        return Err("could not be merged without changing other keys".into());
    }
    Ok(Merged {
        text: result,
        conflicts,
    })
}

/// A top-level key of the object: its decoded name, where the key starts and where its value
/// lies in the text.
struct Member {
    key: String,
    key_start: usize,
    value: std::ops::Range<usize>,
}

/// The top-level members of a JSON object text that serde_json has accepted.
fn members(text: &str) -> Vec<Member> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut index = skip_space(bytes, 0);
    if bytes.get(index) != Some(&b'{') {
        return out;
    }
    index += 1;
    loop {
        index = skip_space(bytes, index);
        match bytes.get(index) {
            Some(b'"') => {}
            _ => return out,
        }
        let key_start = index;
        index = skip_string(bytes, index);
        let key = serde_json::from_str::<String>(&text[key_start..index]).unwrap_or_default();
        index = skip_space(bytes, index);
        index += 1; // ':'
        let value_start = skip_space(bytes, index);
        index = skip_value(bytes, value_start);
        out.push(Member {
            key,
            key_start,
            value: value_start..index,
        });
        index = skip_space(bytes, index);
        if bytes.get(index) != Some(&b',') {
            return out;
        }
        index += 1;
    }
}

fn skip_space(bytes: &[u8], mut index: usize) -> usize {
    while matches!(bytes.get(index), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        index += 1;
    }
    index
}

/// From an opening quote to just after the closing one.
fn skip_string(bytes: &[u8], mut index: usize) -> usize {
    index += 1;
    while let Some(&byte) = bytes.get(index) {
        index += 1;
        match byte {
            b'\\' => index += 1,
            b'"' => return index,
            _ => {}
        }
    }
    index
}

/// From the first byte of a value to just after it.
fn skip_value(bytes: &[u8], mut index: usize) -> usize {
    let mut depth = 0usize;
    while let Some(&byte) = bytes.get(index) {
        match byte {
            b'"' => {
                index = skip_string(bytes, index);
                if depth == 0 {
                    return index;
                }
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' if depth == 0 => return index,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return index + 1;
                }
            }
            b',' | b' ' | b'\t' | b'\n' | b'\r' if depth == 0 => return index,
            _ => {}
        }
        index += 1;
    }
    index
}

/// Our value as written into daemon.json (`hosts` on one line, for Docker Bench 2.7).
fn value_text(key: &str, value: &Value) -> String {
    if key == "hosts" {
        value.to_string().replace("\",\"", "\", \"")
    } else {
        value.to_string()
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
                value_text(key, value)
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
        let existing = r#"{"icc": false, "userns-remap": "default", "log-driver": "journald", "default-ulimits": {"nofile": {"Name": "nofile", "Hard": 64000, "Soft": 64000}}, "live-restore": true}"#;
        let merged = merge(Some(existing), &ours()).unwrap();
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
        let existing =
            r#"{"hosts": ["unix:///var/run/docker.sock"], "tlsverify": "true", "debug": true}"#;
        let merged = merge(Some(existing), &ours()).unwrap();
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

    /// Odd but valid JSON, as a hand-edited daemon.json may hold it.
    const ODD: &str = "\u{20}{ \"max-concurrent-downloads\":3,\"shutdown-timeout\" : 1e2 ,\r\n\t\"mtu\": 15E2,\n  \"big\": 123456789012345678901234567890, \"neg\": -0.000,\n  \"labels\": [\"caf\\u00e9=\\u00E9t\\u00e9\", \"path=a\\/b\", \"tab=\\t\"],\n  \"nested\": {\"a\": [1.0, 2.50, {\"b\": null}], \"\\u0068osts\": []},\n  \"tlsverify\": true,\n  \"empty\": {}, \"arr\": [ ]\n}\n\n";

    #[test]
    fn untouched_values_keep_their_bytes() {
        let merged = merge(Some(ODD), &ours()).unwrap();
        // Only our keys were spliced in: the file up to the last existing value is unchanged
        // but for nothing at all ("tlsverify": true is already ours and stays as written).
        let end = ODD.rfind("[ ]").unwrap() + 3;
        assert_eq!(&merged.text[..end], &ODD[..end], "{}", merged.text);
        assert_eq!(&merged.text[merged.text.len() - 4..], "\n}\n\n");
        for fragment in [
            "1e2",
            "15E2",
            "123456789012345678901234567890",
            "-0.000",
            "\\u00e9",
            "\\u00E9",
            "a\\/b",
            "2.50",
            "\\u0068osts",
        ] {
            assert!(
                merged.text.contains(fragment),
                "{fragment} in {}",
                merged.text
            );
        }
        assert!(
            merged.text.contains("\n  \"hosts\": [\"unix:///var/run/docker.sock\", \"tcp://0.0.0.0:2376\"],\n  \"tls\": true,"),
            "{}",
            merged.text
        );
        let value: Value = serde_json::from_str(&merged.text).unwrap();
        assert_eq!(value["tlskey"], "/etc/docker/tls/server-key.pem");
        assert!(merged.conflicts.is_empty());
        // Merging again changes nothing.
        assert_eq!(
            merge(Some(&merged.text), &ours()).unwrap().text,
            merged.text
        );
    }

    #[test]
    fn existing_keys_are_replaced_in_place_everywhere_they_appear() {
        let existing = "{\"tls\":false,\"x\":1e300,\"tls\" :  \"yes\"}";
        let merged = merge(Some(existing), &ours()).unwrap();
        assert!(
            merged
                .text
                .starts_with("{\"tls\":true,\"x\":1e300,\"tls\" :  true,\n  \"hosts\": "),
            "{}",
            merged.text
        );
        assert_eq!(merged.conflicts.len(), 1);
        // Windows line ends and tabs are followed.
        let merged = merge(Some("{\r\n\t\"debug\": true\r\n}\r\n"), &ours()).unwrap();
        assert!(
            merged
                .text
                .starts_with("{\r\n\t\"debug\": true,\r\n\t\"hosts\": "),
            "{}",
            merged.text
        );
        assert!(merged.text.ends_with("\"\r\n}\r\n"), "{}", merged.text);
        // One line, no indentation to copy: new keys go on their own lines.
        let merged = merge(Some("{}"), &ours()).unwrap();
        assert!(merged.text.starts_with("{\n  \"hosts\""), "{}", merged.text);
    }

    #[test]
    fn invalid_json_says_where() {
        let err = parse("{\n  \"icc\": false,\n  \"debug\": tru\n}").unwrap_err();
        assert!(
            err.contains("line 3") && err.contains("\"debug\": tru"),
            "{err}"
        );
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Any object, however written: the merge is valid JSON with our values, and every
        /// other member's value is in the result exactly as written.
        #[test]
        fn merge_keeps_every_other_value_as_written(
            members in proptest::collection::vec(
                (
                    prop_oneof![
                        Just("a"), Just("b"), Just("hosts"), Just("tls"), Just("tlsverify"),
                        Just("ho\\u0073ts"), Just("caf\\u00e9"), Just("tlskey"),
                    ],
                    prop_oneof![
                        Just("1e2"), Just("-0.0"), Just("15E-2"), Just("12345678901234567890123"),
                        Just("\"\\u00e9\\/\\\"x\""), Just("[1, {\"a\":[]} ,2.50]"), Just("true"),
                        Just("null"), Just("{}"), Just("\"/etc/docker/tls/ca.pem\""),
                    ],
                    "[ \t\r\n]{0,3}",
                ),
                0..8,
            ),
            lead in "[ \t\r\n]{0,3}",
        ) {
            let body: Vec<String> = members
                .iter()
                .map(|(key, value, space)| format!("{space}\"{key}\"{space}:{space}{value}{space}"))
                .collect();
            let text = format!("{lead}{{{}}}{lead}", body.join(","));
            let merged = merge(Some(&text), &ours()).unwrap();
            let value: Value = serde_json::from_str(&merged.text).unwrap();
            for (key, expected) in ours() {
                prop_assert_eq!(&value[&key], &expected);
            }
            let decoded = |key: &str| serde_json::from_str::<String>(&format!("\"{key}\"")).unwrap();
            for (key, raw, _) in &members {
                if !TLS_KEYS.contains(&decoded(key).as_str()) {
                    prop_assert!(merged.text.contains(raw), "{} lost {}", merged.text, raw);
                }
            }
        }
    }
}
