//! The crate's error: a strict-mode failure or a configuration out of range.

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
