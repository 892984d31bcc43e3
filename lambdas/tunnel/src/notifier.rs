//! The notifier on the pending requests table's stream. The event source mapping filters to
//! MODIFY records whose new status is `completed`; the same check runs here, with the old
//! status: a record is a completion only when the old image was not `completed` (a repeated
//! answer changes nothing, and a replayed record publishes the same event id again).
//!
//! For each completion: `HttpResponseReady` on the app bus (`source http-tunnel.response`, id
//! derived from the request id, so a retry republishes the same id), and a push
//! `{"type": "response_ready", "requestId"}` to the waiter's connection when the item names
//! one. A waiter that is gone (410) is not a failure: its caller already had a 504 or a 502,
//! and the answer stays readable until the TTL. A publish or push that fails for now fails the
//! record (partial batch response), and Lambda delivers the batch again from it.

use aws_lambda_events::dynamodb::Event;
use eventfabric_core::Deadline;
use eventfabric_core::batch::{BatchOutcomes, Delivery, Outcome};
use eventfabric_core::publish::{Publisher, follow_up_id};
use eventfabric_core::sink::EventSink;
use eventfabric_topics::{Topic, TunnelResponseReadyPayload};
use eventfabric_websocket::push::{ConnectionApi, PostError};
use metrics::counter;

use crate::pending::{Pending, Status, StoredBody};

/// What one batch did.
#[derive(Debug)]
pub struct NotifyReport {
    pub outcomes: BatchOutcomes,
    pub completions: usize,
    pub published: usize,
    pub woken: usize,
    pub waiter_gone: usize,
    /// Records that are not completions.
    pub skipped: usize,
}

pub struct Notifier<S, A> {
    pub publisher: Publisher<S>,
    pub api: A,
}

fn image(item: &serde_dynamo::Item) -> Option<Pending> {
    if item.is_empty() {
        return None;
    }
    serde_dynamo::from_item(item.clone()).ok()
}

fn payload(p: &Pending) -> Result<TunnelResponseReadyPayload, String> {
    let response = p
        .response
        .as_ref()
        .ok_or("a completed item without a response")?;
    let completed_ms = p.completed_at.unwrap_or(p.created_at);
    Ok(TunnelResponseReadyPayload {
        request_id: p
            .request_id
            .parse()
            .map_err(|e| format!("requestId: {e}"))?,
        agent_id: p.agent_id.parse().map_err(|e| format!("agentId: {e}"))?,
        status: i64::from(response.status),
        completed_at: eventfabric_core::envelope::Timestamp(completed_ms)
            .to_rfc3339()
            .parse()
            .map_err(|e| format!("completedAt: {e}"))?,
        body_bytes: response.body.bytes(),
        body_stored: match response.body {
            StoredBody::Inline { .. } => "inline".parse(),
            StoredBody::S3 { .. } => "s3".parse(),
        }
        .map_err(|e| format!("bodyStored: {e}"))?,
    })
}

impl<S: EventSink, A: ConnectionApi> Notifier<S, A> {
    pub async fn handle(&self, event: &Event, deadline: Deadline) -> NotifyReport {
        let ids = event
            .records
            .iter()
            .map(|r| r.change.sequence_number.clone())
            .collect();
        let mut report = NotifyReport {
            outcomes: BatchOutcomes::new(Delivery::Ordered, ids),
            completions: 0,
            published: 0,
            woken: 0,
            waiter_gone: 0,
            skipped: 0,
        };
        for (index, record) in event.records.iter().enumerate() {
            let new = image(&record.change.new_image);
            let old = image(&record.change.old_image);
            let completion = record.event_name == "MODIFY"
                && new.as_ref().is_some_and(|n| n.status == Status::Completed)
                && old.as_ref().is_none_or(|o| o.status != Status::Completed);
            let (true, Some(item)) = (completion, new) else {
                report.skipped += 1;
                report.outcomes.set(index, Outcome::Done);
                continue;
            };
            report.completions += 1;
            let outcome = self.completed(&item, deadline, &mut report).await;
            if let Outcome::Retry(reason) = &outcome {
                tracing::warn!(request = %item.request_id, %reason, "completion not handled; Lambda delivers it again");
            }
            report.outcomes.set(index, outcome);
        }
        counter!("TunnelCompletions").increment(report.completions as u64);
        report
    }

    async fn completed(
        &self,
        item: &Pending,
        deadline: Deadline,
        report: &mut NotifyReport,
    ) -> Outcome {
        // Wake first: the caller is waiting; the event is for consumers that are not.
        if let Some(waiter) = &item.waiter {
            match self
                .api
                .post(waiter, &crate::agent::wake_up(&item.request_id))
                .await
            {
                Ok(()) => report.woken += 1,
                Err(PostError::Gone) => {
                    report.waiter_gone += 1;
                    counter!("TunnelWaiterGone").increment(1);
                }
                Err(e) => return Outcome::Retry(format!("wake-up push: {e}")),
            }
        }
        let payload = match payload(item) {
            Ok(p) => p,
            Err(e) => {
                // Not retryable: the item itself is wrong. Logged; the caller was woken.
                tracing::error!(request = %item.request_id, error = %e, "HttpResponseReady not published: the item is malformed");
                return Outcome::Done;
            }
        };
        let id = follow_up_id(&item.request_id, TunnelResponseReadyPayload::TOPIC, "");
        let occurred = item.completed_at.unwrap_or(item.created_at);
        match self
            .publisher
            .publish_one(id, occurred, Some(&item.request_id), &payload, deadline)
            .await
        {
            Ok(()) => {
                report.published += 1;
                Outcome::Done
            }
            Err(e) => Outcome::Retry(format!("HttpResponseReady: {e}")),
        }
    }
}
