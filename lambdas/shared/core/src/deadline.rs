//! The time a caller must have its answer by, so that retries stop in time to report
//! per-item outcomes instead of being cut off by the Lambda timeout.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// A point in time (tokio's clock, so tests with a paused clock run it virtually), or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    /// No deadline: calls and retries are bounded only by their own policies.
    pub const NONE: Deadline = Deadline(None);

    pub fn at(instant: Instant) -> Self {
        Self(Some(instant))
    }

    /// `duration` from now.
    pub fn after(duration: Duration) -> Self {
        Self(Instant::now().checked_add(duration))
    }

    /// From a Lambda invocation's deadline (epoch milliseconds, `Context::deadline`) less
    /// `margin` kept for answering; `now_ms` is the wall clock at the same moment.
    ///
    /// A deadline before 2000-01-01 is not an epoch time but a duration: cargo-lambda's local
    /// runtime (`cargo lambda watch`, 1.9) sends the invocation timeout itself (`600000`), which
    /// read as a time would have every call "out of time" before it starts.
    pub fn from_epoch_ms(deadline_ms: u64, now_ms: i64, margin: Duration) -> Self {
        const Y2000_MS: u64 = 946_684_800_000;
        let remaining = if deadline_ms < Y2000_MS {
            Duration::from_millis(deadline_ms)
        } else {
            let now_ms = u64::try_from(now_ms).unwrap_or(0);
            Duration::from_millis(deadline_ms.saturating_sub(now_ms))
        };
        Self::after(remaining.saturating_sub(margin))
    }

    pub fn instant(self) -> Option<Instant> {
        self.0
    }

    /// This deadline brought forward by `margin` (for work that must leave time after it).
    pub fn earlier_by(self, margin: Duration) -> Self {
        Self(self.0.map(|at| at.checked_sub(margin).unwrap_or(at)))
    }

    /// The earlier of this deadline and `duration` from now.
    pub fn or_within(self, duration: Duration) -> Self {
        let bound = Instant::now().checked_add(duration);
        match (self.0, bound) {
            (Some(at), Some(bound)) => Self(Some(at.min(bound))),
            (at, bound) => Self(at.or(bound)),
        }
    }

    /// Time left; `None` without a deadline.
    pub fn remaining(self) -> Option<Duration> {
        self.0
            .map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// Whether work of `duration` started now would finish before the deadline.
    pub fn allows(self, duration: Duration) -> bool {
        self.remaining().is_none_or(|left| left > duration)
    }

    /// Runs `future` until the deadline: `None` when the deadline came first (the future is
    /// dropped, so what it did is unknown to the caller).
    pub async fn run<F: Future>(self, future: F) -> Option<F::Output> {
        match self.0 {
            Some(at) => tokio::time::timeout_at(at, future).await.ok(),
            None => Some(future.await),
        }
    }
}

/// The wall clock in milliseconds since the epoch (saturating; 0 before 1970).
pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_deadline_in_epoch_ms_or_a_local_runtime_duration() {
        let now_ms = 1_796_040_000_000;
        let margin = Duration::from_millis(500);
        let epoch = Deadline::from_epoch_ms(1_796_040_010_000, now_ms, margin);
        assert_eq!(epoch.remaining(), Some(Duration::from_millis(9_500)));
        // cargo lambda watch: the timeout itself.
        let local = Deadline::from_epoch_ms(600_000, now_ms, margin);
        assert_eq!(local.remaining(), Some(Duration::from_millis(599_500)));
        // A deadline already passed is no time at all.
        let past = Deadline::from_epoch_ms(1_796_039_000_000, now_ms, margin);
        assert_eq!(past.remaining(), Some(Duration::ZERO));
    }

    #[tokio::test(start_paused = true)]
    async fn a_future_past_the_deadline_is_cut_off() {
        let deadline = Deadline::after(Duration::from_millis(100));
        assert_eq!(deadline.run(async { 1 }).await, Some(1));
        assert_eq!(deadline.run(std::future::pending::<u8>()).await, None);
        assert!(!deadline.allows(Duration::ZERO));
        assert_eq!(Deadline::NONE.run(async { 2 }).await, Some(2));
        assert!(Deadline::NONE.allows(Duration::MAX));
    }

    #[tokio::test(start_paused = true)]
    async fn an_invocation_deadline_keeps_its_margin() {
        let now_ms = 1_700_000_000_000;
        let d = Deadline::from_epoch_ms(1_700_000_010_000, now_ms, Duration::from_millis(500));
        assert_eq!(d.remaining(), Some(Duration::from_millis(9_500)));
        // A deadline already past (or a clock far ahead) leaves no time, never a panic.
        let past = Deadline::from_epoch_ms(0, i64::MAX, Duration::from_secs(1));
        assert_eq!(past.remaining(), Some(Duration::ZERO));
        // Nor does a deadline beyond what the clock can hold: it is no deadline.
        let _ = Deadline::from_epoch_ms(u64::MAX, i64::MIN, Duration::ZERO);
        assert_eq!(
            d.or_within(Duration::from_secs(1)).remaining(),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            d.earlier_by(Duration::from_secs(1)).remaining(),
            Some(Duration::from_millis(8_500))
        );
    }
}
