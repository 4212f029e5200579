//! Criterion benchmarks that cross crate boundaries; each `[[bench]]` in this package's
//! manifest is one file beside this one. Per-crate benches live in `crates/*/benches/`.
