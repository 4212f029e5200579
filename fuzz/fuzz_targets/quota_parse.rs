//! Feeds arbitrary text to the quota parser: it must never panic, and whatever it accepts
//! must print back to a string that parses to the same quota.
#![no_main]

use std::str::FromStr;

use libfuzzer_sys::fuzz_target;
use mltb_ratelimit::Quota;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(quota) = Quota::from_str(text) {
        let printed = quota.to_string();
        let reparsed = Quota::from_str(&printed)
            .unwrap_or_else(|e| panic!("{text:?} parsed, but its display {printed:?} did not: {e}"));
        assert_eq!(quota, reparsed, "{text:?} -> {printed:?} did not round-trip");
    }
});
