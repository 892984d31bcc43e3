//! The steps' metrics (CloudWatch EMF, one document per invocation, dimension `function`):
//!
//! | metric | unit | dimensions |
//! |---|---|---|
//! | `StepSucceeded` | Count | — |
//! | `StepFailed` | Count | `error` (`InvalidInput`, `StoreUnavailable`, `StoreRefused`) |
//! | `ComplianceOutcome` | Count | `outcome` (`pass`, `flag`, `block`) — compliance only |
//! | `SummaryPersisted` | Count | `outcome` (`written`, `already_persisted`, `superseded`) — persistence only |

use metrics::{Unit, counter, describe_counter};

pub const STEP_SUCCEEDED: &str = "StepSucceeded";
pub const STEP_FAILED: &str = "StepFailed";
pub const COMPLIANCE_OUTCOME: &str = "ComplianceOutcome";
pub const SUMMARY_PERSISTED: &str = "SummaryPersisted";

pub fn describe() {
    describe_counter!(
        STEP_SUCCEEDED,
        Unit::Count,
        "invocations that returned a result"
    );
    describe_counter!(
        STEP_FAILED,
        Unit::Count,
        "invocations that failed, by error"
    );
    describe_counter!(COMPLIANCE_OUTCOME, Unit::Count, "compliance outcomes");
    describe_counter!(SUMMARY_PERSISTED, Unit::Count, "persistence outcomes");
}

pub fn step_result<T>(result: &Result<T, crate::StepError>) {
    match result {
        Ok(_) => counter!(STEP_SUCCEEDED).increment(1),
        Err(e) => counter!(STEP_FAILED, "error" => e.error_type()).increment(1),
    }
}
