//! Shared by the integration tests: an axum server on 127.0.0.1 that can be told to
//! stall, answer errors, be slow or add delay; an h2c server; ports that refuse or drop.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use tokio::time::Instant;

#[derive(Debug, Default)]
pub struct Knobs {
    /// Requests arriving before this instant wait until it.
    stall_until: Mutex<Option<Instant>>,
    /// Added to every /hello answer.
    delay: Mutex<Duration>,
}

#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    pub knobs: Arc<Knobs>,
}

impl Server {
    pub async fn start() -> Self {
        let knobs = Arc::new(Knobs::default());
        let app = Router::new()
            .route("/hello", get(hello))
            .route("/status/{code}", get(status))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    "late"
                }),
            )
            .with_state(knobs.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, knobs }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request arriving in the next `len` waits until its end: a server pause.
    pub fn stall(&self, len: Duration) {
        *self.knobs.stall_until.lock().unwrap() = Some(Instant::now() + len);
    }

    pub fn set_delay(&self, d: Duration) {
        *self.knobs.delay.lock().unwrap() = d;
    }
}

async fn hello(State(k): State<Arc<Knobs>>) -> &'static str {
    let until = *k.stall_until.lock().unwrap();
    if let Some(until) = until
        && Instant::now() < until
    {
        tokio::time::sleep_until(until).await;
    }
    let delay = *k.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    "hello"
}

async fn status(Path(code): Path<u16>) -> StatusCode {
    StatusCode::from_u16(code).unwrap()
}

/// A port on 127.0.0.1 where nothing listens.
pub fn refused() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A server that accepts and closes at once, before any answer.
pub async fn dropper() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            drop(s);
        }
    });
    addr
}

/// An h2c (prior knowledge) server answering "h2" with the version it saw.
pub async fn h2_server() -> SocketAddr {
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    let status = if req.version() == hyper::Version::HTTP_2 { 200 } else { 505 };
                    let mut res =
                        hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from_static(b"h2")));
                    *res.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                    Ok::<_, std::convert::Infallible>(res)
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}
