//! [`Pick`], the guard a pick returns, and the [`Outcome`] a caller reports through it.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::Guard;

use super::{Balancer, Snapshot};
use crate::backend::Endpoint;
use crate::strategy::Strategy;

/// How a request to a picked endpoint went, with the time it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The request succeeded after this long. Resets the endpoint's failure count.
    Success(Duration),
    /// The request failed after this long. Counts toward outlier ejection.
    Failure(Duration),
}

/// An endpoint chosen by [`Balancer::pick`], counted as in flight until this guard is
/// reported or dropped.
///
/// Report how the request went with [`report`](Self::report) (or
/// [`success`](Self::success) / [`failure`](Self::failure)): latencies feed P2C's
/// peak EWMA and failures feed outlier detection. Dropping the guard without a report
/// counts the request as cancelled, which affects neither.
///
/// The guard holds the balancer's snapshot it was picked from (through `arc-swap`'s
/// guard, which costs no shared write), so the endpoint stays valid after it is removed;
/// while it lives, that snapshot — including the strategy's ring or table — is kept.
/// `arc-swap` has 8 such cheap guards per thread: while 8 picks made on one thread are
/// still held (anywhere), further picks on that thread count a reference on the snapshot
/// instead — an atomic add and subtract on a counter all threads share.
#[derive(Debug)]
#[must_use = "a pick counts as in flight until it is reported or dropped"]
pub struct Pick<'a, S: Strategy> {
    balancer: &'a Balancer<S>,
    snapshot: Guard<Arc<Snapshot<S::State>>>,
    index: usize,
    tracked: bool,
    reported: bool,
}

impl<'a, S: Strategy> Pick<'a, S> {
    /// `index` must be in range of the snapshot's available endpoints.
    #[inline]
    pub(super) fn new(
        balancer: &'a Balancer<S>,
        snapshot: Guard<Arc<Snapshot<S::State>>>,
        index: usize,
        tracked: bool,
    ) -> Self {
        let pick = Self { balancer, snapshot, index, tracked, reported: false };
        if tracked {
            pick.endpoint().acquire();
        }
        pick
    }

    /// The chosen endpoint.
    #[inline]
    pub fn endpoint(&self) -> &Arc<Endpoint> {
        &self.snapshot.available[self.index]
    }

    /// The chosen endpoint's id.
    #[inline]
    pub fn id(&self) -> &str {
        self.endpoint().id()
    }

    /// The chosen endpoint's address.
    #[inline]
    pub fn addr(&self) -> &str {
        self.endpoint().addr()
    }

    /// Records how the request went and releases the endpoint.
    pub fn report(mut self, outcome: Outcome) {
        self.reported = true;
        let now = self.balancer.now_nanos();
        let endpoint = self.endpoint();
        match outcome {
            Outcome::Success(latency) => {
                endpoint.observe_latency(now, latency);
                endpoint.count_success();
            }
            Outcome::Failure(latency) => {
                endpoint.observe_latency(now, latency);
                let in_a_row = endpoint.count_failure();
                self.balancer.on_failure(endpoint, in_a_row);
            }
        }
    }

    /// Reports a success after `latency`.
    pub fn success(self, latency: Duration) {
        self.report(Outcome::Success(latency));
    }

    /// Reports a failure after `latency`.
    pub fn failure(self, latency: Duration) {
        self.report(Outcome::Failure(latency));
    }
}

impl<S: Strategy> Drop for Pick<'_, S> {
    #[inline]
    fn drop(&mut self) {
        let endpoint = self.endpoint();
        if !self.reported {
            endpoint.count_cancelled();
        }
        if self.tracked {
            endpoint.release();
            self.balancer.released(&self.snapshot, endpoint);
        }
    }
}
