//! The `persistence` step: the enriched, masked summary into `SUMMARIES_TABLE_NAME`, once per
//! version. The usual AWS SDK variables apply (`AWS_REGION`, `AWS_ENDPOINT_URL`).

use lambda_runtime::Error;
use session_pipeline::persistence::DynamoSummaries;

#[tokio::main]
async fn main() -> Result<(), Error> {
    session_pipeline::runtime::init_logging();
    let table = std::env::var("SUMMARIES_TABLE_NAME")
        .map_err(|_| "SUMMARIES_TABLE_NAME is not set: the summaries table to write")?;
    let aws = eventfabric_core::aws::load_config().await;
    let store = DynamoSummaries::new(aws_sdk_dynamodb::Client::new(&aws), table);
    let store = &store;
    session_pipeline::runtime::serve("session-persistence", move |input| async move {
        session_pipeline::handler::persistence(store, input, session_pipeline::now_ms()).await
    })
    .await
}
