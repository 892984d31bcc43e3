//! The registry rules. Every rule reports every violation it finds, one clear line each, so a
//! contributor fixes the whole file in one pass.

use std::collections::HashMap;
use std::fmt;

use serde_json::Value;

use crate::model::{BufferPolicy, ForwardingPolicy, PiiLevel, TopicSpec};

/// One broken rule, attributed to the file it was found in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub file: String,
    pub rule: &'static str,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: [{}] {}", self.file, self.rule, self.message)
    }
}

/// A registry entry as read from disk, before it is trusted.
#[derive(Debug, Clone)]
pub struct SourceEntry {
    /// Where it came from, e.g. `schemas/topics/session.started.json`.
    pub file: String,
    pub spec: TopicSpec,
}

/// `a.b` or `a.b.c`: lowercase segments of letters, digits and `_`, each starting with a letter.
pub fn is_valid_topic_name(name: &str) -> bool {
    let mut segments = 0;
    for segment in name.split('.') {
        segments += 1;
        let mut chars = segment.chars();
        match chars.next() {
            Some(c) if c.is_ascii_lowercase() => {}
            _ => return false,
        }
        if !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
            return false;
        }
    }
    segments >= 2
}

/// Checks one entry on its own: names, versions, policy fields, schemas, redaction pointers.
pub fn check_entry(entry: &SourceEntry) -> Vec<Violation> {
    let spec = &entry.spec;
    let mut out = Vec::new();
    let mut fail = |rule: &'static str, message: String| {
        out.push(Violation {
            file: entry.file.clone(),
            rule,
            message,
        });
    };

    if !is_valid_topic_name(&spec.topic) {
        fail(
            "topic-name",
            format!(
                "topic '{}' must be dotted lowercase with at least two segments, e.g. 'session.summary.final'",
                spec.topic
            ),
        );
    }
    let expected_file = format!("{}.json", spec.topic);
    if !entry.file.ends_with(&format!("/{expected_file}")) && entry.file != expected_file {
        fail(
            "file-name",
            format!("file must be named '{expected_file}' after its topic"),
        );
    }
    if let Err(e) = semver::Version::parse(&spec.version) {
        fail(
            "version",
            format!(
                "version '{}' is not semver (MAJOR.MINOR.PATCH): {e}",
                spec.version
            ),
        );
    }
    if let Some(producer) = &spec.producer {
        let well_formed = producer.len() <= 64
            && producer.starts_with(|c: char| c.is_ascii_lowercase())
            && producer
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !well_formed {
            fail(
                "producer",
                format!(
                    "producer '{producer}' must be a lowercase component name (letters, digits, '-'; at most 64), e.g. 'session-pipeline'"
                ),
            );
        }
        if spec.forwarding_policy != ForwardingPolicy::Deny {
            fail(
                "producer",
                format!(
                    "a topic produced by '{producer}' must have forwardingPolicy 'deny': clients may not send what the platform emits"
                ),
            );
        }
    }
    match (spec.bus, spec.stream) {
        (None, None) => fail(
            "route",
            "a topic needs a route: 'bus' (session, analytics) or 'stream' (ingest)".into(),
        ),
        (Some(_), Some(_)) => fail(
            "route",
            "a topic goes to one place: set 'bus' or 'stream', not both".into(),
        ),
        (None, Some(stream)) => {
            let name = stream.as_str();
            if spec.forwarding_policy != ForwardingPolicy::Deny {
                fail(
                    "route",
                    format!(
                        "a topic of the '{name}' stream must have forwardingPolicy 'deny': it arrives through the ingest API, never from browser sessions"
                    ),
                );
            }
            if spec.producer.is_some() || spec.archive {
                fail(
                    "route",
                    format!(
                        "'producer' and 'archive' are bus settings (EventBridge source, EventBridge Archive); a topic of the '{name}' stream has neither (its archive is the stream's Parquet archive)"
                    ),
                );
            }
            if spec.meta_schema.is_some() || spec.redaction_hint.is_some() {
                fail(
                    "route",
                    format!(
                        "'metaSchema' and 'redactionHint' apply to forwarded events; the '{name}' stream's envelope has no meta and is not redacted"
                    ),
                );
            }
        }
        (Some(_), None) => {}
    }
    if spec.bus == Some(crate::Bus::App) && spec.producer.is_none() {
        fail(
            "source",
            "the 'app' bus carries the application's domain events: a topic on it needs its 'producer'".into(),
        );
    }
    if spec.producer.is_none() && (spec.source.is_some() || spec.detail_type.is_some()) {
        fail(
            "source",
            "'source' and 'detailType' name how a producer publishes; a topic without 'producer' has neither".into(),
        );
    }
    if let Some(source) = &spec.source {
        let well_formed = source.len() <= 256
            && !source.starts_with("aws.")
            && source.split('.').count() >= 2
            && source.split('.').all(|segment| {
                segment.starts_with(|c: char| c.is_ascii_lowercase())
                    && segment
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            });
        if !well_formed {
            fail(
                "source",
                format!(
                    "source '{source}' must be dotted lowercase (letters, digits, '-'), at most 256, not 'aws.…', e.g. 'bayon.coagent.studio'"
                ),
            );
        }
    }
    if let Some(detail_type) = &spec.detail_type {
        let well_formed = !detail_type.is_empty()
            && detail_type.len() <= 128
            && detail_type.starts_with(|c: char| c.is_ascii_alphabetic())
            && detail_type
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '.' | '_'));
        if !well_formed {
            fail(
                "detail-type",
                format!(
                    "detailType '{detail_type}' must be 1–128 letters, digits, spaces, '-', '.' or '_', starting with a letter, e.g. 'Content Generated'"
                ),
            );
        }
    }
    if spec.description.trim().is_empty() {
        fail(
            "description",
            "description must say what the topic is for".into(),
        );
    }

    match (spec.buffer_policy, spec.ring_size) {
        (BufferPolicy::Ring, None) => {
            fail("ring-size", "bufferPolicy 'ring' requires ringSize".into())
        }
        (BufferPolicy::Ring, Some(0)) => fail("ring-size", "ringSize must be at least 1".into()),
        (BufferPolicy::None | BufferPolicy::Last, Some(_)) => fail(
            "ring-size",
            "ringSize is only allowed with bufferPolicy 'ring'".into(),
        ),
        _ => {}
    }

    match (
        spec.forwarding_policy,
        spec.sample_every_n,
        spec.sample_rate,
    ) {
        (ForwardingPolicy::Sampled, None, None) => fail(
            "sampling",
            "forwardingPolicy 'sampled' requires sampleEveryN or sampleRate".into(),
        ),
        (ForwardingPolicy::Sampled, Some(_), Some(_)) => fail(
            "sampling",
            "give sampleEveryN or sampleRate, not both".into(),
        ),
        (ForwardingPolicy::Sampled, _, _) => {}
        (_, None, None) => {}
        (policy, _, _) => fail(
            "sampling",
            format!("sampleEveryN/sampleRate only apply to 'sampled' topics, not '{policy:?}'"),
        ),
    }
    if spec.sample_every_n == Some(0) {
        fail("sampling", "sampleEveryN must be at least 1".into());
    }
    if let Some(rate) = spec.sample_rate {
        if !(rate > 0.0 && rate <= 1.0) {
            fail("sampling", format!("sampleRate {rate} must be in (0, 1]"));
        }
    }
    if spec.rate_limit_per_sec == Some(0) {
        fail(
            "rate-limit",
            "rateLimitPerSec must be at least 1 (use forwardingPolicy 'deny' to stop a topic)"
                .into(),
        );
    }

    let hint_is_empty = spec.redaction_hint.as_ref().is_none_or(|h| h.is_empty());
    if spec.requires_redaction() && hint_is_empty {
        let why = if spec.forwarding_policy == ForwardingPolicy::Conditional {
            "forwardingPolicy 'conditional'"
        } else {
            "piiLevel 'high'"
        };
        fail(
            "redaction",
            format!(
                "{why} requires a redactionHint naming the fields to drop or hash before the event leaves the session"
            ),
        );
    }
    if spec.pii_level == PiiLevel::None && !hint_is_empty {
        fail(
            "redaction",
            "a redactionHint on a topic with piiLevel 'none' is contradictory".into(),
        );
    }

    match jsonschema::meta::validate(&spec.payload_schema) {
        Ok(()) => {
            if spec.payload_schema.get("type").and_then(Value::as_str) != Some("object") {
                fail(
                    "payload-schema",
                    "payloadSchema must describe an object (\"type\": \"object\")".into(),
                );
            }
            if let Some(hint) = &spec.redaction_hint {
                for pointer in hint.drop.iter().chain(&hint.hash) {
                    match pointer_in_schema(&spec.payload_schema, pointer) {
                        Err(why) => fail(
                            "redaction",
                            format!("redactionHint pointer '{pointer}': {why}"),
                        ),
                        Ok(field) if hint.hash.contains(pointer) => {
                            if let Err(why) = hashable(field) {
                                fail(
                                    "redaction",
                                    format!("redactionHint.hash '{pointer}': {why}"),
                                );
                            }
                        }
                        Ok(_) => {}
                    }
                }
            }
        }
        Err(e) => fail(
            "payload-schema",
            format!("payloadSchema is not a valid JSON Schema: {e}"),
        ),
    }
    if let Some(meta) = &spec.meta_schema {
        if let Err(e) = jsonschema::meta::validate(meta) {
            fail(
                "meta-schema",
                format!("metaSchema is not a valid JSON Schema: {e}"),
            );
        }
    }
    for alias in &spec.aliases {
        if !is_valid_topic_name(alias) {
            fail(
                "alias",
                format!("alias '{alias}' must be a valid topic name"),
            );
        }
        if alias == &spec.topic {
            fail(
                "alias",
                format!("alias '{alias}' repeats the topic's own name"),
            );
        }
    }
    out
}

/// Checks rules that span entries: one owner per topic name and alias.
pub fn check_registry(entries: &[SourceEntry]) -> Vec<Violation> {
    let mut out: Vec<Violation> = entries.iter().flat_map(check_entry).collect();
    let mut owners: HashMap<&str, &str> = HashMap::new();
    for entry in entries {
        let names = std::iter::once(&entry.spec.topic).chain(&entry.spec.aliases);
        for name in names {
            if let Some(previous) = owners.insert(name, &entry.file) {
                out.push(Violation {
                    file: entry.file.clone(),
                    rule: "unique-name",
                    message: format!(
                        "'{name}' is already used (as a topic or alias) by {previous}"
                    ),
                });
            }
        }
    }
    // Rules match (source, detail type): two topics sharing both would be one to every rule.
    let mut kinds: HashMap<(String, String), &str> = HashMap::new();
    for entry in entries.iter().filter(|e| e.spec.bus.is_some()) {
        let kind = (entry.spec.source(), entry.spec.detail_type().to_owned());
        if let Some(previous) = kinds.get(&kind) {
            out.push(Violation {
                file: entry.file.clone(),
                rule: "unique-kind",
                message: format!(
                    "source '{}' with detail type '{}' is already {previous}'s: rules could not tell them apart",
                    kind.0, kind.1
                ),
            });
        } else {
            kinds.insert(kind, &entry.file);
        }
    }
    out
}

/// Resolves a JSON pointer against the `properties` of an object schema, so that a redaction
/// hint cannot name a field the payload does not have.
fn pointer_in_schema<'s>(schema: &'s Value, pointer: &str) -> Result<&'s Value, String> {
    let tokens = crate::pointer_tokens(pointer)
        .filter(|tokens| !tokens.is_empty())
        .ok_or("must be a JSON pointer starting with '/'")?;
    let mut node = schema;
    for key in tokens {
        node = node
            .get("properties")
            .and_then(|p| p.get(&key))
            .ok_or_else(|| format!("payloadSchema has no property '{key}' there"))?;
    }
    Ok(node)
}

/// Length of a hashed value: `hmac-sha256:` and 43 base64url characters.
const HASHED_LENGTH: u64 = 55;

/// A hashed field leaves as a `hmac-sha256:…` string, so its schema must accept one: the
/// generated types, the archive columns and consumers all read the field with this schema.
fn hashable(field: &Value) -> Result<(), String> {
    if field.get("type").and_then(Value::as_str) != Some("string") {
        return Err("only string fields can be hashed (give it \"type\": \"string\")".into());
    }
    if let Some(keyword) = ["pattern", "format", "enum", "const"]
        .into_iter()
        .find(|k| field.get(*k).is_some())
    {
        return Err(format!(
            "a hashed value cannot satisfy '{keyword}'; drop the constraint or the field"
        ));
    }
    match field.get("maxLength").and_then(Value::as_u64) {
        Some(max) if max < HASHED_LENGTH => Err(format!(
            "maxLength {max} is shorter than a hashed value ({HASHED_LENGTH} characters)"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;
    use serde_json::json;

    fn spec(topic: &str) -> TopicSpec {
        serde_json::from_value(json!({
            "topic": topic,
            "version": "1.0.0",
            "description": "test topic",
            "deliveryPolicy": "at-least-once",
            "bufferPolicy": "none",
            "piiLevel": "none",
            "forwardingPolicy": "default",
            "payloadSchema": {"type": "object", "properties": {"email": {"type": "string"}}},
            "bus": "session"
        }))
        .unwrap()
    }

    fn entry(spec: TopicSpec) -> SourceEntry {
        SourceEntry {
            file: format!("schemas/topics/{}.json", spec.topic),
            spec,
        }
    }

    fn rules(v: &[Violation]) -> Vec<&'static str> {
        v.iter().map(|v| v.rule).collect()
    }

    #[test]
    fn a_well_formed_entry_passes() {
        assert_eq!(check_entry(&entry(spec("session.started"))), vec![]);
    }

    #[test]
    fn topic_names_are_dotted_lowercase() {
        assert!(is_valid_topic_name("session.summary.final"));
        assert!(is_valid_topic_name("ui.click_rate"));
        for bad in [
            "session",
            "Session.started",
            "session..x",
            "session.1x",
            ".a.b",
            "a.b-c",
        ] {
            assert!(!is_valid_topic_name(bad), "{bad} should be rejected");
        }
    }

    #[test]
    fn file_name_must_match_topic() {
        let mut e = entry(spec("session.started"));
        e.file = "schemas/topics/other.json".into();
        assert_eq!(rules(&check_entry(&e)), vec!["file-name"]);
    }

    #[test]
    fn version_must_be_semver() {
        let mut s = spec("session.started");
        s.version = "1.0".into();
        assert_eq!(rules(&check_entry(&entry(s))), vec!["version"]);
    }

    #[test]
    fn ring_size_iff_ring() {
        let mut s = spec("session.started");
        s.buffer_policy = BufferPolicy::Ring;
        assert_eq!(rules(&check_entry(&entry(s.clone()))), vec!["ring-size"]);
        s.ring_size = Some(16);
        assert!(check_entry(&entry(s.clone())).is_empty());
        s.buffer_policy = BufferPolicy::Last;
        assert_eq!(rules(&check_entry(&entry(s))), vec!["ring-size"]);
    }

    #[test]
    fn sampled_topics_need_exactly_one_valid_rate() {
        let mut s = spec("ui.metrics");
        s.forwarding_policy = ForwardingPolicy::Sampled;
        assert_eq!(rules(&check_entry(&entry(s.clone()))), vec!["sampling"]);
        s.sample_rate = Some(0.0);
        assert_eq!(rules(&check_entry(&entry(s.clone()))), vec!["sampling"]);
        s.sample_rate = Some(1.0);
        assert!(check_entry(&entry(s.clone())).is_empty());
        s.sample_every_n = Some(10);
        assert_eq!(rules(&check_entry(&entry(s.clone()))), vec!["sampling"]);
        s.forwarding_policy = ForwardingPolicy::Default;
        s.sample_rate = None;
        assert_eq!(rules(&check_entry(&entry(s))), vec!["sampling"]);
    }

    #[test]
    fn a_produced_topic_is_denied_to_clients_and_named_like_a_component() {
        let mut s = spec("session.pipeline.failed");
        s.producer = Some("session-pipeline".into());
        assert_eq!(rules(&check_entry(&entry(s.clone()))), vec!["producer"]);
        s.forwarding_policy = ForwardingPolicy::Deny;
        assert!(check_entry(&entry(s.clone())).is_empty());
        assert_eq!(s.source(), "eventfabric.session-pipeline");
        assert!(s.published());
        for bad in ["", "Session", "session_pipeline", "-x", "x.y"] {
            s.producer = Some(bad.into());
            assert_eq!(
                rules(&check_entry(&entry(s.clone()))),
                vec!["producer"],
                "{bad:?}"
            );
        }
        s.producer = None;
        assert_eq!(s.source(), "nia.interface");
        assert!(!s.published(), "a denied session topic reaches no bus");
    }

    #[test]
    fn a_produced_topic_may_name_its_source_and_detail_type_and_they_are_unique() {
        let mut s = spec("studio.content.generated");
        s.forwarding_policy = ForwardingPolicy::Deny;
        s.source = Some("bayon.coagent.studio".into());
        s.detail_type = Some("Content Generated".into());
        assert_eq!(
            rules(&check_entry(&entry(s.clone()))),
            vec!["source"],
            "needs a producer"
        );
        s.producer = Some("studio".into());
        assert!(check_entry(&entry(s.clone())).is_empty());
        assert_eq!(s.source(), "bayon.coagent.studio");
        assert_eq!(s.detail_type(), "Content Generated");
        let mut bad = s.clone();
        bad.source = Some("aws.events".into());
        bad.detail_type = Some("Content\nGenerated".into());
        assert_eq!(
            rules(&check_entry(&entry(bad))),
            vec!["source", "detail-type"]
        );
        let mut twin = s.clone();
        twin.topic = "studio.content.generated_again".into();
        let v = check_registry(&[entry(s), entry(twin)]);
        assert_eq!(rules(&v), vec!["unique-kind"]);
    }

    #[test]
    fn a_topic_has_exactly_one_route_and_stream_topics_are_ingest_only() {
        let mut s = spec("a.b");
        s.bus = None;
        assert_eq!(rules(&check_entry(&entry(s.clone()))), vec!["route"]);
        s.stream = Some(Stream::Ingest);
        assert_eq!(
            rules(&check_entry(&entry(s.clone()))),
            vec!["route"],
            "a stream topic must be denied to the forward API"
        );
        s.forwarding_policy = ForwardingPolicy::Deny;
        assert!(check_entry(&entry(s.clone())).is_empty());
        assert_eq!(s.route(), Some(Route::Stream(Stream::Ingest)));
        s.archive = true;
        assert_eq!(rules(&check_entry(&entry(s.clone()))), vec!["route"]);
        s.archive = false;
        s.bus = Some(Bus::Session);
        assert_eq!(rules(&check_entry(&entry(s.clone()))), vec!["route"]);
        assert_eq!(s.route(), None);
    }

    #[test]
    fn high_pii_needs_a_redaction_hint_unless_denied() {
        let mut s = spec("user.profile.changed");
        s.pii_level = PiiLevel::High;
        assert_eq!(rules(&check_entry(&entry(s.clone()))), vec!["redaction"]);
        s.forwarding_policy = ForwardingPolicy::Deny;
        assert!(check_entry(&entry(s.clone())).is_empty());
        s.forwarding_policy = ForwardingPolicy::Default;
        s.redaction_hint = Some(RedactionHint {
            drop: vec!["/email".into()],
            hash: vec![],
        });
        assert!(check_entry(&entry(s)).is_empty());
    }

    #[test]
    fn redaction_pointers_must_name_schema_fields() {
        let mut s = spec("user.profile.changed");
        s.pii_level = PiiLevel::High;
        s.redaction_hint = Some(RedactionHint {
            drop: vec!["/emial".into()],
            hash: vec!["phone".into()],
        });
        let v = check_entry(&entry(s));
        assert_eq!(rules(&v), vec!["redaction", "redaction"]);
        assert!(v[0].message.contains("no property 'emial'"), "{}", v[0]);
        assert!(v[1].message.contains("starting with '/'"), "{}", v[1]);
    }

    #[test]
    fn only_unconstrained_string_fields_can_be_hashed() {
        let mut s = spec("user.profile.changed");
        s.pii_level = PiiLevel::High;
        s.payload_schema = json!({"type": "object", "properties": {
            "userId": {"type": "string", "maxLength": 128},
            "age": {"type": "integer"},
            "code": {"type": "string", "pattern": "^[A-Z]+$"},
            "short": {"type": "string", "maxLength": 16}
        }});
        s.redaction_hint = Some(RedactionHint {
            drop: vec![],
            hash: vec![
                "/userId".into(),
                "/age".into(),
                "/code".into(),
                "/short".into(),
            ],
        });
        let v = check_entry(&entry(s));
        let messages: Vec<String> = v.iter().map(|v| v.message.clone()).collect();
        assert_eq!(v.len(), 3, "{messages:?}");
        assert!(messages[0].contains("'/age': only string fields"));
        assert!(messages[1].contains("'/code'") && messages[1].contains("'pattern'"));
        assert!(messages[2].contains("'/short': maxLength 16"));
    }

    #[test]
    fn invalid_payload_schema_is_reported() {
        let mut s = spec("session.started");
        s.payload_schema = json!({"type": "objekt"});
        assert_eq!(rules(&check_entry(&entry(s))), vec!["payload-schema"]);
    }

    #[test]
    fn names_and_aliases_are_unique_across_the_registry() {
        let a = spec("session.started");
        let mut b = spec("session.begun");
        b.aliases = vec!["session.started".into()];
        let v = check_registry(&[entry(a), entry(b)]);
        assert_eq!(rules(&v), vec!["unique-name"]);
        assert_eq!(v[0].file, "schemas/topics/session.begun.json");
        assert!(v[0].to_string().contains("already used"));
    }
}
