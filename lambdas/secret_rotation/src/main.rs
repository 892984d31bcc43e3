//! Lambda entry point of the session secret rotation: Secrets Manager invokes it once per step
//! (`secret_rotation::rotate`). Needs only the usual AWS SDK variables.

use aws_lambda_events::event::secretsmanager::SecretsManagerSecretRotationEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use secret_rotation::{SecretsManager, rotate};

#[tokio::main]
async fn main() -> Result<(), Error> {
    eventfabric_logging::init();
    let aws = aws_config::load_from_env().await;
    let store = SecretsManager::new(aws_sdk_secretsmanager::Client::new(&aws));
    let store = &store;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<SecretsManagerSecretRotationEvent>| async move {
            rotate(store, &event.payload).await.map_err(|e| {
                tracing::error!(error = %e, step = %event.payload.step, "rotation step failed");
                Error::from(e)
            })
        },
    ))
    .await
}
