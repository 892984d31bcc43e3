//! The AWS SDK configuration every function loads: region, credentials and endpoint from the
//! environment as usual, and one HTTPS client for all SDK clients, rustls on ring. (The SDK's
//! default client is rustls on aws-lc, a C library that took minutes to build per profile and
//! target and about 1.5 MB of every function.)

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::Builder;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// The HTTPS client of every SDK client (plain HTTP too, for local emulators).
pub fn http_client() -> SharedHttpClient {
    Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// `aws_config::load_defaults` with [`http_client`].
pub async fn load_config() -> SdkConfig {
    loader().load().await
}

/// The loader [`load_config`] uses, for callers that set more (tests point it at an emulator).
pub fn loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest()).http_client(http_client())
}

/// What an SDK call's failure means for the caller: try again later, or never as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdkFailure {
    /// Throttling, a 5xx, a timeout, a dropped connection, an unreadable answer: retry later.
    Transient(String),
    /// The service refused the request (validation, permissions, a missing resource), or it
    /// could not be built: it fails the same way every time.
    Refused(String),
}

/// Service error codes that mean "try later", not "this request is wrong" (DynamoDB's, and
/// the ones every AWS service shares).
pub fn is_transient_code(code: &str) -> bool {
    matches!(
        code,
        "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "Throttling"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "InternalServerError"
            | "InternalFailure"
            | "ServiceUnavailable"
            | "TransactionConflictException"
    )
}

/// Classifies an SDK error (any service): see [`SdkFailure`].
pub fn sdk_failure<E, R>(
    error: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> SdkFailure
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    let context = || aws_smithy_types::error::display::DisplayErrorContext(error).to_string();
    match error {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or("unknown");
            let detail = format!("{code}: {}", e.message().unwrap_or(""));
            if is_transient_code(code) {
                SdkFailure::Transient(detail)
            } else {
                SdkFailure::Refused(detail)
            }
        }
        SdkError::ConstructionFailure(_) => SdkFailure::Refused(context()),
        _ => SdkFailure::Transient(context()),
    }
}
