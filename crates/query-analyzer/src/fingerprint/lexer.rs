//! A single-pass SQL tokenizer for the SQLite and PostgreSQL dialects. It never fails:
//! anything it does not recognise becomes a one-character token, and an unterminated
//! quote or comment runs to the end of the input.
//!
//! Every slice it returns starts and ends on an ASCII byte or the end of the input, so
//! slicing never splits a UTF-8 character.

/// One token. Comments and whitespace are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok<'a> {
    /// An unquoted identifier or keyword, as written.
    Word(&'a str),
    /// A quoted identifier (`"x"`, `` `x` ``), quotes included, as written.
    Quoted(&'a str),
    /// A number literal.
    Number,
    /// A string, blob, bit-string or dollar-quoted literal.
    Str,
    /// A bind placeholder: `?`, `?1`, `$1`, `:name`, `@name`, `$name`, `%s`, `%(name)s`.
    Param,
    /// `...`, the normalised form of a collapsed list.
    Ellipsis,
    /// An operator (`=`, `<>`, `||`, `->>`, ...).
    Op(&'a str),
    /// `::`, PostgreSQL's cast.
    Cast,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Semi,
    Dot,
    /// Any other single ASCII character.
    Other(u8),
}

pub(crate) struct Lexer<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    /// Where the token returned last starts.
    start: usize,
}

#[inline]
fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

#[inline]
fn is_ident_cont(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

#[inline]
fn is_op_char(c: u8) -> bool {
    matches!(
        c,
        b'+' | b'-'
            | b'*'
            | b'/'
            | b'<'
            | b'>'
            | b'='
            | b'~'
            | b'!'
            | b'@'
            | b'#'
            | b'%'
            | b'^'
            | b'&'
            | b'|'
    )
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        Self { s, b: s.as_bytes(), i: 0, start: 0 }
    }

    /// The text of the token returned last, as written (a literal's value).
    pub(crate) fn text(&self) -> &'a str {
        &self.s[self.start..self.i]
    }

    #[inline]
    fn at(&self, i: usize) -> u8 {
        self.b.get(i).copied().unwrap_or(0)
    }

    /// Skips whitespace, ASCII control characters and comments.
    fn skip_trivia(&mut self) {
        loop {
            let c = self.at(self.i);
            if self.i >= self.b.len() {
                return;
            }
            if c <= b' ' || c == 0x7f {
                self.i += 1;
            } else if c == b'-' && self.at(self.i + 1) == b'-' {
                match self.b[self.i..].iter().position(|&x| x == b'\n') {
                    Some(p) => self.i += p + 1,
                    None => self.i = self.b.len(),
                }
            } else if c == b'/' && self.at(self.i + 1) == b'*' {
                match self.s[self.i + 2..].find("*/") {
                    Some(p) => self.i += 2 + p + 2,
                    None => self.i = self.b.len(),
                }
            } else {
                return;
            }
        }
    }

    /// Ends a quoted run opened at `self.i` by `q`; a doubled `q` is an escaped quote,
    /// and with `backslash` a backslash escapes the next byte.
    fn skip_quoted(&mut self, q: u8, backslash: bool) {
        let mut i = self.i + 1;
        while i < self.b.len() {
            let c = self.b[i];
            if backslash && c == b'\\' {
                i += 2;
                continue;
            }
            if c == q {
                if self.at(i + 1) == q {
                    i += 2;
                    continue;
                }
                self.i = i + 1;
                return;
            }
            i += 1;
        }
        self.i = self.b.len();
    }

    fn number(&mut self) {
        let b = self.b;
        let mut i = self.i;
        if b[i] == b'0' && matches!(self.at(i + 1), b'x' | b'X' | b'b' | b'B' | b'o' | b'O') {
            i += 2;
            while i < b.len() && (b[i].is_ascii_hexdigit() || b[i] == b'_') {
                i += 1;
            }
            self.i = i;
            return;
        }
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
        if self.at(i) == b'.' && self.at(i + 1) != b'.' {
            i += 1;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
                i += 1;
            }
        }
        if matches!(self.at(i), b'e' | b'E') {
            let j = if matches!(self.at(i + 1), b'+' | b'-') { i + 2 } else { i + 1 };
            if self.at(j).is_ascii_digit() {
                i = j;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
        }
        self.i = i;
    }

    fn ident_end(&self, from: usize) -> usize {
        let mut i = from;
        while i < self.b.len() && is_ident_cont(self.b[i]) {
            i += 1;
        }
        i
    }

    /// At a `$`: a numbered or named placeholder, or a dollar-quoted string.
    fn dollar(&mut self) -> Tok<'a> {
        let start = self.i;
        let next = self.at(start + 1);
        if next.is_ascii_digit() {
            let mut i = start + 1;
            while i < self.b.len() && self.b[i].is_ascii_digit() {
                i += 1;
            }
            self.i = i;
            return Tok::Param;
        }
        // A dollar-quote tag: `$$` or `$tag$` (tag letters, digits, underscores).
        let mut i = start + 1;
        if next == b'$' || is_ident_start(next) {
            while i < self.b.len()
                && (self.b[i].is_ascii_alphanumeric() || self.b[i] == b'_' || self.b[i] >= 0x80)
            {
                i += 1;
            }
            if self.at(i) == b'$' {
                let tag = &self.s[start..=i];
                match self.s[i + 1..].find(tag) {
                    Some(p) => self.i = i + 1 + p + tag.len(),
                    None => self.i = self.b.len(),
                }
                return Tok::Str;
            }
            if i > start + 1 {
                // `$name`: SQLite's named parameter.
                self.i = self.ident_end(i);
                return Tok::Param;
            }
        }
        self.i = start + 1;
        Tok::Other(b'$')
    }

    fn operator(&mut self) -> Tok<'a> {
        let start = self.i;
        let mut i = start;
        while i < self.b.len() && is_op_char(self.b[i]) {
            let c = self.b[i];
            if i > start && ((c == b'-' && self.at(i + 1) == b'-') || (c == b'/' && self.at(i + 1) == b'*')) {
                break;
            }
            i += 1;
        }
        // PostgreSQL's rule: a multi-character operator cannot end in `+` or `-` unless it
        // contains one of `~ ! @ # % ^ & |`, so `=-1` is `=` then `-1`.
        let has_special = self.b[start..i]
            .iter()
            .any(|c| matches!(c, b'~' | b'!' | b'@' | b'#' | b'%' | b'^' | b'&' | b'|'));
        if !has_special {
            while i - start > 1 && matches!(self.b[i - 1], b'+' | b'-') {
                i -= 1;
            }
        }
        self.i = i;
        Tok::Op(&self.s[start..i])
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Tok<'a>;

    fn next(&mut self) -> Option<Tok<'a>> {
        self.skip_trivia();
        let start = self.i;
        self.start = start;
        let c = *self.b.get(start)?;
        let tok = match c {
            b'\'' => {
                self.skip_quoted(b'\'', false);
                Tok::Str
            }
            b'"' | b'`' => {
                self.skip_quoted(c, false);
                Tok::Quoted(&self.s[start..self.i])
            }
            b'0'..=b'9' => {
                self.number();
                Tok::Number
            }
            b'.' if self.at(start + 1) == b'.' && self.at(start + 2) == b'.' => {
                self.i += 3;
                Tok::Ellipsis
            }
            b'.' if self.at(start + 1).is_ascii_digit() => {
                self.number();
                Tok::Number
            }
            b'.' => {
                self.i += 1;
                Tok::Dot
            }
            b'?' => {
                let mut i = start + 1;
                while i < self.b.len() && self.b[i].is_ascii_digit() {
                    i += 1;
                }
                self.i = i;
                Tok::Param
            }
            b'$' => self.dollar(),
            b':' if self.at(start + 1) == b':' => {
                self.i += 2;
                Tok::Cast
            }
            b':' | b'@' if is_ident_start(self.at(start + 1)) => {
                self.i = self.ident_end(start + 1);
                Tok::Param
            }
            b'(' => {
                self.i += 1;
                Tok::LParen
            }
            b')' => {
                self.i += 1;
                Tok::RParen
            }
            b'[' => {
                self.i += 1;
                Tok::LBracket
            }
            b']' => {
                self.i += 1;
                Tok::RBracket
            }
            b',' => {
                self.i += 1;
                Tok::Comma
            }
            b';' => {
                self.i += 1;
                Tok::Semi
            }
            c if is_ident_start(c) => {
                let next = self.at(start + 1);
                // Prefixed literals: E'..' (backslash escapes), X'..' (blob), B'..', N'..', U&'..'.
                if next == b'\'' && matches!(c, b'e' | b'E' | b'x' | b'X' | b'b' | b'B' | b'n' | b'N') {
                    self.i = start + 1;
                    self.skip_quoted(b'\'', matches!(c, b'e' | b'E'));
                    Tok::Str
                } else if matches!(c, b'u' | b'U') && next == b'&' && self.at(start + 2) == b'\'' {
                    self.i = start + 2;
                    self.skip_quoted(b'\'', false);
                    Tok::Str
                } else {
                    self.i = self.ident_end(start + 1);
                    Tok::Word(&self.s[start..self.i])
                }
            }
            // Python's DB-API placeholders (psycopg, Django): `%s` and `%(name)s`.
            b'%' if self.at(start + 1) == b's' && !is_ident_cont(self.at(start + 2)) => {
                self.i = start + 2;
                Tok::Param
            }
            b'%' if self.at(start + 1) == b'(' && is_ident_start(self.at(start + 2)) => {
                let close = self.ident_end(start + 2);
                if self.at(close) == b')' && self.at(close + 1) == b's' && !is_ident_cont(self.at(close + 2))
                {
                    self.i = close + 2;
                    Tok::Param
                } else {
                    self.operator()
                }
            }
            c if is_op_char(c) => self.operator(),
            other => {
                self.i += 1;
                Tok::Other(other)
            }
        };
        Some(tok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok<'_>> {
        Lexer::new(s).collect()
    }

    #[test]
    fn placeholders_of_every_style() {
        for p in ["?", "?12", "$1", ":name", "@name", "$name", "%s", "%(user_id)s"] {
            assert_eq!(toks(p), vec![Tok::Param], "{p}");
        }
    }

    #[test]
    fn modulo_is_not_a_placeholder() {
        assert_eq!(toks("a % sx"), vec![Tok::Word("a"), Tok::Op("%"), Tok::Word("sx")]);
        assert_eq!(
            toks("a %(b) s"),
            vec![Tok::Word("a"), Tok::Op("%"), Tok::LParen, Tok::Word("b"), Tok::RParen, Tok::Word("s")]
        );
        assert_eq!(toks("a%2"), vec![Tok::Word("a"), Tok::Op("%"), Tok::Number]);
    }

    #[test]
    fn literals_and_quotes() {
        assert_eq!(toks("'it''s'"), vec![Tok::Str]);
        assert_eq!(toks(r"E'it\'s'"), vec![Tok::Str]);
        assert_eq!(toks("X'00ff'"), vec![Tok::Str]);
        assert_eq!(toks("$$a ' b$$"), vec![Tok::Str]);
        assert_eq!(toks("$fn$ x $$ y $fn$ z"), vec![Tok::Str, Tok::Word("z")]);
        assert_eq!(toks("1.5e-3 .5 0xFF"), vec![Tok::Number, Tok::Number, Tok::Number]);
        assert_eq!(toks("\"My Table\""), vec![Tok::Quoted("\"My Table\"")]);
    }

    #[test]
    fn operators_follow_postgres_sign_rule() {
        assert_eq!(toks("a=-1"), vec![Tok::Word("a"), Tok::Op("="), Tok::Op("-"), Tok::Number]);
        assert_eq!(toks("a->>'k'"), vec![Tok::Word("a"), Tok::Op("->>"), Tok::Str]);
        assert_eq!(toks("a::int"), vec![Tok::Word("a"), Tok::Cast, Tok::Word("int")]);
    }

    #[test]
    fn text_is_the_last_token_as_written() {
        let mut lexer = Lexer::new("a = 'x''y' /* c */ AND b=-1.5");
        let mut texts = Vec::new();
        while lexer.next().is_some() {
            texts.push(lexer.text());
        }
        assert_eq!(texts, ["a", "=", "'x''y'", "AND", "b", "=", "-", "1.5"]);
    }

    #[test]
    fn comments_and_unterminated_runs() {
        assert_eq!(toks("a -- x\n b /* c */ d"), vec![Tok::Word("a"), Tok::Word("b"), Tok::Word("d")]);
        assert_eq!(toks("a /* never closed"), vec![Tok::Word("a")]);
        assert_eq!(toks("a 'never closed"), vec![Tok::Word("a"), Tok::Str]);
        assert_eq!(toks("\"never closed"), vec![Tok::Quoted("\"never closed")]);
    }
}
