//! From an EventBridge event of the app bus to a checked event: its (source, detail type)
//! must name a registry topic, its detail must be the application envelope
//! ([`eventfabric_core::publish::AppDetail`]) and its payload must pass the topic's JSON
//! Schema. Every reason an event is refused is named, with the field at fault.

use std::collections::HashMap;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use eventfabric_core::publish::ReceivedDetail;
use eventfabric_core::text::echo;
use eventfabric_registry::{Bus, Registry};
use jsonschema::Validator;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Most schema errors named per event.
pub const MAX_ERRORS: usize = 10;

/// A checked event.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// The envelope's id: what deduplication and follow-up ids are keyed on.
    pub id: String,
    pub topic: &'static str,
    /// Epoch ms of the envelope's `occurredAt`.
    pub occurred_ms: i64,
    pub payload: Value,
}

impl Inbound {
    /// The payload as its generated type (the schema passed, so this only fails on a
    /// generator/schema disagreement, which `eventfabric-topics`' tests guard).
    pub fn payload<T: DeserializeOwned>(&self) -> Result<T, Refused> {
        T::deserialize(&self.payload).map_err(|e| Refused(vec![format!("payload: {e}")]))
    }
}

/// Why an event was refused: every reason, each naming its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event refused: {}", .0.join("; "))]
pub struct Refused(pub Vec<String>);

struct Kind {
    topic: &'static str,
    validator: Validator,
}

/// The app bus's topics, compiled, by (source, detail type).
pub struct Topics {
    kinds: HashMap<(String, String), Kind>,
}

impl Topics {
    pub fn compile(registry: &'static Registry) -> Result<Self, String> {
        let mut kinds = HashMap::new();
        for t in registry.topics().iter().filter(|t| t.bus == Some(Bus::App)) {
            let validator = jsonschema::validator_for(&t.payload_schema).map_err(|e| {
                format!("topic {}: cannot compile its payload schema: {e}", t.topic)
            })?;
            kinds.insert(
                (t.source(), t.detail_type().to_owned()),
                Kind {
                    topic: t.topic.as_str(),
                    validator,
                },
            );
        }
        if kinds.is_empty() {
            return Err("the registry has no topic on the app bus".into());
        }
        Ok(Self { kinds })
    }

    /// The (source, detail type) of an app topic: what its rule matches.
    pub fn source_of(&self, topic: &str) -> Option<(&str, &str)> {
        self.kinds
            .iter()
            .find(|(_, k)| k.topic == topic)
            .map(|((source, detail_type), _)| (source.as_str(), detail_type.as_str()))
    }

    /// The embedded registry's app topics (leaked once per process: the registry lives as long
    /// as the function).
    pub fn embedded() -> Result<Self, String> {
        let registry = Registry::embedded().map_err(|e| e.to_string())?;
        Self::compile(Box::leak(Box::new(registry)))
    }

    pub fn check(&self, event: &EventBridgeEvent<Value>) -> Result<Inbound, Refused> {
        let kind = self
            .kinds
            .get(&(event.source.clone(), event.detail_type.clone()))
            .ok_or_else(|| {
                Refused(vec![format!(
                    "source {} with detail-type {} is no topic of the app bus",
                    echo(&event.source),
                    echo(&event.detail_type)
                )])
            })?;
        let detail: ReceivedDetail = serde_json::from_value(event.detail.clone())
            .map_err(|e| Refused(vec![format!("detail: not the application envelope: {e}")]))?;
        let mut errors = Vec::new();
        if detail.topic != kind.topic {
            errors.push(format!(
                "detail.topic: {} is not {} (the topic of its source and detail-type)",
                echo(&detail.topic),
                kind.topic
            ));
        }
        if !eventfabric_websocket::valid_principal(&detail.id) {
            errors.push("detail.id: must be 1–128 visible ASCII characters".into());
        }
        let occurred = eventfabric_core::Timestamp::parse_rfc3339(&detail.occurred_at);
        if occurred.is_none() {
            errors.push(format!(
                "detail.occurredAt: {} is not an RFC 3339 timestamp",
                echo(&detail.occurred_at)
            ));
        }
        let payload: Value = serde_json::from_str(detail.payload.get())
            .map_err(|e| Refused(vec![format!("detail.payload: {e}")]))?;
        if !kind.validator.is_valid(&payload) {
            let all: Vec<String> = kind
                .validator
                .iter_errors(&payload)
                .map(|e| format!("detail.payload{}: {e}", e.instance_path()))
                .collect();
            let more = all.len().saturating_sub(MAX_ERRORS);
            errors.extend(
                all.into_iter()
                    .take(MAX_ERRORS)
                    .map(eventfabric_core::text::bounded),
            );
            if more > 0 {
                errors.push(format!("… and {more} more"));
            }
        }
        match (errors.is_empty(), occurred) {
            (true, Some(occurred)) => Ok(Inbound {
                id: detail.id,
                topic: kind.topic,
                occurred_ms: occurred.millis(),
                payload,
            }),
            _ => Err(Refused(errors)),
        }
    }
}
