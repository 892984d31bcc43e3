//! The session pipeline's functions: one binary, the step chosen by `PIPELINE_STEP`
//! (`summary`, `sentiment`, `compliance`, `persistence`; the CDK app sets it per function).
//!
//! - `compliance` reads `COMPLIANCE_POLICY` (JSON, see `compliance::Policy`).
//! - `persistence` writes to `SUMMARIES_TABLE_NAME`; the usual AWS SDK variables apply
//!   (`AWS_REGION`, `AWS_ENDPOINT_URL`).

use lambda_runtime::Error;
use session_pipeline::compliance::Checker;
use session_pipeline::persistence::DynamoSummaries;
use session_pipeline::{handler, runtime};

#[tokio::main]
async fn main() -> Result<(), Error> {
    runtime::init_logging();
    let step = std::env::var("PIPELINE_STEP").unwrap_or_default();
    match step.as_str() {
        "summary" => {
            runtime::serve(
                "session-summary",
                |event| async move { handler::summary(event) },
            )
            .await
        }
        "sentiment" => {
            session_pipeline::sentiment::warm_up();
            runtime::serve("session-sentiment", |input| async move {
                handler::sentiment(input)
            })
            .await
        }
        "compliance" => {
            let checker = Checker::from_json(std::env::var("COMPLIANCE_POLICY").ok().as_deref())?;
            let checker = &checker;
            runtime::serve("session-compliance", move |input| async move {
                handler::compliance(checker, input)
            })
            .await
        }
        "persistence" => {
            let table = std::env::var("SUMMARIES_TABLE_NAME")
                .map_err(|_| "SUMMARIES_TABLE_NAME is not set: the summaries table to write")?;
            let aws = eventfabric_core::aws::load_config().await;
            let store = DynamoSummaries::new(aws_sdk_dynamodb::Client::new(&aws), table);
            let store = &store;
            runtime::serve("session-persistence", move |input| async move {
                handler::persistence(store, input, session_pipeline::now_ms()).await
            })
            .await
        }
        other => Err(format!(
            "PIPELINE_STEP is '{other}': set it to summary, sentiment, compliance or persistence"
        )
        .into()),
    }
}
