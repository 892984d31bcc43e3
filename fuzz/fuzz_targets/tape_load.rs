//! Differential fuzzing of the forward path's second reading of a payload: for any text that
//! serde_json accepts as a JSON value (the body pass guarantees no less), `Tape::load` must
//! record exactly the items `Tape::parse` (serde_json's own deserializer) records, or both
//! must refuse it.
//!
//!     cargo fuzz run tape_load -- -max_total_time=600

#![no_main]

use forward_api::tape::Tape;
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(raw) = serde_json::from_str::<&RawValue>(text) else {
        return;
    };
    let mut loaded = Tape::default();
    let mut parsed = Tape::default();
    let by_load = loaded.load(raw);
    let by_parse = parsed.parse(raw.get());
    match (&by_load, &by_parse) {
        (Ok(()), Ok(())) => assert_eq!(loaded.items(), parsed.items(), "{text}"),
        (Err(_), Err(_)) => {}
        _ => panic!("load {by_load:?} but parse {by_parse:?} for {text}"),
    }
});
