//! The request envelope: body decoding and the request-level checks that answer 4xx.

use std::borrow::Cow;

use base64::Engine;
use eventfabric_core::ClientInfo;
use serde::Deserialize;
use serde_json::value::RawValue;

/// `POST /api/events/forward` body. Events stay raw JSON slices of the body here, so one
/// malformed event is rejected on its own instead of failing the request, and nothing is
/// copied before it is checked.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardRequest<'a> {
    #[serde(borrow)]
    pub events: Vec<&'a RawValue>,
    pub client: ClientInfo,
}

/// A request-level refusal: the whole request is answered with `status`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct RequestError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl RequestError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            code: "bad_request",
            message: message.into(),
        }
    }
}

/// Limits of one request.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    pub max_body_bytes: usize,
    pub max_events: usize,
}

/// The body as bytes (base64-decoded when API Gateway says so), within the size limit.
pub fn decode_body(
    body: Option<&str>,
    is_base64: bool,
    limits: RequestLimits,
) -> Result<Cow<'_, [u8]>, RequestError> {
    let body = body
        .filter(|b| !b.is_empty())
        .ok_or_else(|| RequestError::bad_request("request body is required"))?;
    let too_large = |len: usize| RequestError {
        status: 413,
        code: "payload_too_large",
        message: format!(
            "request body is {len} bytes; the limit is {}",
            limits.max_body_bytes
        ),
    };
    // A base64 body decodes to 3/4 of its length: refuse oversize bodies before decoding.
    let decoded_len_upper = if is_base64 {
        body.len() / 4 * 3
    } else {
        body.len()
    };
    if decoded_len_upper > limits.max_body_bytes + 3 {
        return Err(too_large(decoded_len_upper));
    }
    let bytes: Cow<'_, [u8]> = if is_base64 {
        Cow::Owned(
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .map_err(|e| {
                    RequestError::bad_request(format!(
                        "body is marked base64 but does not decode: {e}"
                    ))
                })?,
        )
    } else {
        Cow::Borrowed(body.as_bytes())
    };
    if bytes.len() > limits.max_body_bytes {
        return Err(too_large(bytes.len()));
    }
    Ok(bytes)
}

/// Parses a decoded body and checks the request-level rules.
pub fn parse_request(
    bytes: &[u8],
    limits: RequestLimits,
) -> Result<ForwardRequest<'_>, RequestError> {
    let request: ForwardRequest = serde_json::from_slice(bytes).map_err(|e| {
        RequestError::bad_request(format!("body is not a valid forward request: {e}"))
    })?;
    if request.events.is_empty() {
        return Err(RequestError::bad_request(
            "events: must contain at least one event",
        ));
    }
    if request.events.len() > limits.max_events {
        return Err(RequestError::bad_request(format!(
            "events: {} events in one request; the limit is {}",
            request.events.len(),
            limits.max_events
        )));
    }
    for (field, value) in [
        ("client.sessionId", &request.client.session_id),
        ("client.tabId", &request.client.tab_id),
    ] {
        if value.is_empty() {
            return Err(RequestError::bad_request(format!(
                "{field}: must not be empty"
            )));
        }
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: RequestLimits = RequestLimits {
        max_body_bytes: 1024,
        max_events: 3,
    };
    const CLIENT: &str =
        r#""client": {"appVersion": "1.2.3", "sessionId": "s1", "tabId": "t1", "nonce": "n"}"#;

    /// Decode and parse, as the handler does; errors only.
    fn parse_body(
        body: Option<&str>,
        is_base64: bool,
        limits: RequestLimits,
    ) -> Result<(), RequestError> {
        parse_request(&decode_body(body, is_base64, limits)?, limits).map(drop)
    }

    #[test]
    fn parses_plain_and_base64_bodies() {
        let body = format!(r#"{{"events": [{{"id": "e1"}}], {CLIENT}}}"#);
        let bytes = decode_body(Some(&body), false, LIMITS).unwrap();
        let plain = parse_request(&bytes, LIMITS).unwrap();
        assert_eq!(plain.events[0].get(), r#"{"id": "e1"}"#);
        assert_eq!(plain.client.session_id, "s1");
        let encoded = base64::engine::general_purpose::STANDARD.encode(&body);
        assert_eq!(
            decode_body(Some(&encoded), true, LIMITS).unwrap(),
            body.as_bytes()
        );
    }

    #[test]
    fn malformed_bodies_name_the_problem() {
        let missing = parse_body(None, false, LIMITS).unwrap_err();
        assert_eq!(
            (missing.status, missing.message.as_str()),
            (400, "request body is required")
        );

        let no_client = parse_body(Some(r#"{"events": [{}]}"#), false, LIMITS).unwrap_err();
        assert_eq!(no_client.status, 400);
        assert!(
            no_client.message.contains("missing field `client`"),
            "{}",
            no_client.message
        );

        let bad_json = parse_body(Some("{"), false, LIMITS).unwrap_err();
        assert!(bad_json.message.contains("EOF"), "{}", bad_json.message);

        let empty = parse_body(
            Some(&format!(r#"{{"events": [], {CLIENT}}}"#)),
            false,
            LIMITS,
        )
        .unwrap_err();
        assert!(empty.message.starts_with("events:"), "{}", empty.message);

        let too_many = parse_body(
            Some(&format!(r#"{{"events": [1,2,3,4], {CLIENT}}}"#)),
            false,
            LIMITS,
        )
        .unwrap_err();
        assert!(
            too_many.message.contains("limit is 3"),
            "{}",
            too_many.message
        );

        let bad_b64 = parse_body(Some("%%%"), true, LIMITS).unwrap_err();
        assert!(bad_b64.message.contains("base64"), "{}", bad_b64.message);
    }

    #[test]
    fn oversized_bodies_get_413() {
        let body = format!(
            r#"{{"events": [{{"pad": "{}"}}], {CLIENT}}}"#,
            "x".repeat(2000)
        );
        assert_eq!(
            parse_body(Some(&body), false, LIMITS).unwrap_err().status,
            413
        );
        let encoded = base64::engine::general_purpose::STANDARD.encode(&body);
        assert_eq!(
            parse_body(Some(&encoded), true, LIMITS).unwrap_err().status,
            413
        );
    }
}
