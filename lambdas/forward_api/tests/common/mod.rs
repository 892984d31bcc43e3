//! What the handler and EMF test binaries share: the fixture request, its clock and secret, and
//! a forwarder wired like `main.rs` but with in-memory adapters.
#![allow(dead_code)] // each test binary uses a subset

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use eventfabric_core::EventSink;
use eventfabric_registry::Registry;
use forward_api::{
    CompiledTopics, ForwardConfig, Forwarder, Redactor, SessionState, TokenVerifier,
};

/// The clock of the fixture: 2026-01-01T00:00:00Z.
pub const NOW: i64 = 1_767_225_600_000;

/// The local-only signing secret the fixture's token (session `sess-123`, expiring in 2100) was
/// minted with; `scripts/local_moto.py` stores the same string in the emulator's Secrets Manager.
pub const LOCAL_SECRET: &[u8] = b"eventfabric-local-only-session-secret-0001";

/// The API Gateway v2 request of `fixtures/apigw-v2-forward.json`.
pub fn fixture() -> ApiGatewayV2httpRequest {
    // Compiled in: a test binary reused from another checkout still carries this one's file.
    serde_json::from_str(include_str!("../../fixtures/apigw-v2-forward.json")).unwrap()
}

pub fn verifier() -> TokenVerifier {
    TokenVerifier::new(LOCAL_SECRET).unwrap()
}

/// Session bus only, the defaults of systems.md §1.
pub fn config() -> ForwardConfig {
    ForwardConfig::with_buses("session-bus", None)
}

/// The embedded registry compiled, hashing keyed by [`LOCAL_SECRET`].
pub fn forwarder<S: EventSink, St: SessionState>(
    sink: S,
    state: St,
    config: ForwardConfig,
) -> Forwarder<S, St> {
    let topics = CompiledTopics::compile(&Registry::embedded().unwrap()).unwrap();
    Forwarder::new(topics, sink, state, config).with_redactor(Redactor::from_secret(LOCAL_SECRET))
}

/// The JSON body of an answer.
pub fn body_json(response: &ApiGatewayV2httpResponse) -> serde_json::Value {
    match &response.body {
        Some(Body::Text(text)) => serde_json::from_str(text).unwrap(),
        other => panic!("expected a text body, got {other:?}"),
    }
}
