//! Docker's authorization plugin protocol over a unix socket, on hyper: `/Plugin.Activate`,
//! `/AuthZPlugin.AuthZReq` (decided and audited), `/AuthZPlugin.AuthZRes` (always allowed: the
//! request was decided). Bounded: request size, time to send headers and body, connections.
//! Every failure is an answer (a deny with the reason), never a panic or a stall: dockerd
//! refuses every API call while its plugin does not answer.

use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::UnixListener;
use tokio::sync::Semaphore;

use super::audit::AuditLog;
use super::decide::{Decision, Snapshot, Subject};

/// The largest request body read. dockerd passes a request's body only when it is JSON and
/// under 1 MiB, base64-encoded (4/3), plus headers and the certificate.
pub const MAX_BODY: usize = 4 << 20;
/// How long a client may take to send a request's headers, and then its body.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more wait in the listen queue.
pub const MAX_CONNECTIONS: usize = 512;
/// Docker's plugin content type.
const CONTENT_TYPE: &str = "application/vnd.docker.plugins.v1+json";

/// What every connection shares: the files in force and the audit log.
pub struct Plugin {
    pub snapshot: RwLock<Arc<Snapshot>>,
    pub audit: AuditLog,
}

impl Plugin {
    /// The files in force now (a cheap clone of an `Arc`).
    pub fn current(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(snapshot) => Arc::clone(&snapshot),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Puts new files in force.
    pub fn replace(&self, snapshot: Snapshot) {
        let mut slot = match self.snapshot.write() {
            Ok(slot) => slot,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = Arc::new(snapshot);
    }
}

/// Serves connections until `shutdown` completes.
pub async fn serve(
    listener: UnixListener,
    plugin: Arc<Plugin>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let stream = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // EMFILE and the like: wait a little instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let plugin = Arc::clone(&plugin);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let plugin = Arc::clone(&plugin);
                async move { Ok::<_, Infallible>(handle(request, &plugin).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(READ_TIMEOUT)
                .max_buf_size(64 * 1024)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(permit);
        });
    }
}

/// Answers one plugin call.
async fn handle(request: Request<Incoming>, plugin: &Plugin) -> Response<Full<Bytes>> {
    match request.uri().path() {
        "/Plugin.Activate" => {
            let _ = read_body(request.into_body()).await;
            answer(
                StatusCode::OK,
                serde_json::json!({ "Implements": ["authz"] }),
            )
        }
        "/AuthZPlugin.AuthZReq" => {
            let decision = match read_body(request.into_body()).await {
                Ok(body) => plugin
                    .current()
                    .decide_body(&body, x509_parser::prelude::ASN1Time::now()),
                Err(why) => Decision {
                    allow: false,
                    why,
                    subject: Subject::default(),
                    method: String::new(),
                    uri: String::new(),
                },
            };
            plugin.audit.record(&decision, &now_rfc3339());
            let msg = if decision.allow {
                String::new()
            } else {
                decision.why
            };
            answer(
                StatusCode::OK,
                serde_json::json!({ "Allow": decision.allow, "Msg": msg }),
            )
        }
        "/AuthZPlugin.AuthZRes" => {
            // The request was decided; the response pass always allows (its body is read only
            // so the connection can be reused).
            let _ = read_body(request.into_body()).await;
            answer(StatusCode::OK, serde_json::json!({ "Allow": true }))
        }
        _ => answer(
            StatusCode::NOT_FOUND,
            serde_json::json!({ "Err": "dockertls authz serves only the authz plugin protocol" }),
        ),
    }
}

/// The whole body, at most [`MAX_BODY`] bytes, within [`READ_TIMEOUT`].
async fn read_body(body: Incoming) -> Result<Bytes, String> {
    let limited = Limited::new(body, MAX_BODY);
    match tokio::time::timeout(READ_TIMEOUT, limited.collect()).await {
        Err(_) => Err("the authorization request took too long to arrive; denied".into()),
        Ok(Err(err))
            if err
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(format!(
                "the authorization request is larger than {MAX_BODY} bytes; denied"
            ))
        }
        Ok(Err(_)) => Err("the authorization request could not be read; denied".into()),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

fn answer(status: StatusCode, value: serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(CONTENT_TYPE),
    );
    response
}

/// The audit log's timestamp: RFC 3339, UTC, to the microsecond.
fn now_rfc3339() -> String {
    let now = ::time::OffsetDateTime::now_utc();
    let now = now
        .replace_nanosecond(now.nanosecond() / 1000 * 1000)
        .unwrap_or(now);
    now.format(&::time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
