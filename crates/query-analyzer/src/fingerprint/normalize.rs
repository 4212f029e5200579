//! Turns the token stream into normalised text, and on the way finds the statement kind
//! and the tables read and written.
//!
//! Spacing depends only on the token sequence, never on the input's whitespace, so the
//! output is whitespace-invariant; and the output re-tokenizes to the tokens it was
//! written from, so normalising is idempotent.

use super::lexer::{Lexer, Tok};
use super::{Paging, StatementKind};

/// How deep parenthesised groups are tracked for list collapsing; deeper groups are
/// still balanced but never collapsed.
const MAX_GROUPS: usize = 64;

/// What the previous emitted token was, for spacing and unary signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prev {
    Start,
    Keyword,
    Ident,
    Value,
    Open,
    Close,
    Comma,
    Dot,
    Cast,
    Op,
    Semi,
    Other,
}

impl Prev {
    fn is_value_like(self) -> bool {
        matches!(self, Prev::Ident | Prev::Value | Prev::Close)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GroupKind {
    In,
    ValuesRow,
    Plain,
    /// `ARRAY[...]`, closed by `]`.
    Array,
}

#[derive(Debug, Clone, Copy)]
struct Group {
    open: usize,
    kind: GroupKind,
    only_values: bool,
    any_value: bool,
    /// Values directly inside it (a list's length).
    values: u32,
    /// In an `ARRAY[...]` group: subscript brackets opened directly inside it and not
    /// yet closed, so that their `]` does not close the array.
    inner_brackets: usize,
}

/// The rows of a `VALUES` list being written.
#[derive(Debug, Clone, Copy)]
struct Values {
    depth: usize,
    expect_row: bool,
    prev_row: Option<(usize, usize)>,
    sep_start: Option<usize>,
    /// Rows written so far, equal ones included.
    rows: u32,
}

/// Where the scan for table names stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Nothing,
    Table { write: bool },
    AfterName { write: bool },
    Alias { write: bool },
}

pub(crate) struct Output {
    pub(crate) normalized: String,
    pub(crate) kind: StatementKind,
    pub(crate) reads: Vec<String>,
    pub(crate) writes: Vec<String>,
    /// FNV-1a over the literal values written in the text (signs included), in order:
    /// texts that differ only in comments, whitespace or case agree on it.
    pub(crate) literals: u64,
    /// The longest collapsed list: values in an `IN (...)` or `ARRAY[...]`, rows in a
    /// `VALUES` list (0 when there is none).
    pub(crate) list_len: u32,
    pub(crate) paging: Option<Paging>,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

struct Normalizer {
    out: String,
    prev: Prev,
    /// The previous token was the keyword `IN`.
    after_in: bool,
    /// The previous token was the keyword `ARRAY`.
    after_array: bool,
    /// The previous keyword, lowercased (for `DELETE FROM`).
    prev_keyword: &'static str,
    /// A unary sign written last: where it starts in `out` and what preceded it.
    sign: Option<(usize, Prev)>,
    groups: Vec<Group>,
    overflow: usize,
    values: Option<Values>,
    kind: Option<StatementKind>,
    with_pending: bool,
    expect: Expect,
    reads: Vec<String>,
    writes: Vec<String>,
    list_len: u32,
    /// Seen outside parentheses: `LIMIT` or `FETCH`, `OFFSET`, `ORDER`.
    limit: bool,
    offset: bool,
    order: bool,
    /// The previous token was a range comparison (`>`, `<`, `>=`, `<=`).
    range_op: bool,
    /// A range comparison against a value (or a row of values) was seen.
    range: bool,
}

pub(crate) fn normalize(sql: &str) -> Output {
    let mut n = Normalizer {
        out: String::with_capacity(sql.len() + 8),
        prev: Prev::Start,
        after_in: false,
        after_array: false,
        prev_keyword: "",
        sign: None,
        groups: Vec::new(),
        overflow: 0,
        values: None,
        kind: None,
        with_pending: false,
        expect: Expect::Nothing,
        reads: Vec::new(),
        writes: Vec::new(),
        list_len: 0,
        limit: false,
        offset: false,
        order: false,
        range_op: false,
        range: false,
    };
    let mut literals = FNV_OFFSET;
    let mut literal = |bytes: &[u8]| {
        for &b in bytes.iter().chain(&[0xff]) {
            literals ^= u64::from(b.to_ascii_lowercase());
            literals = literals.wrapping_mul(FNV_PRIME);
        }
    };
    let mut lexer = Lexer::new(sql);
    let mut minus = false;
    while let Some(tok) = lexer.next() {
        match tok {
            Tok::Number | Tok::Str => {
                if minus {
                    literal(b"-");
                }
                literal(lexer.text().as_bytes());
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("true") || w.eq_ignore_ascii_case("false") => {
                literal(w.as_bytes());
            }
            _ => {}
        }
        minus = tok == Tok::Op("-");
        n.range = n.range || (n.range_op && matches!(tok, Tok::Param | Tok::Number | Tok::Str | Tok::LParen));
        n.range_op = matches!(tok, Tok::Op(">" | "<" | ">=" | "<="));
        n.token(tok);
    }
    // A trailing `;` does not change the statement.
    loop {
        let trimmed = n.out.trim_end_matches(' ');
        if let Some(rest) = trimmed.strip_suffix(';') {
            let len = rest.trim_end_matches(' ').len();
            n.out.truncate(len);
        } else {
            break;
        }
    }
    let paging = if n.offset {
        Some(Paging::Offset)
    } else if n.limit && n.order && n.range {
        Some(Paging::Keyset)
    } else {
        None
    };
    Output {
        normalized: n.out,
        kind: n.kind.unwrap_or(StatementKind::Other),
        reads: n.reads,
        writes: n.writes,
        literals,
        list_len: n.list_len,
        paging,
    }
}

impl Normalizer {
    fn depth(&self) -> usize {
        self.groups.len() + self.overflow
    }

    fn space_before(&mut self, tok: &Tok<'_>) {
        let no_space = match (self.prev, tok) {
            (Prev::Start, _) => true,
            // Joined, these would read back as other tokens (`...`, `:::`).
            (Prev::Dot, Tok::Dot | Tok::Ellipsis) | (Prev::Other, Tok::Cast) => false,
            (_, Tok::RParen | Tok::RBracket | Tok::Comma | Tok::Dot | Tok::Cast | Tok::Semi) => true,
            (Prev::Open | Prev::Dot | Prev::Cast, _) => true,
            // A function call, but not `INSERT INTO t (a, b)`.
            (Prev::Ident, Tok::LParen) => !matches!(self.expect, Expect::AfterName { .. }),
            (Prev::Ident | Prev::Value | Prev::Close, Tok::LBracket) => true,
            (Prev::Keyword, Tok::LBracket) => self.after_array,
            _ => false,
        };
        if !no_space {
            self.out.push(' ');
        }
    }

    /// Notes, for the innermost group, whether this token keeps it a pure value list.
    fn mark_group(&mut self, is_value: bool, is_comma: bool) {
        if self.overflow > 0 {
            return;
        }
        if let Some(g) = self.groups.last_mut() {
            if is_value {
                g.any_value = true;
                g.values = g.values.saturating_add(1);
            } else if !is_comma {
                g.only_values = false;
            }
        }
    }

    /// Tracks the `VALUES` row list for a token at the current depth.
    fn values_step(&mut self, tok: &Tok<'_>) {
        let depth = self.depth();
        let Some(v) = self.values.as_mut() else { return };
        if depth != v.depth {
            return;
        }
        match tok {
            Tok::LParen if v.expect_row => {}
            Tok::Comma if !v.expect_row => {
                v.sep_start = Some(self.out.len());
                v.expect_row = true;
            }
            _ => self.values = None,
        }
    }

    fn token(&mut self, tok: Tok<'_>) {
        let sign = self.sign.take();
        if sign.is_some() && tok != Tok::Number {
            // The sign was an operator after all: it ends a pure value list.
            self.mark_group(false, false);
        }
        self.values_step(&tok);
        match tok {
            Tok::Word(w) => self.word(w),
            Tok::Quoted(q) => {
                self.mark_group(false, false);
                self.space_before(&tok);
                self.out.push_str(q);
                let name = matches!(self.expect, Expect::Table { .. }).then(|| unquote(q));
                self.table_name(name);
                self.prev = Prev::Ident;
            }
            Tok::Number => {
                if let Some((pos, before)) = sign {
                    // `- 1` is the literal `-1`.
                    self.out.truncate(pos);
                    self.prev = before;
                }
                self.value(&tok);
            }
            Tok::Str | Tok::Param => self.value(&tok),
            Tok::Ellipsis => {
                self.mark_group(true, false);
                self.space_before(&tok);
                self.out.push_str("...");
                self.prev = Prev::Value;
                self.expect = Expect::Nothing;
            }
            Tok::Op(op) => {
                let unary = (op == "-" || op == "+") && !self.prev.is_value_like();
                if !unary {
                    self.mark_group(false, false);
                }
                let pos = self.out.len();
                self.space_before(&tok);
                self.out.push_str(if op == "!=" { "<>" } else { op });
                if unary {
                    self.sign = Some((pos, self.prev));
                }
                self.prev = Prev::Op;
                self.expect = Expect::Nothing;
            }
            Tok::Cast => self.punct(&tok, "::", Prev::Cast),
            Tok::Dot => {
                // `schema.table`: the table is the last part.
                if let Expect::AfterName { write } = self.expect {
                    if write {
                        self.writes.pop()
                    } else {
                        self.reads.pop()
                    };
                    self.mark_group(false, false);
                    self.space_before(&tok);
                    self.out.push('.');
                    self.prev = Prev::Dot;
                    self.expect = Expect::Table { write };
                    return;
                }
                self.punct(&tok, ".", Prev::Dot);
            }
            Tok::Comma => {
                self.mark_group(false, true);
                self.space_before(&tok);
                self.out.push(',');
                self.prev = Prev::Comma;
                self.expect = match self.expect {
                    Expect::AfterName { write } | Expect::Alias { write } => Expect::Table { write },
                    _ => Expect::Nothing,
                };
            }
            Tok::Semi => {
                self.punct(&tok, ";", Prev::Semi);
                self.values = None;
            }
            Tok::LParen => self.open(&tok, false),
            Tok::RParen => self.close(&tok),
            Tok::LBracket if self.after_array => self.open(&tok, true),
            Tok::LBracket => {
                if let Some(g) = self.top_array() {
                    g.inner_brackets += 1;
                }
                self.punct(&tok, "[", Prev::Open);
            }
            Tok::RBracket => match self.top_array() {
                Some(g) if g.inner_brackets > 0 => {
                    g.inner_brackets -= 1;
                    self.punct(&tok, "]", Prev::Close);
                }
                Some(_) => self.close(&tok),
                None => self.punct(&tok, "]", Prev::Close),
            },
            Tok::Other(c) => {
                let mut buf = [0u8; 4];
                let s = char::from(c).encode_utf8(&mut buf);
                self.mark_group(false, false);
                self.space_before(&tok);
                self.out.push_str(s);
                self.prev = Prev::Other;
                self.expect = Expect::Nothing;
            }
        }
        self.after_in = matches!(tok, Tok::Word(w) if w.eq_ignore_ascii_case("in"));
        self.after_array = matches!(tok, Tok::Word(w) if w.eq_ignore_ascii_case("array"));
    }

    fn punct(&mut self, tok: &Tok<'_>, text: &str, prev: Prev) {
        self.mark_group(false, false);
        self.space_before(tok);
        self.out.push_str(text);
        self.prev = prev;
        self.expect = Expect::Nothing;
    }

    fn value(&mut self, tok: &Tok<'_>) {
        self.mark_group(true, false);
        self.space_before(tok);
        self.out.push('?');
        self.prev = Prev::Value;
        self.expect = Expect::Nothing;
    }

    /// The innermost group, if it is an `ARRAY[...]` (and groups are tracked).
    fn top_array(&mut self) -> Option<&mut Group> {
        if self.overflow > 0 {
            return None;
        }
        self.groups.last_mut().filter(|g| g.kind == GroupKind::Array)
    }

    /// Opens a group: `(`, or `[` after `ARRAY` (`array`).
    fn open(&mut self, tok: &Tok<'_>, array: bool) {
        if array && (self.overflow > 0 || self.groups.len() >= MAX_GROUPS) {
            // Too deep to track: written as it is, and its `]` as punctuation.
            if let Some(g) = self.top_array() {
                g.inner_brackets += 1;
            }
            self.punct(tok, "[", Prev::Open);
            return;
        }
        self.mark_group(false, false);
        let kind = if array {
            GroupKind::Array
        } else if self.after_in {
            GroupKind::In
        } else if self.values.is_some_and(|v| v.expect_row && v.depth == self.depth()) {
            GroupKind::ValuesRow
        } else {
            GroupKind::Plain
        };
        self.space_before(tok);
        let open = self.out.len();
        self.out.push(if array { '[' } else { '(' });
        if self.overflow > 0 || self.groups.len() >= MAX_GROUPS {
            self.overflow += 1;
        } else {
            self.groups.push(Group {
                open,
                kind,
                only_values: true,
                any_value: false,
                values: 0,
                inner_brackets: 0,
            });
        }
        self.prev = Prev::Open;
        self.expect = Expect::Nothing;
    }

    /// Closes a group: `)`, or `]` when the innermost group is an `ARRAY[...]`.
    fn close(&mut self, tok: &Tok<'_>) {
        let closing = if *tok == Tok::RBracket { ']' } else { ')' };
        self.space_before(tok);
        self.prev = Prev::Close;
        self.expect = Expect::Nothing;
        if self.overflow > 0 {
            self.overflow -= 1;
            self.out.push(closing);
            return;
        }
        let Some(g) = self.groups.pop() else {
            self.out.push(closing);
            return;
        };
        // A list collapses only when closed by its own bracket (`(` by `)`, `[` by `]`).
        let matched = (g.kind == GroupKind::Array) == (closing == ']');
        if matched && matches!(g.kind, GroupKind::In | GroupKind::Array) && g.only_values && g.any_value {
            self.out.truncate(g.open + 1);
            self.out.push_str("...");
            self.list_len = self.list_len.max(g.values);
        }
        self.out.push(closing);
        // The closed group is one token of its parent.
        self.mark_group(false, false);
        if g.kind == GroupKind::ValuesRow {
            let end = self.out.len();
            if let Some(v) = self.values.as_mut() {
                v.rows = v.rows.saturating_add(1);
                self.list_len = self.list_len.max(v.rows);
                let same = v.prev_row.is_some_and(|(s, e)| self.out.get(s..e) == self.out.get(g.open..end));
                match (same, v.sep_start) {
                    (true, Some(sep)) => self.out.truncate(sep),
                    _ => v.prev_row = Some((g.open, end)),
                }
                v.expect_row = false;
                v.sep_start = None;
            }
        }
        if self.values.is_some_and(|v| v.depth > self.depth()) {
            self.values = None;
        }
    }

    fn word(&mut self, w: &str) {
        let mut lower_buf = [0u8; 16];
        let keyword = if w.len() <= lower_buf.len() {
            let lower = &mut lower_buf[..w.len()];
            lower.copy_from_slice(w.as_bytes());
            lower.make_ascii_lowercase();
            std::str::from_utf8(lower).ok().and_then(keyword)
        } else {
            None
        };
        let tok = Tok::Word(w);
        if let Some(kw) = keyword {
            if kw == "true" || kw == "false" {
                self.value(&tok);
                return;
            }
            self.mark_group(false, false);
            self.space_before(&tok);
            let start = self.out.len();
            self.out.push_str(w);
            self.out[start..].make_ascii_uppercase();
            self.prev = Prev::Keyword;
            self.statement_word(kw);
            self.table_keyword(kw);
            if kw == "values" {
                self.values = Some(Values {
                    depth: self.depth(),
                    expect_row: true,
                    prev_row: None,
                    sep_start: None,
                    rows: 0,
                });
            }
            if self.depth() == 0 {
                match kw {
                    "limit" | "fetch" => self.limit = true,
                    "offset" => self.offset = true,
                    "order" => self.order = true,
                    _ => {}
                }
            }
            self.prev_keyword = kw;
        } else {
            self.mark_group(false, false);
            self.space_before(&tok);
            let start = self.out.len();
            self.out.push_str(w);
            self.out[start..].make_ascii_lowercase();
            self.prev = Prev::Ident;
            if self.kind.is_none() && !self.with_pending {
                self.kind = Some(StatementKind::Other);
            }
            let name = matches!(self.expect, Expect::Table { .. }).then(|| self.out[start..].to_owned());
            self.table_name(name);
        }
    }

    fn statement_word(&mut self, kw: &str) {
        let main = match kw {
            "select" => Some(StatementKind::Select),
            "insert" | "replace" => Some(StatementKind::Insert),
            "update" => Some(StatementKind::Update),
            "delete" => Some(StatementKind::Delete),
            _ => None,
        };
        if self.kind.is_some() {
            return;
        }
        if self.with_pending {
            if self.depth() == 0
                && let Some(k) = main
            {
                self.kind = Some(k);
                self.with_pending = false;
            }
            return;
        }
        if kw == "with" {
            self.with_pending = true;
            return;
        }
        self.kind = Some(main.unwrap_or(StatementKind::Other));
    }

    fn table_keyword(&mut self, kw: &str) {
        self.expect = match (kw, self.expect) {
            ("from", _) => Expect::Table { write: self.prev_keyword == "delete" },
            ("join" | "using", _) => Expect::Table { write: false },
            ("into" | "update" | "truncate", _) => Expect::Table { write: true },
            // `TRUNCATE TABLE t`, `FROM ONLY t`, `JOIN LATERAL`.
            ("table" | "only" | "lateral", Expect::Table { write }) => Expect::Table { write },
            ("as", Expect::AfterName { write }) => Expect::Alias { write },
            _ => Expect::Nothing,
        };
    }

    /// An identifier was written; `name` is its table name when a table was expected.
    fn table_name(&mut self, name: Option<String>) {
        self.expect = match self.expect {
            Expect::Table { write } => {
                let list = if write { &mut self.writes } else { &mut self.reads };
                list.extend(name);
                Expect::AfterName { write }
            }
            Expect::AfterName { write } | Expect::Alias { write } => Expect::Alias { write },
            Expect::Nothing => Expect::Nothing,
        };
    }
}

/// The name inside a quoted identifier, with doubled quotes undone.
fn unquote(q: &str) -> String {
    let Some(&first) = q.as_bytes().first() else { return String::new() };
    let inner = q.strip_prefix(char::from(first)).unwrap_or(q);
    let inner = inner.strip_suffix(char::from(first)).unwrap_or(inner);
    let mut pair = [0u8; 2];
    pair[0] = first;
    pair[1] = first;
    let doubled = std::str::from_utf8(&pair).unwrap_or("\"\"");
    inner.replace(doubled, &doubled[..1])
}

/// The keyword `lower` is, if any (a fixed list covering SQLite and PostgreSQL's common
/// words; anything else is an identifier and keeps its lowercase spelling).
fn keyword(lower: &str) -> Option<&'static str> {
    const KEYWORDS: &[&str] = &[
        "abort",
        "add",
        "all",
        "alter",
        "analyze",
        "and",
        "any",
        "array",
        "as",
        "asc",
        "begin",
        "between",
        "by",
        "case",
        "cast",
        "check",
        "collate",
        "column",
        "commit",
        "conflict",
        "constraint",
        "create",
        "cross",
        "default",
        "delete",
        "desc",
        "distinct",
        "do",
        "drop",
        "else",
        "end",
        "escape",
        "except",
        "exists",
        "explain",
        "false",
        "fetch",
        "filter",
        "first",
        "for",
        "foreign",
        "from",
        "full",
        "glob",
        "group",
        "having",
        "if",
        "ignore",
        "ilike",
        "in",
        "index",
        "inner",
        "insert",
        "intersect",
        "interval",
        "into",
        "is",
        "join",
        "key",
        "lateral",
        "left",
        "like",
        "limit",
        "locked",
        "match",
        "natural",
        "next",
        "not",
        "nothing",
        "nowait",
        "null",
        "of",
        "offset",
        "on",
        "only",
        "or",
        "order",
        "outer",
        "over",
        "partition",
        "pragma",
        "primary",
        "recursive",
        "references",
        "regexp",
        "replace",
        "returning",
        "right",
        "rollback",
        "row",
        "rows",
        "select",
        "set",
        "share",
        "similar",
        "skip",
        "some",
        "table",
        "temp",
        "temporary",
        "then",
        "to",
        "transaction",
        "trigger",
        "true",
        "truncate",
        "union",
        "unique",
        "update",
        "using",
        "vacuum",
        "values",
        "view",
        "when",
        "where",
        "window",
        "with",
        "within",
    ];
    KEYWORDS.binary_search(&lower).ok().map(|i| KEYWORDS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_list_is_sorted_for_binary_search() {
        // binary_search needs the order; an unsorted list would silently miss keywords.
        for w in ["abort", "select", "within", "values", "in", "true"] {
            assert_eq!(keyword(w), Some(w));
        }
        assert_eq!(keyword("users"), None);
    }

    #[test]
    fn unquote_undoes_doubled_quotes() {
        assert_eq!(unquote("\"My \"\"T\"\"\""), "My \"T\"");
        assert_eq!(unquote("`t`"), "t");
        assert_eq!(unquote("\"open"), "open");
    }
}
