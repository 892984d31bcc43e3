//! The forward hot path: parse a 10-event request, validate each event against its compiled
//! schema, redact (drop and keyed hash), and map the survivors to PutEvents entries. Publishing
//! is a no-op sink and there is no quota/idempotency store, so this measures our code, not the
//! network.
//!
//!     cargo bench -p forward-api --bench hot_path
//!
//! Throughput is reported in events per second (one core: criterion runs single-threaded).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eventfabric_core::{BusEntry, Deadline, EventSink, PublishError};
use eventfabric_registry::Registry;
use forward_api::request::{RequestLimits, parse_request};
use forward_api::state::Stateless;
use forward_api::{Answer, CompiledTopics, ForwardConfig, Forwarder, Redactor};
use serde_json::json;

/// The function's allocator (see `src/main.rs`), so the figures are the deployed code's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const NOW: i64 = 1_767_225_600_000;

/// Drops entries after counting them, so the benchmark measures mapping, not storage.
struct DiscardSink;

impl EventSink for DiscardSink {
    async fn publish(
        &self,
        entries: &[BusEntry<'_>],
        _: Deadline,
    ) -> Vec<Result<(), PublishError>> {
        black_box(entries);
        vec![Ok(()); entries.len()]
    }
}

/// Ten valid events across topics, with redaction on two of them: the common case.
fn request_body() -> String {
    let mut events = Vec::new();
    for i in 0..10 {
        let event = match i % 5 {
            0 => {
                json!({"id": format!("e{i}"), "ts": NOW - 500, "topic": "session.lifecycle.started",
                        "payload": {"tenantId": "acme", "locale": "en-GB", "userAgent": "Mozilla/5.0 (X11; Linux x86_64)"},
                        "meta": {"page": "/chat"}, "schemaVersion": "1.0.0"})
            }
            1 => json!({"id": format!("e{i}"), "ts": NOW - 400, "topic": "session.lifecycle.ended",
                        "payload": {"tenantId": "acme", "reason": "closed", "durationMs": 61234}, "schemaVersion": "1.0.0"}),
            2 => json!({"id": format!("e{i}"), "ts": NOW - 300, "topic": "session.summary.final",
                        "payload": {"tenantId": "acme", "conversationId": "c-42", "turns": 12,
                                    "summary": "The customer asked about a duplicate charge on the last invoice and was refunded."},
                        "schemaVersion": "1.0.0"}),
            3 => {
                json!({"id": format!("e{i}"), "ts": NOW - 200, "topic": "moderation.message.flagged",
                        "payload": {"tenantId": "acme", "messageId": "m-9", "category": "spam", "score": 0.93},
                        "schemaVersion": "1.0.0"})
            }
            _ => json!({"id": format!("e{i}"), "ts": NOW - 100, "topic": "user.profile.updated",
                        "payload": {"tenantId": "acme", "userId": "u-7", "changedFields": ["email", "phone"],
                                    "email": "ada@example.com", "phone": "+44 20 7946 0000"},
                        "schemaVersion": "1.0.0"}),
        };
        events.push(event);
    }
    json!({"events": events, "client": {"appVersion": "4.2.0", "sessionId": "sess-123", "tabId": "tab-1", "nonce": "n-1"}})
        .to_string()
}

fn hot_path(c: &mut Criterion) {
    let topics = CompiledTopics::compile(&Registry::embedded().unwrap()).unwrap();
    let forwarder = Forwarder::new(
        topics,
        DiscardSink,
        Stateless,
        ForwardConfig::with_buses("session-bus", None),
    )
    .with_redactor(Redactor::from_secret(
        b"benchmark-secret-of-at-least-32-bytes",
    ));
    let body = request_body();
    let limits = RequestLimits {
        max_body_bytes: 256 * 1024,
        max_events: 50,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        // The forwarder bounds its store calls with tokio's timer.
        .enable_time()
        .build()
        .unwrap();

    // Sanity: every event passes, so the benchmark measures the full path.
    let request = parse_request(&body, limits).unwrap();
    let forwarded = runtime.block_on(forwarder.forward(request, NOW, Deadline::NONE));
    let Answer::Events(outcome) = forwarded.answer else {
        panic!("{forwarded:?}")
    };
    assert_eq!(outcome.accepted.len(), 10, "{:?}", outcome.rejected);

    let mut group = c.benchmark_group("forward");
    group.throughput(Throughput::Elements(10));
    group.bench_function("10-event request", |b| {
        b.iter(|| {
            let request = parse_request(black_box(&body), limits).unwrap();
            runtime.block_on(forwarder.forward(request, NOW, Deadline::NONE))
        })
    });
    // The body pass alone, to tell parsing from checking and mapping.
    group.bench_function("parse only", |b| {
        b.iter(|| parse_request(black_box(&body), limits).unwrap())
    });
    group.finish();
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
