//! The ingest function's metrics (CloudWatch EMF, one document per invocation, dimension
//! `function`). The malformed-rate alarm and the dashboard read these.
//!
//! | metric | unit | dimensions | what |
//! |---|---|---|---|
//! | `IngestEventsReceived` | Count | — | events in requests that were read |
//! | `IngestEventsRejected` | Count | — | events refused by the envelope or topic check |
//! | `IngestEventsAccepted` | Count | — | events now in the stream |
//! | `IngestEventsUnwritten` | Count | — | events answered 503/500 (the caller resends) |
//! | `PutRecordsCalls` | Count | — | calls made |
//! | `IngestRecordRetries` | Count | — | records sent again after a throttle |
//! | `IngestRequestsRefused` | Count | `status` | whole requests refused (400, 413) |

use metrics::{Unit, counter, describe_counter};

pub const EVENTS_RECEIVED: &str = "IngestEventsReceived";
pub const EVENTS_REJECTED: &str = "IngestEventsRejected";
pub const EVENTS_ACCEPTED: &str = "IngestEventsAccepted";
pub const EVENTS_UNWRITTEN: &str = "IngestEventsUnwritten";
pub const PUT_RECORDS_CALLS: &str = "PutRecordsCalls";
pub const RECORD_RETRIES: &str = "IngestRecordRetries";
pub const REQUESTS_REFUSED: &str = "IngestRequestsRefused";

pub fn describe() {
    describe_counter!(
        EVENTS_RECEIVED,
        Unit::Count,
        "events in requests that were read"
    );
    describe_counter!(
        EVENTS_REJECTED,
        Unit::Count,
        "events refused by the envelope or topic check"
    );
    describe_counter!(EVENTS_ACCEPTED, Unit::Count, "events written to the stream");
    describe_counter!(
        EVENTS_UNWRITTEN,
        Unit::Count,
        "events not written (answered 503 or 500)"
    );
    describe_counter!(PUT_RECORDS_CALLS, Unit::Count, "PutRecords calls");
    describe_counter!(
        RECORD_RETRIES,
        Unit::Count,
        "records sent again after a throttle"
    );
    describe_counter!(
        REQUESTS_REFUSED,
        Unit::Count,
        "requests refused as a whole, by status"
    );
}

pub(crate) fn events_received(total: usize, rejected: usize) {
    counter!(EVENTS_RECEIVED).increment(total as u64);
    counter!(EVENTS_REJECTED).increment(rejected as u64);
}

pub(crate) fn stream_writes(calls: usize, retries: usize) {
    counter!(PUT_RECORDS_CALLS).increment(calls as u64);
    counter!(RECORD_RETRIES).increment(retries as u64);
}

pub(crate) fn events_written(accepted: usize, unwritten: usize) {
    counter!(EVENTS_ACCEPTED).increment(accepted as u64);
    counter!(EVENTS_UNWRITTEN).increment(unwritten as u64);
}

pub(crate) fn request_refused(status: u16) {
    counter!(REQUESTS_REFUSED, "status" => status.to_string()).increment(1);
}
