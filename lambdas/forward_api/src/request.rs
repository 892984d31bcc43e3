//! The request envelope: body decoding and the request-level checks that answer 4xx.

use std::borrow::Cow;

use std::fmt;

use base64::Engine;
use eventfabric_core::{ClientEvent, ClientInfo, Timestamp};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, de::DeserializeSeed};
use serde_json::value::RawValue;

use crate::tape::StrSeed;

/// `POST /api/events/forward` body, read in one pass: each event's fields are captured as
/// slices of the body (strings copied only when they hold escapes, `payload` and `meta` left as
/// raw JSON), and an event that is not a valid envelope becomes an [`EventSlot::Malformed`]
/// of its own instead of failing the request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardRequest<'a> {
    #[serde(borrow, deserialize_with = "events")]
    pub events: Vec<EventSlot<'a>>,
    pub client: ClientInfo,
}

/// The `events` array into a vector sized for a typical request up front: serde's own grows
/// from empty by doubling, copying the slots each time.
fn events<'de: 'a, 'a, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<EventSlot<'a>>, D::Error> {
    struct Events;
    impl<'de> Visitor<'de> for Events {
        type Value = Vec<EventSlot<'de>>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array of events")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut events = Vec::with_capacity(seq.size_hint().unwrap_or(16).min(64));
            while let Some(event) = seq.next_element()? {
                events.push(event);
            }
            Ok(events)
        }
    }
    deserializer.deserialize_seq(Events)
}

/// One element of `events`.
#[derive(Debug)]
pub enum EventSlot<'a> {
    Event(ClientEvent<'a>),
    /// Not a valid event envelope: `detail` names the field and the problem; `id` is the
    /// element's id when it has a string one.
    Malformed {
        id: Option<String>,
        detail: String,
    },
}

/// The envelope's fields, in the order problems are reported.
const FIELDS: [&str; 6] = ["id", "ts", "topic", "payload", "meta", "schemaVersion"];

impl<'de: 'a, 'a> Deserialize<'de> for EventSlot<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SlotVisitor)
    }
}

/// Any JSON value in the position of a scalar field: captured as it is, so that a value of the
/// wrong type fails its event with a message instead of failing the whole body.
#[derive(Debug)]
enum Scalar<'de> {
    Str(Cow<'de, str>),
    Signed(i64),
    Unsigned(u64),
    Float(f64),
    Bool(bool),
    Null,
    Seq,
    Map,
}

impl<'de> Scalar<'de> {
    fn unexpected(&self) -> de::Unexpected<'_> {
        match self {
            Self::Str(s) => de::Unexpected::Str(s),
            Self::Signed(v) => de::Unexpected::Signed(*v),
            Self::Unsigned(v) => de::Unexpected::Unsigned(*v),
            Self::Float(v) => de::Unexpected::Float(*v),
            Self::Bool(v) => de::Unexpected::Bool(*v),
            Self::Null => de::Unexpected::Unit,
            Self::Seq => de::Unexpected::Seq,
            Self::Map => de::Unexpected::Map,
        }
    }

    fn wrong_type(&self, field: &str, expected: &str) -> String {
        let error = <serde_json::Error as de::Error>::invalid_type(self.unexpected(), &expected);
        format!("{field}: {error}")
    }

    fn into_string(self, field: &str) -> Result<Cow<'de, str>, String> {
        match self {
            Self::Str(s) => Ok(s),
            other => Err(other.wrong_type(field, "a string")),
        }
    }

    fn into_timestamp(self, field: &str) -> Result<Timestamp, String> {
        match self {
            Self::Signed(ms) => Ok(Timestamp(ms)),
            Self::Unsigned(ms) => i64::try_from(ms)
                .map(Timestamp)
                .map_err(|_| format!("{field}: {ms} is out of range for a timestamp")),
            Self::Str(text) => Timestamp::parse_rfc3339(&text).ok_or_else(|| {
                format!("{field}: '{text}' is not an RFC 3339 timestamp or epoch milliseconds")
            }),
            other => Err(other.wrong_type(field, "epoch milliseconds or an RFC 3339 timestamp")),
        }
    }
}

struct ScalarSeed;

impl<'de> DeserializeSeed<'de> for ScalarSeed {
    type Value = Scalar<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Scalar<'de>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScalarSeed {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Signed(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Unsigned(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Float(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Bool(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Map)
    }
}

struct SlotVisitor;

fn not_an_object<'a>(found: fmt::Arguments<'_>) -> EventSlot<'a> {
    EventSlot::Malformed {
        id: None,
        detail: format!("an event must be an object, not {found}"),
    }
}

/// The fields of one event as read, before their types are checked.
#[derive(Default)]
struct Fields<'de> {
    id: Option<Scalar<'de>>,
    ts: Option<Scalar<'de>>,
    topic: Option<Scalar<'de>>,
    payload: Option<&'de RawValue>,
    meta: Option<&'de RawValue>,
    schema_version: Option<Scalar<'de>>,
}

impl<'de> Fields<'de> {
    fn into_event(self) -> Result<ClientEvent<'de>, String> {
        let missing = |i: usize| format!("missing field `{}`", FIELDS[i]);
        let id = self.id.ok_or_else(|| missing(0))?.into_string("id")?;
        let ts = self.ts.ok_or_else(|| missing(1))?;
        let topic = self.topic.ok_or_else(|| missing(2))?;
        let payload = self.payload.ok_or_else(|| missing(3))?;
        let schema_version = self.schema_version.ok_or_else(|| missing(5))?;
        Ok(ClientEvent {
            id,
            ts: ts.into_timestamp("ts")?,
            topic: topic.into_string("topic")?,
            payload,
            // `"meta": null` is no meta, as when it is left out.
            meta: self.meta.filter(|m| m.get() != "null"),
            schema_version: schema_version.into_string("schemaVersion")?,
        })
    }
}

impl<'de> Visitor<'de> for SlotVisitor {
    type Value = EventSlot<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EventSlot<'de>, A::Error> {
        let mut fields = Fields::default();
        let mut problem = None;
        while let Some(key) = map.next_key_seed(StrSeed)? {
            let repeated = match key.as_ref() {
                "id" => fields
                    .id
                    .replace(map.next_value_seed(ScalarSeed)?)
                    .is_some(),
                "ts" => fields
                    .ts
                    .replace(map.next_value_seed(ScalarSeed)?)
                    .is_some(),
                "topic" => fields
                    .topic
                    .replace(map.next_value_seed(ScalarSeed)?)
                    .is_some(),
                "payload" => fields.payload.replace(map.next_value()?).is_some(),
                "meta" => fields.meta.replace(map.next_value()?).is_some(),
                "schemaVersion" => fields
                    .schema_version
                    .replace(map.next_value_seed(ScalarSeed)?)
                    .is_some(),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    problem.get_or_insert_with(|| {
                        format!(
                            "unknown field `{key}`, expected one of `{}`",
                            FIELDS.join("`, `")
                        )
                    });
                    false
                }
            };
            if repeated {
                problem.get_or_insert_with(|| format!("duplicate field `{key}`"));
            }
        }
        let id = match &fields.id {
            Some(Scalar::Str(id)) => Some(id.as_ref()),
            _ => None,
        };
        let malformed = |id: Option<&str>, detail| EventSlot::Malformed {
            id: id.map(str::to_owned),
            detail,
        };
        if let Some(problem) = problem {
            return Ok(malformed(id, problem));
        }
        let id = id.map(str::to_owned);
        Ok(match fields.into_event() {
            Ok(event) => EventSlot::Event(event),
            Err(detail) => EventSlot::Malformed { id, detail },
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<EventSlot<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(not_an_object(format_args!("an array")))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<EventSlot<'de>, E> {
        Ok(not_an_object(format_args!("a string")))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<EventSlot<'de>, E> {
        Ok(not_an_object(format_args!("{v}")))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<EventSlot<'de>, E> {
        Ok(not_an_object(format_args!("the number {v}")))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<EventSlot<'de>, E> {
        Ok(not_an_object(format_args!("the number {v}")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<EventSlot<'de>, E> {
        Ok(not_an_object(format_args!("the number {v}")))
    }

    fn visit_unit<E: de::Error>(self) -> Result<EventSlot<'de>, E> {
        Ok(not_an_object(format_args!("null")))
    }
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
    let bytes: Cow<'_, str> = if is_base64 {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| {
                RequestError::bad_request(format!("body is marked base64 but does not decode: {e}"))
            })?;
        Cow::Owned(String::from_utf8(decoded).map_err(|e| {
            RequestError::bad_request(format!("body is not UTF-8 text: {}", e.utf8_error()))
        })?)
    } else {
        Cow::Borrowed(body)
    };
    if bytes.len() > limits.max_body_bytes {
        return Err(too_large(bytes.len()));
    }
    Ok(bytes)
}

/// Parses a decoded body and checks the request-level rules.
pub fn parse_request(
    text: &str,
    limits: RequestLimits,
) -> Result<ForwardRequest<'_>, RequestError> {
    let request: ForwardRequest = serde_json::from_str(text).map_err(|e| {
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
                    e.payload.get(),
                    e.schema_version,
                    e.meta.map(RawValue::get)
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
                    "unknown field `extra`, expected one of `id`, `ts`, `topic`, `payload`, `meta`, `schemaVersion`"
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
