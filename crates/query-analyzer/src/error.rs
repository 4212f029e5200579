//! The crate's error: a strict-mode failure or a configuration out of range.

use std::time::Duration;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong.
#[derive(Debug, Clone, thiserror::Error)]
#[error(transparent)]
pub struct Error {
    kind: ErrorKind,
}

/// The kinds of [`Error`].
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Strict mode: N+1 findings were recorded ([`Analyzer::check`](crate::Analyzer::check)).
    /// `summary` has one line per finding.
    #[error("{count} N+1 finding(s):\n{summary}")]
    Findings {
        /// How many distinct findings.
        count: usize,
        /// One line per finding: the span, the repeated query, the count, the source query.
        summary: String,
    },
    /// A setting of [`AnalyzerConfig`](crate::AnalyzerConfig) is out of range.
    #[error("invalid analyzer setting `{setting}` = {value}: expected {expected}")]
    Config {
        /// The field, e.g. `n_plus_one.min_repeats`.
        setting: &'static str,
        /// The value given.
        value: String,
        /// What was expected instead.
        expected: &'static str,
    },
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Self { kind }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// What went wrong, by value.
    pub fn into_kind(self) -> ErrorKind {
        self.kind
    }

    /// Whether the same call can succeed later unchanged: never. Findings stay until
    /// [`Analyzer::clear_findings`](crate::Analyzer::clear_findings) and a setting out
    /// of range stays out of range.
    pub fn is_retryable(&self) -> bool {
        match self.kind {
            ErrorKind::Findings { .. } | ErrorKind::Config { .. } => false,
        }
    }

    /// How long to wait before retrying, when known: never, as no error of this crate
    /// is retryable. Present so that every mltb crate's error answers the same two
    /// questions.
    pub fn retry_after(&self) -> Option<Duration> {
        None
    }

    /// Strict mode found N+1 patterns.
    pub fn is_findings(&self) -> bool {
        matches!(self.kind, ErrorKind::Findings { .. })
    }

    /// A configuration value was out of range.
    pub fn is_config(&self) -> bool {
        matches!(self.kind, ErrorKind::Config { .. })
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self::new(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates() {
        let findings = Error::new(ErrorKind::Findings { count: 1, summary: "  - N+1".into() });
        assert!(findings.is_findings() && !findings.is_config());
        assert!(!findings.is_retryable());
        assert_eq!(findings.retry_after(), None);
        let config = Error::from(ErrorKind::Config {
            setting: "max_findings",
            value: "0".into(),
            expected: "at least 1",
        });
        assert!(config.is_config() && !config.is_findings());
        assert!(!config.is_retryable());
        assert_eq!(config.retry_after(), None);
        assert!(matches!(config.clone().into_kind(), ErrorKind::Config { setting: "max_findings", .. }));
        assert_eq!(config.to_string(), "invalid analyzer setting `max_findings` = 0: expected at least 1");
    }
}
