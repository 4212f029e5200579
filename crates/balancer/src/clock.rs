//! Time as a seam: the balancer reads time through [`mltb_clock`]'s [`Clock`], the same
//! trait and clocks as the other mltb crates.

pub(crate) use mltb_clock::nanos as nanos_u64;
pub use mltb_clock::{Clock, FakeClock, MonotonicClock, TokioClock};
