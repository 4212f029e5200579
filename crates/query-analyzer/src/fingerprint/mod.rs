//! SQL fingerprints: normalised text and a stable id, the statement kind and the tables
//! a statement reads and writes.

mod lexer;
mod normalize;

use std::fmt;
use std::sync::Arc;

use crate::hash::fnv1a;

/// What a statement does, from its first keyword (after any `WITH` clause).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum StatementKind {
    /// `SELECT` (also `WITH … SELECT`).
    Select,
    /// `INSERT` or SQLite's `REPLACE`.
    Insert,
    /// `UPDATE`.
    Update,
    /// `DELETE`.
    Delete,
    /// Anything else: DDL, `PRAGMA`, `BEGIN`, `VALUES`, unparseable text.
    Other,
}

impl StatementKind {
    /// The lowercase name (`"select"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Select => "select",
            Self::Insert => "insert",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Other => "other",
        }
    }

    /// `true` for statements that change rows (insert, update, delete).
    pub fn is_write(self) -> bool {
        matches!(self, Self::Insert | Self::Update | Self::Delete)
    }
}

impl fmt::Display for StatementKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a statement pages through a result, when it does: repeating it with other
/// parameters walks one result set, which is the batched form, not an N+1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Paging {
    /// `LIMIT … OFFSET …` (or `OFFSET … FETCH …`).
    Offset,
    /// Keyset (seek) paging: `LIMIT` (or `FETCH`) with `ORDER BY` and a range comparison
    /// against a value, as in `WHERE id > $1 ORDER BY id LIMIT 100`.
    Keyset,
}

/// The shape of a statement: queries that differ only in literal values, placeholder
/// style, `IN`-list, `ARRAY[...]` or `VALUES`-list length, whitespace, keyword case or
/// comments share one fingerprint.
///
/// Build one with [`fingerprint`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Fingerprint {
    /// FNV-1a (64-bit) of [`normalized`](Self::normalized): the same in every process and
    /// every version of this crate for the same normalised text.
    pub id: u64,
    /// The normalised text: literals and placeholders as `?`, value lists as `(...)`,
    /// keywords in upper case, unquoted identifiers in lower case, one space between
    /// tokens, no comments.
    pub normalized: Arc<str>,
    /// What the statement does.
    pub kind: StatementKind,
    /// Tables read (`FROM`, `JOIN`, `USING`), unquoted names lowercased, schema dropped.
    pub tables_read: Vec<String>,
    /// Tables written (`INSERT INTO`, `UPDATE`, `DELETE FROM`, `TRUNCATE`).
    pub tables_written: Vec<String>,
    /// Whether the statement is a page of a larger result, and how (outside
    /// parentheses: `OFFSET`, or `LIMIT` with `ORDER BY` and a range comparison).
    pub paging: Option<Paging>,
}

impl Fingerprint {
    /// The id as 16 hex digits, the form used in reports and accepted by safelists.
    pub fn hex_id(&self) -> String {
        format!("{:016x}", self.id)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x} {}", self.id, self.normalized)
    }
}

/// Fingerprints `sql`. Never panics; text that is not valid SQL (an unterminated quote
/// or comment, stray characters) still gets a best-effort fingerprint.
///
/// ```
/// use mltb_query_analyzer::{fingerprint, StatementKind};
///
/// let a = fingerprint("SELECT * FROM users WHERE id = 42 AND name = 'o''brien'");
/// let b = fingerprint("select *\n  from USERS -- by id\n where id = $1 and name = ?2");
/// assert_eq!(a.id, b.id);
/// assert_eq!(&*a.normalized, "SELECT * FROM users WHERE id = ? AND name = ?");
/// assert_eq!(a.kind, StatementKind::Select);
/// assert_eq!(a.tables_read, ["users"]);
///
/// let list = fingerprint("SELECT * FROM t WHERE id IN (1, 2, 3)");
/// assert_eq!(&*list.normalized, "SELECT * FROM t WHERE id IN (...)");
/// assert_eq!(list.id, fingerprint("select * from t where id in (?)").id);
/// ```
pub fn fingerprint(sql: &str) -> Fingerprint {
    analyse(sql).0
}

/// What one SQL text says beyond its fingerprint: facts of the text, not of its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TextFacts {
    /// A hash of the literal values inlined in the text, in order; comments, whitespace
    /// and case do not change it.
    pub(crate) literals: u64,
    /// The longest collapsed list: values in `IN (...)` or `ARRAY[...]`, rows in `VALUES`.
    pub(crate) list_len: u32,
}

/// Fingerprints `sql` and reads the facts of its text.
pub(crate) fn analyse(sql: &str) -> (Fingerprint, TextFacts) {
    let out = normalize::normalize(sql);
    let id = fnv1a(out.normalized.as_bytes());
    let facts = TextFacts { literals: out.literals, list_len: out.list_len };
    let fp = Fingerprint {
        id,
        normalized: Arc::from(out.normalized),
        kind: out.kind,
        tables_read: dedup(out.reads),
        tables_written: dedup(out.writes),
        paging: out.paging,
    };
    (fp, facts)
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    let mut seen = 0;
    for i in 0..v.len() {
        if !v[..seen].contains(&v[i]) {
            v.swap(seen, i);
            seen += 1;
        }
    }
    v.truncate(seen);
    v
}

#[cfg(test)]
mod tests;
