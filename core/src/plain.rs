//! Plain-Rust recurrent steps for inference: a trained model's weights copied once into `Vec`s,
//! then one token per sequence stepped with loops over slices — no tensor op per step, no
//! allocation per step. Sample-by-sample generation (SaShiMi) and token decode run hundreds of
//! tiny steps per second where each tensor op's fixed cost would dominate.
//!
//! A family opts in with [`SequenceMixer::plain_step`](crate::mixers::SequenceMixer); the
//! conformance suite checks every such step against the family's tensor `step`. A block whose
//! mixer has none (or that is bidirectional, or routes to experts) has no plain form, and
//! callers keep the tensor path.

use crate::blocks::ResidualBlock;
use crate::layers::{GatedMlp, Norm};
use burn::nn::Linear;
use burn::tensor::Tensor;

/// One recurrent step of a mixer over `batch` sequences, state kept inside: `x` `[batch, D]`
/// → `y` `[batch, D]`, both row-major.
pub trait PlainStep: Send {
    fn step(&mut self, x: &[f32], y: &mut [f32]);
}

/// A tensor's values as `f32`, row-major.
pub fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 data")
}

/// `y = x W + b` for rows of `x` (`W` stored `[in, out]` as burn's `Linear`).
#[derive(Debug, Clone)]
pub struct PlainLinear {
    pub d_in: usize,
    pub d_out: usize,
    w: Vec<f32>,
    b: Option<Vec<f32>>,
}

impl PlainLinear {
    pub fn new(l: &Linear) -> Self {
        let [d_in, d_out] = l.weight.dims();
        Self { d_in, d_out, w: host(l.weight.val()), b: l.bias.as_ref().map(|b| host(b.val())) }
    }

    /// `x` `[rows, d_in]` → `y` `[rows, d_out]`.
    pub fn apply(&self, x: &[f32], y: &mut [f32]) {
        for (xr, yr) in x.chunks_exact(self.d_in).zip(y.chunks_exact_mut(self.d_out)) {
            match &self.b {
                Some(b) => yr.copy_from_slice(b),
                None => yr.fill(0.0),
            }
            for (&xi, wr) in xr.iter().zip(self.w.chunks_exact(self.d_out)) {
                for (yo, &w) in yr.iter_mut().zip(wr) {
                    *yo += xi * w;
                }
            }
        }
    }
}

/// LayerNorm or RMSNorm over rows of width `gamma.len()`.
#[derive(Debug, Clone)]
pub struct PlainNorm {
    gamma: Vec<f32>,
    beta: Option<Vec<f32>>,
    /// Subtract the mean (LayerNorm) or not (RMSNorm).
    center: bool,
    eps: f32,
}

impl PlainNorm {
    /// `eps` is the one the norm was built with (burn keeps LayerNorm's private).
    pub fn new(n: &Norm, eps: f64) -> Self {
        let eps = eps as f32;
        match n {
            Norm::Layer(l) => PlainNorm {
                gamma: host(l.gamma.val()),
                beta: l.beta.as_ref().map(|b| host(b.val())),
                center: true,
                eps,
            },
            Norm::Rms(r) => PlainNorm { gamma: host(r.gamma.val()), beta: None, center: false, eps },
        }
    }

    /// `y` ← norm(`x`) row by row.
    pub fn apply(&self, x: &[f32], y: &mut [f32]) {
        let d = self.gamma.len();
        for (xr, yr) in x.chunks_exact(d).zip(y.chunks_exact_mut(d)) {
            let mean = if self.center { xr.iter().sum::<f32>() / d as f32 } else { 0.0 };
            let var = xr.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
            let inv = 1.0 / (var + self.eps).sqrt();
            for (i, (o, &v)) in yr.iter_mut().zip(xr).enumerate() {
                *o = (v - mean) * inv * self.gamma[i] + self.beta.as_ref().map_or(0.0, |b| b[i]);
            }
        }
    }
}

/// down(silu(gate(x)) ⊙ up(x)).
struct PlainMlp {
    gate: PlainLinear,
    up: PlainLinear,
    down: PlainLinear,
    g: Vec<f32>,
    u: Vec<f32>,
}

impl PlainMlp {
    fn new(m: &GatedMlp, batch: usize) -> Self {
        let (gate, up, down) = (PlainLinear::new(&m.gate), PlainLinear::new(&m.up), PlainLinear::new(&m.down));
        let hidden = batch * gate.d_out;
        Self { gate, up, down, g: vec![0.0; hidden], u: vec![0.0; hidden] }
    }

    fn apply(&mut self, x: &[f32], y: &mut [f32]) {
        self.gate.apply(x, &mut self.g);
        self.up.apply(x, &mut self.u);
        for (g, u) in self.g.iter_mut().zip(&self.u) {
            *g = *g / (1.0 + (-*g).exp()) * u;
        }
        self.down.apply(&self.g, y);
    }
}

/// A causal residual block stepped in plain Rust:
/// `h = x + mixer(norm(x))`, then `h + mlp(norm₂(h))` when the block has an MLP.
pub struct PlainBlock {
    norm: PlainNorm,
    mixer: Box<dyn PlainStep>,
    channel: Option<(PlainNorm, PlainMlp)>,
    a: Vec<f32>,
    b: Vec<f32>,
}

impl PlainBlock {
    /// The block for `batch` sequences from its initial state, or `None` when it has no plain
    /// form (a mixer without one, a bidirectional block, experts). `eps`: the block's norm epsilon.
    pub fn new(block: &ResidualBlock, eps: f64, batch: usize) -> Option<Self> {
        if !block.is_causal() || block.moe.is_some() || (block.mlp_norm.is_some() && block.mlp.is_none()) {
            return None;
        }
        let mixer = block.mixer.plain_step(batch)?;
        let d = block.mixer.d_model();
        let channel = match (&block.mlp_norm, &block.mlp) {
            (Some(n), Some(m)) => Some((PlainNorm::new(n, eps), PlainMlp::new(m, batch))),
            _ => None,
        };
        Some(Self {
            norm: PlainNorm::new(&block.norm, eps),
            mixer,
            channel,
            a: vec![0.0; batch * d],
            b: vec![0.0; batch * d],
        })
    }

    /// `x` ← block(`x`), `x` `[batch, D]`.
    pub fn step(&mut self, x: &mut [f32]) {
        self.norm.apply(x, &mut self.a);
        self.mixer.step(&self.a, &mut self.b);
        for (v, m) in x.iter_mut().zip(&self.b) {
            *v += m;
        }
        if let Some((norm, mlp)) = &mut self.channel {
            norm.apply(x, &mut self.a);
            mlp.apply(&self.a, &mut self.b);
            for (v, m) in x.iter_mut().zip(&self.b) {
                *v += m;
            }
        }
    }
}

/// erf-based GELU, as burn's `gelu`.
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + libm::erff(x / std::f32::consts::SQRT_2))
}
