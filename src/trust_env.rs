//! Issue 14 item 6: a client library's own trust store beats ca.pem. With `REQUESTS_CA_BUNDLE`
//! or `CURL_CA_BUNDLE` set, docker-py (through requests: Ansible's docker modules,
//! docker-compose v1) verifies the daemon against that bundle instead of the ca.pem it is
//! given, and fails with "unable to get local issuer certificate" against any private CA
//! (measured with docker-py 7.2 on Python 3.11 and 3.13). `env` and `probe` say so.

use std::ffi::OsString;
use std::io::Read;
use std::path::Path;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::render::shell_quote;

/// The variables requests reads, in the order it reads them (an empty one is skipped).
pub const VARIABLES: [&str; 2] = ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"];

/// A bundle larger than this is not read (the system bundle is about 200 KiB).
const MAX_BUNDLE: u64 = 16 << 20;

/// The variable that overrides ca.pem for docker-py: what it says, and what to do.
pub struct Override {
    pub variable: &'static str,
    pub message: String,
    pub hint: String,
}

/// The variable requests uses (the first of [`VARIABLES`] set and not empty), unless its
/// bundle already holds every CA certificate of `ca_pem`: then docker-py trusts the daemon.
pub fn overrides(
    environment: impl Fn(&str) -> Option<OsString>,
    ca_pem: &Path,
) -> Option<Override> {
    let set: Vec<(&'static str, OsString)> = VARIABLES
        .iter()
        .filter_map(|&v| Some((v, environment(v).filter(|value| !value.is_empty())?)))
        .collect();
    let (variable, value) = set.first()?;
    let bundle = Path::new(value);
    let ours = certificates(ca_pem);
    let theirs = certificates(bundle);
    if !ours.is_empty() && ours.iter().all(|c| theirs.contains(c)) {
        return None;
    }
    let unset: Vec<String> = set.iter().map(|(v, _)| format!("-u {v}")).collect();
    Some(Override {
        variable,
        message: format!(
            "{variable} is set ({}): docker-py (Ansible's docker modules, docker-compose v1) verifies the daemon against that bundle instead of {}, and fails with \"unable to get local issuer certificate\"; the docker CLI is not affected",
            crate::escape::path(bundle),
            crate::escape::path(ca_pem)
        ),
        hint: format!(
            "for docker-py, run it without the variable (env {} ...), or append the CA to that bundle: cat {} >> {}",
            unset.join(" "),
            quoted(ca_pem),
            quoted(bundle)
        ),
    })
}

/// A path quoted for the hint's command line; one longer than PATH_MAX names no file (the
/// kernel refuses it), and is shown cut as in messages instead.
fn quoted(path: &Path) -> String {
    if path.as_os_str().len() > crate::escape::PATH_MAX {
        crate::escape::path(path)
    } else {
        shell_quote(&path.to_string_lossy())
    }
}

/// The certificates (DER) in a PEM file, read up to [`MAX_BUNDLE`]; none when it cannot be
/// read (a missing bundle overrides ca.pem all the same: requests then fails). Only a regular
/// file is read: a FIFO there never makes env or probe wait.
fn certificates(path: &Path) -> Vec<Vec<u8>> {
    let Ok((file, _)) = crate::userfile::open_regular(path) else {
        return Vec::new();
    };
    let mut bytes = Vec::new();
    if file.take(MAX_BUNDLE).read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    CertificateDer::pem_slice_iter(&bytes)
        .filter_map(Result::ok)
        .map(|c| c.as_ref().to_vec())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn a_fifo_as_the_bundle_is_not_waited_for() {
        let work = tempfile::tempdir().unwrap();
        let fifo = work.path().join("bundle.pem");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            return;
        }
        let bundle = fifo.to_string_lossy().into_owned();
        let found = overrides(env_of(&[("REQUESTS_CA_BUNDLE", &bundle)]), &fifo);
        assert_eq!(found.map(|o| o.variable), Some("REQUESTS_CA_BUNDLE"));
    }

    #[test]
    fn unset_or_empty_variables_are_no_override() {
        let ca = Path::new("/nonexistent/ca.pem");
        assert!(overrides(env_of(&[]), ca).is_none());
        assert!(overrides(env_of(&[("REQUESTS_CA_BUNDLE", "")]), ca).is_none());
    }

    #[test]
    fn the_variable_requests_uses_is_named_with_its_fix() {
        let ca = Path::new("/pki/clients/alice/ca.pem");
        let both = env_of(&[
            ("REQUESTS_CA_BUNDLE", "/etc/ssl/corp bundle.pem"),
            ("CURL_CA_BUNDLE", "/x.pem"),
        ]);
        let found = overrides(both, ca).expect("an override");
        assert_eq!(found.variable, "REQUESTS_CA_BUNDLE");
        assert!(found.message.contains("/etc/ssl/corp bundle.pem"));
        assert!(
            found.hint.contains(
                "env -u REQUESTS_CA_BUNDLE -u CURL_CA_BUNDLE ...), or append the CA to that bundle: cat /pki/clients/alice/ca.pem >> '/etc/ssl/corp bundle.pem'"
            ),
            "{}",
            found.hint
        );
        let curl = overrides(
            env_of(&[("REQUESTS_CA_BUNDLE", ""), ("CURL_CA_BUNDLE", "/x.pem")]),
            ca,
        );
        assert_eq!(curl.map(|o| o.variable), Some("CURL_CA_BUNDLE"));
    }
}
