//! Lambda entry point: build clients from the environment, then serve requests.
//!
//! Environment:
//! - `SESSION_BUS_NAME` (required), `ANALYTICS_BUS_NAME` (optional): the buses.
//! - `SESSION_SECRET_ARN` (required): the Secrets Manager secret whose string is the session
//!   token signing key (≥ 32 bytes). Its current and previous values are read at start-up, and
//!   again when a token is signed with a value rotated in since (`keys.rs`).
//! - `REDACTION_SECRET_ARN` (required): the secret the redaction hashing key is derived from,
//!   read once at start-up. Separate from the signing key so that rotating that one does not
//!   change every hashed value.
//!   Neither value is ever in the template or the environment itself.
//! - `STATE_TABLE_NAME` (required): the DynamoDB table of quota windows and idempotency keys.
//! - `QUOTA_EVENTS_PER_MINUTE` (optional, default 600): events per session per minute.
//! - `CLAIM_LEASE_SECONDS` (optional, default 30): how long an idempotency claim stays pending;
//!   longer than the function timeout.
//! - `METRICS_NAMESPACE` (optional, default `eventfabric`): the CloudWatch namespace of the EMF
//!   metrics.
//! - the usual AWS SDK variables (`AWS_REGION`, `AWS_ENDPOINT_URL` for local emulators).

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use eventfabric_core::{Deadline, EventBridgeApi, EventBridgeSink, RetryPolicy};
use eventfabric_registry::Registry;
use forward_api::{
    CompiledTopics, DynamoState, ForwardConfig, Forwarder, KeyRing, Redactor, SecretsManagerKeys,
};
use lambda_runtime::{Error, LambdaEvent, service_fn};

/// mimalloc: a request allocates a few dozen small buffers, and glibc's malloc, free and
/// consolidation cost ~8 % of the hot path (`cargo bench -p forward-api --bench hot_path`,
/// which uses the same allocator).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn required(name: &str) -> Result<String, Error> {
    std::env::var(name)
        .ok()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("{name} must be set").into())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    eventfabric_logging::init();

    let session_bus = required("SESSION_BUS_NAME")?;
    let analytics_bus = std::env::var("ANALYTICS_BUS_NAME")
        .ok()
        .filter(|s| !s.is_empty());
    let secret_arn = required("SESSION_SECRET_ARN")?;
    let redaction_secret_arn = required("REDACTION_SECRET_ARN")?;
    let table = required("STATE_TABLE_NAME")?;
    let mut config = ForwardConfig::with_buses(session_bus, analytics_bus);
    if let Ok(quota) = std::env::var("QUOTA_EVENTS_PER_MINUTE") {
        config.quota_events_per_minute = quota
            .parse()
            .map_err(|e| format!("QUOTA_EVENTS_PER_MINUTE '{quota}': {e}"))?;
    }
    if let Ok(lease) = std::env::var("CLAIM_LEASE_SECONDS") {
        config.claim_lease_seconds = lease
            .parse()
            .map_err(|e| format!("CLAIM_LEASE_SECONDS '{lease}': {e}"))?;
    }
    let namespace = std::env::var("METRICS_NAMESPACE").unwrap_or_else(|_| "eventfabric".into());
    let metrics = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(namespace)
        .with_dimension("function", "forward-api")
        .init()
        .map_err(|e| format!("cannot install the EMF metrics recorder: {e}"))?;
    forward_api::metrics::describe();

    let registry = Registry::embedded()?;
    let topics = CompiledTopics::compile(&registry)?;

    let aws = aws_config::load_from_env().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    let redaction_secret = forward_api::read_secret(&secrets, &redaction_secret_arn).await?;
    let redactor = Redactor::from_secret(redaction_secret.as_bytes());
    drop(redaction_secret);
    let keys = KeyRing::load(
        SecretsManagerKeys::new(secrets, secret_arn),
        forward_api::now_ms(),
    )
    .await?;

    let sink = EventBridgeSink::new(
        EventBridgeApi::new(forward_api::sdk::eventbridge(&aws)),
        RetryPolicy::default(),
    );
    let state = DynamoState::new(forward_api::sdk::dynamodb(&aws), table);
    let forwarder = Forwarder::new(topics, sink, state, config).with_redactor(redactor);
    let (forwarder, keys) = (&forwarder, &keys);

    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayV2httpRequest>| async move {
            let now_ms = forward_api::now_ms();
            let answer_by =
                Deadline::from_epoch_ms(event.context.deadline, now_ms, forward_api::ANSWER_MARGIN);
            let response =
                forward_api::handle(forwarder, keys, &event.payload, now_ms, answer_by).await;
            // One EMF document per label set, on stdout (CloudWatch Logs extracts the metrics).
            if let Err(e) = metrics
                .set_property("requestId", event.context.request_id.clone())
                .flush(std::io::stdout().lock())
            {
                tracing::warn!(error = %e, "cannot write EMF metrics");
            }
            Ok::<_, Error>(response)
        },
    ))
    .await
}
