//! The parameter sample a cacheable read keeps for cache advice: its most recent
//! parameter digests, with a marker wherever a write to one of its tables came between
//! two of its executions.
//!
//! The analyzer writes samples and the advisor reads them; both depend on this module
//! and neither on the other's internals.

use std::collections::VecDeque;

/// In a parameter sample, marks "a write to one of the fingerprint's tables happened
/// here". A digest equal to it is stored with its low bit flipped ([`digest`]).
pub(crate) const INVALIDATE: u64 = u64::MAX;

/// `digest` as stored in a sample: never equal to [`INVALIDATE`].
#[inline]
pub(crate) fn digest(digest: u64) -> u64 {
    if digest == INVALIDATE { digest ^ 1 } else { digest }
}

/// Appends `v`, dropping the oldest entry first when `q` holds `cap` already.
#[inline]
pub(crate) fn push_bounded(q: &mut VecDeque<u64>, v: u64, cap: usize) {
    if q.len() >= cap {
        q.pop_front();
    }
    q.push_back(v);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_never_reads_as_a_marker_and_the_sample_is_bounded() {
        assert_ne!(digest(INVALIDATE), INVALIDATE);
        assert_eq!(digest(7), 7);
        let mut q = VecDeque::new();
        for v in 0..5 {
            push_bounded(&mut q, v, 3);
        }
        assert_eq!(q, [2, 3, 4]);
    }
}
