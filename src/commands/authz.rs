//! `dockertls authz serve`: checks its input (the folder's ca.pem, crl.pem, authz.json, the
//! socket path, the audit log) before it creates anything, then serves until SIGTERM/SIGINT.

use std::os::unix::fs::FileTypeExt as _;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::authz::audit::AuditLog;
use crate::authz::files::Files;
use crate::authz::policy::UnixRequests;
use crate::authz::server::{self, Plugin};
use crate::cli::{AuthzCommand, AuthzServeArgs, UnixSocketRequests};
use crate::error::Error;
use crate::escape;
use crate::findings::Outcome;

/// How often the files are looked at: a revocation is in force within this (plus the read).
const POLL: Duration = Duration::from_millis(200);

/// Runs an `authz` subcommand.
pub fn run(command: &AuthzCommand) -> Result<Outcome, Error> {
    match command {
        AuthzCommand::Serve(args) => serve(args),
    }
}

fn log(line: &str) {
    eprintln!("dockertls authz: {line}");
}

fn serve(args: &AuthzServeArgs) -> Result<Outcome, Error> {
    let unix_flag = args.unix_socket_requests.map(|choice| match choice {
        UnixSocketRequests::Allow => UnixRequests::Allow,
        UnixSocketRequests::Deny => UnixRequests::Deny,
    });
    let activated = activated_socket()?;
    if activated.is_none() {
        let socket = args.socket.as_deref().ok_or_else(|| {
            Error::refused("authz serve needs --socket PATH (no socket was passed by systemd)")
                .hint("e.g. --socket /run/docker/plugins/dockertls.sock")
        })?;
        check_socket_path(socket)?;
    }
    // What the files say is logged once the server starts: a refusal stays one line.
    let startup = std::cell::RefCell::new(Vec::new());
    let mut files = Files::open(&args.tls_dir, unix_flag, &|line: &str| {
        startup.borrow_mut().push(line.to_string())
    })?;
    let audit = match &args.audit_log {
        Some(path) => AuditLog::file(path, args.audit_log_max_mib << 20)?,
        None => AuditLog::stderr(),
    };
    // One thread: a decision takes microseconds, so requests never wait on each other's CPU,
    // and no request hops between threads (measured: a lower latency than two workers).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| Error::failed(format!("cannot start the server's runtime: {err}")))?;
    let shutdown = stop_signals(&runtime)?;
    let (listener, bound) = match activated {
        Some(listener) => (listener, None),
        None => {
            let path = args.socket.as_deref().unwrap_or(Path::new(""));
            (bind(path)?, Some(path.to_path_buf()))
        }
    };
    for line in startup.into_inner() {
        log(&line);
    }
    let plugin = Arc::new(Plugin {
        snapshot: RwLock::new(Arc::new(files.snapshot().clone())),
        audit,
    });
    let watcher = Arc::clone(&plugin);
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(POLL);
            if files.poll(&log) {
                watcher.replace(files.snapshot().clone());
            }
        }
    });
    let result = runtime.block_on(async move {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::UnixListener::from_std(listener)?;
        log(&format!(
            "serving the authz plugin protocol; files from {}",
            escape::path(&args.tls_dir)
        ));
        server::serve(listener, plugin, shutdown).await;
        Ok::<(), std::io::Error>(())
    });
    if let Some(path) = bound {
        remove_stale_socket(&path);
    }
    result.map_err(|err| Error::failed(format!("the plugin server stopped: {err}")))?;
    log("stopped");
    Ok(Outcome::report(""))
}

/// Catches SIGTERM and SIGINT from now on; the future completes at the first of them. Called
/// before the socket is made, so a stop at any moment after that removes it (with the default
/// action, a SIGTERM between the bind and the server's start killed the plugin and left the
/// socket behind).
fn stop_signals(
    runtime: &tokio::runtime::Runtime,
) -> Result<impl std::future::Future<Output = ()> + use<>, Error> {
    use tokio::signal::unix::{SignalKind, signal};
    let _context = runtime.enter();
    let catch = |kind: SignalKind| {
        signal(kind).map_err(|err| Error::failed(format!("cannot catch SIGTERM and SIGINT: {err}")))
    };
    let (mut term, mut interrupt) = (
        catch(SignalKind::terminate())?,
        catch(SignalKind::interrupt())?,
    );
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}

/// The listening socket systemd passed (socket activation, LISTEN_FDS), if any.
fn activated_socket() -> Result<Option<std::os::unix::net::UnixListener>, Error> {
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() == 0 {
        return Ok(None);
    }
    let listener = fds.take_unix_listener(0).map_err(|err| {
        Error::refused(format!(
            "the socket systemd passed is not a listening unix socket: {err}"
        ))
        .hint("the .socket unit must have ListenStream=/run/docker/plugins/dockertls.sock")
    })?;
    Ok(listener)
}

/// Refuses a socket path that is something else than a free place or a stale socket.
fn check_socket_path(path: &Path) -> Result<(), Error> {
    let shown = escape::path(path);
    match std::fs::symlink_metadata(path) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
            if parent.is_some_and(|p| !p.is_dir()) {
                return Err(
                    Error::refused(format!("--socket {shown}: its folder does not exist"))
                        .hint("create the folder first (e.g. mkdir -p /run/docker/plugins)"),
                );
            }
            Ok(())
        }
        Err(err) => Err(Error::refused(format!("--socket {shown}: {err}"))),
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(Error::refused(format!(
                    "--socket {shown}: another process is serving on it"
                ))
                .hint("stop that plugin first, or choose another --socket"));
            }
            Ok(())
        }
        Ok(_) => Err(Error::refused(format!(
            "--socket {shown} exists and is not a socket; it is not replaced"
        ))
        .hint("give --socket a path that does not exist yet")),
    }
}

/// Binds the socket (a stale one replaced), created 0600: only root (dockerd) connects.
fn bind(path: &Path) -> Result<std::os::unix::net::UnixListener, Error> {
    remove_stale_socket(path);
    // Still one thread here: the umask change cannot race another file creation.
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let bound = std::os::unix::net::UnixListener::bind(path);
    rustix::process::umask(old);
    bound.map_err(|err| {
        Error::failed(format!(
            "cannot listen on --socket {}: {err}",
            escape::path(path)
        ))
    })
}

/// Removes `path` only when it is a socket (never a file or a link placed there).
fn remove_stale_socket(path: &Path) {
    if std::fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_socket()) {
        let _ = std::fs::remove_file(path);
    }
}
