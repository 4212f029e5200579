//! Time as a seam: the limiters read time through [`mltb_clock`]'s [`Clock`], the same
//! trait and clocks as the other mltb crates.

pub use mltb_clock::{Clock, FakeClock, MonotonicClock, StdClock, TokioClock};
