//! `dockertls rotate`: re-issue expiring certificates with fresh keys, add SANs to the server
//! certificate, or replace the CA; every replaced folder is backed up first and swapped in
//! whole (see `workspace`).

use std::io::Write;
use std::path::Path;

use ::time::OffsetDateTime;

use crate::cli::RotateArgs;
use crate::commands::pkistate::{self, Leaf, date};
use crate::error::Error;
use crate::names::{self, Address};
use crate::pki::{self, Ca, KeyType, LeafRequest, Role};
use crate::plan::{DEFAULT_CA_DAYS, DEFAULT_LEAF_DAYS, MAX_DAYS};
use crate::store::{CERT_FILE, KEY_FILE};
use crate::workspace::{self, Workspace};

/// One certificate to re-issue.
struct Item {
    /// None for the server, Some(name) for a client.
    client: Option<String>,
    leaf: Leaf,
    reason: String,
}

impl Item {
    fn label(&self) -> String {
        match &self.client {
            None => "server".to_string(),
            Some(name) => format!("client {name}"),
        }
    }
    fn folder(&self) -> String {
        match &self.client {
            None => "server".to_string(),
            Some(name) => format!("clients/{name}"),
        }
    }
}

/// Runs `rotate`.
pub fn run(
    dir: &Path,
    args: &RotateArgs,
    passphrase_file: Option<&Path>,
    now: OffsetDateTime,
) -> Result<(), Error> {
    if !(0..=MAX_DAYS).contains(&args.within) {
        return Err(Error::Refused(format!(
            "--within {}: give a number of days from 0 to {MAX_DAYS}",
            args.within
        )));
    }
    if !args.allow.is_empty() && !args.server {
        return Err(Error::Refused(
            "--allow adds SANs to the server certificate: add --server".into(),
        ));
    }
    if args.ca && (args.server || !args.clients.is_empty() || args.all || !args.allow.is_empty()) {
        return Err(Error::Refused(
            "--ca re-issues everything under a new CA: drop --server, --client, --all and --allow"
                .into(),
        ));
    }
    let mut extra = Vec::new();
    for input in &args.allow {
        let parsed = names::parse_address("--allow", input).map_err(Error::Refused)?;
        if let Some(note) = parsed.note {
            eprintln!("note: {note}");
        }
        if !extra.contains(&parsed.address) {
            extra.push(parsed.address);
        }
    }
    let mut wanted = Vec::new();
    for input in &args.clients {
        let name = names::parse_client_name(input).map_err(Error::Refused)?;
        if !wanted.contains(&name) {
            wanted.push(name);
        }
    }
    workspace::require_pki(dir)?;
    let known = pkistate::client_names(dir);
    if let Some(unknown) = wanted.iter().find(|n| !known.contains(n)) {
        return Err(Error::Refused(format!(
            "--client {unknown}: no such client in {} (clients: {}); add it with dockertls client add {unknown}",
            dir.display(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
    }

    let server = pkistate::read_leaf(&dir.join("server/server-cert.pem"))
        .map_err(|e| Error::Refused(e.to_string()))?;
    let mut items = Vec::new();
    let mut skipped = Vec::new();
    let select_all = !args.server && wanted.is_empty();
    let due = |leaf: &Leaf| {
        let days = leaf.days_left(now);
        (days < args.within).then(|| {
            format!(
                "expires on {} ({days} days left, within {})",
                date(leaf.not_after),
                args.within
            )
        })
    };
    if args.ca || args.server || select_all {
        let new_sans: Vec<&Address> = extra.iter().filter(|a| !server.sans.contains(a)).collect();
        let reason = if args.ca {
            Some("a new CA".to_string())
        } else if !new_sans.is_empty() {
            Some(format!(
                "adds {}",
                new_sans
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        } else if args.all {
            Some("--all".to_string())
        } else {
            due(&server)
        };
        match reason {
            Some(reason) => items.push(Item {
                client: None,
                leaf: server.clone(),
                reason,
            }),
            None => skipped.push(format!("server: valid until {}", date(server.not_after))),
        }
    }
    let clients: Vec<&String> = if args.ca || select_all {
        known.iter().collect()
    } else {
        wanted.iter().collect()
    };
    for name in clients {
        let leaf = pkistate::read_leaf(&dir.join("clients").join(name).join("cert.pem"))
            .map_err(|e| Error::Refused(e.to_string()))?;
        let reason = if args.ca {
            Some("a new CA".to_string())
        } else if args.all {
            Some("--all".to_string())
        } else {
            due(&leaf)
        };
        match reason {
            Some(reason) => items.push(Item {
                client: Some(name.clone()),
                leaf,
                reason,
            }),
            None => skipped.push(format!(
                "client {name}: valid until {}",
                date(leaf.not_after)
            )),
        }
    }

    let mut out = String::new();
    if items.is_empty() {
        out.push_str(&format!(
            "nothing to rotate: no selected certificate expires within {} days\n",
            args.within
        ));
        for line in &skipped {
            out.push_str(&format!("  {line}\n"));
        }
        let _ = std::io::stdout().write_all(crate::escape::text(&out).as_bytes());
        return Ok(());
    }
    if args.dry_run {
        if args.ca {
            out.push_str("would create a new CA (ca/), keeping the old one in the backup\n");
        }
        for item in &items {
            out.push_str(&format!(
                "would re-issue {}: {}\n",
                item.label(),
                item.reason
            ));
        }
        for line in &skipped {
            out.push_str(&format!("would keep {line}\n"));
        }
        out.push_str("dry run: nothing was changed\n");
        let _ = std::io::stdout().write_all(crate::escape::text(&out).as_bytes());
        return Ok(());
    }

    // The CA that signs: a new one with --ca, else the existing one.
    let old_ca =
        pkistate::read_leaf(&dir.join("ca/ca.pem")).map_err(|e| Error::Refused(e.to_string()))?;
    let mut new_ca_passphrase = None;
    let mut notes = Vec::new();
    let (ca, new_ca_files) = if args.ca {
        // A protected CA key stays protected: the new one gets the same passphrase, after
        // checking that it unlocks the old one.
        let old_key = zeroize::Zeroizing::new(
            crate::userfile::read_regular(
                &dir.join("ca/ca-key.pem"),
                crate::userfile::MAX_PKI_FILE,
            )
            .map_err(|e| Error::Refused(e.to_string()))?,
        );
        if crate::secret::is_encrypted(&old_key) {
            let (_, pass) = pkistate::load_ca(dir, passphrase_file)?;
            new_ca_passphrase = pass;
        }
        let old_type = x509_parser::parse_x509_certificate(&old_ca.der)
            .ok()
            .and_then(|(_, c)| KeyType::of_certificate(&c))
            .unwrap_or(KeyType::EcdsaP256);
        let key = pki::generate_keys(old_type, 1)
            .map_err(|e| Error::Failed(format!("cannot generate the CA key: {e}")))?
            .pop()
            .ok_or_else(|| Error::Failed("cannot generate the CA key".into()))?;
        let days = reissue_days(&old_ca, DEFAULT_CA_DAYS, "the CA", &mut notes);
        let (issued, ca) = pki::new_ca(key, now, days)
            .map_err(|e| Error::Failed(format!("cannot create the CA: {e}")))?;
        (ca, Some(issued))
    } else {
        let (ca, _) = pkistate::load_ca(dir, passphrase_file)?;
        if ca.not_after <= now {
            return Err(Error::Refused(format!(
                "the CA expired on {}: certificates it signs are refused; replace it with dockertls rotate --ca",
                date(ca.not_after)
            )));
        }
        if now < ca.not_before {
            return Err(Error::Refused(format!(
                "the CA is not valid before {}: what it signs now is refused until then; check this machine's clock, or replace the CA with dockertls rotate --ca",
                date(ca.not_before)
            )));
        }
        (ca, None)
    };

    let mut ws = Workspace::open(dir, now)?;
    let mut issued_lines = Vec::new();
    let mut clamped = false;
    for item in &items {
        let key_type = x509_parser::parse_x509_certificate(&item.leaf.der)
            .ok()
            .and_then(|(_, c)| KeyType::of_certificate(&c))
            .unwrap_or(ca.key_type);
        let key = pki::generate_keys(key_type, 1)
            .map_err(|e| Error::Failed(format!("cannot generate a key: {e}")))?
            .pop()
            .ok_or_else(|| Error::Failed("cannot generate a key".into()))?;
        let mut sans = item.leaf.sans.clone();
        let role = if item.client.is_none() {
            for address in &extra {
                if !sans.contains(address) {
                    sans.push(address.clone());
                }
            }
            Role::Server
        } else {
            Role::Client
        };
        let days = reissue_days(&item.leaf, DEFAULT_LEAF_DAYS, &item.label(), &mut notes);
        let request = LeafRequest {
            cn: &item.leaf.cn,
            sans: &sans,
            role,
            now,
            days,
        };
        let cert = issue(&ca, &request, key)?;
        clamped |= cert.cut_to_ca;
        let folder = item.folder();
        let (cert_name, key_name) = if item.client.is_none() {
            ("server-cert.pem", "server-key.pem")
        } else {
            ("cert.pem", "key.pem")
        };
        ws.write_pair(&folder, &ca.cert_pem, &cert, cert_name, key_name)?;
        issued_lines.push(format!(
            "re-issued {} ({}): {}/{cert_name} and {key_name}, expires {}",
            item.label(),
            item.reason,
            folder,
            date(cert.not_after)
        ));
    }
    if let Some(ca_files) = &new_ca_files {
        ws.mkdir("ca")?;
        ws.write("ca/ca.pem", ca_files.cert_pem.as_bytes(), CERT_FILE)?;
        match &new_ca_passphrase {
            Some(pass) => {
                let encrypted = crate::secret::encrypt_key(&ca_files.key_pem, pass)?;
                ws.write("ca/ca-key.pem", encrypted.as_bytes(), KEY_FILE)?;
            }
            None => ws.write("ca/ca-key.pem", ca_files.key_pem.as_bytes(), KEY_FILE)?,
        }
    }
    ws.flush()?;

    // What is swapped: with --ca the whole ca/, server/ and clients/ folders (the CA first, so
    // that an interrupted run never leaves a CA folder older than what it signed); otherwise
    // each re-issued folder.
    let mut folders: Vec<String> = Vec::new();
    if args.ca {
        folders.push("ca".into());
        folders.push("server".into());
        if !known.is_empty() {
            folders.push("clients".into());
        }
    } else {
        folders.extend(items.iter().map(Item::folder));
    }
    for folder in &folders {
        ws.back_up(folder)?;
    }
    for folder in &folders {
        ws.swap_in(folder)?;
    }
    let backup = ws.backup_dir()?;
    drop(ws);

    if args.ca {
        out.push_str(&format!(
            "created a new CA: ca/ca.pem, expires {}\n",
            date(ca.not_after)
        ));
    }
    for line in &issued_lines {
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out.push_str(&format!("the previous files are in {}\n", backup.display()));
    for note in &notes {
        out.push_str(&format!("note: {note}\n"));
    }
    if clamped {
        out.push_str(&format!(
            "note: some certificates end with the CA on {}: replace the CA before then (dockertls rotate --ca)\n",
            date(ca.not_after)
        ));
    }
    if items.iter().any(|i| i.client.is_none()) {
        out.push_str(
            "next: install the new server/ on the daemon host and restart dockerd (it does not reload certificates on SIGHUP):\n  \
             install -m 0444 -o root -g root server/ca.pem server/server-cert.pem /etc/docker/tls/\n  \
             install -m 0400 -o root -g root server/server-key.pem /etc/docker/tls/\n  \
             systemctl restart docker\n",
        );
    }
    let changed_clients: Vec<&str> = items.iter().filter_map(|i| i.client.as_deref()).collect();
    if args.ca {
        out.push_str(&format!(
            "every client needs its new folder now: {}; the old client certificates stop working once dockerd restarts with the new CA\n",
            changed_clients.iter().map(|n| format!("clients/{n}")).collect::<Vec<_>>().join(", ")
        ));
    } else if !changed_clients.is_empty() {
        out.push_str(&format!(
            "give each user the new files of their folder: {}\n",
            changed_clients
                .iter()
                .map(|n| format!("clients/{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let _ = std::io::stdout().write_all(crate::escape::text(&out).as_bytes());
    Ok(())
}

/// The validity for re-issuing `old`: its own lifetime, within 1..=MAX_DAYS; a note says
/// when that differs from what the old certificate had (a CA "valid until 9999-12-31" is
/// replaced by one valid for MAX_DAYS; a certificate whose notAfter is not after its notBefore
/// by one of the default validity).
fn reissue_days(old: &Leaf, default_days: i64, label: &str, notes: &mut Vec<String>) -> i64 {
    let days = pki::reissue_days(old.not_before, old.not_after, default_days, MAX_DAYS);
    let had = (old.not_after - old.not_before).whole_hours() / 24;
    if had != days {
        notes.push(format!(
            "{label} was valid from {} to {} ({had} days); the new one is valid for {days} days (dockertls issues 1 to {MAX_DAYS} days)",
            date(old.not_before),
            date(old.not_after)
        ));
    }
    days
}

fn issue(ca: &Ca, request: &LeafRequest<'_>, key: rcgen::KeyPair) -> Result<pki::Issued, Error> {
    ca.issue(request, key).map_err(|e| {
        Error::Failed(format!(
            "cannot issue the certificate of {}: {e}",
            request.cn
        ))
    })
}
