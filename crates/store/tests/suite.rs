//! The store's test suite, run against SQLite and (feature `postgres`) PostgreSQL.
//! Every test ends by asserting that the strict query analyzer found no N+1.

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use mltb_query_analyzer::{Analyzer, AnalyzerConfig, NoopSink, QueryEvent, QuerySink, SpanId, SpanKind};
use mltb_store::{
    Backend, Error, Executor, LATEST_VERSION, NewAuditEntry, Part, Progress, Role, SentFile, Source,
    Statement, TaskFilter, TaskKind, TaskState, UserSettings, limits,
};
use support::{Harness, new_task};

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let h = crate::support::sqlite().await;
                    super::$name(&h).await;
                    h.assert_no_n_plus_one();
                }
            )*
        }

        #[cfg(feature = "postgres")]
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let h = crate::support::postgres().await;
                    super::$name(&h).await;
                    h.assert_no_n_plus_one();
                }
            )*
        }
    };
}

suite!(
    migrations_are_recorded_and_idempotent,
    roles_are_audited_in_the_same_transaction,
    cached_reads_skip_the_database_until_a_write,
    chats_authorize_and_unauthorize,
    settings_round_trip_and_are_checked,
    task_lifecycle_moves_only_forward,
    progress_writes_are_batched_with_a_result_per_caller,
    recovery_lists_every_unfinished_task_with_its_files,
    listing_tasks_with_files_is_two_queries_not_n_plus_one,
    hostile_strings_are_bound_never_spliced,
    fields_over_their_limit_are_refused_by_name,
    audit_log_refuses_update_and_delete,
    status_messages_upsert_and_remove,
    spans_group_a_commands_queries,
    sent_files_are_remembered_by_content_hash,
    task_names_are_set_once_known,
    each_end_is_announced_once,
);

fn noop_exec() -> Executor {
    Executor::new(Arc::new(NoopSink))
}

async fn migrations_are_recorded_and_idempotent<B: Backend>(h: &Harness<B>) {
    let backend = h.store.backend();
    // A second start finds the schema current and applies nothing.
    assert_eq!(backend.migrate(&noop_exec()).await.unwrap(), LATEST_VERSION);
    let out = backend
        .run(
            &noop_exec(),
            None,
            vec![Statement::query("SELECT version, name FROM schema_migrations", vec![])],
            false,
        )
        .await
        .unwrap();
    let rows = &out[0].rows;
    assert_eq!(rows.len() as i64, LATEST_VERSION);
    assert_eq!(rows[0].int(0).unwrap(), 1);
    assert_eq!(rows[0].text(1).unwrap(), "initial schema");
}

async fn roles_are_audited_in_the_same_transaction<B: Backend>(h: &Harness<B>) {
    let s = &h.store;
    assert_eq!(s.role(10).await.unwrap(), None);
    s.set_role(1, 10, Role::Sudo).await.unwrap();
    s.set_role(1, 11, Role::Authorized).await.unwrap();
    s.set_role(10, 11, Role::Banned).await.unwrap();
    assert_eq!(s.role(10).await.unwrap(), Some(Role::Sudo));
    assert_eq!(s.role(11).await.unwrap(), Some(Role::Banned));
    let users = s.users().await.unwrap();
    assert_eq!(
        users.iter().map(|u| (u.id, u.role)).collect::<Vec<_>>(),
        vec![(10, Role::Sudo), (11, Role::Banned)]
    );

    assert!(s.remove_user(1, 10).await.unwrap());
    assert!(!s.remove_user(1, 10).await.unwrap());
    assert_eq!(s.role(10).await.unwrap(), None);

    let log = s.audit_log(10).await.unwrap();
    let summary: Vec<_> =
        log.iter().map(|e| (e.actor, e.action.as_str(), e.target, e.detail.as_deref())).collect();
    assert_eq!(
        summary,
        vec![
            (1, "remove_user", Some(10), None),
            (1, "remove_user", Some(10), None),
            (10, "set_role", Some(11), Some("banned")),
            (1, "set_role", Some(11), Some("authorized")),
            (1, "set_role", Some(10), Some("sudo")),
        ]
    );
    assert!(log.windows(2).all(|w| w[0].id > w[1].id && w[0].at >= w[1].at));
}

async fn cached_reads_skip_the_database_until_a_write<B: Backend>(h: &Harness<B>) {
    let s = &h.store;
    let roles = || h.sink.count_matching("FROM users WHERE id");
    assert_eq!(s.role(5).await.unwrap(), None);
    assert_eq!(roles(), 1);
    assert_eq!(s.role(5).await.unwrap(), None, "a guest is cached too");
    assert_eq!(roles(), 1, "the second read must not reach the database");
    s.set_role(1, 5, Role::Authorized).await.unwrap();
    assert_eq!(s.role(5).await.unwrap(), Some(Role::Authorized), "the write invalidated the entry");
    assert_eq!(roles(), 2);
    assert_eq!(s.role(5).await.unwrap(), Some(Role::Authorized));
    assert_eq!(roles(), 2);

    let chats = || h.sink.count_matching("FROM authorized_chats WHERE chat_id");
    assert!(!s.is_chat_authorized(-100).await.unwrap());
    assert!(!s.is_chat_authorized(-100).await.unwrap());
    assert_eq!(chats(), 1);
    s.authorize_chat(1, -100).await.unwrap();
    assert!(s.is_chat_authorized(-100).await.unwrap());
    assert_eq!(chats(), 2);

    let settings = || h.sink.count_matching("FROM user_settings WHERE user_id");
    assert_eq!(s.settings(5).await.unwrap(), UserSettings::default());
    assert_eq!(s.settings(5).await.unwrap(), UserSettings::default());
    assert_eq!(settings(), 1);
    let new = UserSettings { as_document: Some(true), ..UserSettings::default() };
    s.put_settings(5, &new).await.unwrap();
    assert_eq!(s.settings(5).await.unwrap(), new);
    assert_eq!(settings(), 2);

    // Concurrent misses on one key load once (single-flight).
    let before = roles();
    let all = join_all((0..8).map(|_| s.role(77))).await;
    assert!(all.iter().all(|r| matches!(r, Ok(None))));
    assert_eq!(roles() - before, 1);
    assert!(s.cache_stats().hits >= 4);
}

async fn chats_authorize_and_unauthorize<B: Backend>(h: &Harness<B>) {
    let s = &h.store;
    assert!(s.authorize_chat(1, -2).await.unwrap());
    assert!(!s.authorize_chat(1, -2).await.unwrap(), "already authorized");
    assert!(s.authorize_chat(1, -1).await.unwrap());
    assert_eq!(s.authorized_chats().await.unwrap(), vec![-2, -1]);
    assert!(s.is_chat_authorized(-2).await.unwrap());
    assert!(s.unauthorize_chat(1, -2).await.unwrap());
    assert!(!s.unauthorize_chat(1, -2).await.unwrap());
    assert!(!s.is_chat_authorized(-2).await.unwrap(), "unauthorizing invalidated the cache");
    assert_eq!(s.authorized_chats().await.unwrap(), vec![-1]);
    let actions: Vec<_> = s.audit_log(10).await.unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(actions.iter().filter(|a| *a == "authorize_chat").count(), 3);
    assert_eq!(actions.iter().filter(|a| *a == "unauthorize_chat").count(), 2);
}

async fn settings_round_trip_and_are_checked<B: Backend>(h: &Harness<B>) {
    let s = &h.store;
    let full = UserSettings {
        as_document: Some(false),
        split_size: Some(2 * 1024 * 1024 * 1024 - 1),
        upload_dest: Some("gdrive:Mirror/2026".into()),
        name_prefix: Some("@channel ".into()),
    };
    s.put_settings(3, &full).await.unwrap();
    assert_eq!(s.settings(3).await.unwrap(), full);
    assert_eq!(s.settings(4).await.unwrap(), UserSettings::default(), "per user");

    let zero = UserSettings { split_size: Some(0), ..UserSettings::default() };
    let err = s.put_settings(3, &zero).await.unwrap_err();
    assert!(matches!(err, Error::Invalid { field: "settings.split_size", .. }), "{err}");
    let long =
        UserSettings { upload_dest: Some("r".repeat(limits::UPLOAD_DEST + 1)), ..UserSettings::default() };
    let err = s.put_settings(3, &long).await.unwrap_err();
    assert!(matches!(err, Error::TooLong { field: "settings.upload_dest", limit: limits::UPLOAD_DEST, .. }));
    assert_eq!(s.settings(3).await.unwrap(), full, "refused writes changed nothing");
}

async fn task_lifecycle_moves_only_forward<B: Backend>(h: &Harness<B>) {
    let s = &h.store;
    let mut new = new_task(-5, "magnet:?xt=urn:btih:abc");
    new.source = Source::Magnet("magnet:?xt=urn:btih:abc".into());
    new.kind = TaskKind::Leech;
    new.name = Some("ubuntu.iso".into());
    let t = s.create_task(&new).await.unwrap();
    assert_eq!(t.state, TaskState::Queued);
    assert_eq!((t.chat, t.user, &t.source, t.kind), (-5, 7, &new.source, TaskKind::Leech));
    assert_eq!(t.options, new.options);
    assert_eq!(t.name.as_deref(), Some("ubuntu.iso"));
    assert!(t.started_at.is_none() && t.finished_at.is_none() && t.created_at > 0);
    assert_eq!(s.task(t.id).await.unwrap().as_ref(), Some(&t));

    let err = s.mark_uploading(t.id).await.unwrap_err();
    assert!(
        matches!(&err, Error::InvalidTransition { from, to: "uploading", .. } if from == "queued"),
        "{err}"
    );
    s.mark_started(t.id, "0123456789abcdef").await.unwrap();
    s.update_progress(t.id, Progress { done: 10, total: Some(100), speed: 5 }).await.unwrap();
    s.mark_uploading(t.id).await.unwrap();
    let file = s.add_file(t.id, "ubuntu.iso", 100).await.unwrap();
    s.add_part(file, &Part { index: 0, size: 60, message_id: Some(900), remote_path: None }).await.unwrap();
    s.add_part(file, &Part { index: 1, size: 40, message_id: Some(901), remote_path: None }).await.unwrap();
    // Re-recording a part (a retried upload) replaces it.
    s.add_part(file, &Part { index: 1, size: 40, message_id: Some(902), remote_path: None }).await.unwrap();
    s.mark_completed(t.id).await.unwrap();

    let done = s.task(t.id).await.unwrap().unwrap();
    assert_eq!(done.state, TaskState::Completed);
    assert_eq!(done.gid.as_deref(), Some("0123456789abcdef"));
    assert_eq!(done.progress, Progress { done: 10, total: Some(100), speed: 0 });
    assert!(done.started_at.is_some() && done.finished_at.is_some());
    let files = s.task_files(t.id).await.unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].parts.iter().map(|p| p.message_id).collect::<Vec<_>>(), vec![Some(900), Some(902)]);

    // Finished is final.
    let err = s.mark_cancelled(t.id).await.unwrap_err();
    assert!(matches!(&err, Error::InvalidTransition { from, .. } if from == "completed"), "{err}");
    let err = s.update_progress(t.id, Progress::default()).await.unwrap_err();
    assert!(matches!(err, Error::InvalidTransition { .. }), "{err}");
    // Missing rows are named.
    assert!(matches!(
        s.mark_started(999_999, "g").await.unwrap_err(),
        Error::NotFound { what: "task", id: 999_999 }
    ));
    assert!(matches!(s.add_file(999_999, "x", 1).await.unwrap_err(), Error::NotFound { what: "task", .. }));
    let part = Part { index: 0, size: 1, message_id: None, remote_path: Some("r:x".into()) };
    assert!(matches!(s.add_part(999_999, &part).await.unwrap_err(), Error::NotFound { what: "file", .. }));
    assert_eq!(s.task(999_999).await.unwrap(), None);

    let failed = s.create_task(&new_task(-5, "https://a/b")).await.unwrap();
    s.mark_failed(failed.id, "404 Not Found").await.unwrap();
    let failed = s.task(failed.id).await.unwrap().unwrap();
    assert_eq!((failed.state, failed.error.as_deref()), (TaskState::Failed, Some("404 Not Found")));
}

async fn progress_writes_are_batched_with_a_result_per_caller<B: Backend>(h: &Harness<B>) {
    let s = &h.store;
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(s.create_task(&new_task(1, &format!("https://x/{i}"))).await.unwrap().id);
    }
    let missing = ids.iter().max().unwrap() + 1000;
    let mut calls = Vec::new();
    for round in 0..10_u64 {
        calls.extend(ids.iter().map(|&id| (id, round)));
        calls.push((missing + round as i64, round));
    }
    let before = s.write_stats();
    let progress_sql = h.sink.count_matching("SET bytes_done");
    let results = join_all(calls.iter().map(|&(id, round)| {
        s.update_progress(id, Progress { done: round * 1000 + id as u64, total: Some(1 << 20), speed: round })
    }))
    .await;
    for (&(id, _), result) in calls.iter().zip(&results) {
        if id >= missing {
            assert!(
                matches!(result, Err(Error::NotFound { what: "task", id: got }) if *got == id),
                "{result:?}"
            );
        } else {
            assert!(result.is_ok(), "task {id}: {result:?}");
        }
    }
    let after = s.write_stats();
    let transactions = after.batches - before.batches;
    let updates = calls.len() as u64;
    assert_eq!(after.dispatched - before.dispatched, updates);
    assert_eq!(h.sink.count_matching("SET bytes_done") - progress_sql, calls.len(), "one UPDATE per write");
    assert!(transactions * 4 <= updates, "{updates} updates took {transactions} transactions");
    // Concurrent writes land in submission order, which join_all does not fix: each
    // task holds one of its own rounds' values, never another task's.
    for &id in &ids {
        let t = s.task(id).await.unwrap().unwrap();
        assert_eq!(t.progress.done % 1000, id as u64, "task {id}");
        assert!(t.progress.done / 1000 < 10 && t.progress.total == Some(1 << 20));
    }
    // A caller's sequential writes keep their order.
    for round in 0..3 {
        s.update_progress(ids[0], Progress { done: round, total: None, speed: 0 }).await.unwrap();
    }
    assert_eq!(s.task(ids[0]).await.unwrap().unwrap().progress, Progress { done: 2, total: None, speed: 0 });
}

async fn recovery_lists_every_unfinished_task_with_its_files<B: Backend>(h: &Harness<B>) {
    let s = &h.store;
    let mut by_state = Vec::new();
    for (i, target) in TaskState::ALL.iter().enumerate() {
        let t = s.create_task(&new_task(2, &format!("https://r/{i}"))).await.unwrap();
        let f = s.add_file(t.id, &format!("file-{i}.bin"), 10).await.unwrap();
        s.add_part(f, &Part { index: 0, size: 10, message_id: Some(i as i64), remote_path: None })
            .await
            .unwrap();
        match target {
            TaskState::Queued => {}
            TaskState::Downloading => s.mark_started(t.id, "gid-d").await.unwrap(),
            TaskState::Uploading => {
                s.mark_started(t.id, "gid-u").await.unwrap();
                s.update_progress(t.id, Progress { done: 7, total: Some(10), speed: 1 }).await.unwrap();
                s.mark_uploading(t.id).await.unwrap();
            }
            TaskState::Seeding => {
                s.mark_started(t.id, "gid-s").await.unwrap();
                s.mark_seeding(t.id).await.unwrap();
            }
            TaskState::Completed => {
                s.mark_started(t.id, "gid-c").await.unwrap();
                s.mark_completed(t.id).await.unwrap();
            }
            TaskState::Failed => s.mark_failed(t.id, "boom").await.unwrap(),
            TaskState::Cancelled => s.mark_cancelled(t.id).await.unwrap(),
        }
        by_state.push((t.id, *target));
    }
    let resume = s.unfinished_tasks().await.unwrap();
    let got: Vec<_> = resume.iter().map(|t| (t.task.id, t.task.state)).collect();
    let want: Vec<_> = by_state
        .iter()
        .copied()
        .filter(|(_, st)| matches!(st, TaskState::Queued | TaskState::Downloading | TaskState::Uploading))
        .collect();
    assert_eq!(got, want);
    let uploading = resume.iter().find(|t| t.task.state == TaskState::Uploading).unwrap();
    assert_eq!(uploading.task.gid.as_deref(), Some("gid-u"));
    assert_eq!(uploading.task.progress.done, 7);
    assert_eq!(uploading.task.options, serde_json::json!({ "up": "remote:dir" }));
    assert!(matches!(&uploading.task.source, Source::Url(u) if u.starts_with("https://r/")));
    for t in &resume {
        assert_eq!(t.files.len(), 1, "task {} carries its file", t.task.id);
        assert_eq!(t.files[0].parts.len(), 1);
    }
}

async fn listing_tasks_with_files_is_two_queries_not_n_plus_one<B: Backend>(h: &Harness<B>) {
    let s = &h.store;
    for i in 0..8 {
        let t = s.create_task(&new_task(3, &format!("https://n/{i}"))).await.unwrap();
        for j in 0..2 {
            let f = s.add_file(t.id, &format!("{i}/{j}.mkv"), 5).await.unwrap();
            for p in 0..2 {
                let part =
                    Part { index: p, size: 2, message_id: None, remote_path: Some(format!("r:{i}/{j}/{p}")) };
                s.add_part(f, &part).await.unwrap();
            }
        }
    }
    s.create_task(&new_task(3, "https://n/empty")).await.unwrap();
    s.create_task(&new_task(4, "https://other-chat")).await.unwrap();

    let cmd = s.span(SpanKind::Command, "status");
    let span = cmd.current_span().unwrap();
    let listed = cmd.tasks_with_files(TaskFilter::Chat(3)).await.unwrap();
    drop(cmd);
    assert_eq!(h.sink.in_span(span).len(), 2, "{:?}", h.sink.in_span(span));
    let rows: Vec<u64> =
        h.sink.queries.lock().iter().filter(|(_, s, _)| *s == Some(span)).map(|(_, _, rows)| *rows).collect();
    assert_eq!(rows, vec![9, 8 * 2 * 2], "the executor counts the rows each query returned");
    assert_eq!(listed.len(), 9);
    assert!(listed[..8].iter().all(|t| t.files.len() == 2 && t.files.iter().all(|f| f.parts.len() == 2)));
    assert!(listed[8].files.is_empty());
    let recent = s.tasks_with_files(TaskFilter::Recent(3)).await.unwrap();
    assert_eq!(recent.len(), 3);
    assert!(recent[0].task.id > recent[1].task.id, "newest first");

    // The control: the naive loop (one files query per task), replayed into a fresh
    // analyzer as one span, is an N+1 — so the strict check above can fail.
    let mark = h.sink.events.lock().len();
    let tasks = s.tasks_with_files(TaskFilter::Chat(3)).await.unwrap();
    for t in &tasks {
        s.task_files(t.task.id).await.unwrap();
    }
    let naive: Vec<_> = h.sink.events.lock()[mark..].to_vec();
    let mut config = AnalyzerConfig::default();
    config.n_plus_one.min_total_duration = Duration::ZERO;
    let control = Analyzer::new(config);
    control.span_start(SpanId(1), SpanKind::Command, "status-naive");
    for (sql, digest, _) in &naive {
        let event = QueryEvent {
            sql,
            params_digest: *digest,
            duration: Duration::from_millis(1),
            rows: 1,
            span: Some(SpanId(1)),
            ended_at: None,
        };
        control.record(&event);
    }
    control.span_end(SpanId(1));
    assert_eq!(control.report().n_plus_one.len(), 1, "the naive listing must be flagged");
}

const HOSTILE: &[&str] = &[
    "O'Brien said \"hi\"",
    "'; DROP TABLE tasks; --",
    "Robert'); DELETE FROM users WHERE ('1' = '1",
    "emoji 🦀🔥 and a family 👩‍👩‍👧 and RTL \u{202e}txt.exe",
    "back\\slash %_ wildcards ?1 $1 :name @p",
    "line\nbreak\ttab\r",
    "",
];

async fn hostile_strings_are_bound_never_spliced<B: Backend>(h: &Harness<B>) {
    let s = &h.store;
    s.set_role(1, 1, Role::Owner).await.unwrap();
    for (i, text) in HOSTILE.iter().enumerate() {
        let mut new = new_task(9, text);
        new.name = Some((*text).to_owned());
        new.options = serde_json::json!({ "note": text, "nul": "a\u{0}b" });
        let t = s.create_task(&new).await.unwrap();
        let back = s.task(t.id).await.unwrap().unwrap();
        assert_eq!(back.source, Source::Url((*text).to_owned()));
        assert_eq!(back.name.as_deref(), Some(*text));
        assert_eq!(back.options, new.options, "JSON escapes NUL, so it may appear inside options");
        let f = s.add_file(t.id, text, 1).await.unwrap();
        assert_eq!(s.task_files(t.id).await.unwrap()[0].path, *text);
        s.add_part(f, &Part { index: 0, size: 1, message_id: None, remote_path: Some((*text).into()) })
            .await
            .unwrap();
        s.mark_failed(t.id, text).await.unwrap();
        assert_eq!(s.task(t.id).await.unwrap().unwrap().error.as_deref(), Some(*text));
        let settings = UserSettings { name_prefix: Some((*text).into()), ..UserSettings::default() };
        s.put_settings(100 + i as i64, &settings).await.unwrap();
        assert_eq!(s.settings(100 + i as i64).await.unwrap(), settings);
        let entry =
            NewAuditEntry { actor: 1, action: "note".into(), target: None, detail: Some((*text).into()) };
        s.audit(&entry).await.unwrap();
    }
    // Nothing was dropped or deleted.
    assert_eq!(s.tasks_with_files(TaskFilter::Chat(9)).await.unwrap().len(), HOSTILE.len());
    assert_eq!(s.role(1).await.unwrap(), Some(Role::Owner));
    assert_eq!(s.audit_log(100).await.unwrap().len(), HOSTILE.len() + 1);

    // NUL bytes cannot be stored as text on PostgreSQL: refused on both, by field.
    let err = s.create_task(&new_task(9, "https://a/\0b")).await.unwrap_err();
    assert!(matches!(&err, Error::Invalid { field: "task.source", .. }), "{err}");
    assert!(err.to_string().contains("NUL byte at offset 10"), "{err}");
    let mut named = new_task(9, "https://ok");
    named.name = Some("a\0".into());
    assert!(matches!(s.create_task(&named).await.unwrap_err(), Error::Invalid { field: "task.name", .. }));
    assert_eq!(s.tasks_with_files(TaskFilter::Chat(9)).await.unwrap().len(), HOSTILE.len());
}

async fn fields_over_their_limit_are_refused_by_name<B: Backend>(h: &Harness<B>) {
    let s = &h.store;
    let at_limit = format!("https://{}", "a".repeat(limits::SOURCE - 8));
    assert_eq!(at_limit.len(), limits::SOURCE);
    let t = s.create_task(&new_task(8, &at_limit)).await.unwrap();
    let over = format!("{at_limit}b");
    let err = s.create_task(&new_task(8, &over)).await.unwrap_err();
    assert!(matches!(err, Error::TooLong { field: "task.source", limit: 4096, actual: 4097 }), "{err}");
    assert_eq!(err.to_string(), "task.source is 4097 bytes long; the limit is 4096 bytes");
    assert!(err.is_bad_input());

    let mut named = new_task(8, "https://x");
    named.name = Some("é".repeat(128)); // 256 bytes, 128 chars: the limit is in bytes
    let err = s.create_task(&named).await.unwrap_err();
    assert!(matches!(err, Error::TooLong { field: "task.name", limit: 255, actual: 256 }), "{err}");
    let mut big = new_task(8, "https://x");
    big.options = serde_json::json!({ "blob": "x".repeat(limits::OPTIONS) });
    assert!(matches!(s.create_task(&big).await.unwrap_err(), Error::TooLong { field: "task.options", .. }));

    let err = s.mark_failed(t.id, &"e".repeat(limits::ERROR + 1)).await.unwrap_err();
    assert!(matches!(err, Error::TooLong { field: "task.error", limit: 4096, .. }), "{err}");
    let err = s.mark_started(t.id, &"g".repeat(limits::GID + 1)).await.unwrap_err();
    assert!(matches!(err, Error::TooLong { field: "task.gid", .. }), "{err}");
    let err = s.add_file(t.id, &"p".repeat(limits::PATH + 1), 1).await.unwrap_err();
    assert!(matches!(err, Error::TooLong { field: "file.path", .. }), "{err}");
    let err = s.add_file(t.id, "ok", u64::MAX).await.unwrap_err();
    assert!(matches!(err, Error::Invalid { field: "file.size", .. }), "{err}");
    let entry = NewAuditEntry { actor: 1, action: "a".repeat(65), target: None, detail: None };
    assert!(matches!(
        s.audit(&entry).await.unwrap_err(),
        Error::TooLong { field: "audit.action", limit: 64, .. }
    ));

    // Nothing refused reached the database.
    let tasks = s.tasks_with_files(TaskFilter::Chat(8)).await.unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].task.state, TaskState::Queued);
    assert!(tasks[0].files.is_empty());
    assert!(s.audit_log(10).await.unwrap().is_empty());
}

async fn audit_log_refuses_update_and_delete<B: Backend>(h: &Harness<B>) {
    let s = &h.store;
    let entry =
        NewAuditEntry { actor: 1, action: "restart".into(), target: None, detail: Some("/restart".into()) };
    let id = s.audit(&entry).await.unwrap();
    let before = s.audit_log(10).await.unwrap();
    for sql in ["UPDATE audit_log SET action = 'tampered'", "DELETE FROM audit_log"] {
        let err = s
            .backend()
            .run(&noop_exec(), None, vec![Statement::execute(sql, vec![])], false)
            .await
            .unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(text.contains("append-only"), "{sql}: {text}");
    }
    assert_eq!(s.audit_log(10).await.unwrap(), before);
    assert_eq!(before[0].id, id);
}

async fn status_messages_upsert_and_remove<B: Backend>(h: &Harness<B>) {
    let s = &h.store;
    s.set_status_message(-1, 10).await.unwrap();
    s.set_status_message(-2, 20).await.unwrap();
    s.set_status_message(-1, 11).await.unwrap();
    let got: Vec<_> = s.status_messages().await.unwrap().iter().map(|m| (m.chat, m.message_id)).collect();
    assert_eq!(got, vec![(-2, 20), (-1, 11)]);
    assert!(s.remove_status_message(-2).await.unwrap());
    assert!(!s.remove_status_message(-2).await.unwrap());
    assert_eq!(s.status_messages().await.unwrap().len(), 1);
}

async fn sent_files_are_remembered_by_content_hash<B: Backend>(h: &Harness<B>) {
    let s = &h.store;
    let hash = "a".repeat(64);
    assert_eq!(s.sent_file(&hash).await.unwrap(), None);
    assert!(!s.has_sent_file_like(10 << 20, "p1").await.unwrap());
    let sent = SentFile::new(hash.clone(), 10 << 20, "BQACAgIAAxk-file-id", "movie.mkv.001").probe("p1");
    s.remember_sent_file(&sent).await.unwrap();
    assert_eq!(s.sent_file(&hash).await.unwrap(), Some(sent.clone()));
    assert!(s.has_sent_file_like(10 << 20, "p1").await.unwrap());
    assert!(!s.has_sent_file_like((10 << 20) + 1, "p1").await.unwrap(), "only that exact size");
    assert!(!s.has_sent_file_like(10 << 20, "p2").await.unwrap(), "only that probe");
    // A record without a probe (written before probes existed) matches any probe.
    let old = SentFile::new("b".repeat(64), 77, "BQACAgIAAxk-old", "old.bin");
    s.remember_sent_file(&old).await.unwrap();
    assert!(s.has_sent_file_like(77, "anything").await.unwrap());
    assert!(s.forget_sent_file(&old.sha256).await.unwrap());
    let long = SentFile::new("c".repeat(64), 1, "BQACAgIAAxk-x", "x").probe("p".repeat(65));
    assert!(s.remember_sent_file(&long).await.unwrap_err().to_string().contains("sent_file.probe"));
    // The same content sent again under a new file_id replaces the record.
    let again = SentFile::new(hash.clone(), 10 << 20, "BQACAgIAAxk-newer", "movie.mkv.001");
    s.remember_sent_file(&again).await.unwrap();
    assert_eq!(s.sent_file(&hash).await.unwrap().map(|f| f.file_id), Some("BQACAgIAAxk-newer".into()));
    assert!(s.forget_sent_file(&hash).await.unwrap());
    assert!(!s.forget_sent_file(&hash).await.unwrap());
    assert_eq!(s.sent_file(&hash).await.unwrap(), None);
    assert!(!s.has_sent_file_like(10 << 20, "p1").await.unwrap());
    // A hash that is not 64 lowercase hex digits is refused by name, before any query.
    for bad in ["abc", &"A".repeat(64), &"g".repeat(64)] {
        let err = s.sent_file(bad).await.unwrap_err();
        assert!(err.to_string().contains("sent_file.sha256"), "{err}");
    }
}

async fn task_names_are_set_once_known<B: Backend>(h: &Harness<B>) {
    let s = &h.store;
    let task = s.create_task(&new_task(1, "https://h/a.iso")).await.unwrap();
    assert_eq!(task.name, None);
    s.set_name(task.id, "a.iso").await.unwrap();
    assert_eq!(s.task(task.id).await.unwrap().unwrap().name.as_deref(), Some("a.iso"));
    assert!(matches!(s.set_name(task.id + 1000, "x").await, Err(Error::NotFound { .. })));
    // The share link of a result, recorded once the destination gives one.
    assert_eq!(s.task(task.id).await.unwrap().unwrap().link, None);
    s.set_link(task.id, "https://drive.example/s/abc").await.unwrap();
    assert_eq!(s.task(task.id).await.unwrap().unwrap().link.as_deref(), Some("https://drive.example/s/abc"));
    assert!(matches!(s.set_link(task.id + 1000, "https://x").await, Err(Error::NotFound { .. })));
    assert!(matches!(s.set_link(task.id, &"l".repeat(5000)).await, Err(Error::TooLong { .. })));
    assert!(matches!(s.set_name(task.id, &"n".repeat(300)).await, Err(Error::TooLong { .. })));
    // Options change while a task runs (a selection made on the web page), never after.
    s.set_options(task.id, &serde_json::json!({"select": [2, 4]})).await.unwrap();
    assert_eq!(s.task(task.id).await.unwrap().unwrap().options, serde_json::json!({"select": [2, 4]}));
    let too_big = serde_json::json!({ "x": "o".repeat(20_000) });
    assert!(matches!(s.set_options(task.id, &too_big).await, Err(Error::TooLong { .. })));
    s.mark_cancelled(task.id).await.unwrap();
    let late = s.set_options(task.id, &serde_json::json!({})).await;
    assert!(matches!(late, Err(Error::NotFound { .. })), "{late:?}");
    assert_eq!(s.task(task.id).await.unwrap().unwrap().options, serde_json::json!({"select": [2, 4]}));
}

async fn spans_group_a_commands_queries<B: Backend>(h: &Harness<B>) {
    let s = &h.store;
    let started = h.sink.analyzer.counters().spans_started;
    let cmd = s.span(SpanKind::Command, "auth");
    let span = cmd.current_span().expect("a span id");
    assert_eq!(cmd.role(9).await.unwrap(), None);
    assert!(!cmd.is_chat_authorized(-9).await.unwrap());
    cmd.create_task(&new_task(-9, "https://span")).await.unwrap();
    drop(cmd);
    let in_span = h.sink.in_span(span);
    assert_eq!(in_span.len(), 3, "{in_span:?}");
    assert!(in_span[0].contains("FROM users") && in_span[2].starts_with("INSERT INTO tasks"));
    let counters = h.sink.analyzer.counters();
    assert_eq!((counters.spans_started - started, counters.open_spans), (1, 0));
    assert_eq!(s.current_span(), None, "the store itself is outside any span");
}

async fn each_end_is_announced_once<B: Backend>(h: &Harness<B>) {
    let s = &h.store;
    let create = |url: &'static str| async move { s.create_task(&new_task(1, url)).await.unwrap().id };
    let done = create("https://done").await;
    s.mark_started(done, "g1").await.unwrap();
    s.mark_completed(done).await.unwrap();
    let failed = create("https://failed").await;
    s.mark_failed(failed, "boom").await.unwrap();
    let cancelled = create("https://cancelled").await;
    s.mark_cancelled(cancelled).await.unwrap();
    let running = create("https://running").await;
    s.mark_started(running, "g2").await.unwrap();
    let unannounced = |limit| async move {
        s.unannounced_tasks(limit).await.unwrap().iter().map(|t| t.id).collect::<Vec<_>>()
    };
    assert_eq!(unannounced(10).await, [done, failed, cancelled], "finished tasks, oldest first");
    assert_eq!(unannounced(2).await, [done, failed]);
    let listed = s.unannounced_tasks(10).await.unwrap();
    assert_eq!((listed[1].state, listed[1].error.as_deref()), (TaskState::Failed, Some("boom")));

    assert!(!s.mark_announced(running).await.unwrap(), "a running task has no end to announce");
    assert!(!s.mark_announced(i64::MAX).await.unwrap(), "no such task");
    let (a, b) = tokio::join!(s.mark_announced(done), s.mark_announced(done));
    assert!(a.unwrap() ^ b.unwrap(), "two callers at once: exactly one announces");
    assert!(!s.mark_announced(done).await.unwrap(), "and only once");
    assert_eq!(unannounced(10).await, [failed, cancelled]);
    // A send that failed is tried again.
    s.unmark_announced(done).await.unwrap();
    assert_eq!(unannounced(10).await, [done, failed, cancelled]);
    // The running task joins the list when it ends.
    s.mark_completed(running).await.unwrap();
    for id in [done, failed, cancelled] {
        assert!(s.mark_announced(id).await.unwrap());
    }
    assert_eq!(unannounced(10).await, [running]);
}
