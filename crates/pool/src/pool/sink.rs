//! Feeds bb8's background connect and validation errors into the metrics.

use std::fmt::Display;
use std::sync::Arc;

use super::Shared;

/// bb8 reports errors that no caller sees (background connects, failed checkout
/// validation) to an error sink; this one counts them, keeps the last for
/// [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable), and logs them.
#[derive(Debug, Clone)]
pub(super) struct Sink(pub(super) Arc<Shared>);

impl<E: Display + Send + 'static> bb8::ErrorSink<E> for Sink {
    fn sink(&self, error: E) {
        let message = error.to_string();
        tracing::warn!(error = %message, "pool connection error");
        self.0.recorder.connect_error(message);
        if self.0.config.fail_fast {
            self.0.health.failed.notify_waiters();
        }
    }

    fn boxed_clone(&self) -> Box<dyn bb8::ErrorSink<E>> {
        Box::new(self.clone())
    }
}
