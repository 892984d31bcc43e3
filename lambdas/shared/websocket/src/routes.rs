//! The route handlers behind the authorizer: `$connect` (quota, then the connection record),
//! `$disconnect` (the record deleted) and `$default` (`ping` answered `pong`; anything else
//! named as unsupported). Each answers as API Gateway's WebSocket integrations expect: a
//! `statusCode`, and for `$default` a body sent back to the client (route response).

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use serde_json::json;

use crate::auth::PRINCIPAL_CONTEXT_KEY;
use crate::connections::{Connection, ConnectionStore};

/// What a route did, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Connected,
    /// The principal already holds `quota` open connections.
    OverQuota {
        open: usize,
        quota: usize,
    },
    Disconnected,
    Pong,
    Unsupported,
    /// The request lacks what API Gateway always sends behind the authorizer.
    BadRequest(&'static str),
    StoreFailed(String),
}

impl Outcome {
    pub fn status(&self) -> i64 {
        match self {
            Outcome::Connected | Outcome::Disconnected | Outcome::Pong => 200,
            Outcome::Unsupported | Outcome::BadRequest(_) => 400,
            Outcome::OverQuota { .. } => 429,
            Outcome::StoreFailed(_) => 500,
        }
    }

    /// The integration's answer: the status, and for `$default` a JSON body.
    pub fn response(&self) -> ApiGatewayProxyResponse {
        let mut r = ApiGatewayProxyResponse::default();
        r.status_code = self.status();
        let body = match self {
            Outcome::Pong => Some(json!({"type": "pong"})),
            Outcome::Unsupported => Some(
                json!({"type": "error", "message": "unsupported message: send {\"action\":\"ping\"} or \"ping\""}),
            ),
            _ => None,
        };
        r.body = body.map(|b| Body::Text(b.to_string()));
        r
    }
}

/// Route settings.
#[derive(Debug, Clone, Copy)]
pub struct RouteSettings {
    /// Open connections one principal may hold (tabs, devices); the next is refused (429).
    pub connections_per_principal: usize,
}

/// Dispatches a request by its route key.
pub async fn handle<S: ConnectionStore>(
    store: &S,
    settings: RouteSettings,
    request: &ApiGatewayWebsocketProxyRequest,
    now_ms: i64,
) -> Outcome {
    let context = &request.request_context;
    let Some(connection_id) = context.connection_id.as_deref() else {
        return Outcome::BadRequest("no connectionId in the request context");
    };
    match context.route_key.as_deref() {
        Some("$connect") => {
            let Some(principal) = context
                .authorizer
                .fields
                .get(PRINCIPAL_CONTEXT_KEY)
                .and_then(|v| v.as_str())
            else {
                return Outcome::BadRequest("no principal from the authorizer");
            };
            connect(store, settings, principal, connection_id, now_ms).await
        }
        Some("$disconnect") => match store.delete(connection_id).await {
            Ok(()) => Outcome::Disconnected,
            // The record expires by TTL, and a push to it answers 410 and deletes it: nothing
            // piles up, but the failure is reported.
            Err(e) => Outcome::StoreFailed(e.to_string()),
        },
        _ => default_route(request.body.as_deref()),
    }
}

/// `$connect`: refused over the quota, else recorded.
pub async fn connect<S: ConnectionStore>(
    store: &S,
    settings: RouteSettings,
    principal: &str,
    connection_id: &str,
    now_ms: i64,
) -> Outcome {
    // Count, then put: two connects of one principal at the same instant can both pass, so a
    // principal may briefly hold quota + (concurrent connects − 1). A counter item would be
    // exact but drifts whenever a $disconnect is missed; the count heals with the TTL.
    let open = match store.open_of(principal, now_ms).await {
        Ok(open) => open.len(),
        Err(e) => return Outcome::StoreFailed(e.to_string()),
    };
    if open >= settings.connections_per_principal {
        return Outcome::OverQuota {
            open,
            quota: settings.connections_per_principal,
        };
    }
    match store
        .put(&Connection::opened(connection_id, principal, now_ms))
        .await
    {
        Ok(()) => Outcome::Connected,
        Err(e) => Outcome::StoreFailed(e.to_string()),
    }
}

/// `$default`: `ping` (text) or `{"action": "ping"}` gets `{"type": "pong"}`.
pub fn default_route(body: Option<&str>) -> Outcome {
    let Some(body) = body.map(str::trim) else {
        return Outcome::Unsupported;
    };
    if body == "ping" {
        return Outcome::Pong;
    }
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(v) if v.get("action").and_then(|a| a.as_str()) == Some("ping") => Outcome::Pong,
        _ => Outcome::Unsupported,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connections::MemoryConnections;

    const NOW: i64 = 1_767_225_600_000;
    const SETTINGS: RouteSettings = RouteSettings {
        connections_per_principal: 2,
    };

    fn request(
        route: &str,
        principal: Option<&str>,
        connection: &str,
        body: Option<&str>,
    ) -> ApiGatewayWebsocketProxyRequest {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../fixtures/route-connect.json")).unwrap();
        v["requestContext"]["routeKey"] = route.into();
        v["requestContext"]["connectionId"] = connection.into();
        match principal {
            Some(p) => {
                v["requestContext"]["authorizer"] = json!({"principal": p, "principalId": p})
            }
            None => {
                v["requestContext"]
                    .as_object_mut()
                    .unwrap()
                    .remove("authorizer");
            }
        }
        if let Some(b) = body {
            v["body"] = b.into();
        }
        serde_json::from_value(v).unwrap()
    }

    #[tokio::test]
    async fn connect_records_then_the_quota_refuses_the_next_one() {
        let store = MemoryConnections::new();
        for id in ["c1", "c2"] {
            let out = handle(
                &store,
                SETTINGS,
                &request("$connect", Some("u1"), id, None),
                NOW,
            )
            .await;
            assert_eq!(out, Outcome::Connected);
        }
        let out = handle(
            &store,
            SETTINGS,
            &request("$connect", Some("u1"), "c3", None),
            NOW,
        )
        .await;
        assert_eq!(out, Outcome::OverQuota { open: 2, quota: 2 });
        assert_eq!(out.response().status_code, 429);
        // Another user is not affected; an expired record does not count.
        let out = handle(
            &store,
            SETTINGS,
            &request("$connect", Some("u2"), "c4", None),
            NOW,
        )
        .await;
        assert_eq!(out, Outcome::Connected);
        let later = NOW + 7_200_000;
        let out = handle(
            &store,
            SETTINGS,
            &request("$connect", Some("u1"), "c5", None),
            later,
        )
        .await;
        assert_eq!(out, Outcome::Connected);
        let ids: Vec<_> = store.all().into_iter().map(|c| c.connection_id).collect();
        assert_eq!(ids, ["c1", "c2", "c4", "c5"]);
    }

    #[tokio::test]
    async fn disconnect_deletes_the_record_and_a_missing_one_is_fine() {
        let store = MemoryConnections::new();
        handle(
            &store,
            SETTINGS,
            &request("$connect", Some("u1"), "c1", None),
            NOW,
        )
        .await;
        for _ in 0..2 {
            let out = handle(
                &store,
                SETTINGS,
                &request("$disconnect", None, "c1", None),
                NOW,
            )
            .await;
            assert_eq!(out, Outcome::Disconnected);
        }
        assert!(store.all().is_empty());
    }

    #[tokio::test]
    async fn connect_without_a_principal_or_with_the_store_down_is_refused() {
        let store = MemoryConnections::new();
        let out = handle(
            &store,
            SETTINGS,
            &request("$connect", None, "c1", None),
            NOW,
        )
        .await;
        assert_eq!(out.status(), 400);
        store.set_unavailable(true);
        let out = handle(
            &store,
            SETTINGS,
            &request("$connect", Some("u1"), "c1", None),
            NOW,
        )
        .await;
        assert!(matches!(out, Outcome::StoreFailed(_)));
        assert_eq!(
            out.response().status_code,
            500,
            "the client retries; nothing half-recorded"
        );
        store.set_unavailable(false);
        assert!(store.all().is_empty());
    }

    #[tokio::test]
    async fn default_answers_ping_and_names_anything_else() {
        let store = MemoryConnections::new();
        for body in ["ping", " ping\n", r#"{"action":"ping"}"#] {
            let out = handle(
                &store,
                SETTINGS,
                &request("$default", Some("u1"), "c1", Some(body)),
                NOW,
            )
            .await;
            assert_eq!(out, Outcome::Pong, "{body:?}");
            let Some(Body::Text(text)) = out.response().body else {
                panic!("no body")
            };
            assert_eq!(text, r#"{"type":"pong"}"#);
        }
        for body in [
            "pong",
            "{",
            r#"{"action":"subscribe"}"#,
            &"x".repeat(40_000),
        ] {
            let out = default_route(Some(body));
            assert_eq!(out, Outcome::Unsupported);
            assert_eq!(out.status(), 400);
        }
        assert_eq!(default_route(None), Outcome::Unsupported);
    }
}
