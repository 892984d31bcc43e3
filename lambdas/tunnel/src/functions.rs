//! The tunnel's deployed functions, one binary for all of them: `TUNNEL_ROLE` picks what a
//! function runs, and the CDK app sets it per function (`cdk/lib/systems/tunnel.ts`).
//!
//! | `TUNNEL_ROLE` | invoked by | settings (environment) |
//! |---|---|---|
//! | `forward` | the HTTP API's `ANY /tunnel/{agent}/{proxy+}` | `PENDING_TABLE_NAME`, `CONNECTIONS_TABLE_NAME`, `WEBSOCKET_ENDPOINT`, `WAITER_WEBSOCKET_URL`, `TOKEN_SECRET_ARN`, `TOKEN_AUDIENCE`, `ROLLOUT_PARAMETER_NAME`, `BODIES_BUCKET_NAME`, `TUNNEL_TIMEOUT_SECONDS`? (25), `ROLLOUT_CACHE_SECONDS`? (30) |
//! | `connections` | the tunnel WebSocket API's `$connect`, `$disconnect`, `$default`, `response`, `whoami` | `CONNECTIONS_TABLE_NAME`, `CONNECTIONS_PER_AGENT`? (5), `PENDING_TABLE_NAME`, `BODIES_BUCKET_NAME`, `WEBSOCKET_ENDPOINT` |
//! | `notifier` | the pending table's stream (MODIFY, new status `completed`) | `WEBSOCKET_ENDPOINT`, `APP_BUS_NAME` |
//! | `authorizer` | the tunnel WebSocket API's `$connect` | `TOKEN_SECRET_ARN`, `TOKEN_AUDIENCE` |
//!
//! Every role reads `METRICS_NAMESPACE` (EMF, dimension `function` = `tunnel-<role>`).

use std::time::Duration;

pub use eventfabric_core::settings::required;

use crate::forward::Settings;

/// The audience of tunnel connect tokens (agents' and waiters').
pub const CONNECT_TOKEN_AUDIENCE: &str = "eventfabric:tunnel.connect";

/// What a function runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Forward,
    Connections,
    Notifier,
    Authorizer,
}

impl Role {
    pub const VARIABLE: &'static str = "TUNNEL_ROLE";

    pub fn parse(value: &str) -> Result<Role, String> {
        match value {
            "forward" => Ok(Role::Forward),
            "connections" => Ok(Role::Connections),
            "notifier" => Ok(Role::Notifier),
            "authorizer" => Ok(Role::Authorizer),
            other => Err(format!(
                "{} is '{other}': set it to forward, connections, notifier or authorizer",
                Self::VARIABLE
            )),
        }
    }

    /// The EMF `function` dimension and the log name.
    pub fn function(self) -> &'static str {
        match self {
            Role::Forward => "tunnel-forward",
            Role::Connections => "tunnel-connections",
            Role::Notifier => "tunnel-notifier",
            Role::Authorizer => "tunnel-authorizer",
        }
    }
}

/// Open connections one agent may hold when `CONNECTIONS_PER_AGENT` is not set.
pub const DEFAULT_CONNECTIONS_PER_AGENT: usize = 5;

/// The forwarder's settings: `TUNNEL_TIMEOUT_SECONDS` (1–28: under the HTTP API's 30 s).
pub fn forward_settings(env: &impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
    let mut settings = Settings::default();
    if let Some(v) = env("TUNNEL_TIMEOUT_SECONDS") {
        match v.parse::<u64>() {
            Ok(s @ 1..=28) => settings.timeout = Duration::from_secs(s),
            _ => {
                return Err(format!(
                    "TUNNEL_TIMEOUT_SECONDS is '{v}': 1–28 (the HTTP API gives up at 30 s)"
                ));
            }
        }
    }
    Ok(settings)
}

/// How long a rollout read is kept: `ROLLOUT_CACHE_SECONDS`, 30 by default.
pub fn rollout_cache(env: &impl Fn(&str) -> Option<String>) -> Result<Duration, String> {
    eventfabric_core::settings::count(env, "ROLLOUT_CACHE_SECONDS", 30)
        .map(|s| Duration::from_secs(s as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_parses_and_a_wrong_one_is_named() {
        for (value, function) in [
            ("forward", "tunnel-forward"),
            ("connections", "tunnel-connections"),
            ("notifier", "tunnel-notifier"),
            ("authorizer", "tunnel-authorizer"),
        ] {
            assert_eq!(Role::parse(value).unwrap().function(), function);
        }
        assert!(Role::parse("x").unwrap_err().contains("TUNNEL_ROLE is 'x'"));
    }

    #[test]
    fn the_timeout_stays_under_the_http_apis_limit() {
        let none = |_: &str| None;
        assert_eq!(
            forward_settings(&none).unwrap().timeout,
            Duration::from_secs(25)
        );
        let ten = |_: &str| Some("10".to_owned());
        assert_eq!(
            forward_settings(&ten).unwrap().timeout,
            Duration::from_secs(10)
        );
        let thirty = |_: &str| Some("30".to_owned());
        assert!(forward_settings(&thirty).unwrap_err().contains("1–28"));
        assert_eq!(rollout_cache(&none).unwrap(), Duration::from_secs(30));
    }
}
