//! Partial batch responses for event source mappings (Kinesis, DynamoDB streams, SQS): the Rust
//! counterpart of Powertools' batch utility, on `aws_lambda_events`' response types.
//!
//! A processor gives every record of a batch one [`Outcome`] and gets back the response Lambda
//! reads with `FunctionResponseTypes: ReportBatchItemFailures`:
//!
//! - **Done**: processed, or deliberately set aside (a malformed record published to a
//!   dead-letter topic). Lambda may checkpoint past it.
//! - **Retry**: a transient failure (throttling, a dependency down). Lambda delivers it again.
//!
//! **The checkpoint rule.** Stream sources (Kinesis, DynamoDB streams) are ordered per shard:
//! Lambda checkpoints just before the lowest reported sequence number and delivers everything
//! from there again, successes after it included. So for them the response names only the
//! *first* record to retry; the records after it come back anyway, and a processor of a stream
//! must be idempotent. SQS (standard queues) is unordered: every record to retry is named, and
//! only those come back. A record without an identifier that needs a retry fails the whole
//! batch (Lambda's own rule for an empty identifier), never silently passes.
//!
//! A record the processor never gave an outcome (a bug, or a handler cut short) counts as
//! Retry: nothing is checkpointed that was not handled.

use aws_lambda_events::streams::{
    DynamoDbBatchItemFailure, DynamoDbEventResponse, KinesisEventResponse, SqsBatchItemFailure,
    SqsEventResponse,
};

/// What happened to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Processed, or set aside where someone will see it (not to be delivered again).
    Done,
    /// Failed for now: deliver it again. The reason is logged.
    Retry(String),
}

/// How the source delivers: see the module's checkpoint rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Kinesis and DynamoDB streams: ordered per shard, checkpointed by sequence number.
    Ordered,
    /// SQS standard queues: each message on its own.
    Unordered,
}

/// The outcomes of one batch, by position, with each record's identifier (Kinesis and DynamoDB
/// streams: the sequence number; SQS: the message id).
#[derive(Debug, Clone)]
pub struct BatchOutcomes {
    delivery: Delivery,
    ids: Vec<Option<String>>,
    outcomes: Vec<Option<Outcome>>,
}

/// Counts of a batch's outcomes, for logs and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchCounts {
    pub done: usize,
    pub retried: usize,
    /// Records left without an outcome (counted as retried too).
    pub unset: usize,
}

impl BatchOutcomes {
    /// A batch of records with these identifiers, in delivery order, none handled yet.
    pub fn new(delivery: Delivery, ids: Vec<Option<String>>) -> Self {
        let outcomes = vec![None; ids.len()];
        Self {
            delivery,
            ids,
            outcomes,
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Sets record `index`'s outcome. A Retry is never downgraded to Done: a record that
    /// failed one step of its processing is retried whatever the later steps did.
    pub fn set(&mut self, index: usize, outcome: Outcome) {
        if let Some(slot) = self.outcomes.get_mut(index) {
            if !matches!(slot, Some(Outcome::Retry(_))) {
                *slot = Some(outcome);
            }
        }
    }

    pub fn outcome(&self, index: usize) -> Option<&Outcome> {
        self.outcomes.get(index).and_then(Option::as_ref)
    }

    pub fn counts(&self) -> BatchCounts {
        let mut c = BatchCounts::default();
        for o in &self.outcomes {
            match o {
                Some(Outcome::Done) => c.done += 1,
                Some(Outcome::Retry(_)) => c.retried += 1,
                None => {
                    c.retried += 1;
                    c.unset += 1;
                }
            }
        }
        c
    }

    /// The identifiers to report, by the checkpoint rule. An identifier that is missing or
    /// empty is reported as `""`, which makes Lambda retry the whole batch.
    pub fn item_failures(&self) -> Vec<String> {
        let mut failed = self
            .outcomes
            .iter()
            .zip(&self.ids)
            .filter(|(o, _)| !matches!(o, Some(Outcome::Done)))
            .map(|(_, id)| id.clone().unwrap_or_default());
        match self.delivery {
            Delivery::Ordered => failed.next().into_iter().collect(),
            Delivery::Unordered => failed.collect(),
        }
    }

    pub fn kinesis_response(&self) -> KinesisEventResponse {
        let mut response = KinesisEventResponse::default();
        response.set_failures(self.item_failures());
        response
    }

    pub fn dynamodb_response(&self) -> DynamoDbEventResponse {
        let mut response = DynamoDbEventResponse::default();
        response.batch_item_failures = self
            .item_failures()
            .into_iter()
            .map(|id| {
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = Some(id);
                failure
            })
            .collect();
        response
    }

    pub fn sqs_response(&self) -> SqsEventResponse {
        let mut response = SqsEventResponse::default();
        response.batch_item_failures = self
            .item_failures()
            .into_iter()
            .map(|id| {
                let mut failure = SqsBatchItemFailure::default();
                failure.item_identifier = Some(id);
                failure
            })
            .collect();
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<Option<String>> {
        (1..=n).map(|i| Some(format!("seq-{i}"))).collect()
    }

    #[test]
    fn ordered_sources_report_only_the_first_record_to_retry() {
        let mut batch = BatchOutcomes::new(Delivery::Ordered, ids(5));
        batch.set(0, Outcome::Done);
        batch.set(1, Outcome::Done);
        batch.set(2, Outcome::Retry("throttled".into()));
        batch.set(3, Outcome::Done);
        batch.set(4, Outcome::Retry("throttled".into()));
        assert_eq!(batch.item_failures(), ["seq-3"]);
        let response = batch.kinesis_response();
        assert_eq!(response.batch_item_failures.len(), 1);
        assert_eq!(
            response.batch_item_failures[0].item_identifier.as_deref(),
            Some("seq-3")
        );
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            serde_json::json!({"batchItemFailures": [{"itemIdentifier": "seq-3"}]})
        );
    }

    #[test]
    fn unordered_sources_report_every_record_to_retry() {
        let mut batch = BatchOutcomes::new(Delivery::Unordered, ids(4));
        batch.set(0, Outcome::Retry("x".into()));
        batch.set(1, Outcome::Done);
        batch.set(2, Outcome::Retry("y".into()));
        batch.set(3, Outcome::Done);
        let ids: Vec<String> = batch
            .sqs_response()
            .batch_item_failures
            .into_iter()
            .filter_map(|f| f.item_identifier)
            .collect();
        assert_eq!(ids, ["seq-1", "seq-3"]);
    }

    #[test]
    fn an_all_done_batch_reports_nothing() {
        let mut batch = BatchOutcomes::new(Delivery::Ordered, ids(3));
        for i in 0..3 {
            batch.set(i, Outcome::Done);
        }
        assert!(batch.item_failures().is_empty());
        assert!(batch.dynamodb_response().batch_item_failures.is_empty());
        assert_eq!(
            batch.counts(),
            BatchCounts {
                done: 3,
                retried: 0,
                unset: 0
            }
        );
    }

    #[test]
    fn a_record_without_an_outcome_is_retried_not_checkpointed() {
        let mut batch = BatchOutcomes::new(Delivery::Ordered, ids(3));
        batch.set(0, Outcome::Done);
        batch.set(2, Outcome::Done);
        assert_eq!(batch.item_failures(), ["seq-2"]);
        assert_eq!(batch.counts().unset, 1);
    }

    #[test]
    fn a_retry_is_never_downgraded_to_done() {
        let mut batch = BatchOutcomes::new(Delivery::Unordered, ids(1));
        batch.set(0, Outcome::Retry("store down".into()));
        batch.set(0, Outcome::Done);
        assert_eq!(batch.outcome(0), Some(&Outcome::Retry("store down".into())));
    }

    #[test]
    fn a_failed_record_without_an_id_fails_the_whole_batch() {
        let mut batch = BatchOutcomes::new(Delivery::Ordered, vec![Some("a".into()), None]);
        batch.set(0, Outcome::Done);
        batch.set(1, Outcome::Retry("x".into()));
        // Lambda treats an empty identifier as a failure of the whole batch.
        assert_eq!(batch.item_failures(), [""]);
    }
}
