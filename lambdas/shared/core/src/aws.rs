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
