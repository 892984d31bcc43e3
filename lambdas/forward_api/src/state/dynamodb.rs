//! The DynamoDB adapter.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;
use eventfabric_core::aws::SdkFailure;
use serde::Serialize;

use super::{
    Claim, IDEMPOTENCY_TTL_SECONDS, QUOTA_WINDOW_SECONDS, QuotaDecision, SessionState, StateError,
    claim_key, quota_key, retry_after, window_start,
};

/// The DynamoDB adapter: one table, partition key `pk` (string), TTL attribute `expiresAt`
/// (epoch seconds).
#[derive(Debug, Clone)]
pub struct DynamoState {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// An idempotency item, as stored.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClaimItem<'a> {
    pk: &'a str,
    expires_at: i64,
    /// Present while pending: until when the claim blocks others.
    #[serde(skip_serializing_if = "Option::is_none")]
    lease_until: Option<i64>,
}

impl DynamoState {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn is_condition_failure<E, R>(error: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    error
        .as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

fn state_error<E, R>(error: SdkError<E, R>) -> StateError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match eventfabric_core::aws::sdk_failure(&error) {
        SdkFailure::Transient(detail) => StateError::Unavailable(detail),
        SdkFailure::Refused(detail) => StateError::Refused(detail),
    }
}

impl SessionState for DynamoState {
    async fn consume_quota(
        &self,
        session_id: &str,
        events: u32,
        limit: u32,
        now_ms: i64,
    ) -> Result<QuotaDecision, StateError> {
        let exceeded = QuotaDecision::Exceeded {
            retry_after_seconds: retry_after(now_ms),
        };
        let Some(room) = limit.checked_sub(events) else {
            return Ok(exceeded);
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(quota_key(session_id, now_ms)))
            .update_expression("ADD #events :n SET #expiresAt = :expires")
            .condition_expression("attribute_not_exists(#events) OR #events <= :room")
            .expression_attribute_names("#events", "events")
            .expression_attribute_names("#expiresAt", "expiresAt")
            .expression_attribute_values(":n", AttributeValue::N(events.to_string()))
            .expression_attribute_values(":room", AttributeValue::N(room.to_string()))
            .expression_attribute_values(
                ":expires",
                AttributeValue::N((window_start(now_ms) + QUOTA_WINDOW_SECONDS).to_string()),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(QuotaDecision::Allowed),
            Err(e) if is_condition_failure(&e) => Ok(exceeded),
            Err(e) => Err(state_error(e)),
        }
    }

    async fn claim(
        &self,
        session_id: &str,
        ids: &[&str],
        lease_seconds: i64,
        now_ms: i64,
    ) -> Vec<Result<Claim, StateError>> {
        let now_s = now_ms.div_euclid(1000);
        // Conditional puts cannot be batched (BatchWriteItem has no conditions, and one
        // failed condition cancels a whole TransactWriteItems): one call per event, concurrently.
        let calls = ids.iter().map(|id| async move {
            let key = claim_key(session_id, id);
            let item = serde_dynamo::to_item(ClaimItem {
                pk: &key,
                expires_at: now_s + IDEMPOTENCY_TTL_SECONDS,
                lease_until: Some(now_s + lease_seconds),
            })
            .map_err(|e| StateError::Refused(format!("cannot encode the idempotency item: {e}")))?;
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(
                    "attribute_not_exists(pk) OR #expiresAt <= :now \
                     OR (attribute_exists(#leaseUntil) AND #leaseUntil <= :now)",
                )
                .expression_attribute_names("#expiresAt", "expiresAt")
                .expression_attribute_names("#leaseUntil", "leaseUntil")
                .expression_attribute_values(":now", AttributeValue::N(now_s.to_string()))
                .send()
                .await;
            match result {
                Ok(_) => Ok(Claim::New),
                Err(e) if is_condition_failure(&e) => Ok(Claim::Duplicate),
                Err(e) => Err(state_error(e)),
            }
        });
        futures_util::future::join_all(calls).await
    }

    async fn confirm(&self, session_id: &str, ids: &[&str], now_ms: i64) -> Result<(), StateError> {
        use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
        let now_s = now_ms.div_euclid(1000);
        // Unconditional puts of the confirmed item (no lease), 25 per BatchWriteItem call;
        // unprocessed items are sent again, a few times.
        for chunk in ids.chunks(25) {
            let mut requests = chunk
                .iter()
                .map(|id| {
                    let key = claim_key(session_id, id);
                    let item = serde_dynamo::to_item(ClaimItem {
                        pk: &key,
                        expires_at: now_s + IDEMPOTENCY_TTL_SECONDS,
                        lease_until: None,
                    })
                    .map_err(|e| {
                        StateError::Refused(format!("cannot encode the idempotency item: {e}"))
                    })?;
                    let put = PutRequest::builder()
                        .set_item(Some(item))
                        .build()
                        .map_err(|e| StateError::Refused(e.to_string()))?;
                    Ok(WriteRequest::builder().put_request(put).build())
                })
                .collect::<Result<Vec<_>, StateError>>()?;
            for attempt in 0..3 {
                if requests.is_empty() {
                    break;
                }
                if attempt > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(state_error)?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
            }
            if !requests.is_empty() {
                return Err(StateError::Unavailable(format!(
                    "{} idempotency keys left unconfirmed after 3 attempts",
                    requests.len()
                )));
            }
        }
        Ok(())
    }

    async fn release(&self, session_id: &str, ids: &[&str]) -> Result<(), StateError> {
        let calls = ids.iter().map(|id| async move {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(claim_key(session_id, id)))
                .send()
                .await
                .map(|_| ())
                .map_err(state_error)
        });
        futures_util::future::join_all(calls)
            .await
            .into_iter()
            .collect()
    }
}
