//! The Glue (Hive) columns of a Parquet archive of one route (a bus or a stream), derived from
//! the registry: the envelope of that route's records (the forwarded detail on a bus, the ingest
//! envelope on the ingest stream), plus one `payload` struct whose fields are the union of the
//! payload properties of every topic reaching that route — as they leave the session: `drop`ped
//! fields are absent (`hash`ed fields are strings either way: the registry rules allow hashing only
//! unconstrained string fields).
//!
//! JSON Schema → Hive: string/enum → `string`, integer → `bigint`, number → `double`, boolean →
//! `boolean`, array → `array<item>`, object with properties → `struct<…>`; anything else (or two
//! topics disagreeing on a field's type) → `string`, so a row never fails conversion for a type
//! the table cannot hold. Struct field names are lowercase (Hive's), which the JSON SerDe matches
//! case-insensitively.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::{Bus, ForwardingPolicy, Registry, Route, Stream, TopicSpec};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GlueColumn {
    /// The column name (snake_case).
    pub name: String,
    /// The detail's JSON key this column reads.
    pub json_key: String,
    #[serde(rename = "type")]
    pub hive_type: String,
    pub comment: String,
}

/// The envelope columns (`ForwardedDetail`), in order. `meta` is left out: it is free-form per
/// topic, and a column of no fixed type would fail conversion.
const ENVELOPE: [(&str, &str, &str); 8] = [
    ("id", "id", "event id (unique per session)"),
    ("topic", "topic", "canonical registry topic"),
    (
        "schema_version",
        "schemaVersion",
        "payload schema version sent by the client",
    ),
    (
        "tenant_id",
        "tenantId",
        "tenant of the payload, when it has one",
    ),
    ("session_id", "sessionId", "browser session"),
    ("tab_id", "tabId", "browser tab"),
    ("app_version", "appVersion", "client application version"),
    ("client_ts", "clientTs", "client timestamp, RFC 3339 UTC"),
];

/// The ingest envelope (`eventfabric_core::ingest::IngestRecord`, as written to the stream), in
/// order. `timestamp` is read into `event_time`: a column named after a Hive keyword would need
/// quoting in every query.
const INGEST_ENVELOPE: [(&str, &str, &str); 6] = [
    ("event_type", "event_type", "registry topic of the event"),
    (
        "event_time",
        "timestamp",
        "when the event happened, RFC 3339 UTC (sender's clock)",
    ),
    ("entity_id", "entity_id", "the entity the event is about"),
    ("entity_type", "entity_type", "kind of entity, e.g. volume"),
    (
        "ingest_time",
        "ingest_time",
        "when the ingest API accepted it, RFC 3339 UTC",
    ),
    (
        "request_id",
        "request_id",
        "the ingest API request that carried it",
    ),
];

/// The archive columns of `bus`, or none when no topic is forwarded there.
pub fn archive_columns(registry: &Registry, bus: Bus) -> Vec<GlueColumn> {
    route_archive_columns(registry, Route::Bus(bus))
}

/// The archive columns of a route, or none when no topic reaches it.
pub fn route_archive_columns(registry: &Registry, route: Route) -> Vec<GlueColumn> {
    let (envelope, payload_comment): (&[(&str, &str, &str)], &str) = match route {
        Route::Bus(_) => (&ENVELOPE, "redacted as forwarded"),
        Route::Stream(Stream::Ingest) => (&INGEST_ENVELOPE, "as ingested"),
    };
    let topics: Vec<&TopicSpec> = registry
        .topics()
        .iter()
        .filter(|t| {
            t.route() == Some(route)
                && (matches!(route, Route::Stream(_))
                    || t.forwarding_policy != ForwardingPolicy::Deny)
        })
        .collect();
    if topics.is_empty() {
        return Vec::new();
    }
    let mut payload: BTreeMap<String, String> = BTreeMap::new();
    for topic in &topics {
        for (name, hive_type) in payload_fields(topic) {
            payload
                .entry(name)
                .and_modify(|existing| {
                    if *existing != hive_type {
                        *existing = "string".to_owned();
                    }
                })
                .or_insert(hive_type);
        }
    }
    let mut columns: Vec<GlueColumn> = envelope
        .iter()
        .map(|(name, key, comment)| GlueColumn {
            name: (*name).to_owned(),
            json_key: (*key).to_owned(),
            hive_type: "string".to_owned(),
            comment: (*comment).to_owned(),
        })
        .collect();
    if !payload.is_empty() {
        columns.push(GlueColumn {
            name: "payload".to_owned(),
            json_key: "payload".to_owned(),
            hive_type: format!("struct<{}>", struct_fields(&payload)),
            comment: format!(
                "payload of {} ({payload_comment})",
                topics
                    .iter()
                    .map(|t| t.topic.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    columns
}

fn struct_fields(fields: &BTreeMap<String, String>) -> String {
    fields
        .iter()
        .map(|(name, ty)| format!("{name}:{ty}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Top-level payload properties as forwarded: dropped ones removed.
fn payload_fields(topic: &TopicSpec) -> Vec<(String, String)> {
    let hint = topic.redaction_hint.as_ref();
    let dropped =
        |name: &str| hint.is_some_and(|h| h.drop.iter().any(|p| p == &format!("/{name}")));
    topic
        .payload_schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|properties| {
            properties
                .iter()
                .filter(|(name, _)| !dropped(name))
                .map(|(name, schema)| (name.to_lowercase(), hive_type(schema)))
                .collect()
        })
        .unwrap_or_default()
}

/// The Hive type of a JSON Schema.
pub fn hive_type(schema: &Value) -> String {
    if schema.get("enum").is_some() {
        return "string".into();
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("string") => "string".into(),
        Some("integer") => "bigint".into(),
        Some("number") => "double".into(),
        Some("boolean") => "boolean".into(),
        Some("array") => match schema.get("items") {
            Some(items) => format!("array<{}>", hive_type(items)),
            None => "array<string>".into(),
        },
        Some("object") => match schema.get("properties").and_then(Value::as_object) {
            Some(properties) if !properties.is_empty() => {
                let fields: BTreeMap<String, String> = properties
                    .iter()
                    .map(|(name, s)| (name.to_lowercase(), hive_type(s)))
                    .collect();
                format!("struct<{}>", struct_fields(&fields))
            }
            _ => "string".into(),
        },
        _ => "string".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_schema_types_map_to_hive() {
        assert_eq!(hive_type(&json!({"type": "integer"})), "bigint");
        assert_eq!(hive_type(&json!({"type": "number"})), "double");
        assert_eq!(hive_type(&json!({"enum": ["a", "b"]})), "string");
        assert_eq!(
            hive_type(&json!({"type": "array", "items": {"type": "boolean"}})),
            "array<boolean>"
        );
        assert_eq!(
            hive_type(
                &json!({"type": "object", "properties": {"zIp": {"type": "string"}, "n": {"type": "integer"}}})
            ),
            "struct<n:bigint,zip:string>"
        );
        assert_eq!(hive_type(&json!({"type": ["string", "null"]})), "string");
        assert_eq!(hive_type(&json!({})), "string");
    }

    #[test]
    fn the_ingest_archive_reads_the_ingest_envelope_and_its_topics_payloads() {
        let stream_topic = |name: &str, properties: Value| {
            let spec = json!({
                "topic": name, "version": "1.0.0", "description": "d", "deliveryPolicy": "at-least-once",
                "bufferPolicy": "none", "piiLevel": "none", "forwardingPolicy": "deny",
                "payloadSchema": {"type": "object", "properties": properties},
                "stream": "ingest"
            });
            (format!("{name}.json"), spec.to_string())
        };
        let registry = Registry::from_sources(vec![
            stream_topic(
                "m.iops.sampled",
                json!({"metrics": {"type": "object", "properties": {"iops": {"type": "number"}}}}),
            ),
            stream_topic("m.state.changed", json!({"state": {"type": "string"}})),
            topic(
                "a.b.c",
                "analytics",
                json!({"x": {"type": "string"}}),
                json!({}),
            ),
        ])
        .unwrap();
        let columns = route_archive_columns(&registry, Route::Stream(Stream::Ingest));
        let names: Vec<(&str, &str)> = columns
            .iter()
            .map(|c| (c.name.as_str(), c.json_key.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("event_type", "event_type"),
                ("event_time", "timestamp"),
                ("entity_id", "entity_id"),
                ("entity_type", "entity_type"),
                ("ingest_time", "ingest_time"),
                ("request_id", "request_id"),
                ("payload", "payload")
            ]
        );
        assert_eq!(
            columns[6].hive_type,
            "struct<metrics:struct<iops:double>,state:string>"
        );
        assert!(
            columns[6]
                .comment
                .contains("m.iops.sampled, m.state.changed")
        );
    }

    fn topic(name: &str, bus: &str, properties: Value, hint: Value) -> (String, String) {
        let spec = json!({
            "topic": name, "version": "1.0.0", "description": "d", "deliveryPolicy": "best-effort",
            "bufferPolicy": "none", "piiLevel": "low", "forwardingPolicy": "default",
            "payloadSchema": {"type": "object", "properties": properties},
            "bus": bus, "redactionHint": hint
        });
        (format!("{name}.json"), spec.to_string())
    }

    #[test]
    fn the_payload_struct_is_the_union_of_the_bus_topics_as_forwarded() {
        let registry = Registry::from_sources(vec![
            topic(
                "a.b.c",
                "analytics",
                json!({"tenantId": {"type": "string"}, "count": {"type": "integer"}, "email": {"type": "string"}, "userId": {"type": "string"}}),
                json!({"drop": ["/email"], "hash": ["/userId"]}),
            ),
            topic(
                "a.b.d",
                "analytics",
                json!({"count": {"type": "number"}, "flag": {"type": "boolean"}}),
                json!({"drop": []}),
            ),
            topic(
                "s.b.c",
                "session",
                json!({"secret": {"type": "string"}}),
                json!({"drop": []}),
            ),
        ])
        .unwrap();
        let columns = archive_columns(&registry, Bus::Analytics);
        let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "id",
                "topic",
                "schema_version",
                "tenant_id",
                "session_id",
                "tab_id",
                "app_version",
                "client_ts",
                "payload"
            ]
        );
        assert_eq!(columns[4].json_key, "sessionId");
        // email dropped; count integer vs number → string; the session topic's field absent.
        assert_eq!(
            columns[8].hive_type,
            "struct<count:string,flag:boolean,tenantid:string,userid:string>"
        );
        assert!(
            archive_columns(&Registry::from_sources(vec![]).unwrap(), Bus::Analytics).is_empty()
        );
    }
}
