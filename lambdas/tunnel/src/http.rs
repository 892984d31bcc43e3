//! The HTTP API's side of the forwarding function: `ANY /tunnel/{agent}/{proxy+}` (payload
//! format 2.0) to a [`TunnelRequest`], and a [`TunnelAnswer`] back to the API's response.
//!
//! Refused before anything is stored, with a JSON error naming the problem:
//! - an agent id that is not 1–128 of `A-Z a-z 0-9 . _ -` (400 `bad_agent`), which also keeps
//!   the waiters' principals (`waiter:…`) out of reach;
//! - a body that is not valid base64 where the API says it is (400 `bad_body`);
//! - a request whose message to the agent would exceed [`MAX_REQUEST_MESSAGE_BYTES`] (413
//!   `request_too_large`): API Gateway's WebSocket messages are at most 128 KB.

use std::collections::BTreeMap;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderName, HeaderValue};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::forward::TunnelRequest;

/// The largest request message sent to an agent (API Gateway allows 128 KB; some room is
/// left for the message's own fields).
pub const MAX_REQUEST_MESSAGE_BYTES: usize = 120 * 1024;

/// Headers not passed to the agent: the connection's own, which mean nothing past API Gateway.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "content-length",
    "host",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
];

/// Why a request was refused before anything was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub status: u16,
    pub error: &'static str,
    pub message: String,
}

/// Whether `id` may name an agent.
pub fn valid_agent_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The caller's request, or why it is refused.
pub fn request(event: &ApiGatewayV2httpRequest) -> Result<TunnelRequest, Refused> {
    let refuse = |status, error, message: String| Refused {
        status,
        error,
        message,
    };
    let agent = event
        .path_parameters
        .get("agent")
        .map(String::as_str)
        .unwrap_or_default();
    if !valid_agent_id(agent) {
        return Err(refuse(
            400,
            "bad_agent",
            "the agent id (the path segment after /tunnel/) must be 1–128 of A-Z a-z 0-9 . _ -"
                .into(),
        ));
    }
    let proxy = event
        .path_parameters
        .get("proxy")
        .map(String::as_str)
        .unwrap_or_default();
    let body = match &event.body {
        None => Vec::new(),
        Some(b) if event.is_base64_encoded => STANDARD.decode(b).map_err(|e| {
            refuse(
                400,
                "bad_body",
                format!("the body is not valid base64: {e}"),
            )
        })?,
        Some(b) => b.clone().into_bytes(),
    };
    let mut headers = BTreeMap::new();
    for (name, value) in &event.headers {
        let name = name.as_str();
        if HOP_BY_HOP.contains(&name) {
            continue;
        }
        if let Ok(value) = value.to_str() {
            headers.insert(name.to_owned(), value.to_owned());
        }
    }
    if let Some(cookies) = event.cookies.as_ref().filter(|c| !c.is_empty()) {
        headers.insert("cookie".into(), cookies.join("; "));
    }
    let request = TunnelRequest {
        request_id: event
            .request_context
            .request_id
            .clone()
            .filter(|id| eventfabric_websocket::valid_principal(id))
            .unwrap_or_else(|| format!("{:032x}", fastrand::u128(..))),
        agent_id: agent.to_owned(),
        method: event.request_context.http.method.as_str().to_owned(),
        path: format!("/{proxy}"),
        query: event.raw_query_string.clone().unwrap_or_default(),
        headers,
        body,
    };
    // base64 grows the body by a third; the rest of the message is its other fields.
    let size = request.body.len().div_ceil(3) * 4
        + request.path.len()
        + request.query.len()
        + request
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 6)
            .sum::<usize>()
        + 256;
    if size > MAX_REQUEST_MESSAGE_BYTES {
        return Err(refuse(
            413,
            "request_too_large",
            format!(
                "the request would be a {size}-byte message to the agent; the tunnel carries at most {MAX_REQUEST_MESSAGE_BYTES} (a body of about 90 KB)"
            ),
        ));
    }
    Ok(request)
}

/// The API's response: the status, the headers the agent set (those valid in HTTP), and the
/// body (base64 unless it is UTF-8 text).
pub fn response(
    status: u16,
    headers: &BTreeMap<String, String>,
    body: Vec<u8>,
) -> ApiGatewayV2httpResponse {
    let mut r = ApiGatewayV2httpResponse::default();
    r.status_code = i64::from(status);
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if HOP_BY_HOP.contains(&lower.as_str()) {
            continue;
        }
        if lower == "set-cookie" {
            r.cookies.push(value.clone());
            continue;
        }
        match (
            HeaderName::from_bytes(lower.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(n), Ok(v)) => {
                r.headers.append(n, v);
            }
            _ => {
                tracing::warn!(header = %name, "an agent's header that is not valid HTTP was dropped")
            }
        }
    }
    match String::from_utf8(body) {
        Ok(text) if !text.is_empty() => r.body = Some(Body::Text(text)),
        Ok(_) => {}
        Err(e) => {
            r.body = Some(Body::Text(STANDARD.encode(e.into_bytes())));
            r.is_base64_encoded = true;
        }
    }
    r
}

/// A refusal as the API's response.
pub fn refused(r: &Refused) -> ApiGatewayV2httpResponse {
    let mut headers = BTreeMap::new();
    headers.insert("content-type".to_owned(), "application/json".to_owned());
    response(
        r.status,
        &headers,
        json!({"error": r.error, "message": r.message})
            .to_string()
            .into_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn event(agent: &str, body: Option<&str>, base64: bool) -> ApiGatewayV2httpRequest {
        serde_json::from_value(json!({
            "version": "2.0",
            "routeKey": "ANY /tunnel/{agent}/{proxy+}",
            "rawPath": format!("/tunnel/{agent}/v1/items"),
            "rawQueryString": "page=2",
            "cookies": ["a=1", "b=2"],
            "headers": {"host": "api.example", "content-type": "text/plain", "x-trace": "t1"},
            "pathParameters": {"agent": agent, "proxy": "v1/items"},
            "requestContext": {
                "requestId": "Ab1cD2ef=", "timeEpoch": 0,
                "http": {"method": "POST", "path": "/tunnel/x", "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "curl"}
            },
            "body": body,
            "isBase64Encoded": base64
        }))
        .unwrap()
    }

    #[test]
    fn a_request_keeps_method_path_query_headers_cookies_and_body() {
        let r = request(&event("agent-1", Some("aGk="), true)).unwrap();
        assert_eq!(r.request_id, "Ab1cD2ef=");
        assert_eq!(
            (r.agent_id.as_str(), r.method.as_str()),
            ("agent-1", "POST")
        );
        assert_eq!((r.path.as_str(), r.query.as_str()), ("/v1/items", "page=2"));
        assert_eq!(r.body, b"hi");
        assert_eq!(r.headers.get("cookie").unwrap(), "a=1; b=2");
        assert_eq!(r.headers.get("x-trace").unwrap(), "t1");
        assert!(
            !r.headers.contains_key("host"),
            "hop-by-hop headers stay behind"
        );
        assert_eq!(
            request(&event("a", Some("plain"), false)).unwrap().body,
            b"plain"
        );
    }

    #[test]
    fn bad_agents_bodies_and_oversized_requests_are_refused_with_their_reason() {
        for agent in ["", "waiter:0123", "a/b", &"x".repeat(129)] {
            assert_eq!(
                request(&event(agent, None, false)).unwrap_err().error,
                "bad_agent",
                "{agent}"
            );
        }
        assert_eq!(
            request(&event("a", Some("@@"), true)).unwrap_err().error,
            "bad_body"
        );
        let big = "x".repeat(91 * 1024);
        let err = request(&event("a", Some(&big), false)).unwrap_err();
        assert_eq!((err.status, err.error), (413, "request_too_large"));
        let fits = "x".repeat(80 * 1024);
        assert!(request(&event("a", Some(&fits), false)).is_ok());
    }

    #[test]
    fn an_answer_keeps_valid_headers_and_cookies_and_base64s_binary_bodies() {
        let mut headers = BTreeMap::new();
        headers.insert("Content-Type".to_owned(), "image/png".to_owned());
        headers.insert("Set-Cookie".to_owned(), "s=1".to_owned());
        headers.insert("bad name".to_owned(), "x".to_owned());
        headers.insert("Transfer-Encoding".to_owned(), "chunked".to_owned());
        let r = response(201, &headers, vec![0xff, 0x00]);
        assert_eq!(r.status_code, 201);
        assert_eq!(r.headers.get("content-type").unwrap(), "image/png");
        assert_eq!(r.headers.len(), 1);
        assert_eq!(r.cookies, vec!["s=1"]);
        assert!(r.is_base64_encoded);
        assert_eq!(r.body, Some(Body::Text("/wA=".into())));
        let text = response(200, &BTreeMap::new(), b"ok".to_vec());
        assert!(!text.is_base64_encoded);
        let refusal = refused(&Refused {
            status: 400,
            error: "bad_agent",
            message: "m".into(),
        });
        let Some(Body::Text(body)) = refusal.body else {
            panic!()
        };
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["error"],
            "bad_agent"
        );
    }
}
