//! The language task: character-level next-token prediction on tiny-shakespeare, scored by the
//! test loss in bits per character — the survey's language-model comparison at equal parameters
//! and training time.
//!
//! The file's characters (sorted) are the vocabulary. The first 90 % of the text trains (random
//! windows), the next 5 % validates and the last 5 % tests, both as consecutive non-overlapping
//! windows, so no test character is ever trained on. Every position of a window is scored.

use crate::data::mix;
use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ssm_core::models::TokenTensors;
use ssm_core::tasks::TokenBatch;
use ssm_core::train::DataSource;
use std::path::Path;

/// Most validation windows scored at each evaluation during training.
const VAL_WINDOWS: usize = 64;

/// Training stream and validation windows of the language task.
pub struct LmData {
    train: Vec<i64>,
    val: Vec<TokenBatch>,
    batch: usize,
    len: usize,
    seed: u64,
}

/// The task's data: training stream, test batches and vocabulary size.
pub struct LmSplits {
    pub data: LmData,
    pub test: Vec<TokenBatch>,
    pub vocab: usize,
}

/// Reads `path` and splits it into windows of `len` characters.
pub fn load(path: &Path, len: usize, batch: usize, seed: u64) -> Result<LmSplits> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read the text", path.display()))?;
    let mut chars: Vec<char> = text.chars().collect();
    let ids = {
        let mut vocab = chars.clone();
        vocab.sort_unstable();
        vocab.dedup();
        let ids: Vec<i64> = chars.iter().map(|c| vocab.binary_search(c).unwrap_or(0) as i64).collect();
        chars = vocab;
        ids
    };
    let (a, b) = (ids.len() * 90 / 100, ids.len() * 95 / 100);
    if ids.len() - b < len + 1 || a < len + 1 {
        bail!("{}: {} characters are too few for {len}-character windows", path.display(), ids.len());
    }
    let mut val = windows(&ids[a..b], len, batch);
    val.truncate(VAL_WINDOWS.div_ceil(batch));
    let data = LmData { train: ids[..a].to_vec(), val, batch, len, seed };
    Ok(LmSplits { data, test: windows(&ids[b..], len, batch), vocab: chars.len() })
}

/// Consecutive non-overlapping windows of `s` (inputs `len` characters, targets the next ones).
fn windows(s: &[i64], len: usize, batch: usize) -> Vec<TokenBatch> {
    let starts: Vec<usize> = (0..(s.len() - 1) / len).map(|i| i * len).collect();
    starts.chunks(batch).map(|c| window_batch(s, c, len)).collect()
}

fn window_batch(s: &[i64], starts: &[usize], len: usize) -> TokenBatch {
    let (mut inputs, mut targets) = (Vec::new(), Vec::new());
    for &i in starts {
        inputs.extend_from_slice(&s[i..i + len]);
        targets.extend_from_slice(&s[i + 1..i + len + 1]);
    }
    TokenBatch { inputs, targets, batch: starts.len(), len }
}

impl DataSource<TokenTensors> for LmData {
    fn train_batch(&mut self, step: usize, device: &Device) -> TokenTensors {
        let mut r = StdRng::seed_from_u64(mix(self.seed, 1, step as u64));
        let starts: Vec<usize> = (0..self.batch).map(|_| r.random_range(0..self.train.len() - self.len)).collect();
        TokenTensors::new(&window_batch(&self.train, &starts, self.len), device)
    }
    fn eval_batches(&self, device: &Device) -> Vec<TokenTensors> {
        self.val.iter().map(|b| TokenTensors::new(b, device)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_predict_the_next_character_and_never_overlap() {
        let s: Vec<i64> = (0..23).collect();
        let w = windows(&s, 5, 2); // 22 positions have a next character: 4 windows of 5
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].inputs, vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(w[0].targets, vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(w[1].inputs, vec![10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
        assert_eq!(*w[1].targets.last().unwrap(), 20);
    }
}
