//! What the API answers per event: the wire types of the 202 body. Their names and shapes
//! are part of the API contract (README, "The forward API contract").

use serde::Serialize;

/// Why an event was not forwarded. The wire names are part of the API contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// Not a valid event envelope (missing or mistyped field).
    MalformedEvent,
    /// The same event id appears twice in one request.
    DuplicateEvent,
    /// The session already forwarded an event with this id within the idempotency window (2
    /// minutes): it is not sent again. A client retrying after a lost answer gets this for the
    /// events that did go through.
    AlreadyForwarded,
    UnknownTopic,
    /// The topic's forwarding policy is `deny`.
    TopicDenied,
    /// `schemaVersion` has another major version than the registry.
    UnsupportedSchemaVersion,
    SchemaViolation,
    PayloadTooLarge,
    /// Client timestamp older than the allowed clock skew.
    StaleEvent,
    /// Client timestamp further ahead than the allowed clock skew.
    FutureEvent,
    /// Dropped by the topic's sampling policy (deterministic on the event id).
    SampledOut,
    /// The topic needs a redaction this deployment cannot perform; never sent unredacted.
    RedactionUnavailable,
    /// Accepted by every check but not published (bus refused or retries ran out).
    PublishFailed,
}

impl RejectReason {
    pub const ALL: [RejectReason; 13] = [
        Self::MalformedEvent,
        Self::DuplicateEvent,
        Self::AlreadyForwarded,
        Self::UnknownTopic,
        Self::TopicDenied,
        Self::UnsupportedSchemaVersion,
        Self::SchemaViolation,
        Self::PayloadTooLarge,
        Self::StaleEvent,
        Self::FutureEvent,
        Self::SampledOut,
        Self::RedactionUnavailable,
        Self::PublishFailed,
    ];

    /// The wire name (as serialized).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MalformedEvent => "malformed_event",
            Self::DuplicateEvent => "duplicate_event",
            Self::AlreadyForwarded => "already_forwarded",
            Self::UnknownTopic => "unknown_topic",
            Self::TopicDenied => "topic_denied",
            Self::UnsupportedSchemaVersion => "unsupported_schema_version",
            Self::SchemaViolation => "schema_violation",
            Self::PayloadTooLarge => "payload_too_large",
            Self::StaleEvent => "stale_event",
            Self::FutureEvent => "future_event",
            Self::SampledOut => "sampled_out",
            Self::RedactionUnavailable => "redaction_unavailable",
            Self::PublishFailed => "publish_failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rejection {
    /// The event id, or null when the event had none.
    pub id: Option<String>,
    /// Position of the event in the request, so id-less events can be matched too.
    pub index: usize,
    pub reason: RejectReason,
    /// A human-readable explanation (field, JSON pointer, limit).
    pub detail: String,
}

/// The 202 answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ForwardOutcome {
    pub accepted: Vec<String>,
    pub rejected: Vec<Rejection>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::HashSet;

    #[test]
    fn wire_names_match_the_serialized_form() {
        for reason in RejectReason::ALL {
            assert_eq!(
                serde_json::to_value(reason).unwrap(),
                Value::String(reason.as_str().to_owned())
            );
        }
        let distinct: HashSet<_> = RejectReason::ALL.iter().collect();
        assert_eq!(distinct.len(), RejectReason::ALL.len());
    }
}
