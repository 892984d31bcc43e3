//! The `sentiment` step: the pipeline document in, its VADER sentiment report out.

use lambda_runtime::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    session_pipeline::runtime::init_logging();
    session_pipeline::runtime::serve("session-sentiment", |input| async move {
        session_pipeline::handler::sentiment(input)
    })
    .await
}
