//! Lambda entry point: settings from the environment ([`ingest_api::Settings`]), the Kinesis
//! client, then one request per invocation. The usual AWS SDK variables apply (`AWS_REGION`,
//! `AWS_ENDPOINT_URL` for local emulators).

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use eventfabric_core::Deadline;
use eventfabric_core::emf::Emf;
use eventfabric_registry::Registry;
use ingest_api::{DEFAULT_RETRY, Ingest, KinesisStream, Settings, StreamTopics};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let settings = Settings::from_env(|name| std::env::var(name).ok())?;
    let metrics = Emf::install(settings.metrics_namespace.clone(), "ingest-api")?;
    ingest_api::metrics::describe();

    let topics = StreamTopics::from_registry(&Registry::embedded()?);
    if topics.is_empty() {
        return Err("the registry has no topic on the ingest stream".into());
    }
    let aws = eventfabric_core::aws::load_config().await;
    let stream = KinesisStream::new(aws_sdk_kinesis::Client::new(&aws), settings.stream);
    let ingest = Ingest::new(topics, stream, DEFAULT_RETRY);
    let ingest = &ingest;

    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayV2httpRequest>| async move {
            let now_ms = eventfabric_core::now_ms();
            let deadline =
                Deadline::from_epoch_ms(event.context.deadline, now_ms, ingest_api::ANSWER_MARGIN);
            let response = ingest.handle(&event.payload, now_ms, deadline).await;
            metrics.flush(&event.context.request_id);
            Ok::<_, Error>(response)
        },
    ))
    .await
}
