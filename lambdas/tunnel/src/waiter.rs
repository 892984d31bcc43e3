//! The forwarding function's connection to the tunnel's WebSocket API: what lets a waiting
//! invocation be woken instead of polling (the crate README, "The flow").
//!
//! One connection per execution environment, opened at the cold start and reused by every
//! invocation. It connects with a token it signs itself (subject `waiter:<random>`, scope
//! `tunnel:waiter`, five minutes: a WebSocket token is only checked at `$connect`), asks the
//! `whoami` route for its connection id, then a reader task turns each
//! `{"type":"response_ready","requestId"}` into a [`Wakeups::wake`]. The connection is
//! replaced before API Gateway would close it: after [`Limits::max_idle`] without a frame
//! (API Gateway: 10 minutes) or [`Limits::max_age`] (2 hours). While there is none, and for
//! [`Limits::retry_after`] after a failed connect, requests poll.

use std::sync::Arc;
use std::sync::Mutex as SyncMutex;
use std::time::Duration;

use eventfabric_core::token::keys::KeySource;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::wait::{WaiterChannel, Wakeups};

/// What a waiter's token grants (nothing an agent can do: answering needs `tunnel:agent`).
pub const WAITER_SCOPE: &str = "tunnel:waiter";
/// Agent ids may not start with it (`forward::valid_agent_id`), so no request is sent to a
/// waiter.
pub const WAITER_PRINCIPAL_PREFIX: &str = "waiter:";

/// When a connection is replaced, and how soon after a failure one is tried again.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_idle: Duration,
    pub max_age: Duration,
    pub retry_after: Duration,
    /// How long connecting and `whoami` may take.
    pub connect_timeout: Duration,
    pub token_lifetime: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_idle: Duration::from_secs(9 * 60),
            max_age: Duration::from_secs(115 * 60),
            retry_after: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(3),
            token_lifetime: Duration::from_secs(5 * 60),
        }
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    scope: &'a str,
}

struct Live {
    id: String,
    opened: Instant,
    state: Arc<SyncMutex<ReaderState>>,
    reader: JoinHandle<()>,
}

struct ReaderState {
    last_frame: Instant,
    closed: bool,
}

/// The WebSocket waiter connection.
pub struct WebSocketWaiter<K> {
    url: String,
    audience: String,
    principal: String,
    keys: K,
    limits: Limits,
    wakeups: Arc<Wakeups>,
    live: tokio::sync::Mutex<Option<Live>>,
    failed_at: SyncMutex<Option<Instant>>,
}

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

impl<K: KeySource> WebSocketWaiter<K> {
    /// A waiter connecting to `url` (`wss://<api>.execute-api.<region>.amazonaws.com/<stage>`,
    /// or `ws://` locally) with tokens for `audience` signed with `keys`' current value.
    pub fn new(
        url: impl Into<String>,
        audience: impl Into<String>,
        keys: K,
        limits: Limits,
    ) -> Self {
        Self {
            url: url.into(),
            audience: audience.into(),
            principal: format!("{WAITER_PRINCIPAL_PREFIX}{:016x}", fastrand::u64(..)),
            keys,
            limits,
            wakeups: Arc::new(Wakeups::new()),
            live: tokio::sync::Mutex::new(None),
            failed_at: SyncMutex::new(None),
        }
    }

    /// This environment's principal (`waiter:<random>`).
    pub fn principal(&self) -> &str {
        &self.principal
    }

    async fn token(&self) -> Result<String, String> {
        let keys = self.keys.read().await?;
        let exp = eventfabric_core::now_ms().div_euclid(1000)
            + self.limits.token_lifetime.as_secs() as i64;
        eventfabric_core::token::sign(
            &keys.current,
            &Claims {
                sub: &self.principal,
                aud: &self.audience,
                exp,
                scope: WAITER_SCOPE,
            },
        )
    }

    async fn open(&self) -> Result<Live, String> {
        let token = self.token().await?;
        let mut request = self
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| format!("{}: {e}", self.url))?;
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| e.to_string())?,
        );
        let (mut socket, _) = tokio_tungstenite::connect_async_tls_with_config(
            request,
            None,
            false,
            Some(Connector::Rustls(tls_config())),
        )
        .await
        .map_err(|e| format!("connecting to {}: {e}", self.url))?;
        socket
            .send(Message::text(r#"{"action":"whoami"}"#))
            .await
            .map_err(|e| format!("whoami: {e}"))?;
        let id = loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    match (v["type"].as_str(), v["connectionId"].as_str()) {
                        (Some("whoami"), Some(id)) => break id.to_owned(),
                        (Some("response_ready"), _) => self.wake(&v),
                        _ => tracing::warn!(%text, "unexpected message before whoami's answer"),
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("whoami: {e}")),
                None => return Err("the connection closed before whoami answered".into()),
            }
        };
        let state = Arc::new(SyncMutex::new(ReaderState {
            last_frame: Instant::now(),
            closed: false,
        }));
        let reader = tokio::spawn(read(socket, self.wakeups.clone(), state.clone()));
        tracing::info!(connection = %id, principal = %self.principal, "waiter connected");
        Ok(Live {
            id,
            opened: Instant::now(),
            state,
            reader,
        })
    }

    fn wake(&self, message: &Value) {
        if let Some(id) = message["requestId"].as_str() {
            self.wakeups.wake(id);
        }
    }

    fn usable(&self, live: &Live, now: Instant) -> bool {
        let state = live.state.lock().expect("lock");
        !state.closed
            && now.duration_since(state.last_frame) < self.limits.max_idle
            && now.duration_since(live.opened) < self.limits.max_age
    }
}

/// rustls on ring (the SDK's provider; no aws-lc) with the system's root certificates.
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::warn!(%error, "a system root certificate was not loaded");
            }
            let (added, ignored) = roots.add_parsable_certificates(found.certs);
            tracing::debug!(added, ignored, "root certificates");
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("ring supports TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

/// Turns pushes into wake-ups until the connection ends.
async fn read(mut socket: Socket, wakeups: Arc<Wakeups>, state: Arc<SyncMutex<ReaderState>>) {
    while let Some(frame) = socket.next().await {
        state.lock().expect("lock").last_frame = Instant::now();
        match frame {
            Ok(Message::Text(text)) => {
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                match (v["type"].as_str(), v["requestId"].as_str()) {
                    (Some("response_ready"), Some(id)) => {
                        let woke = wakeups.wake(id);
                        tracing::debug!(request = id, ?woke, "push");
                    }
                    _ => tracing::warn!(%text, "unexpected message on the waiter connection"),
                }
            }
            Ok(Message::Close(frame)) => {
                tracing::info!(?frame, "the waiter connection was closed");
                break;
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "the waiter connection failed");
                break;
            }
        }
    }
    state.lock().expect("lock").closed = true;
}

impl<K: KeySource> WaiterChannel for WebSocketWaiter<K> {
    async fn connection_id(&self) -> Result<String, String> {
        let mut live = self.live.lock().await;
        let now = Instant::now();
        if let Some(l) = live.as_ref() {
            if self.usable(l, now) {
                return Ok(l.id.clone());
            }
            l.reader.abort();
            tracing::info!(connection = %l.id, "replacing the waiter connection (closed, idle or old)");
            *live = None;
        }
        if let Some(at) = *self.failed_at.lock().expect("lock")
            && now.duration_since(at) < self.limits.retry_after
        {
            return Err("the last connect failed moments ago".into());
        }
        match tokio::time::timeout(self.limits.connect_timeout, self.open()).await {
            Ok(Ok(l)) => {
                let id = l.id.clone();
                *live = Some(l);
                *self.failed_at.lock().expect("lock") = None;
                Ok(id)
            }
            outcome => {
                *self.failed_at.lock().expect("lock") = Some(now);
                Err(match outcome {
                    Ok(Err(e)) => e,
                    _ => format!("connecting took over {:?}", self.limits.connect_timeout),
                })
            }
        }
    }

    fn wakeups(&self) -> &Wakeups {
        &self.wakeups
    }
}
