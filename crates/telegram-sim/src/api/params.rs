//! Request parameters from the query string and a JSON, urlencoded or multipart body.
//!
//! Multipart file parts are streamed to disk while they are hashed and counted, so a
//! 2 GB upload never sits in memory, and a part over the upload limit is refused with 413.

use std::collections::HashMap;
use std::path::Path;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Query, Request};
use axum::http::header;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;
use tokio::io::AsyncWriteExt;

use super::error::ApiError;

/// Largest non-multipart body, and largest non-file multipart field.
const MAX_PLAIN_BODY: usize = 10 * 1024 * 1024;
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
    values: HashMap<String, Value>,
    pub(crate) uploads: HashMap<String, Upload>,
}

impl Params {
    #[cfg(test)]
    pub(crate) fn from_json(value: Value) -> Self {
        let values = value.as_object().cloned().unwrap_or_default().into_iter().collect();
        Self { values, uploads: HashMap::new() }
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.values.get(key).is_some_and(|v| !v.is_null())
    }

    /// A string parameter; numbers and booleans are given as their JSON text.
    pub(crate) fn str(&self, key: &str) -> Option<String> {
        match self.values.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// An integer given as a JSON number or a numeric string.
    pub(crate) fn i64(&self, key: &str) -> Result<Option<i64>, ApiError> {
        let parsed = match self.values.get(key) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) if s.is_empty() => return Ok(None),
            Some(Value::String(s)) => s.trim().parse().ok(),
            Some(_) => None,
        };
        parsed.map(Some).ok_or_else(|| ApiError::bad_request(format!("invalid {key} specified")))
    }

    pub(crate) fn bool(&self, key: &str) -> bool {
        match self.values.get(key) {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => matches!(s.as_str(), "true" | "True" | "1"),
            Some(Value::Number(n)) => n.as_i64() == Some(1),
            _ => false,
        }
    }

    /// An object or array, given as JSON or as JSON text (multipart, urlencoded).
    pub(crate) fn json(&self, key: &str, what: &str) -> Result<Option<Value>, ApiError> {
        match self.values.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => serde_json::from_str(s)
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("can't parse {what} JSON object"))),
            Some(other) => Ok(Some(other.clone())),
        }
    }
}

fn insert_pairs(values: &mut HashMap<String, Value>, pairs: Vec<(String, String)>) {
    for (k, v) in pairs {
        values.insert(k, Value::String(v));
    }
}

/// Reads every parameter of `req`. File parts go to temporary files in `upload_dir`.
pub(crate) async fn parse(req: Request, upload_dir: &Path, upload_limit: u64) -> Result<Params, ApiError> {
    let mut params = Params::default();
    if let Ok(Query(pairs)) = Query::<Vec<(String, String)>>::try_from_uri(req.uri()) {
        insert_pairs(&mut params.values, pairs);
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        parse_multipart(req, &mut params, upload_dir, upload_limit).await?;
        return Ok(params);
    }
    let bytes =
        axum::body::to_bytes(req.into_body(), MAX_PLAIN_BODY).await.map_err(|_| ApiError::too_large())?;
    if bytes.is_empty() {
        return Ok(params);
    }
    if content_type.starts_with("application/json") {
        let body: Map<String, Value> = serde_json::from_slice(&bytes)
            .map_err(|_| ApiError::bad_request("can't parse JSON encoded request: expected an object"))?;
        params.values.extend(body);
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        let fake = Request::builder()
            .method("POST")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(bytes))
            .map_err(|_| ApiError::bad_request("invalid urlencoded body"))?;
        let axum::Form(pairs) = axum::Form::<Vec<(String, String)>>::from_request(fake, &())
            .await
            .map_err(|_| ApiError::bad_request("invalid urlencoded body"))?;
        insert_pairs(&mut params.values, pairs);
    }
    Ok(params)
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
    while let Some(mut field) = multipart.next_field().await.map_err(bad)? {
        if too_large {
            while let Some(chunk) = field.chunk().await.map_err(bad)? {
                drained += chunk.len() as u64;
                if drained > DRAIN_CAP {
                    return Err(ApiError::too_large());
                }
            }
            continue;
        }
        let name = field.name().unwrap_or_default().to_owned();
        let Some(file_name) = field.file_name().map(str::to_owned) else {
            let mut text = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(bad)? {
                if text.len() + chunk.len() > MAX_PLAIN_BODY {
                    return Err(ApiError::too_large());
                }
                text.extend_from_slice(&chunk);
            }
            let text = String::from_utf8(text)
                .map_err(|_| ApiError::bad_request(format!("field {name} is not valid UTF-8")))?;
            params.values.insert(name, Value::String(text));
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
    fn values_accept_strings_and_numbers() {
        let p = Params::from_json(json!({"a": "12", "b": 7, "c": "x", "d": true, "m": "{\"k\":1}", "e": ""}));
        assert_eq!(p.i64("a").unwrap(), Some(12));
        assert_eq!(p.i64("b").unwrap(), Some(7));
        assert_eq!(p.i64("e").unwrap(), None);
        assert_eq!(p.i64("c").unwrap_err().description, "Bad Request: invalid c specified");
        assert!(p.bool("d"));
        assert_eq!(p.json("m", "m").unwrap(), Some(json!({"k": 1})));
        assert_eq!(
            p.json("c", "reply keyboard markup").unwrap_err().description,
            "Bad Request: can't parse reply keyboard markup JSON object"
        );
        assert_eq!(p.str("b").as_deref(), Some("7"));
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
    }
}
