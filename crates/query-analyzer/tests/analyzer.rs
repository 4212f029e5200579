//! The analyzer's behaviour through its public API: N+1 and duplicate findings, strict
//! mode, bounds, reports and cache advice.

mod support;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use mltb_query_analyzer::{
    Analyzer, AnalyzerConfig, NoopSink, QuerySink, SpanId, SpanKind, StatementKind, fingerprint,
};
use support::{FakeTime, ev};

const SOURCE: &str = "SELECT * FROM posts WHERE author_id = ?";
const LOOKUP: &str = "SELECT * FROM users WHERE id = ?";

/// A span with a source query then `n` lookups; `distinct` picks different ids per lookup.
fn loop_span(a: &Analyzer, span: u64, name: &str, n: u64, distinct: bool, ms: u64) {
    a.span_start(SpanId(span), SpanKind::Request, name);
    a.record(&ev(SOURCE, &1_i64, ms, Some(span)));
    for i in 0..n {
        let id = if distinct { i } else { 42 };
        a.record(&ev(LOOKUP, &id, ms, Some(span)));
    }
    a.span_end(SpanId(span));
}

#[test]
fn a_loop_of_lookups_after_a_source_is_an_n_plus_one() {
    let a = Analyzer::default();
    loop_span(&a, 1, "GET /posts", 8, true, 10);
    let r = a.report();
    assert_eq!(r.n_plus_one.len(), 1);
    let f = &r.n_plus_one[0];
    assert_eq!(f.fingerprint.id, fingerprint(LOOKUP).id);
    assert_eq!(f.source.as_ref().map(|s| s.id), Some(fingerprint(SOURCE).id));
    assert_eq!((f.count, f.duration), (8, Duration::from_millis(80)));
    assert_eq!((f.span.id, f.span.kind, f.span.name.as_str()), (SpanId(1), SpanKind::Request, "GET /posts"));
    assert!(f.suggestion.contains("SELECT * FROM users WHERE id IN (...)"), "{}", f.suggestion);
    assert!(r.duplicates.is_empty());
    assert_eq!(r.counters.n_plus_one, 1);
    assert_eq!(r.counters.events, 9);
    assert_eq!((r.counters.spans_started, r.counters.spans_ended, r.counters.open_spans), (1, 1, 0));
}

#[test]
fn thresholds_and_source_are_required() {
    let a = Analyzer::default();
    loop_span(&a, 1, "few", 4, true, 20); // 4 < min_repeats
    loop_span(&a, 2, "fast", 10, true, 4); // 40 ms < 50 ms
    // No source: the repeated query is the span's first.
    a.span_start(SpanId(3), SpanKind::Task, "no source");
    for i in 0..10_i64 {
        a.record(&ev(LOOKUP, &i, 10, Some(3)));
    }
    a.span_end(SpanId(3));
    assert!(a.report().n_plus_one.is_empty());
    assert!(a.check().is_ok());

    let mut config = AnalyzerConfig::default();
    config.n_plus_one.min_repeats = 4;
    config.n_plus_one.min_total_duration = Duration::ZERO;
    config.n_plus_one.require_source = false;
    let b = Analyzer::new(config);
    loop_span(&b, 1, "few", 4, true, 1);
    b.span_start(SpanId(3), SpanKind::Task, "no source");
    for i in 0..4_i64 {
        b.record(&ev(LOOKUP, &i, 0, Some(3)));
    }
    b.span_end(SpanId(3));
    assert_eq!(b.report().counters.n_plus_one, 2);
}

#[test]
fn same_parameters_repeated_are_duplicates_not_n_plus_one() {
    let a = Analyzer::default();
    loop_span(&a, 1, "dup", 7, false, 10);
    let r = a.report();
    assert!(r.n_plus_one.is_empty());
    assert_eq!(r.duplicates.len(), 1);
    assert_eq!((r.duplicates[0].count, r.duplicates[0].distinct_params), (7, 1));
    assert!(r.to_string().contains("duplicate queries in request `dup`"));
}

#[test]
fn inlined_literals_count_as_different_parameters() {
    let a = Analyzer::default();
    a.span_start(SpanId(1), SpanKind::Command, "inline");
    a.record(&ev(SOURCE, &(), 10, Some(1)));
    let texts: Vec<String> = (0..6).map(|i| format!("SELECT * FROM users WHERE id = {i}")).collect();
    for t in &texts {
        a.record(&ev(t, &(), 10, Some(1)));
    }
    a.span_end(SpanId(1));
    let r = a.report();
    assert_eq!(r.n_plus_one.len(), 1);
    assert_eq!(r.n_plus_one[0].count, 6);
}

#[test]
fn interleaved_spans_are_judged_apart() {
    let a = Analyzer::default();
    for s in 1..=3 {
        a.span_start(SpanId(s), SpanKind::Request, &format!("r{s}"));
        a.record(&ev(SOURCE, &s, 10, Some(s)));
    }
    // Spans 1 and 2 make 3 lookups each, span 3 makes 6: only span 3 is an N+1, even
    // though 12 lookups ran while all three were open.
    for i in 0..6_u64 {
        for s in 1..=3 {
            if s == 3 || i < 3 {
                a.record(&ev(LOOKUP, &(s, i), 10, Some(s)));
            }
        }
    }
    for s in 1..=3 {
        a.span_end(SpanId(s));
    }
    let r = a.report();
    assert_eq!(r.n_plus_one.len(), 1);
    assert_eq!(r.n_plus_one[0].span.name, "r3");
}

#[test]
fn alternating_lookups_in_one_loop_are_two_findings() {
    let a = Analyzer::default();
    a.span_start(SpanId(1), SpanKind::Request, "feed");
    a.record(&ev(SOURCE, &1, 10, Some(1)));
    for i in 0..6_i64 {
        a.record(&ev(LOOKUP, &i, 10, Some(1)));
        a.record(&ev("SELECT tag FROM tags WHERE post_id = ?", &i, 10, Some(1)));
    }
    a.span_end(SpanId(1));
    let r = a.report();
    let mut found: Vec<_> = r.n_plus_one.iter().map(|f| f.fingerprint.normalized.to_string()).collect();
    found.sort();
    assert_eq!(found, ["SELECT * FROM users WHERE id = ?", "SELECT tag FROM tags WHERE post_id = ?"]);
}

#[test]
fn batched_queries_are_not_findings() {
    let a = Analyzer::default();
    a.span_start(SpanId(1), SpanKind::Request, "batched");
    a.record(&ev(SOURCE, &1, 10, Some(1)));
    a.record(&ev(
        "SELECT * FROM users WHERE id IN (?, ?, ?, ?, ?, ?, ?, ?)",
        &(0..8).collect::<Vec<i32>>(),
        30,
        Some(1),
    ));
    a.span_end(SpanId(1));
    assert!(a.report().n_plus_one.is_empty());
}

#[test]
fn safelist_matches_substring_normalized_text_or_hex_id() {
    for entry in ["FROM users", "SELECT * FROM users WHERE id = ?", &fingerprint(LOOKUP).hex_id()] {
        let mut config = AnalyzerConfig::default();
        config.n_plus_one.safelist = vec![entry.to_owned()];
        let a = Analyzer::new(config);
        loop_span(&a, 1, "safe", 10, true, 10);
        assert!(a.report().n_plus_one.is_empty(), "{entry}");
    }
}

#[test]
fn strict_mode_panics_at_span_end_naming_the_finding() {
    let config = AnalyzerConfig::new().strict(true);
    let a = Analyzer::new(config);
    let panic = catch_unwind(AssertUnwindSafe(|| loop_span(&a, 5, "strict", 6, true, 10))).unwrap_err();
    let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("SELECT * FROM users WHERE id = ?"), "{msg}");
    assert!(msg.contains("span 5"), "{msg}");
    // The analyzer is still usable, and check() lists every finding.
    let err = a.check().unwrap_err();
    assert!(err.is_findings());
    assert!(err.to_string().starts_with("1 N+1 finding(s):"), "{err}");
    // A clean span does not panic.
    loop_span(&a, 6, "clean", 2, true, 10);
    a.clear_findings();
    assert!(a.check().is_ok());
}

#[test]
fn findings_of_one_loop_group_across_spans() {
    let a = Analyzer::default();
    for s in 0..4 {
        loop_span(&a, s, "GET /posts", 6, true, 10);
    }
    let r = a.report();
    assert_eq!(r.n_plus_one.len(), 1);
    let f = &r.n_plus_one[0];
    assert_eq!((f.occurrences, f.total_count, f.span.id), (4, 24, SpanId(3)));
    assert_eq!(r.counters.n_plus_one, 4);
}

#[test]
fn open_span_cap_evicts_and_judges_the_oldest() {
    let config = AnalyzerConfig::new().max_open_spans(2);
    let a = Analyzer::new(config);
    a.span_start(SpanId(1), SpanKind::Task, "leaked");
    a.record(&ev(SOURCE, &1, 10, Some(1)));
    for i in 0..6_i64 {
        a.record(&ev(LOOKUP, &i, 10, Some(1)));
    }
    // Never ended; two more spans push it out (the cap is spread over shards, so at
    // most two are open at once).
    for s in 2..=4 {
        a.span_start(SpanId(s), SpanKind::Task, "next");
    }
    let c = a.counters();
    assert!(c.spans_evicted >= 1, "{c:?}");
    assert!(c.open_spans <= 2, "{c:?}");
    assert_eq!(c.n_plus_one, 1, "the evicted span was judged");
    // Events for the evicted span are now outside any span.
    a.record(&ev(LOOKUP, &99, 1, Some(1)));
    assert_eq!(a.counters().events_outside_spans, 1);
}

#[test]
fn per_span_and_fingerprint_caps_are_counted() {
    let config = AnalyzerConfig::new().max_fingerprints_per_span(2).max_fingerprints(3);
    let a = Analyzer::new(config);
    a.span_start(SpanId(1), SpanKind::Other, "wide");
    let texts: Vec<String> = (0..5).map(|i| format!("SELECT c{i} FROM t")).collect();
    for t in &texts {
        a.record(&ev(t, &(), 1, Some(1)));
    }
    a.span_end(SpanId(1));
    let c = a.counters();
    assert_eq!(c.span_overflow, 3);
    assert_eq!(c.fingerprints, 3);
    assert_eq!(c.untracked, 2);
    assert_eq!(c.events, 5);
}

#[test]
fn report_serializes_to_json_and_text() {
    let a = Analyzer::default();
    loop_span(&a, 1, "GET /posts", 6, true, 10);
    a.record(&ev("UPDATE users SET name = ? WHERE id = ?", &(1, "x"), 3, None));
    let r = a.report();
    let json: serde_json::Value = serde_json::to_value(&r).unwrap();
    let f = &json["n_plus_one"][0];
    assert_eq!(f["count"], 6);
    assert_eq!(f["duration_us"], 60_000);
    assert_eq!(f["span"]["kind"], "request");
    assert_eq!(f["fingerprint"]["kind"], "select");
    assert_eq!(f["fingerprint"]["tables_read"][0], "users");
    assert_eq!(json["counters"]["events"], 8);
    assert_eq!(json["counters"]["events_outside_spans"], 1);
    let text = r.to_string();
    assert!(text.starts_with("query analyzer: 8 events, 3 fingerprints"), "{text}");
    assert!(text.contains("N+1 in request `GET /posts` (span 1)"), "{text}");
    assert_eq!(r.top_queries[0].fingerprint.normalized.as_ref(), LOOKUP);
    assert_eq!(
        r.top_queries.iter().find(|q| q.fingerprint.kind == StatementKind::Update).map(|q| q.count),
        Some(1)
    );
}

#[test]
fn analyzer_is_a_shareable_sink() {
    fn assert_sink<S: QuerySink + Send + Sync + 'static>(_: &S) {}
    let a = Arc::new(Analyzer::default());
    assert_sink(&a);
    assert_sink(&NoopSink);
    let threads: Vec<_> = (0..4_u64)
        .map(|t| {
            let a = Arc::clone(&a);
            std::thread::spawn(move || {
                for s in 0..50_u64 {
                    loop_span(&a, t * 1000 + s, "GET /posts", 6, true, 10);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let c = a.counters();
    assert_eq!((c.events, c.spans_ended, c.n_plus_one, c.open_spans), (4 * 50 * 7, 200, 200, 0));
}

#[test]
fn try_new_rejects_bad_settings() {
    let mut config = AnalyzerConfig::default();
    config.advice.min_hit_ratio = 1.5;
    let err = Analyzer::try_new(config.clone()).unwrap_err();
    assert!(err.is_config());
    assert!(err.to_string().contains("advice.min_hit_ratio"), "{err}");
    // new() clamps instead.
    assert_eq!(Analyzer::new(config).config().advice.min_hit_ratio, 1.0);
}

#[test]
fn spans_still_open_are_judged_in_reports_and_checks() {
    let a = Analyzer::default();
    a.span_start(SpanId(9), SpanKind::Task, "status updater");
    a.record(&ev(SOURCE, &1_i64, 10, Some(9)));
    for i in 0..8_i64 {
        a.record(&ev(LOOKUP, &i, 10, Some(9)));
    }
    // The span has not ended: its loop is reported, marked open, and fails `check`.
    let r = a.report();
    assert_eq!(r.n_plus_one.len(), 1);
    assert!(r.n_plus_one[0].span.open);
    assert!(r.n_plus_one[0].to_string().contains("still open"), "{}", r.n_plus_one[0]);
    assert_eq!(r.counters.n_plus_one, 0, "not kept: counted when the span ends");
    let err = a.check().expect_err("an N+1 in an open span");
    assert!(err.to_string().contains("status updater"), "{err}");
    // More of the loop, then the end: one finding, judged for good, counted once.
    for i in 8..10_i64 {
        a.record(&ev(LOOKUP, &i, 10, Some(9)));
    }
    a.span_end(SpanId(9));
    let r = a.report();
    assert_eq!(r.n_plus_one.len(), 1);
    let f = &r.n_plus_one[0];
    assert!(!f.span.open);
    assert_eq!((f.count, f.occurrences, r.counters.n_plus_one), (10, 1, 1));
    assert!(a.check().is_err());
}

/// Records `sql` with `params` taking `ms` milliseconds, the clock moving by the query's
/// duration plus `idle` before it.
fn timed(
    a: &Analyzer,
    t: &FakeTime,
    sql: &str,
    params: impl std::hash::Hash,
    ms: u64,
    idle: Duration,
    span: u64,
) {
    t.advance(idle + Duration::from_millis(ms));
    a.record(&ev(sql, &params, ms, Some(span)));
}

#[test]
fn strict_mode_judges_fast_loops_by_count_alone() {
    // Six 1 ms lookups, no source query: 6 ms in all, far below Sentry's 50 ms.
    let run = |strict: bool| {
        let t = FakeTime::default();
        let a = t.analyzer(AnalyzerConfig::new().strict(strict));
        a.span_start(SpanId(1), SpanKind::Request, "fast");
        for id in 0..6_i64 {
            timed(&a, &t, LOOKUP, id, 1, Duration::from_micros(200), 1);
        }
        let found = a.report().n_plus_one.len();
        if strict {
            assert!(catch_unwind(AssertUnwindSafe(|| a.span_end(SpanId(1)))).is_err(), "strict mode panics");
        } else {
            a.span_end(SpanId(1));
        }
        found
    };
    assert_eq!(run(true), 1, "strict: count and distinct parameters are enough");
    assert_eq!(run(false), 0, "default: 6 ms is noise");
}

#[test]
fn default_mode_flags_fast_loops_past_min_repeats_alone() {
    let t = FakeTime::default();
    let a = t.analyzer(AnalyzerConfig::new());
    assert_eq!(a.config().n_plus_one.min_repeats_alone, 20);
    for (span, n) in [(1, 19_i64), (2, 20)] {
        a.span_start(SpanId(span), SpanKind::Request, &format!("n{n}"));
        for id in 0..n {
            timed(&a, &t, LOOKUP, id, 0, Duration::from_micros(300), span);
        }
        a.span_end(SpanId(span));
    }
    let r = a.report();
    assert_eq!(r.n_plus_one.len(), 1, "{r}");
    assert_eq!((r.n_plus_one[0].span.name.as_str(), r.n_plus_one[0].count), ("n20", 20));
    assert!(r.n_plus_one[0].source.is_none(), "no source needed past the count");
}

#[test]
fn paging_and_chunked_batches_are_not_n_plus_one_but_single_id_lists_are() {
    let t = FakeTime::default();
    let a = t.analyzer(AnalyzerConfig::new().strict(true));
    let idle = Duration::from_micros(500);
    let span = |a: &Analyzer, id: u64, name: &str, texts: &[String]| {
        a.span_start(SpanId(id), SpanKind::Task, name);
        a.record(&ev(SOURCE, &1, 1, Some(id)));
        for (i, sql) in texts.iter().enumerate() {
            timed(a, &t, sql, (id, i), 2, idle, id);
        }
    };
    let offset: Vec<String> =
        (0..8).map(|_| "SELECT * FROM files ORDER BY id LIMIT 100 OFFSET $1".into()).collect();
    let keyset: Vec<String> = (0..8)
        .map(|_| "SELECT \"users\".* FROM \"users\" WHERE \"users\".\"id\" > $1 ORDER BY \"users\".\"id\" ASC LIMIT $2".into())
        .collect();
    let list = |n: usize| format!("SELECT * FROM users WHERE id IN ({})", vec!["?"; n].join(", "));
    // selectinload's chunks of 500 ids, the last one short.
    let chunks: Vec<String> = [500, 500, 500, 500, 500, 137].iter().map(|&n| list(n)).collect();
    let singles: Vec<String> = (0..6).map(|_| list(1)).collect();
    let inlined: Vec<String> = (0..6).map(|i| format!("SELECT * FROM users WHERE id IN ({i})")).collect();
    span(&a, 1, "offset", &offset);
    span(&a, 2, "keyset", &keyset);
    span(&a, 3, "chunks", &chunks);
    span(&a, 4, "singles", &singles);
    span(&a, 5, "inlined singles", &inlined);
    let mut found: Vec<String> = a.report().n_plus_one.iter().map(|f| f.span.name.clone()).collect();
    found.sort();
    assert_eq!(found, ["inlined singles", "singles"]);
}

#[test]
fn events_that_reach_the_sink_late_are_judged_by_the_time_they_carry() {
    // A sink fed through a channel: a worker's polls, a minute apart, arrive in one batch,
    // recorded back to back while the analyzer's clock stands still.
    let still = || Analyzer::with_clock(AnalyzerConfig::new().strict(true), || Duration::from_secs(5));
    let poll = "SELECT * FROM jobs WHERE state = 'queued' AND run_at <= $1 ORDER BY run_at";
    let replay = |a: &Analyzer, ended_at: &dyn Fn(u64) -> Option<Duration>| {
        a.span_start(SpanId(1), SpanKind::Task, "worker");
        for minute in 0..30_u64 {
            let mut e = ev(poll, &minute, 2, Some(1));
            e.ended_at = ended_at(minute);
            a.record(&e);
        }
        a.report()
    };
    let r = replay(&still(), &|minute| Some(Duration::from_secs(60 * minute)));
    assert!(r.n_plus_one.is_empty(), "polls a minute apart by their own times: {r}");
    // Without their times the batch is judged by the analyzer's clock at `record`:
    // thirty queries at one instant, a loop.
    let r = replay(&still(), &|_| None);
    assert_eq!(r.n_plus_one.len(), 1, "{r}");
    // Times a millisecond apart: a loop too, whatever the origin.
    let r = replay(&still(), &|i| Some(Duration::from_secs(1_700_000_000) + Duration::from_millis(3 * i)));
    assert_eq!(r.n_plus_one.len(), 1, "{r}");
}

#[test]
fn polling_minutes_apart_is_not_a_loop_but_a_burst_inside_it_is() {
    let t = FakeTime::default();
    let a = t.analyzer(AnalyzerConfig::new().strict(true));
    a.span_start(SpanId(1), SpanKind::Task, "worker");
    let poll = "SELECT * FROM jobs WHERE state = 'queued' AND run_at <= $1 ORDER BY run_at";
    let beat = "UPDATE workers SET seen_at = $1 WHERE id = 7";
    for minute in 0..30_u64 {
        timed(&a, &t, poll, minute, 2, Duration::from_secs(60), 1);
        timed(&a, &t, beat, minute, 1, Duration::from_millis(1), 1);
    }
    let r = a.report();
    assert!(r.n_plus_one.is_empty(), "{r}");
    assert!(r.duplicates.is_empty(), "{r}");
    // Then one poll finds eight jobs and loads each one's files in a tight loop.
    timed(&a, &t, poll, 99, 2, Duration::from_secs(60), 1);
    for job in 0..8_u64 {
        timed(&a, &t, "SELECT * FROM files WHERE job_id = $1", job, 1, Duration::from_micros(400), 1);
    }
    let r = a.report();
    assert_eq!(r.n_plus_one.len(), 1, "{r}");
    assert_eq!(r.n_plus_one[0].fingerprint.normalized.as_ref(), "SELECT * FROM files WHERE job_id = ?");
    assert_eq!(r.n_plus_one[0].source.as_ref().map(|s| s.id), Some(fingerprint(poll).id));

    // Without the gap (the same queries back to back) the heartbeat would be a loop.
    let t = FakeTime::default();
    let b = t.analyzer(
        AnalyzerConfig::new()
            .strict(true)
            .n_plus_one(mltb_query_analyzer::NPlusOneConfig::new().max_gap(Duration::from_secs(3600))),
    );
    b.span_start(SpanId(1), SpanKind::Task, "worker");
    for minute in 0..30_u64 {
        timed(&b, &t, beat, minute, 1, Duration::from_secs(60), 1);
    }
    assert_eq!(b.report().n_plus_one.len(), 1);
}

#[test]
fn huge_repeat_thresholds_are_accepted_and_never_reached() {
    let config = AnalyzerConfig::new().strict(true).n_plus_one(
        mltb_query_analyzer::NPlusOneConfig::new().min_repeats(usize::MAX).min_repeats_alone(usize::MAX),
    );
    let a = Analyzer::try_new(config).unwrap();
    loop_span(&a, 1, "GET /posts", 50, true, 10);
    loop_span(&a, 2, "GET /same", 50, false, 10);
    let r = a.report();
    assert!(r.n_plus_one.is_empty() && r.duplicates.is_empty(), "{r}");
    assert_eq!(r.counters.events, 102);
}

#[test]
fn comments_do_not_make_duplicates_look_distinct() {
    let t = FakeTime::default();
    let a = t.analyzer(AnalyzerConfig::new().strict(true));
    a.span_start(SpanId(1), SpanKind::Request, "traced");
    a.record(&ev(SOURCE, &1, 1, Some(1)));
    // sqlcommenter: a new span id in every statement's comment, the same user each time,
    // inlined as a literal; spacing and case vary too.
    let texts: Vec<String> = (0..8)
        .map(|i| {
            let sql = if i % 2 == 0 {
                "SELECT * FROM users WHERE id = 42"
            } else {
                "select *  from USERS where ID = 42"
            };
            format!("{sql} /*traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-{i:016x}-01'*/")
        })
        .collect();
    for sql in &texts {
        timed(&a, &t, sql, (), 1, Duration::from_micros(100), 1);
    }
    a.span_end(SpanId(1));
    let r = a.report();
    assert!(r.n_plus_one.is_empty(), "{r}");
    assert_eq!(r.duplicates.len(), 1, "{r}");
    assert_eq!((r.duplicates[0].count, r.duplicates[0].distinct_params), (8, 1));
}

#[test]
fn lazy_loads_over_few_ids_are_n_plus_one_and_duplicates() {
    let t = FakeTime::default();
    let a = t.analyzer(AnalyzerConfig::new());
    a.span_start(SpanId(1), SpanKind::Request, "GET /posts");
    a.record(&ev(SOURCE, &1, 2, Some(1)));
    // 40 posts by 3 authors: each post loads its author.
    for post in 0..40_i64 {
        timed(&a, &t, LOOKUP, post % 3, 2, Duration::from_micros(150), 1);
    }
    a.span_end(SpanId(1));
    let r = a.report();
    assert_eq!(r.n_plus_one.len(), 1, "{r}");
    assert_eq!(r.n_plus_one[0].count, 40);
    assert_eq!(r.duplicates.len(), 1, "{r}");
    assert_eq!(r.duplicates[0].distinct_params, 3);
}
