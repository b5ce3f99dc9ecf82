//! Mamba-3, SISO (Lahoti, Li, Chen, Wang, Bick, Kolter, Dao & Gu, "Mamba-3: Improved Sequence
//! Modeling using State Space Principles", ICLR 2026, §3): Mamba-2's per-head scalar decay with
//! three changes — trapezoidal instead of Euler discretisation, a complex-valued state realised
//! as a data-dependent rotation of B and C, and B/C normalisation with a bias in place of the
//! short convolution. Checked against the paper's recurrence (its eq. for the generalised
//! trapezoidal rule and the "RoPE trick") and against the structure of mamba_ssm's `Mamba2`
//! module (projection, Δ, A, D, gated RMSNorm, parameter names), which it extends.
//!
//! ```text
//! [z, x, B, C, dt, λ, θ] = in_proj(u)                no short convolution
//! x = SiLU(x);  B, C = RMSNorm(B + b_B), RMSNorm(C + b_C)      (biases start at 1)
//! Δ_t = softplus(dt + dt_bias),  α_t = exp(Δ_t A),  A = −exp(A_log)  one scalar per head
//! trapezoid:  h_t = α_t h_{t−1} + (1 − λ_t) Δ_t α_t B_{t−1} x_{t−1}ᵀ + λ_t Δ_t B_t x_tᵀ,  λ_t = σ(λ)
//! rotation:   complex eigenvalues A + iθ_t ≡ B_t, C_t rotated by −φ_t, φ_t = Σ_{s≤t} Δ_s θ_s
//!             (each pair of state dimensions is one complex mode)
//! y_t = h_tᵀ C_t + D x_t,  out = out_proj(RMSNorm(y ⊙ SiLU(z)))
//! ```
//!
//! The recurrence is linear in its two input terms, so the parallel form is two runs of the
//! chunked SSD algorithm ([`super::mamba2::ssd`]) sharing the decays and C: one with (λΔ x_t,
//! B_t), one with ((1 − λ)Δ α x_{t−1}, B_{t−1}). The state is h, the previous x and rotated B,
//! and the running angle φ; `step` is the same computation on one token.

#![allow(non_snake_case)] // A_log and D: mamba_ssm's parameter names

use super::mamba::dt_bias_init;
use super::mamba2::ssd;
use super::{BatchState, MixerSpec, SequenceMixer, cat_batch_pairs, split_batch_pairs};
use crate::layers::GatedRmsNorm;
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig, RmsNorm, RmsNormConfig};
use burn::tensor::activation::{sigmoid, silu, softplus};
use burn::tensor::{Device, Distribution, Tensor};

#[derive(Config, Debug)]
pub struct Mamba3Config {
    pub d_model: usize,
    /// State size N (even: N/2 complex modes).
    #[config(default = 64)]
    pub d_state: usize,
    #[config(default = 2)]
    pub expand: usize,
    /// P: channels per head.
    #[config(default = 16)]
    pub head_dim: usize,
    #[config(default = 64)]
    pub chunk_size: usize,
    #[config(default = 0.001)]
    pub dt_min: f64,
    #[config(default = 0.1)]
    pub dt_max: f64,
    /// Rotate B and C (complex state); `false` leaves a real-valued state.
    #[config(default = true)]
    pub rope: bool,
    #[config(default = 1e-5)]
    pub norm_eps: f64,
}

/// A Mamba-3 (SISO) block.
#[derive(Module, Debug)]
pub struct Mamba3 {
    pub in_proj: Linear,
    pub B_bias: Param<Tensor<1>>,
    pub C_bias: Param<Tensor<1>>,
    pub B_norm: RmsNorm,
    pub C_norm: RmsNorm,
    pub dt_bias: Param<Tensor<1>>,
    pub A_log: Param<Tensor<1>>,
    pub D: Param<Tensor<1>>,
    pub norm: GatedRmsNorm,
    pub out_proj: Linear,
    pub n_heads: usize,
    pub head_dim: usize,
    pub d_state: usize,
    pub chunk_size: usize,
    pub rope: bool,
}

/// The state: h `[B, H, P, N]` and, per head, the previous x, the previous rotated B and the
/// angle φ, packed as `[B, H, P + N + N/2]`.
#[derive(Debug, Clone)]
pub struct Mamba3State {
    pub ssm: Tensor<4>,
    pub prev: Tensor<3>,
}

impl BatchState for Mamba3State {
    fn cat_batch(states: Vec<Self>) -> Option<Self> {
        let (ssm, prev) = cat_batch_pairs(states.into_iter().map(|s| (s.ssm, s.prev)).collect());
        Some(Mamba3State { ssm, prev })
    }

    fn split_batch(self) -> Vec<Self> {
        split_batch_pairs(self.ssm, self.prev).into_iter().map(|(ssm, prev)| Mamba3State { ssm, prev }).collect()
    }
}

impl MixerSpec for Mamba3Config {
    const NAME: &'static str = "mamba3";
    type Mixer = Mamba3;

    fn with_width(d_model: usize) -> Self {
        Self::new(d_model)
    }

    /// Head size 8, state 16, chunks of 4 (the tests' sequences span several chunks).
    fn small(d_model: usize) -> Self {
        Self::new(d_model).with_head_dim(8).with_d_state(16).with_chunk_size(4)
    }

    fn d_model(&self) -> usize {
        self.d_model
    }

    fn init(&self, device: &Device) -> Mamba3 {
        let (di, n, p) = (self.expand * self.d_model, self.d_state, self.head_dim);
        assert!(p > 0 && di % p == 0, "mamba3: d_inner {di} is not a multiple of head_dim {p}");
        assert!(n > 0 && n % 2 == 0 && self.chunk_size > 0, "mamba3: d_state must be even and chunk_size positive");
        let h = di / p;
        let ones = |k: usize| Param::from_tensor(Tensor::ones([k], device));
        let norm = || RmsNormConfig::new(n).with_epsilon(self.norm_eps).init(device);
        Mamba3 {
            in_proj: LinearConfig::new(self.d_model, 2 * di + 2 * n + 2 * h + h * n / 2).with_bias(false).init(device),
            B_bias: ones(n),
            C_bias: ones(n),
            B_norm: norm(),
            C_norm: norm(),
            dt_bias: Param::from_tensor(dt_bias_init(h, self.dt_min, self.dt_max, 1e-4, device)),
            A_log: Param::from_tensor(Tensor::<1>::random([h], Distribution::Uniform(1.0, 16.0), device).log()),
            D: ones(h),
            norm: GatedRmsNorm::new(di, di, self.norm_eps, device),
            out_proj: LinearConfig::new(di, self.d_model).with_bias(false).init(device),
            n_heads: h,
            head_dim: p,
            d_state: n,
            chunk_size: self.chunk_size,
            rope: self.rope,
        }
    }
}

/// Rotates each (first half, second half) pair of the last dimension of `x` `[B, L, H, N]` by
/// `−phi` `[B, L, H, N/2]`.
fn rotate(x: Tensor<4>, phi: &Tensor<4>) -> Tensor<4> {
    let half = phi.dims()[3];
    let (cos, sin) = (phi.clone().cos(), phi.clone().sin());
    let x1 = x.clone().narrow(3, 0, half);
    let x2 = x.narrow(3, half, half);
    Tensor::cat(vec![x1.clone() * cos.clone() + x2.clone() * sin.clone(), x2 * cos - x1 * sin], 3)
}

/// `first` `[B, 1, H, W]` followed by `v` `[B, L, H, W]` without its last step.
fn shift(v: &Tensor<4>, first: Tensor<4>) -> Tensor<4> {
    let l = v.dims()[1];
    if l == 1 { first } else { Tensor::cat(vec![first, v.clone().narrow(1, 0, l - 1)], 1) }
}

impl Mamba3 {
    fn d_inner(&self) -> usize {
        self.n_heads * self.head_dim
    }

    /// B or C `[B, L, N]` normalised with its bias and repeated per head `[B, L, H, N]`.
    fn bc(&self, v: Tensor<3>, bias: &Param<Tensor<1>>, norm: &RmsNorm) -> Tensor<4> {
        let [b, l, n] = v.dims();
        let v = norm.forward(v + bias.val().reshape([1, 1, n]));
        v.unsqueeze_dim::<4>(2).expand([b, l, self.n_heads, n])
    }
}

impl SequenceMixer for Mamba3 {
    type State = Mamba3State;

    fn d_model(&self) -> usize {
        self.out_proj.weight.dims()[1]
    }

    fn init_state(&self, batch: usize, device: &Device) -> Mamba3State {
        let (h, p, n) = (self.n_heads, self.head_dim, self.d_state);
        Mamba3State { ssm: Tensor::zeros([batch, h, p, n], device), prev: Tensor::zeros([batch, h, p + n + n / 2], device) }
    }

    fn forward(&self, u: Tensor<3>, state: Option<Mamba3State>) -> (Tensor<3>, Mamba3State) {
        let [b, l, _] = u.dims();
        let (di, h, p, n) = (self.d_inner(), self.n_heads, self.head_dim, self.d_state);
        let s = state.unwrap_or_else(|| self.init_state(b, &u.device()));
        let proj = self.in_proj.forward(u);
        let mut at = 0;
        let mut take = |w: usize| {
            at += w;
            proj.clone().narrow(2, at - w, w)
        };
        let (z, x, bm, cm) = (take(di), take(di), take(n), take(n));
        let (dt, lam, theta) = (take(h), take(h), take(h * n / 2));
        let x = silu(x).reshape([b, l, h, p]);
        let (bm, cm) = (self.bc(bm, &self.B_bias, &self.B_norm), self.bc(cm, &self.C_bias, &self.C_norm));
        let delta = softplus(dt + self.dt_bias.val().reshape([1, 1, h]), 1.0); // [B, L, H]
        let ad = delta.clone() * self.A_log.val().exp().neg().reshape([1, 1, h]);
        let prev = |from: usize, w: usize| s.prev.clone().narrow(2, from, w).reshape([b, 1, h, w]);
        let phi = (theta.reshape([b, l, h, n / 2]) * delta.clone().unsqueeze_dim::<4>(3)).cumsum(1)
            + prev(p + n, n / 2);
        let (bm, cm) = if self.rope { (rotate(bm, &phi), rotate(cm, &phi)) } else { (bm, cm) };
        let lam = sigmoid(lam);
        let gamma = (lam.clone() * delta.clone()).unsqueeze_dim::<4>(3);
        let beta = (lam.neg().add_scalar(1.0) * delta * ad.clone().exp()).unsqueeze_dim::<4>(3);
        let (y_now, h_now) = ssd(x.clone() * gamma, ad.clone(), bm.clone(), cm.clone(), Some(s.ssm), self.chunk_size);
        let (x_prev, b_prev) = (shift(&x, prev(0, p)), shift(&bm, prev(p, n)));
        let (y_prev, h_prev) = ssd(x_prev * beta, ad, b_prev, cm, None, self.chunk_size);
        let y = y_now + y_prev + x.clone() * self.D.val().reshape([1, 1, h, 1]);
        let y = self.norm.forward::<3, 4>(y.reshape([b, l, di]), z);
        let last = |t: Tensor<4>, w: usize| t.narrow(1, l - 1, 1).reshape([b, h, w]);
        let prev = Tensor::cat(vec![last(x, p), last(bm, n), last(phi, n / 2)], 2);
        (self.out_proj.forward(y), Mamba3State { ssm: h_now + h_prev, prev })
    }

    fn step(&self, x: Tensor<2>, state: Mamba3State) -> (Tensor<2>, Mamba3State) {
        let (y, s) = self.forward(x.unsqueeze_dim(1), Some(state));
        (y.squeeze_dim(1), s)
    }
}
