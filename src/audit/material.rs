//! Reading certificate and key files as Docker would, tolerating what Go tolerates (CRLF, a
//! UTF-8 byte-order mark, several PEM formats for keys) and naming what it refuses. Pure: works
//! on bytes; never panics on hostile input.

use pkcs8::der::{self, Decode};
use rustls_pki_types::pem::{PemObject, SectionKind};

/// The largest file read: certificate material is a few KiB; anything bigger is not ours.
pub const MAX_FILE_SIZE: u64 = 1024 * 1024;

/// The certificates of a PEM file, in order, as DER.
#[derive(Debug)]
pub struct CertBundle {
    pub ders: Vec<Vec<u8>>,
    /// The file also holds a private key (a leak when the file is world-readable).
    pub holds_private_key: bool,
}

/// Reads every CERTIFICATE block of a PEM file.
pub fn parse_certificates(bytes: &[u8]) -> Result<CertBundle, String> {
    let bytes = strip_bom(bytes);
    if !contains(bytes, b"-----BEGIN ") {
        if bytes.first() == Some(&0x30) {
            return Err("is DER, not PEM: convert it with `openssl x509 -inform der -in FILE -out FILE.pem`".into());
        }
        return Err("holds no PEM block".into());
    }
    let mut ders = Vec::new();
    let mut holds_private_key = contains(bytes, b"PRIVATE KEY-----");
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(bytes) {
        match section {
            Ok((SectionKind::Certificate, der)) => ders.push(der),
            Ok((
                SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey,
                _,
            )) => {
                holds_private_key = true;
            }
            Ok(_) => {}
            Err(err) => {
                return Err(format!(
                    "has a malformed PEM block ({})",
                    pem_error_text(&err)
                ));
            }
        }
    }
    if ders.is_empty() {
        return Err(if holds_private_key {
            "holds a private key, not a certificate".into()
        } else {
            "holds no CERTIFICATE block".into()
        });
    }
    Ok(CertBundle {
        ders,
        holds_private_key,
    })
}

/// How a private key file is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormat {
    Pkcs8,
    Pkcs1,
    Sec1,
}

impl KeyFormat {
    pub fn name(self) -> &'static str {
        match self {
            KeyFormat::Pkcs8 => "PKCS#8",
            KeyFormat::Pkcs1 => "PKCS#1",
            KeyFormat::Sec1 => "SEC1",
        }
    }
}

/// The public half of a private key, as needed to match it with a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicOfPrivate {
    /// Modulus and public exponent, big-endian without leading zeros.
    Rsa {
        modulus: Vec<u8>,
        exponent: Vec<u8>,
    },
    /// An uncompressed EC point and the curve's name.
    Ec {
        curve: &'static str,
        point: Vec<u8>,
    },
    Ed25519([u8; 32]),
    /// A key type dockertls cannot match (named by its algorithm OID).
    Other(String),
}

/// A private key file, read.
#[derive(Debug)]
pub struct KeyFile {
    pub format: KeyFormat,
    pub public: PublicOfPrivate,
}

/// Why a key file could not be used.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyError {
    /// Encrypted (PKCS#8 EncryptedPrivateKeyInfo or legacy Proc-Type): Docker cannot load it.
    Encrypted,
    /// Unreadable, with the reason.
    Invalid(String),
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_ED25519: &str = "1.3.101.112";

/// Reads the first private key of a PEM file.
pub fn parse_private_key(bytes: &[u8]) -> Result<KeyFile, KeyError> {
    let bytes = strip_bom(bytes);
    // pki-types skips labels it does not know, so look for encryption first.
    if contains(bytes, b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || contains(bytes, b"Proc-Type: 4,ENCRYPTED")
    {
        return Err(KeyError::Encrypted);
    }
    if !contains(bytes, b"-----BEGIN ") {
        return Err(KeyError::Invalid(if bytes.first() == Some(&0x30) {
            "is DER, not PEM: convert it with `openssl pkey -inform der -in FILE -out FILE.pem`"
                .into()
        } else {
            "holds no PEM block".into()
        }));
    }
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(bytes) {
        let (kind, der) = section.map_err(|e| {
            KeyError::Invalid(format!(
                "has a malformed PEM block ({})",
                pem_error_text(&e)
            ))
        })?;
        let der = zeroize::Zeroizing::new(der);
        let (format, public) = match kind {
            SectionKind::PrivateKey => (KeyFormat::Pkcs8, pkcs8_public(&der)?),
            SectionKind::RsaPrivateKey => (KeyFormat::Pkcs1, rsa_public(&der)?),
            SectionKind::EcPrivateKey => (KeyFormat::Sec1, ec_public(&der)?),
            _ => continue,
        };
        return Ok(KeyFile { format, public });
    }
    Err(KeyError::Invalid(
        if contains(bytes, b"-----BEGIN CERTIFICATE-----") {
            "holds a certificate, not a private key".into()
        } else {
            "holds no PRIVATE KEY block".into()
        },
    ))
}

fn invalid(what: &str) -> impl Fn(der::Error) -> KeyError + '_ {
    move |err| KeyError::Invalid(format!("is not a valid {what} key ({err})"))
}

fn pkcs8_public(der: &[u8]) -> Result<PublicOfPrivate, KeyError> {
    let info = pkcs8::PrivateKeyInfoRef::try_from(der)
        .map_err(|e| KeyError::Invalid(format!("is not a valid PKCS#8 key ({e})")))?;
    let inner = info.private_key.as_bytes();
    match info.algorithm.oid.to_string().as_str() {
        OID_RSA => rsa_public(inner),
        OID_EC => ec_public_from(der),
        OID_ED25519 => {
            // The private key is an OCTET STRING holding the 32-byte seed.
            let seed = <&der::asn1::OctetStringRef>::from_der(inner).map_err(invalid("Ed25519"))?;
            let pair = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(seed.as_bytes())
                .map_err(|_| KeyError::Invalid("is not a valid Ed25519 key".into()))?;
            let public = aws_lc_rs::signature::KeyPair::public_key(&pair).as_ref();
            let public: [u8; 32] = public.try_into().map_err(|_| {
                KeyError::Invalid("has an Ed25519 public key of the wrong length".into())
            })?;
            Ok(PublicOfPrivate::Ed25519(public))
        }
        other => Ok(PublicOfPrivate::Other(other.to_string())),
    }
}

fn rsa_public(der: &[u8]) -> Result<PublicOfPrivate, KeyError> {
    let key = pkcs1::RsaPrivateKeyRef::from_der(der).map_err(invalid("RSA"))?;
    Ok(PublicOfPrivate::Rsa {
        modulus: trim_zeros(key.modulus.as_bytes()).to_vec(),
        exponent: trim_zeros(key.public_exponent.as_bytes()).to_vec(),
    })
}

fn ec_public(der: &[u8]) -> Result<PublicOfPrivate, KeyError> {
    sec1::EcPrivateKey::from_der(der).map_err(invalid("SEC1 EC"))?;
    ec_public_from(der)
}

/// Derives the public point from the private scalar (as Go does), for a SEC1 or PKCS#8 key.
fn ec_public_from(der: &[u8]) -> Result<PublicOfPrivate, KeyError> {
    use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair};
    for (curve, alg) in [
        ("P-256", &signature::ECDSA_P256_SHA256_ASN1_SIGNING),
        ("P-384", &signature::ECDSA_P384_SHA384_ASN1_SIGNING),
        ("P-521", &signature::ECDSA_P521_SHA512_ASN1_SIGNING),
    ] {
        if let Ok(pair) = EcdsaKeyPair::from_private_key_der(alg, der) {
            return Ok(PublicOfPrivate::Ec {
                curve,
                point: pair.public_key().as_ref().to_vec(),
            });
        }
    }
    Err(KeyError::Invalid(
        "is an EC key on a curve other than P-256, P-384 or P-521, or is damaged".into(),
    ))
}

/// A PEM error in words (pki-types' own text shows byte arrays and Rust names).
pub fn pem_error_text(err: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error;
    match err {
        Error::MissingSectionEnd { end_marker } => {
            let label = String::from_utf8_lossy(end_marker);
            format!("no -----END {}----- line", label.trim())
        }
        Error::IllegalSectionStart { line } => {
            format!(
                "a damaged BEGIN line: {}",
                String::from_utf8_lossy(line).trim()
            )
        }
        Error::Base64Decode(_) => "its base64 text is damaged".into(),
        Error::NoItemsFound => "no PEM block".into(),
        Error::SectionTooLarge => "a block over 256 MB".into(),
        Error::Io(err) => err.to_string(),
        _ => "it cannot be read as PEM".into(),
    }
}

/// An X.509 parse error in words (nom's own text is Rust's Debug output).
pub fn x509_error_text(err: &x509_parser::nom::Err<x509_parser::error::X509Error>) -> String {
    match err {
        // The DER layer's text shows Rust names too ("Unexpected Tag (expected: Some(..").
        x509_parser::nom::Err::Error(x509_parser::error::X509Error::Der(_))
        | x509_parser::nom::Err::Failure(x509_parser::error::X509Error::Der(_)) => {
            "its DER structure is damaged".into()
        }
        x509_parser::nom::Err::Error(err) | x509_parser::nom::Err::Failure(err) => err.to_string(),
        x509_parser::nom::Err::Incomplete(_) => "it is cut short".into(),
    }
}

/// Big-endian integer bytes without leading zeros.
pub fn trim_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Arbitrary bytes never panic the loaders.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let _ = parse_certificates(&bytes);
            let _ = parse_private_key(&bytes);
        }

        /// PEM-looking text with damaged bodies never panics the loaders.
        #[test]
        fn damaged_pem_never_panics(label in "(CERTIFICATE|PRIVATE KEY|RSA PRIVATE KEY|EC PRIVATE KEY)", body in "[A-Za-z0-9+/=\\r\\n-]{0,400}") {
            let text = format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n");
            let _ = parse_certificates(text.as_bytes());
            let _ = parse_private_key(text.as_bytes());
        }

        /// A real key with one byte of its DER changed never panics the key loader.
        #[test]
        fn damaged_keys_never_panic(kind in 0usize..3, position in any::<prop::sample::Index>(), value in any::<u8>()) {
            let key_type = [crate::pki::KeyType::EcdsaP256, crate::pki::KeyType::Ed25519, crate::pki::KeyType::Rsa2048][kind];
            let pem_text = generated(key_type);
            let mut der = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(pem_text.as_bytes()).unwrap().secret_pkcs8_der().to_vec();
            let at = position.index(der.len());
            der[at] = value;
            for label in ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"] {
                let _ = parse_private_key(der::pem::encode_string(label, der::pem::LineEnding::LF, &der).unwrap().as_bytes());
            }
        }
    }

    fn generated(key_type: crate::pki::KeyType) -> String {
        let key = key_type.generate().unwrap();
        crate::pki::private_key_pem(&key).unwrap().to_string()
    }

    #[test]
    fn reads_our_keys_in_every_type() {
        for key_type in [
            crate::pki::KeyType::EcdsaP256,
            crate::pki::KeyType::EcdsaP384,
            crate::pki::KeyType::Ed25519,
            crate::pki::KeyType::Rsa2048,
        ] {
            let pem = generated(key_type);
            let key = parse_private_key(pem.as_bytes()).unwrap();
            assert_eq!(key.format, KeyFormat::Pkcs8);
            // CRLF line endings and a BOM are tolerated.
            let crlf = format!("\u{feff}{}", pem.replace('\n', "\r\n"));
            assert_eq!(
                parse_private_key(crlf.as_bytes()).unwrap().public,
                key.public
            );
        }
    }

    #[test]
    fn pem_and_x509_errors_are_told_in_words() {
        let unterminated = "-----BEGIN CERTIFICATE-----\nMIIB\n";
        let why = parse_certificates(unterminated.as_bytes()).unwrap_err();
        assert_eq!(
            why,
            "has a malformed PEM block (no -----END CERTIFICATE----- line)"
        );
        let damaged = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        let why = parse_certificates(damaged.as_bytes()).unwrap_err();
        assert!(why.contains("base64 text is damaged"), "{why}");
        use x509_parser::prelude::FromDer;
        let err = x509_parser::certificate::X509Certificate::from_der(b"\x30\x03\x02\x01\x01")
            .unwrap_err();
        let text = x509_error_text(&err);
        assert!(
            !text.contains("Parsing Error") && !text.contains('('),
            "{text}"
        );
    }

    #[test]
    fn names_encrypted_and_wrong_material() {
        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert_eq!(
            parse_private_key(encrypted.as_bytes()).unwrap_err(),
            KeyError::Encrypted
        );
        let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(
            parse_private_key(legacy.as_bytes()).unwrap_err(),
            KeyError::Encrypted
        );
        let KeyError::Invalid(why) = parse_private_key(b"\x30\x82\x01").unwrap_err() else {
            panic!()
        };
        assert!(why.contains("DER"));
        let KeyError::Invalid(why) = parse_private_key(b"garbage").unwrap_err() else {
            panic!()
        };
        assert!(why.contains("no PEM"));
        assert!(
            parse_certificates(b"garbage")
                .unwrap_err()
                .contains("no PEM")
        );
        let key = generated(crate::pki::KeyType::EcdsaP256);
        assert!(
            parse_certificates(key.as_bytes())
                .unwrap_err()
                .contains("private key, not a certificate")
        );
        let truncated = &key[..key.len() / 2];
        assert!(parse_private_key(truncated.as_bytes()).is_err());
    }
}
