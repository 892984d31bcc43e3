//! Rotation of the session token signing secret, Secrets Manager's four-step protocol:
//!
//! 1. `createSecret`: a new random value (Secrets Manager's `GetRandomPassword`, 64 letters and
//!    digits, as the secret was created with) stored as the `AWSPENDING` version of the
//!    rotation's token. Done once: a retried step finds the pending value and keeps it.
//! 2. `setSecret`: nothing. No database holds this value; the session issuer and the forward
//!    function read the secret themselves.
//! 3. `testSecret`: the pending value must be a usable HS256 key (at least 32 bytes).
//! 4. `finishSecret`: `AWSCURRENT` moves to the new version; Secrets Manager labels the old one
//!    `AWSPREVIOUS`, which the forward function still accepts, so tokens signed just before the
//!    rotation stay valid until they expire.
//!
//! Every step first checks that rotation is enabled and that the token names a version of the
//! secret that is pending (or already current: a repeated `finishSecret` is a no-op).

use std::collections::HashMap;
use std::future::Future;

use aws_lambda_events::event::secretsmanager::SecretsManagerSecretRotationEvent;

pub use eventfabric_core::secrets::{AWSCURRENT, AWSPENDING, SecretsManager};

/// The shortest value accepted as an HS256 key (the forward function refuses shorter ones).
pub const MIN_KEY_BYTES: usize = 32;

/// What rotation needs to know of a secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretDescription {
    pub rotation_enabled: bool,
    /// Version id → its staging labels.
    pub versions: HashMap<String, Vec<String>>,
}

impl SecretDescription {
    fn has(&self, version: &str, stage: &str) -> bool {
        self.versions
            .get(version)
            .is_some_and(|stages| stages.iter().any(|s| s == stage))
    }

    fn current_version(&self) -> Option<&str> {
        self.versions
            .iter()
            .find(|(_, stages)| stages.iter().any(|s| s == AWSCURRENT))
            .map(|(id, _)| id.as_str())
    }
}

/// The Secrets Manager calls rotation makes.
pub trait SecretStore: Send + Sync {
    fn describe(
        &self,
        secret: &str,
    ) -> impl Future<Output = Result<SecretDescription, String>> + Send;
    /// The value of `version` (or of whichever version has `stage`), or `None` when there is none.
    fn value(
        &self,
        secret: &str,
        version: Option<&str>,
        stage: &str,
    ) -> impl Future<Output = Result<Option<String>, String>> + Send;
    fn random_value(&self) -> impl Future<Output = Result<String, String>> + Send;
    fn put_pending(
        &self,
        secret: &str,
        version: &str,
        value: &str,
    ) -> impl Future<Output = Result<(), String>> + Send;
    /// Moves `AWSCURRENT` from version `from` to version `to`.
    fn promote(
        &self,
        secret: &str,
        to: &str,
        from: &str,
    ) -> impl Future<Output = Result<(), String>> + Send;
}

/// The four steps, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Create,
    Set,
    Test,
    Finish,
}

impl Step {
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "createSecret" => Ok(Step::Create),
            "setSecret" => Ok(Step::Set),
            "testSecret" => Ok(Step::Test),
            "finishSecret" => Ok(Step::Finish),
            other => Err(format!(
                "unknown rotation step '{other}' (expected createSecret, setSecret, testSecret or finishSecret)"
            )),
        }
    }
}

/// Runs one step of a rotation; an error fails the step (Secrets Manager retries, then marks
/// the rotation failed and the secret keeps its current value).
pub async fn rotate<S: SecretStore>(
    store: &S,
    event: &SecretsManagerSecretRotationEvent,
) -> Result<(), String> {
    let step = Step::parse(&event.step)?;
    let (secret, token) = (
        event.secret_id.as_str(),
        event.client_request_token.as_str(),
    );
    let description = store.describe(secret).await?;
    if !description.rotation_enabled {
        return Err(format!("rotation is not enabled on {secret}"));
    }
    if !description.versions.contains_key(token) {
        return Err(format!("{secret} has no version {token} to rotate to"));
    }
    if description.has(token, AWSCURRENT) {
        tracing::info!(
            secret,
            token,
            ?step,
            "version already current; nothing to do"
        );
        return Ok(());
    }
    if !description.has(token, AWSPENDING) {
        return Err(format!(
            "version {token} of {secret} is not pending rotation"
        ));
    }
    match step {
        Step::Create => {
            if store.value(secret, None, AWSCURRENT).await?.is_none() {
                return Err(format!("{secret} has no current value to rotate from"));
            }
            if store
                .value(secret, Some(token), AWSPENDING)
                .await?
                .is_some()
            {
                tracing::info!(secret, token, "pending value already created");
                return Ok(());
            }
            let value = store.random_value().await?;
            check_key(&value)?;
            store.put_pending(secret, token, &value).await?;
            tracing::info!(secret, token, "pending value created");
        }
        Step::Set => {}
        Step::Test => {
            let value = store
                .value(secret, Some(token), AWSPENDING)
                .await?
                .ok_or_else(|| {
                    format!("version {token} of {secret} has no pending value to test")
                })?;
            check_key(&value)?;
        }
        Step::Finish => {
            let current = description
                .current_version()
                .ok_or_else(|| format!("{secret} has no current version"))?;
            store.promote(secret, token, current).await?;
            tracing::info!(secret, token, previous = current, "rotation finished");
        }
    }
    Ok(())
}

fn check_key(value: &str) -> Result<(), String> {
    if value.len() < MIN_KEY_BYTES {
        return Err(format!(
            "the new value is {} bytes; an HS256 key needs at least {MIN_KEY_BYTES}",
            value.len()
        ));
    }
    Ok(())
}

/// The store on Secrets Manager: the platform's adapter, behind this function's port.
impl SecretStore for SecretsManager {
    async fn describe(&self, secret: &str) -> Result<SecretDescription, String> {
        let d = SecretsManager::describe(self, secret)
            .await
            .map_err(|e| e.to_string())?;
        Ok(SecretDescription {
            rotation_enabled: d.rotation_enabled,
            versions: d.versions,
        })
    }

    async fn value(
        &self,
        secret: &str,
        version: Option<&str>,
        stage: &str,
    ) -> Result<Option<String>, String> {
        SecretsManager::value(self, secret, version, stage)
            .await
            .map_err(|e| e.to_string())
    }

    async fn random_value(&self) -> Result<String, String> {
        SecretsManager::random_value(self)
            .await
            .map_err(|e| e.to_string())
    }

    async fn put_pending(&self, secret: &str, version: &str, value: &str) -> Result<(), String> {
        SecretsManager::put_pending(self, secret, version, value)
            .await
            .map_err(|e| e.to_string())
    }

    async fn promote(&self, secret: &str, to: &str, from: &str) -> Result<(), String> {
        SecretsManager::promote(self, secret, to, from)
            .await
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A version's value (none until created) and staging labels.
    type Version = (Option<String>, Vec<String>);

    /// Secrets Manager's staging-label bookkeeping, in memory.
    #[derive(Default)]
    struct MemoryStore {
        rotation_enabled: bool,
        /// version → (value, stages)
        versions: Mutex<HashMap<String, Version>>,
        random: Mutex<Vec<String>>,
    }

    impl MemoryStore {
        /// A secret with a current value, rotation started with `token` (what RotateSecret does
        /// before calling the function: the token is a version labelled AWSPENDING, no value).
        fn rotating(token: &str) -> Self {
            let store = Self {
                rotation_enabled: true,
                ..Self::default()
            };
            let mut versions = store.versions.lock().unwrap();
            versions.insert("v1".into(), (Some("a".repeat(64)), vec![AWSCURRENT.into()]));
            versions.insert(token.into(), (None, vec![AWSPENDING.into()]));
            drop(versions);
            store.random.lock().unwrap().push("b".repeat(64));
            store
        }

        fn stages(&self) -> Vec<(String, Option<String>, Vec<String>)> {
            let mut all: Vec<_> = self
                .versions
                .lock()
                .unwrap()
                .iter()
                .map(|(id, (value, stages))| (id.clone(), value.clone(), stages.clone()))
                .collect();
            all.sort();
            all
        }
    }

    impl SecretStore for MemoryStore {
        async fn describe(&self, _: &str) -> Result<SecretDescription, String> {
            Ok(SecretDescription {
                rotation_enabled: self.rotation_enabled,
                versions: self
                    .versions
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(id, (_, stages))| (id.clone(), stages.clone()))
                    .collect(),
            })
        }

        async fn value(
            &self,
            _: &str,
            version: Option<&str>,
            stage: &str,
        ) -> Result<Option<String>, String> {
            let versions = self.versions.lock().unwrap();
            Ok(versions
                .iter()
                .find(|(id, (_, stages))| {
                    version.is_none_or(|v| v == id.as_str()) && stages.iter().any(|s| s == stage)
                })
                .and_then(|(_, (value, _))| value.clone()))
        }

        async fn random_value(&self) -> Result<String, String> {
            self.random
                .lock()
                .unwrap()
                .pop()
                .ok_or_else(|| "no random value".into())
        }

        async fn put_pending(&self, _: &str, version: &str, value: &str) -> Result<(), String> {
            self.versions.lock().unwrap().insert(
                version.into(),
                (Some(value.into()), vec![AWSPENDING.into()]),
            );
            Ok(())
        }

        async fn promote(&self, _: &str, to: &str, from: &str) -> Result<(), String> {
            let mut versions = self.versions.lock().unwrap();
            // Secrets Manager: AWSPREVIOUS moves to the version losing AWSCURRENT.
            for (_, stages) in versions.values_mut() {
                stages.retain(|s| s != "AWSPREVIOUS");
            }
            let old = versions.get_mut(from).ok_or("no such version")?;
            old.1 = vec!["AWSPREVIOUS".into()];
            let new = versions.get_mut(to).ok_or("no such version")?;
            new.1.retain(|s| s != AWSPENDING);
            new.1.push(AWSCURRENT.into());
            Ok(())
        }
    }

    fn event(step: &str, token: &str) -> SecretsManagerSecretRotationEvent {
        serde_json::from_value(serde_json::json!({
            "Step": step, "SecretId": "arn:aws:secretsmanager:eu-west-1:111111111111:secret:s", "ClientRequestToken": token
        }))
        .unwrap()
    }

    /// The error of a step that must fail.
    async fn failure(store: &MemoryStore, step: &str, token: &str) -> String {
        rotate(store, &event(step, token)).await.unwrap_err()
    }

    /// Asserts that `step` fails with an error naming `expected`.
    async fn assert_fails(store: &MemoryStore, step: &str, token: &str, expected: &str) {
        let error = failure(store, step, token).await;
        assert!(
            error.contains(expected),
            "{step} {token}: '{error}' does not say '{expected}'"
        );
    }

    async fn run_all(store: &MemoryStore, token: &str) -> Result<(), String> {
        for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
            rotate(store, &event(step, token)).await?;
        }
        Ok(())
    }

    #[tokio::test]
    async fn a_rotation_makes_a_new_value_current_and_keeps_the_old_one_as_previous() {
        let store = MemoryStore::rotating("t1");
        run_all(&store, "t1").await.unwrap();
        assert_eq!(
            store.stages(),
            [
                (
                    "t1".into(),
                    Some("b".repeat(64)),
                    vec![AWSCURRENT.to_owned()]
                ),
                (
                    "v1".into(),
                    Some("a".repeat(64)),
                    vec!["AWSPREVIOUS".to_owned()]
                ),
            ]
        );
    }

    #[tokio::test]
    async fn retried_steps_change_nothing() {
        let store = MemoryStore::rotating("t1");
        rotate(&store, &event("createSecret", "t1")).await.unwrap();
        // A retried create keeps the pending value (no second random value is available).
        rotate(&store, &event("createSecret", "t1")).await.unwrap();
        run_all(&store, "t1").await.unwrap();
        let after = store.stages();
        rotate(&store, &event("finishSecret", "t1")).await.unwrap();
        assert_eq!(store.stages(), after);
    }

    #[tokio::test]
    async fn refuses_what_is_not_a_rotation_in_progress() {
        let mut disabled = MemoryStore::rotating("t1");
        disabled.rotation_enabled = false;
        assert_eq!(
            failure(&disabled, "createSecret", "t1").await,
            "rotation is not enabled on arn:aws:secretsmanager:eu-west-1:111111111111:secret:s"
        );
        let store = MemoryStore::rotating("t1");
        assert_fails(&store, "createSecret", "t2", "has no version t2").await;
        assert!(
            rotate(&store, &event("finishSecret", "v1")).await.is_ok(),
            "already current"
        );
        store
            .versions
            .lock()
            .unwrap()
            .insert("t3".into(), (None, vec![]));
        assert_fails(&store, "testSecret", "t3", "not pending rotation").await;
        assert_fails(&store, "rotate", "t1", "unknown rotation step 'rotate'").await;
    }

    #[tokio::test]
    async fn a_short_or_missing_new_value_fails_the_rotation_and_the_current_value_stays() {
        let store = MemoryStore::rotating("t1");
        *store.random.lock().unwrap() = vec!["short".into()];
        assert_fails(&store, "createSecret", "t1", "needs at least 32").await;
        assert_fails(&store, "testSecret", "t1", "no pending value to test").await;
        assert_eq!(
            store.value("s", None, AWSCURRENT).await.unwrap(),
            Some("a".repeat(64))
        );
    }
}
