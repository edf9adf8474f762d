//! Certificate revocation lists: what the PKI remembers about revoked certificates, issuing
//! the X.509 v2 CRL the authorization plugin reads (pure: takes `now`, returns PEM), and
//! reading one back for `verify`. No file I/O.
//!
//! dockerd itself has no CRL support; `dockertls authz serve` checks every client certificate
//! dockerd hands it against this list.

use ::time::{Duration, OffsetDateTime};
use rcgen::{
    CertificateRevocationListParams, KeyIdMethod, RevocationReason, RevokedCertParams, SerialNumber,
};
use serde::{Deserialize, Serialize};
use x509_parser::prelude::FromDer;

use crate::pki::{self, Ca};

/// How long a CRL is valid (nextUpdate - thisUpdate). A month: long enough that a daily or
/// weekly `dockertls crl refresh` timer that misses a few runs (a laptop off, the CA key on a
/// machine that is seldom on) never lets it lapse, short enough that a CRL replaced by an
/// attacker with an older one is seen as stale within weeks. A CRL past nextUpdate still
/// revokes what it lists (the plugin and verify only warn): the date is a freshness signal, not
/// a switch that would re-admit revoked users.
pub const CRL_DAYS: i64 = 30;

/// A refresh is due when less than this remains (the timer re-signs only then, so a daily
/// timer does not rewrite the file, and wake the plugin, every day).
pub const REFRESH_WITHIN_DAYS: i64 = 10;

/// Clock skew allowance: a CRL is valid from a little before it was made, as certificates are.
const BACKDATE: Duration = Duration::minutes(5);

/// Why a certificate was revoked: the RFC 5280 reason codes a person can choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    Unspecified,
    KeyCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    PrivilegeWithdrawn,
}

impl Reason {
    /// The name `--reason` takes and the state file stores.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Unspecified => "unspecified",
            Reason::KeyCompromise => "key-compromise",
            Reason::AffiliationChanged => "affiliation-changed",
            Reason::Superseded => "superseded",
            Reason::CessationOfOperation => "cessation-of-operation",
            Reason::PrivilegeWithdrawn => "privilege-withdrawn",
        }
    }

    fn code(self) -> RevocationReason {
        match self {
            Reason::Unspecified => RevocationReason::Unspecified,
            Reason::KeyCompromise => RevocationReason::KeyCompromise,
            Reason::AffiliationChanged => RevocationReason::AffiliationChanged,
            Reason::Superseded => RevocationReason::Superseded,
            Reason::CessationOfOperation => RevocationReason::CessationOfOperation,
            Reason::PrivilegeWithdrawn => RevocationReason::PrivilegeWithdrawn,
        }
    }
}

fn unspecified() -> Reason {
    Reason::Unspecified
}

/// One revoked certificate, as the state file keeps it (`"revoked": [...]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// The certificate's serial number, lower-case hex of its DER bytes (as `client list`).
    pub serial: String,
    /// The client (the certificate's CN).
    pub name: String,
    /// When it was revoked.
    #[serde(with = "::time::serde::rfc3339")]
    pub at: OffsetDateTime,
    #[serde(default = "unspecified")]
    pub reason: Reason,
}

/// A certificate `rotate --revoke-old` superseded: revoked once `revoke_after` has passed (by
/// the next `rotate` or `crl refresh`), so its user has time to install the new folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Superseded {
    pub serial: String,
    pub name: String,
    #[serde(with = "::time::serde::rfc3339")]
    pub revoke_after: OffsetDateTime,
}

/// A signed CRL and what it says.
#[derive(Debug, Clone)]
pub struct Crl {
    pub pem: String,
    pub number: u64,
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
}

/// Parses a serial as the state file keeps it (hex, an even number of digits, at most 20
/// bytes as RFC 5280 allows, an optional `:` between bytes).
pub fn parse_serial(text: &str) -> Result<Vec<u8>, String> {
    let digits: String = text.chars().filter(|c| *c != ':').collect();
    let hex = digits.chars().all(|c| c.is_ascii_hexdigit());
    let bytes = (hex && digits.len().is_multiple_of(2) && !digits.is_empty())
        .then(|| {
            (0..digits.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(digits.get(i..i + 2)?, 16).ok())
                .collect::<Option<Vec<u8>>>()
        })
        .flatten()
        .filter(|bytes| bytes.len() <= 21);
    bytes.ok_or_else(|| {
        format!(
            "serial '{}' is not a certificate serial in hex",
            crate::escape::value(text)
        )
    })
}

/// Signs CRL number `number` listing `revoked`, valid from `now` for [`CRL_DAYS`] days (never
/// past the CA's end). The CA must be valid at `now` (callers refuse an expired CA first).
pub fn issue(
    ca: &Ca,
    number: u64,
    revoked: &[Revocation],
    now: OffsetDateTime,
) -> Result<Crl, String> {
    let this_update = now
        .replace_nanosecond(0)
        .unwrap_or(now)
        .checked_sub(BACKDATE)
        .unwrap_or(now)
        .clamp(pki::EARLIEST, pki::LATEST);
    let next_update = pki::add_days(this_update, CRL_DAYS).min(ca.not_after);
    if next_update <= this_update {
        return Err("the CA has expired: it cannot sign a revocation list".into());
    }
    let revoked_certs = revoked
        .iter()
        .map(|entry| {
            Ok(RevokedCertParams {
                serial_number: SerialNumber::from_slice(&parse_serial(&entry.serial)?),
                revocation_time: entry.at.replace_nanosecond(0).unwrap_or(entry.at),
                reason_code: Some(entry.reason.code()),
                invalidity_date: None,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let params = CertificateRevocationListParams {
        this_update,
        next_update,
        crl_number: SerialNumber::from_slice(&number.to_be_bytes()),
        issuing_distribution_point: None,
        revoked_certs,
        // The authority key identifier must be the CA's subject key identifier, whichever
        // way the CA computed it (rcgen's or OpenSSL's SHA-1 for a CA made elsewhere).
        key_identifier_method: ca_key_id(&ca.cert_pem).unwrap_or(KeyIdMethod::Sha256),
    };
    let crl = ca
        .sign_crl(&params)
        .map_err(|e| format!("cannot sign the revocation list ({e})"))?;
    let pem = crl
        .pem()
        .map_err(|e| format!("cannot encode the revocation list ({e})"))?;
    Ok(Crl {
        pem,
        number,
        this_update,
        next_update,
    })
}

/// The CA certificate's subject key identifier, as rcgen's pre-specified key id.
fn ca_key_id(cert_pem: &str) -> Option<KeyIdMethod> {
    use rustls_pki_types::pem::PemObject;
    let der = rustls_pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()).ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
    cert.extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => {
                Some(KeyIdMethod::PreSpecified(id.0.to_vec()))
            }
            _ => None,
        })
}

/// Review item 2: whether the PEM CRL `older` is an older list of the same CA than `newer`
/// (a lower CRL number, or none where `newer` has one); read without a signature check (both
/// are files dockertls wrote; a file that does not parse is never called older).
pub fn is_older(older: &[u8], newer: &[u8]) -> Option<(u64, u64)> {
    use rustls_pki_types::pem::PemObject;
    let parse = |pem: &[u8]| {
        let der = rustls_pki_types::CertificateRevocationListDer::from_pem_slice(pem).ok()?;
        let (_, crl) =
            x509_parser::revocation_list::CertificateRevocationList::from_der(&der).ok()?;
        let number = crl
            .crl_number()
            .map_or(Some(0), |n| u64::try_from(n.clone()).ok())?;
        Some((crl.issuer().as_raw().to_vec(), number))
    };
    let (old_issuer, old_number) = parse(older)?;
    let (new_issuer, new_number) = parse(newer)?;
    (old_issuer == new_issuer && old_number < new_number).then_some((old_number, new_number))
}

/// What a CRL file says, once its signature has been checked against a CA.
#[derive(Debug, Clone)]
pub struct CrlInfo {
    pub number: Option<u64>,
    pub this_update: OffsetDateTime,
    pub next_update: Option<OffsetDateTime>,
    /// Serials, lower-case hex.
    pub serials: Vec<String>,
}

/// Reads a PEM CRL and checks it was signed by one of the CA certificates in `ca_pem` (a
/// bundle during a CA rollover). The error says why it cannot be used.
pub fn read(crl_pem: &[u8], ca_pem: &[u8]) -> Result<CrlInfo, String> {
    use rustls_pki_types::pem::PemObject;
    let der = rustls_pki_types::CertificateRevocationListDer::from_pem_slice(crl_pem)
        .map_err(|_| "is not a PEM revocation list (X509 CRL)".to_string())?;
    let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(&der)
        .map_err(|e| format!("does not parse as a revocation list ({e})"))?;
    let cas: Vec<_> = rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem)
        .filter_map(Result::ok)
        .collect();
    let signed = cas.iter().any(|ca| {
        x509_parser::parse_x509_certificate(ca).is_ok_and(|(_, ca)| {
            ca.subject().as_raw() == crl.issuer().as_raw()
                && crl.verify_signature(ca.public_key()).is_ok()
        })
    });
    if !signed {
        return Err("is not signed by the CA in ca.pem".into());
    }
    let number = crl.crl_number().and_then(|n| u64::try_from(n.clone()).ok());
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    Ok(CrlInfo {
        number,
        this_update: crl.last_update().to_datetime(),
        next_update: crl.next_update().map(|t| t.to_datetime()),
        serials: crl
            .iter_revoked_certificates()
            .map(|r| hex(r.raw_serial()))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::time::macros::datetime;

    fn ca(now: OffsetDateTime, days: i64) -> Ca {
        let key = crate::cli::KeyType::EcdsaP256.generate().unwrap();
        pki::new_ca(key, now, days).unwrap().1
    }

    #[test]
    fn a_crl_lists_the_revoked_serials_and_verifies_against_its_ca_only() {
        let now = datetime!(2026-11-30 12:00:00 UTC);
        let (ca, other) = (ca(now, 3650), ca(now, 3650));
        let revoked = vec![Revocation {
            serial: "4a0b".into(),
            name: "bob".into(),
            at: now,
            reason: Reason::KeyCompromise,
        }];
        let crl = issue(&ca, 7, &revoked, now).unwrap();
        assert_eq!(crl.next_update - crl.this_update, Duration::days(CRL_DAYS));
        let info = read(crl.pem.as_bytes(), ca.cert_pem.as_bytes()).unwrap();
        assert_eq!(info.serials, ["4a0b"]);
        assert_eq!(info.number, Some(7));
        assert_eq!(info.next_update, Some(crl.next_update));
        let forged = read(crl.pem.as_bytes(), other.cert_pem.as_bytes()).unwrap_err();
        assert!(forged.contains("not signed by the CA"), "{forged}");
        // A rollover bundle: the signing CA second.
        let bundle = format!("{}{}", other.cert_pem, ca.cert_pem);
        assert!(read(crl.pem.as_bytes(), bundle.as_bytes()).is_ok());
        assert!(read(b"junk", ca.cert_pem.as_bytes()).is_err());
        // Review item 2: a lower number of the same CA is older; another CA's never is.
        let eight = issue(&ca, 8, &[], now).unwrap();
        assert_eq!(
            is_older(crl.pem.as_bytes(), eight.pem.as_bytes()),
            Some((7, 8))
        );
        assert_eq!(is_older(eight.pem.as_bytes(), crl.pem.as_bytes()), None);
        let foreign = issue(&other, 1, &[], now).unwrap();
        assert_eq!(is_older(foreign.pem.as_bytes(), eight.pem.as_bytes()), None);
        assert_eq!(is_older(b"junk", eight.pem.as_bytes()), None);
    }

    #[test]
    fn a_crl_never_outlives_its_ca_and_an_expired_ca_signs_none() {
        let now = datetime!(2026-11-30 12:00:00 UTC);
        let short = ca(now, 3);
        let crl = issue(&short, 1, &[], now).unwrap();
        assert_eq!(crl.next_update, short.not_after);
        let late = now + Duration::days(4);
        assert!(issue(&short, 2, &[], late).is_err());
    }

    #[test]
    fn serials_are_hex_bytes_only() {
        assert_eq!(parse_serial("00ff").unwrap(), [0, 255]);
        assert_eq!(parse_serial("0a:0b").unwrap(), [10, 11]);
        for bad in ["", "abc", "zz", "+1", "é1", &"00".repeat(22)] {
            assert!(parse_serial(bad).is_err(), "{bad}");
        }
    }
}
