//! A step's failure, as Step Functions sees it: the Lambda error type becomes the state's
//! `Error`, which the definition's `Retry` and `Catch` match on. Messages name fields and
//! reasons, never the summary's text (Step Functions puts them in the failure event's `cause`).

use lambda_runtime::Diagnostic;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// The input cannot be a summary (or a pipeline document): caught, the failure event says
    /// why. Retrying would fail the same way.
    #[error("{0}")]
    Invalid(String),
    /// The store was unavailable (throttled, 5xx, timeout, network): retried with backoff by
    /// the state machine.
    #[error("{0}")]
    StoreUnavailable(String),
    /// The store refused the request (permissions, validation, a missing table): caught.
    #[error("{0}")]
    StoreRefused(String),
}

impl StepError {
    /// The `Error` name the state machine matches (`stepfunctions/session-pipeline.asl.json`).
    pub fn error_type(&self) -> &'static str {
        match self {
            StepError::Invalid(_) => "InvalidInput",
            StepError::StoreUnavailable(_) => "StoreUnavailable",
            StepError::StoreRefused(_) => "StoreRefused",
        }
    }
}

impl From<StepError> for Diagnostic {
    fn from(error: StepError) -> Self {
        Diagnostic {
            error_type: error.error_type().to_owned(),
            // Bounded: an unknown field's name (client text) may be long.
            error_message: eventfabric_core::text::bounded(error.to_string()),
        }
    }
}

/// A serde error as a message about `what`, with the path of the offending field and the
/// kind of problem but never the value (serde_json quotes the value it rejected).
pub fn shape_error(what: &str, error: &serde_path_to_error::Error<serde_json::Error>) -> StepError {
    let path = error.path().to_string();
    let inner = error.inner().to_string();
    // "invalid type: string \"…\", expected u64 at line 1 column 9" -> "invalid type, expected u64"
    let kind = if let Some(rest) = inner.strip_prefix("invalid type: ") {
        match rest.split_once(", expected ") {
            Some((found, expected)) => {
                let found = found.split_whitespace().next().unwrap_or("value");
                format!(
                    "invalid type: {found}, expected {}",
                    strip_position(expected)
                )
            }
            None => "invalid type".to_owned(),
        }
    } else if inner.starts_with("missing field") || inner.starts_with("unknown field") {
        strip_position(&inner)
            .split(", expected")
            .next()
            .unwrap_or("")
            .to_owned()
    } else if inner.starts_with("invalid length") {
        strip_position(&inner).to_owned()
    } else {
        "does not match the schema".to_owned()
    };
    let at = if path == "." {
        String::new()
    } else {
        format!(" at {path}")
    };
    StepError::Invalid(format!("{what}{at}: {kind}"))
}

fn strip_position(message: &str) -> &str {
    message.split(" at line ").next().unwrap_or(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape<T: serde::de::DeserializeOwned + std::fmt::Debug>(text: &str) -> String {
        let mut de = serde_json::Deserializer::from_str(text);
        let error = serde_path_to_error::deserialize::<_, T>(&mut de).unwrap_err();
        shape_error("payload", &error).to_string()
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Shape {
        turns: u64,
        names: Vec<String>,
    }

    #[test]
    fn messages_name_the_field_and_never_the_value() {
        let m = shape::<Shape>(r#"{"turns": "call me at +1 555 0100", "names": []}"#);
        assert_eq!(m, "payload at turns: invalid type: string, expected u64");
        let m = shape::<Shape>(r#"{"turns": 1, "names": ["a", 7]}"#);
        assert_eq!(
            m,
            "payload at names[1]: invalid type: integer, expected a string"
        );
        let m = shape::<Shape>(r#"{"turns": 1}"#);
        assert_eq!(m, "payload: missing field `names`");
        let m = shape::<Shape>(r#"{"turns": 1, "names": [], "secret@example.com": 1}"#);
        assert!(
            m.starts_with("payload at secret@example.com: unknown field"),
            "{m}"
        );
        assert!(!m.contains("1 555"));
    }

    #[test]
    fn error_types_are_the_names_the_definition_matches() {
        let d: Diagnostic = StepError::StoreUnavailable("x".into()).into();
        assert_eq!(d.error_type, "StoreUnavailable");
        let d: Diagnostic = StepError::Invalid("summary: empty".into()).into();
        assert_eq!(
            (d.error_type.as_str(), d.error_message.as_str()),
            ("InvalidInput", "summary: empty")
        );
    }
}
