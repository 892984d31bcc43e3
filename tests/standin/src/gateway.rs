//! An API Gateway v2 WebSocket API on loopback, as the platform's CDK app declares one: a
//! `$connect` authorizer with the identity source `route.request.querystring.token` (or a
//! header: [`GatewayBuilder::identity_header`], as the tunnel's API has it), the
//! `$connect`, `$disconnect` and `$default` routes plus any named ones, route selection on
//! `$request.body.action`, route responses on the routes that return them, and the management
//! API at the stage's callback URL ([`Gateway::callback_url`], the function's
//! `WEBSOCKET_ENDPOINT`).
//!
//! What API Gateway does and this does too: a refused token (`Deny`, or an authorizer error)
//! answers 403 and never reaches `$connect`; a missing token 401 without calling the
//! authorizer; a `$connect` answering other than 2xx refuses the connection with its status;
//! the authorizer's context reaches every route in `requestContext.authorizer`; a post to a
//! closed connection answers 410 `GoneException`, one over 128 KB 413; `DELETE` closes the
//! connection and `$disconnect` follows. What a test can make happen that API Gateway does on
//! its own: [`Gateway::sever`] drops a connection *without* `$disconnect`, the case the 410
//! cleanup exists for.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::{Handler, now_ms};

/// API Gateway's largest WebSocket message.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;

const API_ID: &str = "standin";
const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";

struct Route {
    handler: Handler,
    /// A route response is configured: the integration's body goes back to the client.
    returns_response: bool,
}

struct Open {
    outbound: mpsc::UnboundedSender<Message>,
    /// `requestContext.authorizer` of every route of the connection.
    authorizer: Value,
    connected_at: i64,
    source_ip: String,
}

struct GatewayState {
    stage: String,
    authorizer: Option<Handler>,
    /// The authorizer's identity source: this header, or the `token` query parameter.
    identity_header: Option<String>,
    routes: HashMap<String, Route>,
    open: Mutex<HashMap<String, Open>>,
    /// Connections dropped by [`Gateway::sever`]: no `$disconnect` for them.
    severed: Mutex<HashSet<String>>,
    ids: AtomicU64,
    /// Management API posts answered, by status.
    posts: Mutex<HashMap<u16, u64>>,
}

type Shared = Arc<GatewayState>;

/// A WebSocket API being configured.
pub struct GatewayBuilder {
    stage: String,
    authorizer: Option<Handler>,
    identity_header: Option<String>,
    routes: HashMap<String, Route>,
}

impl GatewayBuilder {
    /// The `$connect` authorizer (a `REQUEST` authorizer on the `token` query parameter).
    pub fn authorizer(mut self, handler: Handler) -> Self {
        self.authorizer = Some(handler);
        self
    }

    /// A route (`$connect`, `$disconnect`, `$default`, or an `action` value).
    pub fn route(mut self, key: &str, handler: Handler, returns_response: bool) -> Self {
        self.routes.insert(
            key.to_owned(),
            Route {
                handler,
                returns_response,
            },
        );
        self
    }

    /// The authorizer's identity source is this header (`route.request.header.<name>`)
    /// instead of the `token` query parameter.
    pub fn identity_header(mut self, name: &str) -> Self {
        self.identity_header = Some(name.to_ascii_lowercase());
        self
    }

    pub fn stage(mut self, stage: &str) -> Self {
        self.stage = stage.to_owned();
        self
    }

    pub async fn start(self) -> std::io::Result<Gateway> {
        let state = Arc::new(GatewayState {
            stage: self.stage,
            authorizer: self.authorizer,
            identity_header: self.identity_header,
            routes: self.routes,
            open: Mutex::default(),
            severed: Mutex::default(),
            ids: AtomicU64::new(1),
            posts: Mutex::default(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route(&format!("/{}", state.stage), get(upgrade))
            .fallback(management)
            .with_state(state.clone());
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        Ok(Gateway { addr, state })
    }
}

/// A running stand-in WebSocket API.
pub struct Gateway {
    addr: SocketAddr,
    state: Shared,
}

impl Gateway {
    pub fn builder() -> GatewayBuilder {
        GatewayBuilder {
            stage: "live".into(),
            authorizer: None,
            identity_header: None,
            routes: HashMap::new(),
        }
    }

    /// Where clients connect: `ws://127.0.0.1:<port>/<stage>` (add `?token=…`).
    pub fn websocket_url(&self) -> String {
        format!("ws://{}/{}", self.addr, self.state.stage)
    }

    /// The management API's endpoint, as the notifier's `WEBSOCKET_ENDPOINT`.
    pub fn callback_url(&self) -> String {
        format!("http://{}/{}", self.addr, self.state.stage)
    }

    /// Ids of the open connections.
    pub fn connections(&self) -> Vec<String> {
        let mut ids: Vec<_> = self
            .state
            .open
            .lock()
            .expect("lock")
            .keys()
            .cloned()
            .collect();
        ids.sort();
        ids
    }

    /// The authorizer context of an open connection.
    pub fn authorizer_of(&self, connection_id: &str) -> Option<Value> {
        self.state
            .open
            .lock()
            .expect("lock")
            .get(connection_id)
            .map(|o| o.authorizer.clone())
    }

    /// Drops a connection as a vanished client does when its `$disconnect` is lost: the socket
    /// closes, posts to it answer 410, and no `$disconnect` is invoked.
    pub fn sever(&self, connection_id: &str) -> bool {
        self.state
            .severed
            .lock()
            .expect("lock")
            .insert(connection_id.to_owned());
        self.state
            .open
            .lock()
            .expect("lock")
            .remove(connection_id)
            .is_some()
    }

    /// Management API posts answered with `status` so far.
    pub fn posts(&self, status: u16) -> u64 {
        self.state
            .posts
            .lock()
            .expect("lock")
            .get(&status)
            .copied()
            .unwrap_or(0)
    }
}

impl GatewayState {
    fn request_context(
        &self,
        route_key: &str,
        event_type: &str,
        connection_id: &str,
        connected_at: i64,
        source_ip: &str,
        authorizer: Option<&Value>,
    ) -> Value {
        let now = now_ms();
        let mut context = json!({
            "routeKey": route_key,
            "eventType": event_type,
            "messageDirection": "IN",
            "stage": self.stage,
            "connectedAt": connected_at,
            "requestTimeEpoch": now,
            "requestId": format!("req-{now}-{}", self.ids.fetch_add(1, Ordering::Relaxed)),
            "extendedRequestId": format!("ext-{now}"),
            "domainName": format!("{API_ID}.execute-api.{REGION}.amazonaws.com"),
            "connectionId": connection_id,
            "apiId": API_ID,
            "identity": { "sourceIp": source_ip },
        });
        if let Some(a) = authorizer {
            context["authorizer"] = a.clone();
        }
        context
    }

    async fn invoke_route(&self, key: &str, event: Value) -> Option<Result<Value, String>> {
        let route = self.routes.get(key)?;
        Some((route.handler)(event).await)
    }

    fn count_post(&self, status: StatusCode) {
        *self
            .posts
            .lock()
            .expect("lock")
            .entry(status.as_u16())
            .or_default() += 1;
    }
}

fn status_of(answer: &Value) -> u16 {
    answer
        .get("statusCode")
        .and_then(Value::as_u64)
        .map(|s| s as u16)
        .unwrap_or(200)
}

/// Whether an authorizer's answer allows `$connect`, and the context it gives the routes.
fn allowed(answer: &Value) -> Option<Value> {
    let statements = answer["policyDocument"]["Statement"].as_array()?;
    let allow = !statements.is_empty()
        && statements
            .iter()
            .all(|s| s["Effect"].as_str() == Some("Allow"));
    if !allow {
        return None;
    }
    let mut context = answer
        .get("context")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    context["principalId"] = answer["principalId"].clone();
    Some(context)
}

async fn upgrade(
    State(state): State<Shared>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let connection_id = format!(
        "C{:07}{:x}=",
        state.ids.fetch_add(1, Ordering::Relaxed),
        now_ms() % 0xffff
    );
    let connected_at = now_ms();
    let source_ip = peer.ip().to_string();
    let header_map: serde_json::Map<String, Value> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), Value::from(v.to_str().ok()?))))
        .collect();
    let query_json: serde_json::Map<String, Value> = query
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();

    let mut authorizer_context = None;
    if let Some(authorizer) = &state.authorizer {
        let identity = match &state.identity_header {
            Some(name) => headers.get(name.as_str()).and_then(|v| v.to_str().ok()),
            None => query.get("token").map(String::as_str),
        };
        if identity.is_none_or(str::is_empty) {
            // The identity source is missing: API Gateway answers 401 without calling it.
            return StatusCode::UNAUTHORIZED.into_response();
        }
        let request = json!({
            "type": "REQUEST",
            "methodArn": format!("arn:aws:execute-api:{REGION}:{ACCOUNT}:{API_ID}/{}/$connect", state.stage),
            "headers": header_map,
            "queryStringParameters": query_json,
            "stageVariables": {},
            "requestContext": state.request_context("$connect", "CONNECT", &connection_id, connected_at, &source_ip, None),
        });
        match authorizer(request).await.as_ref().map(allowed) {
            Ok(Some(context)) => authorizer_context = Some(context),
            Ok(None) => return StatusCode::FORBIDDEN.into_response(),
            Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
    }
    let authorizer_context = authorizer_context.unwrap_or_else(|| json!({}));

    let event = json!({
        "headers": header_map,
        "queryStringParameters": query_json,
        "isBase64Encoded": false,
        "requestContext": state.request_context("$connect", "CONNECT", &connection_id, connected_at, &source_ip, Some(&authorizer_context)),
    });
    match state.invoke_route("$connect", event).await {
        Some(Ok(answer)) if (200..300).contains(&status_of(&answer)) => {}
        Some(Ok(answer)) => {
            return StatusCode::from_u16(status_of(&answer))
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                .into_response();
        }
        Some(Err(_)) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        None => {}
    }

    // Registered before the handshake completes: a post right after `$connect` is queued
    // for the socket, not answered 410.
    let (outbound, rx) = mpsc::unbounded_channel();
    state.open.lock().expect("lock").insert(
        connection_id.clone(),
        Open {
            outbound,
            authorizer: authorizer_context,
            connected_at,
            source_ip,
        },
    );
    ws.on_upgrade(move |socket| serve(state, connection_id, socket, rx))
}

/// One connection: posts out, client messages to their routes, then `$disconnect`.
async fn serve(
    state: Shared,
    connection_id: String,
    socket: WebSocket,
    mut outbound: mpsc::UnboundedReceiver<Message>,
) {
    let (mut to_client, mut from_client) = socket.split();
    let (mut close_status, mut close_reason) = (1006_u16, String::from("Going away"));
    loop {
        tokio::select! {
            message = outbound.recv() => match message {
                Some(m) => {
                    let close = matches!(m, Message::Close(_));
                    if to_client.send(m).await.is_err() || close {
                        break;
                    }
                }
                // Severed or deleted: the record is gone, the socket closes.
                None => {
                    let _ = to_client.send(Message::Close(None)).await;
                    break;
                }
            },
            message = from_client.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    dispatch(&state, &connection_id, text.as_str().to_owned());
                }
                Some(Ok(Message::Binary(bytes))) => {
                    dispatch(&state, &connection_id, String::from_utf8_lossy(&bytes).into_owned());
                }
                Some(Ok(Message::Close(frame))) => {
                    if let Some(f) = frame {
                        close_status = f.code;
                        close_reason = f.reason.as_str().to_owned();
                    } else {
                        close_status = 1005;
                    }
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
        }
    }
    let open = state.open.lock().expect("lock").remove(&connection_id);
    let severed = state.severed.lock().expect("lock").contains(&connection_id);
    if severed {
        return;
    }
    let (authorizer, connected_at, source_ip) = match open {
        Some(o) => (o.authorizer, o.connected_at, o.source_ip),
        None => (json!({}), 0, "127.0.0.1".into()),
    };
    let mut context = state.request_context(
        "$disconnect",
        "DISCONNECT",
        &connection_id,
        connected_at,
        &source_ip,
        Some(&authorizer),
    );
    context["disconnectStatusCode"] = json!(close_status);
    context["disconnectReason"] = json!(close_reason);
    let _ = state
        .invoke_route(
            "$disconnect",
            json!({ "isBase64Encoded": false, "requestContext": context }),
        )
        .await;
}

/// A client message to its route (`action`, else `$default`), in its own task as API Gateway
/// handles messages concurrently; a route response goes back to the client.
fn dispatch(state: &Shared, connection_id: &str, body: String) {
    let action = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v.get("action").and_then(Value::as_str).map(str::to_owned));
    let key = match action {
        Some(a) if state.routes.contains_key(&a) => a,
        _ => "$default".to_owned(),
    };
    let Some((authorizer, connected_at, source_ip)) = state
        .open
        .lock()
        .expect("lock")
        .get(connection_id)
        .map(|o| (o.authorizer.clone(), o.connected_at, o.source_ip.clone()))
    else {
        return;
    };
    let state = state.clone();
    let connection_id = connection_id.to_owned();
    tokio::spawn(async move {
        let event = json!({
            "body": body,
            "isBase64Encoded": false,
            "requestContext": state.request_context(&key, "MESSAGE", &connection_id, connected_at, &source_ip, Some(&authorizer)),
        });
        let Some(route) = state.routes.get(&key) else {
            return;
        };
        let answer = (route.handler)(event).await;
        if !route.returns_response {
            return;
        }
        let reply = match answer {
            Ok(a) => a.get("body").and_then(Value::as_str).map(str::to_owned),
            Err(_) => Some(json!({"message": "Internal server error"}).to_string()),
        };
        if let Some(reply) = reply
            && let Some(open) = state.open.lock().expect("lock").get(&connection_id)
        {
            let _ = open.outbound.send(Message::Text(reply.into()));
        }
    });
}

/// The management API: `POST`, `GET` and `DELETE` `/<stage>/@connections/{id}`.
async fn management(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    // The SDK percent-encodes the id (API Gateway's ids end in `=`).
    let path = percent_decode(uri.path());
    let prefix = format!("/{}/@connections/", state.stage);
    let Some(id) = path.strip_prefix(&prefix) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let id = id.to_owned();
    let gone = || {
        (
            StatusCode::GONE,
            [
                ("x-amzn-errortype", "GoneException"),
                ("content-type", "application/json"),
            ],
            json!({"message": null}).to_string(),
        )
            .into_response()
    };
    match method {
        Method::POST => {
            if body.len() > MAX_MESSAGE_BYTES {
                state.count_post(StatusCode::PAYLOAD_TOO_LARGE);
                return (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    [("x-amzn-errortype", "PayloadTooLargeException")],
                    json!({"message": "Message too long"}).to_string(),
                )
                    .into_response();
            }
            let message = match String::from_utf8(body.to_vec()) {
                Ok(text) => Message::Text(text.into()),
                Err(e) => Message::Binary(e.into_bytes().into()),
            };
            let sent = state
                .open
                .lock()
                .expect("lock")
                .get(&id)
                .is_some_and(|o| o.outbound.send(message).is_ok());
            if sent {
                state.count_post(StatusCode::OK);
                StatusCode::OK.into_response()
            } else {
                state.count_post(StatusCode::GONE);
                gone()
            }
        }
        Method::GET => match state.open.lock().expect("lock").get(&id) {
            Some(o) => (
                [("content-type", "application/json")],
                json!({
                    "connectedAt": o.connected_at,
                    "identity": {"sourceIp": o.source_ip},
                    "lastActiveAt": now_ms(),
                })
                .to_string(),
            )
                .into_response(),
            None => gone(),
        },
        Method::DELETE => {
            let closed = state
                .open
                .lock()
                .expect("lock")
                .get(&id)
                .is_some_and(|o| o.outbound.send(Message::Close(None)).is_ok());
            if closed {
                StatusCode::NO_CONTENT.into_response()
            } else {
                gone()
            }
        }
        _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
    }
}

/// `%XX` escapes decoded (a path's, so `+` stays `+`).
fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_are_decoded() {
        assert_eq!(
            super::percent_decode("/live/%40connections/C1a%3D"),
            "/live/@connections/C1a="
        );
        assert_eq!(super::percent_decode("/a%2"), "/a%2");
    }
}
