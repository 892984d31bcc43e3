//! Which way a request waits: `USE_EVENT_DRIVEN` and a canary percentage, read from the
//! environment's rollout parameter (JSON `{"useEventDriven": true, "canaryPercent": 5}`) with a
//! short cache, so a change takes effect within the cache's life without a deploy, and a
//! rollback is setting `useEventDriven` to false.
//!
//! A request takes the event-driven path when the flag is on and
//! `hash(request_id) % 100 < canaryPercent` (the first 8 bytes of SHA-256, big-endian): the same
//! request id always lands on the same side. When the parameter cannot be read the last value
//! read is kept; before any read succeeds, every request polls (the path that needs nothing
//! new).

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

/// The rollout settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rollout {
    pub use_event_driven: bool,
    /// 0–100.
    pub canary_percent: u8,
}

impl Rollout {
    /// Every request polls.
    pub const POLLING: Rollout = Rollout {
        use_event_driven: false,
        canary_percent: 0,
    };

    /// The parameter's value, or why it is not one.
    pub fn parse(text: &str) -> Result<Rollout, String> {
        let rollout: Rollout = serde_json::from_str(text).map_err(|e| {
            format!("the rollout parameter is not {{\"useEventDriven\": bool, \"canaryPercent\": 0–100}}: {e}")
        })?;
        if rollout.canary_percent > 100 {
            return Err(format!(
                "canaryPercent is {}: at most 100",
                rollout.canary_percent
            ));
        }
        Ok(rollout)
    }

    /// Whether `request_id` waits for a push.
    pub fn event_driven(&self, request_id: &str) -> bool {
        self.use_event_driven && bucket(request_id) < self.canary_percent
    }
}

/// `hash(request_id) % 100`.
pub fn bucket(request_id: &str) -> u8 {
    let digest = Sha256::digest(request_id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % 100) as u8
}

/// Where the rollout parameter is read from.
pub trait RolloutSource: Send + Sync {
    fn read(&self) -> impl Future<Output = Result<Rollout, String>> + Send;
}

/// A fixed or changeable value: tests, local runs and the simulation.
#[derive(Debug)]
pub struct MemoryRollout {
    value: Mutex<Result<Rollout, String>>,
    reads: Mutex<u64>,
}

impl MemoryRollout {
    pub fn new(rollout: Rollout) -> Self {
        Self {
            value: Mutex::new(Ok(rollout)),
            reads: Mutex::new(0),
        }
    }

    pub fn set(&self, rollout: Result<Rollout, String>) {
        *self.value.lock().expect("lock") = rollout;
    }

    pub fn reads(&self) -> u64 {
        *self.reads.lock().expect("lock")
    }
}

impl RolloutSource for MemoryRollout {
    async fn read(&self) -> Result<Rollout, String> {
        *self.reads.lock().expect("lock") += 1;
        self.value.lock().expect("lock").clone()
    }
}

/// A source read at most once per `ttl`.
pub struct CachedRollout<S> {
    source: S,
    ttl: Duration,
    held: Mutex<Option<(Instant, Rollout)>>,
}

impl<S: RolloutSource> CachedRollout<S> {
    pub fn new(source: S, ttl: Duration) -> Self {
        Self {
            source,
            ttl,
            held: Mutex::new(None),
        }
    }

    pub fn source(&self) -> &S {
        &self.source
    }

    /// The rollout in force: the held value while it is younger than the TTL, else a fresh
    /// read; on a failed read the held value (its age restarts, so a broken parameter is not
    /// read on every request), or polling when nothing was ever read.
    pub async fn current(&self) -> Rollout {
        let now = Instant::now();
        let held = *self.held.lock().expect("lock");
        if let Some((at, rollout)) = held
            && now.duration_since(at) < self.ttl
        {
            return rollout;
        }
        let rollout = match self.source.read().await {
            Ok(r) => r,
            Err(error) => {
                let kept = held.map(|(_, r)| r).unwrap_or(Rollout::POLLING);
                tracing::warn!(%error, ?kept, "rollout parameter not read; keeping the last value");
                kept
            }
        };
        *self.held.lock().expect("lock") = Some((now, rollout));
        rollout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canary_takes_its_percentage_of_request_ids_within_one_percent() {
        for pct in [1u8, 5, 10, 25, 50, 90] {
            let rollout = Rollout {
                use_event_driven: true,
                canary_percent: pct,
            };
            let n = 100_000;
            let chosen = (0..n)
                .filter(|i| rollout.event_driven(&format!("req-{i:08x}")))
                .count();
            let share = chosen as f64 * 100.0 / n as f64;
            assert!(
                (share - f64::from(pct)).abs() <= 1.0,
                "{pct} %: {share:.2} % of 100,000 ids"
            );
        }
    }

    #[test]
    fn the_flag_off_polls_every_request_whatever_the_percentage() {
        let off = Rollout {
            use_event_driven: false,
            canary_percent: 100,
        };
        assert!((0..10_000).all(|i| !off.event_driven(&format!("r{i}"))));
        let all = Rollout {
            use_event_driven: true,
            canary_percent: 100,
        };
        assert!((0..10_000).all(|i| all.event_driven(&format!("r{i}"))));
        assert_eq!(
            bucket("req-1"),
            bucket("req-1"),
            "a request id stays on its side"
        );
    }

    #[test]
    fn a_bad_parameter_is_named() {
        assert!(
            Rollout::parse(r#"{"useEventDriven": true, "canaryPercent": 101}"#)
                .unwrap_err()
                .contains("at most 100")
        );
        assert!(Rollout::parse(r#"{"useEventDriven": "yes"}"#).is_err());
        assert_eq!(
            Rollout::parse(r#"{"useEventDriven": true, "canaryPercent": 5}"#).unwrap(),
            Rollout {
                use_event_driven: true,
                canary_percent: 5
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_takes_effect_after_the_cache_and_a_failed_read_keeps_the_last_value() {
        let on = Rollout {
            use_event_driven: true,
            canary_percent: 5,
        };
        let cached = CachedRollout::new(MemoryRollout::new(on), Duration::from_secs(10));
        assert_eq!(cached.current().await, on);
        cached.source().set(Ok(Rollout::POLLING));
        assert_eq!(cached.current().await, on, "cached");
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(
            cached.current().await,
            Rollout::POLLING,
            "rolled back without a deploy"
        );
        cached.source().set(Err("throttled".into()));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(cached.current().await, Rollout::POLLING);
        assert_eq!(cached.source().reads(), 3);

        let never = CachedRollout::new(MemoryRollout::new(on), Duration::from_secs(10));
        never.source().set(Err("no parameter".into()));
        assert_eq!(
            never.current().await,
            Rollout::POLLING,
            "nothing read: poll"
        );
    }
}
