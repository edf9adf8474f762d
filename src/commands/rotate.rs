//! `dockertls rotate`: re-issue expiring certificates with fresh keys, add SANs to the server
//! certificate, or replace the CA; every replaced folder is backed up first and swapped in
//! whole (see `store::workspace`).
//!
//! plan (`plan::RotatePlan`) → pure selection at `now` ([`select`]) → execute (the store) →
//! report (the text printed).

use std::path::Path;

use ::time::OffsetDateTime;
use rayon::prelude::*;

use crate::cli::RotateArgs;
use crate::commands::client::check_ca_valid;
use crate::error::Error;
use crate::findings::{Notice, Outcome};
use crate::names::Address;
use crate::pki::{self, Ca, Issued, KeyType, LeafRequest, Role, Window};
use crate::plan::{DEFAULT_CA_DAYS, DEFAULT_LEAF_DAYS, MAX_DAYS, RotatePlan, RotateScope};
use crate::secret::Passphrase;
use crate::store::layout::{CLIENTS_DIR, SERVERS_DIR};
use crate::store::registry;
use crate::store::state::{self, Leaf, date};
use crate::store::workspace::{self, Workspace};
use crate::store::{Holder, Pki, Stage};

/// One certificate to re-issue, and why.
#[derive(Debug)]
pub struct Item {
    pub holder: Holder,
    pub leaf: Leaf,
    pub reason: String,
    /// When it became (or becomes) due by the rule or `--within`.
    pub due_on: OffsetDateTime,
}

/// What [`select`] decided.
#[derive(Debug, Default)]
pub struct Selection {
    /// To re-issue, the server first.
    pub items: Vec<Item>,
    /// Kept, with their expiry and due date (`server: valid until ..., due on ...`).
    pub kept: Vec<String>,
    /// Due, but a new issue would end with the CA and be due at once: the CA is due.
    pub blocked: Vec<String>,
    /// The CA is due for renewal (`rotate --ca`).
    pub ca_due: Option<String>,
    /// Issue 12: selected, but the key lives elsewhere: each line says the `request` and
    /// `sign` to run (rotate never writes a key there).
    pub needs_csr: Vec<String>,
    /// Review item 3: revoked clients left out (not named); `--ca` carries their folders over
    /// as they are.
    pub revoked: Vec<Holder>,
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
    // A rotation stopped half-way is finished by reading the state (registry::open, under the
    // lock), even when nothing is due now: `verify` sends the operator here for that.
    let (selection, _) = read_and_select(dir, &plan, now)?;
    let needs_csr = !selection.needs_csr.is_empty();
    let mut notices = Vec::new();
    let text = if selection.items.is_empty() {
        notices.extend(selection_warnings(&selection));
        nothing_to_do(&plan, &selection)
    } else if plan.dry_run {
        notices.extend(selection_warnings(&selection));
        dry_run(&plan, &selection)
    } else {
        // Selects again under the lock, and says what that selection left out.
        execute(&mut notices, dir, &plan, passphrase_file, now)?
    };
    let mut outcome = Outcome::report(&text);
    // Issue 12: an entry due whose key lives elsewhere is work left to do (exit 1).
    if needs_csr {
        outcome.exit = crate::error::Exit::FailedOrWarning;
    }
    outcome.notices.extend(notices);
    Ok(outcome)
}

/// Issue 12: moves the selected entries whose key lives elsewhere (signed from a CSR) out of
/// the items into `needs_csr`, with the commands that renew them. `--ca` is refused while such
/// entries exist: it would leave them signed by a CA no longer trusted.
fn set_aside_keyless(
    dir: &Path,
    plan: &RotatePlan,
    registry: &registry::State,
    selection: &mut Selection,
) -> Result<(), Error> {
    use crate::store::registry::KeyPlace;
    let elsewhere = |holder: &Holder| match holder {
        Holder::Server(name) => registry.servers().get(name).map(|e| e.key),
        Holder::Client(name) => registry.clients().get(name).map(|e| e.key),
        Holder::Ca => None,
    } == Some(KeyPlace::Elsewhere);
    let (keyless, items): (Vec<Item>, Vec<Item>) = std::mem::take(&mut selection.items)
        .into_iter()
        .partition(|item| elsewhere(&item.holder));
    selection.items = items;
    if plan.scope == RotateScope::NewCa && !keyless.is_empty() {
        let labels: Vec<String> = keyless.iter().map(|i| i.holder.label()).collect();
        return Err(Error::refused(format!(
            "rotate --ca cannot renew {}: their keys live elsewhere (signed from a CSR), and a new CA would leave them untrusted; nothing was changed",
            labels.join(", ")
        ))
        .hint("remove them (dockertls server remove NAME, dockertls client remove NAME), rotate --ca, then sign a new request for each"));
    }
    let quoted = |p: &Path| crate::render::shell_quote(&p.display().to_string());
    for item in keyless {
        let (request, sign) = match &item.holder {
            Holder::Server(name) => {
                let host = registry
                    .servers()
                    .get(name)
                    .map_or("HOST", |e| e.host.as_str());
                (
                    format!(
                        "dockertls request server --host {} --out DIR",
                        crate::render::shell_quote(host)
                    ),
                    format!(
                        "dockertls --dir {} sign DIR/server.csr --server {name}",
                        quoted(dir)
                    ),
                )
            }
            Holder::Client(name) => (
                format!("dockertls request client {name} --out DIR"),
                format!(
                    "dockertls --dir {} sign DIR/client.csr --client {name}",
                    quoted(dir)
                ),
            ),
            Holder::Ca => continue,
        };
        selection.needs_csr.push(format!(
            "{} ({}) needs a new CSR: its key lives elsewhere, and rotate never writes one here; where the key lives: {request}; then here: {sign}",
            item.holder.label(),
            item.reason
        ));
    }
    Ok(())
}

/// What a selection did not re-issue because the CA is due, and the CA's own due date.
fn selection_warnings(selection: &Selection) -> Vec<Notice> {
    let mut warnings: Vec<Notice> = selection
        .blocked
        .iter()
        .map(|line| Notice::Warning(format!("not re-issued: {line}")))
        .collect();
    warnings.extend(
        selection
            .needs_csr
            .iter()
            .map(|line| Notice::Warning(format!("not re-issued: {line}"))),
    );
    if let Some(line) = selection.ca_due.as_ref() {
        warnings.push(Notice::Warning(line.clone()));
    } else if !selection.blocked.is_empty() {
        warnings.push(Notice::Warning(
            "the CA is due: replace it with dockertls rotate --ca".to_string(),
        ));
    }
    warnings
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
    let registry = registry::open(dir, now)?;
    let server_names = match plan.scope {
        RotateScope::Selected if !plan.servers.is_empty() => {
            for name in &plan.servers {
                registry.resolve_server(dir, Some(name))?;
            }
            plan.servers.clone()
        }
        _ => registry.server_names(),
    };
    if !plan.allow.is_empty() && server_names.len() != 1 {
        return Err(Error::refused(format!(
            "--allow adds SANs to one server's certificate, and {} has {} servers ({})",
            dir.display(),
            server_names.len(),
            server_names.join(", ")
        ))
        .hint("name it: dockertls rotate --server NAME --allow ADDR"));
    }
    let mut servers = Vec::new();
    if plan.scope != RotateScope::Selected || plan.server {
        for name in &server_names {
            servers.push((name.clone(), readable(&Holder::server(name))?));
        }
    }
    let known = state::client_names(dir);
    let names = match plan.scope {
        RotateScope::Selected => &plan.clients,
        RotateScope::NewCa | RotateScope::Everything => &known,
    };
    let mut clients = Vec::new();
    for name in names {
        clients.push((name.clone(), readable(&Holder::client(name))?));
    }
    let (revoked, lines) = set_aside_revoked(plan, &registry, &mut clients)?;
    let ca = readable(&Holder::Ca)?;
    let mut selection = select(plan, &ca, &servers, &clients, now)?;
    selection.kept.extend(lines);
    selection.revoked = revoked;
    set_aside_keyless(dir, plan, &registry, &mut selection)?;
    Ok((selection, !known.is_empty()))
}

/// Review item 3: a revoked client's certificate is re-issued only when the run names it
/// (`rotate --client NAME --all`, the documented way back in); a run over every client (due,
/// `--all`, `--ca`) leaves it out, so its user stays shut out. Returns the lines that say so.
fn set_aside_revoked(
    plan: &RotatePlan,
    registry: &registry::State,
    clients: &mut Vec<(String, Leaf)>,
) -> Result<(Vec<Holder>, Vec<String>), Error> {
    let record = crate::store::authz::record(registry)?;
    let mut lines = Vec::new();
    let mut holders = Vec::new();
    clients.retain(|(name, leaf)| {
        let named = plan.scope == RotateScope::Selected && plan.clients.contains(name);
        if named || !record.is_revoked(&leaf.serial) {
            return true;
        }
        lines.push(format!(
            "{}: revoked (serial {}), not re-issued; to let it in again: dockertls rotate --client {name} --all",
            Holder::client(name).label(),
            leaf.serial
        ));
        holders.push(Holder::client(name));
        false
    });
    Ok((holders, lines))
}

/// Which certificates to re-issue at `now`, and why: pure, no I/O. `servers` and `clients`
/// are those in scope (the selected ones, or all). A certificate is due by the renewal rule
/// (`pki::Window::Rule`), or `--within N` when given; a run never selects what its own
/// re-issue would leave due: `--within N` at or over a certificate's lifetime is refused, and
/// a leaf that a new issue would cut to a CA about to end is left for `rotate --ca`.
pub fn select(
    plan: &RotatePlan,
    ca: &Leaf,
    servers: &[(String, Leaf)],
    clients: &[(String, Leaf)],
    now: OffsetDateTime,
) -> Result<Selection, Error> {
    let mut selection = Selection::default();
    let new_ca = plan.scope == RotateScope::NewCa;
    let window = Window::from_option(plan.within);
    let forced = if new_ca {
        Some("a new CA".to_string())
    } else if plan.all {
        Some("--all".to_string())
    } else {
        None
    };
    if forced.is_none() && pki::is_due(now, ca.not_before, ca.not_after, window) {
        selection.ca_due = Some(format!(
            "the CA is due: it expires on {} ({} days left) and every certificate it signs ends with it: replace it with dockertls rotate --ca",
            date(ca.not_after),
            ca.days_left(now)
        ));
    }
    let mut due = |holder: &Holder, leaf: &Leaf| {
        due_reason(plan, ca, holder, leaf, now, &mut selection.blocked)
    };
    let mut chosen: Vec<(Holder, &Leaf, Option<String>)> = Vec::new();
    let servers_in_scope = plan.scope != RotateScope::Selected || plan.server;
    for (name, server) in servers.iter().filter(|_| servers_in_scope) {
        let holder = Holder::server(name);
        let new_sans: Vec<String> = plan
            .allow
            .iter()
            .filter(|a| !server.sans.contains(a))
            .map(ToString::to_string)
            .collect();
        let adds = (!new_sans.is_empty()).then(|| format!("adds {}", new_sans.join(", ")));
        let reason = forced.clone().filter(|_| new_ca).or(adds);
        let reason = match reason.or_else(|| forced.clone()) {
            Some(reason) => Some(reason),
            None => due(&holder, server)?,
        };
        chosen.push((holder, server, reason));
    }
    for (name, leaf) in clients {
        let holder = Holder::client(name);
        let reason = match forced.clone() {
            Some(reason) => Some(reason),
            None => due(&holder, leaf)?,
        };
        chosen.push((holder, leaf, reason));
    }
    for (holder, leaf, reason) in chosen {
        let due_on = pki::renewal_due(leaf.not_before, leaf.not_after, window);
        keep_or_take(&mut selection, holder, leaf, reason, due_on);
    }
    Ok(selection)
}

/// Why `leaf` is due at `now` (None: not due, or due but blocked by the CA's end, which is
/// then pushed on `blocked`); a `--within` at least its lifetime is refused.
fn due_reason(
    plan: &RotatePlan,
    ca: &Leaf,
    holder: &Holder,
    leaf: &Leaf,
    now: OffsetDateTime,
    blocked: &mut Vec<String>,
) -> Result<Option<String>, Error> {
    let window = Window::from_option(plan.within);
    // Whether due now or not: a window at least the lifetime selects every run.
    let days = pki::reissue_days(leaf.not_before, leaf.not_after, DEFAULT_LEAF_DAYS, MAX_DAYS);
    if let Some(within) = plan.within.filter(|&within| within >= days) {
        return Err(Error::Refused(format!(
            "--within {within}: {} is valid for {days} days, so its new certificate would be due again at once and every run would re-issue it; give --within less than {days}, or a longer lifetime (--days of dockertls init or client add)",
            holder.label()
        )));
    }
    if !pki::is_due(now, leaf.not_before, leaf.not_after, window) {
        return Ok(None);
    }
    // The new certificate, as `Ca::issue` will make it: cut to the CA's end. (An expired
    // CA is refused when signing, with the command that replaces it.)
    let intended = pki::validity(now, days, None);
    let lead = pki::renewal_window(intended.not_before, intended.not_after, window);
    let end = intended.not_after.min(ca.not_after);
    if end - lead <= now && now <= ca.not_after {
        blocked.push(format!(
            "{} (due since {}): a new one would end with the CA on {} and be due at once",
            holder.label(),
            date(pki::renewal_due(leaf.not_before, leaf.not_after, window)),
            date(ca.not_after)
        ));
        return Ok(None);
    }
    let days_left = leaf.days_left(now);
    Ok(Some(match plan.within {
        Some(within) => format!(
            "expires on {} ({days_left} days left, within {within})",
            date(leaf.not_after)
        ),
        None => format!(
            "expires on {} ({days_left} days left, less than a third of its {days} days or 30)",
            date(leaf.not_after)
        ),
    }))
}

fn keep_or_take(
    selection: &mut Selection,
    holder: Holder,
    leaf: &Leaf,
    reason: Option<String>,
    due_on: OffsetDateTime,
) {
    match reason {
        Some(reason) => selection.items.push(Item {
            holder,
            leaf: leaf.clone(),
            reason,
            due_on,
        }),
        None => selection.kept.push(format!(
            "{}: valid until {}, due on {}",
            holder.label(),
            date(leaf.not_after),
            date(due_on)
        )),
    }
}

fn nothing_to_do(plan: &RotatePlan, selection: &Selection) -> String {
    let mut out = match plan.within {
        Some(within) => {
            format!("nothing to rotate: no selected certificate expires within {within} days\n")
        }
        None => "nothing to rotate: no selected certificate is due (less than a third of its lifetime left, at most 30 days)\n".to_string(),
    };
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
        out.push_str(&format!(
            "would re-issue {label}: {}; due on {}\n",
            item.reason,
            date(item.due_on)
        ));
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
    notices: &mut Vec<Notice>,
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
    notices.extend(selection_warnings(selection));
    if selection.items.is_empty() {
        return Ok(nothing_to_do(plan, selection));
    }
    let (issued, clamped) = reissue_all(&ws, &ca, &selection.items, &plan.allow, now, &mut notes)?;
    if let Some((files, passphrase)) = &new_ca {
        ws.write_ca(files, passphrase.as_ref())?;
        // The whole clients/ is swapped: a revoked client left out keeps its folder as is.
        for holder in &selection.revoked {
            let folder = holder.folder();
            ws.copy_in(&ws.dir().subfolder(&folder)?, &folder)?;
        }
    }
    // With --ca the whole ca/, server/ and clients/ folders are swapped (the CA first, so that
    // an interrupted run never leaves a CA folder older than what it signed); otherwise each
    // re-issued folder.
    let folders: Vec<String> = if new_ca.is_some() {
        let any_server = selection
            .items
            .iter()
            .any(|i| i.holder.server_name().is_some());
        let mut folders = vec![Holder::Ca.folder()];
        folders.extend(any_server.then(|| SERVERS_DIR.to_string()));
        folders.extend(any_client.then(|| CLIENTS_DIR.to_string()));
        folders
    } else {
        selection.items.iter().map(|i| i.holder.folder()).collect()
    };
    ws.replace_all(&folders)?;
    let backup = ws.backup_dir()?;
    let authz = revocations(&ws, &ca, plan, selection, now, notices);
    // Everything is in place: only now are old backups (and their old keys) deleted. The
    // rotation is done whatever happens here: a failure to prune is a warning, not an error.
    let pruned = ws.prune_backups(plan.keep_backups).unwrap_or_else(|err| {
        notices.push(Notice::Warning(format!(
            "the new certificates are in place, but old backups were not pruned: {err}; then run dockertls backup prune"
        )));
        Default::default()
    });
    drop(ws);
    notices.extend(crate::commands::backup::foreign_notices(&pruned));
    let done = Done {
        ca,
        new_ca: new_ca.is_some(),
        issued,
        notes,
        clamped,
        backup,
    };
    let mut text = report(dir, &done, selection);
    text.push_str(&authz);
    if !pruned.removed.is_empty() {
        text.push_str(&crate::commands::backup::report(&pruned));
    }
    // issue 14 (import): the docker contexts of what was re-issued get the new files.
    let reissued: Vec<Holder> = selection.items.iter().map(|i| i.holder.clone()).collect();
    let (contexts, warnings) = crate::commands::context::refresh(dir, &reissued);
    text.push_str(&contexts);
    notices.extend(warnings.into_iter().map(Notice::Warning));
    Ok(text)
}

/// Issue 13, after the swaps: `--revoke-old` records the replaced client certificates (revoked
/// after the grace), what is due is revoked, and the CRL and policy are written again into
/// every server folder (signed by the new CA after `--ca`). The rotation is done whatever
/// happens here: a failure is a warning with the command that finishes it.
fn revocations(
    ws: &Workspace,
    ca: &Ca,
    plan: &RotatePlan,
    selection: &Selection,
    now: OffsetDateTime,
    notices: &mut Vec<Notice>,
) -> String {
    let replaced: Vec<(String, String)> = selection
        .items
        .iter()
        .filter_map(|i| Some((i.holder.client_name()?.to_string(), i.leaf.serial.clone())))
        .collect();
    crate::commands::crl::republish(ws, ca, &replaced, plan.revoke_old, now).unwrap_or_else(
        |err| {
            notices.push(Notice::Warning(format!(
                "the new certificates are in place, but the revocation list was not updated: {err}; fix that, then run dockertls crl refresh{}",
                if plan.revoke_old.is_some() {
                    " (the replaced certificates may not be recorded for revocation: look for \"superseded\" in dockertls.json)"
                } else {
                    ""
                }
            )));
            String::new()
        },
    )
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
    // issue 14 (import): a PKI imported without its CA key gets its new CA all the same.
    let keyless = std::fs::symlink_metadata(&key_path).is_err();
    let old_key = zeroize::Zeroizing::new(if keyless {
        Vec::new()
    } else {
        crate::userfile::read_regular(&key_path, crate::userfile::MAX_PKI_FILE)
            .map_err(|e| Error::Refused(e.to_string()))?
    });
    let passphrase = if !keyless && crate::secret::is_encrypted(&old_key) {
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

/// Issues every item again under `ca` with a fresh key and stages its folder; returns the
/// report lines and whether any validity was cut to the CA's. The keys are made and signed on
/// every core (issue 12: 1,200 leaves), then the folders are staged one by one, in order.
fn reissue_all(
    ws: &Workspace,
    ca: &Ca,
    items: &[Item],
    allow: &[Address],
    now: OffsetDateTime,
    notes: &mut Vec<String>,
) -> Result<(Vec<String>, bool), Error> {
    let days: Vec<i64> = items
        .iter()
        .map(|item| {
            let label = item.holder.label();
            reissue_days(&item.leaf, DEFAULT_LEAF_DAYS, &label, notes)
        })
        .collect();
    let signed: Vec<Result<Issued, Error>> = items
        .par_iter()
        .zip(&days)
        .map(|(item, days)| sign(ca, item, allow, now, *days))
        .collect();
    let mut lines = Vec::with_capacity(items.len());
    let mut clamped = false;
    for (item, cert) in items.iter().zip(signed) {
        let cert = cert?;
        match item.holder.server_name() {
            // A server folder keeps what else it holds (daemon.json, override.conf, ...).
            Some(name) => ws.write_server_pair(name, &ca.cert_pem, &cert)?,
            None => ws.write_pair(&item.holder, &ca.cert_pem, &cert)?,
        }
        lines.push(format!(
            "re-issued {} ({}): {} and {}, expires {}",
            item.holder.label(),
            item.reason,
            item.holder.cert(),
            item.holder.key_name(),
            date(cert.not_after)
        ));
        clamped |= cert.cut_to_ca;
    }
    Ok((lines, clamped))
}

/// `item`'s new key and certificate, valid `days` from `now` (no I/O).
fn sign(
    ca: &Ca,
    item: &Item,
    allow: &[Address],
    now: OffsetDateTime,
    days: i64,
) -> Result<Issued, Error> {
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
    let request = LeafRequest {
        cn: &item.leaf.cn,
        sans: &sans,
        role,
        now,
        days,
    };
    ca.issue(&request, key).map_err(|e| {
        Error::Failed(format!(
            "cannot issue the certificate of {}: {e}; nothing was changed",
            request.cn
        ))
    })
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
    for line in selection
        .kept
        .iter()
        .filter(|l| l.contains(": revoked (serial "))
    {
        out.push_str(&format!("kept {line}\n"));
    }
    // --keep-backups 0 deletes this run's backup too: say so rather than point at nothing.
    if done.backup.exists() {
        out.push_str(&format!(
            "the previous files are in {}\n",
            done.backup.display()
        ));
    } else {
        out.push_str("the previous files were not kept (--keep-backups 0)\n");
    }
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
    for name in holders.iter().filter_map(|h| h.server_name()) {
        out.push_str(&restart_hint(dir, name));
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

/// How to put the new servers/NAME/ in place: into the install dir that its daemon.json
/// names (`init --install-dir`), /etc/docker/tls if it names none.
fn restart_hint(dir: &Path, name: &str) -> String {
    let install_dir = state::install_dir(dir, name)
        .map_or("/etc/docker/tls".to_string(), |p| p.display().to_string());
    let target = crate::render::shell_quote(&format!("{install_dir}/"));
    let server = Holder::server(name);
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
    use ::time::Duration;
    use ::time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    /// A certificate valid for `lifetime` days, `days_left` days (and an hour) from its end.
    fn cert(lifetime: i64, days_left: i64) -> Leaf {
        let not_after = NOW + Duration::days(days_left) + Duration::hours(1);
        Leaf {
            der: Vec::new(),
            cn: "h".into(),
            sans: vec![Address::Dns("h.example".into())],
            serial: "01".into(),
            not_before: not_after - Duration::days(lifetime),
            not_after,
        }
    }

    fn leaf(days_left: i64) -> Leaf {
        cert(365, days_left)
    }

    fn ca() -> Leaf {
        cert(3650, 3000)
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

    fn pick(plan: &RotatePlan, server: &Leaf, clients: &[(String, Leaf)]) -> Selection {
        select(plan, &ca(), &one(server), clients, NOW).unwrap()
    }

    /// The one server, `h`, in scope.
    fn one(server: &Leaf) -> Vec<(String, Leaf)> {
        vec![("h".to_string(), server.clone())]
    }

    fn chosen(selection: &Selection) -> Vec<(String, String)> {
        let items = selection.items.iter();
        items
            .map(|i| (i.holder.label(), i.reason.clone()))
            .collect()
    }

    #[test]
    fn what_has_less_than_a_third_of_its_lifetime_left_is_chosen() {
        let clients = [
            ("alice".to_string(), cert(9, 2)),
            ("bob".to_string(), cert(9, 4)),
            ("carol".to_string(), leaf(200)),
        ];
        let selection = pick(&plan(&[]), &leaf(29), &clients);
        assert_eq!(
            chosen(&selection),
            [
                (
                    "server h".into(),
                    "expires on 2026-06-30 (29 days left, less than a third of its 365 days or 30)"
                        .into()
                ),
                (
                    "client alice".into(),
                    "expires on 2026-06-03 (2 days left, less than a third of its 9 days or 30)"
                        .into()
                ),
            ]
        );
        // Each kept certificate says when it becomes due: bob 3 days before his end.
        assert_eq!(
            selection.kept,
            [
                "client bob: valid until 2026-06-05, due on 2026-06-02",
                "client carol: valid until 2026-12-18, due on 2026-11-18"
            ]
        );
        assert_eq!(
            selection.items[0].due_on,
            datetime!(2026-05-31 13:00 UTC),
            "a 365-day certificate is due 30 days before its end"
        );
        // 30 days left is not less than 30.
        assert!(pick(&plan(&[]), &leaf(30), &[]).items.is_empty());
        assert!(selection.ca_due.is_none() && selection.blocked.is_empty());
    }

    #[test]
    fn within_overrides_the_rule() {
        let selection = pick(&plan(&["--within", "60"]), &leaf(59), &[]);
        assert_eq!(
            chosen(&selection),
            [(
                "server h".into(),
                "expires on 2026-07-30 (59 days left, within 60)".into()
            )]
        );
        let clients = [("alice".to_string(), cert(9, 4))];
        let selection = pick(&plan(&["--within", "5"]), &leaf(100), &clients);
        assert_eq!(chosen(&selection).len(), 1, "4 days left is within 5");
        let selection = pick(&plan(&["--within", "0"]), &leaf(0), &[]);
        assert!(selection.items.is_empty(), "0 days left is not within 0");
    }

    #[test]
    fn within_at_or_over_the_lifetime_is_refused_instead_of_flapping() {
        let clients = [("alice".to_string(), cert(10, 8))];
        for within in ["10", "30"] {
            let plan = plan(&["--within", within]);
            let err = select(&plan, &ca(), &one(&leaf(200)), &clients, NOW).unwrap_err();
            assert_eq!(err.exit().code(), 2);
            let message = err.to_string();
            assert!(
                message.starts_with(&format!(
                    "--within {within}: client alice is valid for 10 days"
                )),
                "{message}"
            );
            assert!(message.contains("--days"), "{message}");
        }
        assert_eq!(
            chosen(&pick(&plan(&["--within", "9"]), &leaf(200), &clients)).len(),
            1
        );
    }

    #[test]
    fn a_fresh_certificate_is_never_chosen_again() {
        for days in [1, 9, 10, 30, 90, 365, 825, 1080] {
            let made = pki::validity(NOW, days, None);
            let fresh = Leaf {
                not_before: made.not_before,
                not_after: made.not_after,
                ..leaf(0)
            };
            let clients = [("alice".to_string(), fresh.clone())];
            let selection = pick(&plan(&[]), &fresh, &clients);
            assert!(
                selection.items.is_empty(),
                "{days}-day certificate chosen again"
            );
            // ...until two thirds of its life (or all but 30 days) have passed.
            let later = pki::renewal_due(made.not_before, made.not_after, Window::Rule)
                + Duration::seconds(1);
            let selection = select(&plan(&[]), &ca(), &one(&fresh), &clients, later).unwrap();
            assert_eq!(selection.items.len(), 2, "{days}");
        }
    }

    #[test]
    fn near_the_cas_end_the_ca_is_due_instead_of_short_leaves_again_and_again() {
        let ca = cert(3650, 20);
        // A 365-day server cut to the CA's end: a new one would end with the CA, due at once.
        let server = cert(365, 20);
        // A 9-day client still fits well before the CA's end.
        let clients = [("alice".to_string(), cert(9, 2))];
        let selection = select(&plan(&[]), &ca, &one(&server), &clients, NOW).unwrap();
        assert_eq!(selection.items.len(), 1);
        assert_eq!(selection.items[0].holder, Holder::client("alice"));
        assert_eq!(selection.blocked.len(), 1);
        assert!(
            selection.blocked[0].starts_with("server h (due since 2026-05-22)"),
            "{:?}",
            selection.blocked
        );
        let ca_due = selection.ca_due.unwrap();
        assert!(ca_due.contains("dockertls rotate --ca"), "{ca_due}");
        // An expired CA is not "due" but gone: the leaves are selected, and signing refuses
        // with the command that replaces it.
        let expired = cert(3650, -2);
        let selection = select(&plan(&[]), &expired, &one(&server), &clients, NOW).unwrap();
        assert_eq!(selection.items.len(), 2);
        // rotate --ca replaces everything whatever the dates.
        let selection = select(&plan(&["--ca"]), &ca, &one(&server), &clients, NOW).unwrap();
        assert_eq!(selection.items.len(), 2);
        assert!(selection.blocked.is_empty() && selection.ca_due.is_none());
    }

    #[test]
    fn all_ca_and_allow_override_the_expiry() {
        let clients = [("alice".to_string(), leaf(300))];
        let all = pick(&plan(&["--all"]), &leaf(300), &clients);
        assert_eq!(all.items.len(), 2);
        assert!(all.items.iter().all(|i| i.reason == "--all"));
        let ca = pick(&plan(&["--ca"]), &leaf(300), &clients);
        assert!(ca.items.iter().all(|i| i.reason == "a new CA"));
        let allow = plan(&["--server", "--allow", "10.0.0.5,h.example"]);
        let selection = pick(&allow, &leaf(300), &[]);
        assert_eq!(
            chosen(&selection),
            [("server h".into(), "adds 10.0.0.5".into())]
        );
        // A SAN the certificate has already changes nothing.
        let same = plan(&["--server", "--allow", "h.example"]);
        assert!(pick(&same, &leaf(300), &[]).items.is_empty());
    }

    #[test]
    fn selecting_clients_leaves_the_server_alone() {
        let clients = [("alice".to_string(), leaf(1))];
        let selection = pick(&plan(&["--client", "alice"]), &leaf(1), &clients);
        assert_eq!(chosen(&selection).len(), 1);
        assert_eq!(selection.items[0].holder, Holder::client("alice"));
    }
}
