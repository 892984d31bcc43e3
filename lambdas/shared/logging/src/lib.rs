//! The log setup every function shares.

/// JSON log lines on stdout, level from `RUST_LOG` (default `info`), without timestamps:
/// CloudWatch stamps every line. Call once, first thing in `main`.
pub fn init() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(false)
        .without_time()
        .init();
}
