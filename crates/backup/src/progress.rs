//! Progress of long operations (bytes compressed, checked, restored), for a caller that
//! shows it, such as `mltb-backup`'s progress bar.
//!
//! Work done on a thread is counted into the [`Progress`] that thread has
//! [entered](Progress::enter); a thread that entered none counts nothing.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

thread_local! {
    static CURRENT: RefCell<Option<Progress>> = const { RefCell::new(None) };
}

#[derive(Debug, Default)]
struct Counts {
    total: AtomicU64,
    done: AtomicU64,
}

/// Bytes to go through and bytes done, shared between the thread doing the work and a
/// thread showing it.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    counts: Arc<Counts>,
}

impl Progress {
    /// Nothing counted yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes the work entered so far will go through (it grows as each step starts:
    /// a verify after a backup adds its own).
    pub fn total(&self) -> u64 {
        self.counts.total.load(Ordering::Relaxed)
    }

    /// Bytes done.
    pub fn done(&self) -> u64 {
        self.counts.done.load(Ordering::Relaxed)
    }

    /// Counts the work this thread does into `self` until the guard is dropped.
    pub fn enter(&self) -> Entered {
        let previous = CURRENT.with(|c| c.borrow_mut().replace(self.clone()));
        Entered { previous }
    }
}

/// Counting into a [`Progress`]; dropped, the thread counts into what it did before.
#[derive(Debug)]
#[must_use = "the work is counted only while this is held"]
pub struct Entered {
    previous: Option<Progress>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

fn with(f: impl FnOnce(&Counts)) {
    CURRENT.with(|c| {
        if let Some(p) = &*c.borrow() {
            f(&p.counts);
        }
    });
}

/// A step of `bytes` starts.
pub(crate) fn expect(bytes: u64) {
    with(|c| {
        c.total.fetch_add(bytes, Ordering::Relaxed);
    });
}

/// `bytes` more are done.
pub(crate) fn advance(bytes: u64) {
    with(|c| {
        c.done.fetch_add(bytes, Ordering::Relaxed);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_entered_thread_counts_and_only_while_entered() {
        let p = Progress::new();
        expect(10);
        assert_eq!(p.total(), 0, "not entered yet");
        {
            let _in = p.enter();
            expect(10);
            advance(4);
            std::thread::spawn(|| advance(100)).join().unwrap();
        }
        advance(5);
        assert_eq!((p.total(), p.done()), (10, 4));
    }
}
