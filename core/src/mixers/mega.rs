//! Mega (Ma, Zhou, Kong, He, Gui, Neubig, May & Zettlemoyer, "Mega: Moving Average Equipped
//! Gated Attention", ICLR 2023, §2–3): a multi-dimensional damped exponential moving average
//! feeds a single-head gated attention; Mega-chunk attends within fixed-length chunks only.
//! Checked against facebookresearch/mega (`fairseq/modules/exponential_moving_average.py`,
//! `moving_average_gated_attention.py`): names, the coefficient parameterisation and the init.
//!
//! ```text
//! EMA (per channel j, h dimensions):  s_t = p ⊙ β x_t + (1 − p ⊙ δ) ⊙ s_{t−1},  p, δ = σ(·)
//!                                     X' = SiLU(Σ_n η_n s_{t,n} / √h + ω ⊙ x)
//!                                     (a convolution with K[l] = Σ_n η_n p_n β_n q_nˡ / √h, q = 1 − pδ)
//! shared:   [u, z, r, ĥ] = split(W_mx X'),  φ = σ(u),  Z = SiLU(z),  γ = SiLU(r)
//! Q, K = κ_q ⊙ Z + μ_q, κ_k ⊙ Z + μ_k    (rotary positions)        V = SiLU(W_v x)
//! O = softmax(Q Kᵀ / √z + causal mask) V        (Mega-chunk: keys in the query's chunk only)
//! H = SiLU(ĥ + W_h(γ ⊙ O)),   output φ ⊙ (H − x)       (the block adds x: Y = φ H + (1 − φ) x)
//! ```
//!
//! The EMA runs as an FFT convolution (core `causal_conv`) in parallel and as its recurrence in
//! `step`; attention is computed chunk by chunk (linear in length with `chunk`). The state is the
//! EMA's `[B, D, h]`, the keys and values still visible, and the position.

use super::{BatchState, MixerSpec, SequenceMixer};
use crate::kernels::causal_conv;
use crate::layers::rotary;
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{sigmoid, silu, softmax};
use burn::tensor::{Device, Distribution, Int, Tensor};

#[derive(Config, Debug)]
pub struct MegaConfig {
    pub d_model: usize,
    /// Shared representation (query/key) width z (`None`: d_model / 4, at least 8).
    #[config(default = "None")]
    pub z_dim: Option<usize>,
    /// Value width v (`None`: 2 · d_model).
    #[config(default = "None")]
    pub v_dim: Option<usize>,
    /// EMA dimensions h per channel.
    #[config(default = 16)]
    pub ema_dim: usize,
    /// Mega-chunk's chunk length (`None`: attention over the whole prefix).
    #[config(default = "None")]
    pub chunk: Option<usize>,
    #[config(default = 10000.0)]
    pub rope_base: f64,
}

/// A Mega layer (EMA + single-head gated attention).
#[derive(Module, Debug)]
pub struct Mega {
    /// EMA coefficients `[D, h]`: p = σ(delta), damping δ = σ(alpha), expansion β, output η.
    delta: Param<Tensor<2>>,
    alpha: Param<Tensor<2>>,
    beta: Param<Tensor<2>>,
    gamma: Param<Tensor<2>>,
    /// EMA residual weight ω `[D]`.
    omega: Param<Tensor<1>>,
    v_proj: Linear,
    mx_proj: Linear,
    /// Per-dimension scale κ and offset μ of queries (row 0) and keys (row 1) `[2, z]`.
    qk_weight: Param<Tensor<2>>,
    qk_bias: Param<Tensor<2>>,
    h_proj: Linear,
    chunk: Option<usize>,
    rope_base: f64,
}

/// EMA state `[B, D, h]`, visible keys `[B, T, z]` and values `[B, T, v]`, and the position of
/// the next token.
#[derive(Debug, Clone)]
pub struct MegaState {
    pub ema: Tensor<3>,
    pub k: Tensor<3>,
    pub v: Tensor<3>,
    pub pos: usize,
}

impl BatchState for MegaState {
    /// `None` for states at different positions.
    fn cat_batch(states: Vec<Self>) -> Option<Self> {
        let pos = states.first()?.pos;
        if states.iter().any(|s| s.pos != pos) {
            return None;
        }
        let cat = |f: fn(&MegaState) -> Tensor<3>| Tensor::cat(states.iter().map(f).collect(), 0);
        Some(MegaState { ema: cat(|s| s.ema.clone()), k: cat(|s| s.k.clone()), v: cat(|s| s.v.clone()), pos })
    }

    fn split_batch(self) -> Vec<Self> {
        let (ema, k, v) = (self.ema.split(1, 0), self.k.split(1, 0), self.v.split(1, 0));
        let pos = self.pos;
        ema.into_iter().zip(k).zip(v).map(|((ema, k), v)| MegaState { ema, k, v, pos }).collect()
    }
}

impl MegaConfig {
    fn widths(&self) -> (usize, usize) {
        (self.z_dim.unwrap_or((self.d_model / 4).max(8)), self.v_dim.unwrap_or(2 * self.d_model))
    }
}

impl MixerSpec for MegaConfig {
    const NAME: &'static str = "mega";
    type Mixer = Mega;

    fn with_width(d_model: usize) -> Self {
        Self::new(d_model)
    }

    /// Chunks of 4, so the tests' sequences cross chunk boundaries.
    fn small(d_model: usize) -> Self {
        Self::new(d_model).with_chunk(Some(4))
    }

    fn d_model(&self) -> usize {
        self.d_model
    }

    /// Mega's layer is followed by a feed-forward network.
    fn wants_mlp(&self) -> bool {
        true
    }

    fn quadratic_bytes(&self, batch: usize, len: usize) -> Option<f64> {
        let t = self.chunk.map_or(len, |c| c.min(len)) as f64;
        Some(batch as f64 * len as f64 * t * 4.0 * 3.0)
    }

    fn init(&self, device: &Device) -> Mega {
        let (d, h) = (self.d_model, self.ema_dim);
        let (z, v) = self.widths();
        assert!(z % 2 == 0 && h > 0, "mega: z_dim must be even (rotary positions) and ema_dim positive");
        assert!(self.chunk != Some(0), "mega: chunk must be positive");
        let normal = |shape: [usize; 2], std: f64| Param::from_tensor(Tensor::random(shape, Distribution::Normal(0.0, std), device));
        // β: N(0, 0.02) around +1, −1, +1, … along the EMA dimensions.
        let sign = Tensor::<1, Int>::arange(0..h as i64, device).remainder_scalar(2).float().mul_scalar(-2.0).add_scalar(1.0);
        let beta = Tensor::<2>::random([d, h], Distribution::Normal(0.0, 0.02), device) + sign.reshape([1, h]);
        let lin = |i: usize, o: usize| LinearConfig::new(i, o).init(device);
        Mega {
            delta: normal([d, h], 0.2),
            alpha: normal([d, h], 0.2),
            beta: Param::from_tensor(beta),
            gamma: normal([d, h], 1.0),
            omega: Param::from_tensor(Tensor::random([d], Distribution::Normal(0.0, 1.0), device)),
            v_proj: lin(d, v),
            mx_proj: lin(d, 2 * d + z + v),
            qk_weight: normal([2, z], 0.02),
            qk_bias: Param::from_tensor(Tensor::zeros([2, z], device)),
            h_proj: lin(v, d),
            chunk: self.chunk,
            rope_base: self.rope_base,
        }
    }
}

impl Mega {
    fn widths(&self) -> (usize, usize, usize) {
        let d = self.omega.dims()[0];
        (d, self.qk_weight.dims()[1], self.v_proj.weight.dims()[1])
    }

    /// (q = 1 − p δ, p β η / √h), both `[D, h]`.
    fn ema_coeffs(&self) -> (Tensor<2>, Tensor<2>) {
        let h = self.delta.dims()[1];
        let p = sigmoid(self.delta.val());
        let q = (p.clone() * sigmoid(self.alpha.val())).neg().add_scalar(1.0);
        (q, p * self.beta.val() * self.gamma.val().div_scalar((h as f64).sqrt()))
    }

    /// q^e for exponents `e` `[L]` → `[D, h, L]`.
    fn powers(q: &Tensor<2>, e: Tensor<1>) -> Tensor<3> {
        let l = e.dims()[0];
        (q.clone().log().unsqueeze_dim::<3>(2) * e.reshape([1, 1, l])).exp()
    }

    /// X' = SiLU(EMA(x) + ω x) over `x` `[B, L, D]` from the EMA state, and the new state.
    fn ema(&self, x: &Tensor<3>, s0: Tensor<3>) -> (Tensor<3>, Tensor<3>) {
        let [_, l, d] = x.dims();
        let device = x.device();
        let (q, w) = self.ema_coeffs();
        let steps = Tensor::<1, Int>::arange(0..l as i64, &device).float().cast(x.dtype());
        let pw = Self::powers(&q, steps.clone()); // [D, h, L]: q^l
        let u = x.clone().swap_dims(1, 2); // [B, D, L]
        let kernel = (w.clone().unsqueeze_dim::<3>(2) * pw.clone()).sum_dim(1).squeeze_dim::<2>(1);
        // The state's contribution: y_t += Σ_n η_n q_n^{t+1} s0_n / √h, with η folded into w / (pβ).
        let eta = self.gamma.val().div_scalar((q.dims()[1] as f64).sqrt());
        let from_s0 = s0.clone().swap_dims(0, 1).matmul(eta.unsqueeze_dim::<3>(2) * pw.clone() * q.clone().unsqueeze_dim(2));
        let y = causal_conv(u.clone(), kernel) + from_s0.swap_dims(0, 1); // [B, D, L]
        let y = silu(y.swap_dims(1, 2) + x.clone() * self.omega.val().reshape([1, 1, d]));
        // s_L = q^L s0 + Σ_t q^{L−1−t} p β x_t
        let pb = sigmoid(self.delta.val()) * self.beta.val();
        let rev = Self::powers(&q, steps.flip([0])).swap_dims(1, 2); // [D, L, h]: q^{L−1−t}
        let driven = u.swap_dims(0, 1).matmul(rev).swap_dims(0, 1) * pb.unsqueeze_dim(0); // [B, D, h]
        let len = Tensor::<1>::full([1], l as f64, &device).cast(x.dtype());
        let last_pw = Self::powers(&q, len).reshape([1, d, q.dims()[1]]);
        (y, s0 * last_pw + driven)
    }

    /// Causal attention of queries at positions `pos..pos+L` over the visible keys, one chunk
    /// segment at a time; returns O `[B, L, v]` and the keys and values left visible.
    fn attend(&self, q: Tensor<3>, k: Tensor<3>, v: Tensor<3>, s: &MegaState) -> (Tensor<3>, Tensor<3>, Tensor<3>) {
        let [b, l, z] = q.dims();
        let vw = v.dims()[2];
        let (mut kc, mut vc) = (s.k.clone(), s.v.clone());
        let chunk = self.chunk.unwrap_or(usize::MAX);
        let (mut outs, mut start) = (Vec::new(), s.pos);
        while start < s.pos + l {
            let end = (s.pos + l).min((start / chunk).saturating_add(1).saturating_mul(chunk));
            let (off, n) = (start - s.pos, end - start);
            if self.chunk.is_some() && start % chunk == 0 {
                let device = q.device();
                (kc, vc) = (Tensor::zeros([b, 0, z], &device), Tensor::zeros([b, 0, vw], &device));
            }
            kc = Tensor::cat(vec![kc, k.clone().narrow(1, off, n)], 1);
            vc = Tensor::cat(vec![vc, v.clone().narrow(1, off, n)], 1);
            let t = kc.dims()[1];
            let scores = q.clone().narrow(1, off, n).matmul(kc.clone().swap_dims(1, 2)).div_scalar((z as f64).sqrt());
            // Query i (of n) sits at key index t − n + i: later keys are masked.
            let device = scores.device();
            let qi = Tensor::<1, Int>::arange((t - n) as i64..t as i64, &device).reshape([n, 1]);
            let kj = Tensor::<1, Int>::arange(0..t as i64, &device).reshape([1, t]);
            let scores = scores.mask_fill(kj.greater(qi).unsqueeze::<3>(), -1e9);
            outs.push(softmax(scores, 2).matmul(vc.clone()));
            start = end;
        }
        (Tensor::cat(outs, 1), kc, vc)
    }
}

impl SequenceMixer for Mega {
    type State = MegaState;

    fn d_model(&self) -> usize {
        self.omega.dims()[0]
    }

    fn init_state(&self, batch: usize, device: &Device) -> MegaState {
        let (d, z, v) = self.widths();
        let h = self.delta.dims()[1];
        MegaState {
            ema: Tensor::zeros([batch, d, h], device),
            k: Tensor::zeros([batch, 0, z], device),
            v: Tensor::zeros([batch, 0, v], device),
            pos: 0,
        }
    }

    fn forward(&self, x: Tensor<3>, state: Option<MegaState>) -> (Tensor<3>, MegaState) {
        let [b, l, _] = x.dims();
        let (d, z, vw) = self.widths();
        let s = state.unwrap_or_else(|| self.init_state(b, &x.device()));
        let (mx, ema) = self.ema(&x, s.ema.clone());
        let base = self.mx_proj.forward(mx);
        let part = |from: usize, w: usize| base.clone().narrow(2, from, w);
        let (u, zr, hx) = (sigmoid(part(0, d)), silu(part(d, z + vw)), part(d + z + vw, d));
        let (zs, r) = (zr.clone().narrow(2, 0, z), zr.narrow(2, z, vw));
        let qk = |row: usize| {
            let w = self.qk_weight.val().narrow(0, row, 1).reshape([1, 1, z]);
            let bias = self.qk_bias.val().narrow(0, row, 1).reshape([1, 1, z]);
            rotary(zs.clone() * w + bias, s.pos, self.rope_base)
        };
        let v = silu(self.v_proj.forward(x.clone()));
        let (o, k, vv) = self.attend(qk(0), qk(1), v, &s);
        let hh = silu(hx + self.h_proj.forward(r * o));
        (u * (hh - x), MegaState { ema, k, v: vv, pos: s.pos + l })
    }

    fn step(&self, x: Tensor<2>, state: MegaState) -> (Tensor<2>, MegaState) {
        let (y, s) = self.forward(x.unsqueeze_dim(1), Some(state));
        (y.squeeze_dim(1), s)
    }
}
