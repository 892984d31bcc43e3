//! The shape of one registry entry (`schemas/topics/<topic>.json`), as systems.md §1 defines it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One topic of the registry. Unknown fields are rejected so a typo never passes silently.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TopicSpec {
    /// Dotted lowercase name, e.g. `session.summary.final`.
    pub topic: String,
    /// Semantic version of the payload contract.
    pub version: String,
    pub description: String,
    pub delivery_policy: DeliveryPolicy,
    pub buffer_policy: BufferPolicy,
    /// Required when `bufferPolicy` is `ring`, forbidden otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_sec: Option<u32>,
    /// Forward one event in N (`sampled` topics; exclusive with `sampleRate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_every_n: Option<u32>,
    /// Forward this fraction of events, in (0, 1] (`sampled` topics; exclusive with `sampleEveryN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<f64>,
    pub pii_level: PiiLevel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redaction_hint: Option<RedactionHint>,
    pub forwarding_policy: ForwardingPolicy,
    /// JSON Schema of the event payload.
    pub payload_schema: Value,
    /// JSON Schema of the event meta; absent means any object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_schema: Option<Value>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub deprecated: bool,
    /// Other names clients may still send; they resolve to this topic.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The platform bus this topic is published to. Exactly one of `bus` and `stream`: a topic
    /// goes to one place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bus: Option<Bus>,
    /// The platform stream this topic's events are written to (machine ingest, not browser
    /// sessions): `ingest`. Its events arrive in the ingest envelope (`eventfabric_core::ingest`)
    /// through the ingest API, never through the forward API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<Stream>,
    /// Keep an EventBridge Archive of this topic (regulated topics).
    #[serde(default)]
    pub archive: bool,
    /// The platform component that publishes this topic (e.g. `session-pipeline`), whose events
    /// carry the source `eventfabric.<producer>`. Absent: a browser-session topic, forwarded by
    /// the edge API with the source `nia.interface`. A produced topic is never accepted from a
    /// client (`forwardingPolicy` must be `deny`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer: Option<String>,
    /// The EventBridge source a produced topic's events carry, when its producer publishes
    /// under the application's own names (`bayon.coagent.studio`) rather than
    /// `eventfabric.<producer>`. Produced topics only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The EventBridge detail type of a produced topic's events, when it is not the topic's
    /// name (`Content Generated`). Produced topics only; (source, detail type) is unique.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail_type: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryPolicy {
    /// May be dropped under pressure (telemetry).
    BestEffort,
    /// Retried until delivered (the default for business events).
    AtLeastOnce,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BufferPolicy {
    None,
    Last,
    Ring,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PiiLevel {
    None,
    Low,
    High,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ForwardingPolicy {
    Default,
    Sampled,
    Conditional,
    Deny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Bus {
    Session,
    Analytics,
    /// The application bus: the content platform's domain events (realtime system).
    App,
}

impl Bus {
    pub fn as_str(self) -> &'static str {
        match self {
            Bus::Session => "session",
            Bus::Analytics => "analytics",
            Bus::App => "app",
        }
    }
}

/// A platform stream (Kinesis), the other kind of route beside a bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// The ingest stream (machine metrics → stream processor → DynamoDB; Parquet archive).
    Ingest,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Ingest => "ingest",
        }
    }
}

/// Where a topic's events go: one of the registry's two routing mechanisms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    Bus(Bus),
    Stream(Stream),
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Route::Bus(b) => write!(f, "the '{}' bus", b.as_str()),
            Route::Stream(s) => write!(f, "the '{}' stream", s.as_str()),
        }
    }
}

/// Fields to remove or pseudonymise before an event leaves the session, as JSON pointers
/// into the payload (`/user/email`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedactionHint {
    #[serde(default)]
    pub drop: Vec<String>,
    #[serde(default)]
    pub hash: Vec<String>,
}

impl RedactionHint {
    pub fn is_empty(&self) -> bool {
        self.drop.is_empty() && self.hash.is_empty()
    }
}

/// The EventBridge `Source` of every event forwarded from browser sessions.
pub const INTERFACE_SOURCE: &str = "nia.interface";

/// The prefix of a produced topic's source: `eventfabric.<producer>`.
pub const PRODUCER_SOURCE_PREFIX: &str = "eventfabric.";

impl TopicSpec {
    /// The EventBridge `Source` this topic's events carry.
    pub fn source(&self) -> String {
        match (&self.source, &self.producer) {
            (Some(source), _) => source.clone(),
            (None, Some(producer)) => format!("{PRODUCER_SOURCE_PREFIX}{producer}"),
            (None, None) => INTERFACE_SOURCE.to_owned(),
        }
    }

    /// The EventBridge `DetailType` this topic's events carry: the topic's name unless it
    /// names another.
    pub fn detail_type(&self) -> &str {
        self.detail_type.as_deref().unwrap_or(&self.topic)
    }

    /// Where this topic's events go; `None` only for an entry the rules refuse (neither or both
    /// of `bus` and `stream`).
    pub fn route(&self) -> Option<Route> {
        match (self.bus, self.stream) {
            (Some(bus), None) => Some(Route::Bus(bus)),
            (None, Some(stream)) => Some(Route::Stream(stream)),
            _ => None,
        }
    }

    /// Whether events of this topic reach its bus at all: forwarded from sessions, or published
    /// by their producer.
    pub fn published(&self) -> bool {
        self.producer.is_some() || self.forwarding_policy != ForwardingPolicy::Deny
    }

    /// Whether the payload must be redacted before it leaves: `conditional` topics always,
    /// high-PII topics whenever they are forwarded at all.
    pub fn requires_redaction(&self) -> bool {
        match self.forwarding_policy {
            ForwardingPolicy::Deny => false,
            ForwardingPolicy::Conditional => true,
            _ => self.pii_level == PiiLevel::High,
        }
    }
}
