//! Step 4, `persistence`: the enriched summary, masked, into the summaries table; idempotent.
//!
//! Item keys: `tenantId` (partition) and `conversationId` (sort), so a tenant's summaries are
//! one query. One item per conversation: a write happens only when no item is there or the
//! stored `version` is older (`attribute_not_exists(tenantId) OR version < :version`). A retried
//! or repeated execution of the same summary finds its own version and writes nothing
//! (`already_persisted`); an older summary arriving late finds a newer one (`superseded`).
//!
//! Only masked text is written (the compliance report's); a document the compliance step has
//! not seen is refused.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use eventfabric_core::aws::{SdkFailure, sdk_failure};
use serde::{Deserialize, Serialize};

use crate::compliance::{Finding, Outcome};
use crate::document::{Document, Participant, PersistOutcome, Persisted, Turn};
use crate::error::StepError;
use crate::sentiment::SentimentReport;

/// The item written per conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredSummary {
    pub tenant_id: String,
    pub conversation_id: String,
    pub version: i64,
    pub source_event_id: String,
    pub client_event_id: String,
    pub session_id: String,
    pub schema_version: String,
    /// Masked.
    pub summary: String,
    /// Masked.
    pub transcript: Vec<Turn>,
    pub turns: u64,
    pub participants: Vec<Participant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u64>,
    pub topics: Vec<String>,
    pub sentiment: SentimentReport,
    pub compliance: StoredCompliance,
    /// When this version was written (epoch ms).
    pub persisted_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredCompliance {
    pub outcome: Outcome,
    pub reasons: Vec<String>,
    pub findings: Vec<Finding>,
}

impl StoredSummary {
    /// The item for `document`; refuses a document without its sentiment or compliance report.
    pub fn from_document(document: &Document, now_ms: i64) -> Result<Self, StepError> {
        let sentiment = document.sentiment.clone().ok_or_else(|| {
            StepError::Invalid("sentiment: missing (the sentiment step has not run)".into())
        })?;
        let compliance = document.compliance.as_ref().ok_or_else(|| {
            StepError::Invalid(
                "compliance: missing (only checked, masked summaries are persisted)".into(),
            )
        })?;
        let summary = &document.summary;
        if compliance.masked.transcript.len() != summary.transcript.len() {
            return Err(StepError::Invalid(
                "compliance.masked.transcript: not one entry per transcript turn".into(),
            ));
        }
        let transcript = summary
            .transcript
            .iter()
            .zip(&compliance.masked.transcript)
            .map(|(turn, masked)| Turn {
                participant_id: turn.participant_id.clone(),
                text: masked.clone(),
            })
            .collect();
        Ok(StoredSummary {
            tenant_id: summary.tenant_id.clone(),
            conversation_id: summary.conversation_id.clone(),
            version: summary.version,
            source_event_id: summary.source.event_id.clone(),
            client_event_id: summary.source.client_event_id.clone(),
            session_id: summary.source.session_id.clone(),
            schema_version: summary.source.schema_version.clone(),
            summary: compliance.masked.summary.clone(),
            transcript,
            turns: summary.turns,
            participants: summary.participants.clone(),
            duration_seconds: summary.duration_seconds,
            topics: summary.topics.clone(),
            sentiment,
            compliance: StoredCompliance {
                outcome: compliance.outcome,
                reasons: compliance.reasons.clone(),
                findings: compliance.findings.clone(),
            },
            persisted_at: now_ms,
        })
    }
}

/// The port: write `item` unless the same or a newer version is stored.
#[allow(async_fn_in_trait)]
pub trait SummaryStore {
    async fn put_if_newer(&self, item: &StoredSummary) -> Result<Persisted, StepError>;
}

/// The step: the document in, where the store stands out.
pub async fn step(
    store: &impl SummaryStore,
    document: &Document,
    now_ms: i64,
) -> Result<Persisted, StepError> {
    let item = StoredSummary::from_document(document, now_ms)?;
    store.put_if_newer(&item).await
}

fn outcome_against(stored_version: i64, version: i64) -> Persisted {
    Persisted {
        outcome: if stored_version == version {
            PersistOutcome::AlreadyPersisted
        } else {
            PersistOutcome::Superseded
        },
        stored_version,
    }
}

/// The DynamoDB adapter.
#[derive(Debug, Clone)]
pub struct DynamoSummaries {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoSummaries {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

impl DynamoSummaries {
    /// The stored summary of one conversation (replay reads it; the steps never do).
    pub async fn get_item(
        &self,
        tenant_id: &str,
        conversation_id: &str,
    ) -> Result<Option<StoredSummary>, String> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("tenantId", AttributeValue::S(tenant_id.to_owned()))
            .key(
                "conversationId",
                AttributeValue::S(conversation_id.to_owned()),
            )
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "GetItem {}: {}",
                    self.table,
                    aws_sdk_dynamodb::error::DisplayErrorContext(e)
                )
            })?;
        out.item
            .map(|item| serde_dynamo::from_item(item).map_err(|e| format!("stored item: {e}")))
            .transpose()
    }
}

impl SummaryStore for DynamoSummaries {
    async fn put_if_newer(&self, item: &StoredSummary) -> Result<Persisted, StepError> {
        let attributes: HashMap<String, AttributeValue> = serde_dynamo::to_item(item)
            .map_err(|e| StepError::Invalid(format!("item: cannot be encoded: {e}")))?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(attributes))
            .condition_expression("attribute_not_exists(tenantId) OR version < :version")
            .expression_attribute_values(":version", AttributeValue::N(item.version.to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let error = match result {
            Ok(_) => {
                return Ok(Persisted {
                    outcome: PersistOutcome::Written,
                    stored_version: item.version,
                });
            }
            Err(error) => error,
        };
        if let Some(
            aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(
                failed,
            ),
        ) = error.as_service_error()
        {
            let stored = failed
                .item()
                .and_then(|old| old.get("version"))
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<i64>().ok())
                .ok_or_else(|| {
                    StepError::StoreRefused(
                        "the condition failed but the stored item has no readable version".into(),
                    )
                })?;
            return Ok(outcome_against(stored, item.version));
        }
        Err(match sdk_failure(&error) {
            SdkFailure::Transient(detail) => {
                StepError::StoreUnavailable(format!("PutItem {}: {detail}", self.table))
            }
            SdkFailure::Refused(detail) => {
                StepError::StoreRefused(format!("PutItem {}: {detail}", self.table))
            }
        })
    }
}

/// The in-memory adapter, for tests and local runs. `fail_next` makes the next calls fail
/// with the given error, to exercise retries and the failure path.
#[derive(Debug, Default)]
pub struct MemorySummaries {
    items: Mutex<HashMap<(String, String), StoredSummary>>,
    failures: Mutex<Vec<StepError>>,
    writes: Mutex<usize>,
}

impl MemorySummaries {
    pub fn fail_next(&self, errors: impl IntoIterator<Item = StepError>) {
        let mut failures = self.failures.lock().expect("failures");
        failures.extend(errors);
    }

    pub fn get(&self, tenant_id: &str, conversation_id: &str) -> Option<StoredSummary> {
        self.items
            .lock()
            .expect("items")
            .get(&(tenant_id.to_owned(), conversation_id.to_owned()))
            .cloned()
    }

    /// Successful writes so far (conditional failures are not writes).
    pub fn writes(&self) -> usize {
        *self.writes.lock().expect("writes")
    }
}

impl SummaryStore for MemorySummaries {
    async fn put_if_newer(&self, item: &StoredSummary) -> Result<Persisted, StepError> {
        {
            let mut failures = self.failures.lock().expect("failures");
            if !failures.is_empty() {
                return Err(failures.remove(0));
            }
        }
        let mut items = self.items.lock().expect("items");
        let key = (item.tenant_id.clone(), item.conversation_id.clone());
        if let Some(stored) = items.get(&key).filter(|s| s.version >= item.version) {
            return Ok(outcome_against(stored.version, item.version));
        }
        items.insert(key, item.clone());
        *self.writes.lock().expect("writes") += 1;
        Ok(Persisted {
            outcome: PersistOutcome::Written,
            stored_version: item.version,
        })
    }
}
