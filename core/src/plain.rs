//! Plain-Rust recurrent steps for inference: a trained model's weights taken once (f32 matrices
//! borrowed from the burn-flex tensors' own buffers, or stored at bf16 / int8 by [`Precision`]),
//! then one token per sequence stepped with loops over slices — no tensor op per step, state and
//! scratch allocated once (only the parallel products of large matrices allocate their per-task
//! output blocks). Sample-by-sample generation (SaShiMi) and token decode run many tiny steps
//! per second, where each tensor op's fixed cost would dominate.
//!
//! A family opts in with [`SequenceMixer::plain_step`](crate::mixers::SequenceMixer); the
//! conformance suite checks every such step against the family's tensor `step`. A block whose
//! mixer has none (or that is bidirectional, or routes to experts) has no plain form, and
//! callers keep the tensor path.

use crate::blocks::{Backbone, ResidualBlock};
use crate::kernels::gemv_cpu::{self, Dense};
use crate::kernels::gemv_quant::QMatrix;
use crate::kernels::real::exp_f32;
use crate::layers::{DepthwiseConv1d, GatedMlp, Norm};
use crate::mixers::MixerState;
use burn::backend::flex::FlexTensor;
use burn::backend::{BackendTensor, DispatchTensorKind};
use burn::nn::Linear;
use burn::tensor::Tensor;

/// The storage of a plain copy's matrices (norms, biases, state and small vectors stay f32).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Precision {
    /// The model's f32 values, shared with its tensors on burn-flex (no copy).
    #[default]
    F32,
    /// bf16 (round to nearest even): half the bytes.
    Bf16,
    /// int8 with one f32 scale per 32 values (llama.cpp's Q8_0 layout): about a quarter.
    Int8,
}

/// How a plain copy of blocks is made: the batch of sequences, the matrices' precision, and
/// the epsilon of LayerNorms (burn keeps it private; `None`: a block with one has no copy).
#[derive(Debug, Clone, Copy)]
pub struct PlainSpec {
    pub batch: usize,
    pub precision: Precision,
    pub layer_eps: Option<f64>,
}

/// One recurrent step of a mixer over `batch` sequences, state kept inside: `x` `[batch, D]`
/// → `y` `[batch, D]`, both row-major.
pub trait PlainStep: Send {
    fn step(&mut self, x: &[f32], y: &mut [f32]);
}

/// A tensor's values as `f32`, row-major.
pub fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 data")
}

/// A weight's `f32` values, row-major: the burn tensor's own buffer when it is a contiguous
/// f32 tensor on burn-flex (so a plain copy of a model costs no second copy of its weights),
/// else a copy.
#[derive(Debug, Clone)]
pub enum Weights {
    Shared(FlexTensor),
    Owned(Vec<f32>),
}

impl Weights {
    pub fn of<const D: usize>(t: Tensor<D>) -> Self {
        let w = match t.clone().into_dispatch().kind {
            DispatchTensorKind::Flex(BackendTensor::Float(f)) if f.as_slice::<f32>().is_some() => Weights::Shared(f),
            _ => Weights::Owned(host(t)),
        };
        gemv_cpu::advise_huge_pages(&w);
        w
    }
}

impl std::ops::Deref for Weights {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        match self {
            Weights::Shared(f) => f.as_slice::<f32>().expect("checked contiguous f32 in Weights::of"),
            Weights::Owned(v) => v,
        }
    }
}

/// `y = x W + b` for rows of `x` (`W` stored `[in, out]` as burn's `Linear`).
#[derive(Debug, Clone)]
pub struct PlainLinear {
    pub d_in: usize,
    pub d_out: usize,
    w: Matrix,
    b: Option<Vec<f32>>,
}

/// A matrix at the precision asked for.
#[derive(Debug, Clone)]
enum Matrix {
    /// `[in, out]`, burn's layout (shared with the model).
    F32(Weights),
    /// `[out, in]`: each output is one dot product over a contiguous row, int8 blocks run
    /// along the input (as llama.cpp's Q8_0), and the accumulators stay in registers.
    Reduced(QMatrix),
}

impl PlainLinear {
    pub fn new(l: &Linear, precision: Precision) -> Self {
        let [d_in, d_out] = l.weight.dims();
        let w = match precision {
            Precision::F32 => Matrix::F32(Weights::of(l.weight.val())),
            Precision::Bf16 => Matrix::Reduced(QMatrix::bf16(&host(l.weight.val().transpose()), d_out, d_in)),
            Precision::Int8 => Matrix::Reduced(QMatrix::int8(&host(l.weight.val().transpose()), d_out, d_in)),
        };
        Self { d_in, d_out, w, b: l.bias.as_ref().map(|b| host(b.val())) }
    }

    /// `x` `[rows, d_in]` → `y` `[rows, d_out]` ([`gemv_cpu::x_w_into`]: large weights stream
    /// through all cores, small ones run in this thread).
    pub fn apply(&self, x: &[f32], y: &mut [f32]) {
        match &self.w {
            Matrix::F32(w) => gemv_cpu::x_w_into(&Dense { values: w, rows: self.d_in, cols: self.d_out }, x, y),
            Matrix::Reduced(q) => q.x_wt(x, y),
        }
        self.add_bias(y);
    }

    fn add_bias(&self, y: &mut [f32]) {
        if let Some(b) = &self.b {
            for yr in y.chunks_exact_mut(self.d_out) {
                yr.iter_mut().zip(b).for_each(|(v, b)| *v += b);
            }
        }
    }
}

/// A causal depthwise convolution stepped one input per channel ([`DepthwiseConv1d`]'s
/// recurrent form): the last K−1 inputs of every (sequence, channel) row are kept.
#[derive(Debug, Clone)]
pub struct PlainConv {
    /// `[C, K]` taps and `[C]` bias.
    w: Vec<f32>,
    b: Vec<f32>,
    /// `[B, C, K−1]`.
    history: Vec<f32>,
}

impl PlainConv {
    /// From `conv` and its history `[B, C, K−1]`.
    pub fn new(conv: &DepthwiseConv1d, history: Tensor<3>) -> Self {
        let c = conv.weight.dims()[0];
        Self {
            w: host(conv.weight.val().reshape([c, conv.kernel()])),
            b: conv.bias.as_ref().map_or(vec![0.0; c], |b| host(b.val())),
            history: host(history),
        }
    }

    /// The output for input `x` of row `row` = sequence · C + channel, shifting its history.
    #[inline]
    pub fn step(&mut self, row: usize, x: f32) -> f32 {
        let c = self.b.len();
        let k = self.w.len() / c;
        let ch = row % c;
        let w = &self.w[ch * k..(ch + 1) * k];
        let hist = &mut self.history[row * (k - 1)..(row + 1) * (k - 1)];
        let y = self.b[ch] + hist.iter().zip(w).map(|(h, w)| h * w).sum::<f32>() + w[k - 1] * x;
        if let Some(last) = hist.len().checked_sub(1) {
            hist.copy_within(1.., 0);
            hist[last] = x;
        }
        y
    }
}

/// x · sigmoid(x), vectorisable.
#[inline(always)]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + exp_f32(-x))
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
    /// An RMSNorm reads its epsilon; burn keeps LayerNorm's private, so a LayerNorm needs the
    /// one it was built with as `layer_eps` (`None`: no plain copy).
    pub fn new(n: &Norm, layer_eps: Option<f64>) -> Option<Self> {
        Some(match n {
            Norm::Layer(l) => PlainNorm {
                gamma: host(l.gamma.val()),
                beta: l.beta.as_ref().map(|b| host(b.val())),
                center: true,
                eps: layer_eps? as f32,
            },
            Norm::Rms(r) => PlainNorm { gamma: host(r.gamma.val()), beta: None, center: false, eps: r.epsilon as f32 },
        })
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
    fn new(m: &GatedMlp, batch: usize, p: Precision) -> Self {
        let (gate, up, down) = (PlainLinear::new(&m.gate, p), PlainLinear::new(&m.up, p), PlainLinear::new(&m.down, p));
        let hidden = batch * gate.d_out;
        Self { gate, up, down, g: vec![0.0; hidden], u: vec![0.0; hidden] }
    }

    fn apply(&mut self, x: &[f32], y: &mut [f32]) {
        self.gate.apply(x, &mut self.g);
        self.up.apply(x, &mut self.u);
        for (g, u) in self.g.iter_mut().zip(&self.u) {
            *g = silu(*g) * u;
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
    /// The block continuing from its mixer's `state`, or `None` when it has no plain form (a
    /// mixer without one, a bidirectional block, experts, a LayerNorm without `spec.layer_eps`).
    pub fn new(block: &ResidualBlock, state: &MixerState, spec: PlainSpec) -> Option<Self> {
        let (layer_eps, batch) = (spec.layer_eps, spec.batch);
        if !block.is_causal() || block.moe.is_some() || (block.mlp_norm.is_some() && block.mlp.is_none()) {
            return None;
        }
        let mixer = block.mixer.plain_step(state, spec.precision)?;
        let d = block.mixer.d_model();
        let channel = match (&block.mlp_norm, &block.mlp) {
            (Some(n), Some(m)) => Some((PlainNorm::new(n, layer_eps)?, PlainMlp::new(m, batch, spec.precision))),
            _ => None,
        };
        Some(Self {
            norm: PlainNorm::new(&block.norm, layer_eps)?,
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

/// A backbone stepped in plain Rust: its blocks, then its final norm.
pub struct PlainBackbone {
    blocks: Vec<PlainBlock>,
    norm_f: PlainNorm,
}

impl PlainBackbone {
    /// From the per-layer `states`; `None` when a block has no plain form.
    pub fn new(b: &Backbone, states: &[MixerState], spec: PlainSpec) -> Option<Self> {
        let blocks = b.blocks.iter().zip(states).map(|(bl, s)| PlainBlock::new(bl, s, spec));
        Some(Self { blocks: blocks.collect::<Option<_>>()?, norm_f: PlainNorm::new(&b.norm_f, spec.layer_eps)? })
    }

    /// `x` `[batch, D]` through every block (in place), then `y` ← norm_f(`x`).
    pub fn step(&mut self, x: &mut [f32], y: &mut [f32]) {
        self.blocks.iter_mut().for_each(|b| b.step(x));
        self.norm_f.apply(x, y);
    }
}

/// erf-based GELU, as burn's `gelu`.
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + libm::erff(x / std::f32::consts::SQRT_2))
}
