//! Benchmarks of `mltb-telegram`, each group with its anchor so ratios come from one run:
//!
//! - `scheduler`: one request submit → sent → result through an in-process transport
//!   (limits set out of reach, so this is the scheduler's own overhead), beside calling
//!   the transport directly; and 1000 concurrent requests over 100 chats.
//! - `command_parse`: a typical `/mirror` command with flags, beside splitting the same
//!   text on whitespace (the least any parser must do).
//!
//! Run: `cargo bench -p mltb-telegram --bench telegram -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mltb_ratelimit::Quota;
use mltb_telegram::command::CommandParser;
use mltb_telegram::scheduler::{Limits, Request, Response, Scheduler, Transport};

struct Instant;

impl Transport for Instant {
    async fn execute(&self, _: &Request) -> mltb_telegram::Result<Response> {
        Ok(Response::Done)
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime")
}

fn unlimited() -> Limits {
    let q: Quota = "1000000000/s burst 1000000000".parse().expect("valid quota");
    Limits { global: q, per_chat: q, per_group: q, answer_gap: Duration::ZERO }
}

fn scheduler(c: &mut Criterion) {
    let rt = runtime();
    let s = rt.block_on(async { Scheduler::builder().limits(unlimited()).build(Instant) });
    let mut g = c.benchmark_group("scheduler");
    g.throughput(Throughput::Elements(1));
    g.bench_function("direct_transport", |b| {
        b.to_async(&rt)
            .iter(|| async { Instant.execute(black_box(&Request::send_message(1, "x"))).await.unwrap() })
    });
    g.bench_function("submit_to_result", |b| {
        b.to_async(&rt).iter(|| async { s.send(black_box(Request::send_message(1, "x"))).await.unwrap() })
    });
    g.throughput(Throughput::Elements(1000));
    g.bench_function("1000_concurrent_100_chats", |b| {
        b.to_async(&rt).iter(|| async {
            let mut tickets = Vec::with_capacity(1000);
            for i in 0..1000i64 {
                tickets.push(s.submit(Request::send_message(i % 100, "x")).await.unwrap());
            }
            for t in tickets {
                t.await.unwrap();
            }
        })
    });
    g.finish();
    rt.block_on(s.shutdown());
}

fn command_parse(c: &mut Criterion) {
    let parser = CommandParser::builder().bot_username("mltb_bot").build();
    let text = r#"/m@mltb_bot https://example.com/file.iso -n "my file.iso" -sp 500mb -up remote:dir/sub -z secret -doc"#;
    assert!(parser.parse(text, None).unwrap().is_some());
    let mut g = c.benchmark_group("command_parse");
    g.throughput(Throughput::Elements(1));
    g.bench_function("split_whitespace_anchor", |b| b.iter(|| black_box(text).split_whitespace().count()));
    g.bench_function("mltb_parser", |b| b.iter(|| parser.parse(black_box(text), None).unwrap()));
    g.finish();
}

criterion_group!(benches, scheduler, command_parse);
criterion_main!(benches);
