//! The request body: one event (an object), or a batch (`{"events": [...]}` or a bare array) of
//! at most [`MAX_EVENTS`]. Request-level problems (not JSON, no events, too many) refuse the
//! whole request with the field named; problems of one event of a batch reject that event only.

use serde::Deserialize;
use serde_json::value::RawValue;

/// At most this many events per request (one `PutRecords` call's worth).
pub const MAX_EVENTS: usize = 500;
/// The largest body, in bytes: 500 events of about 8 KB. (The Lambda invocation payload, which
/// carries the body, is limited to 6 MB.)
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// A request refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl RequestError {
    fn bad(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            code: "bad_request",
            message: message.into(),
        }
    }
}

/// The events of a request, as raw JSON values, in order.
#[derive(Debug)]
pub struct Events<'a> {
    pub events: Vec<&'a RawValue>,
    /// Sent as a single event (not a batch): its problems refuse the request (400).
    pub single: bool,
}

#[derive(Deserialize)]
struct Batch<'a> {
    #[serde(borrow)]
    events: Option<Vec<&'a RawValue>>,
}

/// Reads the body's events. See the module for the accepted shapes.
pub fn parse(body: &str) -> Result<Events<'_>, RequestError> {
    let top: &RawValue = serde_json::from_str(body)
        .map_err(|e| RequestError::bad(format!("body: not JSON: {e}")))?;
    let text = top.get();
    let events = match text.as_bytes().first() {
        Some(b'[') => serde_json::from_str::<Vec<&RawValue>>(text)
            .map_err(|e| RequestError::bad(format!("body: not a JSON array of events: {e}")))?,
        Some(b'{') => {
            let batch: Batch = serde_json::from_str(text).map_err(|e| {
                RequestError::bad(format!("events: must be an array of events: {e}"))
            })?;
            match batch.events {
                Some(events) => events,
                None => {
                    return Ok(Events {
                        events: vec![top],
                        single: true,
                    });
                }
            }
        }
        _ => {
            return Err(RequestError::bad(format!(
                "body: must be an event object, an array of events or {{\"events\": [...]}}, not {}",
                eventfabric_core::ingest::json_kind(text)
            )));
        }
    };
    if events.is_empty() {
        return Err(RequestError::bad("events: the batch is empty"));
    }
    if events.len() > MAX_EVENTS {
        return Err(RequestError {
            status: 413,
            code: "payload_too_large",
            message: format!(
                "events: {} events; at most {MAX_EVENTS} per request",
                events.len()
            ),
        });
    }
    Ok(Events {
        events,
        single: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_a_wrapped_batch_or_an_array() {
        let one = parse(r#"{"event_type":"a.b"}"#).unwrap();
        assert!(one.single);
        assert_eq!(one.events.len(), 1);
        let wrapped = parse(r#"{"events":[{"a":1},{"b":2}]}"#).unwrap();
        assert!(!wrapped.single);
        assert_eq!(wrapped.events[1].get(), r#"{"b":2}"#);
        assert_eq!(parse(r#"[{"a":1}, 3]"#).unwrap().events.len(), 2);
    }

    #[test]
    fn request_level_problems_name_the_field() {
        let e = parse("{nope").unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.starts_with("body: not JSON"), "{}", e.message);
        assert!(
            parse("[]")
                .unwrap_err()
                .message
                .starts_with("events: the batch is empty")
        );
        assert_eq!(
            parse(r#""text""#).unwrap_err().message,
            "body: must be an event object, an array of events or {\"events\": [...]}, not a string"
        );
        assert!(
            parse(r#"{"events": 3}"#)
                .unwrap_err()
                .message
                .starts_with("events: must be an array")
        );
        let many = format!("[{}]", vec!["{}"; MAX_EVENTS + 1].join(","));
        let e = parse(&many).unwrap_err();
        assert_eq!(e.status, 413);
        assert_eq!(e.message, "events: 501 events; at most 500 per request");
    }
}
