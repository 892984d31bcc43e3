//! The pipeline document: what the summary step makes of a `session.summary.final` event, and
//! what each later step adds under its own key (the state machine's `ResultPath`s):
//!
//! ```text
//! { "summary": Summary, "sentiment": SentimentReport, "compliance": ComplianceReport,
//!   "persistence": Persisted }
//! ```

use serde::{Deserialize, Serialize};

use crate::compliance::ComplianceReport;
use crate::sentiment::SentimentReport;

/// A final conversation summary, normalized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub tenant_id: String,
    pub conversation_id: String,
    /// The summary's version: its client timestamp in epoch milliseconds. A later summary of
    /// the same conversation supersedes an earlier one, whatever order they arrive in.
    pub version: i64,
    /// The `session.summary.final` event this came from (EventBridge id and forwarded id).
    pub source: Source,
    /// The summary text, whitespace-normalized.
    pub text: String,
    pub turns: u64,
    pub participants: Vec<Participant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u64>,
    pub topics: Vec<String>,
    /// The last turns of the conversation, in order.
    pub transcript: Vec<Turn>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    /// The EventBridge event id.
    pub event_id: String,
    /// The id the browser session gave the event (idempotency key of the forward API).
    pub client_event_id: String,
    pub session_id: String,
    /// The schema version the client sent, e.g. `1.1.0`.
    pub schema_version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    pub id: String,
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Turn {
    pub participant_id: String,
    pub text: String,
}

/// Where a persisted summary stands after the persistence step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PersistOutcome {
    /// Written: no item, or an older version, was there.
    Written,
    /// This version was already there (a retried or repeated execution): nothing written.
    AlreadyPersisted,
    /// A newer version was already there: nothing written.
    Superseded,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Persisted {
    pub outcome: PersistOutcome,
    /// The version the store holds after this step.
    pub stored_version: i64,
}

/// The document as a step receives it: each step reads what the steps before it added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    pub summary: Summary,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<SentimentReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compliance: Option<ComplianceReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence: Option<Persisted>,
}
