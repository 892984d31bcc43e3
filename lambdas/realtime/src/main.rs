//! The realtime system's functions: one binary, the role chosen by `REALTIME_ROLE`
//! ([`realtime::functions`] lists the roles and their settings). Each role wires its adapters
//! (DynamoDB, EventBridge, Secrets Manager, the API Gateway management API) into the logic of
//! the library and serves one event per invocation.

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayWebsocketProxyRequest,
};
use aws_lambda_events::dynamodb::Event as StreamEvent;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use eventfabric_core::emf::Emf;
use eventfabric_core::publish::{BusNames, Publisher};
use eventfabric_core::secrets::SecretsManager;
use eventfabric_core::token::keys::SecretsManagerKeys;
use eventfabric_core::{Deadline, EventBridgeApi, EventBridgeSink, RetryPolicy};
use eventfabric_websocket::auth::RotatingAuthorizer;
use eventfabric_websocket::connections::DynamoConnections;
use eventfabric_websocket::push::{ManagementApi, Pusher};
use eventfabric_websocket::routes::RouteSettings;
use eventfabric_websocket::subscriptions::DynamoSubscriptions;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use realtime::functions::{Role, connections_per_user, required};
use realtime::{Dashboard, DynamoAppStore, Notifier, Processor, Topics};
use serde_json::Value;

/// Time kept back from the invocation's deadline to answer.
const ANSWER_MARGIN: std::time::Duration = std::time::Duration::from_millis(500);

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = |name: &str| std::env::var(name).ok();
    let role = Role::parse(&env(Role::VARIABLE).unwrap_or_default())?;
    let namespace = required(&env, "METRICS_NAMESPACE", "the EMF metrics namespace")?;
    let metrics = Emf::install(namespace, role.function())?;
    let aws = eventfabric_core::aws::load_config().await;
    let metrics = &metrics;
    // Settings more than one role reads.
    let connections_table = || {
        required(
            &env,
            "CONNECTIONS_TABLE_NAME",
            "the WebSocket connections table",
        )
    };
    let subscriptions_table = || {
        required(
            &env,
            "SUBSCRIPTIONS_TABLE_NAME",
            "the dashboard subscriptions table",
        )
    };
    let management_api = || {
        required(
            &env,
            "WEBSOCKET_ENDPOINT",
            "the management API's URL, https://<api-id>.execute-api.<region>.amazonaws.com/<stage>",
        )
        .map(|endpoint| {
            ManagementApi::new(
                &aws_sdk_apigatewaymanagement::config::Builder::from(&aws),
                &endpoint,
            )
        })
    };

    match role {
        Role::Processor(domain) => {
            let table = required(&env, "APP_TABLE_NAME", "the realtime app table")?;
            let buses = BusNames::from_env(env);
            let sink = EventBridgeSink::new(
                EventBridgeApi::new(aws_sdk_eventbridge::Client::new(&aws)),
                RetryPolicy::default(),
            );
            let processor = Processor::new(
                domain,
                Topics::embedded()?,
                DynamoAppStore::new(aws_sdk_dynamodb::Client::new(&aws), table),
                Publisher::new(sink, buses),
            );
            let processor = &processor;
            lambda_runtime::run(service_fn(
                move |event: LambdaEvent<EventBridgeEvent<Value>>| async move {
                    let now_ms = eventfabric_core::now_ms();
                    let deadline =
                        Deadline::from_epoch_ms(event.context.deadline, now_ms, ANSWER_MARGIN);
                    let outcome = processor.process(&event.payload, now_ms, deadline).await;
                    let label = match &outcome {
                        Ok(p) if p.applied == realtime::Applied::Duplicate => "duplicate",
                        Ok(_) => "applied",
                        Err(realtime::ProcessError::Refused(_)) => "refused",
                        Err(_) => "failed",
                    };
                    metrics::counter!("RealtimeEvents", "outcome" => label).increment(1);
                    metrics.flush(&event.context.request_id);
                    match outcome {
                        Ok(done) => {
                            tracing::info!(topic = done.topic, applied = ?done.applied, writes = done.writes, follow_ups = done.follow_ups, "event processed");
                            Ok(())
                        }
                        Err(error) => {
                            tracing::error!(%error, event_id = ?event.payload.id, "event not processed; EventBridge retries it, then its DLQ keeps it");
                            Err(Error::from(error.to_string()))
                        }
                    }
                },
            ))
            .await
        }
        Role::Notifier => {
            let table = connections_table()?;
            let api = management_api()?;
            let store = DynamoConnections::new(aws_sdk_dynamodb::Client::new(&aws), table);
            let notifier = Notifier::new(Topics::embedded()?, Pusher::new(store, api));
            let notifier = &notifier;
            lambda_runtime::run(service_fn(
                move |event: LambdaEvent<EventBridgeEvent<Value>>| async move {
                    let outcome = notifier.notify(&event.payload, eventfabric_core::now_ms()).await;
                    metrics.flush(&event.context.request_id);
                    match outcome {
                        Ok(report) => {
                            tracing::info!(?report, "pushed");
                            Ok(())
                        }
                        Err(error) => {
                            tracing::error!(%error, event_id = ?event.payload.id, "push incomplete; EventBridge retries it");
                            Err(Error::from(error.to_string()))
                        }
                    }
                },
            ))
            .await
        }
        Role::Authorizer => {
            let secret = required(&env, "TOKEN_SECRET_ARN", "the token signing secret")?;
            let audience = required(&env, "TOKEN_AUDIENCE", "the audience tokens must name")?;
            let keys = SecretsManagerKeys::new(
                SecretsManager::new(aws_sdk_secretsmanager::Client::new(&aws)),
                secret,
            );
            let authorizer =
                RotatingAuthorizer::load(keys, &audience, eventfabric_core::now_ms()).await?;
            let authorizer = &authorizer;
            lambda_runtime::run(service_fn(
                move |event: LambdaEvent<ApiGatewayCustomAuthorizerRequestTypeRequest>| async move {
                    let answer = authorizer
                        .authorize(&event.payload, eventfabric_core::now_ms())
                        .await;
                    metrics.flush(&event.context.request_id);
                    Ok::<_, Error>(answer)
                },
            ))
            .await
        }
        Role::Connections => {
            let table = connections_table()?;
            let settings = RouteSettings {
                connections_per_principal: connections_per_user(&env)?,
            };
            let subscriptions = subscriptions_table()?;
            let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
            let store = DynamoConnections::new(dynamodb.clone(), table);
            let subscriptions = DynamoSubscriptions::new(dynamodb, subscriptions);
            let (store, subscriptions) = (&store, &subscriptions);
            lambda_runtime::run(service_fn(
                move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async move {
                    let (status, response) = realtime::dashboard::connection_routes(
                        store,
                        subscriptions,
                        settings,
                        &event.payload,
                        eventfabric_core::now_ms(),
                    )
                    .await;
                    let route = event
                        .payload
                        .request_context
                        .route_key
                        .as_deref()
                        .unwrap_or("?");
                    metrics::counter!("WebSocketRoutes", "outcome" => format!("{status}"))
                        .increment(1);
                    tracing::info!(route, status, "route handled");
                    metrics.flush(&event.context.request_id);
                    Ok::<_, Error>(response)
                },
            ))
            .await
        }
        Role::Dashboard => {
            let table = connections_table()?;
            let subscriptions = subscriptions_table()?;
            let api = management_api()?;
            let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
            let dashboard = Dashboard::new(
                DynamoSubscriptions::new(dynamodb.clone(), subscriptions),
                Pusher::new(DynamoConnections::new(dynamodb, table), api),
            );
            let dashboard = &dashboard;
            lambda_runtime::run(service_fn(
                move |event: LambdaEvent<StreamEvent>| async move {
                    let report = dashboard
                        .handle(&event.payload, eventfabric_core::now_ms())
                        .await;
                    let counts = report.outcomes.counts();
                    metrics.flush(&event.context.request_id);
                    tracing::info!(
                        records = report.outcomes.len(),
                        updates = report.updates,
                        coalesced = report.coalesced,
                        set_aside = report.set_aside,
                        delivered = report.delivered,
                        gone = report.gone,
                        retried = counts.retried,
                        "batch handled"
                    );
                    Ok::<_, Error>(report.outcomes.dynamodb_response())
                },
            ))
            .await
        }
    }
}
