//! The adapter without state: benchmarks and fuzzing.

use super::{Claim, QuotaDecision, SessionState, StateError};

/// No cross-request state: every quota check passes and every claim is new. For benchmarks and
/// fuzzing, where the per-request path is the subject and remembered ids would skew it.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stateless;

impl SessionState for Stateless {
    async fn consume_quota(
        &self,
        _: &str,
        _: u32,
        _: u32,
        _: i64,
    ) -> Result<QuotaDecision, StateError> {
        Ok(QuotaDecision::Allowed)
    }

    async fn claim(&self, _: &str, ids: &[&str], _: i64, _: i64) -> Vec<Result<Claim, StateError>> {
        vec![Ok(Claim::New); ids.len()]
    }

    async fn confirm(&self, _: &str, _: &[&str], _: i64) -> Result<(), StateError> {
        Ok(())
    }

    async fn release(&self, _: &str, _: &[&str]) -> Result<(), StateError> {
        Ok(())
    }
}
