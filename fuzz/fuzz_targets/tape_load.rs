//! Differential fuzzing of the forward path's JSON reader: for any text, `Tape::load` must
//! record exactly the items `Tape::parse` (serde_json's own deserializer) records, or both
//! must refuse it; the request body's lenient reading must accept only JSON text.
//!
//!     cargo fuzz run tape_load -- -max_total_time=600

#![no_main]

use forward_api::tape::Tape;
use libfuzzer_sys::fuzz_target;
use serde::de::IgnoredAny;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut loaded = Tape::default();
    let mut parsed = Tape::default();
    let by_load = loaded.load(text);
    let by_parse = parsed.parse(text);
    match (&by_load, &by_parse) {
        (Ok(()), Ok(())) => assert_eq!(loaded.items(), parsed.items(), "{text}"),
        (Err(_), Err(_)) => {}
        _ => panic!("load {by_load:?} but parse {by_parse:?} for {text:?}"),
    }
    // The request reader keeps repeated names and undecodable values (as problems); otherwise
    // it reads the same, and it accepts nothing that is not JSON text (serde_json skipping a
    // value checks the text without decoding it).
    let mut lenient = Tape::default();
    let by_lenient = lenient.load_with_repeats(text);
    if by_load.is_ok() {
        assert!(by_lenient.is_ok(), "{by_lenient:?} for {text:?}");
        assert_eq!(lenient.items(), loaded.items());
    }
    if by_lenient.is_ok() {
        assert!(
            serde_json::from_str::<IgnoredAny>(text).is_ok(),
            "accepted text that is not JSON: {text:?}"
        );
    }
});
