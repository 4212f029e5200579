//! The tower layer, driven with `tower::ServiceExt`.
#![cfg(feature = "tower")]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mltb_ratelimit::{Denied, FakeClock, KeyedLimiter, RateLimitError, RateLimitLayer};
use tower::{Layer, Service, ServiceExt, service_fn};

#[derive(Debug)]
struct Request {
    user: u64,
    body: &'static str,
}

#[tokio::test]
async fn limits_per_key_and_reports_retry_after() {
    let clock = FakeClock::new();
    let limiter = Arc::new(
        KeyedLimiter::<u64, _>::builder("2/s".parse().unwrap())
            .max_keys(10)
            .clock(clock.clone())
            .build()
            .unwrap(),
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let inner_calls = calls.clone();
    let inner = service_fn(move |req: Request| {
        inner_calls.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, Infallible>(req.body.to_uppercase()) }
    });
    let mut svc = RateLimitLayer::new(limiter.clone(), |req: &Request| req.user).layer(inner);

    for _ in 0..2 {
        let out = svc.ready().await.unwrap().call(Request { user: 1, body: "hi" }).await.unwrap();
        assert_eq!(out, "HI");
    }
    let err = svc.ready().await.unwrap().call(Request { user: 1, body: "hi" }).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_millis(500)));
    assert!(matches!(err, RateLimitError::Limited(Denied::NotUntil(_))), "{err:?}");
    assert!(err.to_string().contains("rate limited"), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 2, "a limited request never reaches the inner service");

    let out = svc.clone().oneshot(Request { user: 2, body: "other" }).await.unwrap();
    assert_eq!(out, "OTHER", "another key has its own budget");

    clock.advance(Duration::from_millis(500));
    assert!(svc.ready().await.unwrap().call(Request { user: 1, body: "x" }).await.is_ok());
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn inner_errors_pass_through() {
    let limiter = Arc::new(KeyedLimiter::<u64>::new("10/s".parse().unwrap(), 10).unwrap());
    let inner = service_fn(|_: u64| async { Err::<(), _>(std::io::Error::other("boom")) });
    let svc = RateLimitLayer::new(limiter, |k: &u64| *k).layer(inner);
    let err = svc.oneshot(3).await.unwrap_err();
    assert!(matches!(&err, RateLimitError::Inner(e) if e.to_string() == "boom"), "{err:?}");
    assert_eq!(err.retry_after(), None);
}
