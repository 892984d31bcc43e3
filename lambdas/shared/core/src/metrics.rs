//! Metrics recorded by the shared adapters (through the `metrics` facade; the function that
//! installs a recorder decides where they go).

use metrics::{Unit, describe_histogram, histogram};

use crate::bus::MAX_ENTRIES_PER_CALL;

/// How full each PutEvents call is, in percent of its 10 entries.
pub const PUT_EVENTS_BATCH_FILL: &str = "PutEventsBatchFill";

pub fn describe() {
    describe_histogram!(
        PUT_EVENTS_BATCH_FILL,
        Unit::Percent,
        "entries per PutEvents call, in percent of the maximum"
    );
}

pub(crate) fn put_events_call(entries: usize) {
    histogram!(PUT_EVENTS_BATCH_FILL).record(entries as f64 * 100.0 / MAX_ENTRIES_PER_CALL as f64);
}
