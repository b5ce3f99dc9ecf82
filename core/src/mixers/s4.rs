//! S4 (Gu, Goel & Ré, "Efficiently Modeling Long Sequences with Structured State Spaces", ICLR
//! 2022): per channel h a state-space model whose state matrix is normal plus low rank, started
//! at HiPPO-LegS and kept in that form while training. Checked against state-spaces/s4
//! (`src/models/s4/s4.py`: `SSMKernelDPLR`, `_setup_step`; `hippo.py`: `nplr('legs')`).
//!
//! ```text
//! HiPPO-LegS:  A = S − P Pᵀ,  S = V Λ V*          (Λ = −½ + iω, V unitary, P_n = √(n + ½))
//! per channel: A = Λ − p pᴴ with p = V*P, B = V*B_legs (B_n = √(2n+1)), C learned, Δ = exp(log_dt)
//! bilinear:    Ā = (I − Δ/2 A)⁻¹(I + Δ/2 A),  B̄ = (I − Δ/2 A)⁻¹ Δ B
//! convolution: K[l] = 2 Re(C Ā^l B̄)  by the Cauchy kernel + Woodbury identity at the roots of
//!              unity and an inverse FFT ([`crate::kernels::dplr`]);  y = K ∗ u + D u
//! recurrence:  x_t = Ā x_{t−1} + B̄ u_t,  y_t = 2 Re(C x_t) + D u_t   (Ā applied in O(N))
//! out = GLU(W GELU(y))
//! ```
//!
//! N/2 modes are stored: the other half are their conjugates, and the rank-1 term couples each
//! mode with its partner exactly as the real N-state system does (`Dplr::pairs`). Λ's real part
//! is kept negative as −exp(·); Λ, p, B, C and Δ all train.
//!
//! One deliberate difference from the reference code: it learns C̃ = C(I − Ā^L) for one fixed
//! length L, while this layer learns C and forms C̃ on each call (Algorithm 1's first line, log₂ L
//! products of N×N matrices), so the kernel is exact at every length and `step` reads C itself.
//! The Cauchy/Woodbury kernel exists for the bilinear transform (as `SSMKernelDPLR`); the
//! diagonal families (S4D, DSS, S5) give zero-order hold.

use super::{BatchState, MixerSpec, SequenceMixer, cat_batch_pairs, split_batch_pairs};
use crate::plain::{self, PlainLinear, PlainStep, host};
use crate::complex::ComplexTensor;
use crate::kernels::causal_conv;
use crate::kernels::dplr::Dplr;
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{gelu, glu};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use nalgebra::{Complex, DMatrix};

#[derive(Config, Debug)]
pub struct S4Config {
    pub d_model: usize,
    /// State size N of the real system (N/2 complex modes are stored).
    #[config(default = 64)]
    pub d_state: usize,
    #[config(default = 0.001)]
    pub dt_min: f64,
    #[config(default = 0.1)]
    pub dt_max: f64,
}

/// An S4 layer: H DPLR systems of N/2 stored modes.
#[derive(Module, Debug)]
pub struct S4 {
    pub log_dt: Param<Tensor<1>>,
    /// Λ = −exp(log_neg_re) + i im `[H, N/2]`.
    pub log_neg_re: Param<Tensor<2>>,
    pub im: Param<Tensor<2>>,
    /// The low-rank factor p `[H, N/2]`.
    pub p_re: Param<Tensor<2>>,
    pub p_im: Param<Tensor<2>>,
    pub b_re: Param<Tensor<2>>,
    pub b_im: Param<Tensor<2>>,
    pub c_re: Param<Tensor<2>>,
    pub c_im: Param<Tensor<2>>,
    pub d: Param<Tensor<1>>,
    pub output_linear: Linear,
}

/// The stored modes `[B, H, N/2]`; after a parallel `forward`, pending (the inputs and the
/// system) until used, since training never needs it.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum S4State {
    Ready(ComplexTensor<3>),
    Pending { u: Tensor<3>, x0: Option<ComplexTensor<3>>, sys: Dplr, b: ComplexTensor<2> },
}

impl S4State {
    pub fn resolve(self) -> ComplexTensor<3> {
        match self {
            S4State::Ready(x) => x,
            S4State::Pending { u, x0, sys, b } => sys.final_state(&sys.b_bar(b), u, x0),
        }
    }
}

impl BatchState for S4State {
    fn cat_batch(states: Vec<Self>) -> Option<Self> {
        let (re, im) = cat_batch_pairs(states.into_iter().map(|s| s.resolve()).map(|x| (x.re, x.im)).collect());
        Some(S4State::Ready(ComplexTensor::new(re, im)))
    }

    fn split_batch(self) -> Vec<Self> {
        let x = self.resolve();
        split_batch_pairs(x.re, x.im).into_iter().map(|(re, im)| S4State::Ready(ComplexTensor::new(re, im))).collect()
    }
}

/// `v` (one value per stored mode, the same for every channel) as an `[H, N/2]` parameter.
fn per_channel(v: &[f64], h: usize, device: &Device) -> Param<Tensor<2>> {
    let n2 = v.len();
    Param::from_tensor(Tensor::<1>::from_data(TensorData::new(v.to_vec(), [n2]), device).reshape([1, n2]).repeat_dim(0, h))
}

impl MixerSpec for S4Config {
    const NAME: &'static str = "s4";
    type Mixer = S4;

    fn with_width(d_model: usize) -> Self {
        Self::new(d_model)
    }

    fn small(d_model: usize) -> Self {
        Self::new(d_model).with_d_state(8)
    }

    fn d_model(&self) -> usize {
        self.d_model
    }

    fn init(&self, device: &Device) -> S4 {
        let (h, n) = (self.d_model, self.d_state);
        assert!(n >= 2 && n % 2 == 0, "s4: d_state must be even and at least 2");
        let (omega, v) = crate::hippo::legs_normal_eig(n);
        let n2 = omega.len();
        // p = V*P and B = V*B_legs for the kept modes.
        let rotate = |f: fn(usize) -> f64| v.adjoint() * DMatrix::from_fn(n, 1, |i, _| Complex::new(f(i), 0.0));
        let p = rotate(|i| (i as f64 + 0.5).sqrt());
        let b = rotate(|i| (2.0 * i as f64 + 1.0).sqrt());
        let part = |m: &DMatrix<Complex<f64>>, f: fn(&Complex<f64>) -> f64| m.iter().map(f).collect::<Vec<_>>();
        let c = |d: &Device| Param::from_tensor(Tensor::random([h, n2], Distribution::Normal(0.0, 0.5f64.sqrt()), d));
        S4 {
            log_dt: Param::from_tensor(Tensor::random([h], Distribution::Uniform(self.dt_min.ln(), self.dt_max.ln()), device)),
            log_neg_re: Param::from_tensor(Tensor::full([h, n2], 0.5f64.ln(), device)),
            im: per_channel(&omega, h, device),
            p_re: per_channel(&part(&p, |z| z.re), h, device),
            p_im: per_channel(&part(&p, |z| z.im), h, device),
            b_re: per_channel(&part(&b, |z| z.re), h, device),
            b_im: per_channel(&part(&b, |z| z.im), h, device),
            c_re: c(device),
            c_im: c(device),
            d: Param::from_tensor(Tensor::random([h], Distribution::Normal(0.0, 1.0), device)),
            output_linear: LinearConfig::new(h, 2 * h).init(device),
        }
    }
}

impl S4 {
    /// The H DPLR systems (Λ, p, Δ) of this layer.
    pub fn system(&self) -> Dplr {
        Dplr {
            lambda: ComplexTensor::new(self.log_neg_re.val().exp().neg(), self.im.val()),
            p: ComplexTensor::new(self.p_re.val(), self.p_im.val()),
            dt: self.log_dt.val().exp(),
            pairs: true,
        }
    }

    pub fn b(&self) -> ComplexTensor<2> {
        ComplexTensor::new(self.b_re.val(), self.b_im.val())
    }

    pub fn c(&self) -> ComplexTensor<2> {
        ComplexTensor::new(self.c_re.val(), self.c_im.val())
    }

    /// out = GLU(W GELU(y)) over the last dimension.
    pub fn output<const R: usize>(&self, y: Tensor<R>) -> Tensor<R> {
        glu(self.output_linear.forward(gelu(y)), R - 1)
    }

    /// Convolution mode over `u` `[B, H, L]` → y = K ∗ u + D u `[B, H, L]` (before the output
    /// layer); an initial state adds 2 Re(C Ā^{t+1} x₀) to output t, read from the same
    /// generating function with the start vector Ā x₀.
    pub fn ssm_forward(&self, u: Tensor<3>, state: Option<S4State>) -> (Tensor<3>, S4State) {
        let [b, h, l] = u.dims();
        let sys = self.system();
        let len = l.next_power_of_two();
        let dt: Tensor<3> = sys.dt.clone().reshape([1, h, 1]);
        let x0 = state.map(S4State::resolve);
        let mut w = vec![self.b().unsqueeze_dim::<3>(0).mul_real(dt)];
        if let Some(x0) = &x0 {
            w.push(sys.plus_half(x0.clone()));
        }
        let g = sys.powers_read(sys.truncate_c(self.c(), len), ComplexTensor::cat(w, 0), len);
        let g = g.re.narrow(2, 0, l).mul_scalar(2.0); // [1 (+ B), H, L]
        let k = g.clone().narrow(0, 0, 1).reshape([h, l]);
        let mut y = causal_conv(u.clone(), k) + u.clone() * self.d.val().reshape([1, h, 1]);
        if x0.is_some() {
            y = y + g.narrow(0, 1, b);
        }
        (y, S4State::Pending { u, x0, sys, b: self.b() })
    }

    /// Recurrent mode for one input `u` `[B, H]` → y `[B, H]` before the output layer.
    pub fn ssm_step(&self, u: Tensor<2>, state: S4State) -> (Tensor<2>, S4State) {
        let sys = self.system();
        let b_bar = sys.b_bar(self.b()).unsqueeze_dim::<3>(0);
        let xs = sys.bar(state.resolve()) + b_bar.mul_real(u.clone().unsqueeze_dim(2));
        let yc = (xs.clone() * self.c().unsqueeze_dim::<3>(0)).re.sum_dim(2).squeeze_dim::<2>(2).mul_scalar(2.0);
        (yc + u * self.d.val().unsqueeze_dim(0), S4State::Ready(xs))
    }
}

impl SequenceMixer for S4 {
    type State = S4State;

    fn d_model(&self) -> usize {
        self.d.dims()[0]
    }

    fn init_state(&self, batch: usize, device: &Device) -> S4State {
        let z = Tensor::<3>::zeros([batch, self.d.dims()[0], self.im.dims()[1]], device);
        S4State::Ready(ComplexTensor::new(z.clone(), z))
    }

    fn forward(&self, x: Tensor<3>, state: Option<S4State>) -> (Tensor<3>, S4State) {
        let (y, state) = self.ssm_forward(x.swap_dims(1, 2), state);
        (self.output(y.swap_dims(1, 2)), state)
    }

    fn step(&self, x: Tensor<2>, state: S4State) -> (Tensor<2>, S4State) {
        let (y, state) = self.ssm_step(x, state);
        (self.output(y), state)
    }

    fn plain_step(&self, state: &S4State, p: plain::Precision) -> Option<Box<dyn PlainStep>> {
        Some(Box::new(S4Plain::new(self, state.clone().resolve(), p)))
    }
}

/// [`S4::ssm_step`] and the output layer in plain Rust. Per channel, what does not depend on the
/// state is computed once: D₀⁻¹ = (1 − Δλ/2)⁻¹, D₀⁻¹p, κ = (Δ/2) / (1 + (Δ/2)⟨p, D₀⁻¹p⟩), B̄, so
/// that Ā x = 2(D₀⁻¹x − D₀⁻¹p · κ⟨p, D₀⁻¹x⟩) − x costs O(N) (the stored modes are conjugate
/// pairs: ⟨·,·⟩ is 2 Re Σ x̄ y).
struct S4Plain {
    n: usize,
    inv_d0: Vec<Complex<f32>>,
    pd: Vec<Complex<f32>>,
    p: Vec<Complex<f32>>,
    kappa: Vec<f32>,
    b_bar: Vec<Complex<f32>>,
    c: Vec<Complex<f32>>,
    d: Vec<f32>,
    out: PlainLinear,
    /// The modes `[batch, H, N/2]`.
    x: Vec<Complex<f32>>,
    y: Vec<f32>,
    z: Vec<f32>,
}

impl S4Plain {
    fn new(m: &S4, x: ComplexTensor<3>, precision: plain::Precision) -> Self {
        let batch = x.dims()[0];
        let sys = m.system();
        let [h, n] = sys.lambda.dims();
        let cplx = |z: ComplexTensor<2>| cplx3(z.unsqueeze_dim(0));
        let b_bar = cplx(sys.b_bar(m.b()));
        let (lambda, p, dt) = (cplx(sys.lambda), cplx(sys.p), host(sys.dt));
        let inv_d0: Vec<Complex<f32>> =
            (0..h * n).map(|i| (Complex::new(1.0, 0.0) - lambda[i] * (0.5 * dt[i / n])).inv()).collect();
        let pd: Vec<Complex<f32>> = p.iter().zip(&inv_d0).map(|(p, d)| p * d).collect();
        let kappa = (0..h)
            .map(|hi| {
                let pp: f32 = (hi * n..(hi + 1) * n).map(|i| (p[i].conj() * pd[i]).re).sum();
                0.5 * dt[hi] / (1.0 + dt[hi] * pp)
            })
            .collect();
        Self {
            n,
            inv_d0,
            pd,
            p,
            kappa,
            b_bar,
            c: cplx(m.c()),
            d: host(m.d.val()),
            out: PlainLinear::new(&m.output_linear, precision),
            x: cplx3(x),
            y: vec![0.0; batch * h],
            z: vec![0.0; batch * 2 * h],
        }
    }
}

/// The values of a complex tensor, row-major.
fn cplx3(z: ComplexTensor<3>) -> Vec<Complex<f32>> {
    host(z.re).into_iter().zip(host(z.im)).map(|(re, im)| Complex::new(re, im)).collect()
}

impl PlainStep for S4Plain {
    fn step(&mut self, u: &[f32], out: &mut [f32]) {
        let (n, h) = (self.n, self.d.len());
        for (row, (&ut, yt)) in u.iter().zip(self.y.iter_mut()).enumerate() {
            let hi = row % h;
            let x = &mut self.x[row * n..(row + 1) * n];
            let ch = hi * n..(hi + 1) * n;
            let (inv_d0, pd, p) = (&self.inv_d0[ch.clone()], &self.pd[ch.clone()], &self.p[ch.clone()]);
            let (b_bar, c) = (&self.b_bar[ch.clone()], &self.c[ch]);
            let s: f32 = (0..n).map(|i| (p[i].conj() * (x[i] * inv_d0[i])).re).sum();
            let coef = 2.0 * s * self.kappa[hi];
            let mut acc = 0.0;
            for i in 0..n {
                x[i] = (x[i] * inv_d0[i] - pd[i] * coef) * 2.0 - x[i] + b_bar[i] * ut;
                acc += (c[i] * x[i]).re;
            }
            *yt = plain::gelu(2.0 * acc + self.d[hi] * ut);
        }
        // out = GLU(W GELU(y)): the first half gated by the sigmoid of the second.
        self.out.apply(&self.y, &mut self.z);
        for (zr, or) in self.z.chunks_exact(2 * h).zip(out.chunks_exact_mut(h)) {
            for (j, o) in or.iter_mut().enumerate() {
                *o = zr[j] / (1.0 + (-zr[h + j]).exp());
            }
        }
    }
}
