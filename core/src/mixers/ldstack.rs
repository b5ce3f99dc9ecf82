//! LDStack (Kaul, "Linear Dynamical Systems as a Core Computational Primitive", NeurIPS 2020,
//! §3–5): a nonlinear RNN rewritten as a stack of multi-input multi-output linear dynamical
//! systems — the nonlinearity moved from time to depth — each MIMO LDS approximated by the
//! average of R single-input multi-output (SIMO) LDS, and every SIMO LDS run by a parallel scan.
//! The paper ships no reference code; this follows its construction (§4, "MIMO as an average of
//! SIMO": E[r rᵀ] = I for Gaussian r, so B u = E[(B r)(rᵀ u)]).
//!
//! ```text
//! MIMO LDS:      x_t = Λ x_{t−1} + B u_t,   y_t = Re(C x_t) + D u_t        (Λ diagonal, complex)
//! SIMO k = 1…R:  s_t⁽ᵏ⁾ = r_kᵀ u_t (one scalar input),  h_t⁽ᵏ⁾ = Λ h_{t−1}⁽ᵏ⁾ + s_t⁽ᵏ⁾ 1
//!                x_t ≈ (1/R) Σ_k (B r_k) ⊙ h_t⁽ᵏ⁾
//! read-out:      y_t = Re(Σ_k Σ_n C_{:,n} (B r_k)_n h_{t,n}⁽ᵏ⁾) / R + D u_t,   out = tanh(y_t)
//! ```
//!
//! The R·N recurrences h⁽ᵏ⁾ share Λ and are one call of the core complex diagonal scan over
//! `[B, L, R·N]`; the aggregation to the single read-out is one matmul. Λ has LRU's stable
//! parameterisation and ring initialisation ([`super::lru::ring_init`]); the projections r_k
//! are fixed Gaussian draws regenerated from `seed` (not trained, as in the paper). tanh is the
//! approximated RNN's nonlinearity, applied between stacked layers.

use super::lru::{ring_init, ring_lambda};
use super::{BatchState, MixerSpec, SequenceMixer, cat_batch_pairs, split_batch_pairs};
use crate::complex::ComplexTensor;
use crate::kernels::linear_recurrence_complex;
use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Config, Debug)]
pub struct LdStackConfig {
    pub d_model: usize,
    /// Complex modes N of the MIMO system.
    #[config(default = 32)]
    pub d_state: usize,
    /// SIMO systems R averaged per layer.
    #[config(default = 16)]
    pub n_simo: usize,
    #[config(default = 0.9)]
    pub r_min: f64,
    #[config(default = 0.999)]
    pub r_max: f64,
    /// Largest initial phase of Λ.
    #[config(default = "std::f64::consts::TAU")]
    pub max_phase: f64,
    /// Seed of the fixed input projections r_k.
    #[config(default = 0)]
    pub seed: u64,
}

#[derive(Module, Debug)]
pub struct LdStack {
    /// Λ = exp(−exp(ν_log) + i exp(θ_log)) `[N]`.
    pub nu_log: Param<Tensor<1>>,
    pub theta_log: Param<Tensor<1>>,
    /// B `[N, H]`, C `[H, N]`, D `[H]`.
    pub b_re: Param<Tensor<2>>,
    pub b_im: Param<Tensor<2>>,
    pub c_re: Param<Tensor<2>>,
    pub c_im: Param<Tensor<2>>,
    pub d: Param<Tensor<1>>,
    pub n_simo: usize,
    pub seed: u64,
}

/// The SIMO states h `[B, R·N]`.
#[derive(Debug, Clone)]
pub struct LdStackState(pub ComplexTensor<2>);

impl BatchState for LdStackState {
    fn cat_batch(states: Vec<Self>) -> Option<Self> {
        let (re, im) = cat_batch_pairs(states.into_iter().map(|s| (s.0.re, s.0.im)).collect());
        Some(LdStackState(ComplexTensor::new(re, im)))
    }

    fn split_batch(self) -> Vec<Self> {
        split_batch_pairs(self.0.re, self.0.im).into_iter().map(|(re, im)| LdStackState(ComplexTensor::new(re, im))).collect()
    }
}

impl MixerSpec for LdStackConfig {
    const NAME: &'static str = "ldstack";
    type Mixer = LdStack;

    fn with_width(d_model: usize) -> Self {
        Self::new(d_model)
    }

    /// Slow phases: the suite's finite differences (steps of 1e-2 in log θ) stay accurate.
    fn small(d_model: usize) -> Self {
        Self::new(d_model).with_d_state(4).with_n_simo(3).with_max_phase(0.5)
    }

    fn d_model(&self) -> usize {
        self.d_model
    }

    fn init(&self, device: &Device) -> LdStack {
        let (h, n) = (self.d_model, self.d_state);
        assert!(n > 0 && self.n_simo > 0, "ldstack: d_state and n_simo must be positive");
        let (nu_log, theta_log) = ring_init(n, self.r_min, self.r_max, self.max_phase, device);
        let normal = |shape: [usize; 2], var: f64| Param::from_tensor(Tensor::random(shape, Distribution::Normal(0.0, var.sqrt()), device));
        LdStack {
            nu_log: Param::from_tensor(nu_log),
            theta_log: Param::from_tensor(theta_log),
            b_re: normal([n, h], 1.0 / (2 * h) as f64),
            b_im: normal([n, h], 1.0 / (2 * h) as f64),
            c_re: normal([h, n], 1.0 / n as f64),
            c_im: normal([h, n], 1.0 / n as f64),
            d: Param::from_tensor(Tensor::random([h], Distribution::Normal(0.0, 1.0), device)),
            n_simo: self.n_simo,
            seed: self.seed,
        }
    }
}

impl LdStack {
    fn dims(&self) -> (usize, usize, usize) {
        let [n, h] = self.b_re.dims();
        (h, n, self.n_simo)
    }

    /// The fixed projections r_k as rows `[R, H]` (standard normal, from `seed`).
    fn projections(&self, like: &Tensor<2>) -> Tensor<2> {
        let (h, _, r) = self.dims();
        let mut rng = StdRng::seed_from_u64(self.seed);
        // Box–Muller: √(−2 ln u₁) cos(2π u₂) is standard normal.
        let mut normal = || (-2.0 * (1.0 - rng.random::<f64>()).ln()).sqrt() * (std::f64::consts::TAU * rng.random::<f64>()).cos();
        let v: Vec<f64> = (0..r * h).map(|_| normal()).collect();
        Tensor::<2>::from_data(TensorData::new(v, [r, h]), &like.device()).cast(like.dtype())
    }

    /// The aggregated read-out M `[R·N, H]`: M[(k, n), :] = C_{:,n} (B r_k)_n / R.
    fn readout(&self, rt: Tensor<2>) -> ComplexTensor<2> {
        let (h, n, r) = self.dims();
        let br = ComplexTensor::new(rt.clone().matmul(self.b_re.val().transpose()), rt.matmul(self.b_im.val().transpose())); // [R, N]
        let ct = ComplexTensor::new(self.c_re.val().transpose(), self.c_im.val().transpose()).unsqueeze_dim::<3>(0); // [1, N, H]
        (br.unsqueeze_dim::<3>(2) * ct).mul_scalar(1.0 / r as f64).reshape([r * n, h])
    }

    /// tanh(Re(h M) + D ⊙ u) for SIMO states `h` `[M, R·N]` and inputs `u` `[M, H]`.
    fn output(&self, h: ComplexTensor<2>, u: Tensor<2>, m: ComplexTensor<2>) -> Tensor<2> {
        (h.re.matmul(m.re) - h.im.matmul(m.im) + u * self.d.val().unsqueeze_dim(0)).tanh()
    }
}

impl SequenceMixer for LdStack {
    type State = LdStackState;

    fn d_model(&self) -> usize {
        self.d.dims()[0]
    }

    fn init_state(&self, batch: usize, device: &Device) -> LdStackState {
        let (_, n, r) = self.dims();
        let z = Tensor::<2>::zeros([batch, r * n], device);
        LdStackState(ComplexTensor::new(z.clone(), z))
    }

    fn forward(&self, x: Tensor<3>, state: Option<LdStackState>) -> (Tensor<3>, LdStackState) {
        let [b, l, h] = x.dims();
        let (_, n, r) = self.dims();
        let rows = x.reshape([b * l, h]);
        let rt = self.projections(&rows);
        let s = rows.clone().matmul(rt.clone().transpose()); // [B·L, R] scalar inputs
        let input = s.reshape([b, l, r, 1]).expand([b, l, r, n]).reshape([b, l, r * n]);
        let lambda = ring_lambda(self.nu_log.val(), self.theta_log.val());
        let spread = |t: Tensor<1>| t.reshape([1, 1, 1, n]).expand([b, l, r, n]).reshape([b, l, r * n]);
        let a = ComplexTensor::new(spread(lambda.re), spread(lambda.im));
        let hs = linear_recurrence_complex(a, ComplexTensor::from_real(input), state.map(|s| s.0), false);
        let last = hs.clone().narrow(1, l - 1, 1).reshape([b, r * n]);
        let y = self.output(hs.reshape([b * l, r * n]), rows, self.readout(rt));
        (y.reshape([b, l, h]), LdStackState(last))
    }

    fn step(&self, x: Tensor<2>, state: LdStackState) -> (Tensor<2>, LdStackState) {
        let [b, _] = x.dims();
        let (_, n, r) = self.dims();
        let rt = self.projections(&x);
        let s = x.clone().matmul(rt.clone().transpose()).reshape([b, r, 1]).expand([b, r, n]).reshape([b, r * n]);
        let lambda = ring_lambda(self.nu_log.val(), self.theta_log.val());
        let spread = |t: Tensor<1>| t.reshape([1, 1, n]).expand([b, r, n]).reshape([b, r * n]);
        let h = state.0 * ComplexTensor::new(spread(lambda.re), spread(lambda.im)) + ComplexTensor::from_real(s);
        (self.output(h.clone(), x, self.readout(rt)), LdStackState(h))
    }
}
