//! Shared fixtures for the conformance tests.
#![allow(dead_code, unreachable_pub)]

use mltb_telegram_sim::{Sim, SimConfig};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A client without idle-pool or timeout timers, so tests on tokio's paused clock only
/// see the simulator's own timers.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().pool_idle_timeout(None).build().expect("reqwest client")
}

pub async fn start(config: SimConfig) -> Sim {
    Sim::start(config).await.expect("sim starts")
}

/// `{api_url}/bot{token}`.
pub fn base(sim: &Sim) -> String {
    format!("{}/bot{}", sim.api_url(), sim.token())
}

/// POSTs JSON to a method; returns status and body.
pub async fn call(http: &reqwest::Client, sim: &Sim, method: &str, body: Value) -> (u16, Value) {
    let resp = http.post(format!("{}/{method}", base(sim))).json(&body).send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("JSON body"))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Deterministic, non-repeating-ish test content.
pub fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8).collect()
}

/// Sends `body` with `content_type` to a method; returns status, headers and the raw body.
pub async fn call_raw(
    http: &reqwest::Client,
    sim: &Sim,
    http_method: reqwest::Method,
    method: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let resp = http
        .request(http_method, format!("{}/{method}", base(sim)))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.bytes().await.expect("body").to_vec())
}
