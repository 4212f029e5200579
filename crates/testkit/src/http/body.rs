//! The response body: all at once, or dripped in chunks with a pause between them.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

/// A body sent as frames of at most `chunk` bytes, waiting `delay` before each frame
/// after the first.
#[derive(Debug)]
pub(crate) struct Payload {
    rest: Bytes,
    chunk: usize,
    delay: Duration,
    pause: Option<Pin<Box<Sleep>>>,
}

impl Payload {
    /// The whole of `data` in one frame.
    pub(crate) fn full(data: impl Into<Bytes>) -> Self {
        Self { rest: data.into(), chunk: usize::MAX, delay: Duration::ZERO, pause: None }
    }

    /// No body.
    pub(crate) fn empty() -> Self {
        Self::full(Bytes::new())
    }

    /// `data` in frames of `chunk` bytes with `delay` between them.
    pub(crate) fn drip(data: Bytes, chunk: usize, delay: Duration) -> Self {
        Self { rest: data, chunk: chunk.max(1), delay, pause: None }
    }
}

impl Body for Payload {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        if this.rest.is_empty() {
            return Poll::Ready(None);
        }
        if let Some(pause) = this.pause.as_mut() {
            ready!(pause.as_mut().poll(cx));
            this.pause = None;
        }
        let frame = this.rest.split_to(this.chunk.min(this.rest.len()));
        if !this.rest.is_empty() && !this.delay.is_zero() {
            this.pause = Some(Box::pin(tokio::time::sleep(this.delay)));
        }
        Poll::Ready(Some(Ok(Frame::data(frame))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.rest.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test(start_paused = true)]
    async fn drip_sends_chunks_with_pauses() {
        let start = tokio::time::Instant::now();
        let mut body = Payload::drip(Bytes::from_static(b"abcdefg"), 3, Duration::from_secs(1));
        assert_eq!(body.size_hint().exact(), Some(7));
        let mut frames = Vec::new();
        while let Some(frame) = body.frame().await {
            frames.push(frame.unwrap().into_data().unwrap());
        }
        assert_eq!(frames, ["abc", "def", "g"]);
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        assert!(body.is_end_stream());
    }

    #[tokio::test]
    async fn full_is_one_frame() {
        let mut body = Payload::full(vec![1u8; 100_000]);
        assert_eq!(body.frame().await.unwrap().unwrap().into_data().unwrap().len(), 100_000);
        assert!(body.frame().await.is_none());
    }
}
