//! What a daemon.json makes dockerd (20.10) expose, judged as dockerd reads it: the first JSON
//! value only, the last of duplicate keys, case-sensitive option names, `tlsverify` turning TLS
//! on whatever its value, `tls` alone requiring client certificates, every `hosts` entry read by
//! [`crate::dockerd_hosts`]. Each rule was measured against a real dockerd 20.10.24
//! (tests/verify_daemon.rs starts one from each form). Pure: bytes in, findings out.

use serde::de::{Deserializer as _, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use super::Status;
use super::checks::Findings;
use crate::dockerd_hosts::{self, Listener};

/// The TLS files daemon.json names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: String,
    pub cert: String,
    pub key: String,
}

/// Options whose value is an object of their own; dockerd lifts the keys of any other object
/// to the top level (`configValuesSet`).
const OBJECT_KEYS: &[&str] = &[
    "cluster-store-opts",
    "log-opts",
    "runtimes",
    "default-ulimits",
    "features",
    "builder",
];

/// Whether the text holds a `\\uD800`-`\\uDFFF` escape (a surrogate), which Go reads as U+FFFD
/// when it stands alone and serde_json refuses.
fn has_surrogate_escape(bytes: &[u8]) -> bool {
    bytes.windows(4).enumerate().any(|(i, w)| {
        w[0] == b'\\'
            && w[1] == b'u'
            && w[2].eq_ignore_ascii_case(&b'd')
            && matches!(w[3].to_ascii_lowercase(), b'8'..=b'9' | b'a'..=b'f')
            // Not an escaped backslash followed by "u": count the backslashes before.
            && bytes[..i].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 0
    })
}

/// Judges daemon.json's bytes (`name` is how messages call the file); records findings under
/// `daemon-config` and `tlsverify`, and returns the TLS files to audit when all three are named.
pub fn judge(bytes: &[u8], name: &str, findings: &mut Findings) -> Option<TlsFiles> {
    let mut own = Findings::default();
    let files = judge_file(bytes, name, &mut own);
    let checks = own.into_checks();
    if !checks.iter().any(|c| c.id == "tlsverify") {
        findings.record("tlsverify", Status::Fail, format!("dockerd will not start with {name} (see daemon-config), so what it would expose was not judged"));
    }
    for check in checks {
        findings.record(check.id, check.status, check.message);
    }
    files
}

fn judge_file(bytes: &[u8], name: &str, findings: &mut Findings) -> Option<TlsFiles> {
    // Go replaces invalid UTF-8 in strings with U+FFFD instead of refusing the file.
    let lossy = String::from_utf8_lossy(bytes);
    let bytes = lossy.as_bytes();
    let value = first_value(bytes, name, findings)?;
    let empty = serde_json::Map::new();
    let object = match &value {
        Value::Object(object) => object,
        // Go decodes `null` into an empty configuration.
        Value::Null => &empty,
        other => {
            findings.record(
                "daemon-config",
                Status::Fail,
                format!(
                    "{name} holds {}, not an object: dockerd will not start; write {{ ... }}",
                    json_kind(other)
                ),
            );
            return None;
        }
    };
    let mut refused = judge_keys(bytes, object, name, findings);
    let mode = tls_mode(object, findings)?;
    let listeners = listeners(object, mode.tls_on, &mut refused, findings)?;
    judge_exposure(object, name, &mode, &listeners, refused, findings);
    tls_files(object, name, &mode, &listeners, findings)
}

/// Whether dockerd turns TLS on and asks for client certificates, as it reads the flags.
#[derive(Clone, Copy)]
struct TlsMode {
    /// `tls` as written.
    tls: Option<bool>,
    tls_on: bool,
    client_certs: bool,
}

/// The TCP listeners (as shown in messages) and whether fd:// (systemd's sockets) is one.
struct Listeners {
    tcp: Vec<String>,
    systemd: bool,
}

/// The first JSON value of the file, as dockerd's decoder reads it (the rest is ignored).
fn first_value(bytes: &[u8], name: &str, findings: &mut Findings) -> Option<Value> {
    let mut stream = serde_json::Deserializer::from_slice(bytes).into_iter::<Value>();
    let value = match stream.next() {
        None => {
            findings.record("daemon-config", Status::Fail, format!("{name} is empty: dockerd will not start (\"EOF\"); write {{}} or remove the file"));
            return None;
        }
        Some(Err(err)) => {
            // Go's decoder has no depth limit and reads a lone surrogate escape as U+FFFD:
            // dockerd starts from such a file, so "will not start" would be a false comfort.
            let text = err.to_string();
            let surrogate = (text.contains("surrogate") || text.contains("hex escape"))
                && has_surrogate_escape(bytes);
            if text.contains("recursion limit") || surrogate {
                findings.record("daemon-config", Status::Fail, format!("verify cannot read {name} as dockerd does (line {}, column {}: {text}), yet dockerd 20.10 starts from it; remove the deep nesting or the lone \\uD800-\\uDFFF escape, then verify again", err.line(), err.column()));
                findings.record("tlsverify", Status::Fail, format!("{name} could not be read, so whether dockerd serves the API without TLS was not judged: it may"));
                return None;
            }
            findings.record(
                "daemon-config",
                Status::Fail,
                format!(
                    "{name} is not valid JSON (line {}, column {}: {err}): dockerd will not start",
                    err.line(),
                    err.column()
                ),
            );
            return None;
        }
        Some(Ok(value)) => value,
    };
    let used = stream.byte_offset();
    if bytes[used..].iter().any(|b| !b.is_ascii_whitespace()) {
        findings.record("daemon-config", Status::Warn, format!("{name} has text after its JSON object (from byte {used}): dockerd reads the first JSON value only and ignores the rest; delete the rest so that nobody relies on it"));
    }
    Some(value)
}

/// Duplicate and unknown keys; true when dockerd will not start because of one.
fn judge_keys(
    bytes: &[u8],
    object: &serde_json::Map<String, Value>,
    name: &str,
    findings: &mut Findings,
) -> bool {
    // Hostile files may hold thousands of bad keys: name a few, count the rest.
    let mut problems: Vec<(Status, String)> = Vec::new();
    for key in duplicate_keys(bytes) {
        let last = object.get(&key).map(Value::to_string).unwrap_or_default();
        let (key, last) = (crate::escape::value(&key), crate::escape::value(&last));
        problems.push((Status::Warn, format!("\"{key}\" appears more than once in {name}: dockerd uses the last one, {last}; delete the others")));
    }
    let mut refused = false;
    for (key, value) in object {
        if crate::dockerd_options::is_daemon_json_key(key) {
            continue;
        }
        let shown = crate::escape::value(key);
        if let Some(known) =
            crate::dockerd_options::daemon_json_keys().find(|k| k.eq_ignore_ascii_case(key))
        {
            refused = true;
            problems.push((Status::Fail, format!("\"{shown}\" is not a dockerd option (option names are case-sensitive): dockerd will not start (\"the following directives don't match any configuration option\"); write \"{known}\"")));
        } else if value.is_object() {
            problems.push((Status::Fail, format!("\"{shown}\" holds an object: dockerd takes the names inside it for top-level options (and refuses unknown ones) but applies none of their values; move those options to the top level of {name}")));
        } else {
            problems.push((Status::Warn, format!("\"{shown}\" is not a dockerd 20.10 option: dockerd 20.10 refuses to start with it (a newer dockerd may know it); check the spelling")));
        }
    }
    const SHOWN: usize = 5;
    let more = problems.len().saturating_sub(SHOWN);
    let worst = problems.iter().map(|(status, _)| *status).max();
    for (status, message) in problems.into_iter().take(SHOWN) {
        findings.record("daemon-config", status, message);
    }
    if let (true, Some(worst)) = (more > 0, worst) {
        findings.record(
            "daemon-config",
            worst,
            format!("{more} more problems with keys of {name} like those"),
        );
    }

    refused
}

/// `tls` and `tlsverify` as dockerd reads them; None when one makes dockerd refuse to start.
fn tls_mode(object: &serde_json::Map<String, Value>, findings: &mut Findings) -> Option<TlsMode> {
    let tls = flag(object, "tls", findings);
    let tlsverify = flag(object, "tlsverify", findings);
    let (Ok(tls), Ok(tlsverify)) = (tls, tlsverify) else {
        return None;
    };
    // `tlsverify` at all, whatever its value (even null, even inside another object), turns TLS
    // on; without `tlsverify`, client certificates follow `tls`.
    let tlsverify_set = object.contains_key("tlsverify")
        || object.iter().any(|(key, value)| {
            !OBJECT_KEYS.contains(&key.as_str())
                && value
                    .as_object()
                    .is_some_and(|o| o.contains_key("tlsverify"))
        });
    let tls_on = tlsverify_set || tls == Some(true);
    let client_certs = tls_on && tlsverify != Some(false);

    Some(TlsMode {
        tls,
        tls_on,
        client_certs,
    })
}

/// The listeners of `hosts` (dockerd's default when there is none); None when `hosts` is not
/// a list of strings. A refused entry sets `refused`.
fn listeners(
    object: &serde_json::Map<String, Value>,
    tls_on: bool,
    refused: &mut bool,
    findings: &mut Findings,
) -> Option<Listeners> {
    let entries: Vec<String> = match object.get("hosts") {
        None | Some(Value::Null) => Vec::new(),
        // Go decodes a null entry as "" (dockerd's default listener), as it does an empty one.
        Some(Value::Array(items)) if items.iter().all(|i| i.is_string() || i.is_null()) => items
            .iter()
            .map(|item| item.as_str().unwrap_or_default().to_string())
            .collect(),
        Some(Value::Array(_)) => {
            findings.record("daemon-config", Status::Fail, "\"hosts\" holds something other than strings: dockerd will not start; write each host as a string");
            return None;
        }
        Some(other) => {
            findings.record("daemon-config", Status::Fail, format!("\"hosts\" is {}, not a list: dockerd will not start (\"cannot unmarshal ... into Go struct field Config.hosts of type []string\"); write \"hosts\": [{}]", json_kind(other), crate::escape::value(&other.to_string())));
            return None;
        }
    };
    let defaulted = entries.is_empty();
    let mut tcp = Vec::new();
    let mut systemd = false;
    let mut seen = Vec::new();
    for entry in if defaulted {
        vec![String::new()]
    } else {
        entries
    } {
        match dockerd_hosts::parse_daemon_host(&entry, tls_on) {
            Err(why) => {
                *refused = true;
                findings.record("daemon-config", Status::Fail, format!("hosts entry {}: dockerd will not start ({why}); write tcp://ADDRESS:2376, unix:///PATH or fd://", json_quoted(&entry)));
            }
            Ok(listener) => {
                let shown = listener.to_string();
                if seen.contains(&shown) {
                    continue;
                }
                seen.push(shown.clone());
                // In messages: a host name in daemon.json may be 100 KB.
                let cut = crate::escape::value(&shown);
                match listener {
                    Listener::Tcp { .. } if defaulted => tcp.push(format!(
                        "{cut} (its default with TLS on and no \"hosts\", unless started with -H)"
                    )),
                    Listener::Tcp { .. } if entry.trim() != shown => {
                        tcp.push(format!("{cut} (written {})", json_quoted(&entry)))
                    }
                    Listener::Tcp { .. } => tcp.push(cut),
                    Listener::Fd(_) => systemd = true,
                    Listener::Unix(_) => {}
                }
            }
        }
    }

    Some(Listeners { tcp, systemd })
}

/// What dockerd would expose: plain HTTP, TLS to anyone, or TLS with client certificates.
fn judge_exposure(
    object: &serde_json::Map<String, Value>,
    name: &str,
    mode: &TlsMode,
    listeners: &Listeners,
    refused: bool,
    findings: &mut Findings,
) {
    let TlsMode {
        tls,
        tls_on,
        client_certs,
    } = *mode;
    let (tcp, systemd) = (&listeners.tcp, listeners.systemd);
    let listed = tcp.join(", ");
    if refused {
        findings.record("tlsverify", Status::Fail, format!("dockerd will not start with {name} (see daemon-config), so what it would expose was not judged"));
    } else if tcp.is_empty() {
        if systemd && !client_certs {
            findings.record("tlsverify", Status::Warn, "fd:// serves the sockets of systemd's docker.socket without client certificates: if one of its ListenStream= lines is a TCP address, that is remote root; check systemctl cat docker.socket, or add \"tlsverify\": true");
        } else {
            findings.record(
                "tlsverify",
                Status::Ok,
                "no TCP listener in daemon.json (hosts given as -H flags are not visible here)",
            );
        }
    } else if client_certs {
        findings.record(
            "tlsverify",
            Status::Ok,
            format!(
                "{listed}: TLS with client certificates required{}",
                implied(object, tls)
            ),
        );
    } else if tls_on {
        findings.record("tlsverify", Status::Fail, format!("{name} listens on {listed} with TLS but \"tlsverify\": false: dockerd accepts any client without a certificate, which is remote root for anyone who reaches the port; set \"tlsverify\": true"));
    } else {
        let tls_false = if tls == Some(false) {
            " (\"tls\": false does not stop it)"
        } else {
            ""
        };
        findings.record("tlsverify", Status::Fail, format!("{name} listens on {listed} without \"tlsverify\": true{tls_false}: dockerd serves the API over plain HTTP, which is remote root for anyone who reaches the port; add \"tlsverify\": true"));
    }
}

/// The three TLS paths dockerd would load, when it names them all.
fn tls_files(
    object: &serde_json::Map<String, Value>,
    name: &str,
    mode: &TlsMode,
    listeners: &Listeners,
    findings: &mut Findings,
) -> Option<TlsFiles> {
    let (tls_on, client_certs, tcp) = (mode.tls_on, mode.client_certs, &listeners.tcp);
    let path_of = |key: &str| -> Result<Option<String>, String> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!(
                "\"{key}\" is {}, not a path: dockerd will not start; write a quoted path",
                json_kind(other)
            )),
        }
    };
    let (ca, cert, key) = match (path_of("tlscacert"), path_of("tlscert"), path_of("tlskey")) {
        (Ok(ca), Ok(cert), Ok(key)) => (ca, cert, key),
        (ca, cert, key) => {
            for why in [ca.err(), cert.err(), key.err()].into_iter().flatten() {
                findings.record("daemon-config", Status::Fail, why);
            }
            return None;
        }
    };
    match (ca, cert, key) {
        (Some(ca), Some(cert), Some(key)) => {
            for path in [&ca, &cert, &key]
                .into_iter()
                .filter(|p| !p.starts_with('/'))
            {
                findings.record("daemon-config", Status::Warn, format!("{} is a relative path: dockerd reads it from its own working directory (/ under systemd), verify from the current one; write the full path", json_quoted(path)));
            }
            findings.record(
                "daemon-config",
                Status::Ok,
                format!(
                    "{name} names {}, {}, {}",
                    crate::escape::path(std::path::Path::new(&ca)),
                    crate::escape::path(std::path::Path::new(&cert)),
                    crate::escape::path(std::path::Path::new(&key))
                ),
            );
            Some(TlsFiles { ca, cert, key })
        }
        (ca, cert, key) if tls_on => {
            if cert.is_none() || key.is_none() {
                findings.record("daemon-config", Status::Fail, format!("{name} turns TLS on but names no {}: dockerd will not start (\"could not load X509 key pair\"); add the server's certificate and key", if cert.is_none() { "\"tlscert\"" } else { "\"tlskey\"" }));
            }
            if ca.is_none() && client_certs {
                findings.record("daemon-config", Status::Fail, format!("{name} requires client certificates but names no \"tlscacert\": dockerd then has no CA of its own to check them against (Go falls back to the system's CAs); add \"tlscacert\" with your CA"));
            }
            None
        }
        _ if !tcp.is_empty() => {
            findings.record(
                "daemon-config",
                Status::Fail,
                format!("{name} has tcp hosts but not all of tlscacert, tlscert and tlskey"),
            );
            None
        }
        _ => {
            findings.record("daemon-config", Status::Ok, "no TLS files configured");
            None
        }
    }
}

/// How client certificates came to be required, when daemon.json does not say
/// `"tlsverify": true` itself: the fix is to say it.
fn implied(object: &serde_json::Map<String, Value>, tls: Option<bool>) -> &'static str {
    match object.get("tlsverify") {
        Some(Value::Bool(true)) if tls == Some(false) => {
            " (\"tls\": false is overridden: \"tlsverify\" turns TLS on; delete \"tls\": false)"
        }
        Some(Value::Bool(true)) => "",
        Some(_) => " (\"tlsverify\": null turns TLS on with client certificates; write true)",
        None if tls == Some(true) => {
            " (\"tls\": true alone requires them; add \"tlsverify\": true to say so)"
        }
        None => " (a \"tlsverify\" inside another object turns them on; move it to the top level)",
    }
}

/// A daemon.json string as it is written in JSON (quoted, escaped).
/// `text` as a JSON string, as written in daemon.json; a long one cut as in messages.
fn json_quoted(text: &str) -> String {
    if text.len() > crate::escape::VALUE_KEEP {
        format!("\"{}\"", crate::escape::value(text))
    } else {
        Value::String(text.to_string()).to_string()
    }
}

/// A `tls`/`tlsverify` value as Go decodes it into a `*bool`: absent or null is unset; anything
/// but true/false makes dockerd refuse to start.
fn flag(
    object: &serde_json::Map<String, Value>,
    key: &str,
    findings: &mut Findings,
) -> Result<Option<bool>, ()> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) => {
            findings.record("tlsverify", Status::Fail, format!("\"{key}\" is the string {}: dockerd will not start (\"cannot unmarshal string into Go struct field Config.{key} of type bool\"); write true without quotes", json_quoted(s)));
            Err(())
        }
        Some(other) => {
            findings.record(
                "tlsverify",
                Status::Fail,
                format!(
                    "\"{key}\" is {}: dockerd will not start; write true or false",
                    json_kind(other)
                ),
            );
            Err(())
        }
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The top-level keys written more than once (serde_json and Go both keep the last value).
fn duplicate_keys(bytes: &[u8]) -> Vec<String> {
    struct Keys(Vec<String>);
    impl<'de> Visitor<'de> for &mut Keys {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<IgnoredAny>()?;
                self.0.push(key);
            }
            Ok(())
        }
    }
    let mut keys = Keys(Vec::new());
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    if (&mut deserializer).deserialize_map(&mut keys).is_err() {
        return Vec::new();
    }
    let mut seen = std::collections::HashSet::new();
    let mut duplicates = std::collections::BTreeSet::new();
    for key in keys.0 {
        if !seen.insert(key.clone()) {
            duplicates.insert(key);
        }
    }
    duplicates.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (tlsverify status, tlsverify message, daemon-config status, daemon-config message)
    fn judged(text: &str) -> (Status, String, Status, String) {
        let mut findings = Findings::default();
        judge(text.as_bytes(), "daemon.json", &mut findings);
        let checks = findings.into_checks();
        let get = |id: &str| {
            checks
                .iter()
                .find(|c| c.id == id)
                .map(|c| (c.status, c.message.clone()))
                .unwrap_or((Status::Ok, String::new()))
        };
        let (a, b) = get("tlsverify");
        let (c, d) = get("daemon-config");
        (a, b, c, d)
    }

    #[test]
    fn no_hosts_with_tls_on_means_localhost_2376() {
        let (status, message, _, _) = judged(r#"{"tls": true, "tlsverify": false}"#);
        assert_eq!(status, Status::Fail, "{message}");
        assert!(
            message.contains("tcp://localhost:2376 (its default"),
            "{message}"
        );
        let (status, message, _, _) = judged(r#"{"tlsverify": true}"#);
        assert_eq!(status, Status::Ok, "{message}");
        let (status, message, _, _) = judged("{}");
        assert_eq!(status, Status::Ok, "{message}");
        assert!(message.contains("no TCP listener"), "{message}");
    }

    #[test]
    fn a_null_host_is_dockerds_default_listener() {
        // Go decodes null into "" (measured: dockerd 20.10 then listens on its default).
        let (status, message, config, why) = judged(
            r#"{"hosts": ["tcp://127.0.0.1:2375", null], "tls": true, "tlsverify": false, "tlscacert": "/c", "tlscert": "/s", "tlskey": "/k"}"#,
        );
        assert_eq!(config, Status::Ok, "{why}");
        assert_eq!(status, Status::Fail, "{message}");
        assert!(message.contains("localhost:2376"), "{message}");
        let (status, message, _, _) = judged(r#"{"hosts": ["tcp://127.0.0.1:2375", null]}"#);
        assert_eq!(status, Status::Fail, "{message}");
        assert!(message.contains("plain HTTP"), "{message}");
    }

    #[test]
    fn what_serde_json_cannot_read_is_not_called_unstartable() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        for text in [
            format!(r#"{{"hosts": ["tcp://127.0.0.1:2375"], "builder": {{"x": {deep}}}}}"#),
            r#"{"hosts": ["tcp://127.0.0.1:2375"], "labels": ["a=\ud800"]}"#.to_string(),
        ] {
            let (status, message, config, why) = judged(&text);
            assert_eq!((status, config), (Status::Fail, Status::Fail), "{why}");
            assert!(!why.contains("will not start"), "{why}");
            assert!(!message.contains("will not start"), "{message}");
            assert!(message.contains("it may"), "{message}");
        }
    }

    #[test]
    fn tls_rules_follow_dockerd() {
        let tcp =
            r#""hosts": ["tcp://0.0.0.0:2376"], "tlscacert": "c", "tlscert": "s", "tlskey": "k""#;
        for (flags, expected) in [
            (r#""tlsverify": true"#, Status::Ok),
            (r#""tls": true"#, Status::Ok),
            (r#""tls": false, "tlsverify": true"#, Status::Ok),
            (r#""tlsverify": null"#, Status::Ok),
            (r#""tls": null"#, Status::Fail),
            (r#""tls": false"#, Status::Fail),
            (r#""tlsverify": false"#, Status::Fail),
            (r#""tlsverify": true, "tlsverify": false"#, Status::Fail),
            (r#""tlsverify": 1"#, Status::Fail),
            (r#""x": {"tlsverify": true}"#, Status::Ok),
        ] {
            let (status, message, _, _) = judged(&format!("{{{tcp}, {flags}}}"));
            assert_eq!(status, expected, "{flags}: {message}");
        }
    }

    #[test]
    fn implied_client_certificates_say_how_to_make_them_explicit() {
        let tcp = r#""hosts": [":2376"], "tlscacert": "/c", "tlscert": "/s", "tlskey": "/k""#;
        for (flags, words) in [
            (r#""tls": true"#, "\"tls\": true alone requires them"),
            (
                r#""tls": false, "tlsverify": true"#,
                "\"tls\": false is overridden",
            ),
            (r#""tlsverify": null"#, "\"tlsverify\": null turns TLS on"),
        ] {
            let (status, message, _, _) = judged(&format!("{{{tcp}, {flags}}}"));
            assert_eq!(status, Status::Ok, "{flags}: {message}");
            assert!(
                message.contains("tcp://localhost:2376 (written \":2376\")"),
                "{message}"
            );
            assert!(message.contains(words), "{flags}: {message}");
        }
    }

    #[test]
    fn file_shapes_dockerd_refuses_or_reads_oddly() {
        for (text, words) in [
            ("", "is empty"),
            ("[]", "holds a list, not an object"),
            (
                "{\"hosts\": \"tcp://x\"}",
                "\"hosts\" is a string, not a list",
            ),
            ("{\"hosts\": [1]}", "other than strings"),
            ("{\"Hosts\": []}", "write \"hosts\""),
            ("{\"x\": {\"debug\": true}}", "holds an object"),
            ("{\"hosts\": [\"ssh://h\"]}", "Invalid bind address format"),
            (
                "{\"tlsverify\": true, \"tlscert\": \"s\", \"tlskey\": \"k\"}",
                "no \"tlscacert\"",
            ),
        ] {
            let (_, _, status, message) = judged(text);
            assert_eq!(status, Status::Fail, "{text}: {message}");
            assert!(message.contains(words), "{text}: {message}");
        }
        // null is an empty configuration to Go; text after the first value is ignored.
        let (status, _, config, _) = judged("null");
        assert_eq!((status, config), (Status::Ok, Status::Ok));
        let (status, message, config, note) =
            judged("{\"hosts\": [\"unix:///s\"]} {\"tlsverify\": true}");
        assert_eq!(
            (status, config),
            (Status::Ok, Status::Warn),
            "{message} {note}"
        );
        assert!(note.contains("first JSON value only"), "{note}");
    }

    #[test]
    fn duplicates_and_unknown_keys_are_named_a_few_at_a_time() {
        let (_, _, status, message) = judged(r#"{"debug": true, "debug": false}"#);
        assert_eq!(status, Status::Warn);
        assert!(
            message.contains("\"debug\" appears more than once"),
            "{message}"
        );
        let many: Vec<String> = (0..10_000).map(|i| format!("\"k{i}\": 1")).collect();
        let (_, _, status, message) = judged(&format!("{{{}}}", many.join(",")));
        assert_eq!(status, Status::Warn);
        assert!(message.contains("9995 more problems"), "{message}");
        assert!(message.len() < 2000, "{}", message.len());
    }

    #[test]
    fn invalid_utf8_in_a_string_is_read_as_go_reads_it() {
        let mut findings = Findings::default();
        judge(
            b"{\"hosts\": [\"127.0.0.1:2375\xff\"]}",
            "daemon.json",
            &mut findings,
        );
        let checks = findings.into_checks();
        let tlsverify = checks.iter().find(|c| c.id == "tlsverify").unwrap();
        // Not "not valid JSON": dockerd reads the entry (and then refuses its port).
        assert!(
            tlsverify.message.contains("will not start"),
            "{}",
            tlsverify.message
        );
        let config = checks.iter().find(|c| c.id == "daemon-config").unwrap();
        assert!(config.message.contains("hosts entry"), "{}", config.message);
    }

    #[test]
    fn relative_tls_paths_are_a_warning() {
        let (_, _, status, message) =
            judged(r#"{"tlscacert": "ca.pem", "tlscert": "/s", "tlskey": "/k"}"#);
        assert_eq!(status, Status::Warn, "{message}");
        assert!(
            message.contains("\"ca.pem\" is a relative path"),
            "{message}"
        );
    }

    #[test]
    fn fd_without_client_certificates_is_a_warning() {
        let (status, message, _, _) = judged(r#"{"hosts": ["fd://"]}"#);
        assert_eq!(status, Status::Warn, "{message}");
        assert!(message.contains("docker.socket"), "{message}");
    }
}
