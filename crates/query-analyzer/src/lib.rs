//! SQL fingerprints, N+1 detection and cache advice, fed by query events.
//!
//! The seam is [`QuerySink`]: whatever executes queries reports each one as a
//! [`QueryEvent`], grouped into spans (a request, a task, a command).

mod event;

pub use event::{NoopSink, QueryEvent, QuerySink, SpanId, SpanKind, params_digest};
