//! The realtime system's functions (systems.md §4): app-bus events checked against the
//! registry ([`inbound`]), domain processors whose state changes are applied exactly once to
//! the single-table store ([`store`]) and whose follow-up events go out through the typed
//! publisher ([`domain`], [`processor`]); the realtime notifier pushing notification and
//! job-progress events to every WebSocket connection of their user ([`notifier`]); live
//! dashboard updates from the ingest table's stream to subscribed connections ([`dashboard`]).

pub mod dashboard;
pub mod domain;
pub mod functions;
pub mod inbound;
pub mod notifier;
pub mod processor;
pub mod store;

pub use dashboard::{Dashboard, DashboardReport};
pub use inbound::{Inbound, Refused, Topics};
pub use notifier::{Notifier, NotifyError};
pub use processor::{ProcessError, Processed, Processor};
pub use store::{AppStore, Applied, DynamoAppStore, MemoryAppStore, StoreError, Write};
