//! Notification fan-out through the WebSocket stand-in: 1,000 real WebSocket clients of 100
//! users (10 each, the per-user quota) connected through the stand-in gateway, with the real
//! `$connect` authorizer and routes in-process (memory connections store); the real realtime
//! notifier (registry check, message, `Pusher`) posts through the AWS SDK's management API
//! client to the stand-in, which writes each message to its socket; a round ends when every
//! client has received its message.
//!
//!   cargo bench -p contract-tests --bench fanout
//!   FANOUT_USERS=100 FANOUT_PER_USER=10 FANOUT_ROUNDS=20 cargo bench -p contract-tests --bench fanout
//!
//! Two shapes: one notifier working through the events in turn (one Lambda instance), and
//! every user's event at once (as concurrent invocations would). It prints throughput,
//! per-notification push latency, what every client received (none lost, none twice), and
//! the per-connection cost at AWS list prices (README, "Realtime app events → Figures").

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayWebsocketProxyRequest,
};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use eventfabric_standin::client::Client;
use eventfabric_standin::{Gateway, handler};
use eventfabric_websocket::auth::ConnectAuthorizer;
use eventfabric_websocket::connections::MemoryConnections;
use eventfabric_websocket::push::{ManagementApi, Pusher};
use eventfabric_websocket::routes::{self, RouteSettings};
use realtime::{Notifier, Topics};
use serde_json::{Value, json};

const AUDIENCE: &str = "eventfabric:realtime.connect";
const KEY: &[u8] = b"a-signing-secret-of-at-least-32-bytes!";

/// AWS list prices (us-east-1, x86_64), as in cdk/lib/ingest-capacity.ts.
const LAMBDA_GB_SECOND: f64 = 0.000_016_666_7;
const LAMBDA_REQUEST: f64 = 0.2 / 1e6;
const WEBSOCKET_MESSAGE: f64 = 1.0 / 1e6; // per 32 KB frame
const WEBSOCKET_CONNECTION_MINUTE: f64 = 0.25 / 1e6;
const DYNAMO_READ_UNIT: f64 = 0.125 / 1e6;
const DYNAMO_WRITE_UNIT: f64 = 0.625 / 1e6;
/// The prod notifier's memory (cdk/lib/config/prod.ts).
const NOTIFIER_GB: f64 = 0.5;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn notification(round: usize, user: usize) -> EventBridgeEvent<Value> {
    serde_json::from_value(json!({
        "version": "0",
        "id": format!("bench-{round}-{user}"),
        "detail-type": "Notification",
        "source": "bayon.coagent.realtime",
        "account": "123456789012",
        "time": "2026-12-05T12:00:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": {
            "id": format!("evt-bench-{round}-{user}"),
            "topic": "realtime.notification",
            "schemaVersion": "1.0.0",
            "occurredAt": "2026-12-05T12:00:00Z",
            "payload": {
                "userId": format!("user-{user}"),
                "kind": "content_generated",
                "title": "Ready: Five things to know about spring listings",
                "resourceId": format!("content-{round}")
            }
        }
    }))
    .unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let users = setting("FANOUT_USERS", 100);
    let per_user = setting("FANOUT_PER_USER", 10);
    let rounds = setting("FANOUT_ROUNDS", 20);
    let connections = users * per_user;

    let store = Arc::new(MemoryConnections::new());
    let authorizer = Arc::new(ConnectAuthorizer::new(AUDIENCE, KEY, None).unwrap());
    let routes_store = store.clone();
    let settings = RouteSettings {
        connections_per_principal: per_user,
    };
    let route = handler(move |event: Value| {
        let store = routes_store.clone();
        async move {
            let request: ApiGatewayWebsocketProxyRequest =
                serde_json::from_value(event).map_err(|e| e.to_string())?;
            let outcome =
                routes::handle(&store, settings, &request, eventfabric_core::now_ms()).await;
            serde_json::to_value(outcome.response()).map_err(|e| e.to_string())
        }
    });
    let gateway = Gateway::builder()
        .authorizer(handler(move |event: Value| {
            let authorizer = authorizer.clone();
            async move {
                let request: ApiGatewayCustomAuthorizerRequestTypeRequest =
                    serde_json::from_value(event).map_err(|e| e.to_string())?;
                serde_json::to_value(authorizer.authorize(&request, eventfabric_core::now_ms()))
                    .map_err(|e| e.to_string())
            }
        }))
        .route("$connect", route.clone(), false)
        .route("$disconnect", route.clone(), false)
        .route("$default", route, true)
        .start()
        .await
        .unwrap();

    // Every client counts what it receives, per notification id.
    let received = Arc::new(AtomicU64::new(0));
    let duplicates = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut readers = Vec::new();
    for c in 0..connections {
        let user = c / per_user;
        let exp = eventfabric_core::now_ms() / 1000 + 3600;
        let token = eventfabric_core::token::sign(
            KEY,
            &json!({"sub": format!("user-{user}"), "aud": AUDIENCE, "exp": exp}),
        )
        .unwrap();
        let mut client = Client::connect(&gateway.websocket_url(), Some(&token))
            .await
            .unwrap_or_else(|e| panic!("connection {c}: {e:?}"));
        let (received, duplicates) = (received.clone(), duplicates.clone());
        readers.push(tokio::spawn(async move {
            let mut seen = std::collections::HashSet::new();
            while let Some(m) = client.next_json(Duration::from_secs(120)).await {
                assert_eq!(
                    m["userId"],
                    format!("user-{user}"),
                    "a message for someone else"
                );
                if !seen.insert(m["id"].as_str().unwrap_or_default().to_owned()) {
                    duplicates.fetch_add(1, Ordering::Relaxed);
                }
                received.fetch_add(1, Ordering::Relaxed);
            }
            seen.len()
        }));
    }
    assert_eq!(store.all().len(), connections, "every $connect recorded");
    println!(
        "fan-out: {connections} connections of {users} users connected through the stand-in in {:.2?} (authorizer + $connect each)",
        started.elapsed()
    );

    let sdk = eventfabric_core::aws::loader()
        .region(aws_config::Region::new("eu-west-1"))
        .credentials_provider(aws_sdk_apigatewaymanagement::config::Credentials::new(
            "bench", "bench", None, None, "bench",
        ))
        .load()
        .await;
    let api = ManagementApi::new(
        &aws_sdk_apigatewaymanagement::config::Builder::from(&sdk),
        &gateway.callback_url(),
    );
    let notifier = Arc::new(Notifier::new(
        Topics::embedded().unwrap(),
        Pusher::new(store.clone(), api),
    ));

    let wait_for = |target: u64| {
        let received = received.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while received.load(Ordering::Relaxed) < target {
                assert!(Instant::now() < deadline, "messages missing");
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        }
    };

    let mut expected = 0u64;
    let mut round_id = 0;
    // Warm-up: connections pooled, code paths touched.
    for _ in 0..2 {
        for u in 0..users {
            notifier
                .notify(&notification(round_id, u), eventfabric_core::now_ms())
                .await
                .unwrap();
        }
        round_id += 1;
        expected += connections as u64;
        wait_for(expected).await;
    }

    // One notifier, the events in turn.
    let mut latencies = Vec::new();
    let t = Instant::now();
    for _ in 0..rounds {
        for u in 0..users {
            let t0 = Instant::now();
            let report = notifier
                .notify(&notification(round_id, u), eventfabric_core::now_ms())
                .await
                .unwrap();
            assert_eq!(report.delivered, per_user);
            latencies.push(t0.elapsed());
        }
        round_id += 1;
        expected += connections as u64;
        wait_for(expected).await;
    }
    let sequential = t.elapsed();
    latencies.sort();

    // Every user's event at once.
    let mut round_times = Vec::new();
    let t = Instant::now();
    for _ in 0..rounds {
        let t0 = Instant::now();
        let calls: Vec<_> = (0..users)
            .map(|u| {
                let notifier = notifier.clone();
                let event = notification(round_id, u);
                tokio::spawn(async move {
                    notifier
                        .notify(&event, eventfabric_core::now_ms())
                        .await
                        .unwrap()
                })
            })
            .collect();
        for c in calls {
            assert_eq!(c.await.unwrap().delivered, per_user);
        }
        round_id += 1;
        expected += connections as u64;
        wait_for(expected).await;
        round_times.push(t0.elapsed());
    }
    let concurrent = t.elapsed();
    round_times.sort();

    drop(gateway);
    let notifications = (users * rounds) as f64;
    let deliveries = (connections * rounds) as f64;
    let total_rounds = round_id as u64;
    println!();
    println!("| shape | notifications/s | messages delivered/s | latency |");
    println!("|---|---|---|---|");
    println!(
        "| one notifier, events in turn | {:.0} | {:.0} | push of one notification to its {per_user} connections: p50 {:.2?}, p99 {:.2?} |",
        notifications / sequential.as_secs_f64(),
        deliveries / sequential.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    );
    println!(
        "| {users} events at once | {:.0} | {:.0} | a round to all {connections} clients: p50 {:.2?}, p99 {:.2?} |",
        notifications / concurrent.as_secs_f64(),
        deliveries / concurrent.as_secs_f64(),
        percentile(&round_times, 0.5),
        percentile(&round_times, 0.99),
    );
    let got = received.load(Ordering::Relaxed);
    let want = total_rounds * connections as u64;
    println!(
        "\nreceived {got} of {want} messages ({} lost), {} twice",
        want.saturating_sub(got),
        duplicates.load(Ordering::Relaxed)
    );
    assert_eq!(got, want);
    assert_eq!(duplicates.load(Ordering::Relaxed), 0);

    // Cost per delivered message: the API Gateway message, plus the notifier invocation and
    // its by-user query shared by the user's connections. The invocation's duration here is
    // loopback's; on AWS a post takes the management API's round trip, so the model also
    // prices a 50 ms invocation.
    let p50 = percentile(&latencies, 0.5).as_secs_f64();
    let per_delivery = |seconds: f64| {
        WEBSOCKET_MESSAGE
            + (LAMBDA_REQUEST + seconds * NOTIFIER_GB * LAMBDA_GB_SECOND + 0.5 * DYNAMO_READ_UNIT)
                / per_user as f64
    };
    println!(
        "\nper-connection cost (AWS list prices, prod notifier at 512 MB, {per_user} connections per user):"
    );
    println!(
        "- a delivered message: ${:.3} per million at the measured {:.1} ms invocation, ${:.3} per million at 50 ms",
        per_delivery(p50) * 1e6,
        p50 * 1e3,
        per_delivery(0.05) * 1e6
    );
    // A connection held for an hour: connection minutes, the authorizer and $connect and
    // $disconnect invocations (128 MB, ~10 ms each), the quota query, the put and the delete.
    let session = 60.0 * WEBSOCKET_CONNECTION_MINUTE
        + 3.0 * (LAMBDA_REQUEST + 0.01 * 0.125 * LAMBDA_GB_SECOND)
        + 0.5 * DYNAMO_READ_UNIT
        + 2.0 * DYNAMO_WRITE_UNIT;
    println!(
        "- a connection held one hour: ${:.2} per million connection-hours (connection minutes ${:.2} of it)",
        session * 1e6,
        60.0 * WEBSOCKET_CONNECTION_MINUTE * 1e6
    );
    let _ = readers;
}
