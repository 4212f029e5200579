//! A labelled corpus of ORM-style spans for judging N+1 detection, generated from a seed.
//!
//! Each span comes from one *pattern* — how Django, Rails or SQLAlchemy code issues its
//! queries in a common situation — and the pattern alone labels it: the statements it
//! loops over once per item are the span's N+1s. The detector is never consulted. Query
//! times are drawn from 0.1 to 5 ms (log-uniform), the time between queries from what
//! the code between them does, so most loops total well under Sentry's 50 ms.
//!
//! # What is labelled an N+1
//!
//! A span's statement is an N+1 when the code runs it once per item of a set of at
//! least five items that was known before the loop began (rows of a source query, ids
//! from the request or a cache, rows of an outer loop), so that one statement could
//! have done the work of all: `IN (...)`, a JOIN, a multi-row `INSERT`, one `UPDATE …
//! WHERE id IN (...)`. Loops over two to four items are generated as well and are
//! labelled clean: N+1 here means N ≥ 5, Sentry's definition and this crate's
//! `min_repeats`.
//!
//! **Write loops** follow the same rule. A loop that saves, creates or deletes rows one
//! statement at a time, with the rows all known when it starts (`obj.save()` in a loop,
//! `create!` per row, a flush per added object), is an N+1, because each round trip
//! costs what a read's does and `bulk_update`, `insert_all` or a multi-row `VALUES`
//! would send one. A write that records work done between the writes — a progress or
//! heartbeat update, a row marked done after each upload — is not, even when it repeats
//! with different parameters: its rows are not known up front, and batching it would
//! hold results back. Rails' `BEGIN`/`COMMIT` around each save repeat with no
//! parameters and are not labelled.
//!
//! Not N+1: `LIMIT … OFFSET` and keyset paging (the batched way to walk a table),
//! chunked loads (`IN` lists of hundreds of ids, multi-row inserts of a batch size),
//! polling (one query repeated seconds or minutes apart in a long-lived span), the same
//! query with the same parameters repeated (duplicates), short loops, prefetches and
//! joins done right.

use std::time::Duration;

use mltb_query_analyzer::{SpanKind, fingerprint, params_digest};

use super::Rng;

/// One query of a generated span.
#[derive(Debug, Clone)]
pub struct Q {
    pub sql: String,
    pub digest: u64,
    pub duration: Duration,
    /// Time since the span's previous query ended (or since it started).
    pub idle: Duration,
}

/// A generated span.
#[derive(Debug, Clone)]
pub struct GenSpan {
    pub name: String,
    pub kind: SpanKind,
    /// The pattern that generated it.
    pub pattern: &'static str,
    pub queries: Vec<Q>,
    /// Fingerprint ids of the statements it runs as N+1 loops.
    pub labels: Vec<u64>,
    /// Never ended: judged as open.
    pub open: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Orm {
    Django,
    Rails,
    SqlAlchemy,
}

/// Tables: (parent, child, foreign key in child, a looked-up table).
const MODELS: &[(&str, &str, &str, &str)] = &[
    ("posts", "comments", "post_id", "users"),
    ("orders", "order_items", "order_id", "customers"),
    ("tasks", "files", "task_id", "users"),
    ("projects", "issues", "project_id", "members"),
    ("authors", "books", "author_id", "publishers"),
    ("invoices", "invoice_lines", "invoice_id", "products"),
];

impl Orm {
    fn table(self, t: &str) -> String {
        match self {
            Orm::Django => format!("\"shop_{t}\""),
            Orm::Rails => format!("\"{t}\""),
            Orm::SqlAlchemy => t.to_owned(),
        }
    }

    fn col(self, t: &str, c: &str) -> String {
        format!(
            "{}.{}",
            self.table(t),
            if self == Orm::SqlAlchemy { c.to_owned() } else { format!("\"{c}\"") }
        )
    }

    /// The `n`th placeholder (1-based).
    fn ph(self, n: usize) -> String {
        match self {
            Orm::Django => "%s".into(),
            Orm::Rails => format!("${n}"),
            Orm::SqlAlchemy => "?".into(),
        }
    }

    fn star(self, t: &str) -> String {
        match self {
            Orm::Rails => format!("{}.*", self.table(t)),
            _ => ["id", "name", "created_at", "state"]
                .iter()
                .map(|c| self.col(t, c))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// A lookup of one row by `col` (Django's `get` adds `LIMIT 21`, Rails' `find_by`
    /// `LIMIT $2`, SQLAlchemy's lazy load nothing).
    fn by(self, t: &str, col: &str, value: Option<i64>) -> String {
        let v = value.map_or_else(|| self.ph(1), |v| v.to_string());
        let base = format!("SELECT {} FROM {} WHERE {} = {v}", self.star(t), self.table(t), self.col(t, col));
        match self {
            Orm::Django => format!("{base} LIMIT 21"),
            Orm::Rails => format!("{base} LIMIT {}", if value.is_some() { "1".into() } else { self.ph(2) }),
            Orm::SqlAlchemy => base,
        }
    }

    /// The children of one parent.
    fn children(self, child: &str, fk: &str) -> String {
        let order = self.col(child, "id");
        format!(
            "SELECT {} FROM {} WHERE {} = {} ORDER BY {order} ASC",
            self.star(child),
            self.table(child),
            self.col(child, fk),
            self.ph(1)
        )
    }

    fn in_list(self, t: &str, col: &str, n: usize, inline: Option<&[i64]>) -> String {
        let list: Vec<String> = match inline {
            Some(v) => v.iter().map(ToString::to_string).collect(),
            None => (1..=n).map(|i| self.ph(i)).collect(),
        };
        format!(
            "SELECT {} FROM {} WHERE {} IN ({})",
            self.star(t),
            self.table(t),
            self.col(t, col),
            list.join(", ")
        )
    }

    /// A source list: the rows a loop goes over.
    fn source(self, t: &str) -> String {
        format!(
            "SELECT {} FROM {} WHERE {} = {} ORDER BY {} DESC LIMIT 50",
            self.star(t),
            self.table(t),
            self.col(t, "state"),
            self.ph(1),
            self.col(t, "created_at")
        )
    }

    fn update(self, t: &str) -> String {
        let set = ["state", "updated_at"]
            .iter()
            .enumerate()
            .map(|(i, c)| format!("\"{c}\" = {}", self.ph(i + 1)))
            .collect::<Vec<_>>()
            .join(", ");
        format!("UPDATE {} SET {set} WHERE {} = {}", self.table(t), self.col(t, "id"), self.ph(3))
    }

    fn insert(self, t: &str, rows: usize) -> String {
        let mut n = 0;
        let row = |n: &mut usize| {
            let v: Vec<String> = (0..3)
                .map(|_| {
                    *n += 1;
                    self.ph(*n)
                })
                .collect();
            format!("({})", v.join(", "))
        };
        let rows: Vec<String> = (0..rows).map(|_| row(&mut n)).collect();
        let ret = if self == Orm::Rails { " RETURNING \"id\"" } else { "" };
        format!(
            "INSERT INTO {} (\"name\", \"state\", \"created_at\") VALUES {}{ret}",
            self.table(t),
            rows.join(", ")
        )
    }

    fn delete(self, t: &str) -> String {
        format!("DELETE FROM {} WHERE {} = {}", self.table(t), self.col(t, "id"), self.ph(1))
    }

    fn offset_page(self, t: &str, limit: u64, offset: u64) -> String {
        let order = self.col(t, "id");
        match self {
            Orm::Django => format!(
                "SELECT {} FROM {} ORDER BY {order} ASC LIMIT {limit} OFFSET {offset}",
                self.star(t),
                self.table(t)
            ),
            _ => format!(
                "SELECT {} FROM {} ORDER BY {order} ASC LIMIT {} OFFSET {}",
                self.star(t),
                self.table(t),
                self.ph(1),
                self.ph(2)
            ),
        }
    }

    fn keyset_page(self, t: &str) -> String {
        let id = self.col(t, "id");
        format!(
            "SELECT {} FROM {} WHERE {id} > {} ORDER BY {id} ASC LIMIT {}",
            self.star(t),
            self.table(t),
            self.ph(1),
            self.ph(2)
        )
    }
}

/// Builds one span's queries on a running clock of idle times.
struct Builder<'r> {
    rng: &'r mut Rng,
    queries: Vec<Q>,
    labels: Vec<u64>,
    /// Makes parameter values unique to the span.
    salt: u64,
}

impl Builder<'_> {
    /// A query time: 0.1 to 5 ms, log-uniform.
    fn duration(&mut self) -> Duration {
        let u = self.rng.range(0, 1_000_000) as f64 / 1e6;
        Duration::from_nanos((100_000.0 * 50f64.powf(u)) as u64)
    }

    /// Idle time in `lo..=hi` microseconds, log-uniform.
    fn idle_us(&mut self, lo: u64, hi: u64) -> Duration {
        let u = self.rng.range(0, 1_000_000) as f64 / 1e6;
        Duration::from_nanos((lo as f64 * (hi as f64 / lo as f64).powf(u) * 1000.0) as u64)
    }

    /// ORM work between two statements of a loop: 20 µs to 3 ms, now and then up to 40 ms.
    fn body(&mut self) -> Duration {
        if self.rng.chance(0.05) { self.idle_us(3_000, 40_000) } else { self.idle_us(20, 3_000) }
    }

    fn push(&mut self, sql: impl Into<String>, params: impl std::hash::Hash, idle: Duration) {
        let duration = self.duration();
        let digest = params_digest(&(self.salt, params));
        self.queries.push(Q { sql: sql.into(), digest, duration, idle });
    }

    /// The same parameters in any span (a setting, the current user).
    fn push_shared(&mut self, sql: impl Into<String>, params: impl std::hash::Hash, idle: Duration) {
        let duration = self.duration();
        self.queries.push(Q { sql: sql.into(), digest: params_digest(&params), duration, idle });
    }

    fn label(&mut self, sql: &str) {
        let id = fingerprint(sql).id;
        if !self.labels.contains(&id) {
            self.labels.push(id);
        }
    }

    /// Loop sizes: an N+1 needs at least five items.
    fn n(&mut self) -> u64 {
        match self.rng.range(0, 9) {
            0..=4 => self.rng.range(5, 12),
            5..=7 => self.rng.range(13, 30),
            _ => self.rng.range(31, 100),
        }
    }

    /// A request's opening: session and user lookups.
    fn preamble(&mut self, orm: Orm) {
        if self.rng.chance(0.6) {
            let s = orm.by("sessions", "session_key", None);
            let idle = self.idle_us(50, 500);
            self.push(s, "session", idle);
            let u = orm.by("users", "id", None);
            let idle = self.idle_us(50, 500);
            self.push(u, "user", idle);
        }
    }
}

/// A text variant: comments (sqlcommenter, marginalia), whitespace or case.
fn variant(rng: &mut Rng, sql: &str, style: u64) -> String {
    match style {
        0 => format!(
            "{sql} /*traceparent='00-{:032x}-{:016x}-01'*/",
            rng.next_u64() as u128 | ((rng.next_u64() as u128) << 64),
            rng.next_u64()
        ),
        1 => format!("/* controller:posts,action:index,line:{} */ {sql}", rng.range(1, 400)),
        2 => {
            sql.replace(" FROM ", "\n    FROM ").replace(" WHERE ", "\n   WHERE ").replace(", ", ",\n       ")
        }
        3 => sql.to_lowercase(),
        _ => format!("{sql} -- app:web, request:{}", rng.next_u64() % 100_000),
    }
}

/// The patterns, by name: each a span generator.
pub const PATTERNS: &[&str] = &[
    "lazy-fk",
    "lazy-fk-few-ids",
    "reverse-relation",
    "two-relations",
    "nested-loops",
    "inlined-literals",
    "text-variants",
    "in-list-of-one",
    "no-source",
    "write-loop",
    "worker-bursts",
    "slow-body-reads",
    "offset-paging",
    "keyset-paging",
    "chunked-loads",
    "chunked-inserts",
    "polling",
    "progress-writes",
    "duplicates-with-comments",
    "short-loop",
    "prefetch",
    "join",
    "dashboard",
    "single-write",
];

/// Generates span `i` of the corpus from `rng`.
pub fn generate(rng: &mut Rng, i: u64) -> GenSpan {
    let orm = [Orm::Django, Orm::Rails, Orm::SqlAlchemy][rng.range(0, 2) as usize];
    let (parent, child, fk, lookup) = MODELS[rng.range(0, MODELS.len() as u64 - 1) as usize];
    // Patterns weighted: about half of the spans hold an N+1.
    let weights: [u64; 24] = [8, 4, 6, 4, 4, 3, 4, 3, 3, 5, 2, 1, 3, 3, 3, 2, 3, 2, 3, 5, 5, 5, 5, 4];
    let mut pick = rng.range(0, weights.iter().sum::<u64>() - 1);
    let mut p = 0;
    while pick >= weights[p] {
        pick -= weights[p];
        p += 1;
    }
    let pattern = PATTERNS[p];
    let mut b = Builder { rng, queries: Vec::new(), labels: Vec::new(), salt: i };
    let mut kind = SpanKind::Request;
    match pattern {
        // for post in posts: post.author
        "lazy-fk" | "lazy-fk-few-ids" => {
            b.preamble(orm);
            let idle = b.idle_us(50, 500);
            b.push(orm.source(parent), "open", idle);
            let n = b.n();
            let few = if pattern == "lazy-fk-few-ids" { b.rng.range(2, 4) } else { n };
            let sql = orm.by(lookup, "id", None);
            for row in 0..n {
                let idle = b.body();
                b.push(sql.clone(), row % few, idle);
            }
            b.label(&sql);
        }
        // for post in posts: post.comments.all()
        "reverse-relation" => {
            b.preamble(orm);
            let idle = b.idle_us(50, 500);
            b.push(orm.source(parent), "open", idle);
            let sql = orm.children(child, fk);
            for row in 0..b.n() {
                let idle = b.body();
                b.push(sql.clone(), row, idle);
            }
            b.label(&sql);
        }
        // for post in posts: post.author, post.category
        "two-relations" => {
            b.preamble(orm);
            let idle = b.idle_us(50, 500);
            b.push(orm.source(parent), "open", idle);
            let (a, c) = (orm.by(lookup, "id", None), orm.by("categories", "id", None));
            for row in 0..b.n() {
                let idle = b.body();
                b.push(a.clone(), row, idle);
                let idle = b.body();
                b.push(c.clone(), row, idle);
            }
            b.label(&a);
            b.label(&c);
        }
        // for post in posts: for comment in post.comments: comment.user
        "nested-loops" => {
            b.preamble(orm);
            let idle = b.idle_us(50, 500);
            b.push(orm.source(parent), "open", idle);
            let (inner, leaf) = (orm.children(child, fk), orm.by(lookup, "id", None));
            let outer = b.rng.range(5, 12);
            let mut leaves = 0;
            for row in 0..outer {
                let idle = b.body();
                b.push(inner.clone(), row, idle);
                for k in 0..b.rng.range(0, 6) {
                    let idle = b.body();
                    b.push(leaf.clone(), (row, k), idle);
                    leaves += 1;
                }
            }
            b.label(&inner);
            if leaves >= 5 {
                b.label(&leaf);
            }
        }
        // Rails before prepared statements: ids written into the text.
        "inlined-literals" => {
            b.preamble(orm);
            let idle = b.idle_us(50, 500);
            b.push(orm.source(parent), "open", idle);
            let base = b.rng.range(1, 100_000) as i64;
            for row in 0..b.n() as i64 {
                let sql = orm.by(lookup, "id", Some(base + row * 7));
                let idle = b.body();
                b.push(sql, (), idle);
            }
            let canonical = orm.by(lookup, "id", Some(1));
            b.label(&canonical);
        }
        // sqlcommenter or marginalia comments, reformatted or lower-cased text.
        "text-variants" => {
            b.preamble(orm);
            let idle = b.idle_us(50, 500);
            b.push(orm.source(parent), "open", idle);
            let sql = orm.children(child, fk);
            let mixed = b.rng.chance(0.5);
            let style = b.rng.range(0, 4);
            for row in 0..b.n() {
                let s = if mixed { b.rng.range(0, 4) } else { style };
                let text = variant(b.rng, &sql, s);
                let idle = b.body();
                b.push(text, row, idle);
            }
            b.label(&sql);
        }
        // selectin/prefetch run per object: an IN list of one id, bound or inlined.
        "in-list-of-one" => {
            b.preamble(orm);
            let idle = b.idle_us(50, 500);
            b.push(orm.source(parent), "open", idle);
            let inline = b.rng.chance(0.4);
            let canonical = orm.in_list(child, fk, 1, None);
            for row in 0..b.n() as i64 {
                let sql =
                    if inline { orm.in_list(child, fk, 1, Some(&[row + 1000])) } else { canonical.clone() };
                let idle = b.body();
                b.push(sql, row, idle);
            }
            b.label(&canonical);
        }
        // Ids from the request body or a cache: the loop is the span's first query.
        "no-source" => {
            kind = SpanKind::Task;
            let sql = orm.by(lookup, "id", None);
            for row in 0..b.n() {
                let idle = b.body();
                b.push(sql.clone(), row, idle);
            }
            b.label(&sql);
        }
        // obj.save() / create! / session.add + flush per row; Rails wraps each in a transaction.
        "write-loop" => {
            b.preamble(orm);
            let idle = b.idle_us(50, 500);
            b.push(orm.source(parent), "open", idle);
            let op = b.rng.range(0, 2);
            let sql = match op {
                0 => orm.update(parent),
                1 => orm.insert(child, 1),
                _ => orm.delete(child),
            };
            for row in 0..b.n() {
                if orm == Orm::Rails {
                    let idle = b.body();
                    b.push_shared("BEGIN", (), idle);
                }
                let idle = b.body();
                b.push(sql.clone(), row, idle);
                if orm == Orm::Rails {
                    let idle = b.idle_us(10, 100);
                    b.push_shared("COMMIT", (), idle);
                }
            }
            b.label(&sql);
        }
        // A long-lived worker: polls every 5 s to 2 min; a poll that finds jobs loads
        // each job's rows in a tight loop.
        "worker-bursts" => {
            kind = SpanKind::Task;
            let poll = orm.source("jobs");
            let per_job = orm.children(child, "job_id");
            let mut looped = false;
            for round in 0..b.rng.range(3, 12) {
                let idle = Duration::from_millis(b.rng.range(5_000, 120_000));
                b.push(poll.clone(), round, idle);
                let jobs = if b.rng.chance(0.5) { b.rng.range(0, 4) } else { b.rng.range(5, 20) };
                looped |= jobs >= 5;
                for j in 0..jobs {
                    let idle = b.body();
                    b.push(per_job.clone(), (round, j), idle);
                }
            }
            if looped {
                b.label(&per_job);
            }
        }
        // A task that reads each file's row, then spends 0.3 to 3 s on it (an upload).
        // The ids were known: still an N+1, whatever the pause.
        "slow-body-reads" => {
            kind = SpanKind::Task;
            let idle = b.idle_us(50, 500);
            b.push(orm.source(parent), "open", idle);
            let sql = orm.by(child, "id", None);
            for row in 0..b.rng.range(5, 15) {
                let idle = Duration::from_millis(b.rng.range(300, 3_000));
                b.push(sql.clone(), row, idle);
            }
            b.label(&sql);
        }
        // An export walking a table by pages.
        "offset-paging" => {
            kind = SpanKind::Task;
            let limit = [25, 100, 500][b.rng.range(0, 2) as usize];
            for page in 0..b.rng.range(5, 40) {
                let sql = orm.offset_page(parent, limit, page * limit);
                let idle = b.idle_us(100, 20_000);
                b.push(sql, (limit, page), idle);
            }
        }
        // Rails find_each / a keyset cursor.
        "keyset-paging" => {
            kind = SpanKind::Task;
            let sql = orm.keyset_page(parent);
            for page in 0..b.rng.range(5, 40) {
                let idle = b.idle_us(100, 20_000);
                b.push(sql.clone(), page, idle);
            }
        }
        // selectinload / prefetch_related over many parents, chunked.
        "chunked-loads" => {
            b.preamble(orm);
            let idle = b.idle_us(50, 500);
            b.push(orm.source(parent), "open", idle);
            let chunk = [100, 500, 999][b.rng.range(0, 2) as usize];
            let chunks = b.rng.range(5, 12);
            for c in 0..chunks {
                let n = if c + 1 == chunks { b.rng.range(1, chunk) as usize } else { chunk as usize };
                let sql = orm.in_list(child, fk, n, None);
                let idle = b.idle_us(100, 5_000);
                b.push(sql, c, idle);
            }
        }
        // bulk_create(batch_size=…) / insert_all in slices.
        "chunked-inserts" => {
            kind = SpanKind::Task;
            let size = [50, 100, 200][b.rng.range(0, 2) as usize];
            let chunks = b.rng.range(5, 12);
            for c in 0..chunks {
                let n = if c + 1 == chunks { b.rng.range(1, size) as usize } else { size as usize };
                let sql = orm.insert(child, n);
                let idle = b.idle_us(100, 5_000);
                b.push(sql, c, idle);
            }
        }
        // A status updater or scheduler: one query every 0.5 s to 2 min, parameters moving.
        "polling" => {
            kind = SpanKind::Task;
            let poll = format!(
                "SELECT {} FROM {} WHERE {} <= {} ORDER BY {} LIMIT 1 FOR UPDATE SKIP LOCKED",
                orm.star("jobs"),
                orm.table("jobs"),
                orm.col("jobs", "run_at"),
                orm.ph(1),
                orm.col("jobs", "run_at")
            );
            for round in 0..b.rng.range(5, 60) {
                let idle = b.idle_us(500_000, 120_000_000);
                b.push(poll.clone(), round, idle);
            }
        }
        // Progress and heartbeat writes, each after a stretch of work.
        "progress-writes" => {
            kind = SpanKind::Task;
            let sql = orm.update("tasks");
            for tick in 0..b.rng.range(5, 60) {
                let idle = Duration::from_millis(b.rng.range(500, 10_000));
                b.push(sql.clone(), tick, idle);
            }
        }
        // The same setting or user read again and again, each text with its own comment.
        "duplicates-with-comments" => {
            b.preamble(orm);
            let sql = orm.by("settings", "key", None);
            let style = if b.rng.chance(0.5) { 0 } else { 4 };
            for _ in 0..b.rng.range(5, 25) {
                let text = variant(b.rng, &sql, style);
                let idle = b.body();
                b.push(text, "flood_wait", idle);
            }
        }
        // A loop over two to four items.
        "short-loop" => {
            b.preamble(orm);
            let idle = b.idle_us(50, 500);
            b.push(orm.source(parent), "open", idle);
            let sql = orm.by(lookup, "id", None);
            for row in 0..b.rng.range(2, 4) {
                let idle = b.body();
                b.push(sql.clone(), row, idle);
            }
        }
        // prefetch_related / includes: one IN query for all rows.
        "prefetch" => {
            b.preamble(orm);
            let idle = b.idle_us(50, 500);
            b.push(orm.source(parent), "open", idle);
            let n = b.rng.range(2, 50) as usize;
            let idle = b.idle_us(50, 500);
            b.push(orm.in_list(child, fk, n, None), n, idle);
            let idle = b.idle_us(50, 500);
            let m = b.rng.range(1, 20) as usize;
            b.push(orm.in_list(lookup, "id", m, None), n, idle);
        }
        // select_related / joins.
        "join" => {
            b.preamble(orm);
            let sql = format!(
                "SELECT {}, {} FROM {} INNER JOIN {} ON {} = {} WHERE {} = {}",
                orm.star(parent),
                orm.col(lookup, "name"),
                orm.table(parent),
                orm.table(lookup),
                orm.col(lookup, "id"),
                orm.col(parent, "owner_id"),
                orm.col(parent, "state"),
                orm.ph(1)
            );
            let idle = b.idle_us(50, 500);
            b.push(sql, "open", idle);
        }
        // Many different queries, each once or twice.
        "dashboard" => {
            b.preamble(orm);
            for k in 0..b.rng.range(5, 15) {
                let sql = format!(
                    "SELECT count(*) AS c{k} FROM {} WHERE {} >= {}",
                    orm.table(MODELS[(k % 6) as usize].0),
                    orm.col(MODELS[(k % 6) as usize].0, "created_at"),
                    orm.ph(1)
                );
                for rep in 0..b.rng.range(1, 2) {
                    let idle = b.idle_us(50, 2_000);
                    b.push(sql.clone(), (k, rep), idle);
                }
            }
        }
        // One create in a transaction.
        _ => {
            b.preamble(orm);
            let idle = b.idle_us(50, 500);
            b.push_shared("BEGIN", (), idle);
            let idle = b.idle_us(50, 500);
            b.push(orm.insert(child, 1), 1, idle);
            let idle = b.idle_us(10, 100);
            b.push_shared("COMMIT", (), idle);
        }
    }
    // Noise: a health check now and then, anywhere after the first query.
    if b.rng.chance(0.2) && !b.queries.is_empty() {
        let at = b.rng.range(1, b.queries.len() as u64) as usize;
        let duration = b.duration();
        b.queries.insert(
            at,
            Q {
                sql: "SELECT 1".into(),
                digest: params_digest(&()),
                duration,
                idle: Duration::from_micros(30),
            },
        );
    }
    let open = b.rng.chance(0.06);
    let Builder { queries, labels, .. } = b;
    GenSpan { name: format!("{pattern}#{i}"), kind, pattern, queries, labels, open }
}
