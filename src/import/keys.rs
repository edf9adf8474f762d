//! An imported key in the one form dockertls writes: unencrypted PKCS#8 PEM (what Go,
//! OpenSSL and Python all load). Reads PKCS#8, PKCS#1 and SEC1, encrypted PKCS#8 (OpenSSL 3's
//! `genrsa -aes256`) and OpenSSL's legacy `Proc-Type: 4,ENCRYPTED` form (OpenSSL 1.x's).

use std::path::Path;

use aws_lc_rs::encoding::AsDer;
use rustls_pki_types::pem::{PemObject, SectionKind};
use zeroize::Zeroizing;

use super::legacy_pem::{self, LegacyError};
use crate::error::Error;
use crate::secret::Passphrase;

/// How a key file is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    Plain,
    /// PKCS#8 EncryptedPrivateKeyInfo.
    Pkcs8Encrypted,
    /// OpenSSL's legacy `Proc-Type: 4,ENCRYPTED` PEM.
    Legacy,
}

/// How `pem` is protected.
pub fn protection(pem: &[u8]) -> Protection {
    if legacy_pem::is_legacy_encrypted(pem) {
        Protection::Legacy
    } else if crate::secret::is_encrypted(pem) {
        Protection::Pkcs8Encrypted
    } else {
        Protection::Plain
    }
}

/// The key of `pem` (read from `path`, named in errors) as unencrypted PKCS#8 PEM;
/// `passphrase` unlocks an encrypted key (without one, an encrypted key is refused).
pub fn to_pkcs8_pem(
    pem: &[u8],
    path: &Path,
    passphrase: Option<&Passphrase>,
) -> Result<Zeroizing<String>, Error> {
    let passphrase = || {
        passphrase.ok_or_else(|| {
            Error::refused(format!(
                "{} is encrypted: dockerd and the docker CLI cannot load an encrypted key",
                path.display()
            ))
            .hint(format!(
                "decrypt a copy (openssl pkey -in {0} -out {0}.plain), put it in its place in a copy of the folder, and import that",
                path.display()
            ))
        })
    };
    match protection(pem) {
        Protection::Pkcs8Encrypted => crate::secret::decrypt_key(pem, passphrase()?, path),
        Protection::Legacy => {
            let text = std::str::from_utf8(pem)
                .map_err(|_| Error::refused(format!("{} is not PEM text", path.display())))?;
            let decrypted = match legacy_pem::decrypt(text, passphrase()?.bytes()) {
                Ok(decrypted) => decrypted,
                Err(LegacyError::WrongPassphrase) => {
                    return Err(Error::failed(format!(
                        "the passphrase does not unlock {}: wrong passphrase (nothing was changed)",
                        path.display()
                    )));
                }
                Err(LegacyError::Malformed(why)) => {
                    return Err(Error::refused(format!("{} {why}", path.display())));
                }
            };
            // The legacy form has no integrity check: a wrong passphrase that happens to
            // leave valid padding gives bytes that are not a key.
            let key_der = match decrypted.label.as_str() {
                "RSA PRIVATE KEY" => {
                    pkcs1::RsaPrivateKeyRef::try_from(decrypted.der.as_slice()).is_ok()
                }
                "EC PRIVATE KEY" => {
                    <sec1::EcPrivateKey as pkcs8::der::Decode>::from_der(&decrypted.der).is_ok()
                }
                _ => true,
            };
            if !key_der {
                return Err(Error::failed(format!(
                    "the passphrase does not unlock {}: wrong passphrase (nothing was changed)",
                    path.display()
                )));
            }
            der_to_pkcs8_pem(&decrypted.label, &decrypted.der, path)
        }
        Protection::Plain => {
            let (kind, der) = <(SectionKind, Vec<u8>)>::pem_slice_iter(pem)
                .filter_map(Result::ok)
                .find(|(kind, _)| {
                    matches!(
                        kind,
                        SectionKind::PrivateKey
                            | SectionKind::RsaPrivateKey
                            | SectionKind::EcPrivateKey
                    )
                })
                .ok_or_else(|| {
                    Error::refused(format!("{} holds no private key", path.display()))
                })?;
            let der = Zeroizing::new(der);
            let label = match kind {
                SectionKind::RsaPrivateKey => "RSA PRIVATE KEY",
                SectionKind::EcPrivateKey => "EC PRIVATE KEY",
                _ => "PRIVATE KEY",
            };
            der_to_pkcs8_pem(label, &der, path)
        }
    }
}

/// Re-encodes a PKCS#1 (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`) key as PKCS#8; a
/// PKCS#8 key is kept as it is.
fn der_to_pkcs8_pem(label: &str, der: &[u8], path: &Path) -> Result<Zeroizing<String>, Error> {
    let unusable = |why: &str| {
        Error::refused(format!("{} cannot be used to sign: {why}", path.display()))
            .hint("replace the CA after the import: dockertls rotate --ca")
    };
    let pkcs8: Zeroizing<Vec<u8>> = match label {
        "PRIVATE KEY" => Zeroizing::new(der.to_vec()),
        "RSA PRIVATE KEY" => {
            let key = aws_lc_rs::rsa::KeyPair::from_der(der)
                .map_err(|e| unusable(&format!("an RSA key aws-lc refuses ({e})")))?;
            let encoded: aws_lc_rs::encoding::Pkcs8V1Der<'static> = key
                .as_der()
                .map_err(|_| unusable("the RSA key cannot be re-encoded"))?;
            Zeroizing::new(encoded.as_ref().to_vec())
        }
        "EC PRIVATE KEY" => {
            use aws_lc_rs::signature::{self, EcdsaKeyPair};
            let pair = [
                &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
            ]
            .into_iter()
            .find_map(|alg| EcdsaKeyPair::from_private_key_der(alg, der).ok())
            .ok_or_else(|| unusable("an EC key on a curve other than P-256 or P-384"))?;
            let document = pair
                .to_pkcs8v1()
                .map_err(|_| unusable("the EC key cannot be re-encoded"))?;
            Zeroizing::new(document.as_ref().to_vec())
        }
        other => {
            return Err(unusable(&format!(
                "a PEM block labelled {}, not a private key",
                crate::escape::value(other)
            )));
        }
    };
    pkcs8::der::SecretDocument::try_from(pkcs8.as_slice())
        .and_then(|document| document.to_pem("PRIVATE KEY", pkcs8::der::pem::LineEnding::LF))
        .map_err(|_| unusable("it is not valid DER"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_keys_open_with_the_passphrase_only() {
        let Some(plain) = openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout"]) else {
            eprintln!("SKIPPED: openssl is not installed");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k"), &plain).unwrap();
        let k = dir.path().join("k").to_string_lossy().into_owned();
        let public = crate::audit::material::parse_private_key(&plain)
            .unwrap()
            .public;
        let legacy =
            openssl(&["ec", "-in", &k, "-aes256", "-passout", "pass:sesame 1234"]).unwrap();
        let pkcs8 = openssl(&[
            "pkcs8",
            "-topk8",
            "-in",
            &k,
            "-v2",
            "aes-256-cbc",
            "-passout",
            "pass:sesame 1234",
        ])
        .unwrap();
        let pass = Passphrase::from_text("sesame 1234".into());
        let wrong = Passphrase::from_text("sesame 4321".into());
        for (pem, form) in [
            (legacy, Protection::Legacy),
            (pkcs8, Protection::Pkcs8Encrypted),
        ] {
            assert_eq!(protection(&pem), form);
            let key = to_pkcs8_pem(&pem, Path::new("k"), Some(&pass)).unwrap();
            let read = crate::audit::material::parse_private_key(key.as_bytes()).unwrap();
            assert_eq!(read.public, public, "{form:?}");
            let err = to_pkcs8_pem(&pem, Path::new("k"), Some(&wrong)).unwrap_err();
            assert!(
                err.message().contains("wrong passphrase"),
                "{form:?}: {}",
                err.message()
            );
            let err = to_pkcs8_pem(&pem, Path::new("k"), None).unwrap_err();
            assert!(err.message().contains("is encrypted"), "{form:?}");
        }
    }

    fn openssl(args: &[&str]) -> Option<Vec<u8>> {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .ok()?;
        out.status.success().then_some(out.stdout)
    }

    #[test]
    fn pkcs1_and_sec1_become_pkcs8_of_the_same_key() {
        let Some(rsa) = openssl(&["genrsa", "-traditional", "2048"]) else {
            eprintln!("SKIPPED: openssl is not installed");
            return;
        };
        let ec = openssl(&["ecparam", "-name", "secp384r1", "-genkey", "-noout"]).unwrap();
        for (pem, label) in [(rsa, "RSA PRIVATE KEY"), (ec, "EC PRIVATE KEY")] {
            assert!(String::from_utf8_lossy(&pem).contains(label));
            let public = crate::audit::material::parse_private_key(&pem)
                .unwrap()
                .public;
            let converted = to_pkcs8_pem(&pem, Path::new("k.pem"), None).unwrap();
            assert!(
                converted.starts_with("-----BEGIN PRIVATE KEY-----\n"),
                "{label}"
            );
            let read = crate::audit::material::parse_private_key(converted.as_bytes()).unwrap();
            assert_eq!(read.format, crate::audit::material::KeyFormat::Pkcs8);
            assert_eq!(read.public, public, "{label}");
            // rcgen (which signs with the CA key) loads it.
            rcgen::KeyPair::from_pem(&converted).unwrap();
        }
    }
}
