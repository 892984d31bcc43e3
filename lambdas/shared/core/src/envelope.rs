//! The envelope browser sessions send and the detail that lands on the bus.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Who sent a request: the browser session and tab.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientInfo {
    pub app_version: String,
    pub session_id: String,
    pub tab_id: String,
    pub nonce: String,
}

/// One event as a session emits it, borrowed from the request body: strings are only copied
/// when they contain escapes, and `payload`/`meta` stay raw JSON until a check needs them.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientEvent<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    pub ts: Timestamp,
    #[serde(borrow)]
    pub topic: Cow<'a, str>,
    #[serde(borrow)]
    pub payload: &'a RawValue,
    #[serde(default, borrow)]
    pub meta: Option<&'a RawValue>,
    #[serde(borrow)]
    pub schema_version: Cow<'a, str>,
}

/// A client timestamp in epoch milliseconds. Accepted as a number of milliseconds
/// (`Date.now()`) or an RFC 3339 string; always written as RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn to_rfc3339(self) -> String {
        self.to_string()
    }

    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
            .ok()
            .map(Self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("epoch milliseconds or an RFC 3339 timestamp")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Ok(Timestamp(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Timestamp, E> {
                i64::try_from(v)
                    .map(Timestamp)
                    .map_err(|_| E::custom(format!("{v} is out of range for a timestamp")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse_rfc3339(v).ok_or_else(|| {
                    E::custom(format!(
                        "'{v}' is not an RFC 3339 timestamp or epoch milliseconds"
                    ))
                })
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buffer = [0u8; RFC3339_MAX];
        s.serialize_str(
            self.write_rfc3339(&mut buffer)
                .map_err(serde::ser::Error::custom)?,
        )
    }
}

/// Room for `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub const RFC3339_MAX: usize = 24;

impl Timestamp {
    /// RFC 3339 in UTC: `2023-11-14T22:13:20Z`, with `.mmm` when the milliseconds are not
    /// zero, written into `buffer`. The calendar arithmetic is `time`'s; only the fixed layout
    /// is written here: `time`'s generic RFC 3339 formatter (and `core::fmt` padding) cost
    /// ~8–10 % of the forward hot path's instructions (callgrind).
    pub fn write_rfc3339(self, buffer: &mut [u8; RFC3339_MAX]) -> Result<&str, &'static str> {
        let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .map_err(|_| "timestamp out of range")?;
        let (date, time) = (t.date(), t.time());
        let year = u32::try_from(date.year())
            .ok()
            .filter(|y| *y <= 9999)
            .ok_or("year outside 0000-9999")?;
        let digits = |out: &mut [u8], mut value: u32| {
            for slot in out.iter_mut().rev() {
                *slot = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        digits(&mut buffer[0..4], year);
        buffer[4] = b'-';
        digits(&mut buffer[5..7], u32::from(u8::from(date.month())));
        buffer[7] = b'-';
        digits(&mut buffer[8..10], u32::from(date.day()));
        buffer[10] = b'T';
        digits(&mut buffer[11..13], u32::from(time.hour()));
        buffer[13] = b':';
        digits(&mut buffer[14..16], u32::from(time.minute()));
        buffer[16] = b':';
        digits(&mut buffer[17..19], u32::from(time.second()));
        let len = match time.millisecond() {
            0 => 19,
            ms => {
                buffer[19] = b'.';
                digits(&mut buffer[20..23], u32::from(ms));
                23
            }
        };
        buffer[len] = b'Z';
        std::str::from_utf8(&buffer[..=len]).map_err(|_| "not UTF-8")
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut buffer = [0u8; RFC3339_MAX];
        f.write_str(
            self.write_rfc3339(&mut buffer)
                .map_err(|_| std::fmt::Error)?,
        )
    }
}

/// The `detail` of a forwarded event on the bus. Consumers rely on this shape: change it only
/// with a new version of the consumer contract.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ForwardedDetail<'a> {
    pub id: &'a str,
    pub topic: &'a str,
    pub schema_version: &'a str,
    /// Copied from `payload.tenantId` so rules can filter on `detail.tenantId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<&'a str>,
    pub session_id: &'a str,
    pub tab_id: &'a str,
    pub app_version: &'a str,
    pub client_ts: Timestamp,
    /// The payload as it leaves the session: the client's JSON text when redaction changed
    /// nothing, else the redacted payload re-encoded.
    pub payload: &'a RawValue,
    /// The client's meta object as sent (`{}` when absent).
    pub meta: &'a RawValue,
}

/// The per-event fields of a [`ForwardedDetail`] (the session's fields are the request's).
#[derive(Debug, Clone, Copy)]
pub struct DetailHead<'a> {
    pub id: &'a str,
    pub topic: &'a str,
    pub schema_version: &'a str,
    pub tenant_id: Option<&'a str>,
    pub client_ts: Timestamp,
}

/// Writes the details of one request's events: exactly the bytes serde_json writes for a
/// [`ForwardedDetail`] (a test holds them equal), without serde's per-field machinery, and
/// with the session's fields encoded once per request instead of once per event.
#[derive(Debug, Clone)]
pub struct DetailWriter {
    /// `,"sessionId":…,"tabId":…,"appVersion":…,"clientTs":`
    session: Vec<u8>,
}

impl DetailWriter {
    pub fn new(session_id: &str, tab_id: &str, app_version: &str) -> Self {
        let mut session = Vec::with_capacity(64 + session_id.len() + tab_id.len());
        session.extend_from_slice(b",\"sessionId\":");
        write_json_str(&mut session, session_id);
        session.extend_from_slice(b",\"tabId\":");
        write_json_str(&mut session, tab_id);
        session.extend_from_slice(b",\"appVersion\":");
        write_json_str(&mut session, app_version);
        session.extend_from_slice(b",\"clientTs\":");
        Self { session }
    }

    /// Appends one detail to `out`; `payload` appends the payload's JSON text.
    pub fn write<E>(
        &self,
        out: &mut Vec<u8>,
        head: DetailHead<'_>,
        payload: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
        meta: Option<&RawValue>,
    ) -> Result<(), E>
    where
        E: From<&'static str>,
    {
        out.extend_from_slice(b"{\"id\":");
        write_json_str(out, head.id);
        out.extend_from_slice(b",\"topic\":");
        write_json_str(out, head.topic);
        out.extend_from_slice(b",\"schemaVersion\":");
        write_json_str(out, head.schema_version);
        if let Some(tenant_id) = head.tenant_id {
            out.extend_from_slice(b",\"tenantId\":");
            write_json_str(out, tenant_id);
        }
        out.extend_from_slice(&self.session);
        let mut buffer = [0u8; RFC3339_MAX];
        out.push(b'"');
        out.extend_from_slice(head.client_ts.write_rfc3339(&mut buffer)?.as_bytes());
        out.extend_from_slice(b"\",\"payload\":");
        payload(out)?;
        out.extend_from_slice(b",\"meta\":");
        out.extend_from_slice(meta.map_or("{}", RawValue::get).as_bytes());
        out.push(b'}');
        Ok(())
    }
}

/// A JSON string literal, escaped as serde_json escapes (control characters, `"` and `\\`);
/// most strings need none and are copied as they are.
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(out, s).expect("writing to a Vec cannot fail");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_accept_millis_and_rfc3339() {
        let a: Timestamp = serde_json::from_value(json!(1_700_000_000_123_i64)).unwrap();
        let b: Timestamp = serde_json::from_value(json!("2023-11-14T22:13:20.123Z")).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_rfc3339(), "2023-11-14T22:13:20.123Z");
        assert_eq!(
            Timestamp(1_700_000_000_000).to_rfc3339(),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            Timestamp(1_700_000_000_100).to_rfc3339(),
            "2023-11-14T22:13:20.100Z"
        );
        assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(
            Timestamp::parse_rfc3339(&Timestamp(1_767_225_599_007).to_rfc3339()),
            Some(Timestamp(1_767_225_599_007))
        );
        let err = serde_json::from_value::<Timestamp>(json!("yesterday")).unwrap_err();
        assert!(
            err.to_string().contains("not an RFC 3339 timestamp"),
            "{err}"
        );
    }

    #[test]
    fn client_events_borrow_from_the_body() {
        let text = r#"{"id": "e\"1", "ts": "2023-11-14T22:13:20Z", "topic": "a.b", "payload": {"k": [1, 2]}, "schemaVersion": "1.0.0"}"#;
        let event: ClientEvent = serde_json::from_str(text).unwrap();
        assert_eq!(event.id, "e\"1");
        assert!(matches!(event.topic, Cow::Borrowed("a.b")));
        assert_eq!(event.payload.get(), r#"{"k": [1, 2]}"#);
        assert!(event.meta.is_none());
    }

    #[test]
    fn client_events_reject_unknown_fields() {
        let err = serde_json::from_str::<ClientEvent>(
            r#"{"id": "e1", "ts": 1, "topic": "a.b", "payload": {}, "schemaVersion": "1.0.0", "extra": 1}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("extra"), "{err}");
    }

    #[test]
    fn the_detail_writer_writes_what_serde_writes() {
        let writer = DetailWriter::new("sess-\"1\"", "tab\n1", "4.2.0");
        let meta = RawValue::from_string(r#"{"page": "/chat"}"#.to_owned()).unwrap();
        let payload =
            RawValue::from_string(r#"{"tenantId":"t\u00e9", "n": [1, 2]}"#.to_owned()).unwrap();
        let empty = RawValue::from_string("{}".to_owned()).unwrap();
        for (id, tenant_id, ts, meta) in [
            ("e1", Some("acme"), 1_767_225_600_123, Some(&*meta)),
            ("e\\2\u{1}", None, 1_767_225_600_000, None),
            ("é🦀", Some("t\"x"), 0, Some(&*meta)),
        ] {
            let detail = ForwardedDetail {
                id,
                topic: "session.lifecycle.started",
                schema_version: "1.0.0",
                tenant_id,
                session_id: "sess-\"1\"",
                tab_id: "tab\n1",
                app_version: "4.2.0",
                client_ts: Timestamp(ts),
                payload: &payload,
                meta: meta.unwrap_or(&empty),
            };
            let head = DetailHead {
                id,
                topic: detail.topic,
                schema_version: detail.schema_version,
                tenant_id,
                client_ts: detail.client_ts,
            };
            let mut out = Vec::new();
            writer
                .write(
                    &mut out,
                    head,
                    |out| {
                        out.extend_from_slice(payload.get().as_bytes());
                        Ok::<_, &str>(())
                    },
                    meta,
                )
                .unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&detail).unwrap()
            );
        }
        let mut out = Vec::new();
        let out_of_range = DetailHead {
            id: "e",
            topic: "t",
            schema_version: "1",
            tenant_id: None,
            client_ts: Timestamp(i64::MAX),
        };
        assert!(
            writer
                .write(&mut out, out_of_range, |_| Ok::<_, &str>(()), None)
                .is_err()
        );
    }
}
