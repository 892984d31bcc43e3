//! The AWS SDK clients of the function, configured so that retries happen in one layer and no
//! call outlives the invocation.
//!
//! - **EventBridge**: the SDK does not retry; [`eventfabric_core::EventBridgeSink`] does, on
//!   the entries that failed only and never past the invocation's deadline. With both layers
//!   retrying, one entry batch was tried about 12 times and an outage request took 10–13 s, longer
//!   than the function's timeout.
//! - **DynamoDB**: the SDK's standard retry, two attempts in all; the forwarder also bounds each
//!   call ([`crate::ForwardConfig::store_call_timeout`]) and fails open only on unavailability.
//!
//! Both get connect and per-attempt timeouts far above their normal in-region latency (a few
//! to a few dozen milliseconds), so an endpoint that accepts connections and then hangs costs
//! one timeout, not the invocation.

use std::time::Duration;

use aws_config::SdkConfig;

/// Connecting to a regional endpoint takes milliseconds; a second means it is not there.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// One PutEvents attempt.
pub const PUT_EVENTS_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// One DynamoDB attempt.
pub const DYNAMODB_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);
/// Attempts per DynamoDB call, the first included.
pub const DYNAMODB_MAX_ATTEMPTS: u32 = 2;

/// The EventBridge client: no SDK retries (the sink retries), bounded attempts.
pub fn eventbridge(config: &SdkConfig) -> aws_sdk_eventbridge::Client {
    use aws_sdk_eventbridge::config::{Builder, retry::RetryConfig, timeout::TimeoutConfig};
    let config = Builder::from(config)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(PUT_EVENTS_ATTEMPT_TIMEOUT)
                .build(),
        )
        .build();
    aws_sdk_eventbridge::Client::from_conf(config)
}

/// The DynamoDB client of the state store: two attempts, bounded.
pub fn dynamodb(config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    use aws_sdk_dynamodb::config::{Builder, retry::RetryConfig, timeout::TimeoutConfig};
    let config = Builder::from(config)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(DYNAMODB_MAX_ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(20))
                .with_max_backoff(Duration::from_millis(100)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(DYNAMODB_ATTEMPT_TIMEOUT)
                .build(),
        )
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}
