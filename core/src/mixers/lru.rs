//! LRU — the Linear Recurrent Unit (Orvieto, Smith, Gu, Fernando, Gulcehre, Pascanu & De,
//! "Resurrecting Recurrent Neural Networks for Long Sequences", ICML 2023), the recurrence of
//! the paper's Appendix A; checked against its minimal reference implementation
//! (NicolasZucchet/minimal-LRU, `LRU.__call__` and its initialisers), whose names it keeps:
//!
//! ```text
//! λ    = exp(−exp(ν_log) + i·exp(θ_log))      stable by construction: |λ| = exp(−exp(ν_log)) < 1
//! x_t  = λ ⊙ x_{t−1} + γ ⊙ (B u_t)            γ = exp(γ_log);  B complex N × H
//! y_t  = Re(C x_t) + D ⊙ u_t                  C complex H × N;  D real
//! ```
//!
//! Ring initialisation: |λ|² uniform in [r_min², r_max²], arg λ uniform in [0, max_phase];
//! γ_log = ln √(1 − |λ|²), the normalisation that keeps the state's scale at the input's;
//! B's parts ~ N(0, 1/(2H)), C's ~ N(0, 1/N), D ~ N(0, 1). The parallel form is the core
//! complex diagonal-recurrence kernel (a scan, no per-step loop); the state is `x` `[B, N]`.

#![allow(non_snake_case)] // B_re, C_im, D: the reference implementation's parameter names

use super::{BatchState, MixerSpec, SequenceMixer, cat_batch_pairs, split_batch_pairs};
use crate::complex::ComplexTensor;
use crate::kernels::linear_recurrence_complex;
use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{Device, Distribution, Tensor};

/// Hyper-parameters of an LRU layer.
#[derive(Config, Debug)]
pub struct LruConfig {
    pub d_model: usize,
    /// State size N (complex modes).
    #[config(default = 64)]
    pub d_state: usize,
    /// Smallest and largest |λ| at initialisation.
    #[config(default = 0.9)]
    pub r_min: f64,
    #[config(default = 0.999)]
    pub r_max: f64,
    /// Largest initial phase of λ (the paper uses π/10 for its longest tasks).
    #[config(default = "std::f64::consts::TAU")]
    pub max_phase: f64,
}

/// An LRU layer.
#[derive(Module, Debug)]
pub struct Lru {
    /// `[N]` each: λ = exp(−exp(ν_log) + i exp(θ_log)), γ = exp(γ_log).
    pub nu_log: Param<Tensor<1>>,
    pub theta_log: Param<Tensor<1>>,
    pub gamma_log: Param<Tensor<1>>,
    /// `[N, H]`
    pub B_re: Param<Tensor<2>>,
    pub B_im: Param<Tensor<2>>,
    /// `[H, N]`
    pub C_re: Param<Tensor<2>>,
    pub C_im: Param<Tensor<2>>,
    /// `[H]`
    pub D: Param<Tensor<1>>,
}

/// The LRU state: the complex modes `x` `[B, N]`.
#[derive(Debug, Clone)]
pub struct LruState(pub ComplexTensor<2>);

impl BatchState for LruState {
    fn cat_batch(states: Vec<Self>) -> Option<Self> {
        let (re, im) = cat_batch_pairs(states.into_iter().map(|s| (s.0.re, s.0.im)).collect());
        Some(LruState(ComplexTensor::new(re, im)))
    }

    fn split_batch(self) -> Vec<Self> {
        split_batch_pairs(self.0.re, self.0.im).into_iter().map(|(re, im)| LruState(ComplexTensor::new(re, im))).collect()
    }
}

impl MixerSpec for LruConfig {
    const NAME: &'static str = "lru";
    type Mixer = Lru;

    fn with_width(d_model: usize) -> Self {
        Self::new(d_model)
    }

    fn small(d_model: usize) -> Self {
        Self::new(d_model).with_d_state(8)
    }

    fn d_model(&self) -> usize {
        self.d_model
    }

    fn init(&self, device: &Device) -> Lru {
        let (h, n) = (self.d_model, self.d_state);
        assert!(
            n > 0 && 0.0 <= self.r_min && self.r_min < self.r_max && self.r_max < 1.0,
            "lru: need d_state > 0 and 0 ≤ r_min < r_max < 1"
        );
        let (nu_log, theta_log) = ring_init(n, self.r_min, self.r_max, self.max_phase, device);
        // γ_log = ln √(1 − |λ|²) with |λ|² = exp(−2 exp(ν_log))
        let modulus_sq = nu_log.clone().exp().mul_scalar(-2.0).exp();
        let gamma_log = (modulus_sq.neg().add_scalar(1.0)).sqrt().log();
        let normal = |shape: [usize; 2], var: f64| Tensor::<2>::random(shape, Distribution::Normal(0.0, var.sqrt()), device);
        Lru {
            nu_log: Param::from_tensor(nu_log),
            theta_log: Param::from_tensor(theta_log),
            gamma_log: Param::from_tensor(gamma_log),
            B_re: Param::from_tensor(normal([n, h], 1.0 / (2 * h) as f64)),
            B_im: Param::from_tensor(normal([n, h], 1.0 / (2 * h) as f64)),
            C_re: Param::from_tensor(normal([h, n], 1.0 / n as f64)),
            C_im: Param::from_tensor(normal([h, n], 1.0 / n as f64)),
            D: Param::from_tensor(Tensor::random([h], Distribution::Normal(0.0, 1.0), device)),
        }
    }
}

/// The ring initialisation of `n` eigenvalues (ν_log, θ_log): |λ|² uniform in [r_min², r_max²],
/// arg λ uniform in [0, max_phase] (shared with LDStack).
pub fn ring_init(n: usize, r_min: f64, r_max: f64, max_phase: f64, device: &Device) -> (Tensor<1>, Tensor<1>) {
    let u = |d: &Device| Tensor::<1>::random([n], Distribution::Uniform(0.0, 1.0), d);
    // ν_log = ln(−½ ln(u (r_max² − r_min²) + r_min²)): |λ|² uniform on the ring
    let (lo, hi) = (r_min * r_min, r_max * r_max);
    let nu_log = u(device).mul_scalar(hi - lo).add_scalar(lo).log().mul_scalar(-0.5).log();
    let theta_log = u(device).mul_scalar(max_phase).clamp_min(1e-6).log();
    (nu_log, theta_log)
}

/// λ = exp(−exp(ν_log) + i exp(θ_log)).
pub fn ring_lambda(nu_log: Tensor<1>, theta_log: Tensor<1>) -> ComplexTensor<1> {
    let modulus = nu_log.exp().neg().exp();
    let phase = theta_log.exp();
    ComplexTensor::new(modulus.clone() * phase.clone().cos(), modulus * phase.sin())
}

impl Lru {
    /// λ `[N]`.
    fn lambda(&self) -> ComplexTensor<1> {
        ring_lambda(self.nu_log.val(), self.theta_log.val())
    }

    /// γ ⊙ B u for inputs `u` `[…, H]` → `[…, N]` (re, im).
    fn input<const R: usize>(&self, u: Tensor<R>) -> ComplexTensor<R> {
        let gamma = self.gamma_log.val().exp().unsqueeze_dim::<2>(1); // [N, 1]
        let project = |b: Tensor<2>| {
            let w = (b * gamma.clone()).transpose(); // [H, N]
            let mut shape = [1; R];
            shape[R - 2..].copy_from_slice(&w.dims());
            u.clone().matmul(w.reshape(shape))
        };
        ComplexTensor::new(project(self.B_re.val()), project(self.B_im.val()))
    }

    /// Re(C x) + D ⊙ u for states `x` `[…, N]` and inputs `u` `[…, H]`.
    fn output<const R: usize>(&self, x: ComplexTensor<R>, u: Tensor<R>) -> Tensor<R> {
        let read = |c: Tensor<2>, x: Tensor<R>| {
            let w = c.transpose(); // [N, H]
            let mut shape = [1; R];
            shape[R - 2..].copy_from_slice(&w.dims());
            x.matmul(w.reshape(shape))
        };
        let mut d_shape = [1; R];
        d_shape[R - 1] = self.D.dims()[0];
        read(self.C_re.val(), x.re) - read(self.C_im.val(), x.im) + u * self.D.val().reshape(d_shape)
    }
}

impl SequenceMixer for Lru {
    type State = LruState;

    fn d_model(&self) -> usize {
        self.D.dims()[0]
    }

    fn init_state(&self, batch: usize, device: &Device) -> LruState {
        let z = Tensor::<2>::zeros([batch, self.nu_log.dims()[0]], device);
        LruState(ComplexTensor::new(z.clone(), z))
    }

    /// Parallel form over `x` `[B, L, H]`: the recurrence as one complex diagonal scan.
    fn forward(&self, x: Tensor<3>, state: Option<LruState>) -> (Tensor<3>, LruState) {
        let [b, l, _] = x.dims();
        let n = self.nu_log.dims()[0];
        let lambda = self.lambda();
        let spread = |t: Tensor<1>| t.reshape([1, 1, n]).expand([b, l, n]);
        let a = ComplexTensor::new(spread(lambda.re), spread(lambda.im));
        let states = linear_recurrence_complex(a, self.input(x.clone()), state.map(|s| s.0), false); // [B, L, N]
        let last = states.clone().narrow(1, l - 1, 1);
        let last = ComplexTensor::new(last.re.reshape([b, n]), last.im.reshape([b, n]));
        (self.output(states, x), LruState(last))
    }

    /// One token `x` `[B, H]`: x_t = λ x_{t−1} + γ ⊙ B u_t.
    fn step(&self, x: Tensor<2>, state: LruState) -> (Tensor<2>, LruState) {
        let lambda = self.lambda().unsqueeze_dim::<2>(0);
        let next = state.0 * lambda + self.input(x.clone());
        (self.output(next.clone(), x), LruState(next))
    }
}
