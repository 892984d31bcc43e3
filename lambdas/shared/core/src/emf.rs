//! CloudWatch EMF metrics as every function writes them: a recorder for the `metrics` facade
//! in namespace `METRICS_NAMESPACE` with the dimension `function`, and one document on stdout
//! after each invocation (CloudWatch Logs extracts the metrics; nothing is sent from the
//! function).

use metrics_cloudwatch_embedded::{Builder, Collector};

/// The installed recorder.
#[derive(Clone, Copy)]
pub struct Emf {
    collector: &'static Collector,
}

impl Emf {
    /// Installs the recorder (once per process) for `function` in `namespace`.
    pub fn install(namespace: impl Into<String>, function: &'static str) -> Result<Self, String> {
        let collector = Builder::new()
            .cloudwatch_namespace(namespace.into())
            .with_dimension("function", function)
            .init()
            .map_err(|e| format!("cannot install the EMF metrics recorder: {e}"))?;
        Ok(Self { collector })
    }

    /// Writes what the invocation recorded as one EMF document (per label set), tagged with
    /// the invocation's request id. A failure to write is logged, never the invocation's.
    pub fn flush(&self, request_id: &str) {
        if let Err(e) = self
            .collector
            .set_property("requestId", request_id.to_owned())
            .flush(std::io::stdout().lock())
        {
            tracing::warn!(error = %e, "cannot write EMF metrics");
        }
    }
}
