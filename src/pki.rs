//! Certificate issuance: pure logic that takes `now` and returns PEM text. No file I/O.
//!
//! Profiles follow what Go (dockerd, the docker CLI), OpenSSL's `-x509_strict` and Python's
//! `VERIFY_X509_STRICT` (docker-py) all accept; see ../shared/docker-tls-notes.md.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use ::time::{Duration, OffsetDateTime};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, RsaKeySize, SanType, SerialNumber,
};
use x509_parser::prelude::FromDer;
use zeroize::Zeroizing;

use clap::ValueEnum;

use crate::names::Address;

/// What a certificate's key is, for a message: RSA with its size, EC with its curve's OID, or
/// the algorithm's OID.
fn key_description(cert: &x509_parser::certificate::X509Certificate<'_>) -> String {
    use x509_parser::public_key::PublicKey;
    let spki = cert.public_key();
    let curve = || {
        spki.algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .map_or("unknown".to_string(), |oid| oid.to_id_string())
    };
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => format!("RSA with {} bits", rsa.key_size()),
        Ok(PublicKey::EC(_)) => format!("ECDSA on the curve {}", curve()),
        _ => format!("of algorithm {}", spki.algorithm.algorithm.to_id_string()),
    }
}

/// The key algorithm used for every key of one PKI. Declared with its `--key-type` names in
/// `cli` (one list); what each type means for keys and certificates is here.
pub use crate::cli::KeyType;

impl KeyType {
    /// The type of an existing key (RSA by its modulus size).
    pub fn of_key(key: &KeyPair) -> Option<KeyType> {
        let alg = key.algorithm();
        if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
            return Some(KeyType::EcdsaP256);
        }
        if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
            return Some(KeyType::EcdsaP384);
        }
        if alg == &rcgen::PKCS_ED25519 {
            return Some(KeyType::Ed25519);
        }
        let spki = rcgen::PublicKeyData::subject_public_key_info(key);
        let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&spki).ok()?;
        match info.parsed().ok()? {
            x509_parser::public_key::PublicKey::RSA(rsa) => match rsa.key_size() {
                2048 => Some(KeyType::Rsa2048),
                3072 => Some(KeyType::Rsa3072),
                4096 => Some(KeyType::Rsa4096),
                _ => None,
            },
            _ => None,
        }
    }

    /// The type of the key in a certificate, for re-issuing with a fresh key of that type.
    pub fn of_certificate(cert: &x509_parser::certificate::X509Certificate<'_>) -> Option<KeyType> {
        use x509_parser::public_key::PublicKey;
        let spki = cert.public_key();
        match spki.parsed().ok()? {
            PublicKey::RSA(rsa) => match rsa.key_size() {
                2048 => Some(KeyType::Rsa2048),
                3072 => Some(KeyType::Rsa3072),
                4096 => Some(KeyType::Rsa4096),
                _ => None,
            },
            PublicKey::EC(_) => match spki
                .algorithm
                .parameters
                .as_ref()?
                .as_oid()
                .ok()?
                .to_id_string()
                .as_str()
            {
                "1.2.840.10045.3.1.7" => Some(KeyType::EcdsaP256),
                "1.3.132.0.34" => Some(KeyType::EcdsaP384),
                _ => None,
            },
            _ if spki.algorithm.algorithm.to_id_string() == "1.3.101.112" => Some(KeyType::Ed25519),
            _ => None,
        }
    }

    fn is_rsa(self) -> bool {
        matches!(self, KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096)
    }

    /// Generates one key of this type (PKCS#8 inside rcgen's `KeyPair`).
    pub fn generate(self) -> Result<KeyPair, rcgen::Error> {
        // RSA signatures use SHA-256: what Docker's openssl recipe produces and every peer accepts.
        match self {
            KeyType::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            KeyType::EcdsaP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
            KeyType::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519),
            KeyType::Rsa2048 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048)
            }
            KeyType::Rsa3072 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_3072)
            }
            KeyType::Rsa4096 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_4096)
            }
        }
    }
}

/// Generates `count` keys, spread over the machine's cores: RSA generation dominates `init`.
pub fn generate_keys(key_type: KeyType, count: usize) -> Result<Vec<KeyPair>, rcgen::Error> {
    // Only RSA is worth threads; asking for the cores reads /proc and /sys (dozens of calls),
    // which a rotation of 1,200 EC leaves, one key at a time, would pay 1,200 times.
    if count <= 1 || !key_type.is_rsa() {
        return (0..count).map(|_| key_type.generate()).collect();
    }
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(count);
    if workers <= 1 {
        return (0..count).map(|_| key_type.generate()).collect();
    }
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<Result<KeyPair, rcgen::Error>>>> =
        Mutex::new((0..count).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= count {
                        break;
                    }
                    let key = key_type.generate();
                    if let Ok(mut slots) = slots.lock() {
                        slots[index] = Some(key);
                    }
                }
            });
        }
    });
    let slots = slots
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    slots
        .into_iter()
        .map(|slot| slot.unwrap_or(Err(rcgen::Error::KeyGenerationUnavailable)))
        .collect()
}

/// A certificate and its private key, both PEM. The key is wiped from memory when dropped.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: Zeroizing<String>,
    pub not_after: OffsetDateTime,
    /// The requested validity was cut short to end with the CA.
    pub cut_to_ca: bool,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("not_after", &self.not_after)
            .field("key_pem", &"[secret key elided]")
            .finish()
    }
}

/// The whole PKI that `init` writes.
#[derive(Debug)]
pub struct Pki {
    pub ca: Issued,
    pub server: Issued,
    pub clients: Vec<(String, Issued)>,
}

/// What to issue; validated beforehand (see `plan`).
pub struct PkiRequest<'a> {
    pub key_type: KeyType,
    pub now: OffsetDateTime,
    pub leaf_days: i64,
    pub ca_days: i64,
    /// The server certificate's CN.
    pub server_cn: &'a str,
    /// The server certificate's SANs, the dialled name first.
    pub server_sans: &'a [Address],
    pub clients: &'a [String],
}

/// Clock skew allowance: certificates are valid from a little before they were made.
const BACKDATE: Duration = Duration::minutes(5);

/// The latest time a certificate can hold: GeneralizedTime 99991231235959Z, RFC 5280's
/// "no well-defined expiration date" (4.1.2.5). Every computed date saturates here instead of
/// overflowing (the `time` crate panics past year 9999).
pub const LATEST: OffsetDateTime = ::time::macros::datetime!(9999-12-31 23:59:59 UTC);

/// The earliest: GeneralizedTime has four year digits (and rcgen's encoder asserts year >= 0).
pub const EARLIEST: OffsetDateTime = ::time::macros::datetime!(0000-01-01 00:00:00 UTC);

/// `from` moved by `days` days, kept within [`EARLIEST`, `LATEST`]; never panics.
pub fn add_days(from: OffsetDateTime, days: i64) -> OffsetDateTime {
    let limit = if days < 0 { EARLIEST } else { LATEST };
    days.checked_mul(86_400)
        .and_then(|seconds| from.checked_add(Duration::seconds(seconds)))
        .map_or(limit, |t| t.clamp(EARLIEST, LATEST))
}

/// Whole days from `now` to `later` (negative once `later` is past), rounding down: 23 hours
/// left is 0 days. Never overflows: the difference of two dates always fits a `Duration`.
pub fn days_left(now: OffsetDateTime, later: OffsetDateTime) -> i64 {
    (later - now).whole_seconds().div_euclid(86_400)
}

/// The validity, in days, for re-issuing a certificate that was valid from `not_before` to
/// `not_after`: its own lifetime in whole days (at least 1, at most `max_days`); `default_days`
/// when the old dates give no lifetime (notAfter not after notBefore).
pub fn reissue_days(
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    default_days: i64,
    max_days: i64,
) -> i64 {
    if not_after <= not_before {
        return default_days.clamp(1, max_days.max(1));
    }
    // A lifetime under a day is kept as one day.
    ((not_after - not_before).whole_hours() / 24).clamp(1, max_days.max(1))
}

/// The longest renewal window, in days: a certificate is due 30 days before its end at the
/// latest, whatever its lifetime (a year-long certificate is renewed a month ahead).
pub const RENEWAL_CAP_DAYS: i64 = 30;

/// How long before its end a certificate is due for renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The rule: when less than a third of its lifetime remains, capped at
    /// [`RENEWAL_CAP_DAYS`] (cert-manager's and step's "renew at two thirds"). A re-issue
    /// keeps the lifetime, so a fresh certificate is never due: renewal cannot flap.
    Rule,
    /// A fixed number of days before the end (`rotate --within N`, `verify --warn-days N`).
    Days(i64),
}

impl Window {
    /// `Days(n)` when a number was given, else the rule.
    pub fn from_option(days: Option<i64>) -> Window {
        days.map_or(Window::Rule, Window::Days)
    }
}

/// The renewal window of a certificate valid from `not_before` to `not_after`.
pub fn renewal_window(
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    window: Window,
) -> Duration {
    match window {
        Window::Rule => {
            let lifetime = (not_after - not_before).max(Duration::ZERO);
            (lifetime / 3_i32).min(Duration::days(RENEWAL_CAP_DAYS))
        }
        // Saturates instead of panicking on an absurd number of days.
        Window::Days(days) => Duration::seconds(days.max(0).saturating_mul(86_400)),
    }
}

/// The instant a certificate valid from `not_before` to `not_after` becomes due for renewal
/// under `window`; never panics (kept within [`EARLIEST`, `LATEST`]).
pub fn renewal_due(
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    window: Window,
) -> OffsetDateTime {
    let window = renewal_window(not_before, not_after, window);
    not_after
        .checked_sub(window)
        .map_or(EARLIEST, |t| t.clamp(EARLIEST, LATEST))
}

/// Whether that certificate is due for renewal at `now`: less than the window remains.
pub fn is_due(
    now: OffsetDateTime,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    window: Window,
) -> bool {
    now > renewal_due(not_before, not_after, window)
}

/// When a new certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// The requested end was later than the issuer's: the certificate ends with its CA.
    pub cut_to_issuer: bool,
}

/// The validity of a certificate made at `now` for `days` days: from `BACKDATE` before `now`
/// (to the second) to `days` after it, never after `issuer_not_after` (a leaf never outlives its
/// CA) and always within [`EARLIEST`, `LATEST`]. Whatever the inputs, `not_before <= not_after`
/// holds unless the issuer has already expired (callers refuse that first).
pub fn validity(
    now: OffsetDateTime,
    days: i64,
    issuer_not_after: Option<OffsetDateTime>,
) -> Validity {
    let now = truncate_to_second(now).clamp(EARLIEST, LATEST);
    let not_before = now
        .checked_sub(BACKDATE)
        .map_or(EARLIEST, |t| t.max(EARLIEST));
    let wanted = add_days(now, days.max(0));
    let (not_after, cut_to_issuer) = match issuer_not_after {
        Some(end) if end < wanted => (truncate_to_second(end).max(EARLIEST), true),
        _ => (wanted, false),
    };
    Validity {
        not_before,
        not_after,
        cut_to_issuer,
    }
}

/// Issues a CA, a server certificate and one client certificate per name, with fresh keys.
pub fn issue_pki(request: &PkiRequest<'_>) -> Result<Pki, rcgen::Error> {
    let mut keys = generate_keys(request.key_type, 2 + request.clients.len())?;
    let client_keys = keys.split_off(2);
    let server_key = keys.pop().ok_or(rcgen::Error::KeyGenerationUnavailable)?;
    let ca_key = keys.pop().ok_or(rcgen::Error::KeyGenerationUnavailable)?;

    let (ca_issued, ca) = new_ca(ca_key, request.now, request.ca_days)?;
    let server = ca.issue(
        &LeafRequest {
            cn: request.server_cn,
            sans: request.server_sans,
            role: Role::Server,
            now: request.now,
            days: request.leaf_days,
        },
        server_key,
    )?;
    let clients = request
        .clients
        .iter()
        .zip(client_keys)
        .map(|(name, key)| {
            let leaf = LeafRequest {
                cn: name,
                sans: &[],
                role: Role::Client,
                now: request.now,
                days: request.leaf_days,
            };
            Ok((name.clone(), ca.issue(&leaf, key)?))
        })
        .collect::<Result<Vec<_>, rcgen::Error>>()?;
    Ok(Pki {
        ca: ca_issued,
        server,
        clients,
    })
}

/// A CA that can sign: its certificate and its key.
pub struct Ca {
    pub cert_pem: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub key_type: KeyType,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("not_after", &self.not_after)
            .field("key", &"[secret key elided]")
            .finish()
    }
}

/// What a leaf certificate says.
pub struct LeafRequest<'a> {
    pub cn: &'a str,
    pub sans: &'a [Address],
    pub role: Role,
    pub now: OffsetDateTime,
    pub days: i64,
}

fn truncate_to_second(now: OffsetDateTime) -> OffsetDateTime {
    now.replace_nanosecond(0).unwrap_or(now)
}

/// Creates a self-signed CA from `key`, valid from 5 minutes before `now` for `days`.
pub fn new_ca(key: KeyPair, now: OffsetDateTime, days: i64) -> Result<(Issued, Ca), rcgen::Error> {
    let Validity {
        not_before,
        not_after,
        ..
    } = validity(now, days, None);
    let key_type = KeyType::of_key(&key).ok_or(rcgen::Error::UnsupportedSignatureAlgorithm)?;
    let params = ca_params(not_before, not_after)?;
    let cert_pem = params.self_signed(&key)?.pem();
    let issued = Issued {
        cert_pem: cert_pem.clone(),
        key_pem: private_key_pem(&key)?,
        not_after,
        cut_to_ca: false,
    };
    let ca = Ca {
        cert_pem,
        not_before,
        not_after,
        key_type,
        issuer: Issuer::new(params, key),
    };
    Ok((issued, ca))
}

impl Ca {
    /// Loads an existing CA from its certificate and unencrypted PKCS#8 key (PEM), checking
    /// that the certificate is a CA and that the key is its key.
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Ca, String> {
        use rustls_pki_types::pem::PemObject;
        let der = rustls_pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| format!("the CA certificate is not PEM ({e})"))?;
        let (_, cert) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| format!("the CA certificate does not parse ({e})"))?;
        if !cert
            .basic_constraints()
            .ok()
            .flatten()
            .is_some_and(|bc| bc.value.ca)
        {
            return Err("the CA certificate is not a CA (basicConstraints)".into());
        }
        let key =
            KeyPair::from_pem(key_pem).map_err(|e| format!("the CA key does not load ({e})"))?;
        if rcgen::PublicKeyData::subject_public_key_info(&key) != cert.public_key().raw {
            return Err("the CA key does not belong to the CA certificate".into());
        }
        let key_type = KeyType::of_key(&key).ok_or_else(|| {
            format!(
                "the CA key is {}, not a type dockertls issues with ({}); replace the CA with dockertls rotate --ca, or make a new PKI with dockertls init",
                key_description(&cert),
                KeyType::value_variants().iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
            )
        })?;
        let not_before = cert.validity().not_before.to_datetime();
        let not_after = cert.validity().not_after.to_datetime();
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)
            .map_err(|e| format!("the CA certificate cannot sign ({e})"))?;
        Ok(Ca {
            cert_pem: cert_pem.to_string(),
            not_before,
            not_after,
            key_type,
            issuer,
        })
    }

    /// Issues a leaf with `key`. It never outlives the CA; an expired CA gives `Error::Time`.
    pub fn issue(&self, leaf: &LeafRequest<'_>, key: KeyPair) -> Result<Issued, rcgen::Error> {
        let key_type = KeyType::of_key(&key).ok_or(rcgen::Error::UnsupportedSignatureAlgorithm)?;
        let signed = self.sign_leaf(leaf, &key, key_type.is_rsa())?;
        Ok(Issued {
            cert_pem: signed.cert_pem,
            key_pem: private_key_pem(&key)?,
            not_after: signed.not_after,
            cut_to_ca: signed.cut_to_ca,
        })
    }

    /// Issues a leaf for a public key whose private key lives elsewhere (a checked CSR's):
    /// the same profile as [`Ca::issue`]; `rsa` adds keyEncipherment as for RSA keys.
    pub fn issue_for_public_key(
        &self,
        leaf: &LeafRequest<'_>,
        public_key: &impl rcgen::PublicKeyData,
        rsa: bool,
    ) -> Result<Signed, rcgen::Error> {
        self.sign_leaf(leaf, public_key, rsa)
    }

    fn sign_leaf(
        &self,
        leaf: &LeafRequest<'_>,
        public_key: &impl rcgen::PublicKeyData,
        rsa: bool,
    ) -> Result<Signed, rcgen::Error> {
        let validity = validity(leaf.now, leaf.days, Some(self.not_after));
        // Callers refuse an expired CA first, with a message; this keeps a certificate that
        // ends before it starts from ever being signed.
        if validity.not_after < validity.not_before {
            return Err(rcgen::Error::Time);
        }
        let params = leaf_params(
            leaf.cn,
            leaf.sans,
            leaf.role,
            rsa,
            validity.not_before,
            validity.not_after,
        )?;
        let cert = params.signed_by(public_key, &self.issuer)?;
        Ok(Signed {
            cert_pem: cert.pem(),
            not_after: validity.not_after,
            cut_to_ca: validity.cut_to_issuer,
        })
    }
}

/// A certificate signed for a key dockertls does not hold.
#[derive(Debug, Clone)]
pub struct Signed {
    pub cert_pem: String,
    pub not_after: OffsetDateTime,
    /// The requested validity was cut short to end with the CA.
    pub cut_to_ca: bool,
}

impl Ca {
    /// Signs a certificate revocation list with the CA's key (see `crl`).
    pub fn sign_crl(
        &self,
        params: &rcgen::CertificateRevocationListParams,
    ) -> Result<rcgen::CertificateRevocationList, rcgen::Error> {
        params.signed_by(&self.issuer)
    }
}

/// The RFC 8410 (PKCS#8 v1) prefix of an Ed25519 private key; the 32-byte seed follows.
const ED25519_PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// aws-lc's PKCS#8 v2 Ed25519 encoding: the same fields with version 1, and the public key after.
const ED25519_PKCS8_V2_PREFIX: [u8; 16] = [
    0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// The private key as unencrypted PKCS#8 PEM that Go, OpenSSL and Python all load.
///
/// aws-lc writes Ed25519 keys as PKCS#8 v2 (with the public key), which OpenSSL 3.0 refuses
/// ("unsupported"), and so would curl and docker-py: those are re-encoded as RFC 8410's v1,
/// what `openssl genpkey -algorithm ed25519` writes.
pub fn private_key_pem(key: &KeyPair) -> Result<Zeroizing<String>, rcgen::Error> {
    let der = Zeroizing::new(key.serialize_der());
    if key.algorithm() != &rcgen::PKCS_ED25519 {
        return Ok(Zeroizing::new(key.serialize_pem()));
    }
    let seed = match der.strip_prefix(&ED25519_PKCS8_V2_PREFIX[..]) {
        Some(rest) if rest.len() >= 32 => &rest[..32],
        _ => match der.strip_prefix(&ED25519_PKCS8_V1_PREFIX[..]) {
            Some(rest) if rest.len() == 32 => rest,
            _ => return Err(rcgen::Error::CouldNotParseKeyPair),
        },
    };
    let mut v1 = Zeroizing::new(Vec::with_capacity(48));
    v1.extend_from_slice(&ED25519_PKCS8_V1_PREFIX);
    v1.extend_from_slice(seed);
    // pkcs8's codec (the one that also writes the encrypted CA key): its SecretDocument wipes
    // the copy of the key bytes it holds, and the PEM text comes back zeroizing.
    pkcs8::der::SecretDocument::try_from(v1.as_slice())
        .and_then(|document| document.to_pem("PRIVATE KEY", pkcs8::der::pem::LineEnding::LF))
        .map_err(|_| rcgen::Error::CouldNotParseKeyPair)
}

/// A leaf certificate's purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
}

/// 16 random bytes, positive and of fixed length: 126 bits of entropy, within RFC 5280's
/// 20-byte limit. rcgen would otherwise derive the serial from the public key.
fn random_serial() -> Result<SerialNumber, rcgen::Error> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| rcgen::Error::RingUnspecified)?;
    // Top bit clear keeps the INTEGER positive; the next bit set keeps its length at 16 bytes.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

fn ca_params(
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::default();
    let serial = random_serial()?;
    // A distinct name per CA keeps two dockertls CAs apart in a rollover bundle and in logs.
    let tag: String = serial.as_ref()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "dockertls");
    name.push(DnType::CommonName, format!("dockertls CA {tag}"));
    params.distinguished_name = name;
    params.serial_number = Some(serial);
    params.not_before = not_before;
    params.not_after = not_after;
    // Path length 0: this CA signs leaves only. rcgen marks basicConstraints and keyUsage
    // critical and writes the subject key identifier for a CA.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(params)
}

fn leaf_params(
    cn: &str,
    sans: &[Address],
    role: Role,
    rsa: bool,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, cn);
    params.distinguished_name = name;
    params.serial_number = Some(random_serial()?);
    params.not_before = not_before;
    params.not_after = not_after;
    // ExplicitNoCa writes basicConstraints CA:FALSE and the subject key identifier.
    params.is_ca = IsCa::ExplicitNoCa;
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if rsa {
        params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
    }
    params.extended_key_usages = vec![match role {
        Role::Server => ExtendedKeyUsagePurpose::ServerAuth,
        Role::Client => ExtendedKeyUsagePurpose::ClientAuth,
    }];
    params.subject_alt_names = sans
        .iter()
        .map(|address| match address {
            Address::Dns(dns) => Ok(SanType::DnsName(dns.as_str().try_into()?)),
            Address::Ip(ip) => Ok(SanType::IpAddress(*ip)),
        })
        .collect::<Result<_, rcgen::Error>>()?;
    Ok(params)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::net::IpAddr;

    use x509_parser::extensions::{GeneralName, ParsedExtension};
    use x509_parser::oid_registry::{
        OID_PKCS1_SHA1WITHRSA, OID_PKCS1_SHA256WITHRSA, OID_SIG_ECDSA_WITH_SHA256,
        OID_SIG_ECDSA_WITH_SHA384, OID_SIG_ED25519,
    };
    use x509_parser::pem::parse_x509_pem;
    use x509_parser::prelude::X509Certificate;

    use super::*;

    const ALL: [KeyType; 6] = [
        KeyType::EcdsaP256,
        KeyType::EcdsaP384,
        KeyType::Ed25519,
        KeyType::Rsa2048,
        KeyType::Rsa3072,
        KeyType::Rsa4096,
    ];

    #[test]
    fn renewal_is_due_when_a_third_of_the_lifetime_remains_capped_at_30_days() {
        use ::time::macros::datetime;
        let now = datetime!(2026-06-01 12:00 UTC);
        // (lifetime in days, renewal window): a third, at most 30 days. 365 days is the
        // recipe's leaves (Docker's docs), 1080 docker-machine's.
        let hour = Duration::hours(1);
        for (days, window) in [
            (1, hour * 8),
            (9, Duration::days(3)),
            (30, Duration::days(10)),
            (90, Duration::days(30)),
            (365, Duration::days(30)),
            (825, Duration::days(30)),
            (1080, Duration::days(30)),
        ] {
            let not_before = now - Duration::days(days) + window;
            let not_after = not_before + Duration::days(days);
            // Issued `days - window` ago: exactly the window remains now; due a second later.
            assert_eq!(
                renewal_due(not_before, not_after, Window::Rule),
                now,
                "{days}"
            );
            let second = Duration::seconds(1);
            assert!(!is_due(now, not_before, not_after, Window::Rule), "{days}");
            assert!(
                is_due(now + second, not_before, not_after, Window::Rule),
                "{days}"
            );
            // A certificate made now is not due, for its whole first two thirds.
            let fresh_after = now + Duration::days(days);
            assert!(!is_due(now, now, fresh_after, Window::Rule), "{days}");
            assert!(!is_due(
                fresh_after - window,
                now,
                fresh_after,
                Window::Rule
            ));
            assert!(is_due(
                fresh_after - window + second,
                now,
                fresh_after,
                Window::Rule
            ));
        }
        // dockertls backdates by 5 minutes: a 10-day certificate is due 3 days 8 hours
        // 1 minute 40 seconds before its end, so a second run the same day selects nothing.
        let made = validity(now, 10, None);
        let due = renewal_due(made.not_before, made.not_after, Window::Rule);
        assert_eq!(
            made.not_after - due,
            (Duration::days(10) + BACKDATE) / 3_i32
        );
        assert!(!is_due(
            now + Duration::days(6),
            made.not_before,
            made.not_after,
            Window::Rule
        ));
        assert!(is_due(
            now + Duration::days(8),
            made.not_before,
            made.not_after,
            Window::Rule
        ));
    }

    #[test]
    fn a_given_number_of_days_overrides_the_rule() {
        use ::time::macros::datetime;
        let now = datetime!(2026-06-01 12:00 UTC);
        let (not_before, not_after) = (now, now + Duration::days(9));
        assert_eq!(Window::from_option(None), Window::Rule);
        assert_eq!(
            renewal_due(not_before, not_after, Window::from_option(Some(5))),
            now + Duration::days(4)
        );
        // More than nine days: due the moment it is made.
        assert!(is_due(now, not_before, not_after, Window::Days(10)));
        assert!(!is_due(now, not_before, not_after, Window::Days(0)));
        // Absurd or broken input never panics.
        assert_eq!(
            renewal_due(not_before, not_after, Window::Days(i64::MAX)),
            EARLIEST
        );
        assert_eq!(renewal_due(not_after, not_before, Window::Rule), not_before);
        let _ = renewal_due(EARLIEST, LATEST, Window::Rule);
    }

    fn now() -> OffsetDateTime {
        ::time::macros::datetime!(2026-11-29 12:00:00.123 UTC)
    }

    fn issue(key_type: KeyType, leaf_days: i64, ca_days: i64) -> Pki {
        let sans = [
            Address::Dns("example.com".into()),
            Address::Ip("192.168.1.1".parse().unwrap()),
            Address::Ip("2001:db8::1".parse().unwrap()),
        ];
        issue_pki(&PkiRequest {
            key_type,
            now: now(),
            leaf_days,
            ca_days,
            server_cn: "example.com",
            server_sans: &sans,
            clients: &["alice".to_string(), "bob".to_string()],
        })
        .unwrap()
    }

    fn with_cert<T>(pem: &str, check: impl FnOnce(&X509Certificate<'_>) -> T) -> T {
        let (_, pem) = parse_x509_pem(pem.as_bytes()).unwrap();
        let cert = pem.parse_x509().unwrap();
        check(&cert)
    }

    /// Extension OIDs appear once each, and the profile's criticality holds.
    fn check_common(cert: &X509Certificate<'_>, key_type: KeyType) {
        let oids: Vec<String> = cert
            .extensions()
            .iter()
            .map(|e| e.oid.to_id_string())
            .collect();
        let unique: HashSet<&String> = oids.iter().collect();
        assert_eq!(oids.len(), unique.len(), "duplicate extension in {oids:?}");
        let serial = cert.raw_serial();
        assert_eq!(serial.len(), 16, "serial {serial:02x?}");
        assert!(
            serial[0] & 0x80 == 0 && serial[0] != 0,
            "serial not positive and minimal"
        );
        let alg = &cert.signature_algorithm.algorithm;
        assert_ne!(alg, &OID_PKCS1_SHA1WITHRSA);
        let expected = match key_type {
            KeyType::EcdsaP256 => OID_SIG_ECDSA_WITH_SHA256,
            KeyType::EcdsaP384 => OID_SIG_ECDSA_WITH_SHA384,
            KeyType::Ed25519 => OID_SIG_ED25519,
            _ => OID_PKCS1_SHA256WITHRSA,
        };
        assert_eq!(alg, &expected);
        let bc = cert.basic_constraints().unwrap().expect("basicConstraints");
        assert!(bc.critical);
        let ku = cert.key_usage().unwrap().expect("keyUsage");
        assert!(ku.critical);
        assert!(cert.iter_extensions().any(|e| matches!(
            e.parsed_extension(),
            ParsedExtension::SubjectKeyIdentifier(_)
        )));
    }

    fn ski(cert: &X509Certificate<'_>) -> Vec<u8> {
        cert.iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
                _ => None,
            })
            .unwrap()
    }

    fn aki(cert: &X509Certificate<'_>) -> Option<Vec<u8>> {
        cert.iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    aki.key_identifier.as_ref().map(|id| id.0.to_vec())
                }
                _ => None,
            })
    }

    #[test]
    fn every_key_type_gives_the_documented_profile() {
        for key_type in ALL {
            let pki = issue(key_type, 365, 3650);
            let (_, ca_pem) = parse_x509_pem(pki.ca.cert_pem.as_bytes()).unwrap();
            let ca = ca_pem.parse_x509().unwrap();
            check_common(&ca, key_type);
            let bc = ca.basic_constraints().unwrap().unwrap().value;
            assert!(bc.ca);
            assert_eq!(bc.path_len_constraint, Some(0));
            let ku = ca.key_usage().unwrap().unwrap().value;
            assert!(ku.key_cert_sign() && ku.crl_sign() && !ku.digital_signature());
            assert!(
                ca.extended_key_usage().unwrap().is_none(),
                "a CA carries no EKU"
            );
            assert!(ca.verify_signature(None).is_ok(), "CA self-signature");
            assert_eq!(
                ca.validity().not_before.timestamp(),
                now().unix_timestamp() - 300
            );
            assert_eq!(
                ca.validity().not_after.timestamp(),
                (now() + Duration::days(3650)).unix_timestamp()
            );
            let ca_ski = ski(&ca);

            let leaves = std::iter::once(("server", &pki.server))
                .chain(pki.clients.iter().map(|(n, i)| (n.as_str(), i)));
            for (name, issued) in leaves {
                with_cert(&issued.cert_pem, |cert| {
                    check_common(cert, key_type);
                    assert!(!cert.basic_constraints().unwrap().unwrap().value.ca);
                    let ku = cert.key_usage().unwrap().unwrap().value;
                    assert!(ku.digital_signature() && !ku.key_cert_sign());
                    assert_eq!(ku.key_encipherment(), key_type.is_rsa(), "{key_type:?}");
                    let eku = cert.extended_key_usage().unwrap().unwrap();
                    assert!(!eku.critical);
                    let server = name == "server";
                    assert_eq!(eku.value.server_auth, server);
                    assert_eq!(eku.value.client_auth, !server);
                    assert_eq!(aki(cert), Some(ca_ski.clone()), "AKI names the CA");
                    assert!(cert.verify_signature(Some(ca.public_key())).is_ok());
                    assert_eq!(cert.issuer(), ca.subject());
                    let cn = cert.subject().iter_common_name().next().unwrap();
                    let cn = cn.as_str().unwrap();
                    assert_eq!(cn, if server { "example.com" } else { name });
                    assert_eq!(
                        cert.validity().not_after.timestamp(),
                        (now() + Duration::days(365)).unix_timestamp()
                    );
                });
                assert!(issued.key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
            }
        }
    }

    #[test]
    fn server_sans_are_exact_and_ipv4_is_four_bytes() {
        let pki = issue(KeyType::EcdsaP256, 30, 60);
        with_cert(&pki.server.cert_pem, |cert| {
            let san = cert.subject_alternative_name().unwrap().unwrap();
            assert!(!san.critical);
            let names: Vec<String> = san
                .value
                .general_names
                .iter()
                .map(|name| match name {
                    GeneralName::DNSName(dns) => format!("dns:{dns}"),
                    GeneralName::IPAddress(bytes) => {
                        let ip = match bytes.len() {
                            4 => IpAddr::from(<[u8; 4]>::try_from(*bytes).unwrap()),
                            16 => IpAddr::from(<[u8; 16]>::try_from(*bytes).unwrap()),
                            n => panic!("IP SAN of {n} bytes"),
                        };
                        format!("ip{}:{ip}", bytes.len())
                    }
                    other => panic!("unexpected SAN {other:?}"),
                })
                .collect();
            assert_eq!(
                names,
                ["dns:example.com", "ip4:192.168.1.1", "ip16:2001:db8::1"]
            );
        });
        with_cert(&pki.clients[0].1.cert_pem, |cert| {
            assert!(cert.subject_alternative_name().unwrap().is_none());
        });
    }

    #[test]
    fn serials_differ_even_for_the_same_request() {
        let a = issue(KeyType::EcdsaP256, 30, 60);
        let b = issue(KeyType::EcdsaP256, 30, 60);
        let serial = |pem: &str| with_cert(pem, |c| c.raw_serial().to_vec());
        let all: HashSet<Vec<u8>> = [&a, &b]
            .iter()
            .flat_map(|p| {
                [
                    serial(&p.ca.cert_pem),
                    serial(&p.server.cert_pem),
                    serial(&p.clients[0].1.cert_pem),
                ]
            })
            .collect();
        assert_eq!(all.len(), 6);
        assert_ne!(
            with_cert(&a.ca.cert_pem, |c| c.subject().to_string()),
            with_cert(&b.ca.cert_pem, |c| c.subject().to_string()),
            "two CAs have distinct names"
        );
    }

    #[test]
    fn a_leaf_never_outlives_its_ca() {
        let pki = issue(KeyType::EcdsaP256, 10, 10);
        assert_eq!(pki.server.not_after, pki.ca.not_after);
        with_cert(&pki.server.cert_pem, |cert| {
            with_cert(&pki.ca.cert_pem, |ca| {
                assert_eq!(cert.validity().not_after, ca.validity().not_after)
            })
        });
    }

    #[test]
    fn ed25519_keys_are_pkcs8_v1_and_load_back_as_the_same_key() {
        let key = KeyType::Ed25519.generate().unwrap();
        let pem = private_key_pem(&key).unwrap();
        let (label, block) = pkcs8::der::SecretDocument::from_pem(&pem).unwrap();
        assert_eq!(label, "PRIVATE KEY");
        assert_eq!(block.as_bytes().len(), 48);
        assert_eq!(block.as_bytes()[..16], ED25519_PKCS8_V1_PREFIX);
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n") && !pem.contains('\r'));
        let loaded = KeyPair::from_pem(&pem).unwrap();
        assert_eq!(loaded.public_key_pem(), key.public_key_pem());
        // Other key types keep aws-lc's encoding, which OpenSSL reads.
        let ec = KeyType::EcdsaP256.generate().unwrap();
        assert_eq!(*private_key_pem(&ec).unwrap(), ec.serialize_pem());
    }

    #[test]
    fn secrets_are_elided_from_debug_output() {
        let pki = issue(KeyType::EcdsaP256, 1, 1);
        let debug = format!("{pki:?}");
        assert!(!debug.contains("PRIVATE KEY"), "{debug}");
        assert!(debug.contains("[secret key elided]"));
    }

    // ---- dates: nothing overflows, every certificate's dates encode as RFC 5280 says ----

    use ::time::macros::datetime;
    use proptest::prelude::*;

    /// Any instant `time` can hold without its large-dates feature, to the nanosecond.
    fn any_instant() -> impl Strategy<Value = OffsetDateTime> {
        (
            OffsetDateTime::new_utc(::time::Date::MIN, ::time::Time::MIDNIGHT).unix_timestamp()
                ..=LATEST.unix_timestamp(),
            0u32..1_000_000_000,
        )
            .prop_map(|(secs, nanos)| {
                OffsetDateTime::from_unix_timestamp(secs)
                    .unwrap()
                    .replace_nanosecond(nanos)
                    .unwrap()
            })
    }

    /// The dates the review named, and their neighbours.
    const EDGES: [OffsetDateTime; 10] = [
        datetime!(1949-12-31 23:59:59 UTC),
        datetime!(1950-01-01 00:00:00 UTC),
        datetime!(1950-01-01 00:04:59 UTC),
        datetime!(1970-01-01 00:00:00 UTC),
        datetime!(2049-12-31 23:59:59 UTC),
        datetime!(2050-01-01 00:00:00 UTC),
        datetime!(2050-01-01 00:04:59 UTC),
        datetime!(9999-12-31 23:54:59 UTC),
        datetime!(9999-12-31 23:59:58 UTC),
        LATEST,
    ];

    fn edge_or_any() -> impl Strategy<Value = OffsetDateTime> {
        prop_oneof![proptest::sample::select(&EDGES[..]), any_instant()]
    }

    proptest! {
        #[test]
        fn add_days_saturates_and_is_exact_in_range(from in edge_or_any(), days in any::<i64>()) {
            let t = add_days(from, days);
            prop_assert!((EARLIEST..=LATEST).contains(&t));
            if let Some(exact) = i128::from(from.unix_timestamp())
                .checked_add(i128::from(days) * 86_400)
                .filter(|s| (EARLIEST.unix_timestamp().into()..=LATEST.unix_timestamp().into()).contains(s))
            {
                prop_assert_eq!(i128::from(t.unix_timestamp()), exact);
            }
            // Monotone: one more day never gives an earlier date.
            prop_assert!(add_days(from, days.saturating_add(1)) >= t);
        }

        #[test]
        fn validity_stays_in_range_and_never_outlives_the_issuer(
            now in edge_or_any(),
            days in prop_oneof![Just(1i64), Just(36_500), any::<i64>()],
            // A certificate's date is never before year 0: x509-parser reads four digits.
            issuer in proptest::option::of(edge_or_any().prop_map(|t| t.max(EARLIEST))),
        ) {
            let v = validity(now, days, issuer);
            for t in [v.not_before, v.not_after] {
                prop_assert!((EARLIEST..=LATEST).contains(&t));
                prop_assert_eq!(t.nanosecond(), 0);
            }
            // A clock before year 0 is taken as year 0: nothing earlier can be written.
            let now_in_range = now.clamp(EARLIEST, LATEST);
            prop_assert!(v.not_before <= now_in_range);
            prop_assert!(now_in_range - v.not_before <= BACKDATE + Duration::seconds(1));
            if let Some(end) = issuer {
                prop_assert!(v.not_after <= end);
                prop_assert_eq!(v.cut_to_issuer, end < add_days(truncate_to_second(now_in_range), days.max(0)));
                if end >= now {
                    prop_assert!(v.not_before <= v.not_after);
                }
            } else {
                prop_assert!(v.not_before <= v.not_after);
                prop_assert!(!v.cut_to_issuer);
            }
        }

        #[test]
        fn reissue_days_is_always_a_validity_dockertls_issues(
            not_before in edge_or_any(),
            not_after in edge_or_any(),
            default in 1i64..=36_500,
        ) {
            let days = reissue_days(not_before, not_after, default, 36_500);
            prop_assert!((1..=36_500).contains(&days));
            if not_after <= not_before {
                prop_assert_eq!(days, default);
            }
            let _ = days_left(not_before, not_after);
        }
    }

    /// Whether a validity time was written as GeneralizedTime (else UTCTime).
    fn generalized(time: &x509_parser::time::ASN1Time) -> bool {
        format!("{time:?}").contains("generalized: true")
    }

    /// A CA and a leaf made at each edge date, for 1 day and for 100 years: the dates read back
    /// exactly, UTCTime for 1950-2049 and GeneralizedTime otherwise (RFC 5280 4.1.2.5).
    #[test]
    fn certificates_at_the_edge_dates_encode_their_dates_as_rfc_5280_says() {
        for now in EDGES {
            for days in [1, 36_500] {
                let key = KeyType::EcdsaP256.generate().unwrap();
                let (issued, ca) = new_ca(key, now, days).unwrap();
                let leaf_key = KeyType::EcdsaP256.generate().unwrap();
                let leaf = ca
                    .issue(
                        &LeafRequest {
                            cn: "alice",
                            sans: &[],
                            role: Role::Client,
                            now,
                            days: 36_500,
                        },
                        leaf_key,
                    )
                    .unwrap();
                assert_eq!(
                    leaf.not_after, ca.not_after,
                    "{now}: the leaf ends with its CA"
                );
                assert_eq!(
                    leaf.cut_to_ca,
                    days == 1 && ca.not_after < LATEST,
                    "{now} {days}"
                );
                for pem in [&issued.cert_pem, &leaf.cert_pem] {
                    with_cert(pem, |cert| {
                        let v = cert.validity();
                        let expected = validity(now, days, None);
                        assert_eq!(v.not_before.to_datetime(), expected.not_before, "{now}");
                        assert_eq!(v.not_after.to_datetime(), expected.not_after, "{now}");
                        for t in [&v.not_before, &v.not_after] {
                            let year = t.to_datetime().year();
                            assert_eq!(generalized(t), !(1950..2050).contains(&year), "{t:?}");
                        }
                    });
                }
            }
        }
    }

    #[test]
    fn an_expired_ca_signs_nothing() {
        let key = KeyType::EcdsaP256.generate().unwrap();
        let (_, ca) = new_ca(key, datetime!(2020-01-01 00:00:00 UTC), 1).unwrap();
        let leaf = LeafRequest {
            cn: "alice",
            sans: &[],
            role: Role::Client,
            now: datetime!(2020-01-03 00:00:00 UTC),
            days: 30,
        };
        let key = KeyType::EcdsaP256.generate().unwrap();
        assert!(matches!(ca.issue(&leaf, key), Err(rcgen::Error::Time)));
    }

    #[test]
    fn the_latest_date_is_generalized_time_99991231235959z() {
        let key = KeyType::EcdsaP256.generate().unwrap();
        let (issued, _) = new_ca(key, datetime!(9999-06-01 00:00:00 UTC), 36_500).unwrap();
        use rustls_pki_types::pem::PemObject;
        let der =
            rustls_pki_types::CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap();
        let needle = b"\x18\x0f99991231235959Z";
        assert!(der.windows(needle.len()).any(|w| w == needle));
    }
}
