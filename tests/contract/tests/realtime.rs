//! The realtime processors on moto: the app bus with every synthesized realtime rule (each
//! function's rule delivering to a queue that stands in for the function, which moto cannot
//! run), the app and connections tables as the stateful template declares them. An event put
//! on the bus reaches its processor's queue through its synthesized rule; the real processor
//! (DynamoDB and EventBridge adapters) applies it to moto's table and publishes its follow-ups,
//! which reach the notifier's or the brand requests' queue through theirs. One test per
//! follow-up; plus exactly-once application on the real table, and the connections store.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use eventfabric_core::publish::{BusNames, Publisher};
use eventfabric_core::{Deadline, EventBridgeApi, EventBridgeSink, RetryPolicy};
use eventfabric_websocket::connections::{Connection, ConnectionStore, DynamoConnections};
use realtime::domain::Domain;
use realtime::{Applied, DynamoAppStore, Processor, Topics};
use serde_json::Value;
use support::{Moto, drain, queue, synthesized_resource, synthesized_template};

const BUS: &str = "eventfabric-dev-app";
const APP_TABLE: &str = "eventfabric-dev-realtime-app";
const CONNECTIONS_TABLE: &str = "eventfabric-dev-realtime-connections";
const SUBSCRIPTIONS_TABLE: &str = "eventfabric-dev-realtime-subscriptions";
const INGEST_TABLE: &str = "eventfabric-dev-ingest-state";
/// Every rule of the realtime stateless stack, by the function (or queue) it feeds.
const RULES: [&str; 7] = [
    "studio",
    "brand",
    "research",
    "market",
    "account",
    "notifier",
    "brand-requests",
];

struct Emulated {
    _moto: Moto,
    events: aws_sdk_eventbridge::Client,
    sqs: aws_sdk_sqs::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    /// The stand-in queue of each rule.
    queues: HashMap<&'static str, String>,
    /// Each processor's own SDK configuration (`support::function_config`).
    processor_configs: HashMap<&'static str, aws_config::SdkConfig>,
}

fn rule_name(target: &str) -> String {
    match target {
        "brand-requests" => "eventfabric-dev-brand-requests".into(),
        other => format!("eventfabric-dev-realtime-{other}"),
    }
}

async fn emulate() -> Emulated {
    let moto = Moto::start();
    let config = support::sdk_config(&moto.endpoint).await;
    let events = aws_sdk_eventbridge::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    events.create_event_bus().name(BUS).send().await.unwrap();
    let stateless = synthesized_template("RealtimeStateless");
    let mut queues = HashMap::new();
    for target in RULES {
        let (url, arn) = queue(&sqs, &format!("stand-in-{target}")).await;
        let rule =
            synthesized_resource(&stateless, "AWS::Events::Rule", "Name", &rule_name(target));
        support::put_synthesized_rule(&events, BUS, &rule, &arn).await;
        queues.insert(target, url);
    }
    let stateful = synthesized_template("RealtimeStateful");
    for table in [APP_TABLE, CONNECTIONS_TABLE, SUBSCRIPTIONS_TABLE] {
        let props = synthesized_resource(&stateful, "AWS::DynamoDB::Table", "TableName", table);
        support::create_synthesized_table(&dynamodb, &props).await;
    }
    let ingest = synthesized_template("IngestStateful");
    let props = synthesized_resource(&ingest, "AWS::DynamoDB::Table", "TableName", INGEST_TABLE);
    support::create_synthesized_table(&dynamodb, &props).await;
    // Each processor on its function's own identity: its calls are checked against its role.
    let mut processor_configs = HashMap::new();
    for domain in Domain::ALL {
        let function = format!("eventfabric-dev-realtime-{}", domain.name());
        processor_configs.insert(
            domain.name(),
            support::function_config(&moto.endpoint, &function).await,
        );
    }
    Emulated {
        _moto: moto,
        events,
        sqs,
        dynamodb,
        queues,
        processor_configs,
    }
}

type EmulatedProcessor = Processor<DynamoAppStore, EventBridgeSink<EventBridgeApi>>;

impl Emulated {
    fn processor(&self, domain: Domain) -> EmulatedProcessor {
        Processor::new(
            domain,
            Topics::embedded().unwrap(),
            DynamoAppStore::new(
                aws_sdk_dynamodb::Client::new(&self.processor_configs[domain.name()]),
                APP_TABLE,
            ),
            Publisher::new(
                EventBridgeSink::new(
                    EventBridgeApi::new(aws_sdk_eventbridge::Client::new(
                        &self.processor_configs[domain.name()],
                    )),
                    RetryPolicy::default(),
                ),
                BusNames::new([("app", BUS)]),
            ),
        )
    }

    /// Puts a fixture's event on the bus as its producer would.
    async fn put(&self, event: &Value) {
        let out = self
            .events
            .put_events()
            .entries(
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .event_bus_name(BUS)
                    .source(event["source"].as_str().unwrap())
                    .detail_type(event["detail-type"].as_str().unwrap())
                    .detail(event["detail"].to_string())
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(out.failed_entry_count, 0);
    }

    /// What reached the stand-in queue of `target`'s rule (and nothing more).
    async fn arrived(&self, target: &str, expected: usize) -> Vec<Value> {
        let got = drain(&self.sqs, &self.queues[target], expected).await;
        assert_eq!(got.len(), expected, "{target}: {got:?}");
        got
    }

    /// `fixture` through the bus to `domain`'s rule, then the real processor; the follow-ups
    /// it published reach the queues of `follow_up_target`'s rule.
    async fn through(&self, domain: Domain, fixture: &str) -> EventBridgeEvent<Value> {
        self.put(&fixture_event(fixture)).await;
        let delivered = self.arrived(domain.name(), 1).await.remove(0);
        for other in RULES.iter().filter(|t| **t != domain.name()) {
            assert!(
                drain(&self.sqs, &self.queues[other], 0).await.is_empty(),
                "{fixture} also reached {other}"
            );
        }
        let event: EventBridgeEvent<Value> = serde_json::from_value(delivered).unwrap();
        let out = self
            .processor(domain)
            .process(&event, eventfabric_core::now_ms(), deadline())
            .await
            .unwrap();
        assert_eq!(out.applied, Applied::Done);
        event
    }
}

fn fixture_event(name: &str) -> Value {
    let path = format!(
        "{}/../../lambdas/realtime/fixtures/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(10))
}

async fn item(env: &Emulated, pk: &str, sk: &str) -> Option<Value> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let out = env
        .dynamodb
        .get_item()
        .table_name(APP_TABLE)
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.item.map(|i| serde_dynamo::from_item(i).unwrap())
}

#[tokio::test]
async fn every_processor_rule_matches_exactly_the_topics_its_domain_handles() {
    let stateless = synthesized_template("RealtimeStateless");
    let topics = Topics::embedded().unwrap();
    for domain in Domain::ALL {
        let rule = synthesized_resource(
            &stateless,
            "AWS::Events::Rule",
            "Name",
            &rule_name(domain.name()),
        );
        let mut expected: Vec<(String, String)> = domain
            .topics()
            .iter()
            .map(|t| {
                let (s, d) = topics.source_of(t).unwrap();
                (s.to_owned(), d.to_owned())
            })
            .collect();
        let pattern = &rule["EventPattern"];
        let mut synthesized = Vec::new();
        for s in pattern["source"].as_array().unwrap() {
            for d in pattern["detail-type"].as_array().unwrap() {
                synthesized.push((
                    s.as_str().unwrap().to_owned(),
                    d.as_str().unwrap().to_owned(),
                ));
            }
        }
        expected.sort();
        synthesized.sort();
        assert_eq!(synthesized, expected, "{}", domain.name());
    }
}

#[tokio::test]
async fn content_generated_stores_once_and_its_notification_reaches_the_notifier() {
    let env = emulate().await;
    let event = env.through(Domain::Studio, "content-generated").await;
    let library = item(&env, "USER#user-1", "CONTENT#content-42")
        .await
        .unwrap();
    assert_eq!(library["kind"], "library_item");
    let notified = env.arrived("notifier", 1).await;
    assert_eq!(notified[0]["source"], "bayon.coagent.realtime");
    assert_eq!(notified[0]["detail-type"], "Notification");
    assert_eq!(
        notified[0]["detail"]["payload"]["kind"],
        "content_generated"
    );
    assert_eq!(notified[0]["detail"]["causationId"], "evt-content-1");

    // Redelivered (an EventBridge retry): nothing applied twice on the real table, the same
    // follow-up id published again.
    let again = env
        .processor(Domain::Studio)
        .process(&event, eventfabric_core::now_ms(), deadline())
        .await
        .unwrap();
    assert_eq!(again.applied, Applied::Duplicate);
    let usage = item(&env, "USER#user-1", "USAGE#content_generations#2026-12")
        .await
        .unwrap();
    assert_eq!(usage["count"], 1);
    let repeated = env.arrived("notifier", 1).await;
    assert_eq!(repeated[0]["detail"]["id"], notified[0]["detail"]["id"]);
}

#[tokio::test]
async fn job_progress_reaches_the_notifier_as_a_progress_push() {
    let env = emulate().await;
    env.through(Domain::Studio, "job-progress").await;
    let pushed = env.arrived("notifier", 1).await;
    assert_eq!(pushed[0]["detail-type"], "Job Progress Update");
    assert_eq!(pushed[0]["source"], "bayon.coagent.realtime");
    assert_eq!(pushed[0]["detail"]["payload"]["percent"], 40);
}

#[tokio::test]
async fn a_profile_change_requests_an_audit_and_a_competitor_refresh_on_the_brand_queue() {
    let env = emulate().await;
    env.through(Domain::Brand, "profile-updated").await;
    let mut requests = env.arrived("brand-requests", 2).await;
    requests.sort_by_key(|r| r["detail-type"].as_str().unwrap().to_owned());
    assert_eq!(requests[0]["detail-type"], "Brand Audit Requested");
    assert_eq!(
        requests[0]["detail"]["payload"]["reason"],
        serde_json::json!(["name", "phone"])
    );
    assert_eq!(requests[1]["detail-type"], "Competitor Refresh Requested");
    assert_eq!(requests[1]["detail"]["payload"]["marketArea"], "Austin, TX");
    assert!(env.arrived("notifier", 0).await.is_empty());
    assert!(item(&env, "USER#user-1", "BRAND#profile-9").await.is_some());
}

#[tokio::test]
async fn research_completed_stores_knowledge_and_notifies() {
    let env = emulate().await;
    env.through(Domain::Research, "query-completed").await;
    assert!(
        item(&env, "USER#user-1", "KNOWLEDGE#query-3")
            .await
            .is_some()
    );
    let notified = env.arrived("notifier", 1).await;
    assert_eq!(
        notified[0]["detail"]["payload"]["kind"],
        "research_completed"
    );
}

#[tokio::test]
async fn a_trend_notifies_each_affected_user() {
    let env = emulate().await;
    env.through(Domain::Market, "trend-detected").await;
    let notified = env.arrived("notifier", 3).await;
    let mut users: Vec<_> = notified
        .iter()
        .map(|n| {
            n["detail"]["payload"]["userId"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    users.sort();
    assert_eq!(users, ["user-1", "user-2", "user-3"]);
}

#[tokio::test]
async fn usage_near_the_limit_warns_through_the_notifier() {
    let env = emulate().await;
    env.through(Domain::Account, "usage-updated").await;
    let notified = env.arrived("notifier", 1).await;
    assert_eq!(notified[0]["detail"]["payload"]["kind"], "usage_warning");
}

#[tokio::test]
async fn the_connections_store_on_the_synthesized_table_lists_open_connections_of_a_user() {
    let env = emulate().await;
    let store = DynamoConnections::new(env.dynamodb.clone(), CONNECTIONS_TABLE);
    let now = eventfabric_core::now_ms();
    store
        .put(&Connection::opened("c-1", "user-1", now))
        .await
        .unwrap();
    store
        .put(&Connection::opened("c-2", "user-1", now + 1))
        .await
        .unwrap();
    store
        .put(&Connection::opened("c-3", "user-2", now))
        .await
        .unwrap();
    // Connected over 2 hours ago: expired, though TTL has not removed it yet.
    store
        .put(&Connection::opened(
            "c-old",
            "user-1",
            now - 3 * 3600 * 1000,
        ))
        .await
        .unwrap();
    let mut open: Vec<String> = store
        .open_of("user-1", now)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.connection_id)
        .collect();
    open.sort();
    assert_eq!(open, ["c-1", "c-2"]);
    store.delete("c-1").await.unwrap();
    let open = store.open_of("user-1", now).await.unwrap();
    assert_eq!(open.len(), 1);
}

/// End to end with real WebSocket clients: the `realtime` binary runs as the authorizer, the
/// connection routes, the studio processor and the notifier, each a process with its
/// synthesized environment behind a stand-in Lambda Runtime API; the WebSocket API and its
/// management API are the stand-in gateway (moto has neither); tables, bus, rules, queues and
/// the token secret are moto's. Only the transport is stand-in.
mod websocket {
    use super::*;
    use eventfabric_standin::client::{Client, Refused};
    use eventfabric_standin::{Function, Gateway};
    use serde_json::json;
    use std::sync::Arc;

    const TOKEN_SECRET: &str = "eventfabric-dev-realtime-token-secret";
    const AUDIENCE: &str = "eventfabric:realtime.connect";
    const KEY: &[u8] = b"a-signing-secret-of-at-least-32-bytes!";

    fn token(sub: &str, audience: &str, expires_in_s: i64, key: &[u8]) -> String {
        scoped_token(sub, audience, expires_in_s, key, None)
    }

    fn scoped_token(
        sub: &str,
        audience: &str,
        expires_in_s: i64,
        key: &[u8],
        scope: Option<&str>,
    ) -> String {
        let exp = eventfabric_core::now_ms() / 1000 + expires_in_s;
        let mut claims = json!({"sub": sub, "aud": audience, "exp": exp});
        if let Some(scope) = scope {
            claims["scope"] = json!(scope);
        }
        eventfabric_core::token::sign(key, &claims).unwrap()
    }

    struct Deployed {
        env: Emulated,
        gateway: Gateway,
        studio: Function,
        notifier: Function,
        dashboard: Function,
    }

    async fn function(env_endpoint: &str, role: &str, resolved: &[(&str, String)]) -> Function {
        let template = synthesized_template("RealtimeStateless");
        let name = format!("eventfabric-dev-realtime-{role}");
        let vars = support::synthesized_function_env(&template, &name, resolved, env_endpoint);
        Function::start(support::function_binary("realtime"), &name, vars)
            .await
            .unwrap()
    }

    async fn deploy() -> Deployed {
        let env = emulate().await;
        let endpoint = env._moto.endpoint.clone();
        let config = support::sdk_config(&endpoint).await;
        let secret = aws_sdk_secretsmanager::Client::new(&config)
            .create_secret()
            .name(TOKEN_SECRET)
            .secret_string(std::str::from_utf8(KEY).unwrap())
            .send()
            .await
            .unwrap()
            .arn
            .unwrap();
        let tables = [
            ("CONNECTIONS_TABLE_NAME", CONNECTIONS_TABLE.to_owned()),
            ("SUBSCRIPTIONS_TABLE_NAME", SUBSCRIPTIONS_TABLE.to_owned()),
            ("APP_TABLE_NAME", APP_TABLE.to_owned()),
        ];
        let authorizer =
            Arc::new(function(&endpoint, "authorizer", &[("TOKEN_SECRET_ARN", secret)]).await);
        let connections = Arc::new(function(&endpoint, "connections", &tables[..2]).await);
        let gateway = Gateway::builder()
            .authorizer(authorizer.handler())
            .route("$connect", connections.handler(), false)
            .route("$disconnect", connections.handler(), false)
            .route("$default", connections.handler(), true)
            .route("subscribe", connections.handler(), true)
            .route("unsubscribe", connections.handler(), true)
            .start()
            .await
            .unwrap();
        let studio = function(
            &endpoint,
            "studio",
            &[tables[2].clone(), ("APP_BUS_NAME", BUS.to_owned())],
        )
        .await;
        let notifier = function(
            &endpoint,
            "notifier",
            &[
                tables[0].clone(),
                ("WEBSOCKET_ENDPOINT", gateway.callback_url()),
            ],
        )
        .await;
        let dashboard = function(
            &endpoint,
            "dashboard",
            &[
                tables[0].clone(),
                tables[1].clone(),
                ("WEBSOCKET_ENDPOINT", gateway.callback_url()),
            ],
        )
        .await;
        Deployed {
            env,
            gateway,
            studio,
            notifier,
            dashboard,
        }
    }

    impl Deployed {
        /// The connection records of `user` in the moto table.
        async fn records_of(&self, user: &str) -> Vec<String> {
            let store = DynamoConnections::new(self.env.dynamodb.clone(), CONNECTIONS_TABLE);
            let mut ids: Vec<_> = store
                .open_of(user, eventfabric_core::now_ms())
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.connection_id)
                .collect();
            ids.sort();
            ids
        }

        async fn connect(&self, token: Option<&str>) -> Result<(Client, String), Refused> {
            let before = self.gateway.connections();
            let client = Client::connect(&self.gateway.websocket_url(), token).await?;
            let id = self
                .gateway
                .connections()
                .into_iter()
                .find(|c| !before.contains(c))
                .expect("a new connection");
            Ok((client, id))
        }
    }

    #[tokio::test]
    async fn a_client_receives_content_generated_and_a_dropped_connection_is_cleaned_up_after_410()
    {
        let d = deploy().await;
        let good = token("user-1", AUDIENCE, 600, KEY);
        let (mut tab, tab_id) = d.connect(Some(&good)).await.unwrap();
        let (_phone, phone_id) = d.connect(Some(&good)).await.unwrap();
        assert_eq!(
            d.gateway.authorizer_of(&tab_id).unwrap()["principal"],
            "user-1",
            "the principal comes from the token"
        );
        let mut both = vec![tab_id.clone(), phone_id.clone()];
        both.sort();
        assert_eq!(d.records_of("user-1").await, both, "$connect recorded both");

        tab.send(r#"{"action":"ping"}"#).await;
        let pong = tab.next_json(Duration::from_secs(10)).await.unwrap();
        assert_eq!(pong["type"], "pong");

        // The phone vanishes: its socket is gone, its $disconnect never comes.
        assert!(d.gateway.sever(&phone_id));

        // Content Generated → its rule → the studio process → Realtime Notification on the
        // bus → the notifier's rule → the notifier process → the management API → the tab.
        d.env.put(&fixture_event("content-generated")).await;
        let delivered = d.env.arrived("studio", 1).await.remove(0);
        d.studio.invoke(&delivered).await.unwrap();
        let notification = d.env.arrived("notifier", 1).await.remove(0);
        d.notifier.invoke(&notification).await.unwrap();

        let message = tab.next_json(Duration::from_secs(10)).await.unwrap();
        assert_eq!(message["type"], "notification");
        assert_eq!(message["kind"], "content_generated");
        assert_eq!(message["userId"], "user-1");
        assert_eq!(message["id"], notification["detail"]["id"]);

        assert_eq!((d.gateway.posts(200), d.gateway.posts(410)), (1, 1));
        assert_eq!(
            d.records_of("user-1").await,
            [tab_id.as_str()],
            "the 410 deleted the dropped connection's record"
        );
        let emf = |metric: &str| -> f64 {
            d.notifier
                .logs()
                .iter()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|v| v.get("_aws").is_some())
                .filter_map(|v| v[metric].as_f64())
                .sum()
        };
        assert_eq!(
            (emf("PushDelivered"), emf("PushGone")),
            (1.0, 1.0),
            "per-connection outcomes in EMF"
        );

        // A client that closes: $disconnect deletes its record.
        tab.close().await;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !d.records_of("user-1").await.is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "$disconnect did not delete the record"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    #[tokio::test]
    async fn the_authorizer_refuses_what_it_must_before_connect() {
        let d = deploy().await;
        let status = |r: Result<(Client, String), Refused>| match r {
            Err(Refused::Status(s)) => s,
            Ok(_) => 101,
            Err(Refused::Other(e)) => panic!("{e}"),
        };
        assert_eq!(status(d.connect(None).await), 401, "no token");
        let expired = token("user-1", AUDIENCE, -120, KEY);
        assert_eq!(status(d.connect(Some(&expired)).await), 403, "expired");
        let other_audience = token("user-1", "eventfabric:forward", 600, KEY);
        assert_eq!(
            status(d.connect(Some(&other_audience)).await),
            403,
            "wrong audience"
        );
        let forged = token(
            "user-1",
            AUDIENCE,
            600,
            b"another-secret-of-at-least-32-bytes!!",
        );
        assert_eq!(status(d.connect(Some(&forged)).await), 403, "tampered");
        assert!(
            d.records_of("user-1").await.is_empty(),
            "nothing reached $connect"
        );

        // The quota (10 per user in dev): the eleventh connection is refused by $connect.
        let good = token("user-2", AUDIENCE, 600, KEY);
        let mut open = Vec::new();
        for _ in 0..10 {
            open.push(d.connect(Some(&good)).await.unwrap());
        }
        assert_eq!(status(d.connect(Some(&good)).await), 429);
        assert_eq!(d.records_of("user-2").await.len(), 10);
    }

    /// The ingest table's stream as Lambda hands it to the dashboard function: every record
    /// of the table's stream in moto, kept by the synthesized mapping's filter.
    async fn stream_batch(d: &Deployed) -> Value {
        let stateless = synthesized_template("RealtimeStateless");
        let mapping = stateless["Resources"]
            .as_object()
            .unwrap()
            .values()
            .find(|r| r["Type"] == "AWS::Lambda::EventSourceMapping")
            .expect("the dashboard's mapping")
            .clone();
        let pattern: Value = serde_json::from_str(
            mapping["Properties"]["FilterCriteria"]["Filters"][0]["Pattern"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        let pattern = pattern.as_object().unwrap();
        assert_eq!(
            pattern.len(),
            1,
            "the filter is on eventName only: {pattern:?}"
        );
        let kept: Vec<&str> = pattern["eventName"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let records = support::stream_records(&d.env._moto.endpoint, INGEST_TABLE)
            .await
            .into_iter()
            .filter(|r| kept.contains(&r["eventName"].as_str().unwrap()))
            .collect::<Vec<_>>();
        json!({ "Records": records })
    }

    #[tokio::test]
    async fn a_subscribed_client_receives_the_newest_state_of_its_entities_from_the_ingest_table_stream()
     {
        let d = deploy().await;
        let watcher = scoped_token("user-1", AUDIENCE, 600, KEY, Some("dashboard:volume"));
        let (mut volumes, _) = d.connect(Some(&watcher)).await.unwrap();
        volumes
            .send(r#"{"action":"subscribe","entityType":"volume"}"#)
            .await;
        let answer = volumes.next_json(Duration::from_secs(10)).await.unwrap();
        assert_eq!(
            answer,
            json!({"type": "subscribed", "entityType": "volume"})
        );
        let unscoped = token("user-2", AUDIENCE, 600, KEY);
        let (mut other, _) = d.connect(Some(&unscoped)).await.unwrap();
        other
            .send(r#"{"action":"subscribe","entityType":"volume"}"#)
            .await;
        let refused = other.next_json(Duration::from_secs(10)).await.unwrap();
        assert_eq!(refused["type"], "error", "no dashboard scope: {refused}");

        // The stream processor's own table adapter writes two states of a volume and a pool.
        use stream_processor::table::{DynamoTable, StateItem, StateTable};
        let table = DynamoTable::new(d.env.dynamodb.clone(), INGEST_TABLE);
        let state = |id: &str, kind: &str, ts: i64, iops: i64| StateItem {
            entity_id: id.into(),
            entity_type: kind.into(),
            event_type: "storage.metrics.sampled".into(),
            timestamp: ts,
            event_time: "2026-12-05T12:00:00Z".into(),
            payload: json!({"metrics": {"iops": iops}}),
            ingest_time: "2026-12-05T12:00:01Z".into(),
            request_id: "req-1".into(),
            sequence_number: format!("seq-{ts}"),
        };
        for items in [
            vec![state("vol-0a1b", "volume", 1_000, 100)],
            vec![
                state("vol-0a1b", "volume", 2_000, 250),
                state("pool-7", "pool", 1_500, 9),
            ],
        ] {
            let refs: Vec<&StateItem> = items.iter().collect();
            let written = table.write(&refs).await;
            assert!(
                written
                    .iter()
                    .all(|r| matches!(r, eventfabric_core::retry::ItemResult::Ok)),
                "{written:?}"
            );
        }

        let batch = stream_batch(&d).await;
        assert_eq!(
            batch["Records"].as_array().unwrap().len(),
            3,
            "INSERT, MODIFY, INSERT"
        );
        let answer = d.dashboard.invoke(&batch).await.unwrap();
        assert_eq!(answer["batchItemFailures"], json!([]));

        let update = volumes.next_json(Duration::from_secs(10)).await.unwrap();
        assert_eq!(update["type"], "dashboard");
        assert_eq!(update["entityId"], "vol-0a1b");
        assert_eq!(update["timestamp"], 2_000, "the newest state, once");
        assert_eq!(update["payload"]["metrics"]["iops"], 250);
        assert!(
            volumes
                .next_json(Duration::from_millis(500))
                .await
                .is_none(),
            "no pool update for a volume subscriber, no stale volume state"
        );
        assert!(other.next_json(Duration::from_millis(200)).await.is_none());

        // Closing removes the subscription ($disconnect → the ByConnection index on moto).
        volumes.close().await;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = d
                .env
                .dynamodb
                .scan()
                .table_name(SUBSCRIPTIONS_TABLE)
                .send()
                .await
                .unwrap()
                .count;
            if left == 0 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the subscription outlived $disconnect"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
