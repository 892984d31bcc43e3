//! `POST /api/events/forward`.
//!
//! [`Forwarder`] holds the logic (per-event checks, idempotency, publishing through an
//! [`eventfabric_core::EventSink`]); [`handle`] adapts an API Gateway HTTP API (payload v2)
//! request to it: session token (401/403), body (400/413), per-session quota (429), then the
//! events. `main.rs` only wires AWS clients and the runtime.

pub mod auth;
pub mod forward;
pub mod keys;
pub mod metrics;
pub mod redact;
pub mod request;
pub mod sdk;
pub mod state;
pub mod tape;
pub mod topics;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderMap, HeaderValue, header::CONTENT_TYPE};
use eventfabric_core::{Deadline, EventSink};
use serde::Serialize;

pub use auth::{Authenticator, TokenVerifier};
pub use forward::{ForwardConfig, ForwardOutcome, Forwarder, RejectReason, Rejection};
pub use keys::{KeyRing, KeySource, MemoryKeys, SecretsManagerKeys, SigningKeys};
pub use redact::{RedactionPlan, Redactor};
pub use request::RequestError;
pub use state::{DynamoState, MemoryState, SessionState};
pub use topics::CompiledTopics;

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

fn authorization(request: &ApiGatewayV2httpRequest) -> Option<&str> {
    request
        .headers
        .get(aws_lambda_events::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// Answers one HTTP API request: 202 with per-event results, or 4xx for the whole request.
/// `authenticator` is a [`TokenVerifier`], or in the deployed function a [`KeyRing`] that
/// follows rotations of the signing secret. The answer is ready by `answer_by`: store calls
/// and publish retries stop in time for it (see [`Forwarder::forward`]).
pub async fn handle<S: EventSink, St: SessionState, A: Authenticator>(
    forwarder: &Forwarder<S, St>,
    authenticator: &A,
    request: &ApiGatewayV2httpRequest,
    now_ms: i64,
    answer_by: Deadline,
) -> ApiGatewayV2httpResponse {
    let request_id = request.request_context.request_id.as_deref().unwrap_or("-");
    let limits = forwarder.config().request;
    let claims = match authenticator
        .authenticate(authorization(request), now_ms)
        .await
    {
        Ok(claims) => claims,
        Err(e) => return refuse(request_id, &e, None),
    };
    let bytes = request::decode_body(request.body.as_deref(), request.is_base64_encoded, limits);
    let parsed = bytes
        .as_deref()
        .map_err(Clone::clone)
        .and_then(|bytes| request::parse_request(bytes, limits))
        .and_then(|body| {
            auth::authorize_session(&claims, &body.client.session_id)?;
            Ok(body)
        });
    let body = match parsed {
        Ok(body) => body,
        Err(e) => return refuse(request_id, &e, None),
    };
    let quota = forwarder.config().quota_events_per_minute;
    let events = u32::try_from(body.events.len()).unwrap_or(u32::MAX);
    let work = forwarder.work_deadline(answer_by);
    let consume = forwarder
        .state()
        .consume_quota(&claims.sub, events, quota, now_ms);
    match forwarder.store_call(work, consume).await {
        Ok(state::QuotaDecision::Allowed) => {}
        Ok(state::QuotaDecision::Exceeded {
            retry_after_seconds,
        }) => {
            let e = RequestError {
                status: 429,
                code: "quota_exceeded",
                message: format!(
                    "session quota of {quota} events per minute exceeded; retry in {retry_after_seconds} s"
                ),
            };
            return refuse(request_id, &e, Some(retry_after_seconds));
        }
        Err(e @ state::StateError::Unavailable(_)) => {
            // Fail open: the stage throttle still bounds the rate, and refusing every request
            // while the store is down would lose the events.
            tracing::warn!(request_id, error = %e, "quota store unavailable; request let through");
            metrics::state_store_error();
        }
        Err(e @ state::StateError::Refused(_)) => {
            // Not an outage but a request the store will never take (a deployment fault, as
            // the request's fields are checked before): nothing is forwarded uncounted.
            tracing::error!(request_id, error = %e, "quota store refused the request");
            metrics::state_store_error();
            let e = RequestError {
                status: 500,
                code: "internal_error",
                message: "the session state store refused the quota update".to_owned(),
            };
            return refuse(request_id, &e, None);
        }
    }
    let total = body.events.len();
    let outcome = forwarder.forward(body, now_ms, answer_by).await;
    let mut by_reason = std::collections::BTreeMap::new();
    for r in &outcome.rejected {
        *by_reason.entry(r.reason).or_insert(0u32) += 1;
    }
    // Logged as the API's wire names; never payloads (they may carry PII).
    let rejected_by_reason = serde_json::to_string(&by_reason).unwrap_or_default();
    tracing::info!(
        request_id,
        events = total,
        accepted = outcome.accepted.len(),
        rejected = outcome.rejected.len(),
        rejected_by_reason = %rejected_by_reason,
        "forward request handled"
    );
    metrics::record_outcome(&outcome);
    json_response(202, &outcome)
}

fn refuse(
    request_id: &str,
    e: &RequestError,
    retry_after_seconds: Option<i64>,
) -> ApiGatewayV2httpResponse {
    // Messages quote client text only escaped and capped (`request::echo`); `bounded` caps
    // whatever a library error might add.
    let message = request::bounded(e.message.clone());
    tracing::info!(request_id, status = e.status, error = e.code, message = %message, "forward request refused");
    metrics::request_refused(e.status);
    let mut response = json_response(
        e.status,
        &ErrorBody {
            error: e.code,
            message: &message,
        },
    );
    if let Some(seconds) = retry_after_seconds {
        response.headers.insert(
            aws_lambda_events::http::header::RETRY_AFTER,
            HeaderValue::from(seconds),
        );
    }
    response
}

fn json_response(status: u16, body: &impl Serialize) -> ApiGatewayV2httpResponse {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = i64::from(status);
    response.headers = headers;
    response.body = Some(Body::Text(
        serde_json::to_string(body).expect("response serializes"),
    ));
    response
}

/// The string value of a Secrets Manager secret (the session token signing secret).
pub async fn read_secret(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> Result<String, String> {
    client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| {
            format!(
                "cannot read the secret {secret_id}: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
            )
        })?
        .secret_string
        .ok_or_else(|| format!("the secret {secret_id} has no string value"))
}

/// Kept free before the invocation's deadline to serialize the answer, write the metrics and
/// hand the answer to the runtime API.
pub const ANSWER_MARGIN: std::time::Duration = std::time::Duration::from_millis(200);

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}
