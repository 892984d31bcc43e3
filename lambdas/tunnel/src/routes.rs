//! The tunnel WebSocket API's routes beyond the shared ones (`$connect`, `$disconnect`,
//! `$default`): `response` (an agent's answer; the token must grant `tunnel:agent`, and the
//! agent is the token's subject) and `whoami` (a connection learns its own id: the waiter
//! writes it into the pending items it waits for).

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use eventfabric_websocket::auth::{Identity, PRINCIPAL_CONTEXT_KEY, SCOPE_CONTEXT_KEY};
use eventfabric_websocket::connections::ConnectionStore;
use eventfabric_websocket::push::ConnectionApi;
use eventfabric_websocket::routes::{self, RouteSettings};
use serde_json::{Value, json};

use crate::agent::{self, BodyStore};
use crate::pending::PendingStore;

/// What an agent's token must grant to answer.
pub const AGENT_SCOPE: &str = "tunnel:agent";

fn answer(status: i64, body: Value) -> (i64, ApiGatewayProxyResponse) {
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = status;
    r.body = Some(Body::Text(body.to_string()));
    (status, r)
}

/// Every route of the tunnel's connection function.
pub async fn handle<C, P, B, W>(
    connections: &C,
    pending: &P,
    bodies: &B,
    waker: &W,
    settings: RouteSettings,
    request: &ApiGatewayWebsocketProxyRequest,
    now_ms: i64,
) -> (i64, ApiGatewayProxyResponse)
where
    C: ConnectionStore,
    P: PendingStore,
    B: BodyStore,
    W: ConnectionApi,
{
    let context = &request.request_context;
    let field = |key: &str| context.authorizer.fields.get(key).and_then(Value::as_str);
    match context.route_key.as_deref() {
        Some("whoami") => match context.connection_id.as_deref() {
            Some(id) => answer(200, json!({"type": "whoami", "connectionId": id})),
            None => answer(400, json!({"type": "error", "message": "no connection id"})),
        },
        Some("response") => {
            let (Some(agent_id), scope) = (
                field(PRINCIPAL_CONTEXT_KEY),
                field(SCOPE_CONTEXT_KEY).unwrap_or_default(),
            ) else {
                return answer(
                    400,
                    json!({"type": "error", "message": "no principal in the request context"}),
                );
            };
            if !Identity::has_scope(scope, AGENT_SCOPE) {
                return answer(
                    403,
                    json!({"type": "error", "message": format!("this connection's token does not grant {AGENT_SCOPE}")}),
                );
            }
            let body = request.body.as_deref().unwrap_or_default();
            let a = agent::respond(pending, bodies, waker, agent_id, body, now_ms).await;
            answer(a.status, a.body)
        }
        _ => {
            let outcome = routes::handle(connections, settings, request, now_ms).await;
            (outcome.status(), outcome.response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::MemoryBodies;
    use crate::pending::{MemoryPending, Pending, Status};
    use eventfabric_websocket::connections::MemoryConnections;
    use eventfabric_websocket::push::MemoryConnectionApi;

    fn request(route: &str, scope: &str, body: &str) -> ApiGatewayWebsocketProxyRequest {
        serde_json::from_value(json!({
            "body": body,
            "isBase64Encoded": false,
            "requestContext": {
                "routeKey": route, "eventType": "MESSAGE", "connectionId": "conn-7",
                "connectedAt": 0, "requestTimeEpoch": 0, "apiId": "a", "stage": "live", "requestId": "r",
                "authorizer": {"principal": "agent-1", "scope": scope, "principalId": "agent-1"}
            }
        }))
        .unwrap()
    }

    async fn run(
        route: &str,
        scope: &str,
        body: &str,
        pending: &MemoryPending,
        waker: &MemoryConnectionApi,
    ) -> (i64, Value) {
        let settings = RouteSettings {
            connections_per_principal: 5,
        };
        let (status, r) = handle(
            &MemoryConnections::new(),
            pending,
            &MemoryBodies::new(),
            waker,
            settings,
            &request(route, scope, body),
            0,
        )
        .await;
        let body = match r.body {
            Some(Body::Text(t)) => serde_json::from_str(&t).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        (status, body)
    }

    #[tokio::test]
    async fn whoami_answers_the_connection_id_and_only_agents_may_answer_requests() {
        let pending = MemoryPending::new();
        let waker = MemoryConnectionApi::new();
        pending
            .create(&Pending {
                request_id: "req-1".into(),
                agent_id: "agent-1".into(),
                status: Status::Pending,
                waiter: Some("waiter-9".into()),
                created_at: 0,
                expires_at: 900,
                completed_at: None,
                response: None,
            })
            .await
            .unwrap();
        assert_eq!(
            run("whoami", "", "", &pending, &waker).await,
            (200, json!({"type": "whoami", "connectionId": "conn-7"}))
        );
        let body = r#"{"action":"response","requestId":"req-1","status":200,"body":""}"#;
        let (status, refused) = run("response", "tunnel:waiter", body, &pending, &waker).await;
        assert_eq!(status, 403, "{refused}");
        assert_eq!(pending.item("req-1").unwrap().status, Status::Pending);
        let (status, _) = run("response", "tunnel:agent", body, &pending, &waker).await;
        assert_eq!(status, 200);
        assert_eq!(pending.item("req-1").unwrap().status, Status::Completed);
        assert_eq!(waker.posted()[0].0, "waiter-9", "the waiter is woken");
    }
}
