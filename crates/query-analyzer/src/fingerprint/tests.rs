use super::*;

fn norm(sql: &str) -> String {
    fingerprint(sql).normalized.to_string()
}

fn same(a: &str, b: &str) {
    let (fa, fb) = (fingerprint(a), fingerprint(b));
    assert_eq!(fa.normalized, fb.normalized, "{a:?} vs {b:?}");
    assert_eq!(fa.id, fb.id);
}

#[test]
fn literals_and_placeholders_share_a_fingerprint() {
    same("SELECT * FROM t WHERE a = 1 AND b = 'x'", "SELECT * FROM t WHERE a = ? AND b = ?");
    same("SELECT * FROM t WHERE a = -1.5e3", "SELECT * FROM t WHERE a = $1");
    same("SELECT * FROM t WHERE a = 'it''s'", "SELECT * FROM t WHERE a = :a");
    same(r"SELECT * FROM t WHERE a = E'it\'s'", "SELECT * FROM t WHERE a = @a");
    same("SELECT * FROM t WHERE a = X'00ff'", "SELECT * FROM t WHERE a = ?1");
    same("SELECT * FROM t WHERE a = $$x'y$$", "SELECT * FROM t WHERE a = $name");
    same("SELECT * FROM t WHERE a = 0x1F", "SELECT * FROM t WHERE a = ?");
    same("SELECT * FROM t WHERE a = TRUE", "SELECT * FROM t WHERE a = false");
    assert_eq!(norm("SELECT * FROM t WHERE a IS NULL"), "SELECT * FROM t WHERE a IS NULL");
}

#[test]
fn whitespace_case_and_comments_do_not_matter() {
    same(
        "select id,name from Users where id=1",
        "SELECT id , name\n\tFROM users /* hint */ WHERE id = 1 -- trailing\n;",
    );
    assert_eq!(norm("select id,name from Users where id=1"), "SELECT id, name FROM users WHERE id = ?");
    assert_eq!(norm("SELECT count(*) FROM t"), "SELECT count(*) FROM t");
    same("SELECT a-1 FROM t", "SELECT a - 1 FROM t");
    same("SELECT a FROM t WHERE b<-1", "SELECT a FROM t WHERE b < - 1");
}

#[test]
fn in_lists_and_values_rows_collapse() {
    same("SELECT * FROM t WHERE id IN (1, 2, 3)", "SELECT * FROM t WHERE id IN ($1)");
    same("SELECT * FROM t WHERE id NOT IN (?,?)", "SELECT * FROM t WHERE id NOT IN (-7)");
    assert_eq!(
        norm("SELECT * FROM t WHERE id IN (SELECT x FROM u)"),
        "SELECT * FROM t WHERE id IN (SELECT x FROM u)"
    );
    same("INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'), (3, 'z')", "INSERT INTO t (a, b) VALUES (?, ?)");
    assert_eq!(norm("INSERT INTO t (a, b) VALUES (1, 2), (3, 4)"), "INSERT INTO t (a, b) VALUES (?, ?)");
    // Rows of different shapes stay.
    assert_eq!(norm("INSERT INTO t VALUES (1, now()), (2, 3)"), "INSERT INTO t VALUES (?, now()), (?, ?)");
}

#[test]
fn array_literals_collapse_like_in_lists() {
    same("SELECT * FROM t WHERE id = ANY(ARRAY[1, 2, 3])", "SELECT * FROM t WHERE id = ANY(array[$1])");
    assert_eq!(
        norm("SELECT * FROM t WHERE id = ANY(ARRAY[1, 2])"),
        "SELECT * FROM t WHERE id = ANY (ARRAY[...])"
    );
    // Not a pure value list: kept, subscripts included.
    assert_eq!(norm("SELECT ARRAY[a[1], 2] FROM t"), "SELECT ARRAY[a[?], ?] FROM t");
    assert_eq!(norm("SELECT ARRAY[(1), 2]"), "SELECT ARRAY[(?), ?]");
    assert_eq!(norm("SELECT ARRAY[f(x)]"), "SELECT ARRAY[f(x)]");
    assert_eq!(norm("SELECT a[1], b[2:3] FROM t"), "SELECT a[?], b[? : ?] FROM t");
    assert_eq!(norm("SELECT ARRAY[ARRAY[1, 2], ARRAY[3]]"), "SELECT ARRAY[ARRAY[...], ARRAY[...]]");
    same("INSERT INTO t VALUES (ARRAY[1, 2]), (ARRAY[3])", "INSERT INTO t VALUES (ARRAY[?])");
    // Unbalanced input is written as it came, without panicking.
    assert_eq!(norm("SELECT ARRAY[1, 2"), "SELECT ARRAY[?, ?");
    assert_eq!(norm("SELECT ARRAY[1)]"), "SELECT ARRAY[?)]");
}

#[test]
fn postgres_identifiers_casts_and_dollar_quotes() {
    assert_eq!(
        norm("SELECT \"UserId\" FROM \"Users\" WHERE x = '1'::int"),
        "SELECT \"UserId\" FROM \"Users\" WHERE x = ?::int"
    );
    let fp = fingerprint("SELECT * FROM \"Users\" u JOIN public.orders o ON o.uid = u.id");
    assert_eq!(fp.tables_read, ["Users", "orders"]);
    assert_eq!(norm("SELECT $tag$ a $$ b $tag$"), "SELECT ?");
    assert_eq!(norm("SELECT a->>'k' FROM t WHERE j @> '{}'"), "SELECT a ->> ? FROM t WHERE j @> ?");
    assert_eq!(norm("SELECT a != b"), "SELECT a <> b");
}

#[test]
fn statement_kind_and_tables() {
    let fp = fingerprint("INSERT INTO tasks (id) SELECT id FROM queue");
    assert_eq!(
        (fp.kind, fp.tables_written.as_slice(), fp.tables_read.as_slice()),
        (StatementKind::Insert, &["tasks".to_owned()][..], &["queue".to_owned()][..])
    );
    let fp = fingerprint("UPDATE tasks SET state = ? WHERE id = ?");
    assert_eq!((fp.kind, fp.tables_written.as_slice()), (StatementKind::Update, &["tasks".to_owned()][..]));
    let fp = fingerprint("DELETE FROM main.tasks WHERE id IN (SELECT id FROM old)");
    assert_eq!(fp.kind, StatementKind::Delete);
    assert_eq!(fp.tables_written, ["tasks"]);
    assert_eq!(fp.tables_read, ["old"]);
    let fp = fingerprint("WITH x AS (SELECT * FROM a) SELECT * FROM x, b AS bb, c cc");
    assert_eq!(fp.kind, StatementKind::Select);
    assert_eq!(fp.tables_read, ["a", "x", "b", "c"]);
    let fp =
        fingerprint("INSERT OR REPLACE INTO kv VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v");
    assert_eq!(fp.kind, StatementKind::Insert);
    assert_eq!(fp.tables_written, ["kv"]);
    assert_eq!(fingerprint("PRAGMA journal_mode = wal").kind, StatementKind::Other);
    assert_eq!(fingerprint("TRUNCATE TABLE logs").tables_written, ["logs"]);
}

#[test]
fn garbage_gets_a_best_effort_fingerprint() {
    for sql in [
        "",
        "'",
        "\"",
        "/*",
        "--",
        "$$",
        "$a$ x",
        "E'\\",
        "\u{0}\u{1}\u{7f}",
        "((((",
        "))))",
        "é ü ß",
        "?::",
        "-",
        "...",
        // Found by the property tests: tokens that must not be joined.
        "``:\t::",
        ". . .",
        ". ...",
    ] {
        let fp = fingerprint(sql);
        assert_eq!(fingerprint(&fp.normalized).normalized, fp.normalized, "{sql:?}");
    }
    assert_eq!(norm("SELECT 'unterminated"), "SELECT ?");
    assert_eq!(norm("SELECT 1 /* unterminated"), "SELECT ?");
    assert_eq!(norm(""), "");
}

#[test]
fn ids_are_stable_across_versions() {
    // Pinned: changing the normalisation or the hash changes every stored id.
    let fp = fingerprint("SELECT * FROM users WHERE id = 1");
    assert_eq!(&*fp.normalized, "SELECT * FROM users WHERE id = ?");
    assert_eq!(fp.id, crate::hash::fnv1a(b"SELECT * FROM users WHERE id = ?"));
    assert_eq!(fp.hex_id().len(), 16);
}

#[test]
fn paging_is_recognised_by_offset_or_keyset_shape() {
    for sql in [
        "SELECT * FROM files ORDER BY id LIMIT 100 OFFSET $1",
        "SELECT * FROM files LIMIT 25 OFFSET 50",
        "SELECT * FROM files ORDER BY id OFFSET ? ROWS FETCH NEXT 10 ROWS ONLY",
    ] {
        assert_eq!(fingerprint(sql).paging, Some(Paging::Offset), "{sql}");
    }
    for sql in [
        "SELECT * FROM users WHERE id > $1 ORDER BY id LIMIT 1000",
        "SELECT \"users\".* FROM \"users\" WHERE \"users\".\"id\" > 17 ORDER BY \"users\".\"id\" ASC LIMIT $2",
        "SELECT * FROM events WHERE (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT 50",
    ] {
        assert_eq!(fingerprint(sql).paging, Some(Paging::Keyset), "{sql}");
    }
    // A lookup that stops at one row (Rails' find_by, Django's get) is not a page, nor is
    // a subquery's LIMIT or a range without a limit.
    for sql in [
        "SELECT \"users\".* FROM \"users\" WHERE \"users\".\"id\" = $1 LIMIT $2",
        "SELECT * FROM users WHERE id = %s LIMIT 21",
        "SELECT * FROM users ORDER BY id LIMIT 1",
        "SELECT * FROM t WHERE a IN (SELECT b FROM u ORDER BY b LIMIT 10 OFFSET 5)",
        "SELECT * FROM t WHERE id > ? ORDER BY id",
    ] {
        assert_eq!(fingerprint(sql).paging, None, "{sql}");
    }
}

#[test]
fn text_facts_see_literals_but_not_comments_whitespace_or_case() {
    let facts = |sql: &str| analyse(sql).1;
    let a = facts("SELECT * FROM users WHERE id = 17 AND name = 'x'");
    assert_eq!(a, facts("select *\n from USERS /* traceparent='00-4bf9-01' */ where ID = 17 and NAME = 'x'"));
    assert_eq!(a, facts("SELECT * FROM users WHERE id = 17 AND name = 'x' -- app:web"));
    assert_ne!(a.literals, facts("SELECT * FROM users WHERE id = 18 AND name = 'x'").literals);
    assert_ne!(a.literals, facts("SELECT * FROM users WHERE id = -17 AND name = 'x'").literals);
    assert_ne!(facts("SELECT 1 WHERE a = TRUE").literals, facts("SELECT 1 WHERE a = false").literals);
    // Placeholders carry no literal: every text with them alone agrees.
    assert_eq!(facts("SELECT * FROM t WHERE a = $1").literals, facts("SELECT * FROM t WHERE a = ?").literals);
}

#[test]
fn text_facts_count_the_longest_list() {
    let len = |sql: &str| analyse(sql).1.list_len;
    assert_eq!(len("SELECT * FROM t WHERE id = ?"), 0);
    assert_eq!(len("SELECT * FROM t WHERE id IN (?)"), 1);
    assert_eq!(len("SELECT * FROM t WHERE id IN (1, 2, 3) AND k IN ($1, $2)"), 3);
    assert_eq!(len("SELECT * FROM t WHERE id = ANY(ARRAY[1, 2, 3, 4])"), 4);
    assert_eq!(len("INSERT INTO t (a, b) VALUES (1, 2), (3, 4), (5, 6)"), 3);
    assert_eq!(len("INSERT INTO t (a, b) VALUES (?, ?)"), 1);
    assert_eq!(len("SELECT * FROM t WHERE id IN (SELECT x FROM u)"), 0);
}

#[test]
fn python_db_api_placeholders_are_parameters() {
    same("SELECT * FROM t WHERE a = %s AND b IN (%s, %s)", "SELECT * FROM t WHERE a = ? AND b IN (?)");
    same("SELECT * FROM t WHERE a = %(a_1)s", "SELECT * FROM t WHERE a = $1");
    assert_eq!(analyse("SELECT * FROM t WHERE b IN (%s, %s, %s)").1.list_len, 3);
    assert_eq!(norm("SELECT a % b FROM t"), "SELECT a % b FROM t");
}
