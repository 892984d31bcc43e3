//! Where a token verifier's keys come from: the signing secret's current and previous values
//! (Secrets Manager's `AWSCURRENT` and `AWSPREVIOUS`), behind a port with a Secrets Manager
//! and an in-memory adapter. Every function checking tokens reads its keys through it (the
//! forward API's `KeyRing`, the WebSocket authorizer), so each follows a rotation the same way.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

#[cfg(feature = "secrets")]
use crate::secrets::{AWSCURRENT, AWSPREVIOUS, SecretsManager};

/// The secret's values: current, and previous while a rotation is recent.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeys {
    pub current: Vec<u8>,
    pub previous: Option<Vec<u8>>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKeys { .. }") // never the values
    }
}

/// Where the signing keys are read from.
pub trait KeySource: Send + Sync {
    fn read(&self) -> impl Future<Output = Result<SigningKeys, String>> + Send;
}

#[cfg(feature = "secrets")]
/// The keys in a Secrets Manager secret (its `AWSCURRENT` and `AWSPREVIOUS` stages), through
/// the platform's one Secrets Manager adapter.
pub struct SecretsManagerKeys {
    secrets: SecretsManager,
    secret_id: String,
}

#[cfg(feature = "secrets")]
impl SecretsManagerKeys {
    pub fn new(secrets: SecretsManager, secret_id: impl Into<String>) -> Self {
        Self {
            secrets,
            secret_id: secret_id.into(),
        }
    }
}

#[cfg(feature = "secrets")]
impl KeySource for SecretsManagerKeys {
    async fn read(&self) -> Result<SigningKeys, String> {
        let id = self.secret_id.as_str();
        let (current, previous) = tokio::join!(
            self.secrets.value(id, None, AWSCURRENT),
            self.secrets.value(id, None, AWSPREVIOUS)
        );
        let current = current
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("the secret {id} has no current value"))?;
        Ok(SigningKeys {
            current: current.into_bytes(),
            // A secret never rotated has no previous value.
            previous: previous.map_err(|e| e.to_string())?.map(String::into_bytes),
        })
    }
}

/// Keys in memory, changeable: tests and local runs.
#[derive(Default)]
pub struct MemoryKeys {
    keys: Mutex<Option<SigningKeys>>,
    reads: AtomicI64,
}

impl MemoryKeys {
    pub fn new(current: &[u8]) -> Self {
        let keys = Self::default();
        keys.set(current, None);
        keys
    }

    /// What a rotation does: a new current value, the old one becomes previous.
    pub fn rotate(&self, next: &[u8]) {
        let mut keys = self.keys.lock().unwrap();
        let old = keys.take().map(|k| k.current);
        *keys = Some(SigningKeys {
            current: next.to_vec(),
            previous: old,
        });
    }

    pub fn set(&self, current: &[u8], previous: Option<&[u8]>) {
        *self.keys.lock().unwrap() = Some(SigningKeys {
            current: current.to_vec(),
            previous: previous.map(<[u8]>::to_vec),
        });
    }

    /// Makes reads fail (`None`), as an unreachable Secrets Manager would.
    pub fn break_reads(&self) {
        *self.keys.lock().unwrap() = None;
    }

    pub fn reads(&self) -> i64 {
        self.reads.load(Ordering::Relaxed)
    }
}

impl KeySource for MemoryKeys {
    async fn read(&self) -> Result<SigningKeys, String> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.keys
            .lock()
            .unwrap()
            .clone()
            .ok_or_else(|| "the secret cannot be read".to_owned())
    }
}
