//! The request envelope: body decoding and the request-level checks that answer 4xx.

// Every number here may come from a client: arithmetic is checked or saturating, and clippy
// holds new code to that.
#![deny(clippy::arithmetic_side_effects)]

use std::borrow::Cow;

use eventfabric_core::{ClientInfo, Timestamp};
use serde::de;

use crate::tape::{Item, Tape};

/// `POST /api/events/forward` body, read in one pass into a tape ([`Tape::load`]): each
/// event's fields are values of it (strings borrowed from the body unless they hold escapes),
/// its `payload` and `meta` both values to check and the client's JSON text to forward, and an
/// event that is not a valid envelope becomes an [`EventSlot::Malformed`] of its own instead of
/// failing the request.
#[derive(Debug)]
pub struct ForwardRequest<'a> {
    pub events: Vec<EventSlot<'a>>,
    pub client: ClientInfo,
    /// The body's values.
    pub values: Tape<'a>,
}

/// One element of `events`.
#[derive(Debug)]
pub enum EventSlot<'a> {
    Event(Event<'a>),
    /// Not a valid event envelope: `detail` names the field and the problem; `id` is the
    /// element's id when it has a string one.
    Malformed {
        id: Option<String>,
        detail: String,
    },
}

/// One event as a session sends it.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub id: Cow<'a, str>,
    pub ts: Timestamp,
    pub topic: Cow<'a, str>,
    pub payload: Json<'a>,
    /// Absent when left out or `null`.
    pub meta: Option<Json<'a>>,
    pub schema_version: Cow<'a, str>,
}

/// A JSON value of the body: where it is in [`ForwardRequest::values`], and its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Json<'a> {
    pub index: usize,
    pub text: &'a str,
}

/// Longest event id and `client.sessionId`, in bytes. Ids are 1 to 128 visible ASCII
/// characters (U+0021–U+007E: no spaces, no control characters), which every UUID, ULID,
/// nanoid or `prefix-123` style id fits. They become part of a state store key (DynamoDB
/// takes at most 2,048 bytes), of every answer and of the events consumers dedupe on, so both
/// are checked before anything is stored or sent.
pub const MAX_ID_BYTES: usize = 128;
/// Longest `client.tabId`, `client.appVersion` and `client.nonce`, in bytes (copied into every
/// forwarded event's detail). Any text without control characters.
pub const MAX_CLIENT_FIELD_BYTES: usize = 128;
pub use eventfabric_core::text::{bounded, echo};

/// Why `id` cannot be an event id or session id, if it cannot.
pub fn id_problem(id: &str) -> Option<String> {
    if id.is_empty() {
        return Some("must not be empty".to_owned());
    }
    if id.len() > MAX_ID_BYTES {
        return Some(format!(
            "is {} bytes long; the limit is {MAX_ID_BYTES}",
            id.len()
        ));
    }
    id.bytes()
        .position(|b| !b.is_ascii_graphic())
        .map(|at| {
            format!(
                "character {at} is not visible ASCII (U+0021–U+007E); ids may not hold spaces, control or non-ASCII characters"
            )
        })
}

/// Why a client field (tab id, app version, nonce) is unusable, if it is.
fn client_field_problem(value: &str) -> Option<String> {
    if value.len() > MAX_CLIENT_FIELD_BYTES {
        return Some(format!(
            "is {} bytes long; the limit is {MAX_CLIENT_FIELD_BYTES}",
            value.len()
        ));
    }
    value
        .chars()
        .position(char::is_control)
        .map(|at| format!("character {at} is a control character"))
}

/// The envelope's fields, in the order problems are reported.
const FIELDS: [&str; 6] = ["id", "ts", "topic", "payload", "meta", "schemaVersion"];
const CLIENT_FIELDS: [&str; 4] = ["appVersion", "sessionId", "tabId", "nonce"];

/// What serde would call an item in an "invalid type" message.
fn unexpected<'x>(item: &'x Item<'_>) -> de::Unexpected<'x> {
    match item {
        Item::Null | Item::Removed { .. } => de::Unexpected::Unit,
        Item::Bool(b) => de::Unexpected::Bool(*b),
        Item::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => de::Unexpected::Unsigned(u),
            (None, Some(i)) => de::Unexpected::Signed(i),
            (None, None) => de::Unexpected::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        // Never the text itself: it may be a whole body's worth of client data.
        Item::String(_) | Item::Key(_) => de::Unexpected::Other("string"),
        Item::Array { .. } => de::Unexpected::Seq,
        Item::Object { .. } => de::Unexpected::Map,
    }
}

/// `field: invalid type: …, expected …`, worded as serde words it.
fn wrong_type(field: &str, item: &Item<'_>, expected: &str) -> String {
    let error = <serde_json::Error as de::Error>::invalid_type(unexpected(item), &expected);
    format!("{field}: {error}")
}

fn string_field<'a>(values: &Tape<'a>, at: usize, field: &str) -> Result<Cow<'a, str>, String> {
    if let Some(problem) = values.problem_in(at) {
        return Err(format!("{field}: {problem}"));
    }
    match values.item(at) {
        Item::String(s) => Ok(s.clone()),
        other => Err(wrong_type(field, other, "a string")),
    }
}

fn timestamp_field(values: &Tape<'_>, at: usize, field: &str) -> Result<Timestamp, String> {
    let expected = "epoch milliseconds or an RFC 3339 timestamp";
    if let Some(problem) = values.problem_in(at) {
        return Err(format!("{field}: {problem}"));
    }
    match values.item(at) {
        Item::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(ms), _) => Ok(Timestamp(ms)),
            (None, Some(ms)) => Err(format!("{field}: {ms} is out of range for a timestamp")),
            (None, None) => Err(wrong_type(field, values.item(at), expected)),
        },
        Item::String(text) => Timestamp::parse_rfc3339(text).ok_or_else(|| {
            format!(
                "{field}: {} is not an RFC 3339 timestamp or epoch milliseconds",
                echo(text)
            )
        }),
        other => Err(wrong_type(field, other, expected)),
    }
}

/// The members of the object at `at` sorted into `names`' slots; the first problem (a name
/// not among them, or a repeated one) in the order they appear.
fn members<const N: usize>(
    values: &Tape<'_>,
    at: usize,
    names: &[&str; N],
) -> ([Option<usize>; N], Option<String>) {
    let mut slots = [None; N];
    let mut problem = None;
    for (name, value) in values.members(at) {
        // Lengths first: most names differ in length, and those that do are not compared.
        match names
            .iter()
            .position(|n| n.len() == name.len() && *n == name)
        {
            Some(i) => {
                if slots[i].replace(value).is_some() {
                    problem.get_or_insert_with(|| format!("duplicate field `{name}`"));
                }
            }
            None => {
                problem.get_or_insert_with(|| {
                    format!(
                        "unknown field {}, expected one of `{}`",
                        echo(name),
                        names.join("`, `")
                    )
                });
            }
        }
    }
    (slots, problem)
}

impl<'a> Event<'a> {
    /// The event at `at`, or why it is not a valid envelope (and its id when it has one).
    fn read(values: &Tape<'a>, at: usize) -> EventSlot<'a> {
        let not_an_object = |found: String| EventSlot::Malformed {
            id: None,
            detail: format!("an event must be an object, not {found}"),
        };
        match values.item(at) {
            Item::Object { .. } => {}
            Item::Array { .. } => return not_an_object("an array".to_owned()),
            Item::String(_) | Item::Key(_) => return not_an_object("a string".to_owned()),
            Item::Number(n) => return not_an_object(format!("the number {n}")),
            Item::Bool(b) => return not_an_object(b.to_string()),
            Item::Null | Item::Removed { .. } => return not_an_object("null".to_owned()),
        }
        let (fields, problem) = members(values, at, &FIELDS);
        // Only an id that could be one is quoted back; otherwise the index identifies the event.
        let id = fields[0].and_then(|i| match values.item(i) {
            Item::String(id) if id_problem(id).is_none() => Some(id.as_ref()),
            _ => None,
        });
        let detail = match problem {
            Some(problem) => problem,
            None => match Self::from_fields(values, fields) {
                Ok(event) => return EventSlot::Event(event),
                Err(detail) => detail,
            },
        };
        EventSlot::Malformed {
            id: id.map(str::to_owned),
            detail,
        }
    }

    fn from_fields(values: &Tape<'a>, fields: [Option<usize>; 6]) -> Result<Self, String> {
        let missing = |i: usize| format!("missing field `{}`", FIELDS[i]);
        let id = string_field(values, fields[0].ok_or_else(|| missing(0))?, "id")?;
        if let Some(problem) = id_problem(&id) {
            return Err(format!("id: {problem}"));
        }
        let ts = fields[1].ok_or_else(|| missing(1))?;
        let topic = fields[2].ok_or_else(|| missing(2))?;
        let payload = fields[3].ok_or_else(|| missing(3))?;
        let schema_version = fields[5].ok_or_else(|| missing(5))?;
        let json = |index: usize| Json {
            index,
            text: values
                .text_of(index)
                .expect("a loaded tape knows each value's text"),
        };
        Ok(Self {
            id,
            ts: timestamp_field(values, ts, "ts")?,
            topic: string_field(values, topic, "topic")?,
            payload: json(payload),
            // `"meta": null` is no meta, as when it is left out.
            meta: fields[4]
                .filter(|&i| !matches!(values.item(i), Item::Null))
                .map(json),
            schema_version: string_field(values, schema_version, "schemaVersion")?,
        })
    }
}

/// The `client` object.
fn client_info(values: &Tape<'_>, at: usize) -> Result<ClientInfo, String> {
    if !matches!(values.item(at), Item::Object { .. }) {
        return Err(wrong_type("client", values.item(at), "client info"));
    }
    let (fields, problem) = members(values, at, &CLIENT_FIELDS);
    if let Some(problem) = problem {
        return Err(format!("client: {problem}"));
    }
    let mut strings = fields.iter().zip(CLIENT_FIELDS).map(|(slot, name)| {
        let at = slot.ok_or_else(|| format!("client: missing field `{name}`"))?;
        string_field(values, at, &format!("client.{name}")).map(Cow::into_owned)
    });
    let mut next = || strings.next().expect("four fields");
    Ok(ClientInfo {
        app_version: next()?,
        session_id: next()?,
        tab_id: next()?,
        nonce: next()?,
    })
}

/// The request's `events` and `client`.
fn read_request<'a>(values: &Tape<'a>) -> Result<(Vec<EventSlot<'a>>, ClientInfo), String> {
    if !matches!(values.item(0), Item::Object { .. }) {
        return Err(wrong_type(
            "body",
            values.item(0),
            "an object with `events` and `client`",
        ));
    }
    let ([events, client], problem) = members(values, 0, &["events", "client"]);
    if let Some(problem) = problem {
        return Err(problem);
    }
    let events = events.ok_or("missing field `events`")?;
    let client = client.ok_or("missing field `client`")?;
    if !matches!(values.item(events), Item::Array { .. }) {
        return Err(wrong_type(
            "events",
            values.item(events),
            "an array of events",
        ));
    }
    let slots = values
        .elements(events)
        .map(|at| Event::read(values, at))
        .collect();
    Ok((slots, client_info(values, client)?))
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

/// The body as text (base64-decoded when API Gateway says so), within the size limit. A plain
/// body is borrowed as it is (API Gateway hands over a string, so it is UTF-8 already); a
/// decoded one is checked once.
pub fn decode_body(
    body: Option<&str>,
    is_base64: bool,
    limits: RequestLimits,
) -> Result<Cow<'_, str>, RequestError> {
    eventfabric_core::http::decode_body(body, is_base64, limits.max_body_bytes).map_err(|e| {
        let message = e.to_string();
        match e.status() {
            413 => RequestError {
                status: 413,
                code: "payload_too_large",
                message,
            },
            _ => RequestError::bad_request(message),
        }
    })
}

/// Parses a decoded body and checks the request-level rules.
pub fn parse_request(
    text: &str,
    limits: RequestLimits,
) -> Result<ForwardRequest<'_>, RequestError> {
    // Items are about one per eight bytes of a typical body.
    let mut values = Tape::with_capacity((text.len() / 8).saturating_add(16));
    let invalid =
        |e: String| RequestError::bad_request(format!("body is not a valid forward request: {e}"));
    values.load_with_repeats(text).map_err(invalid)?;
    let (events, client) = read_request(&values).map_err(invalid)?;
    let request = ForwardRequest {
        events,
        client,
        values,
    };
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
    let client = &request.client;
    if let Some(problem) = id_problem(&client.session_id) {
        return Err(RequestError::bad_request(format!(
            "client.sessionId: {problem}"
        )));
    }
    if client.tab_id.is_empty() {
        return Err(RequestError::bad_request("client.tabId: must not be empty"));
    }
    for (field, value) in [
        ("client.tabId", &client.tab_id),
        ("client.appVersion", &client.app_version),
        ("client.nonce", &client.nonce),
    ] {
        if let Some(problem) = client_field_problem(value) {
            return Err(RequestError::bad_request(format!("{field}: {problem}")));
        }
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

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
        assert!(
            matches!(&plain.events[0], EventSlot::Malformed { id: Some(id), detail } if id == "e1" && detail == "missing field `ts`"),
            "{:?}",
            plain.events[0]
        );
        assert_eq!(plain.client.session_id, "s1");
        let encoded = base64::engine::general_purpose::STANDARD.encode(&body);
        assert_eq!(decode_body(Some(&encoded), true, LIMITS).unwrap(), body);
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
        assert!(
            bad_json.message.ends_with("unexpected end of the text"),
            "{}",
            bad_json.message
        );

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

    /// The events of a body, each as what the forwarder gets: the event or its problem.
    fn slots(events: &str) -> Vec<Result<String, (Option<String>, String)>> {
        let body = format!(r#"{{"events": {events}, {CLIENT}}}"#);
        let limits = RequestLimits {
            max_body_bytes: 4096,
            max_events: 20,
        };
        parse_request(&body, limits)
            .unwrap()
            .events
            .into_iter()
            .map(|slot| match slot {
                EventSlot::Event(e) => Ok(format!(
                    "{}|{}|{}|{}|{}|{:?}",
                    e.id,
                    e.ts.millis(),
                    e.topic,
                    e.payload.text,
                    e.schema_version,
                    e.meta.map(|m| m.text)
                )),
                EventSlot::Malformed { id, detail } => Err((id, detail)),
            })
            .collect()
    }

    #[test]
    fn each_event_is_read_in_the_body_pass_and_fails_on_its_own() {
        let base =
            r#""ts": 5, "topic": "a.b", "payload": {"k": [1, "x"]}, "schemaVersion": "1.0.0""#;
        let got = slots(&format!(
            r#"[{{"id": "e1", {base}}},
                {{"id": "e\"2", {base}, "meta": {{"page": "/"}}}},
                {{"id": "e3", {base}, "meta": null}},
                {{"id": "e4", "ts": "2023-11-14T22:13:20Z", "topic": "a.b", "payload": 1, "schemaVersion": "1"}},
                {{"id": "m1", "topic": "a.b"}},
                {{"id": "m2", {base}, "extra": {{"deep": [1]}}}},
                {{"id": "m3", {base}, "ts": 6}},
                {{"id": 7, {base}}},
                {{"id": "m5", "ts": true, "topic": "a.b", "payload": {{}}, "schemaVersion": "1"}},
                {{"id": "m7", "ts": "yesterday", "topic": "a.b", "payload": {{}}, "schemaVersion": "1"}},
                {{"id": "m6", "ts": 1, "topic": ["a"], "payload": {{}}, "schemaVersion": "1"}},
                [1, {{"id": "x"}}], "e", 3, null, true]"#
        ));
        let ok = |s: &str| Ok(s.to_owned());
        let bad = |id: Option<&str>, d: &str| Err((id.map(str::to_owned), d.to_owned()));
        assert_eq!(
            got,
            vec![
                ok(r#"e1|5|a.b|{"k": [1, "x"]}|1.0.0|None"#),
                ok(r#"e"2|5|a.b|{"k": [1, "x"]}|1.0.0|Some("{\"page\": \"/\"}")"#),
                ok(r#"e3|5|a.b|{"k": [1, "x"]}|1.0.0|None"#),
                ok("e4|1700000000000|a.b|1|1|None"),
                bad(Some("m1"), "missing field `ts`"),
                bad(
                    Some("m2"),
                    "unknown field 'extra', expected one of `id`, `ts`, `topic`, `payload`, `meta`, `schemaVersion`"
                ),
                bad(Some("m3"), "duplicate field `ts`"),
                bad(None, "id: invalid type: integer `7`, expected a string"),
                bad(
                    Some("m5"),
                    "ts: invalid type: boolean `true`, expected epoch milliseconds or an RFC 3339 timestamp"
                ),
                bad(
                    Some("m7"),
                    "ts: 'yesterday' is not an RFC 3339 timestamp or epoch milliseconds"
                ),
                bad(
                    Some("m6"),
                    "topic: invalid type: sequence, expected a string"
                ),
                bad(None, "an event must be an object, not an array"),
                bad(None, "an event must be an object, not a string"),
                bad(None, "an event must be an object, not the number 3"),
                bad(None, "an event must be an object, not null"),
                bad(None, "an event must be an object, not true"),
            ]
        );
        let borrowed = format!(r#"{{"events": [{{"id": "e1", {base}}}], {CLIENT}}}"#);
        let request = parse_request(&borrowed, LIMITS).unwrap();
        let EventSlot::Event(event) = &request.events[0] else {
            panic!()
        };
        assert!(matches!(event.id, Cow::Borrowed(_)) && matches!(event.topic, Cow::Borrowed(_)));
    }

    #[test]
    fn a_body_that_is_not_json_text_is_refused_whole() {
        let not_utf8 = base64::engine::general_purpose::STANDARD.encode(b"{\"events\": [\xff]}");
        let err = decode_body(Some(&not_utf8), true, LIMITS).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(
            err.message.starts_with("body is not UTF-8 text"),
            "{}",
            err.message
        );
        // A syntax error inside one event cannot be isolated: the body is not JSON.
        let err = parse_request(
            &format!(r#"{{"events": [{{"id": "e1", "ts": }}], {CLIENT}}}"#),
            LIMITS,
        )
        .unwrap_err();
        assert!(
            err.message
                .starts_with("body is not a valid forward request"),
            "{}",
            err.message
        );
    }
}
