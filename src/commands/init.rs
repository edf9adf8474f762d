//! `dockertls init`: validate, generate, write atomically, then tell the operator what next.

use std::path::{Path, PathBuf};

use ::time::OffsetDateTime;
use ::time::macros::format_description;

use crate::cli::InitArgs;
use crate::error::Error;
use crate::findings::Outcome;
use crate::names;
use crate::pki::{self, PkiRequest};
use crate::plan::InitPlan;
use crate::render;
use crate::secret::{self, Passphrase};
use crate::store::layout::{CLIENTS_DIR, DAEMON_JSON, INIT_ENTRIES, OVERRIDE_CONF, STATE_FILE};
use crate::store::registry::{self, ClientEntry, KeyPlace, ServerEntry, State};
use crate::store::{self, CONFIG_FILE, Holder, Stage, Staging};
use crate::wizard;

/// Runs `init` at time `now`.
pub fn run(
    dir: &Path,
    args: &InitArgs,
    passphrase_file: Option<&Path>,
    now: OffsetDateTime,
) -> Result<Outcome, Error> {
    if args.host.is_none() && !args.yes && Passphrase::can_prompt() {
        // The wizard fills the same arguments the flags do, then the same code runs.
        return match wizard::run(dir, args, passphrase_file)? {
            Some(answers) => create(&answers.dir, &answers.args, answers.passphrase, now),
            None => Ok(Outcome::report("")),
        };
    }
    // Refuse bad input and an occupied --dir before asking for a passphrase; `create` checks
    // again (it is also the wizard's way in).
    let plan = InitPlan::from_args(dir, args)?;
    server_name(args, &plan)?;
    store::check_output_dir(&plan.dir, plan.force)?;
    let passphrase = if args.encrypt_ca_key || passphrase_file.is_some() {
        if args.yes && passphrase_file.is_none() {
            return Err(Error::Refused(
                "--encrypt-ca-key with --yes needs --ca-passphrase-file FILE".into(),
            ));
        }
        let pass = secret::obtain(
            passphrase_file,
            "Passphrase for the CA key",
            true,
            "--encrypt-ca-key needs a passphrase",
        )?;
        pass.check_new()?;
        Some(pass)
    } else {
        None
    };
    create(dir, args, passphrase, now)
}

/// Validates (the wizard's answers too), generates and writes.
pub fn create(
    dir: &Path,
    args: &InitArgs,
    passphrase: Option<Passphrase>,
    now: OffsetDateTime,
) -> Result<Outcome, Error> {
    let plan = InitPlan::from_args(dir, args)?;
    let name = server_name(args, &plan)?;
    let present = store::check_output_dir(&plan.dir, plan.force)?;
    for note in &plan.notes {
        eprintln!("note: {note}");
    }
    let staging = Staging::create(&plan.dir)?;

    let server_cn = plan.server_cn();
    let pki = pki::issue_pki(&PkiRequest {
        key_type: plan.key_type,
        now,
        leaf_days: plan.leaf_days,
        ca_days: plan.ca_days,
        server_cn: &server_cn,
        server_sans: &plan.sans,
        clients: &plan.clients,
    })
    .map_err(|e| {
        Error::Failed(format!(
            "cannot generate the {} keys and certificates: {e}; nothing was written: run dockertls init again, or try another --key-type",
            plan.key_type.name()
        ))
    })?;

    staging.write_ca(&pki.ca, passphrase.as_ref())?;
    let server = Holder::server(&name);
    staging.write_pair(&server, &pki.ca.cert_pem, &pki.server)?;
    staging.mkdir(CLIENTS_DIR)?;
    let mut state = State::default();
    for (client_name, client) in &pki.clients {
        staging.write_pair(&Holder::client(client_name), &pki.ca.cert_pem, client)?;
        state
            .clients
            .insert(client_name.clone(), ClientEntry::default());
    }
    let daemon_json = render::daemon_json(plan.listen, &plan.install_dir);
    let folder = server.folder();
    staging.write(
        &format!("{folder}/{DAEMON_JSON}"),
        daemon_json.as_bytes(),
        CONFIG_FILE,
    )?;
    staging.write(
        &format!("{folder}/{OVERRIDE_CONF}"),
        render::override_conf(&plan.dockerd).as_bytes(),
        CONFIG_FILE,
    )?;
    state.servers.insert(
        name.clone(),
        ServerEntry {
            host: plan.host.to_string(),
            key: KeyPlace::Here,
            deploy: None,
            extra: Default::default(),
        },
    );
    staging.write(STATE_FILE, state.to_text()?.as_bytes(), CONFIG_FILE)?;
    // The state file goes last: it is what makes DIR a (format 2) PKI.
    let backup = staging.commit(&INIT_ENTRIES, now)?;

    let mut summary = summary(&plan, &name, &pki, &present, backup.as_deref());
    if passphrase.is_some() {
        summary.push_str(&format!("{} is encrypted: dockertls client add and rotate ask for its passphrase (or read --ca-passphrase-file).\n", Holder::Ca.key()));
    }
    // The files are in place; a closed stdout must not turn success into a failure exit.
    Ok(Outcome::report(&summary))
}

/// The server's name: `--name`, else made from the first --host.
fn server_name(args: &InitArgs, plan: &InitPlan) -> Result<String, Error> {
    match &args.name {
        Some(name) => registry::parse_server_name("--name", name),
        None => Ok(registry::server_name_for(&plan.host.to_string())),
    }
}

fn summary(
    plan: &InitPlan,
    name: &str,
    pki: &pki::Pki,
    present: &[&str],
    backup: Option<&Path>,
) -> String {
    let dir = absolute(&plan.dir);
    let date = |t: OffsetDateTime| {
        t.format(format_description!(
            "[year]-[month]-[day] [hour]:[minute] UTC"
        ))
        .unwrap_or_default()
    };
    let sans: Vec<String> = plan.sans.iter().map(ToString::to_string).collect();
    // The paths in one column, as wide as the longest (26 at least, as before many servers).
    let width = pki
        .clients
        .iter()
        .map(|(client, _)| Holder::client(client).cert().len())
        .chain([Holder::server(name).cert().len(), 26])
        .max()
        .unwrap_or(26);
    let mut out = String::new();
    out.push_str(&format!(
        "Created a Docker TLS PKI in {} ({} keys)\n",
        dir.display(),
        plan.key_type.name()
    ));
    if let Some(backup) = backup {
        out.push_str(&format!(
            "The previous PKI ({}) was moved to {}\n",
            present.join(", "),
            backup.display()
        ));
    }
    out.push('\n');
    out.push_str(&format!(
        "  CA       {:<width$} expires {}  ({}: keep offline)\n",
        Holder::Ca.cert(),
        date(pki.ca.not_after),
        Holder::Ca.key()
    ));
    let server = Holder::server(name);
    out.push_str(&format!(
        "  server   {:<width$} expires {}  for {}\n",
        server.cert(),
        date(pki.server.not_after),
        sans.join(", ")
    ));
    for (name, client) in &pki.clients {
        let path = Holder::client(name).cert();
        out.push_str(&format!(
            "  client   {path:<width$} expires {}  user {name}\n",
            date(client.not_after)
        ));
    }
    let folder = server.folder();
    out.push_str(&format!(
        "  config   {folder}/{DAEMON_JSON}, {folder}/{OVERRIDE_CONF}\n\n"
    ));

    let docker_host = names::docker_host(&plan.host, plan.listen.port());
    out.push_str(&render::next_steps(&render::NextSteps {
        dir: &dir,
        server: name,
        install_dir: &plan.install_dir,
        docker_host: &docker_host,
        client: &plan.clients[0],
        context: &names::context_name(&plan.host),
    }));
    out
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
