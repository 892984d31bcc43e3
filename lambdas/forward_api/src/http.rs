//! The API Gateway adapter: an HTTP API (payload v2) request in, its answer out. Session token
//! (401/403), body (400/413), then the forwarder (429, 500 or 202), with every metric and log
//! line of the request recorded here.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::http::{HeaderValue, header};
use eventfabric_core::{Deadline, EventSink};
use serde::Serialize;

use crate::auth::{self, Authenticator};
use crate::forward::{Answer, Forwarded, Forwarder, StoreFailure};
use crate::metrics;
use crate::request::{self, RequestError};
use crate::state::{SessionState, StateError};
use crate::switch::{Forwarding, Switch};
use eventfabric_core::parameter::ParameterSource;

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

fn authorization(request: &ApiGatewayV2httpRequest) -> Option<&str> {
    request
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// Answers one HTTP API request: 202 with per-event results, or 4xx/500 for the whole
/// request. `authenticator` is a [`crate::TokenVerifier`], or in the deployed function a
/// [`crate::KeyRing`] that follows rotations of the signing secret. The answer is ready by
/// `answer_by`: store calls and publish retries stop in time for it.
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
    let total = body.events.len();
    let Forwarded {
        answer,
        store_failures,
    } = forwarder.forward(body, now_ms, answer_by).await;
    for failure in &store_failures {
        record_store_failure(request_id, failure);
    }
    match answer {
        Answer::Events(outcome) => {
            let mut by_reason = std::collections::BTreeMap::new();
            for r in &outcome.rejected {
                let n: &mut u32 = by_reason.entry(r.reason).or_insert(0);
                *n = n.saturating_add(1);
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
        Answer::QuotaExceeded {
            retry_after_seconds,
        } => {
            let quota = forwarder.config().quota_events_per_minute;
            let e = RequestError {
                status: 429,
                code: "quota_exceeded",
                message: format!(
                    "session quota of {quota} events per minute exceeded; retry in {retry_after_seconds} s"
                ),
            };
            refuse(request_id, &e, Some(retry_after_seconds))
        }
        Answer::QuotaRefused => {
            let e = RequestError {
                status: 500,
                code: "internal_error",
                message: "the session state store refused the quota update".to_owned(),
            };
            refuse(request_id, &e, None)
        }
    }
}

/// [`handle`] behind the kill switch: 503 while `switch` reads off, else the request as
/// usual. `None` (no switch parameter configured) is always on.
pub async fn handle_switched<
    S: EventSink,
    St: SessionState,
    A: Authenticator,
    P: ParameterSource,
>(
    switch: Option<&Switch<P>>,
    forwarder: &Forwarder<S, St>,
    authenticator: &A,
    request: &ApiGatewayV2httpRequest,
    now_ms: i64,
    answer_by: Deadline,
) -> ApiGatewayV2httpResponse {
    if let Some(switch) = switch
        && switch.current().await == Forwarding::Off
    {
        return forwarding_disabled(request);
    }
    handle(forwarder, authenticator, request, now_ms, answer_by).await
}

/// The answer while the kill switch is off (`crate::switch`): 503 `forwarding_disabled` with
/// `Retry-After`, before the token or the body is read. The client keeps its events.
pub fn forwarding_disabled(request: &ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
    let request_id = request.request_context.request_id.as_deref().unwrap_or("-");
    let e = RequestError {
        status: 503,
        code: "forwarding_disabled",
        message: format!(
            "forwarding is switched off; keep the events and send them again in {} s",
            crate::switch::RETRY_AFTER_SECONDS
        ),
    };
    refuse(request_id, &e, Some(crate::switch::RETRY_AFTER_SECONDS))
}

/// A store call the request went on without: a warning when the store was unavailable (the
/// request failed open), an error when it refused (a deployment fault), and the alarmed
/// `StateStoreErrors` counter either way.
fn record_store_failure(request_id: &str, failure: &StoreFailure) {
    let operation = failure.operation.as_str();
    let consequence = failure.operation.consequence();
    match &failure.error {
        StateError::Unavailable(_) => tracing::warn!(
            request_id,
            operation,
            events = failure.events,
            error = %failure.error,
            consequence,
            "state store unavailable"
        ),
        StateError::Refused(_) => tracing::error!(
            request_id,
            operation,
            events = failure.events,
            error = %failure.error,
            consequence,
            "state store refused a call"
        ),
    }
    metrics::state_store_error();
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
        response
            .headers
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

use eventfabric_core::http::json_response;
