//! Schema evolution: what a registry change may do to consumers of the previous one.
//!
//! A change is *breaking* when a consumer that was valid against the old payload contract can
//! see something it was not promised: a topic disappears, a field disappears, a field becomes
//! required, or a field's accepted values narrow (fewer types, fewer enum values, closed
//! `additionalProperties`). A breaking change needs a major version bump, or the old entry must
//! already have been `deprecated` (the deprecation is the notice). A topic may only be removed
//! after a release in which it was deprecated.
//!
//! Beyond the payload, the same rule covers what routes and names a topic: moving it to another
//! bus (every rule on the old bus stops receiving it) or giving it another source (another
//! producer: rules match on source), removing an alias (clients still sending
//! it get `unknown_topic`) and narrowing its meta schema (clients' meta starts failing).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::check::Violation;
use crate::model::TopicSpec;

/// Compares `current` against `base` (both keyed by topic) and reports every change that is
/// not allowed. `file` names where the current entry lives, for the messages.
pub fn check_evolution(base: &[TopicSpec], current: &[TopicSpec]) -> Vec<Violation> {
    let current_by_name: BTreeMap<&str, &TopicSpec> =
        current.iter().map(|t| (t.topic.as_str(), t)).collect();
    let mut out = Vec::new();
    for old in base {
        let file = format!("topics/{}.json", old.topic);
        let Some(new) = current_by_name.get(old.topic.as_str()) else {
            if !old.deprecated {
                out.push(Violation {
                    file,
                    rule: "evolution",
                    message: format!(
                        "topic '{}' was removed without being deprecated first: set \"deprecated\": true in one release, remove it in a later one",
                        old.topic
                    ),
                });
            }
            continue;
        };
        let (Ok(old_v), Ok(new_v)) = (
            semver::Version::parse(&old.version),
            semver::Version::parse(&new.version),
        ) else {
            continue; // `registry check` reports unparsable versions
        };
        if new_v < old_v {
            out.push(Violation {
                file: file.clone(),
                rule: "evolution",
                message: format!("version went backwards: {} -> {}", old.version, new.version),
            });
        }
        let mut breaks = Vec::new();
        schema_breaks(&old.payload_schema, &new.payload_schema, "", &mut breaks);
        meta_breaks(
            old.meta_schema.as_ref(),
            new.meta_schema.as_ref(),
            &mut breaks,
        );
        if old.route() != new.route() {
            let place = |t: &TopicSpec| {
                t.route()
                    .map_or_else(|| "nowhere".to_owned(), |r| r.to_string())
            };
            breaks.push(format!(
                "moved from {} to {}: consumers of {} stop receiving it",
                place(old),
                place(new),
                place(old)
            ));
        }
        if old.source() != new.source() {
            breaks.push(format!(
                "its source changed from '{}' to '{}': rules matching the old source stop receiving it",
                old.source(),
                new.source()
            ));
        }
        if old.detail_type() != new.detail_type() {
            breaks.push(format!(
                "its detail type changed from '{}' to '{}': rules matching the old one stop receiving it",
                old.detail_type(),
                new.detail_type()
            ));
        }
        for alias in old.aliases.iter().filter(|a| !new.aliases.contains(a)) {
            breaks.push(format!(
                "alias '{alias}' was removed: clients still sending it get unknown_topic"
            ));
        }
        if breaks.is_empty() {
            let contract_changed =
                old.payload_schema != new.payload_schema || old.meta_schema != new.meta_schema;
            if contract_changed && new_v == old_v {
                out.push(Violation {
                    file,
                    rule: "evolution",
                    message: format!("payloadSchema or metaSchema changed but version {} did not: bump the minor or patch version", new.version),
                });
            }
            continue;
        }
        if new_v.major > old_v.major || old.deprecated {
            continue;
        }
        for b in breaks {
            out.push(Violation {
                file: file.clone(),
                rule: "evolution",
                message: format!(
                    "breaking change without a major version bump ({} -> {}): {b}",
                    old.version, new.version
                ),
            });
        }
    }
    out
}

/// The breaking differences between two meta schemas, each message prefixed `meta: `. No meta
/// schema accepts any meta, so adding one narrows it.
fn meta_breaks(old: Option<&Value>, new: Option<&Value>, out: &mut Vec<String>) {
    match (old, new) {
        (_, None) => {}
        (None, Some(_)) => {
            out.push("meta: a metaSchema now constrains meta, which was free".to_owned())
        }
        (Some(old), Some(new)) => {
            let mut breaks = Vec::new();
            schema_breaks_in(old, new, "", "the meta", &mut breaks);
            out.extend(breaks.into_iter().map(|b| format!("meta: {b}")));
        }
    }
}

/// Collects the breaking differences between two object schemas, recursing into properties.
fn schema_breaks(old: &Value, new: &Value, at: &str, out: &mut Vec<String>) {
    schema_breaks_in(old, new, at, "the payload", out)
}

fn schema_breaks_in(old: &Value, new: &Value, at: &str, root: &str, out: &mut Vec<String>) {
    let where_ = if at.is_empty() {
        root.to_owned()
    } else {
        format!("'{at}'")
    };

    let old_types = types(old);
    let new_types = types(new);
    if let (Some(o), Some(n)) = (&old_types, &new_types) {
        let lost: Vec<&String> = o
            .difference(n)
            .filter(|t| !(t.as_str() == "integer" && n.contains("number")))
            .collect();
        if !lost.is_empty() {
            out.push(format!("{where_} no longer accepts type {}", join(lost)));
        }
    } else if old_types.is_none() && new_types.is_some() {
        out.push(format!(
            "{where_} now restricts its type to {}",
            join(new_types.iter().flatten())
        ));
    }

    if let Some(new_enum) = new.get("enum").and_then(Value::as_array) {
        match old.get("enum").and_then(Value::as_array) {
            Some(old_enum) => {
                let removed: Vec<String> = old_enum
                    .iter()
                    .filter(|v| !new_enum.contains(v))
                    .map(Value::to_string)
                    .collect();
                if !removed.is_empty() {
                    out.push(format!("{where_} no longer accepts {}", removed.join(", ")));
                }
            }
            None => out.push(format!("{where_} is now restricted to an enum")),
        }
    }

    let old_required = string_set(old.get("required"));
    for field in string_set(new.get("required")).difference(&old_required) {
        out.push(format!("field '{}' is newly required", child(at, field)));
    }

    let empty = serde_json::Map::new();
    let old_props = old
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let new_props = new
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (name, old_prop) in old_props {
        match new_props.get(name) {
            Some(new_prop) => schema_breaks_in(old_prop, new_prop, &child(at, name), root, out),
            None => out.push(format!("field '{}' was removed", child(at, name))),
        }
    }
    let was_open = old.get("additionalProperties") != Some(&Value::Bool(false));
    let is_closed = new.get("additionalProperties") == Some(&Value::Bool(false));
    if was_open && is_closed {
        out.push(format!("{where_} no longer accepts additional properties"));
    }
}

fn types(schema: &Value) -> Option<BTreeSet<String>> {
    match schema.get("type")? {
        Value::String(t) => Some(BTreeSet::from([t.clone()])),
        Value::Array(ts) => Some(
            ts.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        ),
        _ => None,
    }
}

fn string_set(v: Option<&Value>) -> BTreeSet<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn child(at: &str, name: &str) -> String {
    if at.is_empty() {
        name.to_owned()
    } else {
        format!("{at}.{name}")
    }
}

fn join<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    items
        .into_iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Bus;
    use serde_json::json;

    fn topic(version: &str, schema: Value) -> TopicSpec {
        serde_json::from_value(json!({
            "topic": "session.summary.final", "version": version, "description": "d",
            "deliveryPolicy": "at-least-once", "bufferPolicy": "none", "piiLevel": "none",
            "forwardingPolicy": "default", "payloadSchema": schema, "bus": "session"
        }))
        .unwrap()
    }

    fn base_schema() -> Value {
        json!({"type": "object", "required": ["a"], "properties": {
            "a": {"type": "string"},
            "b": {"type": ["integer", "null"]},
            "c": {"enum": ["x", "y"]},
            "nested": {"type": "object", "properties": {"d": {"type": "string"}}}
        }})
    }

    fn messages(v: &[Violation]) -> Vec<String> {
        v.iter().map(|v| v.message.clone()).collect()
    }

    #[test]
    fn additive_changes_with_a_minor_bump_pass() {
        let mut schema = base_schema();
        schema["properties"]["e"] = json!({"type": "string"});
        schema["properties"]["c"]["enum"] = json!(["x", "y", "z"]);
        schema["properties"]["b"]["type"] = json!(["number", "null"]); // widened
        assert_eq!(
            check_evolution(&[topic("1.0.0", base_schema())], &[topic("1.1.0", schema)]),
            vec![]
        );
    }

    #[test]
    fn every_kind_of_break_is_named() {
        let mut schema = base_schema();
        schema["properties"].as_object_mut().unwrap().remove("b");
        schema["required"] = json!(["a", "c"]);
        schema["properties"]["c"]["enum"] = json!(["x"]);
        schema["properties"]["nested"]["properties"]["d"]["type"] = json!("integer");
        schema["additionalProperties"] = json!(false);
        let v = check_evolution(&[topic("1.0.0", base_schema())], &[topic("1.1.0", schema)]);
        let m = messages(&v);
        assert!(
            m.iter()
                .all(|m| m
                    .starts_with("breaking change without a major version bump (1.0.0 -> 1.1.0)")),
            "{m:?}"
        );
        for expected in [
            "field 'c' is newly required",
            "field 'b' was removed",
            "'c' no longer accepts \"y\"",
            "'nested.d' no longer accepts type 'string'",
            "the payload no longer accepts additional properties",
        ] {
            assert!(
                m.iter().any(|m| m.ends_with(expected)),
                "missing '{expected}' in {m:?}"
            );
        }
    }

    #[test]
    fn a_major_bump_or_a_prior_deprecation_allows_breaks() {
        let mut schema = base_schema();
        schema["required"] = json!(["a", "b"]);
        assert!(
            check_evolution(
                &[topic("1.0.0", base_schema())],
                &[topic("2.0.0", schema.clone())]
            )
            .is_empty()
        );
        let mut deprecated = topic("1.0.0", base_schema());
        deprecated.deprecated = true;
        assert!(check_evolution(&[deprecated], &[topic("1.1.0", schema)]).is_empty());
    }

    #[test]
    fn topics_are_removed_only_after_deprecation() {
        let v = check_evolution(&[topic("1.0.0", base_schema())], &[]);
        assert_eq!(v.len(), 1);
        assert!(
            v[0].message
                .contains("removed without being deprecated first"),
            "{}",
            v[0]
        );
        let mut deprecated = topic("1.0.0", base_schema());
        deprecated.deprecated = true;
        assert!(check_evolution(&[deprecated], &[]).is_empty());
    }

    #[test]
    fn a_schema_change_needs_some_version_change() {
        let mut schema = base_schema();
        schema["properties"]["e"] = json!({"type": "string"});
        let v = check_evolution(&[topic("1.0.0", base_schema())], &[topic("1.0.0", schema)]);
        assert_eq!(
            messages(&v),
            [
                "payloadSchema or metaSchema changed but version 1.0.0 did not: bump the minor or patch version"
            ]
        );
        let v = check_evolution(
            &[topic("1.2.0", base_schema())],
            &[topic("1.1.0", base_schema())],
        );
        assert_eq!(messages(&v), ["version went backwards: 1.2.0 -> 1.1.0"]);
    }

    #[test]
    fn a_bus_move_a_new_source_or_a_removed_alias_is_breaking() {
        let old = {
            let mut t = topic("1.0.0", base_schema());
            t.aliases = vec!["session.final".into(), "summary.final".into()];
            t
        };
        let mut new = topic("1.1.0", base_schema());
        new.bus = Some(Bus::Analytics);
        new.aliases = vec!["summary.final".into(), "session.done".into()];
        new.producer = Some("session-pipeline".into());
        let m = messages(&check_evolution(
            std::slice::from_ref(&old),
            std::slice::from_ref(&new),
        ));
        assert_eq!(
            m,
            [
                "breaking change without a major version bump (1.0.0 -> 1.1.0): moved from the 'session' bus to the 'analytics' bus: consumers of the 'session' bus stop receiving it",
                "breaking change without a major version bump (1.0.0 -> 1.1.0): its source changed from 'nia.interface' to 'eventfabric.session-pipeline': rules matching the old source stop receiving it",
                "breaking change without a major version bump (1.0.0 -> 1.1.0): alias 'session.final' was removed: clients still sending it get unknown_topic",
            ]
        );
        new.version = "2.0.0".into();
        assert_eq!(check_evolution(&[old], &[new]), vec![]);
    }

    #[test]
    fn meta_schemas_evolve_under_the_same_rules() {
        let meta = json!({"type": "object", "properties": {"tenantId": {"type": "string"}}});
        let with_meta = |version: &str, meta: Option<Value>| {
            let mut t = topic(version, base_schema());
            t.meta_schema = meta;
            t
        };
        // The messages of evolving (version, meta schema) `from` into `to`.
        let evolve = |from: (&str, Option<Value>), to: (&str, Option<Value>)| {
            messages(&check_evolution(
                &[with_meta(from.0, from.1)],
                &[with_meta(to.0, to.1)],
            ))
        };
        // Adding a meta schema narrows meta; dropping one widens it.
        assert_eq!(
            evolve(("1.0.0", None), ("1.1.0", Some(meta.clone()))),
            [
                "breaking change without a major version bump (1.0.0 -> 1.1.0): meta: a metaSchema now constrains meta, which was free"
            ]
        );
        assert!(evolve(("1.0.0", Some(meta.clone())), ("1.1.0", None)).is_empty());
        let mut narrowed = meta.clone();
        narrowed["required"] = json!(["tenantId"]);
        assert_eq!(
            evolve(("1.0.0", Some(meta.clone())), ("1.1.0", Some(narrowed))),
            [
                "breaking change without a major version bump (1.0.0 -> 1.1.0): meta: field 'tenantId' is newly required"
            ]
        );
        let mut retyped = meta.clone();
        retyped["type"] = json!("array");
        assert_eq!(
            evolve(("1.0.0", Some(meta.clone())), ("1.1.0", Some(retyped))),
            [
                "breaking change without a major version bump (1.0.0 -> 1.1.0): meta: the meta no longer accepts type 'object'"
            ]
        );
        // A widening meta change still needs a version change.
        let mut widened = meta.clone();
        widened["properties"]["region"] = json!({"type": "string"});
        assert_eq!(
            evolve(("1.0.0", Some(meta)), ("1.0.0", Some(widened))),
            [
                "payloadSchema or metaSchema changed but version 1.0.0 did not: bump the minor or patch version"
            ]
        );
    }
}
