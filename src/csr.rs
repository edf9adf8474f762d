//! Certificate signing requests (PKCS#10): made where a key will live (`request`), read and
//! judged where the CA is (`sign`). Pure logic: bytes in, values out, no file I/O.
//!
//! The CA decides every extension of what it signs (see `pki`): a CSR contributes its public
//! key, and nothing else unless the operator says so. Everything else it asks for (another
//! subject, CA:TRUE, key usages, extended key usages, other extensions and attributes) is
//! dropped and named, so the operator sees what was asked and what was signed.

use std::net::IpAddr;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType, SignatureAlgorithm};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::ParsedCriAttribute;
use x509_parser::extensions::{GeneralName, ParsedExtension, X509Extension};
use x509_parser::prelude::FromDer;
use zeroize::Zeroizing;

use crate::names::{self, Address};
use crate::pki::{self, KeyType};

/// The file `request server` writes its CSR to, beside `server-key.pem`.
pub const SERVER_CSR: &str = "server.csr";
/// The file `request client` writes its CSR to, beside `key.pem`.
pub const CLIENT_CSR: &str = "client.csr";

/// The most a CSR file may hold. A CSR of an RSA-8192 key with a hundred SANs is under 8 KiB;
/// anything far larger is not a CSR.
pub const MAX_CSR_FILE: u64 = 64 * 1024;

/// The smallest and largest RSA moduli signed: Go (dockerd, the docker CLI) refuses RSA under
/// 1024 bits at once and over 8192 bits, and 2048 is the floor every current policy sets
/// (NIST SP 800-131A, the CA/Browser Forum); 2048 to 8192 was measured end to end with dockerd.
pub const RSA_MIN_BITS: usize = 2048;
/// See [`RSA_MIN_BITS`].
pub const RSA_MAX_BITS: usize = 8192;

/// A new key and the CSR that asks for its certificate. The key is wiped when dropped.
pub struct Request {
    pub key_pem: Zeroizing<String>,
    pub csr_pem: String,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("csr_pem", &self.csr_pem)
            .field("key_pem", &"[secret key elided]")
            .finish()
    }
}

/// Makes a fresh key of `key_type` and a CSR for it naming `cn` and `sans` (what the operator
/// on the CA side is shown; the CA decides what the certificate says).
pub fn make_request(
    key_type: KeyType,
    cn: &str,
    sans: &[Address],
) -> Result<Request, rcgen::Error> {
    let key = key_type.generate()?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, cn);
    params.distinguished_name = name;
    params.subject_alt_names = sans.iter().map(san_type).collect::<Result<_, _>>()?;
    let csr_pem = params.serialize_request(&key)?.pem()?;
    Ok(Request {
        key_pem: pki::private_key_pem(&key)?,
        csr_pem,
    })
}

fn san_type(address: &Address) -> Result<SanType, rcgen::Error> {
    match address {
        Address::Dns(dns) => Ok(SanType::DnsName(dns.as_str().try_into()?)),
        Address::Ip(ip) => Ok(SanType::IpAddress(*ip)),
    }
}

/// The public key of a checked CSR, in the form rcgen signs: exactly the key the CSR holds.
#[derive(Debug, Clone)]
pub struct PublicKey {
    raw: Vec<u8>,
    alg: &'static SignatureAlgorithm,
    /// RSA (its certificate also gets keyEncipherment, as dockertls' own RSA leaves do).
    pub rsa: bool,
    /// `RSA 2048 bits`, `ECDSA P-256`, `Ed25519`: for messages.
    pub description: String,
}

impl rcgen::PublicKeyData for PublicKey {
    fn der_bytes(&self) -> &[u8] {
        &self.raw
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.alg
    }
}

/// What a checked CSR holds and asks for. Its signature was verified with its own key.
#[derive(Debug, Clone)]
pub struct Csr {
    pub key: PublicKey,
    /// The subject as the CSR gives it (`CN=alice, O=x`); empty for an empty subject.
    pub subject: String,
    /// The subject's common name, when it has exactly one.
    pub common_name: Option<String>,
    /// The DNS names and IP addresses the CSR asks for, in its order.
    pub sans: Vec<Address>,
    /// SANs dockertls never signs (e-mail, URI, malformed names...), described.
    pub other_sans: Vec<String>,
    /// Everything else it asks for, described (`CA:TRUE`, `extended key usage codeSigning`...).
    pub requests: Vec<String>,
}

/// Reads a CSR file's bytes: one PEM `CERTIFICATE REQUEST` block (nothing but white space
/// around it) or one DER request (nothing after it). Checks the signature, the signature
/// algorithm and the key; the error says what is wrong in one line, naming `source`.
pub fn parse(source: &str, bytes: &[u8]) -> Result<Csr, String> {
    let der = csr_der(source, bytes)?;
    let (rest, request) = X509CertificationRequest::from_der(&der)
        .map_err(|e| format!("{source} is not a valid PKCS#10 certificate request ({e})"))?;
    if !rest.is_empty() {
        return Err(format!(
            "{source} has {} bytes after the certificate request: give a file with the request alone",
            rest.len()
        ));
    }
    check(source, &request)
}

/// The DER of the one request in `bytes`.
fn csr_der(source: &str, bytes: &[u8]) -> Result<Vec<u8>, String> {
    if bytes.first() == Some(&0x30) {
        return Ok(bytes.to_vec());
    }
    let not_csr = || {
        format!(
            "{source} is neither a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----) nor a DER one"
        )
    };
    let text = std::str::from_utf8(bytes).map_err(|_| not_csr())?.trim();
    const BEGIN: &str = "-----BEGIN CERTIFICATE REQUEST-----";
    const END: &str = "-----END CERTIFICATE REQUEST-----";
    let (Some(body), true) = (text.strip_prefix(BEGIN), text.ends_with(END)) else {
        if text.contains(BEGIN) {
            return Err(format!(
                "{source} holds text before or after the certificate request: give a file with the request alone"
            ));
        }
        return Err(not_csr());
    };
    if body.matches("-----BEGIN ").count() > 0 {
        return Err(format!(
            "{source} holds more than one PEM block: give a file with one certificate request"
        ));
    }
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateSigningRequestDer::from_pem_slice(text.as_bytes())
        .map(|der| der.as_ref().to_vec())
        .map_err(|e| format!("{source}: the PEM certificate request does not decode ({e})"))
}

/// Signature algorithms too weak to prove anything (MD5, SHA-1), by OID.
const WEAK_SIGNATURES: [&str; 5] = [
    "1.2.840.113549.1.1.4", // md5WithRSAEncryption
    "1.2.840.113549.1.1.5", // sha1WithRSAEncryption
    "1.2.840.10045.4.1",    // ecdsa-with-SHA1
    "1.2.840.10040.4.3",    // dsa-with-sha1
    "1.3.14.3.2.29",        // sha1WithRSASignature (OIW)
];

fn check(source: &str, request: &X509CertificationRequest<'_>) -> Result<Csr, String> {
    let info = &request.certification_request_info;
    if info.version.0 != 0 {
        return Err(format!(
            "{source}: version {} of PKCS#10 is unknown (only v1 exists)",
            info.version.0
        ));
    }
    let signature = request.signature_algorithm.algorithm.to_id_string();
    if WEAK_SIGNATURES.contains(&signature.as_str()) {
        return Err(format!(
            "{source} is signed with MD5 or SHA-1 ({signature}), which proves nothing: make the request again with SHA-256 (openssl req -sha256, or dockertls request)"
        ));
    }
    let key = public_key(source, &info.subject_pki)?;
    request.verify_signature().map_err(|e| {
        format!(
            "{source}: the request's signature does not verify with its own key ({e}): the file was changed or damaged; make the request again"
        )
    })?;
    let mut csr = Csr {
        key,
        subject: info.subject.to_string(),
        common_name: None,
        sans: Vec::new(),
        other_sans: Vec::new(),
        requests: Vec::new(),
    };
    let mut cns = info.subject.iter_common_name();
    if let (Some(cn), None) = (cns.next(), cns.next()) {
        csr.common_name = cn.as_str().ok().map(str::to_string);
    }
    for attribute in info.iter_attributes() {
        match attribute.parsed_attribute() {
            ParsedCriAttribute::ExtensionRequest(asked) => {
                for extension in &asked.extensions {
                    read_extension(extension, &mut csr);
                }
            }
            // Its value is a password: named, never shown.
            ParsedCriAttribute::ChallengePassword(_) => csr
                .requests
                .push("a challenge password attribute".to_string()),
            ParsedCriAttribute::UnsupportedAttribute => csr.requests.push(format!(
                "the attribute {}",
                crate::escape::value(&attribute.oid.to_id_string())
            )),
        }
    }
    Ok(csr)
}

/// The CSR's key, refused when Docker's peers would not take it or it is too weak.
fn public_key(
    source: &str,
    spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>,
) -> Result<PublicKey, String> {
    use x509_parser::public_key::PublicKey as Parsed;
    let accepted = "dockertls signs RSA 2048 to 8192 bits, ECDSA P-256 or P-384, and Ed25519 keys (what dockerd and Docker's clients were measured to take)";
    let refuse = |what: String| {
        Err(format!(
            "{source} holds {what}: {accepted}; make the request again, e.g. with dockertls request"
        ))
    };
    let (alg, rsa, description) = match spki.parsed() {
        Ok(Parsed::RSA(rsa)) => {
            let bits = rsa.key_size();
            if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
                return refuse(format!("an RSA key of {bits} bits"));
            }
            (&rcgen::PKCS_RSA_SHA256, true, format!("RSA {bits} bits"))
        }
        Ok(Parsed::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map_or("unknown".to_string(), |oid| oid.to_id_string());
            match curve.as_str() {
                "1.2.840.10045.3.1.7" => {
                    (&rcgen::PKCS_ECDSA_P256_SHA256, false, "ECDSA P-256".into())
                }
                "1.3.132.0.34" => (&rcgen::PKCS_ECDSA_P384_SHA384, false, "ECDSA P-384".into()),
                other => {
                    return refuse(format!(
                        "an ECDSA key on the curve {}",
                        crate::escape::value(other)
                    ));
                }
            }
        }
        _ if spki.algorithm.algorithm.to_id_string() == "1.3.101.112" => {
            (&rcgen::PKCS_ED25519, false, "Ed25519".to_string())
        }
        _ => {
            let oid = spki.algorithm.algorithm.to_id_string();
            return refuse(format!(
                "a key of the algorithm {}",
                crate::escape::value(&oid)
            ));
        }
    };
    let key = PublicKey {
        raw: spki.subject_public_key.data.to_vec(),
        alg,
        rsa,
        description,
    };
    // What rcgen will write must be the very key the CSR holds, byte for byte.
    if rcgen::PublicKeyData::subject_public_key_info(&key) != spki.raw {
        return refuse(format!(
            "a {} key in an encoding dockertls cannot carry over exactly",
            key.description
        ));
    }
    Ok(key)
}

fn read_extension(extension: &X509Extension<'_>, csr: &mut Csr) {
    let requests = &mut csr.requests;
    match extension.parsed_extension() {
        ParsedExtension::SubjectAlternativeName(san) => {
            for name in &san.general_names {
                match general_name(name) {
                    Ok(address) => csr.sans.push(address),
                    Err(other) => csr.other_sans.push(other),
                }
            }
        }
        ParsedExtension::BasicConstraints(bc) if bc.ca => requests.push("CA:TRUE".into()),
        // CA:FALSE is what it gets anyway.
        ParsedExtension::BasicConstraints(_) => {}
        ParsedExtension::KeyUsage(usage) => requests.push(format!("the key usage {usage}")),
        ParsedExtension::ExtendedKeyUsage(eku) => {
            let mut asked: Vec<String> = [
                (eku.any, "anyExtendedKeyUsage"),
                (eku.server_auth, "serverAuth"),
                (eku.client_auth, "clientAuth"),
                (eku.code_signing, "codeSigning"),
                (eku.email_protection, "emailProtection"),
                (eku.time_stamping, "timeStamping"),
                (eku.ocsp_signing, "OCSPSigning"),
            ]
            .iter()
            .filter(|(asked, _)| *asked)
            .map(|(_, name)| name.to_string())
            .collect();
            asked.extend(
                eku.other
                    .iter()
                    .map(|oid| crate::escape::value(&oid.to_id_string())),
            );
            requests.push(format!("the extended key usage {}", asked.join(", ")));
        }
        ParsedExtension::SubjectKeyIdentifier(_) => {
            requests.push("a subject key identifier of its own".into())
        }
        _ => requests.push(format!(
            "the extension {}{}",
            crate::escape::value(&extension.oid.to_id_string()),
            if extension.critical {
                " (critical)"
            } else {
                ""
            }
        )),
    }
}

/// A SAN dockertls can sign (a valid DNS name, an IP address), or its description.
fn general_name(name: &GeneralName<'_>) -> Result<Address, String> {
    match name {
        GeneralName::DNSName(dns) => names::parse_address("DNS SAN", dns)
            .map(|parsed| parsed.address)
            .map_err(|why| format!("DNS:{} ({why})", crate::escape::value(dns))),
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 => Ok(Address::Ip(IpAddr::from(
                <[u8; 4]>::try_from(*bytes).unwrap_or_default(),
            ))),
            16 => {
                let ip = IpAddr::from(<[u8; 16]>::try_from(*bytes).unwrap_or_default());
                names::parse_address("IP SAN", &ip.to_string())
                    .map(|parsed| parsed.address)
                    .map_err(|why| format!("IP:{ip} ({why})"))
            }
            n => Err(format!("an IP address of {n} bytes")),
        },
        GeneralName::RFC822Name(mail) => Err(format!("email:{}", crate::escape::value(mail))),
        GeneralName::URI(uri) => Err(format!("URI:{}", crate::escape::value(uri))),
        other => Err(format!(
            "a SAN of another kind ({})",
            crate::escape::value(&other.to_string())
        )),
    }
}

/// What a certificate signed from a CSR says, as the CA decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The certificate's SANs.
    pub sans: Vec<Address>,
    /// What the CSR asked for and does not get, one line each.
    pub dropped: Vec<String>,
    /// The CSR's SANs that were taken (`--accept-csr-sans`), for the report.
    pub taken_from_csr: Vec<Address>,
}

/// Decides the certificate for `csr`: its CN is `cn` (the operator's), its SANs are
/// `operator_sans`, plus the CSR's own DNS and IP SANs when `accept_csr_sans`. Everything else
/// the CSR asks for is dropped and listed.
pub fn decide(csr: &Csr, cn: &str, operator_sans: &[Address], accept_csr_sans: bool) -> Decision {
    let mut sans = operator_sans.to_vec();
    let mut dropped = Vec::new();
    let mut taken_from_csr = Vec::new();
    if csr.common_name.as_deref() != Some(cn) {
        let subject = if csr.subject.is_empty() {
            "an empty subject".to_string()
        } else {
            format!("the subject {}", crate::escape::value(&csr.subject))
        };
        dropped.push(format!("{subject} (the certificate says CN={cn})"));
    } else if csr.subject != format!("CN={cn}") {
        dropped.push(format!(
            "the subject {} beyond its CN (the certificate says CN={cn})",
            crate::escape::value(&csr.subject)
        ));
    }
    let new_sans: Vec<&Address> = csr.sans.iter().filter(|a| !sans.contains(a)).collect();
    if accept_csr_sans {
        for address in new_sans {
            taken_from_csr.push(address.clone());
            sans.push(address.clone());
        }
    } else if !new_sans.is_empty() {
        let list: Vec<String> = new_sans.iter().map(|a| a.to_string()).collect();
        dropped.push(format!(
            "the SANs {} (name them with --allow, or take the CSR's with --accept-csr-sans)",
            list.join(", ")
        ));
    }
    for other in &csr.other_sans {
        dropped.push(format!(
            "the SAN {other} (dockertls signs DNS names and IP addresses)"
        ));
    }
    dropped.extend(csr.requests.iter().cloned());
    Decision {
        sans,
        dropped,
        taken_from_csr,
    }
}

/// The key the CSR holds equals `key`'s public key (a test of `request`'s output).
pub fn holds_key(csr: &Csr, key: &KeyPair) -> bool {
    rcgen::PublicKeyData::der_bytes(key) == csr.key.raw.as_slice()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn valid_der() -> Vec<u8> {
        use rustls_pki_types::pem::PemObject;
        let request = make_request(KeyType::EcdsaP256, "x", &[]).unwrap();
        rustls_pki_types::CertificateSigningRequestDer::from_pem_slice(request.csr_pem.as_bytes())
            .unwrap()
            .as_ref()
            .to_vec()
    }

    proptest! {
        #[test]
        fn hostile_bytes_never_panic_and_refuse_in_one_line(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Err(err) = parse("f", &bytes) {
                prop_assert!(!err.contains('\n'));
            }
        }

        #[test]
        fn a_changed_byte_of_what_is_signed_or_of_the_signature_is_refused(at in 0usize..10_000, xor in 1u8..=255) {
            let mut der = valid_der();
            // The signed part (version, subject, key, attributes) and the signature's bytes.
            // (x509-parser reads the signature algorithm's OID whatever its tag: a change there
            // is harmless, the signature still has to verify over the same signed part.)
            let (_, request) = X509CertificationRequest::from_der(&der).unwrap();
            let info = request.certification_request_info.raw;
            let start = info.as_ptr() as usize - der.as_ptr() as usize;
            let signed = start..start + info.len();
            let signature = der.len() - request.signature_value.data.len()..der.len();
            let positions: Vec<usize> = signed.chain(signature).collect();
            let at = positions[at % positions.len()];
            der[at] ^= xor;
            prop_assert!(parse("f", &der).is_err(), "byte {at} ^ {xor:#x} accepted");
        }
    }

    #[test]
    fn the_request_is_for_its_own_key_and_elides_it_from_debug() {
        let request = make_request(KeyType::EcdsaP384, "alice", &[]).unwrap();
        let key = KeyPair::from_pem(&request.key_pem).unwrap();
        let csr = parse("alice.csr", request.csr_pem.as_bytes()).unwrap();
        assert!(holds_key(&csr, &key));
        assert_eq!(csr.subject, "CN=alice");
        assert!(csr.requests.is_empty() && csr.sans.is_empty());
        let debug = format!("{request:?}");
        assert!(!debug.contains("PRIVATE KEY") && debug.contains("[secret key elided]"));
        // Asked for exactly what it gets: nothing is said to be dropped.
        assert!(decide(&csr, "alice", &[], false).dropped.is_empty());
    }
}
