//! `POST /api/events/forward`.
//!
//! [`Forwarder`] holds the logic (request checks, per-event checks, publishing through an
//! [`eventfabric_core::EventSink`]); [`handle`] adapts an API Gateway HTTP API (payload v2)
//! request to it. `main.rs` only wires AWS clients and the runtime.

pub mod forward;
pub mod redact;
pub mod request;
pub mod topics;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderMap, HeaderValue, header::CONTENT_TYPE};
use eventfabric_core::EventSink;
use serde::Serialize;

pub use forward::{ForwardConfig, ForwardOutcome, Forwarder, RejectReason, Rejection};
pub use request::RequestError;
pub use topics::CompiledTopics;

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

/// Answers one HTTP API request: 202 with per-event results, or 4xx for the whole request.
pub async fn handle<S: EventSink>(
    forwarder: &Forwarder<S>,
    request: &ApiGatewayV2httpRequest,
    now_ms: i64,
) -> ApiGatewayV2httpResponse {
    let request_id = request.request_context.request_id.as_deref().unwrap_or("-");
    let limits = forwarder.config().request;
    let bytes = request::decode_body(request.body.as_deref(), request.is_base64_encoded, limits);
    let parsed = bytes
        .as_deref()
        .map_err(Clone::clone)
        .and_then(|bytes| request::parse_request(bytes, limits));
    match parsed {
        Ok(body) => {
            let total = body.events.len();
            let outcome = forwarder.forward(body, now_ms).await;
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
            json_response(202, &outcome)
        }
        Err(e) => {
            tracing::info!(request_id, status = e.status, error = e.code, message = %e.message, "forward request refused");
            json_response(
                e.status,
                &ErrorBody {
                    error: e.code,
                    message: &e.message,
                },
            )
        }
    }
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

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}
