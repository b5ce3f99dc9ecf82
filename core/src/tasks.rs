//! Synthetic sequence tasks from the SSM literature (seeded generators) and the LRA ListOps
//! loader. Every task yields token batches: `inputs` and `targets` `[B, L]`, with target −1
//! where no prediction is scored.
//!
//! - **Selective copying** (Mamba §4.1): `n_tokens` data tokens scattered among noise tokens;
//!   after them `n_tokens` markers, at which the data tokens must be reproduced in order.
//! - **Induction heads** (Olsson et al.; Mamba §4.1): a trigger token followed by a value occurs
//!   once in random tokens; the sequence ends with the trigger, and the value must follow.
//! - **Multi-query associative recall** (Zoology, Arora et al.): `n_pairs` key–value pairs, then
//!   the keys again at random places; each must be answered with its value.
//! - **ListOps** (LRA): nested MIN/MAX/MED/SM expressions, classified 0–9 at the last token.

use crate::error::{FileError, InvalidConfig};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// A batch of token sequences, row-major `[batch, len]`.
#[derive(Debug, Clone)]
pub struct TokenBatch {
    pub inputs: Vec<i64>,
    pub targets: Vec<i64>,
    pub batch: usize,
    pub len: usize,
}

impl TokenBatch {
    fn from_rows(rows: Vec<(Vec<i64>, Vec<i64>)>) -> Self {
        let len = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        let batch = rows.len();
        let (mut inputs, mut targets) = (Vec::with_capacity(batch * len), Vec::with_capacity(batch * len));
        for (x, y) in rows {
            // Left-pad with token 0 / target −1 so every row ends at the last position.
            let pad = len - x.len();
            inputs.extend(std::iter::repeat_n(0, pad).chain(x));
            targets.extend(std::iter::repeat_n(-1, pad).chain(y));
        }
        Self { inputs, targets, batch, len }
    }

    /// Number of scored positions.
    pub fn scored(&self) -> usize {
        self.targets.iter().filter(|&&t| t >= 0).count()
    }
}

/// Which synthetic task, with its parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "kebab-case")]
pub enum SyntheticTask {
    SelectiveCopying { len: usize, n_tokens: usize, vocab: usize },
    InductionHeads { len: usize, vocab: usize },
    Mqar { len: usize, n_pairs: usize, vocab: usize },
}

impl SyntheticTask {
    pub fn name(&self) -> &'static str {
        match self {
            Self::SelectiveCopying { .. } => "selective-copying",
            Self::InductionHeads { .. } => "induction-heads",
            Self::Mqar { .. } => "mqar",
        }
    }

    /// Input vocabulary size (data tokens plus the task's special tokens).
    pub fn vocab_size(&self) -> usize {
        match *self {
            Self::SelectiveCopying { vocab, .. } => vocab + 2,
            Self::InductionHeads { vocab, .. } => vocab + 1,
            Self::Mqar { vocab, .. } => vocab + 1,
        }
    }

    pub fn seq_len(&self) -> usize {
        match *self {
            Self::SelectiveCopying { len, n_tokens, .. } => len + n_tokens,
            Self::InductionHeads { len, .. } | Self::Mqar { len, .. } => len,
        }
    }

    /// The same task at another sequence length (extrapolation tests).
    pub fn with_len(&self, new_len: usize) -> Self {
        let mut t = self.clone();
        match &mut t {
            Self::SelectiveCopying { len, .. } | Self::InductionHeads { len, .. } | Self::Mqar { len, .. } => {
                *len = new_len
            }
        }
        t
    }

    /// Checks the parameters, with a message naming the problem.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        match *self {
            Self::SelectiveCopying { len, n_tokens, vocab } => {
                if n_tokens == 0 || n_tokens > len || vocab == 0 {
                    return Err(InvalidConfig(format!(
                        "selective-copying: need 0 < n_tokens ({n_tokens}) ≤ len ({len}) and vocab > 0"
                    )));
                }
            }
            Self::InductionHeads { len, vocab } => {
                if len < 4 || vocab < 2 {
                    return Err(InvalidConfig(format!(
                        "induction-heads: need len ≥ 4 (got {len}) and vocab ≥ 2 (got {vocab})"
                    )));
                }
            }
            Self::Mqar { len, n_pairs, vocab } => {
                if n_pairs == 0 || 3 * n_pairs > len || vocab < 2 * n_pairs {
                    return Err(InvalidConfig(format!(
                        "mqar: need 3·n_pairs ≤ len and 2·n_pairs ≤ vocab (n_pairs {n_pairs}, len {len}, vocab {vocab})"
                    )));
                }
            }
        }
        Ok(())
    }

    /// One sequence.
    pub fn sample_one(&self, rng: &mut StdRng) -> (Vec<i64>, Vec<i64>) {
        match *self {
            Self::SelectiveCopying { len, n_tokens, vocab } => {
                // 0 = noise, 1 = marker, 2.. = data
                let mut x = vec![0i64; len + n_tokens];
                let mut y = vec![-1i64; len + n_tokens];
                let mut pos: Vec<usize> = (0..len).collect();
                pos.shuffle(rng);
                let mut pos = pos[..n_tokens].to_vec();
                pos.sort_unstable();
                for (i, &p) in pos.iter().enumerate() {
                    let tok = 2 + rng.random_range(0..vocab) as i64;
                    x[p] = tok;
                    x[len + i] = 1;
                    y[len + i] = tok;
                }
                (x, y)
            }
            Self::InductionHeads { len, vocab } => {
                let trigger = vocab as i64;
                let mut x: Vec<i64> = (0..len).map(|_| rng.random_range(0..vocab) as i64).collect();
                let mut y = vec![-1i64; len];
                let p = rng.random_range(0..len - 2);
                let value = rng.random_range(0..vocab) as i64;
                x[p] = trigger;
                x[p + 1] = value;
                x[len - 1] = trigger;
                y[len - 1] = value;
                (x, y)
            }
            Self::Mqar { len, n_pairs, vocab } => {
                let half = vocab / 2;
                let noise = vocab as i64;
                let mut keys: Vec<i64> = (0..half as i64).collect();
                keys.shuffle(rng);
                let keys = &keys[..n_pairs];
                let values: Vec<i64> =
                    (0..n_pairs).map(|_| (half + rng.random_range(0..vocab - half)) as i64).collect();
                let mut x = vec![noise; len];
                let mut y = vec![-1i64; len];
                for i in 0..n_pairs {
                    x[2 * i] = keys[i];
                    x[2 * i + 1] = values[i];
                }
                let mut slots: Vec<usize> = (2 * n_pairs..len).collect();
                slots.shuffle(rng);
                let mut order: Vec<usize> = (0..n_pairs).collect();
                order.shuffle(rng);
                for (slot, &i) in slots.iter().zip(&order) {
                    x[*slot] = keys[i];
                    y[*slot] = values[i];
                }
                (x, y)
            }
        }
    }

    /// A batch drawn from the generator seeded with `seed` (deterministic).
    pub fn batch(&self, batch: usize, seed: u64) -> TokenBatch {
        let mut rng = StdRng::seed_from_u64(seed);
        TokenBatch::from_rows((0..batch).map(|_| self.sample_one(&mut rng)).collect())
    }
}

/// ListOps token vocabulary after LRA's preprocessing (brackets `(` `)` removed); 0 is padding.
pub const LISTOPS_VOCAB: &[&str] =
    &["<pad>", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "[MIN", "[MAX", "[MED", "[SM", "]"];

/// One split of a sequence-classification task (LRA ListOps, the long-range suite's image,
/// Pathfinder and text tasks): token sequences and their labels.
#[derive(Debug, Clone)]
pub struct Labelled {
    pub sequences: Vec<Vec<i64>>,
    pub labels: Vec<i64>,
}

impl Labelled {
    /// Reads an LRA ListOps TSV (`Source\tTarget` header), plain or gzipped.
    pub fn load_listops(path: &Path) -> Result<Self, FileError> {
        let file = std::fs::File::open(path).map_err(|e| FileError::new(path, e.to_string()))?;
        let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
            Box::new(flate2::read::GzDecoder::new(file))
        } else {
            Box::new(file)
        };
        let mut out = Labelled { sequences: Vec::new(), labels: Vec::new() };
        for (i, line) in BufReader::new(reader).lines().enumerate() {
            let line = line.map_err(|e| FileError::new(path, format!("line {}: {e}", i + 1)))?;
            if i == 0 {
                if !line.starts_with("Source") {
                    return Err(FileError::new(
                        path,
                        format!("expected a 'Source\\tTarget' header, got {:?}", trunc(&line)),
                    ));
                }
                continue;
            }
            if line.trim().is_empty() {
                continue;
            }
            let (src, tgt) = line
                .rsplit_once('\t')
                .ok_or_else(|| FileError::new(path, format!("line {}: no tab between source and target", i + 1)))?;
            let label: i64 = tgt
                .trim()
                .parse()
                .ok()
                .filter(|v| (0..10).contains(v))
                .ok_or_else(|| FileError::new(path, format!("line {}: target {tgt:?} is not 0–9", i + 1)))?;
            let mut seq = Vec::new();
            for tok in src.split_whitespace().filter(|t| *t != "(" && *t != ")") {
                let id = LISTOPS_VOCAB
                    .iter()
                    .position(|v| *v == tok)
                    .ok_or_else(|| FileError::new(path, format!("line {}: unknown token {tok:?}", i + 1)))?;
                seq.push(id as i64);
            }
            if seq.is_empty() {
                return Err(FileError::new(path, format!("line {}: empty expression", i + 1)));
            }
            out.sequences.push(seq);
            out.labels.push(label);
        }
        if out.labels.is_empty() {
            return Err(FileError::new(path, "no examples"));
        }
        Ok(out)
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Examples `idx`, truncated to `max_len` tokens (keeping the end), left-padded; the label
    /// is the target of the last position.
    pub fn batch(&self, idx: &[usize], max_len: usize) -> TokenBatch {
        TokenBatch::from_rows(
            idx.iter()
                .map(|&i| {
                    let s = &self.sequences[i];
                    let s = s[s.len().saturating_sub(max_len)..].to_vec();
                    let mut y = vec![-1; s.len()];
                    *y.last_mut().unwrap() = self.labels[i];
                    (s, y)
                })
                .collect(),
        )
    }
}

fn trunc(s: &str) -> String {
    s.chars().take(40).collect()
}
