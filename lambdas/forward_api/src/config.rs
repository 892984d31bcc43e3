//! The function's settings: per-event limits, buses, quota, lease and time budget, read from
//! the environment by [`ForwardConfig::from_env`].

use std::time::Duration;

use crate::request::RequestLimits;

/// Per-event limits and the bus names of this deployment.
#[derive(Debug, Clone)]
pub struct ForwardConfig {
    pub session_bus: String,
    pub analytics_bus: Option<String>,
    pub max_payload_bytes: usize,
    pub max_clock_skew_ms: i64,
    pub request: RequestLimits,
    /// Events one session may send per minute (see [`crate::state`] for the algorithm).
    pub quota_events_per_minute: u32,
    /// How long an idempotency claim stays pending before another request may take it over;
    /// must be longer than the function timeout.
    pub claim_lease_seconds: i64,
    /// The longest one state store call may take before it counts as unavailable (its normal
    /// latency is a few milliseconds): a hanging store must not eat the time publishing needs.
    pub store_call_timeout: Duration,
    /// Kept free before the answer deadline, after publishing stops, for confirming and
    /// releasing claims.
    pub cleanup_reserve: Duration,
}

impl ForwardConfig {
    /// The limits of systems.md §1: 4 KB payloads, 2 minutes of clock skew, and requests of
    /// at most 50 events in 256 KB.
    pub fn with_buses(session_bus: impl Into<String>, analytics_bus: Option<String>) -> Self {
        Self {
            session_bus: session_bus.into(),
            analytics_bus,
            max_payload_bytes: 4 * 1024,
            max_clock_skew_ms: 2 * 60 * 1000,
            request: RequestLimits {
                max_body_bytes: 256 * 1024,
                max_events: 50,
            },
            quota_events_per_minute: 600,
            claim_lease_seconds: crate::state::DEFAULT_CLAIM_LEASE_SECONDS,
            store_call_timeout: Duration::from_secs(1),
            cleanup_reserve: Duration::from_millis(300),
        }
    }
}

/// A setting that is missing or unusable: the function refuses to start and says which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} must be set")]
    Missing(&'static str),
    #[error("{name} '{value}': {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

/// Reads one variable: `lookup` is `std::env::var` in the function, a map in tests.
fn required(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<String, ConfigError> {
    lookup(name)
        .filter(|v| !v.is_empty())
        .ok_or(ConfigError::Missing(name))
}

fn parsed<T: std::str::FromStr>(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    lookup(name)
        .map(|value| {
            value.parse().map_err(|e: T::Err| ConfigError::Invalid {
                name,
                reason: e.to_string(),
                value,
            })
        })
        .transpose()
}

impl ForwardConfig {
    /// From the environment:
    /// - `SESSION_BUS_NAME` (required), `ANALYTICS_BUS_NAME` (optional): the buses;
    /// - `QUOTA_EVENTS_PER_MINUTE` (default 600): events per session per minute;
    /// - `CLAIM_LEASE_SECONDS` (default 30): how long an idempotency claim stays pending;
    ///   longer than the function timeout.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let analytics_bus = lookup("ANALYTICS_BUS_NAME").filter(|s| !s.is_empty());
        let mut config = Self::with_buses(required(&lookup, "SESSION_BUS_NAME")?, analytics_bus);
        if let Some(quota) = parsed(&lookup, "QUOTA_EVENTS_PER_MINUTE")? {
            config.quota_events_per_minute = quota;
        }
        if let Some(lease) = parsed::<i64>(&lookup, "CLAIM_LEASE_SECONDS")? {
            if lease <= 0 {
                return Err(ConfigError::Invalid {
                    name: "CLAIM_LEASE_SECONDS",
                    value: lease.to_string(),
                    reason: "must be a positive number of seconds".into(),
                });
            }
            config.claim_lease_seconds = lease;
        }
        Ok(config)
    }
}

/// Where the function's resources are, besides the buses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    /// `SESSION_SECRET_ARN`: the session token signing secret (current and previous values).
    pub session_secret: String,
    /// `REDACTION_SECRET_ARN`: the secret the redaction hashing key is derived from; separate
    /// from the signing key so that rotating that one does not change every hashed value.
    pub redaction_secret: String,
    /// `STATE_TABLE_NAME`: quota windows and idempotency keys.
    pub state_table: String,
    /// `METRICS_NAMESPACE` (default `eventfabric`): the CloudWatch namespace of the EMF metrics.
    pub metrics_namespace: String,
    /// `FORWARDING_SWITCH_PARAMETER`: the SSM parameter of the kill switch (`crate::switch`);
    /// unset (local runs), forwarding is always on.
    pub switch_parameter: Option<String>,
}

impl Resources {
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            session_secret: required(&lookup, "SESSION_SECRET_ARN")?,
            redaction_secret: required(&lookup, "REDACTION_SECRET_ARN")?,
            state_table: required(&lookup, "STATE_TABLE_NAME")?,
            metrics_namespace: lookup("METRICS_NAMESPACE")
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "eventfabric".into()),
            switch_parameter: lookup("FORWARDING_SWITCH_PARAMETER").filter(|s| !s.is_empty()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn settings_come_from_the_environment_with_defaults() {
        let config = ForwardConfig::from_env(env(&[("SESSION_BUS_NAME", "s")])).unwrap();
        assert_eq!(
            (config.session_bus.as_str(), config.analytics_bus),
            ("s", None)
        );
        assert_eq!(config.quota_events_per_minute, 600);
        let config = ForwardConfig::from_env(env(&[
            ("SESSION_BUS_NAME", "s"),
            ("ANALYTICS_BUS_NAME", "a"),
            ("QUOTA_EVENTS_PER_MINUTE", "1200"),
            ("CLAIM_LEASE_SECONDS", "15"),
        ]))
        .unwrap();
        assert_eq!(config.analytics_bus.as_deref(), Some("a"));
        assert_eq!(
            (config.quota_events_per_minute, config.claim_lease_seconds),
            (1200, 15)
        );
    }

    #[test]
    fn a_missing_or_unusable_setting_is_named() {
        assert_eq!(
            ForwardConfig::from_env(env(&[])).unwrap_err().to_string(),
            "SESSION_BUS_NAME must be set"
        );
        let err = ForwardConfig::from_env(env(&[
            ("SESSION_BUS_NAME", "s"),
            ("QUOTA_EVENTS_PER_MINUTE", "-1"),
        ]))
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("QUOTA_EVENTS_PER_MINUTE '-1': "),
            "{err}"
        );
        let err = ForwardConfig::from_env(env(&[
            ("SESSION_BUS_NAME", "s"),
            ("CLAIM_LEASE_SECONDS", "0"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("positive"), "{err}");
        assert_eq!(
            Resources::from_env(env(&[
                ("SESSION_SECRET_ARN", "a"),
                ("REDACTION_SECRET_ARN", "b")
            ]))
            .unwrap_err(),
            ConfigError::Missing("STATE_TABLE_NAME")
        );
    }
}
