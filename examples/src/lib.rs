//! Runnable examples that compose several mltb crates. The logic of each example lives in
//! a module here so that its tests check what the example shows; each file in
//! `examples/examples/` is a thin `main` over one of them. Run one with
//! `cargo run -p mltb-examples --example NAME`.

pub mod status_edits;
