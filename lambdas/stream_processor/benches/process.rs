//! The processor's CPU work on a 100-record batch: decode (JSON → ingest record), validate
//! (registry schema + business rules), transform (state item → DynamoDB attribute map through
//! serde_dynamo). No I/O. Target: ≥ 200,000 records/s on one core.
//!
//! `cargo bench -p stream-processor --bench process`

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eventfabric_registry::Registry;
use stream_processor::Topics;
use stream_processor::process::item;

fn batch() -> Vec<(String, Vec<u8>)> {
    (0..100)
        .map(|i| {
            let event = if i % 10 == 9 {
                serde_json::json!({
                    "event_type": "storage.health.changed", "timestamp": "2026-11-30T11:00:00.125Z",
                    "entity_id": format!("vol-{i:05}"), "entity_type": "volume",
                    "payload": {"status": "degraded", "reason": "latency over 20 ms for 5 minutes"},
                    "ingest_time": "2026-11-30T11:00:00.300Z", "request_id": "c0ffee00-1234-4cde-8f00-0123456789ab"
                })
            } else {
                serde_json::json!({
                    "event_type": "storage.metrics.sampled", "timestamp": "2026-11-30T11:00:00.125Z",
                    "entity_id": format!("vol-{i:05}"), "entity_type": "volume",
                    "payload": {"metrics": {"iops": 1250.5, "read_iops": 900, "write_iops": 350.5, "throughput_mbps": 48.2, "latency_ms": 1.8, "queue_depth": 4}, "interval_seconds": 10, "region": "eu-west-1"},
                    "ingest_time": "2026-11-30T11:00:00.300Z", "request_id": "c0ffee00-1234-4cde-8f00-0123456789ab"
                })
            };
            (format!("{i:056}"), event.to_string().into_bytes())
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let topics = Topics::compile(&Registry::embedded().unwrap()).unwrap();
    let records = batch();
    println!("record size: {} bytes", records[0].1.len());
    let mut group = c.benchmark_group("stream processor");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.bench_function("decode + validate + transform, 100 records", |b| {
        b.iter(|| {
            let mut items: Vec<HashMap<String, AttributeValue>> = Vec::with_capacity(100);
            for (seq, data) in &records {
                let mut event = topics.check(std::hint::black_box(data)).expect("valid");
                items.push(serde_dynamo::to_item(item(&mut event, seq)).expect("serializes"));
            }
            items
        })
    });
    group.bench_function("decode + validate only", |b| {
        b.iter(|| {
            for (_, data) in &records {
                std::hint::black_box(topics.check(std::hint::black_box(data)).expect("valid"));
            }
        })
    });
    let mut events: Vec<_> = records
        .iter()
        .map(|(_, d)| topics.check(d).unwrap())
        .collect();
    let items: Vec<_> = events
        .iter_mut()
        .zip(&records)
        .map(|(e, (seq, _))| item(e, seq))
        .collect();
    group.bench_function("transform only (serde_dynamo)", |b| {
        b.iter(|| {
            for i in &items {
                std::hint::black_box(
                    serde_dynamo::to_item::<_, HashMap<String, AttributeValue>>(i).unwrap(),
                );
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
