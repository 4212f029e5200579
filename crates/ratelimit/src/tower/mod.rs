//! [`RateLimitLayer`]: limit a tower service by a key taken from each request.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::{Denied, RateLimiter};

/// Wraps services in [`RateLimitService`]: each request's key (from the extractor
/// closure) is checked against the limiter before the inner service is called.
///
/// A request over the limit is not passed on: the call fails with
/// [`RateLimitError::Limited`], which carries the [`Denied`] and so the `retry_after`.
/// Turn it into a response (e.g. HTTP 429 with `Retry-After`) with
/// `tower::ServiceExt::map_err`/`then` or axum's `HandleErrorLayer`.
///
/// The check runs in `call`, since the key comes from the request; `poll_ready` only
/// asks the inner service, so a refused request leaves the inner service's readiness
/// unused (it is released when the service is next polled or dropped, as usual).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use mltb_ratelimit::{KeyedLimiter, RateLimitLayer, RateLimitError};
/// use tower::{service_fn, ServiceBuilder, ServiceExt};
///
/// let limiter = Arc::new(KeyedLimiter::<u64>::new("1/min".parse().unwrap(), 1000).unwrap());
/// let svc = ServiceBuilder::new()
///     .layer(RateLimitLayer::new(limiter, |req: &(u64, String)| req.0))
///     .service(service_fn(|req: (u64, String)| async move { Ok::<_, std::convert::Infallible>(req.1.len()) }));
///
/// assert_eq!(svc.clone().oneshot((7, "hello".to_string())).await.unwrap(), 5);
/// match svc.oneshot((7, "again".to_string())).await {
///     Err(RateLimitError::Limited(denied)) => assert!(denied.retry_after().is_some()),
///     other => panic!("expected a limit, got {other:?}"),
/// }
/// # }
/// ```
pub struct RateLimitLayer<L, F> {
    limiter: Arc<L>,
    key: F,
}

impl<L, F> RateLimitLayer<L, F> {
    /// Limits by `limiter`, keyed by `key(&request)`.
    pub fn new(limiter: Arc<L>, key: F) -> Self {
        Self { limiter, key }
    }
}

impl<L, F: Clone> Clone for RateLimitLayer<L, F> {
    fn clone(&self) -> Self {
        Self { limiter: self.limiter.clone(), key: self.key.clone() }
    }
}

impl<L: fmt::Debug, F> fmt::Debug for RateLimitLayer<L, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer").field("limiter", &self.limiter).finish_non_exhaustive()
    }
}

impl<S, L, F: Clone> Layer<S> for RateLimitLayer<L, F> {
    type Service = RateLimitService<S, L, F>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService { inner, limiter: self.limiter.clone(), key: self.key.clone() }
    }
}

/// The service made by [`RateLimitLayer`].
pub struct RateLimitService<S, L, F> {
    inner: S,
    limiter: Arc<L>,
    key: F,
}

impl<S, L, F> RateLimitService<S, L, F> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, L, F: Clone> Clone for RateLimitService<S, L, F> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), limiter: self.limiter.clone(), key: self.key.clone() }
    }
}

impl<S: fmt::Debug, L: fmt::Debug, F> fmt::Debug for RateLimitService<S, L, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitService")
            .field("inner", &self.inner)
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

impl<S, L, F, Req> Service<Req> for RateLimitService<S, L, F>
where
    S: Service<Req>,
    L: RateLimiter,
    L::Key: Sized,
    F: Fn(&Req) -> L::Key,
{
    type Response = S::Response;
    type Error = RateLimitError<S::Error>;
    type Future = RateLimitFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(RateLimitError::Inner)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let key = (self.key)(&req);
        let state = match self.limiter.check(&key) {
            Ok(()) => State::Inner { future: self.inner.call(req) },
            Err(denied) => State::Limited { denied: Some(denied) },
        };
        RateLimitFuture { state }
    }
}

/// Why a [`RateLimitService`] call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateLimitError<E> {
    /// The request's key was over its limit; the inner service was not called.
    Limited(Denied),
    /// The inner service failed.
    Inner(E),
}

impl<E> RateLimitError<E> {
    /// How long to wait before retrying, if the request was limited.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            RateLimitError::Limited(denied) => denied.retry_after(),
            RateLimitError::Inner(_) => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for RateLimitError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateLimitError::Limited(denied) => denied.fmt(f),
            RateLimitError::Inner(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for RateLimitError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RateLimitError::Limited(denied) => Some(denied),
            RateLimitError::Inner(e) => Some(e),
        }
    }
}

pin_project! {
    /// The future of a [`RateLimitService`] call.
    pub struct RateLimitFuture<Fut> {
        #[pin]
        state: State<Fut>,
    }
}

impl<Fut> fmt::Debug for RateLimitFuture<Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitFuture").finish_non_exhaustive()
    }
}

pin_project! {
    #[project = StateProj]
    enum State<Fut> {
        Inner { #[pin] future: Fut },
        Limited { denied: Option<Denied> },
    }
}

impl<Fut, T, E> Future for RateLimitFuture<Fut>
where
    Fut: Future<Output = Result<T, E>>,
{
    type Output = Result<T, RateLimitError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Inner { future } => future.poll(cx).map_err(RateLimitError::Inner),
            StateProj::Limited { denied } => match denied.take() {
                Some(denied) => Poll::Ready(Err(RateLimitError::Limited(denied))),
                // Polled after completion; never completes again (the futures contract
                // allows any behaviour here, and pending is the harmless one).
                None => Poll::Pending,
            },
        }
    }
}
