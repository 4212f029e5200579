//! Query events and the sink that receives them.

use std::hash::{Hash, Hasher};
use std::time::Duration;

/// Identifies one unit of work whose queries belong together: a request, a task, a command.
///
/// Ids are chosen by the caller and must be unique among spans open at the same time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(pub u64);

/// What kind of work a span is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SpanKind {
    /// An HTTP or API request.
    Request,
    /// A background task (a download, an upload).
    Task,
    /// A bot command.
    Command,
    /// Anything else.
    Other,
}

/// One executed query.
#[derive(Debug, Clone, Copy)]
pub struct QueryEvent<'a> {
    /// The SQL text as sent to the database (with placeholders, not values).
    pub sql: &'a str,
    /// A digest of the bound parameters: equal parameters give equal digests
    /// (see [`params_digest`]).
    pub params_digest: u64,
    /// How long the query took.
    pub duration: Duration,
    /// Rows returned or affected.
    pub rows: u64,
    /// The span the query ran in, if any.
    pub span: Option<SpanId>,
    /// When the query ended, as time since an origin of your choosing (Unix time, the
    /// process's start, a recording's clock), the same origin for every event of a span:
    /// only the gaps between one span's queries are read, to tell a tight loop from
    /// polling ([`NPlusOneConfig::max_gap`](crate::NPlusOneConfig::max_gap)). `None`:
    /// the analyzer reads its own clock when it records the event, which is the same
    /// thing when the executor calls [`QuerySink::record`] as each query ends. Give it
    /// when events reach the sink later (through a channel, in batches) or come from a
    /// recording: a batch of events recorded at once would otherwise look like one
    /// tight loop, however far apart its queries ran. Do not mix `Some` and `None` in
    /// one span.
    pub ended_at: Option<Duration>,
}

/// Receives query events. Implementations must be cheap: `record` is called on the
/// query path.
pub trait QuerySink: Send + Sync {
    /// One query finished.
    fn record(&self, event: &QueryEvent<'_>);

    /// A span opened. `name` says what it is (a command name, a route).
    fn span_start(&self, span: SpanId, kind: SpanKind, name: &str) {
        let _ = (span, kind, name);
    }

    /// A span closed; its queries can now be judged as a whole.
    fn span_end(&self, span: SpanId) {
        let _ = span;
    }
}

impl<S: QuerySink + ?Sized> QuerySink for std::sync::Arc<S> {
    fn record(&self, event: &QueryEvent<'_>) {
        (**self).record(event);
    }
    fn span_start(&self, span: SpanId, kind: SpanKind, name: &str) {
        (**self).span_start(span, kind, name);
    }
    fn span_end(&self, span: SpanId) {
        (**self).span_end(span);
    }
}

/// A sink that drops every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopSink;

impl QuerySink for NoopSink {
    fn record(&self, _event: &QueryEvent<'_>) {}
}

/// A stable digest of bound parameters, for [`QueryEvent::params_digest`].
///
/// Uses FNV-1a over the parameters' `Hash` output, so it is the same in every process
/// (unlike `RandomState`) and equal parameters always give equal digests.
pub fn params_digest<T: Hash + ?Sized>(params: &T) -> u64 {
    let mut hasher = Fnv1a(0xcbf2_9ce4_8422_2325);
    params.hash(&mut hasher);
    hasher.finish()
}

struct Fnv1a(u64);

impl Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_digest_is_stable_and_discriminating() {
        assert_eq!(params_digest(&(1_i64, "a")), params_digest(&(1_i64, "a")));
        assert_ne!(params_digest(&(1_i64, "a")), params_digest(&(2_i64, "a")));
        // FNV-1a of the empty input is the offset basis: the digest does not depend on the process.
        assert_eq!(params_digest(&()), 0xcbf2_9ce4_8422_2325);
    }
}
