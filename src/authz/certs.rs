//! The trust the plugin decides from: the CA bundle (`ca.pem`) a client certificate must chain
//! to, and the CA-signed CRL (`crl.pem`) that revokes certificates by serial.

use std::collections::HashMap;
use std::sync::Mutex;

use rustls_pki_types::pem::{PemObject, SectionKind};
use x509_parser::prelude::{ASN1Time, FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

/// The CA certificates of `ca.pem` (a rollover bundle may hold several), and the client
/// certificates whose signature has been checked against them (a certificate's DER → the
/// validity of its CA): every API call of a client carries the same certificate, and a
/// signature check is the costliest step of a decision. Dates are checked on every call.
#[derive(Debug)]
pub struct Trust {
    cas: Vec<Vec<u8>>,
    verified: Mutex<HashMap<Vec<u8>, (i64, i64)>>,
}

/// The most signature results kept; past it the cache starts again (a fleet has fewer
/// client certificates; a flood of distinct ones costs a signature check each, no memory).
const MAX_VERIFIED: usize = 10_000;

impl Trust {
    /// Reads a PEM bundle of CA certificates.
    pub fn parse(bytes: &[u8]) -> Result<Trust, String> {
        let bundle = crate::audit::material::parse_certificates(bytes)?;
        if bundle.holds_private_key {
            return Err("holds a private key: it must hold only CA certificates".into());
        }
        for der in &bundle.ders {
            X509Certificate::from_der(der)
                .map_err(|_| "holds a certificate that does not parse".to_string())?;
        }
        Ok(Trust {
            cas: bundle.ders,
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// Checks that `leaf` is signed by one of the CAs and that both are valid at `now`.
    pub fn verify(&self, leaf: &X509Certificate<'_>, now: ASN1Time) -> Result<(), String> {
        let cached = self.cache().get(leaf.as_raw()).copied();
        let (ca_from, ca_until) = match cached {
            Some(validity) => validity,
            None => {
                let validity = self.check_signature(leaf)?;
                let mut cache = self.cache();
                if cache.len() >= MAX_VERIFIED {
                    cache.clear();
                }
                cache.insert(leaf.as_raw().to_vec(), validity);
                validity
            }
        };
        let at = now.timestamp();
        if at < ca_from || at > ca_until {
            return Err("its CA certificate is not valid now".into());
        }
        if !leaf.validity().is_valid_at(now) {
            return Err("it is not valid now (expired or not yet valid)".into());
        }
        Ok(())
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, (i64, i64)>> {
        match self.verified.lock() {
            Ok(cache) => cache,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The validity (not before, not after) of the CA whose signature `leaf` carries.
    fn check_signature(&self, leaf: &X509Certificate<'_>) -> Result<(i64, i64), String> {
        let mut issuer_seen = false;
        for der in &self.cas {
            let Ok((_, ca)) = X509Certificate::from_der(der) else {
                continue;
            };
            if ca.subject().as_raw() != leaf.issuer().as_raw() {
                continue;
            }
            issuer_seen = true;
            if leaf.verify_signature(Some(ca.public_key())).is_err() {
                continue;
            }
            let validity = ca.validity();
            return Ok((
                validity.not_before.timestamp(),
                validity.not_after.timestamp(),
            ));
        }
        Err(if issuer_seen {
            "its signature does not verify against the CA in ca.pem".into()
        } else {
            "it was not issued by the CA in ca.pem".into()
        })
    }

    /// The CA in the bundle that signed `crl`, if any.
    fn signer_of(&self, crl: &CertificateRevocationList<'_>) -> Option<()> {
        self.cas.iter().find_map(|der| {
            let (_, ca) = X509Certificate::from_der(der).ok()?;
            (ca.subject().as_raw() == crl.issuer().as_raw()
                && crl.verify_signature(ca.public_key()).is_ok())
            .then_some(())
        })
    }
}

/// A verified CRL: the revoked serials of one CA.
#[derive(Debug, Clone)]
pub struct Crl {
    issuer: Vec<u8>,
    /// Serial (big-endian, no leading zeros) → the revocation reason, when given.
    revoked: HashMap<Vec<u8>, Option<String>>,
    /// nextUpdate, when present.
    pub next_update: Option<ASN1Time>,
    /// thisUpdate.
    pub this_update: ASN1Time,
    /// The CRL number (big-endian, no leading zeros); None when the CRL has none.
    number: Option<Vec<u8>>,
}

/// The largest CRL file read (a CRL of a few hundred thousand serials).
pub const MAX_CRL_BYTES: u64 = 16 << 20;

impl Crl {
    /// Reads one PEM `X509 CRL` and checks its signature against `trust`.
    pub fn parse(bytes: &[u8], trust: &Trust) -> Result<Crl, String> {
        let mut ders = Vec::new();
        for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(bytes) {
            match section {
                Ok((SectionKind::Crl, der)) => ders.push(der),
                Ok(_) => {}
                Err(_) => return Err("has a malformed PEM block".into()),
            }
        }
        let der = match ders.as_slice() {
            [one] => one,
            [] => return Err("holds no X509 CRL block".into()),
            _ => return Err("holds more than one X509 CRL block".into()),
        };
        let (_, crl) = CertificateRevocationList::from_der(der)
            .map_err(|_| "holds a CRL that does not parse".to_string())?;
        if trust.signer_of(&crl).is_none() {
            return Err("is not signed by the CA in ca.pem (signature does not verify)".into());
        }
        let revoked = crl
            .iter_revoked_certificates()
            .map(|entry| {
                let reason = entry.reason_code().map(|(_, code)| code.to_string());
                (normal_serial(entry.raw_serial()), reason)
            })
            .collect();
        Ok(Crl {
            issuer: crl.issuer().as_raw().to_vec(),
            revoked,
            next_update: crl.next_update(),
            this_update: crl.last_update(),
            number: crl.crl_number().map(|n| normal_serial(&n.to_bytes_be())),
        })
    }

    /// The CRL number as text (decimal when it fits in 128 bits, else hex).
    pub fn number_text(&self) -> String {
        match &self.number {
            None => "without a number".into(),
            Some(bytes) if bytes.len() <= 16 => {
                let value = bytes.iter().fold(0u128, |n, b| (n << 8) | u128::from(*b));
                format!("#{value}")
            }
            Some(bytes) => format!("#0x{}", serial_hex(bytes)),
        }
    }

    /// Review item 2: why `self` must not replace `in_force`: a list of the same CA with a
    /// lower CRL number (or none, where the one in force has one) is an older list put back,
    /// and would let the clients revoked since back in. A list of another CA (a new PKI) is
    /// not compared.
    pub fn older_than(&self, in_force: &Crl) -> Option<String> {
        if self.issuer != in_force.issuer {
            return None;
        }
        let key = |n: &Option<Vec<u8>>| n.as_ref().map(|b| (b.len(), b.clone()));
        (key(&self.number) < key(&in_force.number)).then(|| {
            format!(
                "is CRL {}, older than CRL {} in force (a list put back would let the clients revoked since in again)",
                self.number_text(),
                in_force.number_text()
            )
        })
    }

    /// Whether `cert` is on this CRL: same issuer, same serial; with the reason when given.
    pub fn revocation(&self, cert: &X509Certificate<'_>) -> Option<Option<&str>> {
        if cert.issuer().as_raw() != self.issuer.as_slice() {
            return None;
        }
        self.revoked
            .get(&normal_serial(cert.raw_serial()))
            .map(|reason| reason.as_deref())
    }

    /// How many serials it revokes.
    pub fn len(&self) -> usize {
        self.revoked.len()
    }

    /// Whether it revokes nothing.
    pub fn is_empty(&self) -> bool {
        self.revoked.is_empty()
    }
}

/// A serial's DER integer bytes without leading zero bytes (the sign padding).
pub fn normal_serial(raw: &[u8]) -> Vec<u8> {
    let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
    raw[start..].to_vec()
}

/// A serial as lower-case hex, no leading zeros (as `openssl x509 -serial` shows it, in
/// lower case).
pub fn serial_hex(raw: &[u8]) -> String {
    let serial = normal_serial(raw);
    if serial.is_empty() {
        return "00".into();
    }
    serial.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::time::macros::datetime;

    fn ca() -> crate::pki::Ca {
        let now = datetime!(2026-11-30 12:00:00 UTC);
        let key = crate::cli::KeyType::EcdsaP256.generate().unwrap();
        crate::pki::new_ca(key, now, 3650).unwrap().1
    }

    fn crl(ca: &crate::pki::Ca, trust: &Trust, number: u64) -> Crl {
        let now = datetime!(2026-11-30 12:00:00 UTC);
        let signed = crate::crl::issue(ca, number, &[], now).unwrap();
        Crl::parse(signed.pem.as_bytes(), trust).unwrap()
    }

    /// Review item 2: a list of the same CA with a lower number is older (refused); the same
    /// or a higher number is not; a list of another CA (a new PKI) is never compared.
    #[test]
    fn a_lower_crl_number_of_the_same_ca_is_older() {
        let (ca, other) = (ca(), ca());
        let bundle = format!("{}{}", ca.cert_pem, other.cert_pem);
        let trust = Trust::parse(bundle.as_bytes()).unwrap();
        let (one, two, big) = (
            crl(&ca, &trust, 1),
            crl(&ca, &trust, 2),
            crl(&ca, &trust, 256),
        );
        let why = one.older_than(&two).expect("CRL #1 replaced #2");
        assert!(why.contains("#1") && why.contains("#2"), "{why}");
        assert!(
            two.older_than(&big).is_some(),
            "#2 replaced #256 (bytes compared as text?)"
        );
        assert!(big.older_than(&two).is_none());
        assert!(two.older_than(&two).is_none());
        assert!(crl(&other, &trust, 1).older_than(&big).is_none());
    }
}
