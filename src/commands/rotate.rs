//! `dockertls rotate`: re-issue expiring certificates with fresh keys, add SANs to the server
//! certificate, or replace the CA; every replaced folder is backed up first and swapped in
//! whole (see `store::workspace`).
//!
//! plan (`plan::RotatePlan`) → pure selection at `now` ([`select`]) → execute (the store) →
//! report (the text printed).

use std::path::Path;

use ::time::OffsetDateTime;

use crate::cli::RotateArgs;
use crate::commands::client::check_ca_valid;
use crate::error::Error;
use crate::findings::Outcome;
use crate::names::Address;
use crate::pki::{self, Ca, Issued, KeyType, LeafRequest, Role};
use crate::plan::{DEFAULT_CA_DAYS, DEFAULT_LEAF_DAYS, MAX_DAYS, RotatePlan, RotateScope};
use crate::secret::Passphrase;
use crate::store::layout::CLIENTS_DIR;
use crate::store::state::{self, Leaf, date};
use crate::store::workspace::{self, Workspace};
use crate::store::{Holder, Pki, Stage};

/// One certificate to re-issue, and why.
#[derive(Debug)]
pub struct Item {
    pub holder: Holder,
    pub leaf: Leaf,
    pub reason: String,
}

/// What [`select`] decided.
#[derive(Debug, Default)]
pub struct Selection {
    /// To re-issue, the server first.
    pub items: Vec<Item>,
    /// Kept, with their expiry (`server: valid until ...`).
    pub kept: Vec<String>,
}

/// Runs `rotate`.
pub fn run(
    dir: &Path,
    args: &RotateArgs,
    passphrase_file: Option<&Path>,
    now: OffsetDateTime,
) -> Result<Outcome, Error> {
    let plan = RotatePlan::from_args(args)?;
    for note in &plan.notes {
        eprintln!("note: {note}");
    }
    workspace::require_pki(dir)?;
    let (selection, _) = read_and_select(dir, &plan, now)?;
    let text = if selection.items.is_empty() {
        nothing_to_do(&plan, &selection)
    } else if plan.dry_run {
        dry_run(&plan, &selection)
    } else {
        execute(dir, &plan, passphrase_file, now)?
    };
    Ok(Outcome::report(&text))
}

/// Reads the certificates in scope and selects what to re-issue; with whether the PKI has any
/// client. `execute` does it again under the lock: what another run changed meanwhile counts.
fn read_and_select(
    dir: &Path,
    plan: &RotatePlan,
    now: OffsetDateTime,
) -> Result<(Selection, bool), Error> {
    state::require_clients(dir, "--client", &plan.clients)?;
    let readable =
        |holder: &Holder| state::read_cert(dir, holder).map_err(|e| Error::Refused(e.to_string()));
    let server = readable(&Holder::server())?;
    let known = state::client_names(dir);
    let names = match plan.scope {
        RotateScope::Selected => &plan.clients,
        RotateScope::NewCa | RotateScope::Everything => &known,
    };
    let mut clients = Vec::new();
    for name in names {
        clients.push((name.clone(), readable(&Holder::client(name))?));
    }
    Ok((select(plan, &server, &clients, now), !known.is_empty()))
}

/// Which certificates to re-issue at `now`, and why: pure, no I/O. `clients` are the clients
/// in scope (the selected ones, or all).
pub fn select(
    plan: &RotatePlan,
    server: &Leaf,
    clients: &[(String, Leaf)],
    now: OffsetDateTime,
) -> Selection {
    let mut selection = Selection::default();
    let new_ca = plan.scope == RotateScope::NewCa;
    let due = |leaf: &Leaf| {
        let days = leaf.days_left(now);
        (days < plan.within).then(|| {
            format!(
                "expires on {} ({days} days left, within {})",
                date(leaf.not_after),
                plan.within
            )
        })
    };
    let forced = if new_ca {
        Some("a new CA".to_string())
    } else if plan.all {
        Some("--all".to_string())
    } else {
        None
    };
    if plan.scope != RotateScope::Selected || plan.server {
        let new_sans: Vec<String> = plan
            .allow
            .iter()
            .filter(|a| !server.sans.contains(a))
            .map(ToString::to_string)
            .collect();
        let adds = (!new_sans.is_empty()).then(|| format!("adds {}", new_sans.join(", ")));
        let reason = forced.clone().filter(|_| new_ca).or(adds);
        let reason = reason.or_else(|| forced.clone()).or_else(|| due(server));
        keep_or_take(&mut selection, Holder::server(), server, reason);
    }
    for (name, leaf) in clients {
        let reason = forced.clone().or_else(|| due(leaf));
        keep_or_take(&mut selection, Holder::client(name), leaf, reason);
    }
    selection
}

fn keep_or_take(selection: &mut Selection, holder: Holder, leaf: &Leaf, reason: Option<String>) {
    match reason {
        Some(reason) => selection.items.push(Item {
            holder,
            leaf: leaf.clone(),
            reason,
        }),
        None => selection.kept.push(format!(
            "{}: valid until {}",
            holder.label(),
            date(leaf.not_after)
        )),
    }
}

fn nothing_to_do(plan: &RotatePlan, selection: &Selection) -> String {
    let mut out = format!(
        "nothing to rotate: no selected certificate expires within {} days\n",
        plan.within
    );
    for line in &selection.kept {
        out.push_str(&format!("  {line}\n"));
    }
    out
}

fn dry_run(plan: &RotatePlan, selection: &Selection) -> String {
    let mut out = String::new();
    if plan.scope == RotateScope::NewCa {
        out.push_str(&format!(
            "would create a new CA ({}/), keeping the old one in the backup\n",
            Holder::Ca.folder()
        ));
    }
    for item in &selection.items {
        let label = item.holder.label();
        out.push_str(&format!("would re-issue {label}: {}\n", item.reason));
    }
    for line in &selection.kept {
        out.push_str(&format!("would keep {line}\n"));
    }
    out.push_str("dry run: nothing was changed\n");
    out
}

/// What the run did, for the report.
struct Done {
    ca: Ca,
    new_ca: bool,
    issued: Vec<String>,
    notes: Vec<String>,
    clamped: bool,
    backup: std::path::PathBuf,
}

/// Issues, stages, backs up and swaps in; returns the report.
fn execute(
    dir: &Path,
    plan: &RotatePlan,
    passphrase_file: Option<&Path>,
    now: OffsetDateTime,
) -> Result<String, Error> {
    let mut notes = Vec::new();
    // Everything is read under the lock (the CA too): another rotate may have re-issued the
    // same certificates, added SANs or replaced the CA since this run looked.
    let mut ws = Workspace::open(dir, now)?;
    let (ca, new_ca) = signing_ca(dir, plan, passphrase_file, now, &mut notes)?;
    let (selection, any_client) = read_and_select(dir, plan, now)?;
    let selection = &selection;
    if selection.items.is_empty() {
        return Ok(nothing_to_do(plan, selection));
    }
    let mut issued = Vec::new();
    let mut clamped = false;
    for item in &selection.items {
        let (line, cut) = reissue(&ws, &ca, item, &plan.allow, now, &mut notes)?;
        issued.push(line);
        clamped |= cut;
    }
    if let Some((files, passphrase)) = &new_ca {
        ws.write_ca(files, passphrase.as_ref())?;
    }
    ws.flush()?;
    // With --ca the whole ca/, server/ and clients/ folders are swapped (the CA first, so that
    // an interrupted run never leaves a CA folder older than what it signed); otherwise each
    // re-issued folder.
    let folders: Vec<String> = if new_ca.is_some() {
        let mut folders = vec![Holder::Ca.folder(), Holder::server().folder()];
        folders.extend(any_client.then(|| CLIENTS_DIR.to_string()));
        folders
    } else {
        selection.items.iter().map(|i| i.holder.folder()).collect()
    };
    for folder in &folders {
        ws.back_up(folder)?;
    }
    for folder in &folders {
        ws.swap_in(folder)?;
    }
    let backup = ws.backup_dir()?;
    drop(ws);
    let done = Done {
        ca,
        new_ca: new_ca.is_some(),
        issued,
        notes,
        clamped,
        backup,
    };
    Ok(report(dir, &done, selection))
}

/// The CA that signs: a new one with --ca (with the old key's passphrase, if it had one), else
/// the existing one, which must be valid now.
#[allow(clippy::type_complexity)]
fn signing_ca(
    dir: &Path,
    plan: &RotatePlan,
    passphrase_file: Option<&Path>,
    now: OffsetDateTime,
    notes: &mut Vec<String>,
) -> Result<(Ca, Option<(Issued, Option<Passphrase>)>), Error> {
    if plan.scope != RotateScope::NewCa {
        let (ca, _) = state::load_ca(dir, passphrase_file)?;
        check_ca_valid(&ca, now)?;
        return Ok((ca, None));
    }
    let old_ca = state::read_cert(dir, &Holder::Ca).map_err(|e| Error::Refused(e.to_string()))?;
    // A protected CA key stays protected: the new one gets the same passphrase, after checking
    // that it unlocks the old one.
    let key_path = Pki::new(dir).key(&Holder::Ca);
    let old_key = zeroize::Zeroizing::new(
        crate::userfile::read_regular(&key_path, crate::userfile::MAX_PKI_FILE)
            .map_err(|e| Error::Refused(e.to_string()))?,
    );
    let passphrase = if crate::secret::is_encrypted(&old_key) {
        state::load_ca(dir, passphrase_file)?.1
    } else {
        None
    };
    let key_type = key_type_of(&old_ca, KeyType::EcdsaP256);
    let key = new_key(key_type, &Holder::Ca)?;
    let days = reissue_days(&old_ca, DEFAULT_CA_DAYS, &Holder::Ca.label(), notes);
    let (issued, ca) = pki::new_ca(key, now, days).map_err(|e| {
        Error::Failed(format!(
            "cannot create the new CA ({} key, {days} days): {e}; nothing was changed",
            key_type.name()
        ))
    })?;
    Ok((ca, Some((issued, passphrase))))
}

/// The key type of a certificate, to re-issue with a fresh key of the same type.
fn key_type_of(leaf: &Leaf, otherwise: KeyType) -> KeyType {
    x509_parser::parse_x509_certificate(&leaf.der)
        .ok()
        .and_then(|(_, c)| KeyType::of_certificate(&c))
        .unwrap_or(otherwise)
}

fn new_key(key_type: KeyType, holder: &Holder) -> Result<rcgen::KeyPair, Error> {
    let failed = |why: String| {
        Error::Failed(format!(
            "cannot generate the {} key of {} ({why}); nothing was changed: run dockertls rotate again",
            key_type.name(),
            holder.label()
        ))
    };
    pki::generate_keys(key_type, 1)
        .map_err(|e| failed(e.to_string()))?
        .pop()
        .ok_or_else(|| failed("no key came back".into()))
}

/// Issues `item` again under `ca` with a fresh key and stages its folder; returns the report
/// line and whether the validity was cut to the CA's.
fn reissue(
    ws: &Workspace,
    ca: &Ca,
    item: &Item,
    allow: &[Address],
    now: OffsetDateTime,
    notes: &mut Vec<String>,
) -> Result<(String, bool), Error> {
    let key = new_key(key_type_of(&item.leaf, ca.key_type), &item.holder)?;
    let mut sans = item.leaf.sans.clone();
    let role = if item.holder.client_name().is_none() {
        sans.extend(
            allow
                .iter()
                .filter(|a| !item.leaf.sans.contains(a))
                .cloned(),
        );
        Role::Server
    } else {
        Role::Client
    };
    let label = item.holder.label();
    let days = reissue_days(&item.leaf, DEFAULT_LEAF_DAYS, &label, notes);
    let request = LeafRequest {
        cn: &item.leaf.cn,
        sans: &sans,
        role,
        now,
        days,
    };
    let cert = ca.issue(&request, key).map_err(|e| {
        Error::Failed(format!(
            "cannot issue the certificate of {}: {e}; nothing was changed",
            request.cn
        ))
    })?;
    ws.write_pair(&item.holder, &ca.cert_pem, &cert)?;
    let line = format!(
        "re-issued {label} ({}): {} and {}, expires {}",
        item.reason,
        item.holder.cert(),
        item.holder.key_name(),
        date(cert.not_after)
    );
    Ok((line, cert.cut_to_ca))
}

fn report(dir: &Path, done: &Done, selection: &Selection) -> String {
    let mut out = String::new();
    if done.new_ca {
        out.push_str(&format!(
            "created a new CA: {}, expires {}\n",
            Holder::Ca.cert(),
            date(done.ca.not_after)
        ));
    }
    for line in &done.issued {
        out.push_str(&format!("{line}\n"));
    }
    out.push_str(&format!(
        "the previous files are in {}\n",
        done.backup.display()
    ));
    for note in &done.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    if done.clamped {
        out.push_str(&format!(
            "note: some certificates end with the CA on {}: replace the CA before then (dockertls rotate --ca)\n",
            date(done.ca.not_after)
        ));
    }
    let holders: Vec<&Holder> = selection.items.iter().map(|i| &i.holder).collect();
    if holders.iter().any(|h| h.client_name().is_none()) {
        out.push_str(&restart_hint(dir));
    }
    let changed: Vec<String> = holders
        .iter()
        .filter(|h| h.client_name().is_some())
        .map(|h| h.folder())
        .collect();
    if done.new_ca {
        out.push_str(&format!(
            "every client needs its new folder now: {}; the old client certificates stop working once dockerd restarts with the new CA\n",
            changed.join(", ")
        ));
    } else if !changed.is_empty() {
        out.push_str(&format!(
            "give each user the new files of their folder: {}\n",
            changed.join(", ")
        ));
    }
    out
}

/// How to put the new server/ in place: into the install dir that DIR/daemon.json names
/// (`init --install-dir`), /etc/docker/tls if it names none.
fn restart_hint(dir: &Path) -> String {
    let install_dir =
        state::install_dir(dir).map_or("/etc/docker/tls".to_string(), |p| p.display().to_string());
    let target = crate::render::shell_quote(&format!("{install_dir}/"));
    let server = Holder::server();
    let folder = server.folder();
    let ca_cert = format!("{folder}/{}", crate::store::layout::CA_CERT);
    format!(
        "next: install the new {folder}/ on the daemon host and restart dockerd (it does not reload certificates on SIGHUP):\n  \
         install -m 0444 -o root -g root {ca_cert} {} {target}\n  \
         install -m 0400 -o root -g root {} {target}\n  \
         systemctl restart docker\n",
        server.cert(),
        server.key(),
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use ::time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    fn leaf(days_left: i64) -> Leaf {
        Leaf {
            der: Vec::new(),
            cn: "h".into(),
            sans: vec![Address::Dns("h.example".into())],
            serial: "01".into(),
            not_before: NOW - ::time::Duration::days(365),
            not_after: NOW + ::time::Duration::days(days_left) + ::time::Duration::hours(1),
        }
    }

    fn plan(args: &[&str]) -> RotatePlan {
        use clap::Parser;
        let cli =
            crate::cli::Cli::try_parse_from(["dockertls", "rotate"].iter().chain(args).copied())
                .unwrap();
        match cli.command {
            crate::cli::Command::Rotate(args) => RotatePlan::from_args(&args).unwrap(),
            _ => unreachable!(),
        }
    }

    fn chosen(selection: &Selection) -> Vec<(String, String)> {
        let items = selection.items.iter();
        items
            .map(|i| (i.holder.label(), i.reason.clone()))
            .collect()
    }

    #[test]
    fn only_what_expires_within_the_window_is_chosen() {
        let clients = [
            ("alice".to_string(), leaf(10)),
            ("bob".to_string(), leaf(200)),
        ];
        let selection = select(&plan(&[]), &leaf(29), &clients, NOW);
        assert_eq!(
            chosen(&selection),
            [
                (
                    "server".into(),
                    "expires on 2026-06-30 (29 days left, within 30)".into()
                ),
                (
                    "client alice".into(),
                    "expires on 2026-06-11 (10 days left, within 30)".into()
                ),
            ]
        );
        assert_eq!(selection.kept, ["client bob: valid until 2026-12-18"]);
        // 30 days left is not within 30.
        let selection = select(&plan(&[]), &leaf(30), &[], NOW);
        assert!(selection.items.is_empty());
        let selection = select(&plan(&["--within", "0"]), &leaf(0), &[], NOW);
        assert!(selection.items.is_empty(), "0 days left is not within 0");
    }

    #[test]
    fn all_ca_and_allow_override_the_expiry() {
        let clients = [("alice".to_string(), leaf(300))];
        let all = select(&plan(&["--all"]), &leaf(300), &clients, NOW);
        assert_eq!(all.items.len(), 2);
        assert!(all.items.iter().all(|i| i.reason == "--all"));
        let ca = select(&plan(&["--ca"]), &leaf(300), &clients, NOW);
        assert!(ca.items.iter().all(|i| i.reason == "a new CA"));
        let allow = plan(&["--server", "--allow", "10.0.0.5,h.example"]);
        let selection = select(&allow, &leaf(300), &[], NOW);
        assert_eq!(
            chosen(&selection),
            [("server".into(), "adds 10.0.0.5".into())]
        );
        // A SAN the certificate has already changes nothing.
        let same = plan(&["--server", "--allow", "h.example"]);
        assert!(select(&same, &leaf(300), &[], NOW).items.is_empty());
    }

    #[test]
    fn selecting_clients_leaves_the_server_alone() {
        let clients = [("alice".to_string(), leaf(1))];
        let selection = select(&plan(&["--client", "alice"]), &leaf(1), &clients, NOW);
        assert_eq!(chosen(&selection).len(), 1);
        assert_eq!(selection.items[0].holder, Holder::client("alice"));
    }
}
