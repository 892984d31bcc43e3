//! Lambda entry point of the session secret rotation: Secrets Manager invokes it once per step
//! (`secret_rotation::rotate`). Needs only the usual AWS SDK variables.

use aws_lambda_events::event::secretsmanager::SecretsManagerSecretRotationEvent;
use eventfabric_core::secrets::SecretsManager;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use secret_rotation::rotate;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let aws = eventfabric_core::aws::load_config().await;
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
