//! The HTTP tunnel's functions: one binary, the role chosen by `TUNNEL_ROLE`
//! ([`tunnel::functions`] lists the roles and their settings). Each role wires its adapters
//! (DynamoDB, S3, SSM, Secrets Manager, EventBridge, the API Gateway management API, the
//! waiter's WebSocket connection) into the library's logic and serves one event per
//! invocation.

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayV2httpRequest,
    ApiGatewayWebsocketProxyRequest,
};
use aws_lambda_events::dynamodb::Event as StreamEvent;
use eventfabric_core::emf::Emf;
use eventfabric_core::parameter::SsmParameter;
use eventfabric_core::publish::{BusNames, Publisher};
use eventfabric_core::secrets::SecretsManager;
use eventfabric_core::token::keys::SecretsManagerKeys;
use eventfabric_core::{Deadline, EventBridgeApi, EventBridgeSink, RetryPolicy};
use eventfabric_websocket::auth::RotatingAuthorizer;
use eventfabric_websocket::connections::DynamoConnections;
use eventfabric_websocket::push::ManagementApi;
use eventfabric_websocket::routes::RouteSettings;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use tunnel::agent::WebSocketAgents;
use tunnel::aws::S3Bodies;
use tunnel::forward::{Forwarder, Path};
use tunnel::functions::{
    DEFAULT_CONNECTIONS_PER_AGENT, Role, forward_settings, required, rollout_cache,
};
use tunnel::notifier::Notifier;
use tunnel::pending::DynamoPending;
use tunnel::wait::WaiterChannel;
use tunnel::waiter::{Limits, WebSocketWaiter};

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
    let table = |name: &str, what: &str| required(&env, name, what);
    let management_api = || {
        required(
            &env,
            "WEBSOCKET_ENDPOINT",
            "the tunnel management API's URL, https://<api-id>.execute-api.<region>.amazonaws.com/<stage>",
        )
        .map(|endpoint| {
            ManagementApi::new(
                &aws_sdk_apigatewaymanagement::config::Builder::from(&aws),
                &endpoint,
            )
        })
    };
    let pending = || {
        table("PENDING_TABLE_NAME", "the pending requests table")
            .map(|t| DynamoPending::new(aws_sdk_dynamodb::Client::new(&aws), t))
    };
    let connections = || {
        table("CONNECTIONS_TABLE_NAME", "the agents' connections table")
            .map(|t| DynamoConnections::new(aws_sdk_dynamodb::Client::new(&aws), t))
    };
    let bodies = || {
        table("BODIES_BUCKET_NAME", "the bodies bucket").map(|b| {
            // Path-style where an endpoint is set (a local emulator); virtual-hosted on AWS.
            let s3 = aws_sdk_s3::config::Builder::from(&aws)
                .force_path_style(env("AWS_ENDPOINT_URL").is_some())
                .build();
            S3Bodies::new(aws_sdk_s3::Client::from_conf(s3), b)
        })
    };
    let keys = || {
        required(&env, "TOKEN_SECRET_ARN", "the tunnel token signing secret").map(|secret| {
            SecretsManagerKeys::new(
                SecretsManager::new(aws_sdk_secretsmanager::Client::new(&aws)),
                secret,
            )
        })
    };
    let audience = || required(&env, "TOKEN_AUDIENCE", "the audience tunnel tokens name");

    match role {
        Role::Forward => {
            let parameter = required(
                &env,
                "ROLLOUT_PARAMETER_NAME",
                "the rollout parameter ({\"useEventDriven\", \"canaryPercent\"})",
            )?;
            let url = required(
                &env,
                "WAITER_WEBSOCKET_URL",
                "the tunnel WebSocket API's wss:// URL the waiter connects to",
            )?;
            let waiter = WebSocketWaiter::new(url, audience()?, keys()?, Limits::default());
            let forwarder = Forwarder {
                pending: pending()?,
                agents: WebSocketAgents {
                    connections: connections()?,
                    api: management_api()?,
                },
                waiter,
                rollout: tunnel::rollout::cached(
                    SsmParameter::new(aws_sdk_ssm::Client::new(&aws), parameter),
                    rollout_cache(&env)?,
                ),
                bodies: bodies()?,
                settings: forward_settings(&env)?,
            };
            // Connect during the cold start, so the first request need not wait for it; a
            // failure here only means the first requests poll.
            if let Err(error) = forwarder.waiter.connection_id().await {
                tracing::warn!(%error, "no waiter connection yet; requests poll until there is one");
            }
            let forwarder = &forwarder;
            lambda_runtime::run(service_fn(
                move |event: LambdaEvent<ApiGatewayV2httpRequest>| async move {
                    let response = match tunnel::http::request(&event.payload) {
                        Err(refused) => {
                            metrics::counter!("TunnelRefused", "reason" => refused.error)
                                .increment(1);
                            tunnel::http::refused(&refused)
                        }
                        Ok(request) => {
                            let (request_id, agent) =
                                (request.request_id.clone(), request.agent_id.clone());
                            let answer =
                                forwarder.forward(request, eventfabric_core::now_ms()).await;
                            let path = match answer.path {
                                Path::Polling => "polling",
                                Path::EventDriven => "event_driven",
                            };
                            tracing::info!(
                                request = %request_id,
                                %agent,
                                status = answer.status,
                                path,
                                reads = answer.stats.reads,
                                pushes = answer.stats.pushes,
                                "request answered"
                            );
                            metrics::counter!("TunnelAnswers", "status" => status_class(answer.status))
                                .increment(1);
                            tunnel::http::response(answer.status, &answer.headers, answer.body)
                        }
                    };
                    metrics.flush(&event.context.request_id);
                    Ok::<_, Error>(response)
                },
            ))
            .await
        }
        Role::Connections => {
            let settings = RouteSettings {
                connections_per_principal: eventfabric_core::settings::count(
                    &env,
                    "CONNECTIONS_PER_AGENT",
                    DEFAULT_CONNECTIONS_PER_AGENT,
                )?,
            };
            let (connections, pending, bodies, waker) =
                (connections()?, pending()?, bodies()?, management_api()?);
            let (connections, pending, bodies, waker) = (&connections, &pending, &bodies, &waker);
            lambda_runtime::run(service_fn(
                move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async move {
                    let (status, response) = tunnel::routes::handle(
                        connections,
                        pending,
                        bodies,
                        waker,
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
        Role::Notifier => {
            let sink = EventBridgeSink::new(
                EventBridgeApi::new(aws_sdk_eventbridge::Client::new(&aws)),
                RetryPolicy::default(),
            );
            let notifier = Notifier {
                publisher: Publisher::new(sink, BusNames::from_env(env)),
                api: management_api()?,
            };
            let notifier = &notifier;
            lambda_runtime::run(service_fn(
                move |event: LambdaEvent<StreamEvent>| async move {
                    let now_ms = eventfabric_core::now_ms();
                    let deadline =
                        Deadline::from_epoch_ms(event.context.deadline, now_ms, ANSWER_MARGIN);
                    let report = notifier.handle(&event.payload, deadline).await;
                    let counts = report.outcomes.counts();
                    metrics.flush(&event.context.request_id);
                    tracing::info!(
                        records = report.outcomes.len(),
                        completions = report.completions,
                        published = report.published,
                        woken = report.woken,
                        waiter_gone = report.waiter_gone,
                        skipped = report.skipped,
                        retried = counts.retried,
                        "batch handled"
                    );
                    Ok::<_, Error>(report.outcomes.dynamodb_response())
                },
            ))
            .await
        }
        Role::Authorizer => {
            let authorizer =
                RotatingAuthorizer::load(keys()?, &audience()?, eventfabric_core::now_ms()).await?;
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
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        502 => "502",
        503 => "503",
        504 => "504",
        _ => "5xx",
    }
}
