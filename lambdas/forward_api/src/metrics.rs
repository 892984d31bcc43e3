//! The function's metrics, recorded through the `metrics` facade. `main.rs` installs the
//! CloudWatch EMF recorder and flushes one EMF document per label set after each invocation;
//! without a recorder (unit tests, benchmarks) these calls cost next to nothing.
//!
//! | metric | unit | dimensions |
//! |---|---|---|
//! | `EventsForwarded` | Count | — |
//! | `ForwardFailures` | Count | — (events accepted by every check that the bus did not take) |
//! | `DroppedClientEvents` | Count | `reason` (wire name of the rejection) |
//! | `RequestsRefused` | Count | `status` (401, 403, 400, 413, 429, 500, 503 while the kill switch is off) |
//! | `StateStoreErrors` | Count | — (alarmed, so no dimension beyond `function`: the alarm watches that exact set; the log line names the operation) |
//! | `PutEventsBatchFill` | Percent | — (recorded by `eventfabric_core`'s EventBridge sink) |
//! | `SessionKeyReads` | Count | `outcome` (ok, error): the signing secret read again after start-up (`keys.rs`) |

use metrics::{Unit, counter, describe_counter};

use crate::outcome::{ForwardOutcome, RejectReason};

pub const EVENTS_FORWARDED: &str = "EventsForwarded";
pub const FORWARD_FAILURES: &str = "ForwardFailures";
pub const DROPPED_CLIENT_EVENTS: &str = "DroppedClientEvents";
pub const REQUESTS_REFUSED: &str = "RequestsRefused";
pub const STATE_STORE_ERRORS: &str = "StateStoreErrors";
pub const SESSION_KEY_READS: &str = "SessionKeyReads";

/// Units for the EMF documents; call once after installing the recorder.
pub fn describe() {
    describe_counter!(EVENTS_FORWARDED, Unit::Count, "events published to a bus");
    describe_counter!(
        FORWARD_FAILURES,
        Unit::Count,
        "valid events the bus did not take"
    );
    describe_counter!(
        DROPPED_CLIENT_EVENTS,
        Unit::Count,
        "events refused, by reason"
    );
    describe_counter!(
        REQUESTS_REFUSED,
        Unit::Count,
        "whole requests refused, by status"
    );
    describe_counter!(
        STATE_STORE_ERRORS,
        Unit::Count,
        "quota/idempotency store failures"
    );
    describe_counter!(
        SESSION_KEY_READS,
        Unit::Count,
        "signing secret reads after start-up, by outcome"
    );
    eventfabric_core::metrics::describe();
}

pub fn record_outcome(outcome: &ForwardOutcome) {
    if !outcome.accepted.is_empty() {
        counter!(EVENTS_FORWARDED).increment(outcome.accepted.len() as u64);
    }
    let mut failures = 0u64;
    for rejection in &outcome.rejected {
        if rejection.reason == RejectReason::PublishFailed {
            failures = failures.saturating_add(1);
        } else {
            counter!(DROPPED_CLIENT_EVENTS, "reason" => rejection.reason.as_str()).increment(1);
        }
    }
    if failures > 0 {
        counter!(FORWARD_FAILURES).increment(failures);
    }
}

pub fn request_refused(status: u16) {
    counter!(REQUESTS_REFUSED, "status" => status.to_string()).increment(1);
}

pub fn state_store_error() {
    counter!(STATE_STORE_ERRORS).increment(1);
}
