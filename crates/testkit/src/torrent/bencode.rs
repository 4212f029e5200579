//! Bencode (BEP 3): integers, byte strings, lists and dictionaries with sorted keys.
//!
//! The encoder always writes the canonical form (dictionary keys sorted as raw bytes, no
//! duplicates), which is what makes an info hash reproducible. The decoder is strict: it
//! accepts only canonical input (no leading zeros, no `-0`, keys sorted and unique), reads
//! the whole input and nothing more, and refuses nesting deeper than [`MAX_DEPTH`], so a
//! hostile input gets an error rather than a panic or a stack overflow.

use std::collections::BTreeMap;

use crate::{Error, Result};

/// How deeply lists and dictionaries may nest in input to [`decode`].
pub const MAX_DEPTH: usize = 64;

/// A bencoded value.
///
/// # Example
///
/// ```
/// use mltb_testkit::torrent::bencode::{self, Value};
///
/// let value = Value::dict([("spam", Value::from("eggs")), ("cow", Value::from(42))]);
/// assert_eq!(value.encode(), b"d3:cowi42e4:spam4:eggse");
/// assert_eq!(bencode::decode(b"d3:cowi42e4:spam4:eggse").unwrap(), value);
/// assert_eq!(value.get("spam").and_then(Value::as_str), Some("eggs"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `i42e`.
    Int(i64),
    /// `4:spam`: any bytes, not necessarily text.
    Bytes(Vec<u8>),
    /// `l…e`.
    List(Vec<Value>),
    /// `d…e`, keys in byte order (a `BTreeMap` keeps them so).
    Dict(BTreeMap<Vec<u8>, Value>),
}

impl Value {
    /// A dictionary from `(key, value)` pairs; a later duplicate key wins.
    pub fn dict<K, I>(entries: I) -> Self
    where
        K: Into<Vec<u8>>,
        I: IntoIterator<Item = (K, Value)>,
    {
        Value::Dict(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The canonical bencoding of this value.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Appends the canonical bencoding of this value to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(n) => {
                out.push(b'i');
                out.extend_from_slice(n.to_string().as_bytes());
                out.push(b'e');
            }
            Value::Bytes(bytes) => encode_bytes(bytes, out),
            Value::List(items) => {
                out.push(b'l');
                items.iter().for_each(|item| item.encode_into(out));
                out.push(b'e');
            }
            Value::Dict(entries) => {
                out.push(b'd');
                for (key, value) in entries {
                    encode_bytes(key, out);
                    value.encode_into(out);
                }
                out.push(b'e');
            }
        }
    }

    /// The value under `key` if this is a dictionary that has it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_dict()?.get(key.as_bytes())
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The bytes, if this is a byte string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// The text, if this is a byte string holding UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(self.as_bytes()?).ok()
    }

    /// The items, if this is a list.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(items) => Some(items),
            _ => None,
        }
    }

    /// The entries, if this is a dictionary.
    pub fn as_dict(&self) -> Option<&BTreeMap<Vec<u8>, Value>> {
        match self {
            Value::Dict(entries) => Some(entries),
            _ => None,
        }
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Int(n)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Bytes(s.as_bytes().to_vec())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Bytes(s.into_bytes())
    }
}

impl From<&[u8]> for Value {
    fn from(bytes: &[u8]) -> Self {
        Value::Bytes(bytes.to_vec())
    }
}

impl From<Vec<u8>> for Value {
    fn from(bytes: Vec<u8>) -> Self {
        Value::Bytes(bytes)
    }
}

impl From<Vec<Value>> for Value {
    fn from(items: Vec<Value>) -> Self {
        Value::List(items)
    }
}

fn encode_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(bytes.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(bytes);
}

/// Decodes exactly one canonical value that fills all of `input`.
///
/// Errors name the byte offset and what was expected there.
pub fn decode(input: &[u8]) -> Result<Value> {
    let mut decoder = Decoder { input, pos: 0 };
    let value = decoder.value(0)?;
    if decoder.pos != input.len() {
        return Err(decoder.error("the end of input after one value"));
    }
    Ok(value)
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Decoder<'_> {
    fn error(&self, expected: &str) -> Error {
        let found = match self.input.get(self.pos) {
            Some(b) if b.is_ascii_graphic() => format!("{:?}", *b as char),
            Some(b) => format!("byte 0x{b:02x}"),
            None => "the end of input".into(),
        };
        Error::Other(format!("bencode: expected {expected} at byte {}, found {found}", self.pos))
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn value(&mut self, depth: usize) -> Result<Value> {
        match self.peek() {
            Some(b'i') => {
                self.pos += 1;
                let n = self.integer(b'e')?;
                Ok(Value::Int(n))
            }
            Some(b'0'..=b'9') => Ok(Value::Bytes(self.bytes()?)),
            Some(b'l') | Some(b'd') if depth >= MAX_DEPTH => {
                Err(self.error(&format!("nesting of at most {MAX_DEPTH} levels")))
            }
            Some(b'l') => {
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek() != Some(b'e') {
                    if self.peek().is_none() {
                        return Err(self.error("a list item or 'e'"));
                    }
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(items))
            }
            Some(b'd') => {
                self.pos += 1;
                let mut entries = BTreeMap::new();
                let mut last: Option<Vec<u8>> = None;
                while self.peek() != Some(b'e') {
                    if !matches!(self.peek(), Some(b'0'..=b'9')) {
                        return Err(self.error("a byte-string key or 'e'"));
                    }
                    let key_at = self.pos;
                    let key = self.bytes()?;
                    if last.as_ref().is_some_and(|last| *last >= key) {
                        self.pos = key_at;
                        return Err(self.error("a key sorted after the previous one (keys sorted, unique)"));
                    }
                    let value = self.value(depth + 1)?;
                    last = Some(key.clone());
                    entries.insert(key, value);
                }
                self.pos += 1;
                Ok(Value::Dict(entries))
            }
            _ => Err(self.error("a value ('i', 'l', 'd' or a digit)")),
        }
    }

    /// A canonical decimal integer ending at `end`, which is consumed.
    fn integer(&mut self, end: u8) -> Result<i64> {
        let start = self.pos;
        let Some(len) = self.input[start..].iter().position(|&b| b == end) else {
            return Err(self.error(&format!("digits ending with {:?}", end as char)));
        };
        let text = &self.input[start..start + len];
        let digits = text.strip_prefix(b"-").unwrap_or(text);
        let canonical = !digits.is_empty()
            && digits.iter().all(u8::is_ascii_digit)
            && (digits == b"0" || digits[0] != b'0')
            && !(text.starts_with(b"-") && digits == b"0");
        let parsed = std::str::from_utf8(text).ok().and_then(|t| t.parse::<i64>().ok());
        match parsed {
            Some(n) if canonical => {
                self.pos = start + len + 1;
                Ok(n)
            }
            _ => Err(self.error("a canonical integer that fits in 64 bits")),
        }
    }

    fn bytes(&mut self) -> Result<Vec<u8>> {
        let at = self.pos;
        let len = self.integer(b':')?;
        let len = usize::try_from(len).map_err(|_| self.error("a byte-string length"))?;
        if len > self.input.len() - self.pos {
            self.pos = at;
            return Err(self.error(&format!("a byte string of {len} bytes within the input")));
        }
        let bytes = self.input[self.pos..self.pos + len].to_vec();
        self.pos += len;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn encodes_each_kind_canonically() {
        assert_eq!(Value::Int(0).encode(), b"i0e");
        assert_eq!(Value::Int(-42).encode(), b"i-42e");
        assert_eq!(Value::from("").encode(), b"0:");
        assert_eq!(Value::from(&[0u8, 255][..]).encode(), b"2:\x00\xff");
        assert_eq!(Value::List(vec![]).encode(), b"le");
        // Keys come out sorted whatever order they went in.
        let dict = Value::dict([("b", Value::from(1)), ("a", Value::from("x")), ("ab", Value::List(vec![]))]);
        assert_eq!(dict.encode(), b"d1:a1:x2:able1:bi1ee");
    }

    #[test]
    fn round_trips() {
        let value = Value::dict([
            ("info", Value::dict([("length", Value::from(i64::MAX)), ("name", Value::from("n"))])),
            (
                "list",
                Value::List(vec![Value::from(i64::MIN), Value::from(&b"\x00:e"[..]), Value::List(vec![])]),
            ),
        ]);
        assert_eq!(decode(&value.encode()).unwrap(), value);
    }

    #[test]
    fn rejects_non_canonical_and_truncated_input_with_the_offset() {
        for (input, offset) in [
            (&b"i03e"[..], 1),
            (b"i-0e", 1),
            (b"ie", 1),
            (b"i1", 1),
            (b"i99999999999999999999e", 1),
            (b"03:abc", 0),
            (b"5:abc", 0),
            (b"l", 1),
            (b"d1:b0:1:a0:e", 6),
            (b"d1:a0:1:a0:e", 6),
            (b"di1e0:e", 1),
            (b"i1ei2e", 3),
            (b"x", 0),
            (b"", 0),
        ] {
            let err = decode(input).unwrap_err().to_string();
            assert!(
                err.contains(&format!("at byte {offset}")),
                "{:?}: {err}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn refuses_deep_nesting_without_overflowing_the_stack() {
        let deep = [vec![b'l'; 100_000], vec![b'e'; 100_000]].concat();
        let err = decode(&deep).unwrap_err().to_string();
        assert!(err.contains("nesting of at most 64"), "{err}");
        let ok = [vec![b'l'; MAX_DEPTH], vec![b'e'; MAX_DEPTH]].concat();
        decode(&ok).unwrap();
    }

    fn any_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(Value::Int),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::List),
                proptest::collection::btree_map(proptest::collection::vec(any::<u8>(), 0..12), inner, 0..8)
                    .prop_map(Value::Dict),
            ]
        })
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(value in any_value()) {
            prop_assert_eq!(decode(&value.encode()).unwrap(), value);
        }

        /// Whatever the input, decoding answers (a value or an error) without panicking,
        /// and whatever it accepts encodes back to the very same bytes.
        #[test]
        fn decode_accepts_only_canonical_bytes(input in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(value) = decode(&input) {
                prop_assert_eq!(value.encode(), input);
            }
        }

        #[test]
        fn decode_survives_mangled_encodings(value in any_value(), cut in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let mut bytes = value.encode();
            let at = cut.index(bytes.len());
            bytes[at] = byte;
            if let Ok(decoded) = decode(&bytes) {
                prop_assert_eq!(decoded.encode(), bytes);
            }
        }
    }

    #[test]
    fn accessors_answer_only_for_their_kind() {
        let v = decode(b"d1:ai7e1:b2:hi1:cl0:ee").unwrap();
        assert_eq!(v.get("a").and_then(Value::as_int), Some(7));
        assert_eq!(v.get("b").and_then(Value::as_str), Some("hi"));
        assert_eq!(v.get("c").and_then(Value::as_list).map(<[Value]>::len), Some(1));
        assert_eq!(v.get("a").and_then(Value::as_bytes), None);
        assert_eq!(v.get("z"), None);
        assert_eq!(Value::Int(1).get("a"), None);
    }
}
