//! The path dockerd's router matches for a request, and the method + path patterns roles are
//! made of.
//!
//! dockerd 20.10 routes with gorilla/mux: Go's `net/url` percent-decodes the request URI's path
//! (a bad escape is a 400 before any route), the query is not part of it, and mux answers a
//! path that is not clean (`//`, `.`, `..`) with a redirect to the clean one instead of serving
//! it, keeping a trailing slash. Every route is registered with and without the `/v{[0-9.]+}`
//! prefix, case-sensitively. The authorization middleware runs only for a matched route, so
//! the path a plugin must judge is exactly that cleaned, decoded, unversioned path.

/// The path dockerd's router matches for `uri`, without the version prefix; or why none.
pub fn route_path(uri: &str) -> Result<String, String> {
    if !uri.starts_with('/') {
        return Err("the request URI does not start with '/'".into());
    }
    let raw = uri.split_once('?').map_or(uri, |(path, _query)| path);
    let decoded = percent_decode(raw)?;
    let decoded = String::from_utf8(decoded)
        .map_err(|_| "the request path is not UTF-8 once percent-decoded".to_string())?;
    let clean = clean_path(&decoded);
    Ok(strip_version(&clean).to_string())
}

/// Go's path unescape: `%XX` with two hex digits, anything else after `%` is an error.
fn percent_decode(raw: &str) -> Result<Vec<u8>, String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|pair| std::str::from_utf8(pair).ok())
                .filter(|pair| pair.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|pair| u8::from_str_radix(pair, 16).ok());
            let Some(byte) = hex else {
                return Err("the request path has a bad percent escape".into());
            };
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// gorilla/mux's `cleanPath`: Go's `path.Clean` of a rooted path, trailing slash kept.
fn clean_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut clean = format!("/{}", segments.join("/"));
    if path.ends_with('/') && clean != "/" {
        clean.push('/');
    }
    clean
}

/// The path without dockerd's `/v{version:[0-9.]+}` prefix (one, as the routes have it).
pub fn strip_version(path: &str) -> &str {
    let Some(rest) = path.strip_prefix("/v") else {
        return path;
    };
    let digits = rest
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    if digits == 0 {
        return path;
    }
    match &rest[digits..] {
        "" => "/",
        tail if tail.starts_with('/') => tail,
        _ => path,
    }
}

/// One segment of a path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Matches this text exactly (case-sensitive, as dockerd's routes).
    Literal(String),
    /// `*`: any one non-empty segment.
    One,
    /// `**`: zero or more segments (at most one in a pattern).
    Any,
}

/// A method + path pattern: what one allow-list entry of a role permits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `None` for `*` (any method).
    method: Option<String>,
    segments: Vec<Segment>,
    /// The pattern as written (the README table, messages).
    path: String,
}

/// The methods dockerd's routes use.
const METHODS: [&str; 5] = ["GET", "HEAD", "POST", "PUT", "DELETE"];

impl Rule {
    /// Parses `method` (`GET`, `HEAD`, `POST`, `PUT`, `DELETE` or `*`) and `path` (a pattern
    /// starting with `/`; segments literal, `*` or `**`, at most one `**`).
    pub fn parse(method: &str, path: &str) -> Result<Rule, String> {
        let method = match method {
            "*" => None,
            m if METHODS.contains(&m) => Some(m.to_string()),
            other => {
                return Err(format!(
                    "method '{}' is none of GET, HEAD, POST, PUT, DELETE or *",
                    crate::escape::value(other)
                ));
            }
        };
        // A pattern is echoed cut (escape::value): it comes from authz.json or --allow.
        let shown = crate::escape::value(path);
        let Some(body) = path.strip_prefix('/') else {
            return Err(format!("path pattern '{shown}' does not start with '/'"));
        };
        let mut segments = Vec::new();
        if !body.is_empty() {
            for part in body.split('/') {
                segments.push(match part {
                    "**" => Segment::Any,
                    "*" => Segment::One,
                    "." | ".." => {
                        return Err(format!(
                            "path pattern '{shown}' has a '{part}' segment (paths are matched cleaned)"
                        ));
                    }
                    p if p.contains('*') => {
                        return Err(format!(
                            "path pattern '{shown}': '*' must be a whole segment ('*' or '**')"
                        ));
                    }
                    p => Segment::Literal(p.to_string()),
                });
            }
        }
        if segments.iter().filter(|s| **s == Segment::Any).count() > 1 {
            return Err(format!("path pattern '{shown}' has more than one '**'"));
        }
        Ok(Rule {
            method,
            segments,
            path: path.to_string(),
        })
    }

    /// Whether this rule allows `method` on the routed `path` (see [`route_path`]).
    pub fn allows(&self, method: &str, path: &str) -> bool {
        if self.method.as_deref().is_some_and(|m| m != method) {
            return false;
        }
        let parts: Vec<&str> = match path.strip_prefix('/') {
            Some("") | None => Vec::new(),
            Some(body) => body.split('/').collect(),
        };
        matches_segments(&self.segments, &parts)
    }

    /// `METHOD /pattern` as written.
    pub fn describe(&self) -> String {
        format!("{} {}", self.method.as_deref().unwrap_or("*"), self.path)
    }
}

fn matches_segments(pattern: &[Segment], parts: &[&str]) -> bool {
    let one = |seg: &Segment, part: &str| match seg {
        Segment::Literal(text) => text == part,
        Segment::One => !part.is_empty(),
        Segment::Any => false,
    };
    match pattern.iter().position(|s| *s == Segment::Any) {
        None => pattern.len() == parts.len() && pattern.iter().zip(parts).all(|(s, p)| one(s, p)),
        Some(at) => {
            let tail = pattern.len() - at - 1;
            parts.len() >= at + tail
                && pattern[..at].iter().zip(parts).all(|(s, p)| one(s, p))
                && pattern[at + 1..]
                    .iter()
                    .zip(&parts[parts.len() - tail..])
                    .all(|(s, p)| one(s, p))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_routed_path_is_decoded_cleaned_and_unversioned() {
        let cases = [
            ("/v1.41/containers/json?all=1", "/containers/json"),
            ("/containers/json", "/containers/json"),
            ("/v1.41/containers/abc/json", "/containers/abc/json"),
            ("//containers/json", "/containers/json"),
            ("/v1.41/containers/x/../../images/get", "/images/get"),
            ("/v1.41/containers/x/%2e%2e/%2e%2e/swarm", "/swarm"),
            ("/v1.41/containers%2fjson", "/containers/json"),
            ("/v1.41/./info", "/info"),
            ("/networks/", "/networks/"),
            ("/v1.41", "/"),
            ("/version1/x", "/version1/x"),
            ("/v/x", "/v/x"),
            ("/../../_ping", "/_ping"),
            ("/v1.41/Containers/json", "/Containers/json"),
        ];
        for (uri, want) in cases {
            assert_eq!(route_path(uri).as_deref(), Ok(want), "{uri}");
        }
    }

    #[test]
    fn bad_escapes_and_non_origin_uris_are_refused() {
        for uri in [
            "/containers/%zz/json",
            "/a%2",
            "*",
            "http://x/containers/json",
            "",
            "/%ff",
        ] {
            assert!(route_path(uri).is_err(), "{uri}");
        }
    }

    #[test]
    fn patterns_match_whole_segments() {
        let rule = Rule::parse("GET", "/containers/*/json").unwrap();
        assert!(rule.allows("GET", "/containers/abc/json"));
        assert!(!rule.allows("POST", "/containers/abc/json"));
        assert!(!rule.allows("GET", "/containers/a/b/json"));
        assert!(!rule.allows("GET", "/containers/json"));
        let any = Rule::parse("GET", "/images/**/json").unwrap();
        assert!(any.allows("GET", "/images/json"));
        assert!(any.allows("GET", "/images/reg:5000/a/b/json"));
        assert!(!any.allows("GET", "/images/get"));
        let all = Rule::parse("*", "/**").unwrap();
        assert!(all.allows("DELETE", "/"));
        assert!(all.allows("POST", "/containers/create"));
        let root = Rule::parse("GET", "/").unwrap();
        assert!(root.allows("GET", "/"));
        assert!(!root.allows("GET", "/info"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for (method, path) in [
            ("get", "/info"),
            ("PATCH", "/info"),
            ("GET", "info"),
            ("GET", "/a*"),
            ("GET", "/**/x/**"),
            ("GET", "/a/../b"),
        ] {
            assert!(Rule::parse(method, path).is_err(), "{method} {path}");
        }
    }
}
