//! The registry compiled for the hot path: one JSON Schema validator per topic, built once at
//! start-up, looked up by topic name or alias.

use eventfabric_registry::{ForwardingPolicy, Registry, TopicSpec};
use jsonschema::{ValidationOptions, Validator};
use serde_json::Value;

use crate::redact::RedactionPlan;
use std::sync::LazyLock;

use crate::tape::{Tape, TapeJson, TapeNode};

/// A topic with its compiled validators.
pub struct CompiledTopic {
    pub spec: TopicSpec,
    /// Major version of the registry entry; clients must send a matching `schemaVersion`.
    pub major: u64,
    /// The topic's redaction hint, ready to apply.
    pub redaction: Option<RedactionPlan>,
    payload: Validator<TapeJson>,
    meta: Option<Validator<TapeJson>>,
}

/// What a meta schema checks when an event has no meta: `{}`, read once.
static ABSENT_META: LazyLock<Tape<'static>> = LazyLock::new(|| {
    let mut tape = Tape::default();
    tape.load("{}").expect("an empty object is JSON");
    tape
});

impl CompiledTopic {
    /// The first schema violation of the payload or the meta (`{}` when absent), as
    /// `at <JSON pointer>: <why>`. Both are values of the request's tape, validated where they
    /// are.
    pub fn violation(&self, payload: TapeNode<'_>, meta: Option<TapeNode<'_>>) -> Option<String> {
        // `is_valid` skips building error context; only a failing payload is validated again
        // for the error to report.
        if !self.payload.is_valid(payload) {
            let error = match self.payload.validate(payload) {
                Err(e) => format!("at /payload{}: {e}", e.instance_path()),
                Ok(()) => "at /payload: invalid".to_owned(),
            };
            return Some(error);
        }
        if let Some(meta_validator) = &self.meta {
            let meta = meta.unwrap_or_else(|| ABSENT_META.root());
            if !meta_validator.is_valid(meta) {
                let error = match meta_validator.validate(meta) {
                    Err(e) => format!("at /meta{}: {e}", e.instance_path()),
                    Ok(()) => "at /meta: invalid".to_owned(),
                };
                return Some(error);
            }
        }
        None
    }

    /// Deterministic sampling on the event id, so a retried event gets the same decision.
    pub fn keeps_sample(&self, event_id: &str) -> bool {
        if self.spec.forwarding_policy != ForwardingPolicy::Sampled {
            return true;
        }
        let h = sample_hash(event_id.as_bytes());
        match (self.spec.sample_every_n, self.spec.sample_rate) {
            (Some(n), _) => h % u64::from(n.max(1)) == 0,
            (None, Some(rate)) => (h as f64 / u64::MAX as f64) < rate,
            (None, None) => true,
        }
    }
}

/// A stable, fast hash for sampling decisions (not for anything secret): FNV-1a, then the
/// splitmix64 finalizer, because FNV alone spreads short, similar ids (`ui-1`, `ui-2`…)
/// unevenly over the high bits that the rate comparison reads.
fn sample_hash(bytes: &[u8]) -> u64 {
    let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let z = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Every topic of the registry, compiled; names and aliases resolve through the registry's own
/// index, into a table in the registry's order.
pub struct CompiledTopics {
    registry: Registry,
    topics: Vec<CompiledTopic>,
}

#[derive(Debug, thiserror::Error)]
#[error("topic {topic}: cannot compile its {which}: {message}")]
pub struct CompileError {
    topic: String,
    which: &'static str,
    message: String,
}

impl CompiledTopics {
    pub fn compile(registry: &Registry) -> Result<Self, CompileError> {
        let topics = registry
            .topics()
            .iter()
            .map(|spec| {
                let compile = |schema: &Value, which| {
                    ValidationOptions::<_, TapeJson>::default()
                        .build(schema)
                        .map_err(|e| CompileError {
                            topic: spec.topic.clone(),
                            which,
                            message: e.to_string(),
                        })
                };
                Ok(CompiledTopic {
                    spec: spec.clone(),
                    major: semver_major(&spec.version).unwrap_or(0),
                    redaction: spec
                        .redaction_hint
                        .as_ref()
                        .map(RedactionPlan::compile)
                        .transpose()
                        .map_err(|message| CompileError {
                            topic: spec.topic.clone(),
                            which: "redaction hint",
                            message,
                        })?,
                    payload: compile(&spec.payload_schema, "payload schema")?,
                    meta: spec
                        .meta_schema
                        .as_ref()
                        .map(|s| compile(s, "meta schema"))
                        .transpose()?,
                })
            })
            .collect::<Result<_, CompileError>>()?;
        Ok(Self {
            registry: registry.clone(),
            topics,
        })
    }

    pub fn resolve(&self, name: &str) -> Option<&CompiledTopic> {
        self.registry.resolve_index(name).map(|i| &self.topics[i])
    }
}

/// The major component of `MAJOR.MINOR.PATCH` (also accepts `MAJOR` or `MAJOR.MINOR`).
pub fn semver_major(version: &str) -> Option<u64> {
    version.split('.').next()?.parse().ok()
}
