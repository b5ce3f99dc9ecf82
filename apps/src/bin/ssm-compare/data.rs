//! The comparison's data: generated synthetic-task streams, LRA ListOps, and the test sets.

use anyhow::{Result, bail};
use burn::module::Module;
use burn::tensor::Device;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ssm_core::models::{TokenModel, TokenTensors};
use ssm_core::tasks::{Labelled, SyntheticTask, TokenBatch};
use ssm_core::train::{DataSource, Stats, Trainable};
use std::path::{Path, PathBuf};

/// Named test sets: the sequence length (or `test`) and its batches.
pub type TestSets = Vec<(String, Vec<TokenBatch>)>;

/// A seed for item `i` of stream `stream` (1: training, 2: evaluation, 3: test), so the test
/// sets never overlap what training or evaluation draws.
pub fn mix(seed: u64, stream: u64, i: u64) -> u64 {
    let mut r = StdRng::seed_from_u64(
        seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i.wrapping_mul(0xD1B5_4A32_D192_ED03),
    );
    r.random()
}

/// Generated training stream, fixed evaluation set.
pub struct Synthetic {
    task: SyntheticTask,
    batch: usize,
    seed: u64,
    eval: Vec<TokenBatch>,
}

impl Synthetic {
    pub fn new(task: SyntheticTask, batch: usize, seed: u64, eval_size: usize) -> Self {
        let eval = (0..eval_size.div_ceil(batch)).map(|i| task.batch(batch, mix(seed, 2, i as u64))).collect();
        Self { task, batch, seed, eval }
    }
}

impl DataSource<TokenTensors> for Synthetic {
    fn train_batch(&mut self, step: usize, device: &Device) -> TokenTensors {
        TokenTensors::new(&self.task.batch(self.batch, mix(self.seed, 1, step as u64)), device)
    }
    fn eval_batches(&self, device: &Device) -> Vec<TokenTensors> {
        self.eval.iter().map(|b| TokenTensors::new(b, device)).collect()
    }
}

/// Test sets of `size` sequences at the task's length and at each of `extra_lens`.
pub fn synthetic_tests(
    task: &SyntheticTask,
    extra_lens: &[usize],
    size: usize,
    batch: usize,
    seed: u64,
) -> Result<TestSets> {
    let nb = size.div_ceil(batch);
    let mut sets = Vec::new();
    for t in std::iter::once(task.clone()).chain(extra_lens.iter().map(|&l| task.with_len(l))) {
        t.validate()?;
        sets.push((t.seq_len().to_string(), (0..nb).map(|i| t.batch(batch, mix(seed, 3, i as u64))).collect()));
    }
    Ok(sets)
}

/// A sequence-classification task (ListOps, the long-range suite): random training examples,
/// the validation split for evaluation.
pub struct LabelledData {
    pub train: Labelled,
    pub val: Labelled,
    pub batch: usize,
    pub seed: u64,
    pub max_len: usize,
}

impl DataSource<TokenTensors> for LabelledData {
    fn train_batch(&mut self, step: usize, device: &Device) -> TokenTensors {
        let mut r = StdRng::seed_from_u64(mix(self.seed, 1, step as u64));
        let idx: Vec<usize> = (0..self.batch).map(|_| r.random_range(0..self.train.len())).collect();
        TokenTensors::new(&self.train.batch(&idx, self.max_len), device)
    }
    fn eval_batches(&self, device: &Device) -> Vec<TokenTensors> {
        batches_of(&self.val, self.batch, self.max_len).iter().map(|b| TokenTensors::new(b, device)).collect()
    }
}

pub fn batches_of(d: &Labelled, batch: usize, max_len: usize) -> Vec<TokenBatch> {
    (0..d.len()).collect::<Vec<_>>().chunks(batch).map(|c| d.batch(c, max_len)).collect()
}

/// `basic_{split}.tsv[.gz]` in `dir`.
pub fn listops_file(dir: &Path, split: &str) -> Result<PathBuf> {
    for name in [format!("basic_{split}.tsv.gz"), format!("basic_{split}.tsv")] {
        let p = dir.join(&name);
        if p.exists() {
            return Ok(p);
        }
    }
    bail!("{}: no basic_{split}.tsv[.gz] (pass --data DIR)", dir.display())
}

/// Loss and accuracy of `model` on `batches`, without gradients.
pub fn test_stats(model: &TokenModel, batches: &[TokenBatch], device: &Device) -> Stats {
    let m = model.valid();
    let dev = device.clone().inner();
    let mut s = Stats::default();
    for b in batches {
        s.add(m.loss(&TokenTensors::new(b, &dev)).1);
    }
    s
}
