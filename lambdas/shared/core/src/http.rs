//! What every HTTP API (payload v2) function shares: the request body decoded within a size
//! limit, and JSON answers.

use std::borrow::Cow;

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use serde::Serialize;

/// Why a body could not be read; each message names the limit or the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    Missing,
    /// The body (decoded) is `len` bytes, over `limit`.
    TooLarge {
        len: usize,
        limit: usize,
    },
    NotBase64(String),
    NotUtf8(String),
}

impl BodyError {
    /// 413 for a body over the limit, 400 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            BodyError::TooLarge { .. } => 413,
            _ => 400,
        }
    }
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::Missing => f.write_str("request body is required"),
            BodyError::TooLarge { len, limit } => {
                write!(f, "request body is {len} bytes; the limit is {limit}")
            }
            BodyError::NotBase64(e) => write!(f, "body is marked base64 but does not decode: {e}"),
            BodyError::NotUtf8(e) => write!(f, "body is not UTF-8 text: {e}"),
        }
    }
}

/// The request body as text, at most `max_bytes` once decoded. An oversize base64 body is
/// refused before it is decoded.
pub fn decode_body(
    body: Option<&str>,
    is_base64: bool,
    max_bytes: usize,
) -> Result<Cow<'_, str>, BodyError> {
    let body = body.filter(|b| !b.is_empty()).ok_or(BodyError::Missing)?;
    // A base64 body decodes to 3/4 of its length.
    let decoded_len_upper = if is_base64 {
        (body.len() / 4).saturating_mul(3)
    } else {
        body.len()
    };
    if decoded_len_upper > max_bytes.saturating_add(3) {
        return Err(BodyError::TooLarge {
            len: decoded_len_upper,
            limit: max_bytes,
        });
    }
    let text: Cow<'_, str> = if is_base64 {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| BodyError::NotBase64(e.to_string()))?;
        Cow::Owned(
            String::from_utf8(decoded)
                .map_err(|e| BodyError::NotUtf8(e.utf8_error().to_string()))?,
        )
    } else {
        Cow::Borrowed(body)
    };
    if text.len() > max_bytes {
        return Err(BodyError::TooLarge {
            len: text.len(),
            limit: max_bytes,
        });
    }
    Ok(text)
}

/// An answer with a JSON body.
pub fn json_response(status: u16, body: &impl Serialize) -> ApiGatewayV2httpResponse {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = i64::from(status);
    response.headers = headers;
    response.body = Some(Body::Text(
        serde_json::to_string(body).expect("response serializes"),
    ));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_decoded_within_the_limit() {
        assert_eq!(decode_body(Some("{}"), false, 10).unwrap(), "{}");
        assert_eq!(decode_body(Some("e30="), true, 10).unwrap(), "{}");
        assert_eq!(decode_body(None, false, 10), Err(BodyError::Missing));
        let err = decode_body(Some(&"x".repeat(11)), false, 10).unwrap_err();
        assert_eq!(err.status(), 413);
        assert_eq!(err.to_string(), "request body is 11 bytes; the limit is 10");
        // Refused before decoding.
        assert!(matches!(
            decode_body(Some(&"A".repeat(400)), true, 10),
            Err(BodyError::TooLarge { .. })
        ));
        assert!(matches!(
            decode_body(Some("%%%"), true, 10),
            Err(BodyError::NotBase64(_))
        ));
        assert!(matches!(
            decode_body(Some("/w=="), true, 10),
            Err(BodyError::NotUtf8(_))
        ));
    }
}
