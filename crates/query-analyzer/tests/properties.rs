//! Property tests of fingerprints: stable under literal, placeholder, whitespace, case
//! and comment changes; idempotent; total (never panics) on arbitrary text.

use mltb_query_analyzer::fingerprint;
use proptest::prelude::*;

/// Statement templates: tokens separated by single spaces, `{}` where a value goes,
/// `{list}` where an IN list goes.
const TEMPLATES: &[&str] = &[
    "SELECT id , name FROM users WHERE id = {} AND name = {}",
    "SELECT * FROM tasks WHERE state IN ( {list} ) ORDER BY created_at DESC LIMIT {}",
    "UPDATE tasks SET progress = {} , speed = {} WHERE id = {}",
    "INSERT INTO audit ( task_id , message ) VALUES ( {} , {} )",
    "DELETE FROM sessions WHERE expires_at < {} OR user_id = {}",
    "SELECT u.id , count ( * ) FROM users u JOIN tasks t ON t.owner = u.id WHERE t.size > {} GROUP BY u.id HAVING count ( * ) > {}",
    "SELECT \"Name\" FROM \"Users\" WHERE \"Id\" = {} AND x = {} :: int",
    "SELECT a FROM t WHERE b BETWEEN {} AND {} AND c NOT IN ( {list} )",
    "SELECT coalesce ( a , {} ) + {} FROM t",
];

fn literal() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (any::<u32>(), 0u32..99, -20i32..20).prop_map(|(a, b, e)| format!("{a}.{b}e{e}")),
        "[a-z ']{0,12}".prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
        "[a-z]{0,8}".prop_map(|s| format!("E'{s}\\'x'")),
        "[0-9a-f]{0,8}".prop_map(|s| format!("X'{s}'")),
        "[a-z ']{0,8}".prop_map(|s| format!("$$ {s} $$")),
        Just("?".to_owned()),
        (1u32..20).prop_map(|n| format!("${n}")),
        (1u32..20).prop_map(|n| format!("?{n}")),
        "[a-z_]{1,6}".prop_map(|s| format!(":{s}")),
        "[a-z_]{1,6}".prop_map(|s| format!("@{s}")),
        Just("TRUE".to_owned()),
        Just("false".to_owned()),
        Just("0x1F".to_owned()),
    ]
}

fn fill(template: &str, values: &[String], list_len: usize) -> String {
    let mut out = String::new();
    let mut vals = values.iter().cycle();
    let mut rest = template;
    while let Some(pos) = rest.find('{') {
        out.push_str(&rest[..pos]);
        if rest[pos..].starts_with("{list}") {
            let list: Vec<&str> = (0..list_len).map(|_| vals.next().map_or("?", |s| s.as_str())).collect();
            out.push_str(&list.join(" , "));
            rest = &rest[pos + "{list}".len()..];
        } else {
            out.push_str(vals.next().map_or("?", |s| s.as_str()));
            rest = &rest[pos + "{}".len()..];
        }
    }
    out.push_str(rest);
    out
}

/// Replaces each single space with other whitespace or comments, and flips the case of
/// unquoted words.
fn disguise(sql: &str, seps: &[usize], cases: &[bool]) -> String {
    const SEPS: [&str; 6] = [" ", "  ", "\n\t", " /* note */ ", " -- note\n", "\r\n  "];
    let mut out = String::new();
    for (i, word) in sql.split(' ').enumerate() {
        if i > 0 {
            out.push_str(SEPS[seps[i % seps.len()] % SEPS.len()]);
        }
        let quoted = word.contains(['"', '\'', '$']) || word.starts_with([':', '@', '?', 'E', 'X']);
        if quoted {
            out.push_str(word);
        } else if cases[i % cases.len()] {
            out.push_str(&word.to_ascii_uppercase());
        } else {
            out.push_str(&word.to_ascii_lowercase());
        }
    }
    out
}

proptest! {
    #[test]
    fn stable_under_literal_and_placeholder_changes(
        t in 0..TEMPLATES.len(),
        a in prop::collection::vec(literal(), 1..8),
        b in prop::collection::vec(literal(), 1..8),
        la in 1usize..12,
        lb in 1usize..12,
    ) {
        let x = fingerprint(&fill(TEMPLATES[t], &a, la));
        let y = fingerprint(&fill(TEMPLATES[t], &b, lb));
        prop_assert_eq!(&x.normalized, &y.normalized);
        prop_assert_eq!(x.id, y.id);
    }

    #[test]
    fn stable_under_whitespace_case_and_comments(
        t in 0..TEMPLATES.len(),
        vals in prop::collection::vec(literal(), 1..8),
        seps in prop::collection::vec(0usize..6, 1..16),
        cases in prop::collection::vec(any::<bool>(), 1..16),
    ) {
        let sql = fill(TEMPLATES[t], &vals, 3);
        let plain = fingerprint(&sql);
        let disguised = fingerprint(&disguise(&sql, &seps, &cases));
        prop_assert_eq!(&plain.normalized, &disguised.normalized);
        prop_assert_eq!(plain.id, disguised.id);
        prop_assert_eq!(plain.kind, disguised.kind);
    }

    #[test]
    fn idempotent_on_sql_like_text(sql in r#"[a-zA-Z0-9_ '"`$?:@.,;()\[\]+\-*/<>=!|&~#%^\\\n\t]{0,80}"#) {
        let fp = fingerprint(&sql);
        let again = fingerprint(&fp.normalized);
        prop_assert_eq!(&again.normalized, &fp.normalized);
        prop_assert_eq!(again.id, fp.id);
    }

    #[test]
    fn idempotent_and_total_on_any_text(sql in any::<String>()) {
        let fp = fingerprint(&sql);
        let again = fingerprint(&fp.normalized);
        prop_assert_eq!(&again.normalized, &fp.normalized);
    }

    #[test]
    fn idempotent_on_filled_templates(t in 0..TEMPLATES.len(), vals in prop::collection::vec(literal(), 1..8), n in 1usize..6) {
        let fp = fingerprint(&fill(TEMPLATES[t], &vals, n));
        prop_assert_eq!(&fingerprint(&fp.normalized).normalized, &fp.normalized);
    }
}
