//! Waiting for the agent's answer, two ways.
//!
//! **Event-driven** (the crate README has the design): the invocation holds a WebSocket
//! connection to the tunnel's API (one per execution environment, reused across invocations);
//! its id is written into the pending item (`waiter`) before the agent sees the request, so the
//! notifier knows where to push. A slot for the request is registered in [`Wakeups`] before the
//! item is written, so a push cannot come before there is somewhere to put it. On the push the
//! item is read once; without one, it is read once more at the deadline (the safety net for a
//! lost push).
//!
//! **Polling** (the path that stays behind the flag): a strongly consistent read after 50 ms,
//! then each wait 1.5 times longer up to 500 ms, until the answer or the deadline.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::pending::{Pending, PendingStore, Status, StoreError};

/// Slots of the requests this environment waits for, by request id.
#[derive(Debug, Default)]
pub struct Wakeups {
    slots: Mutex<HashMap<String, oneshot::Sender<()>>>,
}

/// What a push found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    Woken,
    /// Nobody waits for it here (timed out, answered already, a duplicate push).
    NoWaiter,
}

impl Wakeups {
    pub fn new() -> Self {
        Self::default()
    }

    /// A slot for `request_id`; dropping the receiver frees it.
    pub fn register(&self, request_id: &str) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.slots
            .lock()
            .expect("lock")
            .insert(request_id.to_owned(), tx);
        rx
    }

    /// A push for `request_id` arrived.
    pub fn wake(&self, request_id: &str) -> Wake {
        let slot = self.slots.lock().expect("lock").remove(request_id);
        match slot.map(|tx| tx.send(())) {
            Some(Ok(())) => Wake::Woken,
            _ => Wake::NoWaiter,
        }
    }

    pub fn forget(&self, request_id: &str) {
        self.slots.lock().expect("lock").remove(request_id);
    }

    pub fn waiting(&self) -> usize {
        self.slots.lock().expect("lock").len()
    }
}

/// The waiting side's connection to the tunnel's WebSocket API.
pub trait WaiterChannel: Send + Sync {
    /// The id of a live connection (connecting, or reconnecting, when there is none).
    fn connection_id(&self) -> impl Future<Output = Result<String, String>> + Send;
    /// Where the connection's pushes are delivered.
    fn wakeups(&self) -> &Wakeups;
}

/// A waiter connection in memory: a fixed id; pushes arrive through [`Wakeups::wake`].
#[derive(Debug, Default)]
pub struct MemoryWaiter {
    pub id: String,
    pub wakeups: Wakeups,
    pub broken: Mutex<bool>,
}

impl MemoryWaiter {
    pub fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            ..Self::default()
        }
    }
}

impl WaiterChannel for MemoryWaiter {
    async fn connection_id(&self) -> Result<String, String> {
        if *self.broken.lock().expect("lock") {
            return Err("cannot connect to the tunnel WebSocket API".into());
        }
        Ok(self.id.clone())
    }

    fn wakeups(&self) -> &Wakeups {
        &self.wakeups
    }
}

/// How a wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waited {
    Answered(Box<Pending>),
    /// The deadline passed without an answer.
    TimedOut,
    /// The item is gone (expired, deleted).
    Missing,
    Failed(StoreError),
}

/// What a wait cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WaitStats {
    pub reads: u32,
    pub pushes: u32,
}

fn answered(item: Option<Pending>) -> Option<Waited> {
    match item {
        None => Some(Waited::Missing),
        Some(p) if p.status == Status::Completed => Some(Waited::Answered(Box::new(p))),
        Some(_) => None,
    }
}

/// Polling settings.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub factor: f64,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            first: Duration::from_millis(50),
            factor: 1.5,
            max: Duration::from_millis(500),
        }
    }
}

/// Reads the item with backoff until it is answered or `deadline` passes.
pub async fn poll<P: PendingStore>(
    store: &P,
    request_id: &str,
    deadline: Instant,
    backoff: Backoff,
) -> (Waited, WaitStats) {
    let mut stats = WaitStats::default();
    let mut delay = backoff.first;
    loop {
        let now = Instant::now();
        if now >= deadline {
            return (Waited::TimedOut, stats);
        }
        tokio::time::sleep(delay.min(deadline - now)).await;
        stats.reads += 1;
        match store.get(request_id).await {
            Ok(item) => {
                if let Some(done) = answered(item) {
                    return (done, stats);
                }
            }
            Err(e) if Instant::now() >= deadline => return (Waited::Failed(e), stats),
            Err(e) => tracing::warn!(error = %e, "poll read failed; polling on"),
        }
        delay = delay.mul_f64(backoff.factor).min(backoff.max);
    }
}

/// Waits for the push (then one read), or the deadline (then one final read).
pub async fn until_pushed<P: PendingStore>(
    store: &P,
    request_id: &str,
    mut slot: oneshot::Receiver<()>,
    wakeups: &Wakeups,
    deadline: Instant,
) -> (Waited, WaitStats) {
    let mut stats = WaitStats::default();
    loop {
        let pushed = tokio::select! {
            r = &mut slot => r.is_ok(),
            _ = tokio::time::sleep_until(deadline) => false,
        };
        if pushed {
            stats.pushes += 1;
        }
        stats.reads += 1;
        let read = store.get(request_id).await;
        let at_deadline = !pushed || Instant::now() >= deadline;
        match read {
            Ok(item) => {
                if let Some(done) = answered(item) {
                    wakeups.forget(request_id);
                    return (done, stats);
                }
                if at_deadline {
                    wakeups.forget(request_id);
                    return (Waited::TimedOut, stats);
                }
            }
            Err(e) if at_deadline => {
                wakeups.forget(request_id);
                return (Waited::Failed(e), stats);
            }
            Err(e) => {
                tracing::warn!(error = %e, "read after the push failed; waiting for the deadline")
            }
        }
        // A push without a completed item (a stale or foreign push): wait on, with a new slot.
        slot = wakeups.register(request_id);
    }
}

impl<T: WaiterChannel> WaiterChannel for std::sync::Arc<T> {
    async fn connection_id(&self) -> Result<String, String> {
        (**self).connection_id().await
    }
    fn wakeups(&self) -> &Wakeups {
        (**self).wakeups()
    }
}
