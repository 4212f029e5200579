//! Consistent hashing on a ketama ring.

use std::sync::Arc;

use super::{Request, Strategy, weight_gcd};
use crate::backend::Endpoint;
use crate::hash::{Rng, hash_with};

/// Points on the ring per unit of weight, as in libketama and nginx.
pub const POINTS_PER_WEIGHT: u32 = 160;
/// Weights (after dividing by their gcd) are scaled so the largest is at most this, which
/// bounds the ring at 160 000 points per endpoint.
const MAX_WEIGHT_UNITS: u32 = 1_000;

/// Consistent hashing on a ring (ketama): each endpoint owns 160 points per unit of weight;
/// a key goes to the first point at or after its hash, wrapping around.
///
/// When an endpoint leaves, only the keys it owned move (about 1/N of them). Points are
/// `hash(id ‖ i as u64 LE)` for `i` in `0..160·weight`, with this crate's stable hash
/// (FNV-1a 64 + `fmix64`, see [`key_hash`](crate::key_hash)) rather than libketama's MD5,
/// so rings are not interchangeable with libketama's. Keyless picks use a random key.
#[derive(Debug)]
pub struct Ketama {
    rng: Rng,
}

impl Ketama {
    /// A ketama ring.
    pub fn new() -> Self {
        Self { rng: Rng::new(None) }
    }
}

impl Default for Ketama {
    fn default() -> Self {
        Self::new()
    }
}

/// A point on the ring and the endpoint that owns it, side by side so one cache line
/// holds both.
#[derive(Debug, Clone, Copy)]
struct Point {
    hash: u64,
    owner: u32,
}

/// The ring: points sorted by hash, plus an index by the top bits of the hash.
///
/// A binary search over 100 000 points is ~17 dependent cache misses. The index has one
/// slot per ~8 points (a power of two, so small enough to stay cached) and narrows a
/// lookup to the one or two cache lines of points that share the key's top bits.
pub struct Ring {
    points: Vec<Point>,
    /// `starts[k]` is the first point whose top bits are ≥ `k`; one extra entry at the end.
    starts: Vec<u32>,
    shift: u32,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring").field("points", &self.points.len()).finish_non_exhaustive()
    }
}

impl Ring {
    fn new(points: Vec<Point>) -> Self {
        let bits = (points.len() / 8).max(2).next_power_of_two().trailing_zeros().clamp(1, 20);
        let shift = 64 - bits;
        let buckets = 1usize << bits;
        let mut starts = Vec::with_capacity(buckets + 1);
        let mut i = 0;
        for k in 0..buckets as u64 {
            while i < points.len() && (points[i].hash >> shift) < k {
                i += 1;
            }
            starts.push(i as u32);
        }
        starts.push(points.len() as u32);
        Self { points, starts, shift }
    }

    /// The index of the first point at or after `h`, wrapping to 0.
    #[inline]
    fn find(&self, h: u64) -> usize {
        let k = (h >> self.shift) as usize;
        let (lo, hi) = match (self.starts.get(k), self.starts.get(k + 1)) {
            (Some(&lo), Some(&hi)) => (lo as usize, hi as usize),
            _ => (0, self.points.len()),
        };
        // Few points per bucket: a linear scan beats a binary search.
        let bucket = self.points.get(lo..hi).unwrap_or(&[]);
        let i = lo + bucket.iter().position(|p| p.hash >= h).unwrap_or(bucket.len());
        if i >= self.points.len() { 0 } else { i }
    }
}

impl Ring {
    /// Points on the ring.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether the ring has no points.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

pub(crate) fn weight_units(endpoints: &[Arc<Endpoint>], cap: u32) -> Vec<u32> {
    let g = weight_gcd(endpoints);
    let units: Vec<u32> = endpoints.iter().map(|e| e.weight() / g).collect();
    let max = units.iter().copied().max().unwrap_or(1);
    if max <= cap {
        return units;
    }
    units.iter().map(|&u| ((u64::from(u) * u64::from(cap)) / u64::from(max)).max(1) as u32).collect()
}

impl Strategy for Ketama {
    type State = Ring;

    fn build(&self, endpoints: &[Arc<Endpoint>]) -> Ring {
        let units = weight_units(endpoints, MAX_WEIGHT_UNITS);
        let mut points: Vec<Point> = Vec::new();
        for (i, (e, u)) in endpoints.iter().zip(&units).enumerate() {
            for j in 0..u64::from(u * POINTS_PER_WEIGHT) {
                points.push(Point { hash: hash_with(e.id().as_bytes(), j), owner: i as u32 });
            }
        }
        // Ties between points go to the smaller id, so the ring does not depend on order.
        points.sort_unstable_by(|a, b| {
            a.hash
                .cmp(&b.hash)
                .then_with(|| endpoints[a.owner as usize].id().cmp(endpoints[b.owner as usize].id()))
        });
        Ring::new(points)
    }

    #[inline]
    fn pick(&self, ring: &Ring, _: &[Arc<Endpoint>], request: &Request<'_>) -> usize {
        let h = request.key_hash().unwrap_or_else(|| self.rng.next());
        ring.points.get(ring.find(h)).map_or(0, |p| p.owner as usize)
    }

    fn reads_in_flight(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use crate::hash::key_hash;
    use crate::strategy::test_support::endpoints;

    #[test]
    fn ring_has_160_points_per_weight() {
        let eps = endpoints(&[1, 2, 3]);
        let ring = Ketama::new().build(&eps);
        assert_eq!(ring.len(), 160 * 6);
        assert!(ring.points.windows(2).all(|w| w[0].hash <= w[1].hash));
    }

    #[test]
    fn same_key_same_endpoint_and_wraps() {
        let eps = endpoints(&[1, 1, 1]);
        let k = Ketama::new();
        let ring = k.build(&eps);
        let clock = FakeClock::new();
        let h = key_hash(b"user-42");
        let a = k.pick(&ring, &eps, &Request::new(Some(h), &clock));
        assert_eq!(a, k.pick(&ring, &eps, &Request::new(Some(h), &clock)));
        // A hash past the last point wraps to the first point's owner.
        let top = k.pick(&ring, &eps, &Request::new(Some(u64::MAX), &clock));
        assert_eq!(top, ring.points[0].owner as usize);
    }

    #[test]
    fn index_agrees_with_binary_search() {
        let eps = endpoints(&[1, 3, 2, 5]);
        let ring = Ketama::new().build(&eps);
        let mut h = 0x1234_5678_u64;
        for _ in 0..20_000 {
            h = crate::hash::fmix64(h.wrapping_add(1));
            let slow = ring.points.partition_point(|p| p.hash < h) % ring.len();
            assert_eq!(ring.find(h), slow);
        }
        for p in &ring.points {
            assert_eq!(ring.points[ring.find(p.hash)].hash, p.hash, "a point maps to itself");
        }
        assert_eq!(ring.find(u64::MAX), 0);
        assert_eq!(ring.find(0), 0);
    }

    #[test]
    fn huge_weights_are_scaled() {
        let eps = endpoints(&[1_000_000, 1]);
        let ring = Ketama::new().build(&eps);
        assert_eq!(ring.len(), 160 * 1_001);
    }
}
