//! [`Pick`], the guard a pick returns, and the [`Outcome`] a caller reports through it.

use std::sync::Arc;
use std::time::Duration;

use super::Balancer;
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
#[derive(Debug)]
#[must_use = "a pick counts as in flight until it is reported or dropped"]
pub struct Pick<'a, S: Strategy> {
    balancer: &'a Balancer<S>,
    endpoint: Arc<Endpoint>,
    reported: bool,
}

impl<'a, S: Strategy> Pick<'a, S> {
    pub(super) fn new(balancer: &'a Balancer<S>, endpoint: Arc<Endpoint>) -> Self {
        endpoint.acquire();
        Self { balancer, endpoint, reported: false }
    }

    /// The chosen endpoint.
    pub fn endpoint(&self) -> &Arc<Endpoint> {
        &self.endpoint
    }

    /// The chosen endpoint's id.
    pub fn id(&self) -> &str {
        self.endpoint.id()
    }

    /// The chosen endpoint's address.
    pub fn addr(&self) -> &str {
        self.endpoint.addr()
    }

    /// Records how the request went and releases the endpoint.
    pub fn report(mut self, outcome: Outcome) {
        self.reported = true;
        let now = self.balancer.now_nanos();
        match outcome {
            Outcome::Success(latency) => {
                self.endpoint.observe_latency(now, latency);
                self.endpoint.count_success();
            }
            Outcome::Failure(latency) => {
                self.endpoint.observe_latency(now, latency);
                let in_a_row = self.endpoint.count_failure();
                self.balancer.on_failure(&self.endpoint, in_a_row);
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
    fn drop(&mut self) {
        if !self.reported {
            self.endpoint.count_cancelled();
        }
        self.endpoint.release();
    }
}
