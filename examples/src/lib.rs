//! Runnable examples that compose several mltb crates; each `[[example]]` in this
//! package's manifest is one file beside this one. Run one with
//! `cargo run -p mltb-examples --example NAME`.
