//! The publishing port and its in-memory adapter.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Mutex;

use crate::bus::BusEntry;
use crate::deadline::Deadline;

/// Why one entry was not published. Every entry gets exactly one outcome: nothing is lost
/// silently.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The bus refused the entry for a reason a retry cannot fix.
    #[error("rejected by the bus: {code}: {message}")]
    Rejected { code: String, message: String },
    /// Retryable failures persisted through every attempt.
    #[error("not published after {attempts} attempts: {code}: {message}")]
    RetriesExhausted {
        attempts: u32,
        code: String,
        message: String,
    },
    /// The caller's deadline came before the entry was published; it may or may not have
    /// reached the bus when its last call was cut off (delivery is at least once).
    #[error("not published before the deadline, after {attempts} attempts: {code}: {message}")]
    DeadlineReached {
        attempts: u32,
        code: String,
        message: String,
    },
    /// Larger than one PutEvents call can carry.
    #[error("entry of {size} bytes exceeds the 256 KB PutEvents limit")]
    TooLarge { size: usize },
}

/// Publishes entries to buses. Returns one outcome per entry, in input order.
pub trait EventSink: Send + Sync {
    /// Entries are lent, not given: the caller keeps them (and their ids) for the answer.
    /// Every outcome is known by `deadline`: no retry starts that could not finish before it.
    fn publish(
        &self,
        entries: &[BusEntry<'_>],
        deadline: Deadline,
    ) -> impl Future<Output = Vec<Result<(), PublishError>>> + Send;
}

/// Keeps published entries in memory; for tests and local runs. Entries whose detail type is
/// listed in `fail_detail_types` are refused, to exercise failure paths.
#[derive(Debug, Default)]
pub struct MemorySink {
    published: Mutex<Vec<BusEntry<'static>>>,
    fail_detail_types: HashSet<String>,
}

impl MemorySink {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn failing_for(detail_types: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            fail_detail_types: detail_types.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    pub fn published(&self) -> Vec<BusEntry<'static>> {
        self.published.lock().expect("memory sink lock").clone()
    }

    /// Returns what was published so far and forgets it.
    pub fn take(&self) -> Vec<BusEntry<'static>> {
        std::mem::take(&mut *self.published.lock().expect("memory sink lock"))
    }
}

impl EventSink for MemorySink {
    async fn publish(
        &self,
        entries: &[BusEntry<'_>],
        _deadline: Deadline,
    ) -> Vec<Result<(), PublishError>> {
        let mut published = self.published.lock().expect("memory sink lock");
        entries
            .iter()
            .map(|e| {
                if self.fail_detail_types.contains(&*e.detail_type) {
                    Err(PublishError::RetriesExhausted {
                        attempts: 1,
                        code: "InternalFailure".into(),
                        message: "injected failure".into(),
                    })
                } else {
                    published.push(e.clone().into_owned());
                    Ok(())
                }
            })
            .collect()
    }
}
