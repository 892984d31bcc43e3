//! The realtime system's functions (systems.md §4): app-bus events checked against the
//! registry ([`inbound`]), domain processors whose state changes are applied exactly once to
//! the single-table store ([`store`]) and whose follow-up events go out through the typed
//! publisher ([`domain`], [`processor`]).

pub mod domain;
pub mod inbound;
pub mod processor;
pub mod store;

pub use inbound::{Inbound, Refused, Topics};
pub use processor::{ProcessError, Processed, Processor};
pub use store::{AppStore, Applied, DynamoAppStore, MemoryAppStore, StoreError, Write};
