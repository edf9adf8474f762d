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

/// The most `openssl -passin file:` reads: the first line, up to 1023 bytes (OpenSSL 3.0's
/// apps read it with `BIO_gets` into a 1024-byte buffer).
pub const OPENSSL_PASS_MAX: usize = 1023;

/// A passphrase, wiped from memory when dropped; never printed. Bytes, as OpenSSL takes them.
pub struct Passphrase(Zeroizing<Vec<u8>>, Option<std::path::PathBuf>);

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase([elided])")
    }
}

impl Passphrase {
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// Reads the passphrase from `path` exactly as `openssl -passin file:PATH` (and
    /// `-passout`) does, so that a key protected by one opens with the other: the first line
    /// without its `\n`, everything else kept (a `\r` before the `\n`, trailing spaces). What
    /// OpenSSL would silently change is refused instead: an empty file or first line, a NUL byte
    /// (where OpenSSL stops), a first line longer than 1023 bytes (where it cuts).
    ///
    /// The file must be a regular file that only its owner can read or write, owned by the
    /// user who runs dockertls or by root, as ssh demands of a private key: whoever reads the
    /// passphrase can unlock the CA key, and whoever writes it chooses the passphrase of a new
    /// one.
    pub fn from_file(path: &Path) -> Result<Passphrase, Error> {
        let refuse =
            |why: String| Error::Refused(format!("--ca-passphrase-file {}: {why}", path.display()));
        let (file, meta) = crate::userfile::open_regular_or_pipe(path)
            .map_err(|e| Error::Refused(e.to_string()))?;
        let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777;
        // `--ca-passphrase-file /dev/stdin < FILE`: the fix is for FILE, not /dev/stdin.
        let handed_over = path.starts_with("/dev/fd")
            || path.starts_with("/proc")
            || path == Path::new("/dev/stdin");
        let real = match std::fs::canonicalize(path) {
            Ok(real) if handed_over && meta.is_file() => real,
            _ => path.to_path_buf(),
        };
        let quoted = crate::render::shell_quote(&real.to_string_lossy());
        if mode & 0o077 != 0 {
            return Err(Error::Refused(format!(
                "--ca-passphrase-file {}: group or others have access to it (mode {mode:04o}): whoever reads it can unlock the CA key",
                path.display()
            ))
            .hint(format!("chmod 600 {quoted}")));
        }
        // As ssh: the file belongs to the user who runs dockertls, or to root; whoever owns
        // it could change its mode, or its passphrase.
        let owner = std::os::unix::fs::MetadataExt::uid(&meta);
        if let Some(me) = crate::userfile::current_uid()
            && owner != me
            && owner != 0
        {
            return Err(Error::Refused(format!(
                "--ca-passphrase-file {}: belongs to another user (uid {owner}), who could read or change it",
                path.display()
            ))
            .hint(format!(
                "use a file of your own: install -m 600 {quoted} ~/ca-passphrase"
            )));
        }
        let mut bytes = Zeroizing::new(Vec::new());
        crate::userfile::read_start(&file, path, OPENSSL_PASS_MAX + 1, &mut bytes)
            .map_err(|e| Error::Refused(e.to_string()))?;
        if bytes.is_empty() {
            return Err(refuse(
                "the file is empty: write the passphrase on its first line".into(),
            ));
        }
        let end = bytes
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(bytes.len());
        if end > OPENSSL_PASS_MAX {
            return Err(refuse(format!(
                "the first line is longer than {OPENSSL_PASS_MAX} bytes, where openssl -passin file: stops reading: use a shorter passphrase"
            )));
        }
        let line = &bytes[..end];
        if line.is_empty() {
            return Err(refuse(
                "the first line is empty: the passphrase is the first line (openssl -passin file: would read an empty passphrase)".into(),
            ));
        }
        if line.contains(&0) {
            return Err(refuse(
                "the first line holds a NUL byte, where openssl -passin file: stops reading: write the passphrase as text".into(),
            ));
        }
        let mut passphrase = Zeroizing::new(Vec::with_capacity(line.len()));
        passphrase.extend_from_slice(line);
        Ok(Passphrase(passphrase, Some(path.to_path_buf())))
    }

    /// Wraps text typed at a prompt.
    pub fn from_text(text: String) -> Passphrase {
        Passphrase(Zeroizing::new(text.into_bytes()), None)
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
        Ok(Passphrase::from_text(text))
    }

    /// For a new key: long enough, and text that can be typed at a prompt. A passphrase file
    /// with Windows line endings gives a passphrase ending in CR (as OpenSSL reads it): it
    /// would protect the key with a character nobody can type.
    pub fn check_new(&self) -> Result<(), Error> {
        let file = self.1.as_ref().map(|p| p.display().to_string());
        let from = file
            .as_ref()
            .map(|f| format!(" (from --ca-passphrase-file {f})"))
            .unwrap_or_default();
        let Ok(text) = std::str::from_utf8(&self.0) else {
            return Err(Error::Refused(format!(
                "the CA passphrase{from} is not UTF-8 text: it could not be typed at a prompt"
            )));
        };
        if text.ends_with('\r') {
            return Err(Error::Refused(format!(
                "the CA passphrase{from} ends with a carriage return: the file has Windows line endings, and openssl -passin file: takes the CR as part of the passphrase"
            ))
            .hint(format!(
                "remove it: sed -i 's/\\r$//' {}",
                crate::render::shell_quote(file.as_deref().unwrap_or("FILE"))
            )));
        }
        if text.chars().any(char::is_control) {
            return Err(Error::Refused(format!(
                "the CA passphrase{from} holds a control character: it could not be typed at a prompt"
            )));
        }
        if text.chars().count() < MIN_PASSPHRASE {
            return Err(Error::Refused(format!(
                "the CA passphrase{from} is shorter than {MIN_PASSPHRASE} characters"
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
        None => Err(Error::refused(format!(
            "{why}, and there is no terminal to ask for its passphrase on"
        ))
        .hint(
            "give --ca-passphrase-file FILE (or <(pass show ...)), or run on a terminal to be asked; a passphrase is never taken from the command line or the environment",
        )),
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
    // pkcs8's PEM codec, as for the encrypted key: its SecretDocument wipes the key bytes.
    let (_, document) = pkcs8::der::SecretDocument::from_pem(key_pem).map_err(|e| failed(&e))?;
    let info = pkcs8::PrivateKeyInfoRef::try_from(document.as_bytes()).map_err(|e| failed(&e))?;
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
        let pass = Passphrase::from_text("correct horse".into());
        let encrypted = encrypt_key(&pem, &pass).unwrap();
        assert!(encrypted.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
        assert!(is_encrypted(encrypted.as_bytes()));
        let path = Path::new("ca-key.pem");
        assert_eq!(
            *decrypt_key(encrypted.as_bytes(), &pass, path).unwrap(),
            *pem
        );
        let wrong = Passphrase::from_text("battery staple".into());
        let err = decrypt_key(encrypted.as_bytes(), &wrong, path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("wrong passphrase"), "{err}");
        assert!(!format!("{pass:?}").contains("horse"));
    }
}
