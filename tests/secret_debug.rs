//! No `{:?}` prints a secret (issue 11, item 7). Types that hold key bytes either have no
//! `Debug` at all (install's: checked when compiling, in src/install/mod.rs) or a `Debug` that
//! elides the secret, as rcgen's `KeyPair` does: checked here on real keys, for every type of
//! the crate that holds a private key or a passphrase.

use dockertls::names::Address;
use dockertls::pki::{self, KeyType, LeafRequest, Role};
use dockertls::secret::Passphrase;

/// The base64 lines of a PEM block: any of them in a `Debug` output is a leak.
fn body_lines(pem: &str) -> Vec<&str> {
    pem.lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 8)
        .collect()
}

fn assert_hides(what: &str, debug: &str, secret_pem: &str) {
    for line in body_lines(secret_pem) {
        assert!(
            !debug.contains(line),
            "{what}'s Debug prints its key: {debug}"
        );
    }
    assert!(debug.contains("elided"), "{what}'s Debug: {debug}");
}

#[test]
fn issued_ca_pki_and_key_pairs_elide_their_keys() {
    let now = time::OffsetDateTime::now_utc();
    for key_type in [KeyType::EcdsaP256, KeyType::Ed25519] {
        let ca_key = key_type.generate().unwrap();
        let ca_key_pem = pki::private_key_pem(&ca_key).unwrap();
        // rcgen's KeyPair itself, the type every wrapper holds.
        assert_hides("KeyPair", &format!("{ca_key:?}"), &ca_key_pem);
        let (issued_ca, ca) = pki::new_ca(ca_key, now, 30).unwrap();
        assert_hides("Issued (CA)", &format!("{issued_ca:?}"), &issued_ca.key_pem);
        assert_hides("Ca", &format!("{ca:?}"), &issued_ca.key_pem);
        assert_hides("Ca (pretty)", &format!("{ca:#?}"), &issued_ca.key_pem);
        let sans = [Address::Dns("example.com".into())];
        let leaf = ca
            .issue(
                &LeafRequest {
                    cn: "example.com",
                    sans: &sans,
                    role: Role::Server,
                    now,
                    days: 10,
                },
                key_type.generate().unwrap(),
            )
            .unwrap();
        assert_hides("Issued (leaf)", &format!("{leaf:#?}"), &leaf.key_pem);
        let leaf_key = leaf.key_pem.clone();
        let ca_key = issued_ca.key_pem.clone();
        let whole = pki::Pki {
            ca: issued_ca,
            server: leaf,
            clients: Vec::new(),
        };
        let debug = format!("{whole:?}");
        assert_hides("Pki", &debug, &ca_key);
        assert_hides("Pki", &debug, &leaf_key);
    }
}

#[test]
fn passphrases_are_never_printed() {
    let secret = "correct horse battery staple";
    let passphrase = Passphrase::from_text(secret.to_string());
    for debug in [format!("{passphrase:?}"), format!("{passphrase:#?}")] {
        assert!(!debug.contains("correct"), "{debug}");
        assert!(!debug.contains("staple"), "{debug}");
        assert!(debug.contains("elided"), "{debug}");
    }
}
