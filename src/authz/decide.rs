//! The decision: from the files in force (a [`Snapshot`]) and one decoded request, allow or
//! deny with the reason. Pure: `now` is given, nothing is read or written.

use std::sync::Arc;

use x509_parser::prelude::{ASN1Time, FromDer, X509Certificate};

use super::certs::{Crl, Trust, serial_hex};
use super::policy::{self, Lookup, Policy, UnixRequests};
use super::request::{self, AuthzRequest};
use super::route;

/// A file as the plugin holds it.
#[derive(Debug, Clone)]
pub enum Loaded<T> {
    /// No file: nothing revoked (CRL); every valid client is admin (policy).
    Absent,
    /// The file in force (the last good one when a newer one is unusable).
    Good(Arc<T>),
    /// A file is there, but no version of it has been usable since the plugin started: every
    /// TLS request is denied with this reason (it might revoke someone).
    Unusable(String),
}

/// The files in force for one decision.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub trust: Arc<Trust>,
    pub crl: Loaded<Crl>,
    pub policy: Loaded<Policy>,
    /// `--unix-socket-requests`, which wins over the policy's key.
    pub unix_flag: Option<UnixRequests>,
}

/// Who asked, as far as the certificate says (for the audit log).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    pub cn: Option<String>,
    pub serial: Option<String>,
    pub sha256: Option<String>,
    pub role: Option<String>,
}

/// One decision and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allow: bool,
    /// Why, in words a user can act on; dockerd shows it after "authorization denied by
    /// plugin NAME: " on a denial.
    pub why: String,
    pub subject: Subject,
    pub method: String,
    pub uri: String,
}

/// Why an empty `AuthZReq` is denied, as the docker client shows it.
pub const EMPTY_REQUEST: &str = "the authorization request arrived empty (dockerd re-sends a \
     call without its body when the plugin restarted while answering it); denied, run the command \
     again";

impl Snapshot {
    /// Decides an `AuthZReq` body.
    pub fn decide_body(&self, body: &[u8], now: ASN1Time) -> Decision {
        // dockerd retries a plugin call that failed after its body was sent (the plugin
        // restarted mid-call) with the body already consumed: an empty request. Nothing says
        // who asked for what, so it is denied, and the client is told it may just run again.
        let decoded = if body.iter().all(u8::is_ascii_whitespace) {
            Err(EMPTY_REQUEST.to_string())
        } else {
            request::decode(body).map_err(|why| format!("malformed authorization request: {why}"))
        };
        match decoded {
            Ok(request) => self.decide(&request, now),
            Err(why) => Decision {
                allow: false,
                why,
                subject: Subject::default(),
                method: String::new(),
                uri: String::new(),
            },
        }
    }

    /// Decides one request.
    pub fn decide(&self, request: &AuthzRequest, now: ASN1Time) -> Decision {
        let mut subject = Subject::default();
        let verdict = self.verdict(request, now, &mut subject);
        let (allow, why) = match verdict {
            Ok(why) => (true, why),
            Err(why) => (false, why),
        };
        Decision {
            allow,
            why,
            subject,
            method: request.method.clone(),
            uri: request.uri.clone(),
        }
    }

    fn verdict(
        &self,
        request: &AuthzRequest,
        now: ASN1Time,
        subject: &mut Subject,
    ) -> Result<String, String> {
        let Some(der) = &request.peer else {
            return self.local(request);
        };
        let (_, cert) = X509Certificate::from_der(der)
            .map_err(|_| "the client certificate dockerd passed does not parse".to_string())?;
        subject.serial = Some(serial_hex(cert.raw_serial()));
        subject.sha256 = Some(sha256_hex(der));
        let cn = common_name(&cert)?;
        subject.cn = Some(cn.clone());
        let who = format!(
            "'{}' (serial {})",
            field(&cn),
            serial_hex(cert.raw_serial())
        );
        if !request.user.is_empty() && request.user != cn {
            return Err(format!(
                "dockerd names the user '{}' but the certificate's CN is {who}",
                field(&request.user)
            ));
        }
        self.trust
            .verify(&cert, now)
            .map_err(|why| format!("the certificate of {who} is not trusted: {why}"))?;
        self.not_revoked(&cert, &who)?;
        let path = route::route_path(&request.uri).map_err(|why| format!("{why}; denied"))?;
        self.role_allows(&cn, &who, &request.method, &path, subject)
    }

    /// A request without a certificate: the local unix socket (or a TCP socket without TLS).
    fn local(&self, request: &AuthzRequest) -> Result<String, String> {
        if !request.user.is_empty() || !request.authn.is_empty() {
            return Err(format!(
                "dockerd names the user '{}' but passed no certificate",
                field(&request.user)
            ));
        }
        let policy_key = match &self.policy {
            Loaded::Good(policy) => policy.unix_socket_requests,
            _ => None,
        };
        match self.unix_flag.or(policy_key).unwrap_or(UnixRequests::Allow) {
            UnixRequests::Allow => Ok("no client certificate (local socket): allowed".into()),
            UnixRequests::Deny => Err(
                "requests without a client certificate (the local socket) are denied by the \
                 plugin's configuration"
                    .into(),
            ),
        }
    }

    fn not_revoked(&self, cert: &X509Certificate<'_>, who: &str) -> Result<(), String> {
        match &self.crl {
            Loaded::Absent => Ok(()),
            Loaded::Unusable(why) => Err(format!(
                "the CRL is not usable ({why}), so no certificate can be checked; ask the \
                 administrator to replace crl.pem"
            )),
            Loaded::Good(crl) => match crl.revocation(cert) {
                None => Ok(()),
                Some(reason) => Err(format!(
                    "the certificate of {who} is revoked{}; ask the administrator for a new one",
                    reason.map(|r| format!(" ({r})")).unwrap_or_default()
                )),
            },
        }
    }

    fn role_allows(
        &self,
        cn: &str,
        who: &str,
        method: &str,
        path: &str,
        subject: &mut Subject,
    ) -> Result<String, String> {
        let policy = match &self.policy {
            Loaded::Absent => {
                subject.role = Some(policy::ADMIN.into());
                return Ok(format!(
                    "{who}: admin (no authz.json: every client is admin)"
                ));
            }
            Loaded::Unusable(why) => {
                return Err(format!(
                    "the policy authz.json is not usable ({why}); ask the administrator to fix it"
                ));
            }
            Loaded::Good(policy) => policy,
        };
        let (name, role) = match policy.lookup(cn) {
            Lookup::Role(name, role) => (name, role),
            Lookup::NoRole => {
                return Err(format!(
                    "{who} has no role in authz.json; ask the administrator"
                ));
            }
            Lookup::Undefined(name) => {
                subject.role = Some(name.into());
                return Err(format!(
                    "{who} has the role '{}', which authz.json does not define",
                    field(name)
                ));
            }
        };
        subject.role = Some(name.into());
        // The path comes from the client (up to dockerd's 1 MiB of headers): a sentence's worth.
        let request = format!("{} {}", field(method), crate::escape::excerpt(path));
        if role.allows(method, path) {
            Ok(format!("role '{}' allows {request}", field(name)))
        } else {
            Err(format!(
                "{who} has the role '{}', which does not allow {request}",
                field(name)
            ))
        }
    }
}

/// The certificate's CN (dockerd's `User`), which roles are keyed by.
fn common_name(cert: &X509Certificate<'_>) -> Result<String, String> {
    let mut names = cert.subject().iter_common_name();
    let cn = names
        .next()
        .ok_or_else(|| "the client certificate has no CN".to_string())?
        .as_str()
        .map_err(|_| "the client certificate's CN is not text".to_string())?;
    if names.next().is_some() {
        return Err("the client certificate has more than one CN".into());
    }
    Ok(cn.to_string())
}

/// A value from the request or a certificate, escaped for a terminal (dockerd shows it), and
/// cut when long (escape::value).
fn field(text: &str) -> String {
    crate::escape::value(text)
}

/// The SHA-256 fingerprint of the certificate's DER, lower-case hex.
pub fn sha256_hex(der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}
