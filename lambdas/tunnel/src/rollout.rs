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
use std::time::Duration;

use eventfabric_core::parameter::{CachedParameter, MemoryParameter, ParameterSource};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The rollout settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

    /// The parameter's text for this value.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a rollout serializes")
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

/// The rollout as a function holds it: the parameter read at most once per TTL, the last good
/// value kept when a read fails, polling until one succeeds (`eventfabric_core::parameter`).
pub type CachedRollout<S> = CachedParameter<S, Rollout>;

/// `source` read at most once per `ttl`.
pub fn cached<S: ParameterSource>(source: S, ttl: Duration) -> CachedRollout<S> {
    CachedParameter::new(source, ttl, Rollout::parse, Rollout::POLLING)
}

/// A fixed or changeable value: tests, local runs and the simulation.
#[derive(Debug)]
pub struct MemoryRollout(MemoryParameter);

impl MemoryRollout {
    pub fn new(rollout: Rollout) -> Self {
        Self(MemoryParameter::new(rollout.to_json()))
    }

    pub fn set(&self, rollout: Result<Rollout, String>) {
        self.0.set(rollout.map(|r| r.to_json()));
    }

    pub fn reads(&self) -> u64 {
        self.0.reads()
    }
}

impl ParameterSource for MemoryRollout {
    fn read(&self) -> impl Future<Output = Result<String, String>> + Send {
        self.0.read()
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
        let held = cached(MemoryRollout::new(on), Duration::from_secs(10));
        assert_eq!(held.current().await, on);
        held.source().set(Ok(Rollout::POLLING));
        assert_eq!(held.current().await, on, "cached");
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(
            held.current().await,
            Rollout::POLLING,
            "rolled back without a deploy"
        );
        held.source().set(Err("throttled".into()));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(held.current().await, Rollout::POLLING);
        assert_eq!(held.source().reads(), 3);

        let never = cached(MemoryRollout::new(on), Duration::from_secs(10));
        never.source().set(Err("no parameter".into()));
        assert_eq!(
            never.current().await,
            Rollout::POLLING,
            "nothing read: poll"
        );
    }
}
