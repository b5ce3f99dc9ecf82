//! Helpers for the runner's data sources.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// The `n` items of a training set as an endless stream of epochs, each epoch a fresh seeded
/// permutation (seed + 7919 · epoch). Batch `s` of size `b` is the stream's items
/// `s·b .. (s+1)·b`, so the order depends only on the step: a resumed run continues it.
#[derive(Debug, Clone)]
pub struct EpochOrder {
    n: usize,
    seed: u64,
    epoch: usize,
    perm: Vec<usize>,
}

impl EpochOrder {
    pub fn new(n: usize, seed: u64) -> Self {
        Self { n, seed, epoch: usize::MAX, perm: Vec::new() }
    }

    /// The permutation of `0..n` used in `epoch`.
    pub fn permutation(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        p.shuffle(&mut StdRng::seed_from_u64(seed.wrapping_add(epoch as u64 * 7919)));
        p
    }

    /// Item `g` of the stream.
    pub fn item(&mut self, g: usize) -> usize {
        assert!(self.n > 0, "EpochOrder over an empty set");
        let epoch = g / self.n;
        if self.epoch != epoch {
            self.perm = Self::permutation(self.n, self.seed, epoch);
            self.epoch = epoch;
        }
        self.perm[g % self.n]
    }

    /// The items of batch `step` when every batch holds `batch` items.
    pub fn batch(&mut self, step: usize, batch: usize) -> Vec<usize> {
        (step * batch..(step + 1) * batch).map(|g| self.item(g)).collect()
    }
}
