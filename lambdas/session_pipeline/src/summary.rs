//! Step 1, `summary`: the `session.summary.final` event (as EventBridge hands it to the state
//! machine) becomes the pipeline's [`Document`]. The payload is read into the type generated
//! from the registry schema; what no schema can say is checked here. Anything that cannot be a
//! summary is an [`StepError::Invalid`] naming the field, which the state machine catches.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use eventfabric_core::text::echo;
use eventfabric_topics::SessionSummaryFinalPayload;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::document::{Document, Participant, Source, Summary, Turn};
use crate::error::{StepError, shape_error};

/// The registry topic this step reads.
pub const TOPIC: &str = "session.summary.final";
/// The major version of that topic's payload this code reads.
pub const MAJOR: u64 = 1;

/// The forwarded detail (`eventfabric_core::ForwardedDetail`), as far as this step reads it.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct Detail {
    id: String,
    topic: String,
    schema_version: String,
    session_id: String,
    client_ts: String,
    payload: Value,
}

/// Normalizes one `session.summary.final` event.
pub fn normalize(event: Value) -> Result<Document, StepError> {
    let event: EventBridgeEvent<Detail> = deserialize("event", event)?;
    if event.detail_type != TOPIC || event.detail.topic != TOPIC {
        return Err(StepError::Invalid(format!(
            "event: detail-type {} is not {TOPIC}",
            echo(&event.detail_type)
        )));
    }
    let detail = event.detail;
    let major = detail
        .schema_version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u64>().ok());
    if major != Some(MAJOR) {
        return Err(StepError::Invalid(format!(
            "detail.schemaVersion: {} is not a {MAJOR}.x version of {TOPIC}",
            echo(&detail.schema_version)
        )));
    }
    let version = OffsetDateTime::parse(&detail.client_ts, &Rfc3339)
        .map_err(|_| StepError::Invalid("detail.clientTs: not an RFC 3339 timestamp".into()))?;
    let version = i64::try_from(version.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| StepError::Invalid("detail.clientTs: out of range".into()))?;
    let payload: SessionSummaryFinalPayload = deserialize("detail.payload", detail.payload)?;

    let text = normalize_space(&payload.summary);
    if text.is_empty() {
        return Err(StepError::Invalid(
            "detail.payload.summary: empty (nothing to analyze)".into(),
        ));
    }
    let participants: Vec<Participant> = payload
        .participants
        .iter()
        .map(|p| Participant {
            id: p.id.as_str().to_owned(),
            role: p.role.to_string(),
        })
        .collect();
    for (i, p) in participants.iter().enumerate() {
        if participants[..i].iter().any(|q| q.id == p.id) {
            return Err(StepError::Invalid(format!(
                "detail.payload.participants[{i}].id: listed twice"
            )));
        }
    }
    let mut transcript = Vec::with_capacity(payload.transcript.len());
    for (i, turn) in payload.transcript.iter().enumerate() {
        let participant_id = turn.participant_id.as_str().to_owned();
        if !participants.is_empty() && !participants.iter().any(|p| p.id == participant_id) {
            return Err(StepError::Invalid(format!(
                "detail.payload.transcript[{i}].participantId: not one of the participants"
            )));
        }
        transcript.push(Turn {
            participant_id,
            text: normalize_space(&turn.text),
        });
    }
    Ok(Document {
        summary: Summary {
            tenant_id: payload.tenant_id.as_str().to_owned(),
            conversation_id: payload.conversation_id.as_str().to_owned(),
            version,
            source: Source {
                event_id: event.id.unwrap_or_default(),
                client_event_id: detail.id,
                session_id: detail.session_id,
                schema_version: detail.schema_version,
            },
            text,
            turns: payload.turns,
            participants,
            duration_seconds: payload.duration_seconds.and_then(|d| u64::try_from(d).ok()),
            topics: payload
                .topics
                .iter()
                .map(|t| t.as_str().to_owned())
                .collect(),
            transcript,
        },
        sentiment: None,
        compliance: None,
        persistence: None,
    })
}

fn deserialize<T: serde::de::DeserializeOwned>(what: &str, value: Value) -> Result<T, StepError> {
    serde_path_to_error::deserialize(value).map_err(|e| shape_error(what, &e))
}

/// Runs of whitespace (including line breaks) become one space; ends trimmed.
fn normalize_space(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
