//! The `compliance` step: the pipeline document in, findings, outcome and masked text out.
//! `COMPLIANCE_POLICY` holds the environment's terms (JSON, see `compliance::Policy`).

use lambda_runtime::Error;
use session_pipeline::compliance::Checker;

#[tokio::main]
async fn main() -> Result<(), Error> {
    session_pipeline::runtime::init_logging();
    let checker = Checker::from_json(std::env::var("COMPLIANCE_POLICY").ok().as_deref())?;
    let checker = &checker;
    session_pipeline::runtime::serve("session-compliance", move |input| async move {
        session_pipeline::handler::compliance(checker, input)
    })
    .await
}
