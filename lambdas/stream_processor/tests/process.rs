//! The processor on Kinesis fixture events and the in-memory adapters: one test per failure
//! class (malformed, partial `UnprocessedItems`, SNS failure, a crash mid-batch, late and
//! replayed events), each showing nothing is lost and nothing is written twice.

use aws_lambda_events::event::kinesis::KinesisEvent;
use eventfabric_core::Deadline;
use eventfabric_core::batch::Outcome;
use eventfabric_registry::Registry;
use serde_json::{Value, json};
use stream_processor::{
    DEFAULT_RETRY, InputRecord, MemoryTable, MemoryTopic, Processor, Severity, Topics, WriteScript,
};

const NOW_MS: i64 = 1_796_040_000_000; // 2026-11-30T12:00:00Z

fn processor() -> Processor<MemoryTable, MemoryTopic> {
    Processor::new(
        Topics::compile(&Registry::embedded().unwrap()).unwrap(),
        MemoryTable::new(),
        MemoryTopic::new(),
        DEFAULT_RETRY,
    )
}

fn sample(entity: &str, second: u32, iops: f64) -> Vec<u8> {
    json!({
        "event_type": "storage.metrics.sampled",
        "timestamp": format!("2026-11-30T11:00:{second:02}Z"),
        "entity_id": entity,
        "entity_type": "volume",
        "payload": {"metrics": {"iops": iops}},
        "ingest_time": "2026-11-30T11:59:00Z",
        "request_id": "req-1"
    })
    .to_string()
    .into_bytes()
}

fn bad(entity: &str, errors: usize) -> Vec<u8> {
    // `errors` problems: negative metrics beyond the first are one error each.
    let metrics: serde_json::Map<String, Value> = [
        "iops",
        "read_iops",
        "write_iops",
        "latency_ms",
        "throughput_mbps",
    ]
    .iter()
    .take(errors)
    .map(|m| ((*m).to_owned(), json!(-1)))
    .collect();
    let mut metrics = metrics;
    metrics.entry("iops").or_insert(json!(1));
    json!({
        "event_type": "storage.metrics.sampled", "timestamp": "2026-11-30T11:00:00Z",
        "entity_id": entity, "entity_type": "volume", "payload": {"metrics": metrics},
        "ingest_time": "2026-11-30T11:59:00Z", "request_id": "req-1"
    })
    .to_string()
    .into_bytes()
}

fn seqs(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{i:06}")).collect()
}

fn inputs<'a>(seqs: &'a [String], data: &'a [Vec<u8>]) -> Vec<InputRecord<'a>> {
    seqs.iter()
        .zip(data)
        .map(|(s, d)| InputRecord {
            sequence_number: s,
            data: d,
        })
        .collect()
}

#[tokio::test]
async fn the_fixture_batch_writes_two_states_and_reports_one_malformed_event() {
    let p = processor();
    let event: KinesisEvent =
        serde_json::from_str(include_str!("../fixtures/kinesis-batch.json")).unwrap();
    let report = p
        .process(
            &stream_processor::input_records(&event),
            NOW_MS,
            Deadline::NONE,
        )
        .await;
    assert!(report.outcomes.item_failures().is_empty());
    assert_eq!(report.stats.written, 2);
    assert_eq!(report.stats.malformed, 1);
    let item = p.table().item("vol-0a1b2c", "volume").unwrap();
    assert_eq!(item.timestamp, 1_795_867_200_250);
    assert_eq!(item.payload["metrics"]["iops"], 1250);
    let reports = p.malformed().reports();
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_eq!(r.event_type.as_deref(), Some("storage.metrics.sampled"));
    assert_eq!(r.severity, Severity::Critical, "{:?}", r.errors);
    assert!(r.errors.len() > 3);
    assert!(r.raw_event.contains("\"vol-9\""));
    assert_eq!(
        r.sequence_number,
        "49590000000000000000000000000000000000000000000000000003"
    );
    // The SNS message has the fields the issue names.
    let message: Value = serde_json::from_str(&p.malformed().messages()[0]).unwrap();
    for field in ["timestamp", "event_type", "errors", "raw_event", "severity"] {
        assert!(message.get(field).is_some(), "{field} missing: {message}");
    }
}

// Failure class: malformed events. Reported once, not retried, and the rest of the batch is
// written; severity follows the error count.
#[tokio::test]
async fn malformed_events_are_reported_once_and_never_retried() {
    let p = processor();
    let data = vec![
        sample("a", 1, 1.0),
        bad("b", 2),
        b"not json".to_vec(),
        bad("c", 5),
        sample("d", 1, 2.0),
    ];
    let seqs = seqs(data.len());
    let report = p
        .process(&inputs(&seqs, &data), NOW_MS, Deadline::NONE)
        .await;
    assert!(
        report.outcomes.item_failures().is_empty(),
        "malformed records are done, not retried"
    );
    assert_eq!(report.stats.written, 2);
    let severities: Vec<(Option<String>, Severity)> = p
        .malformed()
        .reports()
        .into_iter()
        .map(|r| (r.event_type, r.severity))
        .collect();
    assert_eq!(
        severities,
        [
            (Some("storage.metrics.sampled".into()), Severity::Warning),
            (None, Severity::Warning),
            (Some("storage.metrics.sampled".into()), Severity::Critical),
        ]
    );
}

// Failure class: SNS failure. The report is not lost: its record is a batch item failure, and
// the retry publishes it.
#[tokio::test(start_paused = true)]
async fn a_report_sns_does_not_take_is_retried_with_its_record() {
    let p = processor();
    p.malformed().script([true; 5]);
    let data = vec![sample("a", 1, 1.0), bad("b", 1), sample("c", 1, 1.0)];
    let seqs = seqs(3);
    let report = p
        .process(&inputs(&seqs, &data), NOW_MS, Deadline::NONE)
        .await;
    assert_eq!(
        report.outcomes.item_failures(),
        ["000002"],
        "checkpoint before the unreported record"
    );
    assert!(p.malformed().messages().is_empty());
    // Lambda delivers from the failed record on; SNS is back.
    let again = p
        .process(&inputs(&seqs[1..], &data[1..]), NOW_MS, Deadline::NONE)
        .await;
    assert!(again.outcomes.item_failures().is_empty());
    assert_eq!(p.malformed().reports().len(), 1);
    // Nothing written twice: c was written by the first run and skipped by the second.
    assert!(
        p.table().puts().values().all(|&n| n == 1),
        "{:?}",
        p.table().puts()
    );
    assert_eq!(again.stats.stale, 1);
}

// Failure class: partial UnprocessedItems. Only those items go again, within the invocation.
#[tokio::test(start_paused = true)]
async fn unprocessed_items_alone_are_written_again() {
    let p = processor();
    p.table().script_writes([
        WriteScript::Unprocessed(vec![0, 7, 24]),
        WriteScript::Unprocessed(vec![1]),
    ]);
    let data: Vec<Vec<u8>> = (0..60)
        .map(|i| sample(&format!("vol-{i}"), 1, f64::from(i)))
        .collect();
    let seqs = seqs(60);
    let report = p
        .process(&inputs(&seqs, &data), NOW_MS, Deadline::NONE)
        .await;
    assert!(report.outcomes.item_failures().is_empty());
    assert_eq!(p.table().len(), 60);
    assert!(p.table().puts().values().all(|&n| n == 1));
    // 60 items: 3 calls (4 items unprocessed over the first two), then one call of those 4.
    assert_eq!(report.stats.write_calls, 4);
}

// Failure class: writes still failing after the retries (throttling). The earliest such record
// is the checkpoint; the retry writes the rest, nothing twice.
#[tokio::test(start_paused = true)]
async fn writes_that_keep_failing_become_batch_item_failures() {
    let p = processor();
    p.table()
        .script_writes(std::iter::repeat_n(WriteScript::Unprocessed(vec![0]), 5));
    let data: Vec<Vec<u8>> = (0..4)
        .map(|i| sample(&format!("vol-{i}"), 1, 1.0))
        .collect();
    let seqs = seqs(4);
    let report = p
        .process(&inputs(&seqs, &data), NOW_MS, Deadline::NONE)
        .await;
    let failures = report.outcomes.item_failures();
    assert_eq!(failures.len(), 1);
    let failed_at: usize = failures[0].parse::<usize>().unwrap() - 1;
    assert!(matches!(
        report.outcomes.outcome(failed_at),
        Some(Outcome::Retry(_))
    ));
    assert_eq!(p.table().len(), 3);
    let again = p
        .process(
            &inputs(&seqs[failed_at..], &data[failed_at..]),
            NOW_MS,
            Deadline::NONE,
        )
        .await;
    assert!(again.outcomes.item_failures().is_empty());
    assert_eq!(p.table().len(), 4);
    assert!(
        p.table().puts().values().all(|&n| n == 1),
        "{:?}",
        p.table().puts()
    );
}

// Failure class: the processor dies mid-batch (its calls fail from some point on, and Lambda
// retries the whole batch). The rerun writes what is missing and nothing twice.
#[tokio::test(start_paused = true)]
async fn a_crash_mid_batch_is_repaired_by_the_rerun_without_double_writes() {
    let p = processor();
    // The first write call goes through; everything after fails until the "crash" is over.
    p.table().script_writes(
        std::iter::once(WriteScript::Unprocessed(vec![]))
            .chain(std::iter::repeat_n(WriteScript::Fail, 20)),
    );
    let data: Vec<Vec<u8>> = (0..100)
        .map(|i| sample(&format!("vol-{i}"), 1, 1.0))
        .collect();
    let seqs = seqs(100);
    let first = p
        .process(&inputs(&seqs, &data), NOW_MS, Deadline::NONE)
        .await;
    let written_before = p.table().len();
    assert_eq!(written_before, 25, "one call of 25 went through");
    assert_eq!(first.stats.retried, 75);
    // Lambda's retry of the whole batch (bisect or not: the same records again).
    let rerun = p
        .process(&inputs(&seqs, &data), NOW_MS, Deadline::NONE)
        .await;
    assert!(rerun.outcomes.item_failures().is_empty());
    assert_eq!(rerun.stats.stale, 25, "already written, skipped");
    assert_eq!(rerun.stats.written, 75);
    assert_eq!(p.table().len(), 100);
    assert!(p.table().puts().values().all(|&n| n == 1));
}

// Late and replayed events: never over a newer state; within a batch the newest wins.
#[tokio::test]
async fn a_late_or_replayed_event_never_overwrites_a_newer_state() {
    let p = processor();
    let newer = vec![sample("vol-1", 30, 300.0)];
    let s = seqs(1);
    p.process(&inputs(&s, &newer), NOW_MS, Deadline::NONE).await;
    // A late event (older timestamp) and a replay of the stored one.
    let late = vec![sample("vol-1", 10, 100.0), sample("vol-1", 30, 300.0)];
    let s2 = seqs(2);
    let report = p.process(&inputs(&s2, &late), NOW_MS, Deadline::NONE).await;
    assert_eq!(report.stats.written, 0);
    assert_eq!(
        p.table().item("vol-1", "volume").unwrap().payload["metrics"]["iops"],
        300.0
    );
    // In one batch, out of order: the newest is written, once.
    let batch = vec![
        sample("vol-2", 50, 5.0),
        sample("vol-2", 40, 4.0),
        sample("vol-2", 45, 4.5),
    ];
    let s3 = seqs(3);
    let report = p
        .process(&inputs(&s3, &batch), NOW_MS, Deadline::NONE)
        .await;
    assert_eq!((report.stats.written, report.stats.superseded), (1, 2));
    assert_eq!(
        p.table().item("vol-2", "volume").unwrap().payload["metrics"]["iops"],
        5.0
    );
    assert!(p.table().puts().values().all(|&n| n == 1));
}

// A table that cannot be read: nothing is written blind, everything is retried.
#[tokio::test(start_paused = true)]
async fn an_unreadable_table_retries_the_batch_without_writing_blind() {
    let p = processor();
    p.table().fail_reads(10);
    let data = vec![sample("a", 1, 1.0), sample("b", 1, 1.0)];
    let s = seqs(2);
    let report = p.process(&inputs(&s, &data), NOW_MS, Deadline::NONE).await;
    assert_eq!(report.outcomes.item_failures(), ["000001"]);
    assert!(p.table().is_empty());
}

#[tokio::test]
async fn the_response_is_the_kinesis_partial_batch_shape() {
    let p = processor();
    let data = vec![sample("a", 1, 1.0)];
    let s = seqs(1);
    let report = p.process(&inputs(&s, &data), NOW_MS, Deadline::NONE).await;
    assert_eq!(
        serde_json::to_value(report.outcomes.kinesis_response()).unwrap(),
        json!({"batchItemFailures": []})
    );
}
