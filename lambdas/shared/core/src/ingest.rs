//! The ingest envelope: what machine clients send to `POST /api/ingest`, and the record the
//! ingest API writes to the ingest stream (the same fields plus `ingest_time` and `request_id`).
//! The ingest API and the stream processor both read it through this module, so the two never
//! disagree on a field.
//!
//! ```json
//! {"event_type": "storage.metrics.sampled", "timestamp": "2026-11-28T12:00:00.250Z",
//!  "entity_id": "vol-0a1b", "entity_type": "volume", "payload": {"metrics": {"iops": 1200}}}
//! ```
//!
//! `event_type` is a registry topic routed to the ingest stream; `timestamp` is RFC 3339 or
//! epoch milliseconds; `payload` is checked against the topic's schema by the processor.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::envelope::Timestamp;

/// Longest `entity_id`, in bytes (a DynamoDB key attribute may take 2 KB; ids are names).
pub const MAX_ENTITY_ID_BYTES: usize = 256;
/// Longest `entity_type`, in bytes.
pub const MAX_ENTITY_TYPE_BYTES: usize = 64;
/// Longest `event_type`, in bytes.
pub const MAX_EVENT_TYPE_BYTES: usize = 128;
/// Largest event, in bytes of JSON as sent: well under a Kinesis record (1 MiB) and a DynamoDB
/// item (400 KB), so an accepted event always fits both.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;

/// One event as a client sends it. Every field is optional here so that a missing one is
/// reported by name ([`IngestEvent::check`]), not as a serde message.
#[derive(Debug, Deserialize)]
pub struct IngestEvent<'a> {
    #[serde(default, borrow)]
    pub event_type: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub timestamp: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub entity_id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub entity_type: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub payload: Option<&'a RawValue>,
}

/// A checked event: every field present and well formed.
#[derive(Debug, Clone)]
pub struct CheckedEvent<'a> {
    pub event_type: String,
    pub timestamp: Timestamp,
    pub entity_id: String,
    pub entity_type: String,
    pub payload: &'a RawValue,
}

/// The record written to the stream: the event, normalised (UTC RFC 3339 timestamp), with what
/// the ingest API adds. The payload is kept as text (`P = Box<RawValue>`, as the ingest API
/// writes it) or read as a value in the same pass (`IngestRecord<serde_json::Value>`, as the
/// processor validates it).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestRecord<P = Box<RawValue>> {
    pub event_type: String,
    pub timestamp: Timestamp,
    pub entity_id: String,
    pub entity_type: String,
    pub payload: P,
    /// When the ingest API accepted the event.
    pub ingest_time: Timestamp,
    /// The API Gateway request that carried it.
    pub request_id: String,
}

/// Why an event was refused: the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

fn string_field(
    field: &'static str,
    raw: Option<&RawValue>,
    max: usize,
    allowed: impl Fn(char) -> bool,
    what: &str,
) -> Result<String, FieldError> {
    let err = |message: String| FieldError { field, message };
    let raw = raw.ok_or_else(|| err("is required".into()))?;
    let text: String = serde_json::from_str(raw.get())
        .map_err(|_| err(format!("must be a string, not {}", json_kind(raw.get()))))?;
    if text.is_empty() {
        return Err(err("must not be empty".into()));
    }
    if text.len() > max {
        return Err(err(format!("is {} bytes, longer than {max}", text.len())));
    }
    if let Some(c) = text.chars().find(|c| !allowed(*c)) {
        return Err(err(format!(
            "may only hold {what}; found {}",
            crate::text::echo(&c.to_string())
        )));
    }
    Ok(text)
}

/// The JSON kind of a value's text, for messages.
pub fn json_kind(text: &str) -> &'static str {
    match text.trim_start().as_bytes().first() {
        Some(b'"') => "a string",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        Some(_) => "a number",
        None => "nothing",
    }
}

impl<'a> IngestEvent<'a> {
    /// Checks the envelope: every field present, of its type and within its limits. All
    /// problems are reported, in field order.
    pub fn check(&self) -> Result<CheckedEvent<'a>, Vec<FieldError>> {
        let mut errors = Vec::new();
        let event_type = string_field(
            "event_type",
            self.event_type,
            MAX_EVENT_TYPE_BYTES,
            |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_',
            "lowercase letters, digits, '.' and '_'",
        )
        .map_err(|e| errors.push(e))
        .ok();
        let timestamp = match self.timestamp {
            None => {
                errors.push(FieldError {
                    field: "timestamp",
                    message: "is required".into(),
                });
                None
            }
            Some(raw) => serde_json::from_str::<Timestamp>(raw.get())
                .map_err(|_| {
                    errors.push(FieldError {
                        field: "timestamp",
                        message: format!(
                            "must be an RFC 3339 timestamp or epoch milliseconds, not {}",
                            serde_json::from_str::<String>(raw.get()).map_or_else(
                                |_| crate::text::echo(raw.get()),
                                |s| crate::text::echo(&s)
                            )
                        ),
                    })
                })
                .ok(),
        };
        let entity_id = string_field(
            "entity_id",
            self.entity_id,
            MAX_ENTITY_ID_BYTES,
            |c| !c.is_control(),
            "printable characters",
        )
        .map_err(|e| errors.push(e))
        .ok();
        let entity_type = string_field(
            "entity_type",
            self.entity_type,
            MAX_ENTITY_TYPE_BYTES,
            |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-',
            "lowercase letters, digits, '_' and '-'",
        )
        .map_err(|e| errors.push(e))
        .ok();
        let payload = match self.payload {
            Some(raw) if raw.get().trim_start().starts_with('{') => Some(raw),
            Some(raw) => {
                errors.push(FieldError {
                    field: "payload",
                    message: format!("must be an object, not {}", json_kind(raw.get())),
                });
                None
            }
            None => {
                errors.push(FieldError {
                    field: "payload",
                    message: "is required".into(),
                });
                None
            }
        };
        match (event_type, timestamp, entity_id, entity_type, payload) {
            (
                Some(event_type),
                Some(timestamp),
                Some(entity_id),
                Some(entity_type),
                Some(payload),
            ) if errors.is_empty() => Ok(CheckedEvent {
                event_type,
                timestamp,
                entity_id,
                entity_type,
                payload,
            }),
            _ => Err(errors),
        }
    }
}

impl CheckedEvent<'_> {
    /// The stream record of this event.
    pub fn into_record(self, ingest_time: Timestamp, request_id: &str) -> IngestRecord {
        IngestRecord {
            payload: self.payload.to_owned(),
            event_type: self.event_type,
            timestamp: self.timestamp,
            entity_id: self.entity_id,
            entity_type: self.entity_type,
            ingest_time,
            request_id: request_id.to_owned(),
        }
    }
}

/// The stream's partition key of an event: hex SHA-256 of `entity_id`, a unit separator and
/// `event_type`, cut to 32 characters. One entity's events of one type stay on one shard, in
/// order; entities spread evenly over shards (the plan's key, `event_type` alone, put every
/// sample on one hot shard). Fixed length whatever the id's: partition keys may not exceed
/// 256 characters.
pub fn partition_key(entity_id: &str, event_type: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(entity_id.as_bytes());
    hash.update([0x1f]);
    hash.update(event_type.as_bytes());
    let digest = hash.finalize();
    let mut key = String::with_capacity(32);
    for byte in &digest[..16] {
        use std::fmt::Write;
        let _ = write!(key, "{byte:02x}");
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<CheckedEvent<'_>, Vec<FieldError>> {
        serde_json::from_str::<IngestEvent>(text).unwrap().check()
    }

    #[test]
    fn a_well_formed_event_is_checked_and_normalised() {
        let text = r#"{"event_type":"storage.metrics.sampled","timestamp":"2026-11-28T13:00:00.250+01:00","entity_id":"vol-1","entity_type":"volume","payload":{"metrics":{"iops":5}}}"#;
        let event = check(text).unwrap();
        assert_eq!(event.timestamp.to_rfc3339(), "2026-11-28T12:00:00.250Z");
        let record = event.into_record(Timestamp(1_796_040_000_000), "req-1");
        let json = serde_json::to_string(&record).unwrap();
        assert!(
            json.contains(r#""timestamp":"2026-11-28T12:00:00.250Z""#),
            "{json}"
        );
        assert!(
            json.contains(r#""payload":{"metrics":{"iops":5}}"#),
            "{json}"
        );
        let back: IngestRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
    }

    #[test]
    fn every_problem_is_named_by_field() {
        let errors = check(
            r#"{"event_type":"Bad Type","timestamp":"yesterday","entity_id":"","payload":[1]}"#,
        )
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "event_type",
                "timestamp",
                "entity_id",
                "entity_type",
                "payload"
            ]
        );
        assert!(errors[0].message.contains("lowercase"), "{}", errors[0]);
        assert_eq!(errors[3].message, "is required");
        assert_eq!(errors[4].message, "must be an object, not an array");
        let errors = check(
            r#"{"event_type":1,"timestamp":1,"entity_id":"a","entity_type":"v","payload":{}}"#,
        )
        .unwrap_err();
        assert_eq!(
            errors[0].to_string(),
            "event_type: must be a string, not a number"
        );
    }

    #[test]
    fn limits_hold() {
        let long_id = "x".repeat(MAX_ENTITY_ID_BYTES + 1);
        let text = format!(
            r#"{{"event_type":"a.b","timestamp":0,"entity_id":"{long_id}","entity_type":"v","payload":{{}}}}"#
        );
        let errors = check(&text).unwrap_err();
        assert_eq!(errors[0].field, "entity_id");
        assert!(errors[0].message.contains("longer than 256"));
        let errors = check(r#"{"event_type":"a.b","timestamp":0,"entity_id":"a\u0000b","entity_type":"v","payload":{}}"#).unwrap_err();
        assert!(errors[0].message.contains("printable"), "{}", errors[0]);
    }

    #[test]
    fn partition_keys_are_fixed_length_and_separate_id_from_type() {
        let a = partition_key("vol-1", "storage.metrics.sampled");
        assert_eq!(a.len(), 32);
        assert_eq!(a, partition_key("vol-1", "storage.metrics.sampled"));
        assert_ne!(a, partition_key("vol-1", "storage.health.changed"));
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(partition_key("ab", "c"), partition_key("a", "bc"));
        assert_eq!(partition_key(&"x".repeat(10_000), "t").len(), 32);
    }
}

/// An entity's latest state, as the stream processor writes it to the ingest state table (PK
/// `entity_id`, SK `entity_type`) and the realtime dashboards read it from the table's stream:
/// the newest event of it, by `timestamp`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateItem {
    pub entity_id: String,
    pub entity_type: String,
    pub event_type: String,
    /// The event's time in epoch milliseconds: the GSI's sort key and the ordering of states.
    pub timestamp: i64,
    /// The same time, RFC 3339, for people.
    pub event_time: String,
    pub payload: serde_json::Value,
    pub ingest_time: String,
    pub request_id: String,
    /// The stream record it came from.
    pub sequence_number: String,
}

/// `(entity_id, entity_type)`.
pub type ItemKey = (String, String);

impl StateItem {
    pub fn key(&self) -> ItemKey {
        (self.entity_id.clone(), self.entity_type.clone())
    }
}
