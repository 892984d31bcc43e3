//! The tunnel's failure cases (crate README, "Failure cases"), each on the simulated world
//! with the real forwarder, waiter, response route and notifier under a paused clock: the
//! answer reaches the caller or the caller gets the error it should, and nothing is lost.

use std::time::Duration;

use tunnel::forward::{Path, Settings};
use tunnel::pending::Status;
use tunnel::rollout::Rollout;
use tunnel::sim::{Conditions, World};

const ON: Rollout = Rollout {
    use_event_driven: true,
    canary_percent: 100,
};

fn settings() -> Settings {
    Settings {
        timeout: Duration::from_secs(5),
        ..Settings::default()
    }
}

fn world(conditions: Conditions, latency_ms: Option<u64>) -> World {
    World::new(ON, settings(), conditions, move |_| {
        latency_ms.map(Duration::from_millis)
    })
}

#[tokio::test(start_paused = true)]
async fn the_push_wakes_the_waiter_which_reads_the_answer_once() {
    let w = world(Conditions::default(), Some(300));
    let t0 = tokio::time::Instant::now();
    let answer = w.call("req-1", "agent-1").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, b"answer to GET /status");
    assert_eq!(answer.path, Path::EventDriven);
    assert_eq!((answer.stats.reads, answer.stats.pushes), (1, 1));
    // 300 ms agent + table calls + the response route's 15 ms push: no stream, no polling
    // interval in the way.
    let took = t0.elapsed();
    assert!(took < Duration::from_millis(350), "{took:?}");
    tokio::time::sleep(Duration::from_millis(500)).await; // the stream notifier, later
    assert_eq!(w.published(), 1, "HttpResponseReady for other consumers");
    assert_eq!(w.waiter.wakeups.waiting(), 0, "no slot left behind");
}

#[tokio::test(start_paused = true)]
async fn without_the_direct_push_the_stream_notifier_wakes_the_waiter() {
    let w = world(
        Conditions {
            direct_wake: false,
            ..Conditions::default()
        },
        Some(300),
    );
    let t0 = tokio::time::Instant::now();
    let answer = w.call("req-1", "agent-1").await;
    assert_eq!(answer.status, 200);
    assert_eq!((answer.stats.reads, answer.stats.pushes), (1, 1));
    let took = t0.elapsed();
    assert!(
        took > Duration::from_millis(450) && took < Duration::from_millis(520),
        "{took:?}: through the stream"
    );
}

#[tokio::test(start_paused = true)]
async fn a_lost_push_is_caught_by_the_final_read_at_the_deadline() {
    let w = world(
        Conditions {
            drop_pushes: true,
            ..Conditions::default()
        },
        Some(300),
    );
    let t0 = tokio::time::Instant::now();
    let answer = w.call("req-1", "agent-1").await;
    assert_eq!(answer.status, 200, "the answer is not lost");
    assert_eq!((answer.stats.reads, answer.stats.pushes), (1, 0));
    assert!(
        t0.elapsed() >= Duration::from_secs(5),
        "it waited for the deadline"
    );
}

#[tokio::test(start_paused = true)]
async fn a_duplicate_push_finds_no_waiter_and_changes_nothing() {
    let w = world(
        Conditions {
            duplicate_pushes: true,
            ..Conditions::default()
        },
        Some(200),
    );
    let answer = w.call("req-1", "agent-1").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.stats.reads, 1);
    tokio::time::sleep(Duration::from_millis(100)).await; // the second push lands after
    assert_eq!(w.waiter.wakeups.waiting(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_answer_before_the_waiter_waits_still_wakes_it() {
    // The agent answers at once and the stream and push take no time: the push can only find
    // the slot because it is registered before the item is written.
    let w = world(
        Conditions {
            stream_delay: Duration::ZERO,
            push_latency: Duration::ZERO,
            table_latency: Duration::ZERO,
            ..Conditions::default()
        },
        Some(0),
    );
    let t0 = tokio::time::Instant::now();
    let answer = w.call("req-1", "agent-1").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.stats.pushes, 1);
    assert!(
        t0.elapsed() < Duration::from_millis(50),
        "{:?}",
        t0.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_gone_waiter_is_not_a_failure_and_the_answer_stays_readable() {
    let w = World::new(
        ON,
        Settings {
            timeout: Duration::from_millis(200),
            ..Settings::default()
        },
        Conditions {
            waiter_gone: true,
            ..Conditions::default()
        },
        |_| Some(Duration::from_millis(400)),
    );
    let answer = w.call("req-1", "agent-1").await;
    assert_eq!(answer.status, 504, "the caller stopped waiting first");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let item = w.pending.item("req-1").expect("kept until its TTL");
    assert_eq!(item.status, Status::Completed, "the late answer is stored");
    assert_eq!(
        w.published(),
        1,
        "and published; the 410 on the push failed nothing"
    );
}

#[tokio::test(start_paused = true)]
async fn no_answer_times_out_with_504_after_one_final_read() {
    let w = world(Conditions::default(), None);
    let answer = w.call("req-1", "agent-1").await;
    assert_eq!(answer.status, 504);
    assert_eq!(answer.stats.reads, 1);
    assert!(
        w.pending.item("req-1").unwrap().expires_at > 0,
        "the item expires by TTL"
    );
    assert_eq!(w.waiter.wakeups.waiting(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_agent_that_is_not_connected_gets_502_and_leaves_no_item() {
    let w = world(Conditions::default(), Some(100));
    let answer = w.call("req-1", "offline").await;
    assert_eq!(answer.status, 502);
    assert!(
        String::from_utf8(answer.body)
            .unwrap()
            .contains("agent_not_connected")
    );
    assert!(w.pending.is_empty());
    assert_eq!(w.waiter.wakeups.waiting(), 0);
}

#[tokio::test(start_paused = true)]
async fn with_the_flag_off_every_request_polls_and_still_gets_its_answer() {
    let w = World::new(Rollout::POLLING, settings(), Conditions::default(), |_| {
        Some(Duration::from_millis(300))
    });
    let answer = w.call("req-1", "agent-1").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.path, Path::Polling);
    assert_eq!(answer.stats.pushes, 0);
    // 50, 75, 112, 168 ms waits: the fourth read (at ~405 ms of reads and waits) sees it.
    assert!(answer.stats.reads >= 3, "{:?}", answer.stats);
}

#[tokio::test(start_paused = true)]
async fn without_a_waiter_connection_the_request_falls_back_to_polling() {
    let w = world(Conditions::default(), Some(300));
    *w.waiter.broken.lock().unwrap() = true;
    let answer = w.call("req-1", "agent-1").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.path, Path::Polling);
    assert!(w.pending.item("req-1").unwrap().waiter.is_none());
}

#[tokio::test(start_paused = true)]
async fn an_answer_for_another_agents_request_is_refused() {
    let w = world(Conditions::default(), None);
    let caller = w.spawn_call("req-1", "agent-1", "/");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let forged = r#"{"action":"response","requestId":"req-1","status":200,"body":""}"#;
    let answer = tunnel::agent::respond(
        &*w.pending,
        &*w.bodies,
        &tunnel::sim::NoPush,
        "agent-2",
        forged,
        0,
    )
    .await;
    assert_eq!(answer.status, 404);
    let own = tunnel::agent::respond(
        &*w.pending,
        &*w.bodies,
        &tunnel::sim::NoPush,
        "agent-1",
        forged,
        0,
    )
    .await;
    assert_eq!(own.status, 200);
    let again = tunnel::agent::respond(
        &*w.pending,
        &*w.bodies,
        &tunnel::sim::NoPush,
        "agent-1",
        forged,
        0,
    )
    .await;
    assert_eq!(
        again.body["duplicate"], true,
        "a repeated answer changes nothing"
    );
    assert_eq!(caller.await.unwrap().status, 200);
}

#[tokio::test(start_paused = true)]
async fn a_large_body_goes_to_the_bodies_bucket_and_back() {
    let w = world(Conditions::default(), None);
    let caller = w.spawn_call("req-big", "agent-1", "/big");
    tokio::time::sleep(Duration::from_millis(50)).await;
    use base64::Engine;
    let big = vec![7u8; 90 * 1024];
    let message = serde_json::json!({"action": "response", "requestId": "req-big", "status": 200,
        "body": base64::engine::general_purpose::STANDARD.encode(&big)})
    .to_string();
    assert_eq!(
        tunnel::agent::respond(
            &*w.pending,
            &*w.bodies,
            &tunnel::sim::NoPush,
            "agent-1",
            &message,
            0
        )
        .await
        .status,
        200
    );
    assert_eq!(w.bodies.keys(), ["responses/agent-1/req-big"]);
    let answer = caller.await.unwrap();
    assert_eq!(answer.body, big);
}

#[tokio::test(start_paused = true)]
async fn an_agents_answer_at_the_extremes_gets_a_named_400_and_stores_nothing() {
    let w = world(Conditions::default(), None);
    let respond = |message: String| {
        let (pending, bodies) = (w.pending.clone(), w.bodies.clone());
        async move {
            tunnel::agent::respond(
                &*pending,
                &*bodies,
                &tunnel::sim::NoPush,
                "agent-1",
                &message,
                0,
            )
            .await
        }
    };
    let long_id = "r".repeat(129);
    for (message, says) in [
        (
            format!(r#"{{"action":"response","requestId":"{long_id}","status":200}}"#),
            "requestId",
        ),
        (
            r#"{"action":"response","requestId":"","status":200}"#.to_owned(),
            "requestId",
        ),
        (
            "{\"action\":\"response\",\"requestId\":\"a\\u0007b\",\"status\":200}".to_owned(),
            "requestId",
        ),
        (
            r#"{"action":"response","requestId":"req-1","status":70000}"#.to_owned(),
            "send",
        ),
        (
            r#"{"action":"response","requestId":"req-1","status":99}"#.to_owned(),
            "status",
        ),
        (
            r#"{"action":"response","requestId":"req-1","status":-1}"#.to_owned(),
            "send",
        ),
        (
            r#"{"action":"response","requestId":"req-1","status":200,"body":"%%%"}"#.to_owned(),
            "body",
        ),
        (
            r#"{"action":"response","requestId":"req-1","status":200,"headers":{"x":"a\nb"}}"#
                .to_owned(),
            "headers",
        ),
        (
            r#"{"action":"response","requestId":"req-1","status":200,"extra":1}"#.to_owned(),
            "send",
        ),
    ] {
        let answer = respond(message.clone()).await;
        assert_eq!(answer.status, 400, "{message}: {answer:?}");
        assert!(
            answer.body["message"].as_str().unwrap().contains(says),
            "{message}: {answer:?}"
        );
    }
    assert!(w.pending.is_empty() && w.bodies.keys().is_empty());
}
