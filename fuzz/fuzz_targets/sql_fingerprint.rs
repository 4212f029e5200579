//! Feeds arbitrary text to the SQL fingerprinter: it must never panic, normalising its
//! own output must change nothing (text and id), and the id must be the one of the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mltb_query_analyzer::fingerprint;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let fp = fingerprint(&text);
    let again = fingerprint(&fp.normalized);
    assert_eq!(fp.normalized, again.normalized, "{text:?} normalised twice changed");
    assert_eq!(fp.id, again.id, "{text:?}: same text, different id");
    assert_eq!(fp.kind, again.kind, "{text:?}: normalising changed the statement kind");
});
