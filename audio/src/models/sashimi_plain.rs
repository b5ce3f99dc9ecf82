//! SaShiMi's sample-by-sample generation in plain Rust ([`ssm_core::plain`]): the same
//! computation as [`Sashimi::step`] — every level's blocks, DownPool once a group of p samples
//! is complete, UpPool's outputs emitted one pooled step later — with the weights copied once
//! and every buffer allocated up front, so a sample costs its arithmetic and no tensor op.

use super::sashimi::{LEVELS, Sashimi, SashimiConfig};
use burn::tensor::Device;
use ssm_core::blocks::ResidualBlock;
use ssm_core::plain::{PlainBlock, PlainLinear, PlainNorm, PlainSpec, Precision, Weights};

/// One pooling level: its blocks, pools and the buffers of the group in flight.
struct PlainLevel {
    down: Vec<PlainBlock>,
    up: Vec<PlainBlock>,
    down_pool: PlainLinear,
    up_pool: PlainLinear,
    pool: usize,
    width: usize,
    /// Samples seen modulo `pool`.
    slot: usize,
    /// The down blocks' inputs and outputs of this sample (skips), each `[B, H]`.
    skips: Vec<Vec<f32>>,
    /// Down-block outputs waiting for DownPool, `[B, p·H]`.
    waiting: Vec<f32>,
    /// UpPool outputs still to emit, `[B, p·H]`.
    pending: Vec<f32>,
    coarse: Vec<f32>,
    /// The centre's working copy of `coarse` (deepest level only).
    centre_in: Vec<f32>,
}

/// A SaShiMi network ready to generate `batch` sequences from the start.
pub struct PlainSashimi {
    batch: usize,
    embed: Weights,
    d_model: usize,
    levels: Vec<PlainLevel>,
    center: Vec<PlainBlock>,
    norm: PlainNorm,
    head: PlainLinear,
    x: Vec<f32>,
    normed: Vec<f32>,
    logits: Vec<f32>,
}

/// Plain copies of `bs` (blocks of width `width`) from their initial states.
fn blocks(
    bs: &[ResidualBlock],
    cfg: &SashimiConfig,
    width: usize,
    batch: usize,
    dev: &Device,
) -> Option<Vec<PlainBlock>> {
    let spec = PlainSpec { batch, precision: Precision::F32, layer_eps: cfg.norm_eps(width) };
    bs.iter().map(|b| PlainBlock::new(b, &b.mixer.init_state(batch, dev), spec)).collect()
}

impl PlainSashimi {
    /// `None` when a block's mixer has no plain step (callers keep [`Sashimi::step`]).
    pub fn new(net: &Sashimi, cfg: &SashimiConfig, batch: usize) -> Option<Self> {
        let dev = net.embed.weight.val().device();
        let mut levels = Vec::new();
        let mut width = cfg.d_model;
        for l in &net.levels {
            let wide = width * cfg.expand;
            levels.push(PlainLevel {
                down: blocks(&l.down, cfg, width, batch, &dev)?,
                up: blocks(&l.up, cfg, width, batch, &dev)?,
                down_pool: PlainLinear::new(&l.down_pool, Precision::F32),
                up_pool: PlainLinear::new(&l.up_pool, Precision::F32),
                pool: l.pool,
                width,
                slot: 0,
                skips: vec![vec![0.0; batch * width]; l.down.len() + 1],
                waiting: vec![0.0; batch * l.pool * width],
                pending: vec![0.0; batch * l.pool * width],
                coarse: vec![0.0; batch * wide],
                centre_in: vec![0.0; batch * wide],
            });
            width = wide;
        }
        let d = cfg.d_model;
        Some(Self {
            batch,
            embed: Weights::of(net.embed.weight.val()),
            d_model: d,
            levels,
            center: blocks(&net.center, cfg, width, batch, &dev)?,
            norm: PlainNorm::new(&net.norm, Some(super::sashimi::HEAD_NORM_EPS))?,
            head: PlainLinear::new(&net.head, Precision::F32),
            x: vec![0.0; batch * d],
            normed: vec![0.0; batch * d],
            logits: vec![0.0; batch * LEVELS],
        })
    }

    /// Logits `[batch, 256]` after one µ-law token per sequence.
    pub fn step(&mut self, tokens: &[i64]) -> &[f32] {
        assert_eq!(tokens.len(), self.batch, "one token per sequence");
        let d = self.d_model;
        for (row, &t) in self.x.chunks_exact_mut(d).zip(tokens) {
            let t = (t.clamp(0, LEVELS as i64 - 1)) as usize;
            row.copy_from_slice(&self.embed[t * d..(t + 1) * d]);
        }
        let mut x = std::mem::take(&mut self.x);
        if self.levels.is_empty() {
            self.center.iter_mut().for_each(|b| b.step(&mut x));
        } else {
            level_step(&mut self.levels, &mut self.center, self.batch, &mut x);
        }
        self.norm.apply(&x, &mut self.normed);
        self.x = x;
        self.head.apply(&self.normed, &mut self.logits);
        &self.logits
    }
}

/// Level `levels[0]` (the deeper ones recursively) for one sample `x` `[B, H]`, in place.
fn level_step(levels: &mut [PlainLevel], center: &mut [PlainBlock], batch: usize, x: &mut [f32]) {
    let (level, deeper) = levels.split_first_mut().expect("a level");
    let (h, p) = (level.width, level.pool);
    level.skips[0].copy_from_slice(x);
    for (i, b) in level.down.iter_mut().enumerate() {
        b.step(x);
        level.skips[i + 1].copy_from_slice(x);
    }
    // Gather this sample into the group; the output for it was computed one group earlier.
    let slot = level.slot;
    for bi in 0..batch {
        let at = bi * p * h + slot * h;
        level.waiting[at..at + h].copy_from_slice(&x[bi * h..(bi + 1) * h]);
        x[bi * h..(bi + 1) * h].copy_from_slice(&level.pending[at..at + h]);
    }
    level.slot = (slot + 1) % p;
    if level.slot == 0 {
        level.down_pool.apply(&level.waiting, &mut level.coarse);
        if deeper.is_empty() {
            level.centre_in.copy_from_slice(&level.coarse);
            center.iter_mut().for_each(|b| b.step(&mut level.centre_in));
            add(&mut level.coarse, &level.centre_in);
        } else {
            level_step(deeper, center, batch, &mut level.coarse);
        }
        level.up_pool.apply(&level.coarse, &mut level.pending);
    }
    let mut skips = level.skips.iter().rev();
    add(x, skips.next().expect("skip"));
    for (b, s) in level.up.iter_mut().zip(skips) {
        b.step(x);
        add(x, s);
    }
}

fn add(x: &mut [f32], y: &[f32]) {
    x.iter_mut().zip(y).for_each(|(a, b)| *a += b);
}
