//! One app-bus event through a domain processor: checked against the registry, its state
//! changes applied once ([`crate::store`]), then its follow-ups published. A failure anywhere
//! is the invocation's error: EventBridge retries it (the target's retry policy) and, past
//! its attempts or age, puts it in the target's alarmed DLQ. A retried event whose changes
//! were applied finds its marker and changes nothing, but its follow-ups go out again with
//! the same ids: a crash between the write and the publish loses none.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use eventfabric_core::publish::Publisher;
use eventfabric_core::{Deadline, EventSink};
use serde_json::Value;

use crate::domain::{self, Domain};
use crate::inbound::{Refused, Topics};
use crate::store::{AppStore, Applied, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// Malformed or misrouted: retries cannot help; the event ends in the DLQ with its reasons.
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{failed} of {total} follow-up events not published: {first}")]
    FollowUps {
        failed: usize,
        total: usize,
        first: String,
    },
}

/// What one event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    pub topic: &'static str,
    pub applied: Applied,
    pub writes: usize,
    pub follow_ups: usize,
}

pub struct Processor<St, S> {
    domain: Domain,
    topics: Topics,
    store: St,
    publisher: Publisher<S>,
}

impl<St: AppStore, S: EventSink> Processor<St, S> {
    pub fn new(domain: Domain, topics: Topics, store: St, publisher: Publisher<S>) -> Self {
        Self {
            domain,
            topics,
            store,
            publisher,
        }
    }

    pub fn store(&self) -> &St {
        &self.store
    }

    pub fn publisher(&self) -> &Publisher<S> {
        &self.publisher
    }

    pub async fn process(
        &self,
        event: &EventBridgeEvent<Value>,
        now_ms: i64,
        deadline: Deadline,
    ) -> Result<Processed, ProcessError> {
        let inbound = self.topics.check(event)?;
        let effects = domain::effects(self.domain, &inbound, &self.publisher)?;
        let applied = self
            .store
            .apply(&inbound.id, &effects.writes, now_ms)
            .await?;
        let outcomes = self.publisher.publish(&effects.follow_ups, deadline).await;
        let failed: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
        if let Some(first) = failed.first() {
            return Err(ProcessError::FollowUps {
                failed: failed.len(),
                total: outcomes.len(),
                first: first.to_string(),
            });
        }
        Ok(Processed {
            topic: inbound.topic,
            applied,
            writes: effects.writes.len(),
            follow_ups: effects.follow_ups.len(),
        })
    }
}
