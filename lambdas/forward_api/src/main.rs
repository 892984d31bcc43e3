//! Lambda entry point: build clients from the environment, then serve requests.
//!
//! Environment: `SESSION_BUS_NAME` (required), `ANALYTICS_BUS_NAME` (optional), and the usual
//! AWS SDK variables (`AWS_REGION`, `AWS_ENDPOINT_URL` for local emulators).

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use eventfabric_core::{EventBridgeApi, EventBridgeSink, RetryPolicy};
use eventfabric_registry::Registry;
use forward_api::{CompiledTopics, ForwardConfig, Forwarder};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(false)
        .without_time() // CloudWatch stamps every line
        .init();

    let session_bus =
        std::env::var("SESSION_BUS_NAME").map_err(|_| "SESSION_BUS_NAME must be set")?;
    let analytics_bus = std::env::var("ANALYTICS_BUS_NAME")
        .ok()
        .filter(|s| !s.is_empty());
    let registry = Registry::embedded()?;
    let topics = CompiledTopics::compile(&registry)?;

    let aws = aws_config::load_from_env().await;
    let sink = EventBridgeSink::new(
        EventBridgeApi::new(aws_sdk_eventbridge::Client::new(&aws)),
        RetryPolicy::default(),
    );
    let forwarder = Forwarder::new(
        topics,
        sink,
        ForwardConfig::with_buses(session_bus, analytics_bus),
    );
    let forwarder = &forwarder;

    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayV2httpRequest>| async move {
            Ok::<_, Error>(
                forward_api::handle(forwarder, &event.payload, forward_api::now_ms()).await,
            )
        },
    ))
    .await
}
