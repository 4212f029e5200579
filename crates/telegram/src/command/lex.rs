//! Splits a command's arguments into words: whitespace separates, `"…"` and `'…'` quote,
//! and inside double quotes `\"` and `\\` escape.

use super::CommandError;

/// One word of the arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Word {
    pub(super) text: String,
    /// Quoted words are always values: never flags, never links.
    pub(super) quoted: bool,
}

pub(super) fn words(input: &str) -> Result<Vec<Word>, CommandError> {
    let mut out = Vec::new();
    let mut chars = input.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else { break };
        let mut text = String::new();
        let mut quoted = false;
        // A word may join quoted and bare pieces: a"b c"d is one word `ab cd`.
        let _ = first;
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            match c {
                '"' => {
                    quoted = true;
                    loop {
                        match chars.next() {
                            None => return Err(CommandError::UnclosedQuote { quote: '"' }),
                            Some('"') => break,
                            Some('\\') => match chars.next() {
                                Some(e @ ('"' | '\\')) => text.push(e),
                                Some(other) => {
                                    text.push('\\');
                                    text.push(other);
                                }
                                None => return Err(CommandError::UnclosedQuote { quote: '"' }),
                            },
                            Some(other) => text.push(other),
                        }
                    }
                }
                '\'' => {
                    quoted = true;
                    loop {
                        match chars.next() {
                            None => return Err(CommandError::UnclosedQuote { quote: '\'' }),
                            Some('\'') => break,
                            Some(other) => text.push(other),
                        }
                    }
                }
                other => text.push(other),
            }
        }
        out.push(Word { text, quoted });
    }
    Ok(out)
}

/// Quotes `value` when it would not read back as one plain word.
pub(super) fn quote(value: &str, force: bool) -> String {
    let plain = !force
        && !value.is_empty()
        && !value.starts_with('-')
        && !value.chars().any(|c| c.is_whitespace() || c == '"' || c == '\'' || c == '\\');
    if plain {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(input: &str) -> Vec<String> {
        words(input).unwrap().into_iter().map(|w| w.text).collect()
    }

    #[test]
    fn splits_and_quotes() {
        assert_eq!(texts("  a  b\tc\n"), ["a", "b", "c"]);
        assert_eq!(texts(r#"-n "my file.mkv" x"#), ["-n", "my file.mkv", "x"]);
        assert_eq!(texts(r#""a \"q\" \\ \n""#), [r#"a "q" \ \n"#]);
        assert_eq!(texts("'it''s'"), ["its"]);
        assert_eq!(texts(r#""""#), [""]);
        assert!(words("\"open").is_err());
        assert!(words("'open").is_err());
        assert!(words(r#""trailing\"#).is_err());
    }

    #[test]
    fn quote_round_trips() {
        for v in ["plain", "", "-dash", "a b", "q\"uote", "back\\slash", "it's"] {
            let w = words(&quote(v, false)).unwrap();
            assert_eq!(w.len(), 1);
            assert_eq!(w[0].text, v);
        }
    }
}
