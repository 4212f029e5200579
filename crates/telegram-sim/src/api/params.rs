//! Request parameters from the query string and a JSON, urlencoded or multipart body,
//! read the way the official server reads them (td's `HttpReader`, telegram-bot-api's
//! `Query` and `Client::get_integer_arg`/`to_bool`):
//!
//! - every parameter is a string: a JSON string value is decoded, any other JSON value
//!   (number, boolean, `null`, object, array) is kept as its JSON text, so `null` is the
//!   string `null`;
//! - a malformed JSON body is not an error: the parameters read before the fault are kept
//!   and the rest is ignored, and the method then reports what is missing;
//! - with a parameter given twice, the first wins (the query string comes first);
//! - integers are read like td's `to_integer`: an optional `-` and the leading digits,
//!   anything else is 0 (`"12abc"` is 12, `"abc"` and `true` are 0), never an error;
//! - booleans are `true`, `yes` or `1` (any case);
//! - more than 1 MiB of parameters (`MAX_TOTAL_PARAMETERS_LENGTH`) is refused with a bare
//!   413 from the HTTP layer.
//!
//! Multipart file parts are streamed to disk while they are hashed and counted, so a
//! 2 GB upload never sits in memory, and a part over the upload limit is refused with 413.

use std::collections::HashMap;
use std::path::Path;

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{StatusCode, header};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;
use tokio::io::AsyncWriteExt;

use super::error::ApiError;

/// td's `HttpReader::MAX_TOTAL_PARAMETERS_LENGTH`: query string, urlencoded or JSON body
/// and non-file multipart fields together.
pub(crate) const MAX_PARAMETERS: usize = 1 << 20;
/// Multipart framing allowed on top of the upload limit before `Content-Length` alone
/// decides a request is too large.
const MULTIPART_SLACK: u64 = 1024 * 1024;
/// How much of an over-limit body is read and discarded before answering 413, so the
/// client, still writing, reads the answer instead of a connection reset.
const DRAIN_CAP: u64 = 256 * 1024 * 1024;

/// A file part of a multipart request, stored in a temporary file.
#[derive(Debug)]
pub(crate) struct Upload {
    pub(crate) tmp: NamedTempFile,
    pub(crate) file_name: Option<String>,
    pub(crate) mime: Option<String>,
    pub(crate) size: u64,
    pub(crate) sha256: String,
}

/// The parameters of one call.
#[derive(Debug, Default)]
pub(crate) struct Params {
    args: Vec<(String, String)>,
    pub(crate) uploads: HashMap<String, Upload>,
}

/// td's `to_integer` for a 64-bit signed type: optional `-`, leading digits, wrapping.
pub(crate) fn to_i64(s: &str) -> i64 {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let value = digits
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0_u64, |acc, d| acc.wrapping_mul(10).wrapping_add(u64::from(d - b'0')));
    let value = value as i64; // two's complement wrap, as td's unsigned arithmetic
    if negative { value.wrapping_neg() } else { value }
}

/// td's `to_integer` for a 32-bit signed type: the 64-bit reading truncated, which is the
/// same wrapping arithmetic modulo 2³².
pub(crate) fn to_i32(s: &str) -> i32 {
    to_i64(s) as i32
}

impl Params {
    #[cfg(test)]
    pub(crate) fn from_json(value: Value) -> Self {
        let mut p = Self::default();
        p.push_json(&value.to_string());
        p
    }

    fn push(&mut self, key: String, value: String) {
        self.args.push((key, value));
    }

    fn len(&self) -> usize {
        self.args.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// The parameter's value, or `""` when absent (`Query::arg`).
    pub(crate) fn arg(&self, key: &str) -> &str {
        self.args.iter().find(|(k, _)| k == key).map_or("", |(_, v)| v.as_str())
    }

    /// Whether the parameter was given at all, even empty.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.args.iter().any(|(k, _)| k == key)
    }

    /// `Client::get_integer_arg`: `default` when absent or empty, else `to_integer`, then
    /// clamped to `min..=max`.
    pub(crate) fn int32(&self, key: &str, default: i32, min: i32, max: i32) -> i32 {
        let s = self.arg(key);
        let value = if s.is_empty() { default } else { to_i32(s) };
        value.clamp(min, max)
    }

    /// `Client::to_bool`.
    pub(crate) fn bool(&self, key: &str) -> bool {
        let v = self.arg(key).to_ascii_lowercase();
        v == "true" || v == "yes" || v == "1"
    }

    /// A JSON-valued parameter: `None` when absent or empty, `Some(Err(()))` when it does
    /// not parse.
    pub(crate) fn json(&self, key: &str) -> Option<Result<Value, ()>> {
        let s = self.arg(key);
        (!s.is_empty()).then(|| serde_json::from_str(s).map_err(|_| ()))
    }

    /// An optional string parameter: `None` when absent or empty.
    pub(crate) fn opt(&self, key: &str) -> Option<String> {
        Some(self.arg(key)).filter(|s| !s.is_empty()).map(str::to_owned)
    }

    /// td's `parse_parameters`: `k=v&k2=v2`, `%XX` and `+` decoded, malformed escapes kept.
    fn push_urlencoded(&mut self, raw: &[u8]) {
        for pair in raw.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (key, value) = match pair.iter().position(|b| *b == b'=') {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            self.push(urldecode(key), urldecode(value));
        }
    }

    /// td's `parse_json_parameters` (see the module docs): a top-level string becomes the
    /// parameter `content`; an object's members become parameters until the first fault.
    fn push_json(&mut self, raw: &str) {
        let body = raw.as_bytes();
        let mut p = skip_ws(body, 0);
        if body.get(p) == Some(&b'"') {
            if let Some((value, end)) = json_string(body, p)
                && end == body.len()
            {
                self.push("content".into(), value);
            }
            return;
        }
        if body.get(p) != Some(&b'{') {
            return;
        }
        p += 1;
        loop {
            p = skip_ws(body, p);
            match body.get(p) {
                None | Some(b'}') => return,
                Some(b'"') => {}
                Some(_) => return,
            }
            let Some((key, next)) = json_string(body, p) else { return };
            p = skip_ws(body, next);
            if body.get(p) != Some(&b':') {
                return;
            }
            p = skip_ws(body, p + 1);
            let value =
                if body.get(p) == Some(&b'"') { json_string(body, p) } else { json_value_text(body, p) };
            let Some((value, next)) = value else { return };
            self.push(key, value);
            p = skip_ws(body, next);
            match body.get(p) {
                Some(b'}') => {}
                Some(b',') => p += 1,
                _ => return,
            }
        }
    }
}

fn skip_ws(body: &[u8], mut p: usize) -> usize {
    while body.get(p).is_some_and(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n')) {
        p += 1;
    }
    p
}

/// The JSON string starting at `body[p] == '"'`: its decoded value and the index after it.
fn json_string(body: &[u8], p: usize) -> Option<(String, usize)> {
    let mut i = p + 1;
    while i < body.len() {
        match body[i] {
            b'\\' => i += 2,
            b'"' => {
                let value = serde_json::from_slice::<String>(&body[p..=i]).ok()?;
                return Some((value, i + 1));
            }
            _ => i += 1,
        }
    }
    None
}

/// Any other JSON value starting at `p`: its text as written and the index after it.
fn json_value_text(body: &[u8], p: usize) -> Option<(String, usize)> {
    let mut stream = serde_json::Deserializer::from_slice(&body[p..]).into_iter::<serde::de::IgnoredAny>();
    stream.next()?.ok()?;
    let end = p + stream.byte_offset();
    Some((String::from_utf8_lossy(&body[p..end]).into_owned(), end))
}

fn urldecode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'%' && i + 2 < raw.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(raw[i + 1]), hex(raw[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(if b == b'+' { b' ' } else { b });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The HTTP layer's 413 for too many parameters.
fn too_many_parameters() -> ApiError {
    ApiError::http(StatusCode::PAYLOAD_TOO_LARGE)
}

/// Reads every parameter of `req`. File parts go to temporary files in `upload_dir`.
pub(crate) async fn parse(req: Request, upload_dir: &Path, upload_limit: u64) -> Result<Params, ApiError> {
    let mut params = Params::default();
    if let Some(query) = req.uri().query() {
        params.push_urlencoded(query.as_bytes());
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.contains("multipart/form-data") {
        parse_multipart(req, &mut params, upload_dir, upload_limit).await?;
        return Ok(params);
    }
    let is_form = content_type.contains("application/x-www-form-urlencoded");
    let is_json = content_type.contains("application/json");
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > DRAIN_CAP) {
        return Err(too_many_parameters());
    }
    let limit = if is_form || is_json { MAX_PARAMETERS.saturating_sub(params.len()) } else { MAX_PARAMETERS };
    let bytes = read_body(req.into_body(), limit).await?;
    if is_form {
        params.push_urlencoded(&bytes);
    } else if is_json && !bytes.is_empty() {
        params.push_json(&String::from_utf8_lossy(&bytes));
    }
    Ok(params)
}

/// Reads at most `limit` bytes; past it drains (up to [`DRAIN_CAP`]) and answers 413.
async fn read_body(body: axum::body::Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    let mut total: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| ApiError::http(StatusCode::BAD_REQUEST))?;
        total += chunk.len() as u64;
        if total > DRAIN_CAP {
            return Err(too_many_parameters());
        }
        if total <= limit as u64 {
            bytes.extend_from_slice(&chunk);
        } else if !bytes.is_empty() {
            bytes = Vec::new();
        }
    }
    if total > limit as u64 {
        return Err(too_many_parameters());
    }
    Ok(bytes)
}

async fn parse_multipart(
    req: Request,
    params: &mut Params,
    upload_dir: &Path,
    limit: u64,
) -> Result<(), ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut too_large = declared.is_some_and(|len| len > limit.saturating_add(MULTIPART_SLACK));
    if too_large && declared.is_some_and(|len| len > DRAIN_CAP) {
        // Not worth reading: answer now, hyper closes the connection.
        return Err(ApiError::too_large());
    }
    let bad = |e: axum::extract::multipart::MultipartError| {
        ApiError::bad_request(format!("invalid multipart body: {e}"))
    };
    let mut multipart =
        Multipart::from_request(req, &()).await.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let mut drained: u64 = 0;
    let mut too_many = false;
    while let Some(mut field) = multipart.next_field().await.map_err(bad)? {
        if too_large || too_many {
            while let Some(chunk) = field.chunk().await.map_err(bad)? {
                drained += chunk.len() as u64;
                if drained > DRAIN_CAP {
                    return Err(if too_many { too_many_parameters() } else { ApiError::too_large() });
                }
            }
            continue;
        }
        let name = field.name().unwrap_or_default().to_owned();
        let Some(file_name) = field.file_name().map(str::to_owned) else {
            let urlencoded =
                field.content_type().is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
            let mut text = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(bad)? {
                if params.len() + text.len() + chunk.len() > MAX_PARAMETERS {
                    too_many = true;
                    drained += (text.len() + chunk.len()) as u64;
                    break;
                }
                text.extend_from_slice(&chunk);
            }
            if too_many {
                continue;
            }
            if urlencoded {
                params.push_urlencoded(&text);
            } else {
                params.push(name, String::from_utf8_lossy(&text).into_owned());
            }
            continue;
        };
        let mime = field.content_type().map(str::to_owned);
        let io_err = |e: std::io::Error| ApiError::new(500, format!("Internal Server Error: {e}"));
        let tmp = NamedTempFile::new_in(upload_dir).map_err(io_err)?;
        let file = tokio::fs::File::from_std(tmp.as_file().try_clone().map_err(io_err)?);
        // Few large writes: each write of a tokio File is a trip to the blocking pool.
        let mut file = tokio::io::BufWriter::with_capacity(1024 * 1024, file);
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        while let Some(chunk) = field.chunk().await.map_err(bad)? {
            size += chunk.len() as u64;
            if size > limit {
                too_large = true;
                drained += size;
                break;
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(io_err)?;
        }
        if too_large {
            drop(file);
            drop(tmp);
            while let Some(chunk) = field.chunk().await.map_err(bad)? {
                drained += chunk.len() as u64;
                if drained > DRAIN_CAP {
                    return Err(ApiError::too_large());
                }
            }
            continue;
        }
        file.flush().await.map_err(io_err)?;
        let sha256 = hex(&hasher.finalize());
        let file_name = Some(file_name).filter(|n| !n.is_empty());
        params.uploads.insert(name, Upload { tmp, file_name, mime, size, sha256 });
    }
    if too_many {
        return Err(too_many_parameters());
    }
    if too_large {
        return Err(ApiError::too_large());
    }
    Ok(())
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_strings_read_like_td() {
        let p = Params::from_json(
            json!({"a": "12", "b": 7, "c": "x", "d": true, "m": {"k": 1}, "e": "", "n": null}),
        );
        let int = |k: &str| to_i64(p.arg(k));
        assert_eq!((int("a"), int("b"), int("c"), int("d")), (12, 7, 0, 0));
        assert_eq!(p.arg("d"), "true");
        assert!(p.bool("d"));
        assert_eq!(p.arg("n"), "null", "null is the text null");
        assert_eq!(p.json("m"), Some(Ok(json!({"k": 1}))));
        assert_eq!(p.json("c"), Some(Err(())));
        assert_eq!(p.json("e"), None);
        assert!(p.has("e") && !p.has("zz"));
        assert_eq!(p.int32("zz", 100, 1, 100), 100);
        assert_eq!(p.int32("e", 5, 0, 50), 5);
    }

    #[test]
    fn integers_follow_td_to_integer() {
        assert_eq!(to_i64("12abc"), 12);
        assert_eq!(to_i64("-42"), -42);
        assert_eq!(to_i64(" 5"), 0);
        assert_eq!(to_i64("1.9"), 1);
        assert_eq!(to_i64("-1001234567890"), -1_001_234_567_890);
        assert_eq!(to_i32("4294967297"), 1, "wraps as td's unsigned arithmetic does");
    }

    #[test]
    fn malformed_json_keeps_what_came_before_the_fault() {
        let mut p = Params::default();
        p.push_json(r#"{"chat_id": 5, "text": "hi", "reply_markup": {"a": [1, }"#);
        assert_eq!((p.arg("chat_id"), p.arg("text"), p.has("reply_markup")), ("5", "hi", false));
        let mut p = Params::default();
        p.push_json("[1, 2]");
        assert!(p.args.is_empty());
        let mut p = Params::default();
        p.push_json(r#""just a string""#);
        assert_eq!(p.arg("content"), "just a string");
        let mut p = Params::default();
        p.push_json(r#"{"a": 1, "a": 2}"#);
        assert_eq!(p.arg("a"), "1", "the first of a repeated parameter wins");
    }

    #[test]
    fn urlencoded_like_td() {
        let mut p = Params::default();
        p.push_urlencoded(b"a=1+2&b=%41%zz&c&d=x=y&&e=%E2%82%AC");
        assert_eq!(
            (p.arg("a"), p.arg("b"), p.arg("c"), p.arg("d"), p.arg("e")),
            ("1 2", "A%zz", "", "x=y", "€")
        );
        assert!(p.has("c"));
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
    }
}
