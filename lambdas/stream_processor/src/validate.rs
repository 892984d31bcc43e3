//! From stream record to event: decoded as the ingest envelope, the payload checked against its
//! registry topic's JSON Schema (every violation, with its path), then the business rules.
//! Everything wrong with a record is reported, so the malformed report is complete.

use std::collections::HashMap;
use std::sync::Arc;

use eventfabric_core::Timestamp;
use eventfabric_core::ingest::IngestRecord;
use eventfabric_registry::{Registry, Route, Stream};
use jsonschema::Validator;
use serde_json::Value;

/// How far in the future (of its ingest time) an event's timestamp may be: agents' clocks
/// drift, but not by more.
pub const MAX_CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;
/// The earliest timestamp taken as real (2000-01-01): anything before is a zeroed clock.
pub const EARLIEST_MS: i64 = 946_684_800_000;
/// Most errors reported per record (the rest are counted).
pub const MAX_ERRORS: usize = 20;

/// A decoded, valid event (its payload read as a value in the same pass as the envelope).
pub type Event = IngestRecord<Value>;

/// The ingest stream's topics, compiled.
pub struct Topics {
    validators: HashMap<String, Arc<Validator>>,
}

impl Topics {
    pub fn compile(registry: &Registry) -> Result<Self, String> {
        let mut validators = HashMap::new();
        for t in registry
            .topics()
            .iter()
            .filter(|t| t.route() == Some(Route::Stream(Stream::Ingest)))
        {
            let validator =
                Arc::new(jsonschema::validator_for(&t.payload_schema).map_err(|e| {
                    format!("topic {}: cannot compile its payload schema: {e}", t.topic)
                })?);
            for name in std::iter::once(&t.topic).chain(&t.aliases) {
                validators.insert(name.clone(), validator.clone());
            }
        }
        if validators.is_empty() {
            return Err("the registry has no topic on the ingest stream".into());
        }
        Ok(Self { validators })
    }

    /// The record's event, or every reason it is malformed (at most [`MAX_ERRORS`], then a
    /// count of the rest).
    pub fn check(&self, data: &[u8]) -> Result<Event, Vec<String>> {
        let record: Event = serde_json::from_slice(data)
            .map_err(|e| vec![format!("record: not an ingest record: {e}")])?;
        let payload = &record.payload;
        let Some(validator) = self.validators.get(&record.event_type) else {
            return Err(vec![format!(
                "event_type: '{}' is not a topic of the ingest stream",
                record.event_type
            )]);
        };
        // `is_valid` builds no error context; only an invalid payload is walked for its errors.
        let mut errors: Vec<String> = if validator.is_valid(payload) {
            Vec::new()
        } else {
            validator
                .iter_errors(payload)
                .map(|e| format!("payload{}: {e}", e.instance_path()))
                .collect()
        };
        business_rules(&record, &mut errors);
        if errors.is_empty() {
            return Ok(record);
        }
        if errors.len() > MAX_ERRORS {
            let more = errors.len() - MAX_ERRORS;
            errors.truncate(MAX_ERRORS);
            errors.push(format!("… and {more} more"));
        }
        Err(errors
            .into_iter()
            .map(eventfabric_core::text::bounded)
            .collect())
    }
}

/// Rules a schema cannot say: metrics are physical quantities (never negative, finite), the
/// read and write IOPS do not exceed the total, and the event's time is plausible.
pub fn business_rules(record: &Event, errors: &mut Vec<String>) {
    let payload = &record.payload;
    let Timestamp(ts) = record.timestamp;
    if ts < EARLIEST_MS {
        errors.push(format!(
            "timestamp: {} is before 2000-01-01: the agent's clock is not set",
            record.timestamp
        ));
    }
    if ts
        > record
            .ingest_time
            .millis()
            .saturating_add(MAX_CLOCK_SKEW_MS)
    {
        errors.push(format!(
            "timestamp: {} is more than 5 minutes after it was ingested ({})",
            record.timestamp, record.ingest_time
        ));
    }
    if record.event_type == "storage.metrics.sampled" {
        if let Some(metrics) = payload.get("metrics").and_then(Value::as_object) {
            for (name, value) in metrics {
                if let Some(n) = value.as_f64() {
                    if n < 0.0 || !n.is_finite() {
                        errors.push(format!(
                            "payload/metrics/{name}: {n} is negative; a metric is at least 0"
                        ));
                    }
                }
            }
            let get = |k: &str| metrics.get(k).and_then(Value::as_f64);
            if let (Some(total), Some(read), Some(write)) =
                (get("iops"), get("read_iops"), get("write_iops"))
            {
                // Agents round each figure: allow 1 % (and 1 op/s) of slack.
                if read + write > total * 1.01 + 1.0 {
                    errors.push(format!(
                        "payload/metrics: read_iops + write_iops ({}) exceeds iops ({total})",
                        read + write
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn topics() -> Topics {
        Topics::compile(&Registry::embedded().unwrap()).unwrap()
    }

    fn record(event_type: &str, payload: Value) -> Vec<u8> {
        json!({
            "event_type": event_type, "timestamp": "2026-11-28T12:00:00Z", "entity_id": "vol-1",
            "entity_type": "volume", "payload": payload, "ingest_time": "2026-11-28T12:00:01Z",
            "request_id": "r"
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_valid_sample_passes() {
        let event = topics()
            .check(&record(
                "storage.metrics.sampled",
                json!({"metrics": {"iops": 10, "read_iops": 6, "write_iops": 4}}),
            ))
            .unwrap();
        assert_eq!(event.entity_id, "vol-1");
    }

    #[test]
    fn schema_violations_and_rules_are_all_reported() {
        let errors = topics()
            .check(&record(
                "storage.metrics.sampled",
                json!({"metrics": {"iops": -1, "read_iops": 50, "write_iops": 60, "latency_ms": "slow"}, "extra": 1}),
            ))
            .unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("payload/metrics/latency_ms:")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("payload:") && e.contains("extra")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e == "payload/metrics/iops: -1 is negative; a metric is at least 0"),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.contains("exceeds iops")),
            "{errors:?}"
        );
        assert!(errors.len() > 3);
    }

    #[test]
    fn records_that_are_not_ingest_records_or_topics_are_named() {
        let t = topics();
        assert_eq!(t.check(b"garbage").unwrap_err().len(), 1);
        assert!(t.check(b"garbage").unwrap_err()[0].starts_with("record: not an ingest record"));
        let errors = t
            .check(&record("chat.message.sent", json!({})))
            .unwrap_err();
        assert_eq!(
            errors,
            ["event_type: 'chat.message.sent' is not a topic of the ingest stream"]
        );
    }

    #[test]
    fn implausible_times_are_malformed() {
        let mut r: Value = serde_json::from_slice(&record(
            "storage.health.changed",
            json!({"status": "failed"}),
        ))
        .unwrap();
        r["timestamp"] = json!("2026-11-28T12:10:00Z");
        let errors = topics().check(r.to_string().as_bytes()).unwrap_err();
        assert!(
            errors[0].contains("more than 5 minutes after"),
            "{errors:?}"
        );
        r["timestamp"] = json!(0);
        let errors = topics().check(r.to_string().as_bytes()).unwrap_err();
        assert!(errors[0].contains("before 2000-01-01"), "{errors:?}");
    }
}
