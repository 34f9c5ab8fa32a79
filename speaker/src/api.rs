//! The local API: a Unix socket (mode 0600) taking one JSON request per line and
//! answering one JSON line each: `{"cmd":"status"}`, `{"cmd":"routes"}`,
//! `{"cmd":"drain"}` and `{"cmd":"undrain"}` (optional `"timeout"` in seconds).
//! The lab and the CLI read it. The client half is here too.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use ipnet::IpNet;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info};

use crate::messages::{ApiRequest, DrainPlan, SyncResult};
use crate::shutdown::Shutdown;

/// Binds `path`, replacing a stale socket file a previous run left.
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    match std::fs::remove_file(path) {
        Ok(()) => debug!(path = %path.display(), "removed a stale API socket"),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

pub async fn serve(listener: UnixListener, daemon: mpsc::Sender<ApiRequest>, mut shutdown: Shutdown) {
    info!("API listening");
    loop {
        let accepted = tokio::select! {
            _ = shutdown.recv() => return,
            a = listener.accept() => a,
        };
        if let Ok((stream, _)) = accepted {
            tokio::spawn(client(stream, daemon.clone()));
        }
    }
}

async fn client(stream: UnixStream, daemon: mpsc::Sender<ApiRequest>) {
    let (read, mut write) = stream.into_split();
    let mut lines = AsyncBufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let reply = answer(&line, &daemon).await;
        let mut text = reply.to_string();
        text.push('\n');
        if write.write_all(text.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Routes per answer unless a request says (`limit`), and the most it may ask: an
/// answer is built whole in memory, so it is kept to a page; `next` in the answer
/// says where the following page starts (`after`).
pub const ROUTES_PAGE: usize = 2000;
pub const ROUTES_PAGE_MAX: usize = 10_000;

async fn answer(line: &str, daemon: &mpsc::Sender<ApiRequest>) -> Value {
    let request: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return json!({ "error": format!("not JSON: {e}") }),
    };
    let (tx, rx) = oneshot::channel();
    let req = match request.get("cmd").and_then(Value::as_str) {
        Some("status") => ApiRequest::Status(tx),
        Some("routes") => {
            let prefix = |field: &str| match request.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(text)) => parse_prefix(text).map(Some),
                Some(other) => Err(format!("\"{field}\" must be a string, not {other}")),
            };
            let (filter, after) = match (prefix("prefix"), prefix("after")) {
                (Ok(f), Ok(a)) => (f, a),
                (Err(e), _) | (_, Err(e)) => return json!({ "error": e }),
            };
            let limit = match request.get("limit") {
                None | Some(Value::Null) => ROUTES_PAGE,
                Some(v) => match v.as_u64().filter(|n| (1..=ROUTES_PAGE_MAX as u64).contains(n)) {
                    Some(n) => n as usize,
                    None => {
                        return json!({ "error": format!("\"limit\" must be a number from 1 to {ROUTES_PAGE_MAX}, not {v}") })
                    }
                },
            };
            ApiRequest::Routes {
                filter,
                after,
                limit,
                reply: tx,
            }
        }
        Some(cmd @ ("drain" | "undrain")) => {
            let timeout = request
                .get("timeout")
                .and_then(Value::as_f64)
                .filter(|t| *t > 0.0 && *t < 3600.0)
                .map(Duration::from_secs_f64);
            let (plan_tx, plan_rx) = oneshot::channel();
            let req = ApiRequest::Drain {
                drain: cmd == "drain",
                timeout,
                reply: plan_tx,
            };
            if daemon.send(req).await.is_err() {
                return json!({ "error": "daemon is stopping" });
            }
            return match plan_rx.await {
                Ok(plan) => drain_report(plan).await,
                Err(_) => json!({ "error": "daemon is stopping" }),
            };
        }
        Some(other) => {
            return json!({ "error": format!("unknown cmd `{other}`: use status, routes, drain or undrain") })
        }
        None => return json!({ "error": "missing \"cmd\": use {\"cmd\":\"status\"} or {\"cmd\":\"routes\"}" }),
    };
    if daemon.send(req).await.is_err() {
        return json!({ "error": "daemon is stopping" });
    }
    rx.await.unwrap_or_else(|_| json!({ "error": "daemon is stopping" }))
}

/// Waits for every peer's confirmation (bounded) and says what each one has.
async fn drain_report(plan: DrainPlan) -> Value {
    let mut all_ok = true;
    let mut peers = Vec::new();
    for p in plan.peers {
        let result = tokio::time::timeout(plan.timeout + Duration::from_secs(1), p.delivered).await;
        let (ok, result) = match result {
            Ok(Ok(SyncResult::Delivered)) => (true, "delivered: acknowledged by the peer".to_string()),
            Ok(Ok(SyncResult::NotEstablished(state))) => (
                true,
                format!("not established ({state}): it gets the current table when it connects"),
            ),
            Ok(Ok(SyncResult::Pending { unacked })) => (
                false,
                format!("not confirmed: {unacked} bytes unacknowledged after {:?}", plan.timeout),
            ),
            Ok(Ok(SyncResult::Failed(e))) => (false, format!("not confirmed: {e}")),
            Ok(Err(_)) => (false, "not confirmed: the session went away".to_string()),
            Err(_) => (false, format!("not confirmed within {:?}", plan.timeout)),
        };
        all_ok &= ok;
        peers.push(json!({ "address": p.address, "action": p.action, "result": result, "ok": ok }));
    }
    json!({
        "drained": plan.mode.map(|m| m.as_str()),
        "ok": all_ok,
        "peers": peers,
    })
}

/// A prefix (`10.244.1.0/26`) or an address, which stands for its host prefix.
pub fn parse_prefix(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .map(|p| p.trunc())
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{text}` is neither a prefix (10.244.1.0/26, fd00:10:244::/64) nor an address"))
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {path}: {source} (is `speaker run` running? see --socket)")]
    Connect { path: String, source: io::Error },
    #[error("API: {0}")]
    Io(#[from] io::Error),
    #[error("API answered something that is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("API error: {0}")]
    Remote(String),
}

/// Sends `request` and waits up to `wait` for the answer.
pub fn request_json(path: &Path, request: &Value, wait: Duration) -> Result<Value, ClientError> {
    let mut stream = std::os::unix::net::UnixStream::connect(path).map_err(|source| ClientError::Connect {
        path: path.display().to_string(),
        source,
    })?;
    stream.set_read_timeout(Some(wait))?;
    writeln!(stream, "{request}")?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    let value: Value = serde_json::from_str(&line)?;
    if let Some(e) = value.get("error").and_then(Value::as_str) {
        return Err(ClientError::Remote(e.to_string()));
    }
    Ok(value)
}
