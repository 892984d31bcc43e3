//! What every step's `main` shares: JSON logs, the EMF recorder, and one EMF document flushed
//! after each invocation.

use std::future::Future;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

use crate::StepError;

/// The CloudWatch namespace (`METRICS_NAMESPACE`, default `eventfabric`).
fn namespace() -> String {
    std::env::var("METRICS_NAMESPACE").unwrap_or_else(|_| "eventfabric".into())
}

/// Installs logging and metrics, then serves `handler` until the runtime stops.
pub async fn serve<F, Fut>(function: &'static str, handler: F) -> Result<(), Error>
where
    F: Fn(Value) -> Fut,
    Fut: Future<Output = Result<Value, StepError>>,
{
    let metrics = eventfabric_core::emf::Emf::install(namespace(), function)?;
    crate::metrics::describe();
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let result = handler(event.payload).await;
        metrics.flush(&event.context.request_id);
        result
    }))
    .await
}

/// Logging for a step function: JSON, as the function's log group expects.
pub fn init_logging() {
    lambda_runtime::tracing::init_default_subscriber();
}
