//! Fuzzes the forward API's request parser and per-event validator with arbitrary bodies.
//! Besides "never panics", it checks the contract: every event of a parsed request gets
//! exactly one outcome, accepted ids are unique, and only accepted events reach the sink.
//!
//!     RUSTC_BOOTSTRAP=1 cargo fuzz run -O forward_request corpus/forward_request \
//!         seeds/forward_request -- -max_total_time=600
//!
//! (`-O` builds fuzz/Cargo.toml's release profile, which keeps overflow checks on.)

#![no_main]

use std::collections::HashSet;
use std::sync::LazyLock;

use eventfabric_core::{Deadline, MemorySink};
use eventfabric_registry::Registry;
use forward_api::request::{decode_body, id_problem, parse_request};
use forward_api::state::Stateless;
use forward_api::{Answer, CompiledTopics, ForwardConfig, Forwarder, Redactor};
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_767_225_600_000;

/// Built once: compiling the schemas for every input held the fuzzer to ~430 execs/s.
static FORWARDER: LazyLock<Forwarder<MemorySink, Stateless>> = LazyLock::new(|| {
    let topics =
        CompiledTopics::compile(&Registry::embedded().expect("registry")).expect("compile");
    Forwarder::new(
        topics,
        MemorySink::new(),
        Stateless,
        ForwardConfig::with_buses("session-bus", None),
    )
    .with_redactor(Redactor::from_secret(b"fuzzing-secret-of-at-least-32-bytes"))
});
static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        // The forwarder bounds its store calls with tokio's timer.
        .enable_time()
        .build()
        .expect("runtime")
});

fuzz_target!(|data: &[u8]| {
    // API Gateway hands the function a string body.
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    let forwarder = &*FORWARDER;
    let limits = forwarder.config().request;
    let Ok(text) = decode_body(Some(body), false, limits) else {
        return;
    };
    let Ok(request) = parse_request(&text, limits) else {
        return;
    };
    let events = request.events.len();
    let forwarded = RUNTIME.block_on(forwarder.forward(request, NOW, Deadline::NONE));
    assert!(forwarded.store_failures.is_empty(), "{forwarded:?}");
    let Answer::Events(outcome) = forwarded.answer else {
        panic!("a stateless store never refuses: {:?}", forwarded.answer)
    };

    assert_eq!(
        outcome.accepted.len() + outcome.rejected.len(),
        events,
        "an event was lost or doubled"
    );
    let indexes: HashSet<usize> = outcome.rejected.iter().map(|r| r.index).collect();
    assert_eq!(
        indexes.len(),
        outcome.rejected.len(),
        "an event was rejected twice"
    );
    assert!(indexes.iter().all(|&i| i < events));
    let accepted: HashSet<&String> = outcome.accepted.iter().collect();
    assert_eq!(
        accepted.len(),
        outcome.accepted.len(),
        "an id was accepted twice"
    );
    assert!(
        outcome.accepted.iter().all(|id| id_problem(id).is_none()),
        "an id past the id limits was accepted"
    );
    let published = forwarder.sink().take();
    assert_eq!(published.len(), outcome.accepted.len());
    assert!(published.iter().all(|e| accepted.contains(&e.id)));
    // Details are written by hand (and redacted payloads re-encoded): each must be JSON naming
    // its event.
    for entry in &published {
        let detail: serde_json::Value =
            serde_json::from_str(&entry.detail).expect("a detail is valid JSON");
        assert_eq!(detail["id"], entry.id.as_str(), "a detail names its event");
        assert!(detail["payload"].is_object(), "a payload is an object");
    }
});
