//! The CA key's passphrase: where it comes from (a file given with --ca-passphrase-file, or a
//! hidden prompt on a terminal; never the command line or the environment), and encrypting and
//! decrypting the key with it (PKCS#8 PBES2: scrypt and AES-256-CBC, as `openssl pkey` reads and
//! OpenSSL 3's `genrsa -aes256` writes).

use std::io::IsTerminal;
use std::path::Path;

use pkcs8::der::pem::LineEnding;
use zeroize::Zeroizing;

use crate::error::Error;

/// The shortest passphrase accepted for a new encrypted key.
pub const MIN_PASSPHRASE: usize = 8;

/// A passphrase, wiped from memory when dropped; never printed.
pub struct Passphrase(Zeroizing<String>);

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase([elided])")
    }
}

impl Passphrase {
    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Reads the first line of `path` (a trailing newline is not part of it).
    pub fn from_file(path: &Path) -> Result<Passphrase, Error> {
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| {
            Error::Refused(format!("--ca-passphrase-file {}: {e}", path.display()))
        })?);
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            Error::Refused(format!(
                "--ca-passphrase-file {}: not UTF-8 text",
                path.display()
            ))
        })?;
        let line = text.split(['\n', '\r']).next().unwrap_or_default();
        if line.is_empty() {
            return Err(Error::Refused(format!(
                "--ca-passphrase-file {}: the first line is empty",
                path.display()
            )));
        }
        Ok(Passphrase(Zeroizing::new(line.to_string())))
    }

    /// Wraps text typed at a prompt.
    pub fn from_text(text: String) -> Passphrase {
        Passphrase(Zeroizing::new(text))
    }

    /// Whether a hidden prompt is possible (stdin and stderr are terminals).
    pub fn can_prompt() -> bool {
        std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
    }

    /// Asks on the terminal; `confirm` asks twice (for a new key).
    pub fn prompt(prompt: &str, confirm: bool) -> Result<Passphrase, Error> {
        crate::terminal::restore_on_interrupt();
        let theme = dialoguer::theme::SimpleTheme;
        let mut input = dialoguer::Password::with_theme(&theme).with_prompt(prompt);
        if confirm {
            input = input
                .with_confirmation("Repeat it", "The two entries differ; try again")
                .validate_with(|text: &String| {
                    if text.chars().count() < MIN_PASSPHRASE {
                        Err(format!("use at least {MIN_PASSPHRASE} characters"))
                    } else {
                        Ok(())
                    }
                });
        }
        let text = match input.interact() {
            Ok(text) => text,
            Err(dialoguer::Error::IO(e)) if e.kind() == std::io::ErrorKind::Interrupted => {
                crate::terminal::interrupted()
            }
            Err(e) => return Err(Error::Refused(format!("cannot read the passphrase: {e}"))),
        };
        Ok(Passphrase(Zeroizing::new(text)))
    }

    /// For a new key: long enough.
    pub fn check_new(&self) -> Result<(), Error> {
        if self.0.chars().count() < MIN_PASSPHRASE {
            return Err(Error::Refused(format!(
                "the CA passphrase is shorter than {MIN_PASSPHRASE} characters"
            )));
        }
        Ok(())
    }
}

/// Gets the passphrase from --ca-passphrase-file, else from a prompt on a terminal; `why`
/// names what needs it, for the error when neither is possible.
pub fn obtain(
    file: Option<&Path>,
    prompt: &str,
    confirm: bool,
    why: &str,
) -> Result<Passphrase, Error> {
    match file {
        Some(path) => Passphrase::from_file(path),
        None if Passphrase::can_prompt() => Passphrase::prompt(prompt, confirm),
        None => Err(Error::Refused(format!(
            "{why}: give --ca-passphrase-file FILE, or run on a terminal to be asked (a passphrase is never taken from the command line or the environment)"
        ))),
    }
}

/// Whether a PEM key file is encrypted.
pub fn is_encrypted(pem: &[u8]) -> bool {
    matches!(
        crate::audit::material::parse_private_key(pem),
        Err(crate::audit::material::KeyError::Encrypted)
    )
}

/// Encrypts an unencrypted PKCS#8 PEM key.
pub fn encrypt_key(key_pem: &str, passphrase: &Passphrase) -> Result<Zeroizing<String>, Error> {
    let failed =
        |e: &dyn std::fmt::Display| Error::Failed(format!("cannot encrypt the CA key: {e}"));
    let block = pem::parse(key_pem.as_bytes()).map_err(|e| failed(&e))?;
    let der = Zeroizing::new(block.into_contents());
    let info = pkcs8::PrivateKeyInfoRef::try_from(der.as_slice()).map_err(|e| failed(&e))?;
    let encrypted = info.encrypt(passphrase.bytes()).map_err(|e| failed(&e))?;
    encrypted
        .to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
        .map_err(|e| failed(&e))
}

/// Decrypts an encrypted PKCS#8 PEM key into unencrypted PKCS#8 PEM.
pub fn decrypt_key(
    key_pem: &[u8],
    passphrase: &Passphrase,
    path: &Path,
) -> Result<Zeroizing<String>, Error> {
    let text = std::str::from_utf8(key_pem)
        .map_err(|_| Error::Refused(format!("{} is not PEM text", path.display())))?;
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(Error::Refused(format!(
            "{} uses OpenSSL's legacy encryption; convert it once: openssl pkcs8 -topk8 -v2 aes-256-cbc -in {0} -out {0}.p8",
            path.display()
        )));
    }
    let (label, document) =
        pkcs8::der::SecretDocument::from_pem(text.trim_start_matches('\u{feff}'))
            .map_err(|e| Error::Refused(format!("{} is not a PEM key ({e})", path.display())))?;
    if label != "ENCRYPTED PRIVATE KEY" {
        return Err(Error::Refused(format!(
            "{} is not an encrypted key",
            path.display()
        )));
    }
    let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(document.as_bytes()).map_err(|e| {
        Error::Refused(format!(
            "{} is not a valid encrypted key ({e})",
            path.display()
        ))
    })?;
    let plain = info.decrypt(passphrase.bytes()).map_err(|_| {
        Error::Failed(format!(
            "the passphrase does not unlock {}: wrong passphrase (nothing was changed)",
            path.display()
        ))
    })?;
    plain
        .to_pem("PRIVATE KEY", LineEnding::LF)
        .map_err(|e| Error::Failed(format!("cannot read the decrypted key: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_passphrase() {
        let key = crate::pki::KeyType::EcdsaP256.generate().unwrap();
        let pem = crate::pki::private_key_pem(&key).unwrap();
        let pass = Passphrase(Zeroizing::new("correct horse".into()));
        let encrypted = encrypt_key(&pem, &pass).unwrap();
        assert!(encrypted.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
        assert!(is_encrypted(encrypted.as_bytes()));
        let path = Path::new("ca-key.pem");
        assert_eq!(
            *decrypt_key(encrypted.as_bytes(), &pass, path).unwrap(),
            *pem
        );
        let wrong = Passphrase(Zeroizing::new("battery staple".into()));
        let err = decrypt_key(encrypted.as_bytes(), &wrong, path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("wrong passphrase"), "{err}");
        assert!(!format!("{pass:?}").contains("horse"));
    }
}
