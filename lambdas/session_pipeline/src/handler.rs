//! The four steps as the state machine calls them: JSON in, JSON out, a [`StepError`] whose
//! type the definition's `Retry`/`Catch` match. `main.rs` of each function calls one of these.

use serde_json::Value;

use crate::compliance::{self, Checker};
use crate::document::Document;
use crate::error::{StepError, shape_error};
use crate::persistence::{self, SummaryStore};
use crate::{metrics, sentiment, summary};

fn document(input: Value) -> Result<Document, StepError> {
    serde_path_to_error::deserialize(input).map_err(|e| shape_error("document", &e))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, StepError> {
    serde_json::to_value(value).map_err(|e| StepError::Invalid(format!("result: {e}")))
}

fn logged(step: &str, result: &Result<Value, StepError>) {
    metrics::step_result(result);
    if let Err(e) = result {
        tracing::error!(step, error_type = e.error_type(), error = %e, "step failed");
    }
}

/// `summary`: the EventBridge event in, the document out.
pub fn summary(event: Value) -> Result<Value, StepError> {
    let result = summary::normalize(event).and_then(|d| to_json(&d));
    logged("summary", &result);
    result
}

/// `sentiment`: the document in, its sentiment report out (`$.sentiment`).
pub fn sentiment(input: Value) -> Result<Value, StepError> {
    let result = document(input).and_then(|d| to_json(&sentiment::step(&d)));
    logged("sentiment", &result);
    result
}

/// `compliance`: the document in, its compliance report out (`$.compliance`).
pub fn compliance(checker: &Checker, input: Value) -> Result<Value, StepError> {
    let result = document(input).and_then(|d| {
        let report = compliance::step(checker, &d);
        ::metrics::counter!(metrics::COMPLIANCE_OUTCOME, "outcome" => outcome_name(report.outcome))
            .increment(1);
        to_json(&report)
    });
    logged("compliance", &result);
    result
}

/// `persistence`: the enriched document in, where the store stands out (`$.persistence`).
pub async fn persistence(
    store: &impl SummaryStore,
    input: Value,
    now_ms: i64,
) -> Result<Value, StepError> {
    let result = match document(input) {
        Ok(d) => persistence::step(store, &d, now_ms).await.and_then(|p| {
            let outcome = match p.outcome {
                crate::document::PersistOutcome::Written => "written",
                crate::document::PersistOutcome::AlreadyPersisted => "already_persisted",
                crate::document::PersistOutcome::Superseded => "superseded",
            };
            ::metrics::counter!(metrics::SUMMARY_PERSISTED, "outcome" => outcome).increment(1);
            to_json(&p)
        }),
        Err(e) => Err(e),
    };
    logged("persistence", &result);
    result
}

fn outcome_name(outcome: compliance::Outcome) -> &'static str {
    match outcome {
        compliance::Outcome::Pass => "pass",
        compliance::Outcome::Flag => "flag",
        compliance::Outcome::Block => "block",
    }
}
