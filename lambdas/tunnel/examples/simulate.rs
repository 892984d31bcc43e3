//! The deterministic simulation of both waiting paths (crate README, "Figures"): the real
//! forwarder, waiters, response route and notifier in the simulated world (`tunnel::sim`) on
//! tokio's paused clock — nothing sleeps, the same seed gives the same table.
//!
//!   cargo run --release -p tunnel --example simulate
//!   SIM_REQUESTS=5000 SIM_SEED=7 cargo run --release -p tunnel --example simulate
//!
//! Requests arrive every 20 ms; each agent answers after 100–500 ms (uniform, seeded); a table
//! call takes 5 ms; the stream reaches the notifier 100–300 ms after a write; a push takes
//! 15 ms. For each path: DynamoDB reads per request, the latency added after the answer was
//! stored (p50/p99), the forwarding invocation's duration (p50/p99), and a cost per million
//! requests at list prices.

use std::sync::Arc;
use std::time::Duration;

use tunnel::forward::{Path, Settings};
use tunnel::rollout::Rollout;
use tunnel::sim::{Conditions, World};

const LAMBDA_GB_SECOND: f64 = 0.000_016_666_7;
const LAMBDA_REQUEST: f64 = 0.2 / 1e6;
const DYNAMO_READ_UNIT: f64 = 0.125 / 1e6; // a strongly consistent read of ≤ 4 KB
const DYNAMO_WRITE_UNIT: f64 = 0.625 / 1e6;
const WEBSOCKET_MESSAGE: f64 = 1.0 / 1e6;
/// The forwarding function's memory.
const FORWARD_GB: f64 = 0.25;
/// The notifier: one invocation per completion at low load (batches share it at high load),
/// 128 MB, about 20 ms.
const NOTIFIER_COST: f64 = LAMBDA_REQUEST + 0.02 * 0.125 * LAMBDA_GB_SECOND;
const EVENTBRIDGE_EVENT: f64 = 1.0 / 1e6;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Run {
    reads: f64,
    added: Vec<Duration>,
    duration: Vec<Duration>,
    ok: usize,
    requests: usize,
    pushes: f64,
}

fn run(rollout: Rollout, direct_wake: bool, requests: u64, seed: u64) -> Run {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async move {
        let mut rng = fastrand::Rng::with_seed(seed);
        let latencies: Arc<Vec<Duration>> = Arc::new(
            (0..requests)
                .map(|_| Duration::from_millis(rng.u64(100..=500)))
                .collect(),
        );
        let l = latencies.clone();
        let world = Arc::new(World::new(
            rollout,
            Settings::default(),
            Conditions {
                stream_delay: Duration::from_millis(100),
                stream_jitter: Duration::from_millis(200),
                direct_wake,
                ..Conditions::default()
            },
            move |id| {
                let i: usize = id.trim_start_matches("req-").parse().ok()?;
                Some(l[i])
            },
        ));
        let mut calls = Vec::new();
        for i in 0..requests {
            let w = world.clone();
            calls.push(tokio::spawn(async move {
                let t0 = tokio::time::Instant::now();
                let answer = w.call(&format!("req-{i}"), "agent-1").await;
                let end = tokio::time::Instant::now();
                (i, answer, t0, end)
            }));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut out = Run {
            reads: 0.0,
            added: vec![],
            duration: vec![],
            ok: 0,
            requests: requests as usize,
            pushes: 0.0,
        };
        for c in calls {
            let (i, answer, t0, end) = c.await.unwrap();
            out.reads += f64::from(answer.stats.reads);
            out.pushes += f64::from(answer.stats.pushes);
            out.duration.push(end - t0);
            if answer.status == 200 {
                out.ok += 1;
                let done = world.completed.lock().unwrap()[&format!("req-{i}")];
                out.added.push(end - done);
            }
            assert!(matches!(answer.path, Path::Polling | Path::EventDriven));
        }
        out.reads /= requests as f64;
        out.pushes /= requests as f64;
        out.added.sort();
        out.duration.sort();
        out
    })
}

fn main() {
    let requests = setting("SIM_REQUESTS", 2000);
    let seed = setting("SIM_SEED", 42);
    let on = Rollout {
        use_event_driven: true,
        canary_percent: 100,
    };
    let polling = run(Rollout::POLLING, true, requests, seed);
    let streamed = run(on, false, requests, seed);
    let pushed = run(on, true, requests, seed);
    println!(
        "{requests} requests per path, agent latency 100–500 ms (seed {seed}), stream 100–300 ms, push 15 ms, table call 5 ms\n"
    );
    let cost = |r: &Run, push: bool| {
        let mean_s =
            r.duration.iter().map(Duration::as_secs_f64).sum::<f64>() / r.duration.len() as f64;
        let forward = LAMBDA_REQUEST + mean_s * FORWARD_GB * LAMBDA_GB_SECOND;
        let table = r.reads * DYNAMO_READ_UNIT + 2.0 * DYNAMO_WRITE_UNIT;
        // The request to the agent and its answer: two WebSocket messages either way; the
        // notifier and HttpResponseReady run for every completion either way; wake-up pushes
        // (the response route's and the notifier's) only on the event-driven path.
        let shared = 2.0 * WEBSOCKET_MESSAGE + NOTIFIER_COST + EVENTBRIDGE_EVENT;
        let wake = if push { 2.0 * WEBSOCKET_MESSAGE } else { 0.0 };
        (forward + table + shared + wake) * 1e6
    };
    let runs = [(&polling, false), (&streamed, true), (&pushed, true)];
    let row = |label: &str, f: &dyn Fn(&Run, bool) -> String, target: &str| {
        let cells: Vec<String> = runs.iter().map(|(r, p)| f(r, *p)).collect();
        println!("| {label} | {} | {target} |", cells.join(" | "));
    };
    println!(
        "| | polling | event-driven, woken by the stream notifier only | event-driven, woken by the response route (notifier as backup) | plan's target |"
    );
    println!("|---|---|---|---|---|");
    row(
        "answered",
        &|r, _| format!("{} of {}", r.ok, r.requests),
        "all",
    );
    row(
        "DynamoDB reads per request",
        &|r, _| format!("{:.2}", r.reads),
        "15 → 1",
    );
    row(
        "latency added after the answer is stored, p50 / p99",
        &|r, _| {
            format!(
                "{:.0} / {:.0} ms",
                ms(pct(&r.added, 0.5)),
                ms(pct(&r.added, 0.99))
            )
        },
        "—",
    );
    row(
        "caller's latency = invocation duration, p50 / p99",
        &|r, _| {
            format!(
                "{:.0} / {:.0} ms",
                ms(pct(&r.duration, 0.5)),
                ms(pct(&r.duration, 0.99))
            )
        },
        "p99 3,000 → 800 ms; duration 1,500 → 300 ms",
    );
    row(
        "cost per million requests",
        &|r, p| format!("${:.2}", cost(r, p)),
        "—",
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
