//! The session pipeline's steps: `summary → sentiment → compliance → persistence`, chained by
//! the Step Functions Express state machine `stepfunctions/session-pipeline.asl.json` on
//! `session.summary.final`. Each step is a function of its own (`src/bin/`), a thin `main`
//! over [`handler`]; the logic lives in one module per step, the store behind a port
//! ([`persistence::SummaryStore`]) with a DynamoDB and an in-memory adapter.
//!
//! Every step is idempotent (Express runs at least once): the first three are pure functions
//! of their input, the fourth writes a version only once (see [`persistence`]).

pub mod compliance;
pub mod document;
pub mod error;
pub mod handler;
pub mod metrics;
pub mod persistence;
pub mod replay;
pub mod runtime;
pub mod sentiment;
pub mod summary;

pub use document::Document;
pub use error::StepError;

pub use eventfabric_core::now_ms;
