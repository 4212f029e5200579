//! The crate's error type: what a Bot API call, a scheduled request or the poller can fail with.

use std::time::Duration;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Anything a request to the Bot API can fail with.
///
/// Cheap to clone, so that one outcome can resolve every request coalesced into it.
/// No variant ever holds the bot token: transport errors are stored as text with the
/// request URL removed and the token redacted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Bot API answered with an error (`ok: false`).
    #[error("Telegram API error {code}: {description}")]
    Api {
        /// `error_code`, e.g. 400, 403, 429.
        code: u16,
        /// `description`, e.g. `Bad Request: chat not found`.
        description: String,
        /// `parameters.retry_after`, set with 429.
        retry_after: Option<Duration>,
        /// `parameters.migrate_to_chat_id`: the group became a supergroup with this id.
        migrate_to_chat_id: Option<i64>,
    },
    /// 413: the upload is over the server's limit (50 MB on the cloud Bot API).
    #[error("request entity too large (413): {description}")]
    TooLarge {
        /// What the server said.
        description: String,
    },
    /// 409 on getUpdates: another instance is polling, or a webhook is set.
    #[error("conflict (409): {description}")]
    Conflict {
        /// What the server said.
        description: String,
    },
    /// The request could not be sent or its response not read (connect, reset, DNS).
    #[error("network error: {0}")]
    Network(String),
    /// The request took longer than its timeout.
    #[error("request timed out: {0}")]
    Timeout(String),
    /// The response was not the JSON expected.
    #[error("could not decode the response to {method}: {reason}")]
    Decode {
        /// The Bot API method.
        method: String,
        /// What did not decode.
        reason: String,
    },
    /// A local file to upload could not be read.
    #[error("cannot read the file to upload {path:?}: {reason}")]
    File {
        /// The path.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// An argument was rejected before anything was sent.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The argument, e.g. `callback data`.
        what: &'static str,
        /// What was wrong and what was expected.
        reason: String,
    },
    /// The scheduler's queue is full (only from `try_submit`).
    #[error("the outbound queue is full ({capacity} requests)")]
    QueueFull {
        /// The queue's capacity.
        capacity: usize,
    },
    /// The scheduler or poller was shut down before the request was taken.
    #[error("the scheduler is closed")]
    Closed,
}

impl Error {
    /// How long the server asked to wait (`retry_after` of a 429).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP-like error code when the server answered, e.g. 429, 413 or 409.
    pub fn code(&self) -> Option<u16> {
        match self {
            Error::Api { code, .. } => Some(*code),
            Error::TooLarge { .. } => Some(413),
            Error::Conflict { .. } => Some(409),
            _ => None,
        }
    }

    /// Whether the same request can succeed if sent again later: 429, 5xx, network
    /// errors, timeouts and a full queue.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api { code, .. } => *code == 429 || *code >= 500,
            Error::Network(_) | Error::Timeout(_) | Error::QueueFull { .. } => true,
            _ => false,
        }
    }

    /// Whether this is a 429 Too Many Requests.
    pub fn is_too_many_requests(&self) -> bool {
        matches!(self, Error::Api { code: 429, .. })
    }

    /// Whether this is the 400 "message is not modified", which an edit treats as success.
    pub fn is_not_modified(&self) -> bool {
        matches!(self, Error::Api { code: 400, description, .. } if description.contains("message is not modified"))
    }

    /// Builds the error for an `ok: false` response.
    pub(crate) fn from_response(resp: frankenstein::response::ErrorResponse) -> Self {
        let code = u16::try_from(resp.error_code).unwrap_or(u16::MAX);
        let description = resp.description;
        match code {
            413 => Error::TooLarge { description },
            409 => Error::Conflict { description },
            _ => Error::Api {
                code,
                description,
                retry_after: resp
                    .parameters
                    .as_ref()
                    .and_then(|p| p.retry_after)
                    .map(|s| Duration::from_secs(s.into())),
                migrate_to_chat_id: resp.parameters.as_ref().and_then(|p| p.migrate_to_chat_id),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, description: &str) -> Error {
        Error::Api { code, description: description.into(), retry_after: None, migrate_to_chat_id: None }
    }

    #[test]
    fn predicates() {
        let e = Error::Api {
            code: 429,
            description: "Too Many Requests: retry after 3".into(),
            retry_after: Some(Duration::from_secs(3)),
            migrate_to_chat_id: None,
        };
        assert!(e.is_retryable() && e.is_too_many_requests());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        assert!(api(502, "Bad Gateway").is_retryable());
        assert!(!api(400, "Bad Request: chat not found").is_retryable());
        assert!(
            api(400, "Bad Request: message is not modified: specified new message content").is_not_modified()
        );
        assert!(Error::Network("reset".into()).is_retryable());
        assert!(!Error::Closed.is_retryable());
        assert_eq!(Error::TooLarge { description: "x".into() }.code(), Some(413));
    }

    #[test]
    fn from_response_maps_codes() {
        let body = r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#;
        let resp: frankenstein::response::ErrorResponse = serde_json::from_str(body).unwrap();
        assert_eq!(Error::from_response(resp).retry_after(), Some(Duration::from_secs(7)));
        let body = r#"{"ok":false,"error_code":413,"description":"Request Entity Too Large"}"#;
        let resp: frankenstein::response::ErrorResponse = serde_json::from_str(body).unwrap();
        assert!(matches!(Error::from_response(resp), Error::TooLarge { .. }));
        let body = r#"{"ok":false,"error_code":409,"description":"Conflict: terminated by other getUpdates request"}"#;
        let resp: frankenstein::response::ErrorResponse = serde_json::from_str(body).unwrap();
        assert!(matches!(Error::from_response(resp), Error::Conflict { .. }));
    }
}
