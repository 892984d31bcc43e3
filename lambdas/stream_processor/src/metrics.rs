//! The processor's metrics (CloudWatch EMF, one document per invocation, dimension
//! `function`). The malformed-rate alarm (metric math: `ProcessorMalformed` /
//! `ProcessorRecords`) and the dashboard read these.
//!
//! | metric | unit | what |
//! |---|---|---|
//! | `ProcessorRecords` | Count | records handed to the function |
//! | `ProcessorMalformed` | Count | records reported to the malformed topic |
//! | `ProcessorWritten` | Count | items written |
//! | `ProcessorSuperseded` | Count | events not written: a newer one of the item was in the batch |
//! | `ProcessorStale` | Count | events not written: the table held a state as new or newer |
//! | `ProcessorRetried` | Count | records left for the stream to deliver again |
//! | `ProcessorBatchSize` | Count | records per invocation (histogram) |
//! | `ProcessorDynamoCalls` | Count | `BatchGetItem` + `BatchWriteItem` calls |

use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};

use crate::process::Stats;

pub const RECORDS: &str = "ProcessorRecords";
pub const MALFORMED: &str = "ProcessorMalformed";
pub const WRITTEN: &str = "ProcessorWritten";
pub const SUPERSEDED: &str = "ProcessorSuperseded";
pub const STALE: &str = "ProcessorStale";
pub const RETRIED: &str = "ProcessorRetried";
pub const BATCH_SIZE: &str = "ProcessorBatchSize";
pub const DYNAMO_CALLS: &str = "ProcessorDynamoCalls";

pub fn describe() {
    describe_counter!(RECORDS, Unit::Count, "records handed to the function");
    describe_counter!(MALFORMED, Unit::Count, "records reported as malformed");
    describe_counter!(WRITTEN, Unit::Count, "items written");
    describe_counter!(
        SUPERSEDED,
        Unit::Count,
        "events superseded within their batch"
    );
    describe_counter!(STALE, Unit::Count, "events older than the stored state");
    describe_counter!(RETRIED, Unit::Count, "records left to retry");
    describe_histogram!(BATCH_SIZE, Unit::Count, "records per invocation");
    describe_counter!(
        DYNAMO_CALLS,
        Unit::Count,
        "BatchGetItem and BatchWriteItem calls"
    );
}

pub fn record(stats: &Stats) {
    counter!(RECORDS).increment(stats.records as u64);
    counter!(MALFORMED).increment(stats.malformed as u64);
    counter!(WRITTEN).increment(stats.written as u64);
    counter!(SUPERSEDED).increment(stats.superseded as u64);
    counter!(STALE).increment(stats.stale as u64);
    counter!(RETRIED).increment(stats.retried as u64);
    histogram!(BATCH_SIZE).record(stats.records as f64);
    counter!(DYNAMO_CALLS).increment((stats.read_calls + stats.write_calls) as u64);
}
