//! The ingest function's own work on a full request: 500 events parsed, checked, enriched and
//! encoded as stream records, written to the in-memory stream (no network). What one
//! invocation costs in CPU, to set beside the moto burst, whose rate is the emulator's.
//!
//! `cargo bench -p ingest-api --bench handle`

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eventfabric_core::Deadline;
use eventfabric_registry::Registry;
use ingest_api::{DEFAULT_RETRY, Ingest, MemoryStream, StreamTopics};

fn request() -> ApiGatewayV2httpRequest {
    let events: Vec<serde_json::Value> = (0..500)
        .map(|i| {
            serde_json::json!({
                "event_type": "storage.metrics.sampled", "timestamp": "2026-11-30T11:00:00.125Z",
                "entity_id": format!("vol-{i:05}"), "entity_type": "volume",
                "payload": {"metrics": {"iops": 1250.5, "read_iops": 900, "write_iops": 350.5, "throughput_mbps": 48.2, "latency_ms": 1.8, "queue_depth": 4}, "interval_seconds": 10, "region": "eu-west-1"}
            })
        })
        .collect();
    let mut r = ApiGatewayV2httpRequest::default();
    r.body = Some(serde_json::json!({ "events": events }).to_string());
    r.request_context.request_id = Some("c0ffee00-1234-4cde-8f00-0123456789ab".into());
    r
}

fn bench(c: &mut Criterion) {
    let topics = StreamTopics::from_registry(&Registry::embedded().unwrap());
    let request = request();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("ingest api");
    group.throughput(Throughput::Elements(500));
    group.bench_function("a request of 500 events to the in-memory stream", |b| {
        b.iter_batched(
            || Ingest::new(topics.clone(), MemoryStream::new(), DEFAULT_RETRY),
            |ingest| {
                let response =
                    runtime.block_on(ingest.handle(&request, 1_796_040_000_000, Deadline::NONE));
                assert_eq!(response.status_code, 202);
            },
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
