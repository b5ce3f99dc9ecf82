//! A generated graph of any size for scale tests: a planted partition (stochastic block model)
//! with class-correlated sparse binary features. Deterministic in its seed.
//!
//! Each node gets a uniform class; it draws `degree / 2` partners, each of its own class with
//! probability `homophily`, otherwise uniform; it switches on `active` of `features` binary
//! features, each from its class's block of `features / classes` with probability 0.5,
//! otherwise uniform.

use crate::data::{GraphData, SparseFeatures, random_split};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Debug, Clone)]
pub struct Planted {
    pub nodes: usize,
    pub degree: usize,
    pub classes: usize,
    pub features: usize,
    pub active: usize,
    pub homophily: f64,
}

impl Default for Planted {
    fn default() -> Self {
        Planted { nodes: 100_000, degree: 10, classes: 10, features: 500, active: 20, homophily: 0.8 }
    }
}

impl Planted {
    pub fn generate(&self, seed: u64) -> GraphData {
        let mut rng = StdRng::seed_from_u64(seed);
        let (n, c) = (self.nodes.max(2), self.classes.max(2));
        let labels: Vec<i64> = (0..n).map(|_| rng.random_range(0..c) as i64).collect();
        let mut by_class = vec![Vec::new(); c];
        labels.iter().enumerate().for_each(|(i, &l)| by_class[l as usize].push(i));
        let mut edges = Vec::with_capacity(n * self.degree / 2);
        for (i, &l) in labels.iter().enumerate() {
            for _ in 0..self.degree / 2 {
                let same = &by_class[l as usize];
                let j = if rng.random::<f64>() < self.homophily && !same.is_empty() {
                    same[rng.random_range(0..same.len())]
                } else {
                    rng.random_range(0..n)
                };
                edges.push((i, j));
            }
        }
        let block = (self.features / c).max(1);
        let mut f = SparseFeatures { dim: self.features.max(block * c), ..Default::default() };
        for (i, &l) in labels.iter().enumerate() {
            for _ in 0..self.active {
                let col = if rng.random::<bool>() {
                    l as usize * block + rng.random_range(0..block)
                } else {
                    rng.random_range(0..f.dim)
                };
                f.rows.push(i as u32);
                f.cols.push(col as u32);
                f.vals.push(1.0);
            }
        }
        let split = random_split(&labels, 20, 500, 1000, seed);
        GraphData::new("planted", n, &edges, f, labels, split).expect("a generated graph is valid")
    }
}
