//! Mamba-2 (Dao & Gu, "Transformers are SSMs: Generalized Models and Efficient Algorithms Through
//! Structured State Space Duality"), the block of mamba_ssm's `Mamba2` / transformers'
//! `Mamba2Mixer` with their parameter names:
//!
//! ```text
//! [z, xBC, dt] = in_proj(h)                       (d_model → 2·d_inner + 2·G·N + H)
//! [x, B, C]    = silu(causal depthwise conv1d(xBC))
//! Δ            = clamp(softplus(dt + dt_bias), dt_limit)          per head, [B, L, H]
//! A            = −exp(A_log)                                      one scalar per head
//! h_t          = exp(Δ_t A) h_{t−1} + Δ_t x_t B_tᵀ                 h: [P, N] per head
//! y_t          = h_t C_t + D x_t
//! out          = out_proj(rmsnorm_G(y · silu(z)) · norm.weight)  (gated RMSNorm per group)
//! ```
//!
//! Training uses the chunked SSD form: within a chunk of `chunk_size` steps the output is the
//! masked "attention" `(C Bᵀ ∘ L) X` with `L = exp(segsum(A Δ))` (matmuls); chunk states are
//! passed between chunks by a diagonal linear recurrence over the chunks (the core kernel, so
//! the whole form is linear in the length), and read out by `C`. The recurrent `step` is the
//! equation above.

#![allow(non_snake_case)] // A_log and D: mamba_ssm's parameter names

mod plain;
use super::mamba::dt_bias_init;
use super::{BatchState, MixerSpec, SequenceMixer, cat_batch_pairs, split_batch_pairs};
use crate::kernels::{linear_recurrence, linear_rows};
use crate::layers::{DepthwiseConv1d, GatedRmsNorm};
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{silu, softplus};
use burn::tensor::{Bool, Device, Distribution, Shape, Tensor};

/// Hyper-parameters of a Mamba-2 block (mamba_ssm's defaults where they make sense at small size).
#[derive(Config, Debug)]
pub struct Mamba2Config {
    pub d_model: usize,
    #[config(default = 64)]
    pub d_state: usize,
    #[config(default = 4)]
    pub d_conv: usize,
    #[config(default = 2)]
    pub expand: usize,
    /// P: channels per head (d_inner = H · P).
    #[config(default = 16)]
    pub head_dim: usize,
    /// G: groups sharing B and C (H must be a multiple of G).
    #[config(default = 1)]
    pub n_groups: usize,
    /// Chunk length of the SSD form.
    #[config(default = 64)]
    pub chunk_size: usize,
    #[config(default = 0.001)]
    pub dt_min: f64,
    #[config(default = 0.1)]
    pub dt_max: f64,
    #[config(default = 1e-4)]
    pub dt_init_floor: f64,
    /// Δ is clamped to `[dt_limit_min, dt_limit_max]` after the softplus (`None`: no upper bound).
    #[config(default = 0.0)]
    pub dt_limit_min: f64,
    #[config(default = "None")]
    pub dt_limit_max: Option<f64>,
    #[config(default = true)]
    pub conv_bias: bool,
    #[config(default = false)]
    pub bias: bool,
    #[config(default = 1e-5)]
    pub norm_eps: f64,
}

/// A Mamba-2 block.
#[derive(Module, Debug)]
pub struct Mamba2 {
    pub in_proj: Linear,
    pub conv1d: DepthwiseConv1d,
    /// `[H]`, added to Δ before the softplus.
    pub dt_bias: Param<Tensor<1>>,
    /// `[H]`; A = −exp(A_log).
    pub A_log: Param<Tensor<1>>,
    /// Skip connection per head `[H]`.
    pub D: Param<Tensor<1>>,
    pub norm: GatedRmsNorm,
    pub out_proj: Linear,
    pub d_inner: usize,
    pub d_state: usize,
    pub d_conv: usize,
    pub n_heads: usize,
    pub head_dim: usize,
    pub n_groups: usize,
    pub chunk_size: usize,
    pub dt_limit_min: f64,
    pub dt_limit_max: Option<f64>,
}

/// Recurrent state of a Mamba-2 block: conv history `[B, d_inner + 2·G·N, d_conv − 1]` and SSM
/// state `[B, H, P, N]` (transformers' cache layout).
#[derive(Debug, Clone)]
pub struct Mamba2State {
    pub conv: Tensor<3>,
    pub ssm: Tensor<4>,
}

impl Mamba2Config {
    /// transformers' `model_type` of a Mamba-2 checkpoint.
    pub const HF_MODEL_TYPE: &'static str = "mamba2";

    pub fn d_inner(&self) -> usize {
        self.expand * self.d_model
    }
}

impl MixerSpec for Mamba2Config {
    const NAME: &'static str = "mamba2";
    type Mixer = Mamba2;

    fn with_width(d_model: usize) -> Self {
        Self::new(d_model)
    }

    /// Head size 8, state 16, chunks of 4 (so the tests' sequences span several chunks).
    fn small(d_model: usize) -> Self {
        Self::new(d_model).with_head_dim(8).with_d_state(16).with_chunk_size(4)
    }

    fn d_model(&self) -> usize {
        self.d_model
    }

    fn init(&self, device: &Device) -> Mamba2 {
        let (di, n, k, p, g) = (self.d_inner(), self.d_state, self.d_conv, self.head_dim, self.n_groups);
        assert!(p > 0 && di % p == 0, "mamba2: d_inner {di} is not a multiple of head_dim {p}");
        let h = di / p;
        assert!(g > 0 && h % g == 0, "mamba2: {h} heads are not a multiple of n_groups {g}");
        assert!(self.chunk_size > 0 && k > 0 && n > 0, "mamba2: chunk_size, d_conv and d_state must be positive");
        let conv_dim = di + 2 * g * n;
        let lin = |i, o| LinearConfig::new(i, o).with_bias(self.bias).init(device);
        let conv1d = DepthwiseConv1d::init(conv_dim, k, self.conv_bias, device);
        // dt_bias = softplus⁻¹(Δ), Δ log-uniform in [dt_min, dt_max]. A uniform in [1, 16].
        let dt_bias = dt_bias_init(h, self.dt_min, self.dt_max, self.dt_init_floor, device);
        let a = Tensor::<1>::random([h], Distribution::Uniform(1.0, 16.0), device).log();
        Mamba2 {
            in_proj: lin(self.d_model, 2 * di + 2 * g * n + h),
            conv1d,
            dt_bias: Param::from_tensor(dt_bias),
            A_log: Param::from_tensor(a),
            D: Param::from_tensor(Tensor::ones([h], device)),
            norm: GatedRmsNorm::new(di, di / g, self.norm_eps, device),
            out_proj: lin(di, self.d_model),
            d_inner: di,
            d_state: n,
            d_conv: k,
            n_heads: h,
            head_dim: p,
            n_groups: g,
            chunk_size: self.chunk_size,
            dt_limit_min: self.dt_limit_min,
            dt_limit_max: self.dt_limit_max,
        }
    }
}

/// `segsum(x)[…, i, j] = Σ_{k=j+1..i} x[…, k]` for i ≥ j, returned as `exp(segsum)` with the
/// upper triangle set to 0. Built from a masked cumulative sum (no subtraction of large partial
/// sums, so no cancellation).
fn exp_segsum<const D: usize, const D1: usize>(x: Tensor<D>) -> Tensor<D1> {
    let dims = x.dims();
    let t = dims[D - 1];
    let device = x.device();
    let mut rep = dims.to_vec();
    rep.push(t);
    let xr: Tensor<D1> = x.unsqueeze_dim::<D1>(D).expand(Shape::from(rep.clone())); // xr[…, i, j] = x[…, i]
    let strictly_lower = Tensor::<2, Bool>::tril_mask([t, t], -1, &device); // true (filled) where i ≤ j
    let mut mask_shape = vec![1; D - 1];
    mask_shape.extend([t, t]);
    let xr = xr.mask_fill(
        strictly_lower.reshape::<D1, _>(Shape::from(mask_shape.clone())).expand(Shape::from(rep.clone())),
        0.0,
    );
    let seg = xr.cumsum(D - 1);
    let lower = Tensor::<2, Bool>::tril_mask([t, t], 0, &device);
    seg.exp().mask_fill(lower.reshape::<D1, _>(Shape::from(mask_shape)).expand(Shape::from(rep)), 0.0)
}

/// The chunked SSD algorithm for h_t = exp(a_t) h_{t−1} + X_t B_tᵀ, y_t = h_t C_t:
/// inputs X `[B, L, H, P]` (already scaled, Δ x for Mamba-2), log-decays a `[B, L, H]` (A Δ),
/// B, C `[B, L, H, N]`, h0 `[B, H, P, N]` → y `[B, L, H, P]` and the final state `[B, H, P, N]`.
pub fn ssd(
    xd: Tensor<4>,
    ad: Tensor<3>,
    bm: Tensor<4>,
    cm: Tensor<4>,
    h0: Option<Tensor<4>>,
    chunk_size: usize,
) -> (Tensor<4>, Tensor<4>) {
    let [b, l, h, p] = xd.dims();
    let n = bm.dims()[3];
    let t = chunk_size.min(l);
    let c = l.div_ceil(t);
    let lp = c * t;
    let device = xd.device();
    // Zero padding to whole chunks: a = 0 and X = 0 there, so padded steps leave the state unchanged.
    let pad = |v: Tensor<4>, w: usize| {
        if lp == l { v } else { Tensor::cat(vec![v, Tensor::zeros([b, lp - l, h, w], &device)], 1) }
    };
    let xd = pad(xd, p);
    let ad = if lp == l { ad } else { Tensor::cat(vec![ad, Tensor::zeros([b, lp - l, h], &device)], 1) };
    // chunked, heads before time: [B, c, H, T, ·]
    let chunk = |v: Tensor<4>, w: usize| -> Tensor<5> { v.reshape([b, c, t, h, w]).swap_dims(2, 3) };
    let xc = chunk(xd, p);
    let bc = chunk(pad(bm, n), n);
    let cc = chunk(pad(cm, n), n);
    let a_cum = ad.clone().reshape([b, c, t, h]).swap_dims(2, 3).cumsum(3); // [B, c, H, T]
    // 1. within chunks: Y = (C Bᵀ ∘ L) X
    let l_mat: Tensor<5> = exp_segsum::<4, 5>(ad.reshape([b, c, t, h]).swap_dims(2, 3));
    let scores = cc.clone().matmul(bc.clone().swap_dims(3, 4)) * l_mat; // [B, c, H, T, T]
    let y_diag = scores.matmul(xc.clone()); // [B, c, H, T, P]
    // 2. each chunk's final state from its own inputs: Σ_s exp(A_cum[T−1] − A_cum[s]) B_s x_sᵀ
    let a_last = a_cum.clone().narrow(3, t - 1, 1); // [B, c, H, 1]
    let decay_states = (a_last.clone() - a_cum.clone()).exp().unsqueeze_dim::<5>(4); // [B, c, H, T, 1]
    let states = (bc * decay_states).swap_dims(3, 4).matmul(xc); // [B, c, H, N, P]
    // 3. pass states between chunks: s_z = exp(A_cum,z[T−1]) s_{z−1} + states_z from s_{−1} = h0,
    //    a diagonal linear recurrence over the c chunks (the reference's c×c segment-sum matrix
    //    would make this step quadratic in the length).
    let h0 = h0.map(|s| s.swap_dims(2, 3).reshape([b, h * n * p])); // [B, H·N·P]
    let decay = a_last.exp().expand([b, c, h, n * p]).reshape([b, c, h * n * p]);
    let passed = linear_recurrence(decay, states.reshape([b, c, h * n * p]), h0.clone(), false); // [B, c, H·N·P]
    let first = h0.unwrap_or_else(|| Tensor::zeros([b, h * n * p], &device)).unsqueeze_dim::<3>(1);
    let entering = if c == 1 { first } else { Tensor::cat(vec![first, passed.clone().narrow(1, 0, c - 1)], 1) };
    let prev = entering.reshape([b, c, h, n, p]); // [B, c, H, N, P]
    let last = passed.narrow(1, c - 1, 1).reshape([b, h, n, p]).swap_dims(2, 3); // [B, H, P, N]
    // 4. the state entering each chunk, read out by C and decayed to each position
    let y_off = cc.matmul(prev) * a_cum.exp().unsqueeze_dim::<5>(4);
    let y = (y_diag + y_off).swap_dims(2, 3).reshape([b, lp, h, p]);
    let y = if lp == l { y } else { y.narrow(1, 0, l) };
    (y, last)
}

impl BatchState for Mamba2State {
    fn cat_batch(states: Vec<Self>) -> Option<Self> {
        let (conv, ssm) = cat_batch_pairs(states.into_iter().map(|s| (s.conv, s.ssm)).collect());
        Some(Mamba2State { conv, ssm })
    }

    fn split_batch(self) -> Vec<Self> {
        split_batch_pairs(self.conv, self.ssm).into_iter().map(|(conv, ssm)| Mamba2State { conv, ssm }).collect()
    }
}

impl SequenceMixer for Mamba2 {
    type State = Mamba2State;

    fn d_model(&self) -> usize {
        self.out_proj.weight.dims()[1]
    }

    fn init_state(&self, batch: usize, device: &Device) -> Mamba2State {
        Mamba2State {
            conv: self.conv1d.init_history(batch, device),
            ssm: Tensor::zeros([batch, self.n_heads, self.head_dim, self.d_state], device),
        }
    }

    fn forward(&self, x: Tensor<3>, state: Option<Mamba2State>) -> (Tensor<3>, Mamba2State) {
        self.forward_ssd(x, state)
    }

    fn step(&self, x: Tensor<2>, state: Mamba2State) -> (Tensor<2>, Mamba2State) {
        self.step_recurrent(x, state)
    }

    fn plain_step(&self, state: &Mamba2State, p: crate::plain::Precision) -> Option<Box<dyn crate::plain::PlainStep>> {
        Some(Box::new(plain::Mamba2Plain::new(self, state, p)))
    }
}

impl Mamba2 {
    fn conv_dim(&self) -> usize {
        self.d_inner + 2 * self.n_groups * self.d_state
    }

    fn delta(&self, dt: Tensor<3>) -> Tensor<3> {
        let h = self.n_heads;
        let d = softplus(dt + self.dt_bias.val().reshape([1, 1, h]), 1.0);
        let d = if self.dt_limit_min > 0.0 { d.clamp_min(self.dt_limit_min) } else { d };
        match self.dt_limit_max {
            Some(hi) if hi.is_finite() => d.clamp_max(hi),
            _ => d,
        }
    }

    /// Splits the conv output `[B, L, conv_dim]` into x `[B, L, H, P]` and B, C `[B, L, H, N]`
    /// (each group's B and C repeated for its heads).
    fn split_xbc(&self, xbc: Tensor<3>) -> (Tensor<4>, Tensor<4>, Tensor<4>) {
        let [b, l, _] = xbc.dims();
        let (di, n, g, h) = (self.d_inner, self.d_state, self.n_groups, self.n_heads);
        let x = xbc.clone().narrow(2, 0, di).reshape([b, l, h, self.head_dim]);
        let per_head = |t: Tensor<3>| -> Tensor<4> {
            t.reshape([b, l, g, 1, n]).expand([b, l, g, h / g, n]).reshape([b, l, h, n])
        };
        let bm = per_head(xbc.clone().narrow(2, di, g * n));
        let cm = per_head(xbc.narrow(2, di + g * n, g * n));
        (x, bm, cm)
    }

    /// Parallel (chunked SSD) form over `x` `[B, L, d_model]` from `state` (zero when `None`).
    fn forward_ssd(&self, x: Tensor<3>, state: Option<Mamba2State>) -> (Tensor<3>, Mamba2State) {
        let [b, l, _] = x.dims();
        let (di, h) = (self.d_inner, self.n_heads);
        let (history, h0) = match state {
            Some(s) => (Some(s.conv), Some(s.ssm)),
            None => (None, None),
        };
        let zxbcdt = self.in_proj.forward(x);
        let z = zxbcdt.clone().narrow(2, 0, di);
        let xbc = zxbcdt.clone().narrow(2, di, self.conv_dim()).swap_dims(1, 2);
        let dt = zxbcdt.narrow(2, di + self.conv_dim(), h);
        let (xbc, conv) = self.conv1d.forward_silu(xbc, history);
        let (xs, bm, cm) = self.split_xbc(xbc.swap_dims(1, 2));
        let delta = self.delta(dt);
        let (y, ssm) = self.ssd(xs.clone(), delta, bm, cm, h0);
        let y = y + xs * self.D.val().reshape([1, 1, h, 1]);
        let y = self.norm.forward::<3, 4>(y.reshape([b, l, di]), z);
        (self.out_proj.forward(y), Mamba2State { conv, ssm })
    }

    /// The SSD algorithm on x `[B, L, H, P]`, Δ `[B, L, H]`, B, C `[B, L, H, N]` (see [`ssd`]).
    fn ssd(
        &self,
        x: Tensor<4>,
        delta: Tensor<3>,
        bm: Tensor<4>,
        cm: Tensor<4>,
        h0: Option<Tensor<4>>,
    ) -> (Tensor<4>, Tensor<4>) {
        let h = self.n_heads;
        let xd = x * delta.clone().unsqueeze_dim::<4>(3); // X = Δ x
        let ad = delta * self.A_log.val().exp().neg().reshape([1, 1, h]); // A Δ
        ssd(xd, ad, bm, cm, h0, self.chunk_size)
    }

    /// One token `x` `[B, d_model]`.
    fn step_recurrent(&self, x: Tensor<2>, state: Mamba2State) -> (Tensor<2>, Mamba2State) {
        let [b, _] = x.dims();
        let (di, h, p) = (self.d_inner, self.n_heads, self.head_dim);
        let zxbcdt = linear_rows(&self.in_proj, x);
        let z = zxbcdt.clone().narrow(1, 0, di);
        let xbc = zxbcdt.clone().narrow(1, di, self.conv_dim()).unsqueeze_dim::<3>(2);
        let dt = zxbcdt.narrow(1, di + self.conv_dim(), h).unsqueeze_dim::<3>(1); // [B, 1, H]
        let (xbc, conv) = self.conv1d.forward(xbc, Some(state.conv));
        let (xs, bm, cm) = self.split_xbc(silu(xbc).swap_dims(1, 2)); // L = 1
        let (xs, bm, cm) =
            (xs.reshape([b, h, p]), bm.reshape([b, h, 1, self.d_state]), cm.reshape([b, h, self.d_state, 1]));
        let delta = self.delta(dt).reshape([b, h, 1]);
        let decay = (delta.clone() * self.A_log.val().exp().neg().reshape([1, h, 1])).exp().unsqueeze_dim::<4>(3);
        let ssm = state.ssm * decay + (xs.clone() * delta).unsqueeze_dim::<4>(3) * bm; // [B, H, P, N]
        let y = ssm.clone().matmul(cm).reshape([b, h, p]) + xs * self.D.val().reshape([1, h, 1]);
        let y = self.norm.forward::<2, 3>(y.reshape([b, di]), z);
        (linear_rows(&self.out_proj, y), Mamba2State { conv, ssm })
    }
}
