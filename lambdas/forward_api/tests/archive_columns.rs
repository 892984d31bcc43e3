//! The analytics archive reads what the function writes: every detail forwarded to the
//! analytics bus, for every topic routed there, fits the Glue columns the registry generates
//! (`cdk/generated/registry.json`, `analyticsArchiveColumns`), which Firehose converts to
//! Parquet with. Firehose itself cannot run here (no emulator does the conversion), so this is
//! the check that a field the function emits has a column of a type that can hold it, and that
//! no column reads a key the function never writes.

mod common;

use std::collections::BTreeMap;

use common::{NOW, fixture, forwarder, verifier};
use eventfabric_core::{Deadline, MemorySink};
use eventfabric_registry::glue::{GlueColumn, archive_columns};
use eventfabric_registry::{Bus, ForwardingPolicy, Registry};
use forward_api::{ForwardConfig, MemoryState, handle};
use serde_json::{Value, json};

/// A payload with every property set, per topic forwarded to the analytics bus. A topic routed
/// there without one here fails the test: add its sample.
fn samples() -> BTreeMap<&'static str, Value> {
    BTreeMap::from([(
        "ui.interaction.sampled",
        json!({"tenantId": "acme", "element": "buy-button", "action": "click", "value": 0.75}),
    )])
}

/// A Hive type, as the Glue table declares it.
#[derive(Debug, PartialEq)]
enum Hive {
    String,
    Bigint,
    Double,
    Boolean,
    Array(Box<Hive>),
    Struct(BTreeMap<String, Hive>),
}

/// Parses `struct<a:string,b:array<bigint>>` and the like; panics on anything else, which a
/// test should.
fn parse_hive(text: &str) -> Hive {
    let (hive, rest) = parse_at(text);
    assert!(
        rest.is_empty(),
        "trailing '{rest}' after a Hive type in '{text}'"
    );
    hive
}

fn parse_at(text: &str) -> (Hive, &str) {
    for (name, hive) in [
        ("string", Hive::String),
        ("bigint", Hive::Bigint),
        ("double", Hive::Double),
        ("boolean", Hive::Boolean),
    ] {
        if let Some(rest) = text.strip_prefix(name) {
            return (hive, rest);
        }
    }
    if let Some(rest) = text.strip_prefix("array<") {
        let (item, rest) = parse_at(rest);
        let rest = rest.strip_prefix('>').expect("array<…> closes with '>'");
        return (Hive::Array(Box::new(item)), rest);
    }
    let mut rest = text
        .strip_prefix("struct<")
        .unwrap_or_else(|| panic!("not a Hive type: '{text}'"));
    let mut fields = BTreeMap::new();
    loop {
        let colon = rest.find(':').expect("a struct field is name:type");
        let name = &rest[..colon];
        let (hive, after) = parse_at(&rest[colon + 1..]);
        fields.insert(name.to_owned(), hive);
        match after.as_bytes().first() {
            Some(b',') => rest = &after[1..],
            Some(b'>') => return (Hive::Struct(fields), &after[1..]),
            _ => panic!("unterminated struct in '{text}'"),
        }
    }
}

/// Why `value` would not convert into a column of type `hive`, if it would not. Null converts
/// into any column. Struct fields match names case-insensitively, as the JSON SerDe does.
fn misfit(value: &Value, hive: &Hive, at: &str) -> Option<String> {
    let fits = match (hive, value) {
        (_, Value::Null) => true,
        (Hive::String, Value::String(_)) => true,
        (Hive::Bigint, Value::Number(n)) => n.is_i64() || n.is_u64(),
        (Hive::Double, Value::Number(_)) => true,
        (Hive::Boolean, Value::Bool(_)) => true,
        (Hive::Array(item), Value::Array(values)) => {
            return values
                .iter()
                .enumerate()
                .find_map(|(i, v)| misfit(v, item, &format!("{at}[{i}]")));
        }
        (Hive::Struct(fields), Value::Object(members)) => {
            return members
                .iter()
                .find_map(|(name, v)| match fields.get(&name.to_lowercase()) {
                    Some(field) => misfit(v, field, &format!("{at}.{name}")),
                    None => Some(format!("{at}.{name}: no such struct field")),
                });
        }
        _ => false,
    };
    (!fits).then(|| format!("{at}: {value} does not convert to {hive:?}"))
}

/// The details the function puts on the analytics bus for `topic` with `payload`: events with
/// several ids, so a `sampled` topic keeps some.
async fn analytics_details(topic: &str, payload: &Value) -> Vec<Value> {
    let events: Vec<Value> = (0..50)
        .map(|i| json!({"id": format!("{topic}-{i}"), "ts": NOW, "topic": topic, "payload": payload, "schemaVersion": "1.0.0"}))
        .collect();
    let mut request = fixture();
    request.body = Some(
        json!({"events": events, "client": {"appVersion": "4.2.0", "sessionId": "sess-123", "tabId": "tab-1", "nonce": "n"}})
            .to_string(),
    );
    let forwarder = forwarder(
        MemorySink::new(),
        MemoryState::new(),
        ForwardConfig::with_buses("session-bus", Some("analytics-bus".into())),
    );
    let response = handle(&forwarder, &verifier(), &request, NOW, Deadline::NONE).await;
    assert_eq!(response.status_code, 202, "{:?}", response.body);
    forwarder
        .sink()
        .published()
        .into_iter()
        .map(|entry| {
            assert_eq!(entry.event_bus_name, "analytics-bus", "{topic}");
            serde_json::from_str(&entry.detail).unwrap()
        })
        .collect()
}

#[tokio::test]
async fn every_analytics_detail_fits_the_archive_columns() {
    let registry = Registry::embedded().unwrap();
    let columns: Vec<GlueColumn> = archive_columns(&registry, Bus::Analytics);
    let by_key: BTreeMap<&str, Hive> = columns
        .iter()
        .map(|c| (c.json_key.as_str(), parse_hive(&c.hive_type)))
        .collect();

    let routed: Vec<&str> = registry
        .topics()
        .iter()
        .filter(|t| t.bus == Some(Bus::Analytics) && t.forwarding_policy != ForwardingPolicy::Deny)
        .map(|t| t.topic.as_str())
        .collect();
    let samples = samples();
    assert_eq!(
        routed,
        samples.keys().copied().collect::<Vec<_>>(),
        "every topic of the analytics bus needs a sample payload here"
    );

    let mut read = BTreeMap::<&str, usize>::new();
    for (topic, payload) in &samples {
        let details = analytics_details(topic, payload).await;
        assert!(
            !details.is_empty(),
            "no {topic} event reached the analytics bus"
        );
        for detail in details {
            for (key, value) in detail.as_object().unwrap() {
                if key == "meta" {
                    continue; // free-form per topic; no column by design (glue.rs)
                }
                let hive = by_key.get(key.as_str()).unwrap_or_else(|| {
                    panic!("{topic}: the detail's '{key}' has no archive column")
                });
                if let Some(why) = misfit(value, hive, key) {
                    panic!("{topic}: {why}");
                }
                let (column_key, _) = by_key.get_key_value(key.as_str()).unwrap();
                *read.entry(column_key).or_default() += 1;
            }
        }
    }
    // Every column reads something the function writes (tenantId only when the payload has one;
    // every sample here does).
    let unread: Vec<&str> = columns
        .iter()
        .map(|c| c.json_key.as_str())
        .filter(|k| !read.contains_key(k))
        .collect();
    assert!(unread.is_empty(), "columns no detail fills: {unread:?}");
}

#[test]
fn the_type_check_refuses_what_a_column_cannot_hold() {
    let hive = parse_hive("struct<action:string,n:bigint,tags:array<string>,value:double>");
    assert_eq!(
        misfit(
            &json!({"action": "click", "N": 3, "value": 1}),
            &hive,
            "payload"
        ),
        None
    );
    assert_eq!(
        misfit(&json!({"n": 1.5}), &hive, "payload"),
        Some("payload.n: 1.5 does not convert to Bigint".into())
    );
    assert_eq!(
        misfit(&json!({"tags": ["a", 1]}), &hive, "payload"),
        Some("payload.tags[1]: 1 does not convert to String".into())
    );
    assert_eq!(
        misfit(&json!({"extra": true}), &hive, "payload"),
        Some("payload.extra: no such struct field".into())
    );
    assert_eq!(misfit(&json!("x"), &hive, "payload"), Some("payload: \"x\" does not convert to Struct({\"action\": String, \"n\": Bigint, \"tags\": Array(String), \"value\": Double})".into()));
}
