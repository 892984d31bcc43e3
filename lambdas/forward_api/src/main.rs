//! Lambda entry point: read the environment, build the clients, serve requests. The settings
//! are documented on [`forward_api::ForwardConfig::from_env`] and
//! [`forward_api::Resources::from_env`]; the usual AWS SDK variables apply (`AWS_REGION`,
//! `AWS_ENDPOINT_URL` for local emulators).

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use eventfabric_core::emf::Emf;
use eventfabric_core::parameter::SsmParameter;
use eventfabric_core::secrets::SecretsManager;
use eventfabric_core::{Deadline, EventBridgeApi, EventBridgeSink, RetryPolicy};
use eventfabric_registry::Registry;
use forward_api::{
    CompiledTopics, DynamoState, ForwardConfig, Forwarder, KeyRing, Redactor, Resources,
    SecretsManagerKeys,
};
use lambda_runtime::{Error, LambdaEvent, service_fn};

/// mimalloc: a request allocates a few dozen small buffers, and glibc's allocator was a
/// measurable share of the hot path (README, "Benchmark and fuzzing").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = |name: &str| std::env::var(name).ok();
    let config = ForwardConfig::from_env(env)?;
    let resources = Resources::from_env(env)?;
    let metrics = Emf::install(resources.metrics_namespace.clone(), "forward-api")?;
    forward_api::metrics::describe();

    let registry = Registry::embedded()?;
    let topics = CompiledTopics::compile(&registry)?;

    let aws = eventfabric_core::aws::load_config().await;
    let secrets = SecretsManager::new(aws_sdk_secretsmanager::Client::new(&aws));
    // Both secrets at once: start-up waits for one round trip, not two.
    let (redaction_secret, keys) = tokio::join!(
        secrets.string(&resources.redaction_secret),
        KeyRing::load(
            SecretsManagerKeys::new(secrets.clone(), resources.session_secret.clone()),
            forward_api::now_ms(),
        )
    );
    let redactor = Redactor::from_secret(redaction_secret?.as_bytes());
    let keys = keys?;

    let sink = EventBridgeSink::new(
        EventBridgeApi::new(forward_api::sdk::eventbridge(&aws)),
        RetryPolicy::default(),
    );
    let state = DynamoState::new(forward_api::sdk::dynamodb(&aws), resources.state_table);
    let forwarder = Forwarder::new(topics, sink, state, config).with_redactor(redactor);
    // The kill switch (README, "Forwarding kill switch"), when the function has one.
    let switch = resources.switch_parameter.map(|name| {
        forward_api::switch::switch(SsmParameter::new(aws_sdk_ssm::Client::new(&aws), name))
    });
    let (forwarder, keys, switch) = (&forwarder, &keys, switch.as_ref());

    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayV2httpRequest>| async move {
            let now_ms = forward_api::now_ms();
            let answer_by =
                Deadline::from_epoch_ms(event.context.deadline, now_ms, forward_api::ANSWER_MARGIN);
            let response = forward_api::handle_switched(
                switch,
                forwarder,
                keys,
                &event.payload,
                now_ms,
                answer_by,
            )
            .await;
            metrics.flush(&event.context.request_id);
            Ok::<_, Error>(response)
        },
    ))
    .await
}
