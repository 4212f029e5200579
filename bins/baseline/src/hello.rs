//! `mltb-baseline hello`: a bare axum handler, the reference a service's own overhead is
//! measured against.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::get;

/// Serves `hello` at `/` and `/hello` on `bind` (loopback only) for `run_for`, or until
/// interrupted; prints the URL first.
pub(crate) async fn serve(bind: SocketAddr, run_for: Duration) -> Result<(), String> {
    if !bind.ip().is_loopback() {
        return Err(format!(
            "--bind {bind}: the reference server listens on loopback only, e.g. 127.0.0.1:0"
        ));
    }
    let listener = tokio::net::TcpListener::bind(bind).await.map_err(|e| format!("--bind {bind}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let app = Router::new().route("/", get(|| async { "hello" })).route("/hello", get(|| async { "hello" }));
    println!("http://{addr}/hello");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let stop = async move {
        tokio::select! {
            () = tokio::time::sleep(run_for) => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    axum::serve(listener, app).with_graceful_shutdown(stop).await.map_err(|e| e.to_string())
}
