//! The realtime system's deployed functions, one binary for all of them (one fat-LTO link
//! instead of eight): `REALTIME_ROLE` picks what a function runs, and the CDK app sets it per
//! function (`cdk/lib/systems/realtime.ts`).
//!
//! | `REALTIME_ROLE` | invoked by | settings (environment) |
//! |---|---|---|
//! | `studio`, `brand`, `research`, `market`, `account` | its rule on the app bus | `APP_TABLE_NAME`, `APP_BUS_NAME` |
//! | `notifier` | the rule of realtime notifications and job progress | `CONNECTIONS_TABLE_NAME`, `WEBSOCKET_ENDPOINT` |
//! | `authorizer` | the WebSocket API's `$connect` | `TOKEN_SECRET_ARN`, `TOKEN_AUDIENCE` |
//! | `connections` | the WebSocket API's `$connect`, `$disconnect`, `$default`, `subscribe`, `unsubscribe` | `CONNECTIONS_TABLE_NAME`, `SUBSCRIPTIONS_TABLE_NAME`, `CONNECTIONS_PER_USER` |
//! | `dashboard` | the ingest state table's stream | `CONNECTIONS_TABLE_NAME`, `SUBSCRIPTIONS_TABLE_NAME`, `WEBSOCKET_ENDPOINT` |
//!
//! Every role reads `METRICS_NAMESPACE` (EMF, dimension `function` = `realtime-<role>`).

use crate::domain::Domain;

/// What a function runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Processor(Domain),
    Notifier,
    Authorizer,
    Connections,
    Dashboard,
}

impl Role {
    pub const VARIABLE: &'static str = "REALTIME_ROLE";

    pub fn parse(value: &str) -> Result<Role, String> {
        match value {
            "notifier" => Ok(Role::Notifier),
            "authorizer" => Ok(Role::Authorizer),
            "connections" => Ok(Role::Connections),
            "dashboard" => Ok(Role::Dashboard),
            other => Domain::parse(other).map(Role::Processor).ok_or_else(|| {
                let domains: Vec<_> = Domain::ALL.iter().map(|d| d.name()).collect();
                format!(
                    "{} is '{other}': set it to {}, notifier, authorizer, connections or dashboard",
                    Self::VARIABLE,
                    domains.join(", ")
                )
            }),
        }
    }

    /// The EMF `function` dimension and the log name.
    pub fn function(self) -> &'static str {
        match self {
            Role::Processor(Domain::Studio) => "realtime-studio",
            Role::Processor(Domain::Brand) => "realtime-brand",
            Role::Processor(Domain::Research) => "realtime-research",
            Role::Processor(Domain::Market) => "realtime-market",
            Role::Processor(Domain::Account) => "realtime-account",
            Role::Notifier => "realtime-notifier",
            Role::Authorizer => "realtime-authorizer",
            Role::Connections => "realtime-connections",
            Role::Dashboard => "realtime-dashboard",
        }
    }
}

pub use eventfabric_core::settings::required;

/// Open connections one user may hold when `CONNECTIONS_PER_USER` is not set.
pub const DEFAULT_CONNECTIONS_PER_USER: usize = 10;

pub fn connections_per_user(env: &impl Fn(&str) -> Option<String>) -> Result<usize, String> {
    eventfabric_core::settings::count(env, "CONNECTIONS_PER_USER", DEFAULT_CONNECTIONS_PER_USER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_parses_and_names_its_function() {
        for (value, function) in [
            ("studio", "realtime-studio"),
            ("brand", "realtime-brand"),
            ("research", "realtime-research"),
            ("market", "realtime-market"),
            ("account", "realtime-account"),
            ("notifier", "realtime-notifier"),
            ("authorizer", "realtime-authorizer"),
            ("connections", "realtime-connections"),
            ("dashboard", "realtime-dashboard"),
        ] {
            assert_eq!(Role::parse(value).unwrap().function(), function);
        }
        let err = Role::parse("").unwrap_err();
        assert!(err.contains("REALTIME_ROLE is ''"), "{err}");
        assert!(
            err.contains("studio, brand, research, market, account"),
            "{err}"
        );
    }

    #[test]
    fn settings_are_named_when_missing_or_wrong() {
        let none = |_: &str| None;
        assert_eq!(
            required(&none, "APP_TABLE_NAME", "the app table").unwrap_err(),
            "APP_TABLE_NAME is not set: the app table"
        );
        assert_eq!(connections_per_user(&none).unwrap(), 10);
        let zero = |_: &str| Some("0".to_owned());
        assert!(connections_per_user(&zero).unwrap_err().contains("'0'"));
    }
}
