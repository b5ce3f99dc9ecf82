//! A tokenised text corpus as a training data source: nanoGPT's split (first 90 % train, last
//! 10 % validation), random training windows deterministic in (seed, step), and a fixed set
//! of validation windows. Validation loss is reported in nats per token and in bits per byte.

use crate::model::LmBatch;
use crate::tokenizer::TokenizerError;
use burn::tensor::Device;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use ssm_core::train::{DataSource, Stats};

pub struct TextData {
    pub train: Vec<u32>,
    pub val: Vec<u32>,
    /// UTF-8 bytes per token in the validation split (for bits per byte).
    pub val_bytes_per_token: f64,
    pub context: usize,
    pub batch: usize,
    pub seed: u64,
    /// Validation windows evaluated each epoch.
    pub eval_windows: usize,
}

/// Why a text cannot be used for training.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error("text too short for context {context}: {train} train and {val} validation tokens")]
    TooShort { context: usize, train: usize, val: usize },
}

impl TextData {
    /// Splits `text` at 90 % of its tokens. `encode` maps text to tokens.
    pub fn split(
        text: &str,
        encode: impl Fn(&str) -> Result<Vec<u32>, TokenizerError>,
        context: usize,
        batch: usize,
        seed: u64,
    ) -> Result<Self, TextError> {
        let cut = text.char_indices().nth(text.chars().count() * 9 / 10).map_or(text.len(), |(i, _)| i);
        let (a, b) = text.split_at(cut);
        let train = encode(a)?;
        let val = encode(b)?;
        if train.len() <= context + 1 || val.len() <= context + 1 {
            return Err(TextError::TooShort { context, train: train.len(), val: val.len() });
        }
        let val_bytes_per_token = b.len() as f64 / val.len() as f64;
        Ok(Self { train, val, val_bytes_per_token, context, batch, seed, eval_windows: 256 })
    }

    fn windows(tokens: &[u32], starts: impl Iterator<Item = usize>, len: usize) -> Vec<Vec<u32>> {
        starts.map(|s| tokens[s..s + len].to_vec()).collect()
    }
}

impl DataSource<LmBatch> for TextData {
    fn train_batch(&mut self, step: usize, device: &Device) -> LmBatch {
        let mut rng = StdRng::seed_from_u64(self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ step as u64);
        let hi = self.train.len() - self.context - 1;
        let starts: Vec<usize> = (0..self.batch).map(|_| rng.random_range(0..=hi)).collect();
        LmBatch::from_windows(&Self::windows(&self.train, starts.into_iter(), self.context + 1), device)
    }

    /// Evenly spaced windows over the validation split (non-overlapping when it is long enough).
    fn eval_batches(&self, device: &Device) -> Vec<LmBatch> {
        let len = self.context + 1;
        let hi = self.val.len() - len;
        let n = self.eval_windows.min(hi / len + 1).max(1);
        let starts: Vec<usize> = (0..n).map(|i| if n == 1 { 0 } else { i * hi / (n - 1) }).collect();
        starts
            .chunks(self.batch.max(1))
            .map(|c| LmBatch::from_windows(&Self::windows(&self.val, c.iter().copied(), len), device))
            .collect()
    }

    fn eval_metrics(&self, eval: &Stats) -> Map<String, Value> {
        let nats = eval.loss();
        let bpb = nats / std::f64::consts::LN_2 / self.val_bytes_per_token;
        let m = json!({ "val_loss": nats, "val_perplexity": nats.exp(), "val_bits_per_byte": bpb });
        m.as_object().unwrap().clone()
    }
}
