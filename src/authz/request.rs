//! The decoder of dockerd's `AuthZReq` body: the fields the decision needs, or why the body is
//! not one. It never panics (see the property tests); the HTTP layer has bounded the size.

use base64::Engine as _;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::Deserialize;

/// What dockerd says about one API call (pkg/authorization's `Request`; Go omits empty fields).
#[derive(Debug, Deserialize)]
struct Wire {
    #[serde(rename = "User", default)]
    user: Option<String>,
    #[serde(rename = "UserAuthNMethod", default)]
    authn: Option<String>,
    #[serde(rename = "RequestMethod", default)]
    method: Option<String>,
    #[serde(rename = "RequestUri", default)]
    uri: Option<String>,
    #[serde(rename = "RequestPeerCertificates", default)]
    peer_certificates: Option<Vec<Option<String>>>,
}

/// One decoded authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzRequest {
    /// `User`: what dockerd took from the certificate (the CN); empty without TLS.
    pub user: String,
    /// `UserAuthNMethod` (`TLS`), empty without TLS.
    pub authn: String,
    /// `RequestMethod`.
    pub method: String,
    /// `RequestUri`, as the client sent it.
    pub uri: String,
    /// The client's certificate (DER), the first of `RequestPeerCertificates`.
    pub peer: Option<Vec<u8>>,
}

/// The most peer certificates looked at (Go sends the verified client chain: one).
const MAX_PEER_CERTIFICATES: usize = 8;

/// Decodes an `AuthZReq` body.
pub fn decode(body: &[u8]) -> Result<AuthzRequest, String> {
    let wire: Wire = serde_json::from_slice(body).map_err(|err| {
        format!(
            "the request is not valid JSON for AuthZReq ({})",
            crate::escape::quoted_values(&err.to_string())
        )
    })?;
    let method = wire.method.unwrap_or_default();
    if method.is_empty() {
        return Err("the request names no RequestMethod".into());
    }
    let uri = wire.uri.unwrap_or_default();
    if uri.is_empty() {
        return Err("the request names no RequestUri".into());
    }
    let certificates = wire.peer_certificates.unwrap_or_default();
    if certificates.len() > MAX_PEER_CERTIFICATES {
        return Err("the request carries too many peer certificates".into());
    }
    let peer = match certificates.first() {
        None => None,
        Some(None) => return Err("the request's first peer certificate is null".into()),
        Some(Some(encoded)) => Some(peer_der(encoded)?),
    };
    Ok(AuthzRequest {
        user: wire.user.unwrap_or_default(),
        authn: wire.authn.unwrap_or_default(),
        method,
        uri,
        peer,
    })
}

/// The DER of one `RequestPeerCertificates` entry: base64 of a PEM `CERTIFICATE`.
fn peer_der(encoded: &str) -> Result<Vec<u8>, String> {
    let pem = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| "the peer certificate is not base64".to_string())?;
    let der = CertificateDer::from_pem_slice(&pem)
        .map_err(|_| "the peer certificate is not a PEM certificate".to_string())?;
    Ok(der.as_ref().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pem_b64(der: &[u8]) -> String {
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        let pem = format!("-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n");
        base64::engine::general_purpose::STANDARD.encode(pem)
    }

    #[test]
    fn a_tls_request_carries_user_method_uri_and_certificate() {
        let body = format!(
            r#"{{"User":"bob","UserAuthNMethod":"TLS","RequestMethod":"GET",
                "RequestUri":"/v1.41/containers/json","RequestHeaders":{{"A":"b"}},
                "RequestBody":"e30=","RequestPeerCertificates":["{}"]}}"#,
            pem_b64(&[0x30, 0x03, 1, 2, 3])
        );
        let request = decode(body.as_bytes()).unwrap();
        assert_eq!(request.user, "bob");
        assert_eq!(request.method, "GET");
        assert_eq!(request.uri, "/v1.41/containers/json");
        assert_eq!(request.peer.as_deref(), Some(&[0x30, 3, 1, 2, 3][..]));
    }

    #[test]
    fn a_local_request_has_no_certificate() {
        let request = decode(br#"{"RequestMethod":"GET","RequestUri":"/_ping"}"#).unwrap();
        assert_eq!(request.peer, None);
        assert_eq!(request.user, "");
    }

    #[test]
    fn malformed_requests_say_why() {
        let cases = [
            ("", "not valid JSON"),
            ("42", "not valid JSON"),
            (r#"{"RequestUri":"/_ping"}"#, "no RequestMethod"),
            (r#"{"RequestMethod":"GET"}"#, "no RequestUri"),
            (
                r#"{"RequestMethod":"GET","RequestUri":"/","RequestUri":"/x"}"#,
                "duplicate",
            ),
            (
                r#"{"RequestMethod":"GET","RequestUri":"/","RequestPeerCertificates":["!!"]}"#,
                "not base64",
            ),
            (
                r#"{"RequestMethod":"GET","RequestUri":"/","RequestPeerCertificates":["aGVsbG8="]}"#,
                "not a PEM",
            ),
            (
                r#"{"RequestMethod":"GET","RequestUri":"/","RequestPeerCertificates":[null]}"#,
                "null",
            ),
        ];
        for (body, want) in cases {
            let err = decode(body.as_bytes()).err().unwrap_or_default();
            assert!(err.contains(want), "{body}: {err}");
        }
    }

    proptest! {
        #[test]
        fn the_decoder_never_panics_on_any_bytes(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = decode(&body);
        }

        #[test]
        fn the_decoder_never_panics_on_json_shaped_input(
            user in ".{0,40}", method in ".{0,10}", uri in ".{0,200}",
            cert in proptest::option::of(".{0,300}"), extra in "[ -~]{0,80}"
        ) {
            let mut object = serde_json::json!({
                "User": user, "RequestMethod": method, "RequestUri": uri, "X": extra
            });
            if let Some(cert) = cert {
                object["RequestPeerCertificates"] = serde_json::json!([cert]);
            }
            let body = serde_json::to_vec(&object).unwrap();
            if let Ok(request) = decode(&body) {
                prop_assert_eq!(request.method, method);
                prop_assert_eq!(request.uri.clone(), uri.clone());
                let _ = crate::authz::route::route_path(&request.uri);
            }
        }

        #[test]
        fn any_certificate_bytes_round_trip(der in proptest::collection::vec(any::<u8>(), 1..600)) {
            let body = serde_json::to_vec(&serde_json::json!({
                "RequestMethod": "GET", "RequestUri": "/_ping",
                "RequestPeerCertificates": [pem_b64(&der)]
            })).unwrap();
            prop_assert_eq!(decode(&body).unwrap().peer, Some(der));
        }

        #[test]
        fn route_path_never_panics(uri in "/[ -~\u{80}-\u{10ffff}]{0,200}") {
            if let Ok(path) = crate::authz::route::route_path(&uri) {
                prop_assert!(path.starts_with('/'));
                prop_assert!(!path.contains("/../") && !path.contains("//"));
            }
        }
    }
}
