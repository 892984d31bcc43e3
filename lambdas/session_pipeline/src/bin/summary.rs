//! The `summary` step: a `session.summary.final` event in, the pipeline document out.

use lambda_runtime::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    session_pipeline::runtime::init_logging();
    session_pipeline::runtime::serve("session-summary", |event| async move {
        session_pipeline::handler::summary(event)
    })
    .await
}
