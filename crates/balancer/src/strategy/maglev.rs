//! Maglev consistent hashing.

use std::sync::Arc;

use super::ketama::weight_units;
use super::{Request, Strategy};
use crate::backend::Endpoint;
use crate::error::{Error, Result};
use crate::hash::{Rng, hash_with, reduce};

/// The default lookup table size: a prime, ≥ 100 × a few hundred backends.
pub const DEFAULT_TABLE_SIZE: usize = 65_537;
/// The largest lookup table size: the first prime above 2²⁴, 64 MiB of table, rebuilt on
/// every change of the available set (ample for thousands of endpoints at 100 slots each).
pub const MAX_TABLE_SIZE: usize = 16_777_259;
/// Weights are scaled so the largest is at most this many turns per round.
const MAX_WEIGHT_UNITS: u32 = 1_000;

/// Maglev hashing (Eisenbud et al., NSDI 2016): a lookup table of prime size `M` filled by
/// letting each endpoint claim slots in its own permutation of `0..M`, in turns; a key
/// picks `table[key mod M]`.
///
/// Every endpoint owns ⌊M/N⌋ or ⌈M/N⌉ slots (with equal weights), so load is nearly even;
/// a change of membership moves few keys (more than ketama, less than rehashing). The
/// permutation of an endpoint comes from two hashes of its id: `offset = h(id, 0) mod M`,
/// `skip = h(id, 1) mod (M − 1) + 1`. Weights give an endpoint `weight` turns per round
/// (after dividing by the gcd). A build is O(M log M); a pick is one multiply and one
/// load. Keyless picks use a random key.
#[derive(Debug)]
pub struct Maglev {
    size: usize,
    rng: Rng,
}

impl Maglev {
    /// Maglev with a table of [`DEFAULT_TABLE_SIZE`] (65 537) slots.
    pub fn new() -> Self {
        Self { size: DEFAULT_TABLE_SIZE, rng: Rng::new(None) }
    }

    /// Maglev with a table of `size` slots, which must be a prime from 3 to
    /// [`MAX_TABLE_SIZE`] (16 777 259); keep it at least 100 × the number of endpoints for
    /// even load.
    ///
    /// # Errors
    /// [`Error`] naming the table size when it is not such a prime.
    pub fn with_table_size(size: usize) -> Result<Self> {
        if !(3..=MAX_TABLE_SIZE).contains(&size) || !is_prime(size) {
            return Err(Error::invalid(
                "Maglev table size",
                size,
                "a prime from 3 to 16777259 (MAX_TABLE_SIZE), e.g. 65537 or 655373",
            ));
        }
        Ok(Self { size, rng: Rng::new(None) })
    }

    /// The table size.
    pub fn table_size(&self) -> usize {
        self.size
    }
}

impl Default for Maglev {
    fn default() -> Self {
        Self::new()
    }
}

fn is_prime(n: usize) -> bool {
    n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| !n.is_multiple_of(d))
}

/// The lookup table: endpoint index per slot.
pub struct Table {
    slots: Vec<u32>,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table").field("slots", &self.slots.len()).finish_non_exhaustive()
    }
}

impl Table {
    /// How many slots each endpoint owns, by endpoint index.
    pub fn shares(&self, endpoints: usize) -> Vec<usize> {
        let mut shares = vec![0; endpoints];
        for &s in &self.slots {
            if let Some(c) = shares.get_mut(s as usize) {
                *c += 1;
            }
        }
        shares
    }
}

impl Strategy for Maglev {
    type State = Table;

    fn build(&self, endpoints: &[Arc<Endpoint>]) -> Table {
        let m = self.size;
        if endpoints.is_empty() {
            return Table { slots: Vec::new() };
        }
        let units = weight_units(endpoints, MAX_WEIGHT_UNITS);
        let perms: Vec<(usize, usize)> = endpoints
            .iter()
            .map(|e| {
                let id = e.id().as_bytes();
                ((hash_with(id, 0) % m as u64) as usize, (hash_with(id, 1) % (m as u64 - 1)) as usize + 1)
            })
            .collect();
        let mut next = vec![0usize; endpoints.len()];
        let mut slots = vec![u32::MAX; m];
        let mut filled = 0;
        'fill: loop {
            for (i, &(offset, skip)) in perms.iter().enumerate() {
                for _ in 0..units[i] {
                    let mut c = (offset + next[i] * skip) % m;
                    while slots[c] != u32::MAX {
                        next[i] += 1;
                        c = (offset + next[i] * skip) % m;
                    }
                    slots[c] = i as u32;
                    next[i] += 1;
                    filled += 1;
                    if filled == m {
                        break 'fill;
                    }
                }
            }
        }
        Table { slots }
    }

    #[inline]
    fn pick(&self, table: &Table, _: &[Arc<Endpoint>], request: &Request<'_>) -> usize {
        let h = request.key_hash().unwrap_or_else(|| self.rng.next());
        table.slots.get(reduce(h, table.slots.len())).copied().unwrap_or(0) as usize
    }

    fn reads_in_flight(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::test_support::endpoints;

    #[test]
    fn table_size_must_be_prime() {
        assert!(Maglev::with_table_size(65_536).is_err());
        assert!(Maglev::with_table_size(1).is_err());
        assert_eq!(Maglev::with_table_size(251).map(|m| m.table_size()), Ok(251));
    }

    #[test]
    fn table_size_is_capped_at_max_table_size() {
        assert!(is_prime(MAX_TABLE_SIZE) && !((1 << 24)..MAX_TABLE_SIZE).any(is_prime));
        assert!(is_prime(DEFAULT_TABLE_SIZE) && DEFAULT_TABLE_SIZE <= MAX_TABLE_SIZE);
        // Checked without building: a table of either size would be allocated on build.
        assert_eq!(Maglev::with_table_size(MAX_TABLE_SIZE).map(|m| m.table_size()), Ok(MAX_TABLE_SIZE));
        for too_big in [16_777_289, 4_294_967_291, usize::MAX] {
            let err = Maglev::with_table_size(too_big).expect_err("above the cap");
            assert_eq!(
                err.to_string(),
                format!(
                    "invalid Maglev table size = {too_big}: expected a prime from 3 to 16777259 \
                     (MAX_TABLE_SIZE), e.g. 65537 or 655373"
                )
            );
        }
    }

    #[test]
    fn every_slot_filled_and_even() {
        let eps = endpoints(&[1; 7]);
        let table = Maglev::with_table_size(1009).map(|m| m.build(&eps)).expect("prime");
        let shares = table.shares(7);
        assert_eq!(shares.iter().sum::<usize>(), 1009);
        assert!(shares.iter().all(|&s| s == 144 || s == 145), "{shares:?}");
    }

    #[test]
    fn weights_skew_shares() {
        let eps = endpoints(&[3, 1]);
        let table = Maglev::with_table_size(1009).map(|m| m.build(&eps)).expect("prime");
        let shares = table.shares(2);
        assert!(shares[0] >= 3 * shares[1] - 3, "{shares:?}");
    }
}
