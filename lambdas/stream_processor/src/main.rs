//! Lambda entry point: settings from the environment ([`stream_processor::Settings`]), the
//! DynamoDB and SNS clients, then one Kinesis batch per invocation, answered with its batch
//! item failures.

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::streams::KinesisEventResponse;
use eventfabric_core::Deadline;
use eventfabric_core::emf::Emf;
use eventfabric_registry::Registry;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use stream_processor::{DEFAULT_RETRY, DynamoTable, Processor, Settings, SnsTopic, Topics};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let settings = Settings::from_env(|name| std::env::var(name).ok())?;
    let metrics = Emf::install(settings.metrics_namespace.clone(), "stream-processor")?;
    stream_processor::metrics::describe();

    let topics = Topics::compile(&Registry::embedded()?)?;
    let aws = eventfabric_core::aws::load_config().await;
    let processor = Processor::new(
        topics,
        DynamoTable::new(aws_sdk_dynamodb::Client::new(&aws), settings.table),
        SnsTopic::new(aws_sdk_sns::Client::new(&aws), settings.malformed_topic_arn),
        DEFAULT_RETRY,
    );
    let processor = &processor;

    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<KinesisEvent>| async move {
            let now_ms = eventfabric_core::now_ms();
            let deadline = Deadline::from_epoch_ms(
                event.context.deadline,
                now_ms,
                stream_processor::ANSWER_MARGIN,
            );
            let records = stream_processor::input_records(&event.payload);
            let report = processor.process(&records, now_ms, deadline).await;
            stream_processor::metrics::record(&report.stats);
            let response: KinesisEventResponse = report.outcomes.kinesis_response();
            tracing::info!(
                records = report.stats.records,
                written = report.stats.written,
                malformed = report.stats.malformed,
                superseded = report.stats.superseded,
                stale = report.stats.stale,
                retried = report.stats.retried,
                checkpoint_failures = response.batch_item_failures.len(),
                "batch processed"
            );
            metrics.flush(&event.context.request_id);
            Ok::<_, Error>(response)
        },
    ))
    .await
}
