//! OpenSSL's legacy encrypted PEM (RFC 1421 headers), as `openssl genrsa -aes256 -traditional`,
//! OpenSSL 1.x's `genrsa -aes256` and `openssl ec -aes256` write:
//!
//! ```text
//! -----BEGIN RSA PRIVATE KEY-----
//! Proc-Type: 4,ENCRYPTED
//! DEK-Info: AES-256-CBC,<IV in hex>
//!
//! <base64>
//! -----END RSA PRIVATE KEY-----
//! ```
//!
//! The key is OpenSSL's `EVP_BytesToKey` (MD5, one round, the IV's first 8 bytes as salt);
//! the cipher is CBC with PKCS#7 padding. Pure; never panics on hostile input.

use aes::cipher::{BlockModeDecrypt, KeyIvInit, block_padding::Pkcs7};
use base64ct::{Base64, Encoding};
use md5::{Digest, Md5};
use zeroize::Zeroizing;

/// The ciphers OpenSSL's `-aes128/-aes192/-aes256/-des3` write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cipher {
    Aes128,
    Aes192,
    Aes256,
    DesEde3,
}

impl Cipher {
    fn from_name(name: &str) -> Option<Cipher> {
        match name {
            "AES-128-CBC" => Some(Cipher::Aes128),
            "AES-192-CBC" => Some(Cipher::Aes192),
            "AES-256-CBC" => Some(Cipher::Aes256),
            "DES-EDE3-CBC" => Some(Cipher::DesEde3),
            _ => None,
        }
    }
    fn key_len(self) -> usize {
        match self {
            Cipher::Aes128 => 16,
            Cipher::Aes192 | Cipher::DesEde3 => 24,
            Cipher::Aes256 => 32,
        }
    }
    fn iv_len(self) -> usize {
        match self {
            Cipher::DesEde3 => 8,
            _ => 16,
        }
    }
}

/// A decrypted legacy key: its PEM label (`RSA PRIVATE KEY`, `EC PRIVATE KEY`) and DER.
pub struct Decrypted {
    pub label: String,
    pub der: Zeroizing<Vec<u8>>,
}

/// Why a legacy encrypted key could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum LegacyError {
    /// Not in the legacy form, or damaged (with the reason).
    Malformed(String),
    /// The passphrase does not unlock it (bad padding or not a key inside).
    WrongPassphrase,
}

/// Whether `pem` is a key in OpenSSL's legacy encrypted form.
pub fn is_legacy_encrypted(pem: &[u8]) -> bool {
    pem.windows(22).any(|w| w == b"Proc-Type: 4,ENCRYPTED")
}

/// Decrypts the first legacy encrypted key of `pem` with `passphrase`.
pub fn decrypt(pem: &str, passphrase: &[u8]) -> Result<Decrypted, LegacyError> {
    let malformed = |why: &str| LegacyError::Malformed(why.to_string());
    let mut lines = pem
        .trim_start_matches('\u{feff}')
        .lines()
        .map(|l| l.trim_end_matches('\r'));
    let label = lines
        .by_ref()
        .find_map(|l| {
            l.strip_prefix("-----BEGIN ")
                .and_then(|l| l.strip_suffix("-----"))
        })
        .ok_or_else(|| malformed("holds no PEM block"))?
        .to_string();
    let mut proc_type = false;
    let mut dek_info = None;
    for line in lines.by_ref() {
        if line.trim().is_empty() {
            break;
        }
        match line.split_once(':') {
            Some(("Proc-Type", value)) => proc_type = value.trim() == "4,ENCRYPTED",
            Some(("DEK-Info", value)) => dek_info = Some(value.trim().to_string()),
            _ => {
                return Err(malformed(
                    "has a header line that is not Proc-Type or DEK-Info",
                ));
            }
        }
    }
    if !proc_type {
        return Err(malformed("is not in OpenSSL's legacy encrypted form"));
    }
    let dek_info = dek_info.ok_or_else(|| malformed("has no DEK-Info header"))?;
    let (cipher_name, iv_hex) = dek_info
        .split_once(',')
        .ok_or_else(|| malformed("has a DEK-Info without an IV"))?;
    let cipher = Cipher::from_name(cipher_name.trim()).ok_or_else(|| {
        LegacyError::Malformed(format!(
            "is encrypted with {}, which dockertls cannot read (AES-128/192/256-CBC and DES-EDE3-CBC only)",
            crate::escape::value(cipher_name.trim())
        ))
    })?;
    let iv = hex(iv_hex.trim()).ok_or_else(|| malformed("has a DEK-Info IV that is not hex"))?;
    if iv.len() != cipher.iv_len() {
        return Err(malformed("has a DEK-Info IV of the wrong length"));
    }
    let end = format!("-----END {label}-----");
    let mut body = String::new();
    let mut ended = false;
    for line in lines {
        if line == end {
            ended = true;
            break;
        }
        body.push_str(line.trim());
    }
    if !ended {
        return Err(malformed("has no END line"));
    }
    let mut data =
        Zeroizing::new(Base64::decode_vec(&body).map_err(|_| malformed("is not valid base64"))?);
    let key = bytes_to_key(passphrase, &iv[..8], cipher.key_len());
    let plain = cbc_decrypt(cipher, &key, &iv, &mut data)?;
    // A wrong passphrase passes the padding check about once in 256 tries: the result must
    // also be DER (a SEQUENCE), which the caller's key parser then checks in full.
    if plain.first() != Some(&0x30) {
        return Err(LegacyError::WrongPassphrase);
    }
    Ok(Decrypted {
        label,
        der: Zeroizing::new(plain.to_vec()),
    })
}

fn cbc_decrypt<'a>(
    cipher: Cipher,
    key: &[u8],
    iv: &[u8],
    data: &'a mut [u8],
) -> Result<&'a [u8], LegacyError> {
    let bad = |_| LegacyError::Malformed("has a key or IV of the wrong length".into());
    let plain = match cipher {
        Cipher::Aes128 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
            .map_err(bad)?
            .decrypt_padded::<Pkcs7>(data),
        Cipher::Aes192 => cbc::Decryptor::<aes::Aes192>::new_from_slices(key, iv)
            .map_err(bad)?
            .decrypt_padded::<Pkcs7>(data),
        Cipher::Aes256 => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
            .map_err(bad)?
            .decrypt_padded::<Pkcs7>(data),
        Cipher::DesEde3 => cbc::Decryptor::<des::TdesEde3>::new_from_slices(key, iv)
            .map_err(bad)?
            .decrypt_padded::<Pkcs7>(data),
    };
    plain.map_err(|_| LegacyError::WrongPassphrase)
}

/// OpenSSL's `EVP_BytesToKey` with MD5 and one iteration: D1 = MD5(pass || salt),
/// Di = MD5(Di-1 || pass || salt), the key is their concatenation cut to `len`.
fn bytes_to_key(passphrase: &[u8], salt: &[u8], len: usize) -> Zeroizing<Vec<u8>> {
    let mut key = Zeroizing::new(Vec::with_capacity(len + 16));
    let mut previous: Option<Zeroizing<Vec<u8>>> = None;
    while key.len() < len {
        let mut md5 = Md5::new();
        if let Some(previous) = &previous {
            md5.update(previous.as_slice());
        }
        md5.update(passphrase);
        md5.update(salt);
        let block = Zeroizing::new(md5.finalize().to_vec());
        key.extend_from_slice(&block);
        previous = Some(block);
    }
    key.truncate(len);
    key
}

fn hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs openssl (the writer of the legacy form) with `input` on stdin.
    fn openssl(args: &[&str], input: Option<&[u8]>) -> Option<Vec<u8>> {
        use std::io::Write;
        let mut child = std::process::Command::new("openssl")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        if let Some(input) = input {
            child.stdin.take()?.write_all(input).ok()?;
        } else {
            drop(child.stdin.take());
        }
        let out = child.wait_with_output().ok()?;
        out.status.success().then_some(out.stdout)
    }

    #[test]
    fn decrypts_what_openssl_writes_with_every_cipher() {
        let Some(plain) = openssl(
            &["ecparam", "-name", "prime256v1", "-genkey", "-noout"],
            None,
        ) else {
            eprintln!("SKIPPED: openssl is not installed");
            return;
        };
        let plain_der = openssl(&["ec", "-outform", "der"], Some(&plain)).unwrap();
        for (flag, name) in [
            ("-aes128", "AES-128-CBC"),
            ("-aes192", "AES-192-CBC"),
            ("-aes256", "AES-256-CBC"),
            ("-des3", "DES-EDE3-CBC"),
        ] {
            let encrypted =
                openssl(&["ec", flag, "-passout", "pass:recipe-pass"], Some(&plain)).unwrap();
            let text = String::from_utf8(encrypted).unwrap();
            assert!(text.contains(name), "{text}");
            assert!(is_legacy_encrypted(text.as_bytes()));
            let decrypted = decrypt(&text, b"recipe-pass").unwrap();
            assert_eq!(decrypted.label, "EC PRIVATE KEY");
            assert_eq!(*decrypted.der, plain_der, "{name}");
            assert!(matches!(
                decrypt(&text, b"wrong-pass"),
                Err(LegacyError::WrongPassphrase) | Err(LegacyError::Malformed(_))
            ));
        }
    }

    #[test]
    fn bytes_to_key_matches_openssl_enc_p() {
        // `openssl enc -aes-256-cbc -md md5 -pass pass:secret -S 0102030405060708 -P -nosalt`
        // prints key/iv derived by EVP_BytesToKey; compare with ours.
        let Some(out) = openssl(
            &[
                "enc",
                "-aes-256-cbc",
                "-md",
                "md5",
                "-pass",
                "pass:secret",
                "-S",
                "0102030405060708",
                "-P",
            ],
            Some(b""),
        ) else {
            eprintln!("SKIPPED: openssl is not installed");
            return;
        };
        let out = String::from_utf8(out).unwrap();
        let key_hex = out
            .lines()
            .find_map(|l| l.strip_prefix("key="))
            .unwrap()
            .trim();
        let ours = bytes_to_key(b"secret", &[1, 2, 3, 4, 5, 6, 7, 8], 32);
        assert_eq!(hex(key_hex).unwrap(), *ours);
    }

    #[test]
    fn hostile_input_is_an_error_not_a_panic() {
        for pem in [
            "",
            "-----BEGIN RSA PRIVATE KEY-----\n",
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END RSA PRIVATE KEY-----\n",
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,0\n\nAAAA\n-----END RSA PRIVATE KEY-----\n",
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,é1\n\nAAAA\n-----END RSA PRIVATE KEY-----\n",
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00000000000000000000000000000000\n\nAAA\n-----END RSA PRIVATE KEY-----\n",
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00000000000000000000000000000000\n\n\n-----END RSA PRIVATE KEY-----\n",
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: RC2-CBC,0000000000000000\n\nAAAA\n-----END RSA PRIVATE KEY-----\n",
        ] {
            assert!(decrypt(pem, b"x").is_err(), "{pem}");
        }
    }
}
