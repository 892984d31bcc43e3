//! The domain processors on EventBridge fixture events, with the in-memory store and sink: what
//! each event writes and publishes, and one test per failure class showing nothing is lost
//! and nothing applied twice.

use std::time::Duration;

use eventfabric_core::publish::{BusNames, Publisher};
use eventfabric_core::{Deadline, MemorySink};
use realtime::domain::Domain;
use realtime::{Applied, MemoryAppStore, ProcessError, Processor, Topics};
use serde_json::{Value, json};

const NOW: i64 = 1_796_472_000_000;

fn processor(sink: MemorySink) -> Processor<MemoryAppStore, MemorySink> {
    processor_of(Domain::Studio, sink)
}

fn processor_of(domain: Domain, sink: MemorySink) -> Processor<MemoryAppStore, MemorySink> {
    Processor::new(
        domain,
        Topics::embedded().unwrap(),
        MemoryAppStore::new(),
        Publisher::new(sink, BusNames::new([("app", "eventfabric-dev-app")])),
    )
}

fn fixture() -> Value {
    serde_json::from_str(include_str!("../fixtures/content-generated.json")).unwrap()
}

fn event(v: Value) -> aws_lambda_events::eventbridge::EventBridgeEvent<Value> {
    serde_json::from_value(v).unwrap()
}

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(5))
}

fn usage(id: &str, used: u64, limit: u64) -> Value {
    json!({
        "version": "0", "id": "x", "detail-type": "Usage Updated", "source": "bayon.coagent.user",
        "time": "2026-12-05T12:00:00Z", "region": "eu-west-1", "resources": [],
        "detail": {
            "id": id, "topic": "account.usage.updated", "schemaVersion": "1.0.0",
            "occurredAt": "2026-12-05T12:00:00Z",
            "payload": {"userId": "user-1", "feature": "content_generations", "used": used, "limit": limit, "period": "2026-12"}
        }
    })
}

#[tokio::test]
async fn content_generated_makes_a_library_item_a_usage_count_and_a_notification() {
    let p = processor(MemorySink::new());
    let out = p.process(&event(fixture()), NOW, deadline()).await.unwrap();
    assert_eq!(
        (out.applied, out.writes, out.follow_ups),
        (Applied::Done, 2, 1)
    );
    let item = p.store().get("USER#user-1", "CONTENT#content-42").unwrap();
    assert_eq!(item["kind"], "library_item");
    assert_eq!(item["title"], "Five things to know about spring listings");
    assert_eq!(item["wordCount"], 1200);
    let usage = p
        .store()
        .get("USER#user-1", "USAGE#content_generations#2026-12")
        .unwrap();
    assert_eq!(usage["count"], 1);
    let sent = p.publisher().sink().take();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (&*sent[0].source, &*sent[0].detail_type),
        ("bayon.coagent.realtime", "Notification")
    );
    let detail: Value = serde_json::from_str(&sent[0].detail).unwrap();
    assert_eq!(detail["causationId"], "evt-content-1");
    assert_eq!(detail["payload"]["kind"], "content_generated");
    assert_eq!(detail["payload"]["userId"], "user-1");
    assert_eq!(detail["payload"]["resourceId"], "content-42");
}

#[tokio::test]
async fn a_redelivered_event_changes_nothing_and_republishes_the_same_follow_up() {
    let p = processor(MemorySink::new());
    p.process(&event(fixture()), NOW, deadline()).await.unwrap();
    let first = p.publisher().sink().take();
    let again = p.process(&event(fixture()), NOW, deadline()).await.unwrap();
    assert_eq!(again.applied, Applied::Duplicate);
    let usage = p
        .store()
        .get("USER#user-1", "USAGE#content_generations#2026-12")
        .unwrap();
    assert_eq!(usage["count"], 1, "counted once");
    let second = p.publisher().sink().take();
    assert_eq!(
        second[0].id, first[0].id,
        "the same follow-up id: consumers dedupe"
    );
}

#[tokio::test]
async fn a_store_failure_writes_nothing_and_the_retry_applies_it_once() {
    let p = processor(MemorySink::new());
    p.store().fail_next(1);
    let err = p
        .process(&event(fixture()), NOW, deadline())
        .await
        .unwrap_err();
    assert!(matches!(err, ProcessError::Store(_)), "{err}");
    assert_eq!(p.store().data_items(), 0);
    assert!(
        p.publisher().sink().published().is_empty(),
        "nothing announced that was not stored"
    );
    let out = p.process(&event(fixture()), NOW, deadline()).await.unwrap();
    assert_eq!(out.applied, Applied::Done);
    assert_eq!(p.store().data_items(), 2);
}

#[tokio::test]
async fn a_follow_up_that_fails_after_the_write_goes_out_on_the_retry() {
    let store = MemoryAppStore::new();
    let with_sink = |sink| {
        Processor::new(
            Domain::Studio,
            Topics::embedded().unwrap(),
            &store,
            Publisher::new(sink, BusNames::new([("app", "eventfabric-dev-app")])),
        )
    };
    // The bus refuses the notification: the invocation fails (EventBridge retries it).
    let broken = with_sink(MemorySink::failing_for(["Notification"]));
    let err = broken
        .process(&event(fixture()), NOW, deadline())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ProcessError::FollowUps {
                failed: 1,
                total: 1,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(store.data_items(), 2, "the state change is kept");
    // The retry, on a bus that works again: no second count, the notification goes out.
    let working = with_sink(MemorySink::new());
    let out = working
        .process(&event(fixture()), NOW, deadline())
        .await
        .unwrap();
    assert_eq!(out.applied, Applied::Duplicate);
    assert_eq!(
        store
            .get("USER#user-1", "USAGE#content_generations#2026-12")
            .unwrap()["count"],
        1
    );
    assert_eq!(working.publisher().sink().take().len(), 1);
}

#[tokio::test]
async fn malformed_and_misrouted_events_are_refused_with_every_field_named() {
    let p = processor(MemorySink::new());
    let mut bad = fixture();
    bad["detail"]["payload"]["contentType"] = "poem".into();
    bad["detail"]["payload"]["title"] = "".into();
    bad["detail"]["payload"]["extra"] = 1.into();
    bad["detail"]["occurredAt"] = "yesterday".into();
    let err = p.process(&event(bad), NOW, deadline()).await.unwrap_err();
    let ProcessError::Refused(refused) = err else {
        panic!("{err}")
    };
    let text = refused.0.join("\n");
    for field in [
        "detail.occurredAt",
        "detail.payload/contentType",
        "detail.payload/title",
        "extra",
    ] {
        assert!(text.contains(field), "{field} not named in {text}");
    }
    let mut foreign = fixture();
    foreign["source"] = "bayon.coagent.unknown".into();
    let err = p
        .process(&event(foreign), NOW, deadline())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no topic of the app bus"), "{err}");
    let mut wrong_topic = fixture();
    wrong_topic["detail"]["topic"] = "studio.content.updated".into();
    let err = p
        .process(&event(wrong_topic), NOW, deadline())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("detail.topic"), "{err}");
    let mut long_id = fixture();
    long_id["detail"]["id"] = "x".repeat(129).into();
    let err = p
        .process(&event(long_id), NOW, deadline())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("detail.id"), "{err}");
    assert_eq!(p.store().data_items(), 0);
    assert!(p.publisher().sink().published().is_empty());
}

#[tokio::test]
async fn usage_near_the_limit_warns_once_per_threshold() {
    let p = processor_of(Domain::Account, MemorySink::new());
    let ids = |p: &Processor<MemoryAppStore, MemorySink>| -> Vec<String> {
        p.publisher()
            .sink()
            .take()
            .into_iter()
            .map(|e| e.id)
            .collect()
    };
    p.process(&event(usage("u-79", 79, 100)), NOW, deadline())
        .await
        .unwrap();
    assert!(ids(&p).is_empty(), "below 80 %: no warning");
    p.process(&event(usage("u-85", 85, 100)), NOW, deadline())
        .await
        .unwrap();
    let at_80 = ids(&p);
    assert_eq!(at_80.len(), 1);
    p.process(&event(usage("u-90", 90, 100)), NOW, deadline())
        .await
        .unwrap();
    assert_eq!(
        ids(&p),
        at_80,
        "the same threshold: the same id, deduped downstream"
    );
    p.process(&event(usage("u-100", 100, 100)), NOW, deadline())
        .await
        .unwrap();
    let at_100 = ids(&p);
    assert_eq!(at_100.len(), 1);
    assert_ne!(at_100, at_80);
    // Extremes: a zero limit warns of nothing; u64::MAX used does not overflow.
    p.process(&event(usage("u-0", 5, 0)), NOW, deadline())
        .await
        .unwrap();
    assert!(ids(&p).is_empty());
    p.process(&event(usage("u-max", u64::MAX, u64::MAX)), NOW, deadline())
        .await
        .unwrap();
    assert_eq!(ids(&p).len(), 1);
}

fn fixture_named(name: &str) -> Value {
    let path = format!("{}/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn published(p: &Processor<MemoryAppStore, MemorySink>) -> Vec<(String, Value)> {
    p.publisher()
        .sink()
        .take()
        .into_iter()
        .map(|e| {
            assert_eq!(e.event_bus_name, "eventfabric-dev-app");
            let detail: Value = serde_json::from_str(&e.detail).unwrap();
            (format!("{} / {}", e.source, e.detail_type), detail)
        })
        .collect()
}

#[tokio::test]
async fn a_processor_refuses_a_topic_of_another_domain() {
    let p = processor_of(Domain::Brand, MemorySink::new());
    let err = p
        .process(&event(fixture()), NOW, deadline())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("studio.content.generated is not handled by the brand processor"),
        "{err}"
    );
    assert_eq!(p.store().data_items(), 0);
}

#[tokio::test]
async fn job_progress_becomes_a_progress_push() {
    let p = processor(MemorySink::new());
    let out = p
        .process(&event(fixture_named("job-progress")), NOW, deadline())
        .await
        .unwrap();
    assert_eq!((out.writes, out.follow_ups), (0, 1));
    let sent = published(&p);
    assert_eq!(sent[0].0, "bayon.coagent.realtime / Job Progress Update");
    assert_eq!(sent[0].1["topic"], "realtime.job.progress");
    assert_eq!(sent[0].1["causationId"], "evt-job-1");
    assert_eq!(
        sent[0].1["payload"],
        json!({"userId": "user-1", "jobId": "job-7", "percent": 40, "status": "running", "message": "Drafting"})
    );
}

#[tokio::test]
async fn a_name_address_or_phone_change_requests_an_audit_and_a_market_area_change_a_competitor_refresh()
 {
    let p = processor_of(Domain::Brand, MemorySink::new());
    let out = p
        .process(&event(fixture_named("profile-updated")), NOW, deadline())
        .await
        .unwrap();
    assert_eq!((out.writes, out.follow_ups), (1, 2));
    let item = p.store().get("USER#user-1", "BRAND#profile-9").unwrap();
    assert_eq!(item["marketArea"], "Austin, TX");
    let sent = published(&p);
    assert_eq!(sent[0].0, "bayon.coagent.brand / Brand Audit Requested");
    assert_eq!(sent[0].1["payload"]["reason"], json!(["name", "phone"]));
    assert_eq!(
        sent[1].0,
        "bayon.coagent.brand / Competitor Refresh Requested"
    );
    assert_eq!(sent[1].1["payload"]["marketArea"], "Austin, TX");

    // Only a logo: recorded, nothing requested.
    let mut logo = fixture_named("profile-updated");
    logo["detail"]["id"] = "evt-profile-2".into();
    logo["detail"]["payload"]["changedFields"] = json!(["logo", "description"]);
    let out = p.process(&event(logo), NOW, deadline()).await.unwrap();
    assert_eq!((out.writes, out.follow_ups), (1, 0));
    assert!(published(&p).is_empty());

    // A market-area change without the new area cannot be followed up: refused, named.
    let mut no_area = fixture_named("profile-updated");
    no_area["detail"]["id"] = "evt-profile-3".into();
    no_area["detail"]["payload"]
        .as_object_mut()
        .unwrap()
        .remove("marketArea");
    let err = p
        .process(&event(no_area), NOW, deadline())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("detail.payload.marketArea"),
        "{err}"
    );
    assert!(published(&p).is_empty(), "nothing half-announced");
}

#[tokio::test]
async fn research_completed_stores_a_knowledge_item_and_notifies() {
    let p = processor_of(Domain::Research, MemorySink::new());
    let out = p
        .process(&event(fixture_named("query-completed")), NOW, deadline())
        .await
        .unwrap();
    assert_eq!((out.writes, out.follow_ups), (1, 1));
    let item = p.store().get("USER#user-1", "KNOWLEDGE#query-3").unwrap();
    assert_eq!(item["kind"], "knowledge_item");
    assert_eq!(item["sources"], json!(["https://example.com/report"]));
    let sent = published(&p);
    assert_eq!(sent[0].0, "bayon.coagent.realtime / Notification");
    assert_eq!(sent[0].1["payload"]["kind"], "research_completed");
    assert_eq!(sent[0].1["payload"]["resourceId"], "query-3");
}

#[tokio::test]
async fn a_trend_notifies_each_affected_user_once() {
    let p = processor_of(Domain::Market, MemorySink::new());
    let out = p
        .process(&event(fixture_named("trend-detected")), NOW, deadline())
        .await
        .unwrap();
    assert_eq!(
        (out.writes, out.follow_ups),
        (1, 3),
        "user-2 is named twice"
    );
    let sent = published(&p);
    let mut users: Vec<_> = sent
        .iter()
        .map(|(kind, d)| {
            assert_eq!(kind, "bayon.coagent.realtime / Notification");
            assert_eq!(d["payload"]["kind"], "trend_detected");
            d["payload"]["userId"].as_str().unwrap().to_owned()
        })
        .collect();
    users.sort();
    assert_eq!(users, ["user-1", "user-2", "user-3"]);
    let mut ids: Vec<_> = sent.iter().map(|(_, d)| d["id"].clone()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 3, "one id per user");
    assert_eq!(
        p.store().get("TREND#trend-5", "TREND").unwrap()["affectedUsers"],
        3
    );
}

#[tokio::test]
async fn every_domain_handles_topics_of_its_own_source() {
    let topics = Topics::embedded().unwrap();
    for domain in Domain::ALL {
        assert!(!domain.topics().is_empty());
        for topic in domain.topics() {
            assert!(
                topics.source_of(topic).is_some(),
                "{topic} is not an app topic"
            );
        }
    }
}
