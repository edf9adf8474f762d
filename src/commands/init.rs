//! `dockertls init`: validate, generate, write atomically, then tell the operator what next.

use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ::time::OffsetDateTime;
use ::time::macros::format_description;

use crate::cli::InitArgs;
use crate::error::Error;
use crate::names::Address;
use crate::pki::{self, PkiRequest};
use crate::plan::InitPlan;
use crate::render;
use crate::secret::{self, Passphrase};
use crate::store::{self, CERT_FILE, CONFIG_FILE, KEY_FILE, Staging};
use crate::wizard;

/// Runs `init` at time `now`.
pub fn run(
    dir: &Path,
    args: &InitArgs,
    passphrase_file: Option<&Path>,
    now: OffsetDateTime,
) -> Result<(), Error> {
    if args.host.is_none() && !args.yes && Passphrase::can_prompt() {
        // The wizard fills the same arguments the flags do, then the same code runs.
        return match wizard::run(dir, args, passphrase_file)? {
            Some(answers) => create(&answers.dir, &answers.args, answers.passphrase, now),
            None => Ok(()),
        };
    }
    // Refuse bad input and an occupied --dir before asking for a passphrase; `create` checks
    // again (it is also the wizard's way in).
    let plan = InitPlan::from_args(dir, args)?;
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
) -> Result<(), Error> {
    let plan = InitPlan::from_args(dir, args)?;
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
    .map_err(|e| Error::Failed(format!("cannot generate the certificates: {e}")))?;

    staging.mkdir("ca")?;
    staging.write("ca/ca.pem", pki.ca.cert_pem.as_bytes(), CERT_FILE)?;
    match &passphrase {
        Some(pass) => {
            let encrypted = secret::encrypt_key(&pki.ca.key_pem, pass)?;
            staging.write("ca/ca-key.pem", encrypted.as_bytes(), KEY_FILE)?;
        }
        None => staging.write("ca/ca-key.pem", pki.ca.key_pem.as_bytes(), KEY_FILE)?,
    }
    staging.mkdir("server")?;
    staging.write("server/ca.pem", pki.ca.cert_pem.as_bytes(), CERT_FILE)?;
    staging.write(
        "server/server-cert.pem",
        pki.server.cert_pem.as_bytes(),
        CERT_FILE,
    )?;
    staging.write(
        "server/server-key.pem",
        pki.server.key_pem.as_bytes(),
        KEY_FILE,
    )?;
    staging.mkdir("clients")?;
    for (name, client) in &pki.clients {
        staging.mkdir(&format!("clients/{name}"))?;
        staging.write(
            &format!("clients/{name}/ca.pem"),
            pki.ca.cert_pem.as_bytes(),
            CERT_FILE,
        )?;
        staging.write(
            &format!("clients/{name}/cert.pem"),
            client.cert_pem.as_bytes(),
            CERT_FILE,
        )?;
        staging.write(
            &format!("clients/{name}/key.pem"),
            client.key_pem.as_bytes(),
            KEY_FILE,
        )?;
    }
    let daemon_json = render::daemon_json(plan.listen, &plan.install_dir);
    staging.write("daemon.json", daemon_json.as_bytes(), CONFIG_FILE)?;
    staging.write(
        "override.conf",
        render::override_conf(&plan.dockerd).as_bytes(),
        CONFIG_FILE,
    )?;
    let backup = staging.commit(&store::PKI_ENTRIES, now)?;

    let mut summary = summary(&plan, &pki, &present, backup.as_deref());
    if passphrase.is_some() {
        summary.push_str("ca/ca-key.pem is encrypted: dockertls client add and rotate ask for its passphrase (or read --ca-passphrase-file).\n");
    }
    // The files are in place; a closed stdout must not turn success into a failure exit.
    let _ = io::stdout().write_all(crate::escape::text(&summary).as_bytes());
    Ok(())
}

fn summary(plan: &InitPlan, pki: &pki::Pki, present: &[&str], backup: Option<&Path>) -> String {
    let dir = absolute(&plan.dir);
    let date = |t: OffsetDateTime| {
        t.format(format_description!(
            "[year]-[month]-[day] [hour]:[minute] UTC"
        ))
        .unwrap_or_default()
    };
    let sans: Vec<String> = plan.sans.iter().map(ToString::to_string).collect();
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
        "  CA       ca/ca.pem                  expires {}  (ca/ca-key.pem: keep offline)\n",
        date(pki.ca.not_after)
    ));
    out.push_str(&format!(
        "  server   server/server-cert.pem     expires {}  for {}\n",
        date(pki.server.not_after),
        sans.join(", ")
    ));
    for (name, client) in &pki.clients {
        let path = format!("clients/{name}/cert.pem");
        out.push_str(&format!(
            "  client   {path:<26} expires {}  user {name}\n",
            date(client.not_after)
        ));
    }
    out.push_str("  config   daemon.json, override.conf\n\n");

    let host = match &plan.host {
        Address::Ip(IpAddr::V6(v6)) => format!("[{v6}]"),
        other => other.to_string(),
    };
    let docker_host = format!("tcp://{host}:{}", plan.listen.port());
    let context: String = plan
        .host
        .to_string()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    out.push_str(&render::next_steps(&render::NextSteps {
        dir: &dir,
        install_dir: &plan.install_dir,
        docker_host: &docker_host,
        client: &plan.clients[0],
        context: &format!("dockertls-{}", context.trim_matches('-')),
    }));
    out
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
