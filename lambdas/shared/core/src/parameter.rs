//! Settings an operator changes at run time without a deploy (a kill switch, a rollout
//! percentage): a parameter read through a [`ParameterSource`] (SSM Parameter Store in the
//! deployed functions, memory in tests), parsed, and held for a short TTL by
//! [`CachedParameter`], so a change takes effect within the TTL and a busy function reads the
//! parameter about once per TTL per execution environment.
//!
//! A read that fails, or a value that does not parse, keeps the value held before (its age
//! restarts, so a broken parameter is not read on every request); before any read succeeds the
//! caller's fallback is in force. Which fallback is safe is the caller's decision: a kill
//! switch falls back to "on" (an unreadable parameter must not stop the platform), a new code
//! path falls back to "off".

use std::fmt::Debug;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Where a parameter's text is read from.
pub trait ParameterSource: Send + Sync {
    fn read(&self) -> impl Future<Output = Result<String, String>> + Send;
}

/// A value set by the test (or a local run), counting its reads.
#[derive(Debug)]
pub struct MemoryParameter {
    value: Mutex<Result<String, String>>,
    reads: Mutex<u64>,
}

impl MemoryParameter {
    pub fn new(value: impl Into<String>) -> Self {
        Self {
            value: Mutex::new(Ok(value.into())),
            reads: Mutex::new(0),
        }
    }

    /// The next reads' answer: a value, or the error a failed read gives.
    pub fn set(&self, value: Result<String, String>) {
        *self.value.lock().expect("lock") = value;
    }

    pub fn reads(&self) -> u64 {
        *self.reads.lock().expect("lock")
    }
}

impl ParameterSource for MemoryParameter {
    async fn read(&self) -> Result<String, String> {
        *self.reads.lock().expect("lock") += 1;
        self.value.lock().expect("lock").clone()
    }
}

impl<S: ParameterSource> ParameterSource for std::sync::Arc<S> {
    fn read(&self) -> impl Future<Output = Result<String, String>> + Send {
        (**self).read()
    }
}

/// A parameter read at most once per `ttl` and parsed into `T`.
pub struct CachedParameter<S, T> {
    source: S,
    ttl: Duration,
    parse: fn(&str) -> Result<T, String>,
    fallback: T,
    held: Mutex<Option<(Instant, T)>>,
}

impl<S: ParameterSource, T: Clone + Debug> CachedParameter<S, T> {
    /// `fallback` is in force until a read succeeds.
    pub fn new(
        source: S,
        ttl: Duration,
        parse: fn(&str) -> Result<T, String>,
        fallback: T,
    ) -> Self {
        Self {
            source,
            ttl,
            parse,
            fallback,
            held: Mutex::new(None),
        }
    }

    pub fn source(&self) -> &S {
        &self.source
    }

    /// The value in force: the held one while it is younger than the TTL, else a fresh read;
    /// on a failed read or a value that does not parse, the held one (or the fallback).
    pub async fn current(&self) -> T {
        let now = Instant::now();
        let held = self.held.lock().expect("lock").clone();
        if let Some((at, value)) = &held
            && now.duration_since(*at) < self.ttl
        {
            return value.clone();
        }
        let value = match self
            .source
            .read()
            .await
            .and_then(|text| (self.parse)(&text))
        {
            Ok(value) => value,
            Err(error) => {
                let kept = held.map_or_else(|| self.fallback.clone(), |(_, v)| v);
                tracing::warn!(%error, ?kept, "parameter not read; keeping the value in force");
                kept
            }
        };
        *self.held.lock().expect("lock") = Some((now, value.clone()));
        value
    }
}

/// A String parameter of SSM Parameter Store.
#[cfg(feature = "ssm")]
pub struct SsmParameter {
    client: aws_sdk_ssm::Client,
    name: String,
}

#[cfg(feature = "ssm")]
impl SsmParameter {
    pub fn new(client: aws_sdk_ssm::Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(feature = "ssm")]
impl ParameterSource for SsmParameter {
    async fn read(&self) -> Result<String, String> {
        let out = self
            .client
            .get_parameter()
            .name(&self.name)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "parameter {}: {}",
                    self.name,
                    aws_sdk_ssm::error::DisplayErrorContext(&e)
                )
            })?;
        out.parameter
            .and_then(|p| p.value)
            .ok_or_else(|| format!("parameter {} has no value", self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn switch(text: &str) -> Result<bool, String> {
        match text {
            "on" => Ok(true),
            "off" => Ok(false),
            other => Err(format!("'{other}' is neither on nor off")),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_takes_effect_once_the_held_value_is_older_than_the_ttl() {
        let cached = CachedParameter::new(
            MemoryParameter::new("on"),
            Duration::from_secs(10),
            switch,
            true,
        );
        assert!(cached.current().await);
        cached.source().set(Ok("off".into()));
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(cached.current().await, "still held");
        assert_eq!(cached.source().reads(), 1, "one read per TTL");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!cached.current().await, "read again after the TTL");
        assert_eq!(cached.source().reads(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_read_or_a_bad_value_keeps_the_value_in_force() {
        let cached = CachedParameter::new(
            MemoryParameter::new("off"),
            Duration::from_secs(10),
            switch,
            true,
        );
        assert!(!cached.current().await);
        for broken in [Err("throttled".to_owned()), Ok("maybe".to_owned())] {
            cached.source().set(broken);
            tokio::time::advance(Duration::from_secs(10)).await;
            assert!(!cached.current().await, "the last good value stays");
        }
        // The failure restarted the age: no read on every request while it is broken.
        let reads = cached.source().reads();
        assert!(!cached.current().await);
        assert_eq!(cached.source().reads(), reads);
    }

    #[tokio::test(start_paused = true)]
    async fn the_fallback_is_in_force_until_a_read_succeeds() {
        let source = MemoryParameter::new("on");
        source.set(Err("no such parameter".into()));
        let cached = CachedParameter::new(source, Duration::from_secs(10), switch, true);
        assert!(cached.current().await, "the caller's fallback");
        cached.source().set(Ok("off".into()));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(!cached.current().await);
    }
}
