//! The bearer token check: `Authorization: Bearer <token>`, compared in constant time.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ApiError;
use crate::config::Secret;

/// The token's SHA-256, or nothing when no token is configured (then `/api/*` is off).
///
/// Comparing digests rather than the tokens makes the comparison's length fixed, so
/// neither the token's length nor a common prefix shows in the time it takes; `subtle`
/// compares the digests in constant time.
#[derive(Debug)]
pub(crate) struct Auth {
    digest: Option<[u8; 32]>,
}

impl Auth {
    pub(crate) fn new(token: Option<&Secret>) -> Self {
        Self { digest: token.map(|t| Sha256::digest(t.expose().as_bytes()).into()) }
    }

    /// Whether a token is configured (without one, `/api/*` and the dashboard are off).
    pub(crate) fn is_on(&self) -> bool {
        self.digest.is_some()
    }

    /// Whether `presented` is the token.
    pub(crate) fn accepts(&self, presented: &[u8]) -> bool {
        match &self.digest {
            Some(expected) => bool::from(Sha256::digest(presented).as_slice().ct_eq(expected)),
            None => false,
        }
    }

    /// Whether the request's headers carry the token (`Authorization: Bearer <token>`).
    pub(crate) fn admits(&self, headers: &HeaderMap) -> bool {
        bearer(headers).is_some_and(|t| self.accepts(t))
    }
}

/// The token after `Bearer ` (the scheme in any case, RFC 9110), if the header has one.
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = value.split_at_checked(7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then(|| rest.trim_ascii())
}

fn unauthorized(challenge: &'static str, text: &str) -> Response {
    let mut response = ApiError(StatusCode::UNAUTHORIZED, text.to_owned()).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    response
}

/// Lets a request through only with the token. Neither the header nor the token is
/// logged or echoed.
pub(crate) async fn require_token(State(auth): State<Arc<Auth>>, req: Request, next: Next) -> Response {
    if auth.digest.is_none() {
        return ApiError(StatusCode::FORBIDDEN, "the API is off: no API token is configured".into())
            .into_response();
    }
    match bearer(req.headers()) {
        Some(token) if auth.accepts(token) => next.run(req).await,
        Some(_) => {
            tracing::debug!(path = req.uri().path(), "refused a request with a wrong API token");
            unauthorized(r#"Bearer realm="mltb", error="invalid_token""#, "the bearer token is not valid")
        }
        None => unauthorized(
            r#"Bearer realm="mltb""#,
            "this route needs an `Authorization: Bearer <token>` header",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(a).unwrap());
        }
        h
    }

    #[test]
    fn bearer_takes_the_token_after_the_scheme_in_any_case() {
        assert_eq!(bearer(&headers(Some("Bearer abc"))), Some(&b"abc"[..]));
        assert_eq!(bearer(&headers(Some("bEaReR  abc "))), Some(&b"abc"[..]));
        assert_eq!(bearer(&headers(Some("Basic abc"))), None);
        assert_eq!(bearer(&headers(Some("Bear"))), None);
        assert_eq!(bearer(&headers(None)), None);
    }

    #[test]
    fn only_the_exact_token_is_accepted() {
        let secret = Secret::new("0123456789abcdef-token").unwrap();
        let auth = Auth::new(Some(&secret));
        assert!(auth.accepts(b"0123456789abcdef-token"));
        assert!(!auth.accepts(b"0123456789abcdef-toke"));
        assert!(!auth.accepts(b"0123456789abcdef-tokenx"));
        assert!(!auth.accepts(b""));
        assert!(!Auth::new(None).accepts(b"0123456789abcdef-token"));
    }
}
