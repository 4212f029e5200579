//! Feeds arbitrary text (and the same text as a replied message) to the command parser:
//! it must never panic, and whatever it accepts must render to text that parses back to
//! the same command.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mltb_telegram::command::{CommandParser, Reply};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let parser = CommandParser::builder().bot_username("mltb_bot").suffix("1").build();
    for input in [text.to_string(), format!("/m1 {text}"), format!("/leech1@mltb_bot {text}")] {
        let reply = Reply::Text(text.to_string());
        if let Ok(Some(cmd)) = parser.parse(&input, Some(&reply)) {
            // The link taken from the reply is not part of the rendered text.
            let Ok(Some(without_reply)) = parser.parse(&input, None) else {
                panic!("{input:?} parsed with a reply but not without one")
            };
            let rendered = parser.render(&without_reply);
            let reparsed = parser
                .parse(&rendered, None)
                .unwrap_or_else(|e| panic!("{input:?} -> {rendered:?} did not parse: {e}"));
            assert_eq!(
                reparsed.as_ref(),
                Some(&without_reply),
                "{input:?} -> {rendered:?} did not round-trip"
            );
            let _ = cmd;
        }
    }
});
