//! The accept loop: hyper http1 connections over an axum router, so that an injected
//! fault can close a connection without answering.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::routing::any;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::api::{self, ConnDropper};
use crate::control;
use crate::state::Shared;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/{bot_token}/{method}", any(api::bot_method))
        .route("/file/{bot_token}/{*file_path}", any(api::download))
        .nest("/_sim", control::router())
        .fallback(|method: axum::http::Method| async move {
            match api::method_allowed(&method) {
                Ok(()) => api::ApiError::new(404, "Not Found").into_response(),
                Err(err) => err.into_response(),
            }
        })
        .layer(DefaultBodyLimit::disable())
        .with_state(shared)
}

/// Serves until `stop` turns true; then aborts every open connection (long polls included).
pub(crate) async fn serve(listener: TcpListener, router: Router, mut stop: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (stream, _) = match accepted {
            Ok(conn) => conn,
            Err(err) => {
                tracing::warn!(%err, "accept failed");
                continue;
            }
        };
        let router = router.clone();
        connections.spawn(async move {
            let dropper = Arc::new(Notify::new());
            let service_dropper = ConnDropper(Arc::clone(&dropper));
            let service =
                hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(service_dropper.clone());
                    let mut router = router.clone();
                    async move { tower_service::Service::call(&mut router, req).await }
                });
            let conn =
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                result = conn => {
                    if let Err(err) = result {
                        tracing::debug!(%err, "connection ended with an error");
                    }
                }
                () = dropper.notified() => tracing::debug!("dropping a connection (injected fault)"),
            }
        });
    }
    connections.shutdown().await;
}
