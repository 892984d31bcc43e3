//! Differential fuzzing of the forward path's JSON reader: for any text, `Tape::load` must
//! record exactly the items `Tape::parse` (serde_json's own deserializer) records, or both
//! must refuse it.
//!
//!     cargo fuzz run tape_load -- -max_total_time=600

#![no_main]

use forward_api::tape::Tape;
use libfuzzer_sys::fuzz_target;

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
    // The request reader keeps repeated names; otherwise it reads the same.
    let mut with_repeats = Tape::default();
    if by_load.is_ok() {
        with_repeats.load_with_repeats(text).expect("a subset of what load accepts");
        assert_eq!(with_repeats.items(), loaded.items());
    }
});
