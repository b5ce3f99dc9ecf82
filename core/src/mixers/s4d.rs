//! S4D (Gu et al., "On the Parameterization and Initialization of Diagonal State Space
//! Models"), as the `S4D` module of s4d.py: per channel h a diagonal complex SSM of N/2
//! conjugate-pair modes, discretised by zero-order hold,
//!
//! ```text
//! Δ = exp(log_dt),  A = −exp(log_A_real) + i·A_imag,  C' = C (e^{ΔA} − 1) / A
//! convolution mode:  y = K ∗ u + D u,  K[l] = 2 Re Σ_n C'_n e^{ΔA_n l}
//! recurrent mode:    x_t = e^{ΔA} x_{t−1} + u_t,  y_t = 2 Re Σ_n C'_n x_{t,n} + D u_t
//! out = GLU(output_linear(GELU(y)))        (output_linear: H → 2H)
//! ```
//!
//! Inits: S4D-Lin (A_imag = π n), S4D-Inv (A_imag = (N/π)(N/(2n+1) − 1)) or S4D-LegS (the
//! eigenvalues of HiPPO-LegS's normal part, [`crate::hippo::legs_nplr`]), A_real = −½.
//! `softmax_len` gives DSS's softmax kernel (see [`super::dss`]).

use super::{BatchState, MixerSpec, SequenceMixer, cat_batch_pairs, split_batch_pairs};
use crate::complex::ComplexTensor;
use crate::kernels::causal_conv;
use crate::kernels::s4d::{s4d_kernel, vandermonde};
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{gelu, glu};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::ops::{Add, Mul};

/// Initialisation of the imaginary parts of A.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum S4dInit {
    /// A_imag[n] = π n
    Lin,
    /// A_imag[n] = (N/π)(N/(2n+1) − 1)
    Inv,
    /// The imaginary parts of the eigenvalues of HiPPO-LegS's normal part (S4D-LegS; the
    /// skew-HiPPO initialisation of DSS).
    LegS,
}

#[derive(Config, Debug)]
pub struct S4dConfig {
    pub d_model: usize,
    /// State size N (N/2 complex conjugate-pair modes are stored).
    #[config(default = 64)]
    pub d_state: usize,
    #[config(default = 0.001)]
    pub dt_min: f64,
    #[config(default = 0.1)]
    pub dt_max: f64,
    #[config(default = "S4dInit::Lin")]
    pub init: S4dInit,
    /// DSS-softmax: C divided by (e^{ΔA·len} − 1), which turns the kernel into DSS's
    /// softmax over `len` positions (`None`: the plain ZOH kernel, DSS-exp).
    #[config(default = "None")]
    pub softmax_len: Option<usize>,
}

#[derive(Module, Debug)]
pub struct S4d {
    pub log_dt: Param<Tensor<1>>,
    pub log_a_real: Param<Tensor<2>>,
    pub a_imag: Param<Tensor<2>>,
    pub c_re: Param<Tensor<2>>,
    pub c_im: Param<Tensor<2>>,
    pub d: Param<Tensor<1>>,
    pub output_linear: Linear,
    pub softmax_len: Option<usize>,
}

/// State of an S4D layer: the complex modes `[B, H, N/2]`. After a parallel `forward` it is
/// kept pending (the inputs and ΔA) and computed only when used, since training never needs it.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum S4dState {
    Ready(ComplexTensor<3>),
    Pending { u: Tensor<3>, dta: ComplexTensor<2>, x0: Option<ComplexTensor<3>> },
}

impl S4dState {
    /// The modes `[B, H, N/2]`: x_L = Σ_l e^{ΔA (L−1−l)} u_l (+ e^{ΔA L} x0), a Vandermonde matmul.
    pub fn resolve(self) -> ComplexTensor<3> {
        match self {
            S4dState::Ready(x) => x,
            S4dState::Pending { u, dta, x0 } => {
                let l = u.dims()[2];
                let rev: Tensor<3> = Tensor::<1, Int>::arange(0..l as i64, &u.device())
                    .float()
                    .cast(u.dtype())
                    .flip([0])
                    .reshape([1, 1, l]);
                let vand = dta.clone().unsqueeze_dim::<3>(2).mul_real(rev).exp(); // [H, N/2, L]
                let ut = u.swap_dims(0, 1); // [H, B, L]
                let xr = ut.clone().matmul(vand.re.swap_dims(1, 2)); // [H, B, N/2]
                let xi = ut.matmul(vand.im.swap_dims(1, 2));
                let x = ComplexTensor::new(xr.swap_dims(0, 1), xi.swap_dims(0, 1));
                match x0 {
                    Some(x0) => x.add(x0.mul(dta.mul_scalar(l as f64).exp().unsqueeze_dim::<3>(0))),
                    None => x,
                }
            }
        }
    }
}

impl BatchState for S4dState {
    fn cat_batch(states: Vec<Self>) -> Option<Self> {
        let (re, im) = cat_batch_pairs(states.into_iter().map(|s| s.resolve()).map(|x| (x.re, x.im)).collect());
        Some(S4dState::Ready(ComplexTensor::new(re, im)))
    }

    fn split_batch(self) -> Vec<Self> {
        let x = self.resolve();
        split_batch_pairs(x.re, x.im).into_iter().map(|(re, im)| S4dState::Ready(ComplexTensor::new(re, im))).collect()
    }
}

impl MixerSpec for S4dConfig {
    const NAME: &'static str = "s4d";
    type Mixer = S4d;

    fn with_width(d_model: usize) -> Self {
        Self::new(d_model)
    }

    fn small(d_model: usize) -> Self {
        Self::new(d_model).with_d_state(8)
    }

    fn d_model(&self) -> usize {
        self.d_model
    }

    fn init(&self, device: &Device) -> S4d {
        let h = self.d_model;
        let p = self.init_ssm(h, device);
        S4d {
            log_dt: p.log_dt,
            log_a_real: p.log_a_real,
            a_imag: p.a_imag,
            c_re: p.c_re,
            c_im: p.c_im,
            d: p.d,
            output_linear: LinearConfig::new(h, 2 * h).init(device),
            softmax_len: self.softmax_len,
        }
    }
}

impl S4dConfig {
    /// The state-space parameters alone for `channels` channels (this config's state size,
    /// Δ range and initialisation; its width is not used).
    pub fn init_ssm(&self, channels: usize, device: &Device) -> DiagSsmParams {
        let (h, n2) = (channels, (self.d_state / 2).max(1));
        let log_dt = Tensor::<1>::random([h], Distribution::Uniform(self.dt_min.ln(), self.dt_max.ln()), device);
        let idx = Tensor::<1, Int>::arange(0..n2 as i64, device).float();
        let a_imag = match self.init {
            S4dInit::Lin => idx.mul_scalar(std::f64::consts::PI),
            S4dInit::Inv => {
                let nn = (2 * n2) as f64;
                (idx.mul_scalar(2.0).add_scalar(1.0).recip().mul_scalar(nn) - 1.0).mul_scalar(nn / std::f64::consts::PI)
            }
            S4dInit::LegS => Tensor::from_data(TensorData::new(legs_frequencies(n2), [n2]), device),
        };
        let c = |d: &Device| Tensor::<2>::random([h, n2], Distribution::Normal(0.0, 0.5f64.sqrt()), d);
        DiagSsmParams {
            log_dt: Param::from_tensor(log_dt),
            log_a_real: Param::from_tensor(Tensor::full([h, n2], 0.5f64.ln(), device)),
            a_imag: Param::from_tensor(a_imag.reshape([1, n2]).repeat_dim(0, h)),
            c_re: Param::from_tensor(c(device)),
            c_im: Param::from_tensor(c(device)),
            d: Param::from_tensor(Tensor::random([h], Distribution::Normal(0.0, 1.0), device)),
        }
    }
}

/// S4D's state-space parameters without its output layer (H3's diagonal SSM; S4D keeps the
/// same fields inline, the layout of its saved checkpoints).
#[derive(Module, Debug)]
pub struct DiagSsmParams {
    pub log_dt: Param<Tensor<1>>,
    pub log_a_real: Param<Tensor<2>>,
    pub a_imag: Param<Tensor<2>>,
    pub c_re: Param<Tensor<2>>,
    pub c_im: Param<Tensor<2>>,
    pub d: Param<Tensor<1>>,
}

impl DiagSsmParams {
    pub fn ssm(&self) -> DiagSsm {
        DiagSsm {
            log_dt: self.log_dt.val(),
            a: ComplexTensor::new(self.log_a_real.val().exp().neg(), self.a_imag.val()),
            c: ComplexTensor::new(self.c_re.val(), self.c_im.val()),
            d: self.d.val(),
        }
    }
}

/// The N/2 positive imaginary parts of the eigenvalues of HiPPO-LegS's normal part S (order N),
/// ascending: S = −½ I + skew, so its eigenvalues are −½ ± iω.
fn legs_frequencies(n2: usize) -> Vec<f64> {
    let mut w = crate::hippo::legs_normal_eig(2 * n2).0;
    w.resize(n2, 0.0);
    w
}

impl S4d {
    fn a(&self) -> ComplexTensor<2> {
        ComplexTensor::new(self.log_a_real.val().exp().neg(), self.a_imag.val())
    }

    /// The state-space model without the output layer (C turned into DSS's softmax form when
    /// `softmax_len` is set).
    pub fn ssm(&self) -> DiagSsm {
        let c = ComplexTensor::new(self.c_re.val(), self.c_im.val());
        let c = match self.softmax_len {
            None => c,
            Some(len) => {
                let dt: Tensor<2> = self.log_dt.val().exp().unsqueeze_dim(1);
                c / self.a().mul_real(dt).mul_scalar(len as f64).exp().add_scalar(-1.0)
            }
        };
        DiagSsm { log_dt: self.log_dt.val(), a: self.a(), c, d: self.d.val() }
    }

    fn output<const R: usize>(&self, y: Tensor<R>) -> Tensor<R> {
        glu(self.output_linear.forward(gelu(y)), R - 1)
    }
}

/// S4D's state-space model y = K ∗ u + D u as plain tensors (the values of one call): the
/// convolution and recurrent modes that S4D, DSS, GSS and H3 share.
#[derive(Debug, Clone)]
pub struct DiagSsm {
    /// log Δ `[H]`.
    pub log_dt: Tensor<1>,
    /// A `[H, N/2]`.
    pub a: ComplexTensor<2>,
    /// C `[H, N/2]`.
    pub c: ComplexTensor<2>,
    /// D `[H]`.
    pub d: Tensor<1>,
}

impl DiagSsm {
    /// (ΔA, C') of the discretised system, `[H, N/2]` each.
    fn discrete(&self) -> (ComplexTensor<2>, ComplexTensor<2>) {
        let dt: Tensor<2> = self.log_dt.clone().exp().unsqueeze_dim(1);
        let dta = self.a.clone().mul_real(dt);
        let c_prime = (self.c.clone() * dta.clone().exp().add_scalar(-1.0)) / self.a.clone();
        (dta, c_prime)
    }

    /// The zero state for `batch` sequences.
    pub fn init_state(&self, batch: usize) -> S4dState {
        let [h, n2] = self.a.dims();
        let z = Tensor::<3>::zeros([batch, h, n2], &self.d.device());
        S4dState::Ready(ComplexTensor::new(z.clone(), z))
    }

    /// Convolution mode over `u` `[B, H, L]`, from `state` (zero when `None`).
    pub fn forward(&self, u: Tensor<3>, state: Option<S4dState>) -> (Tensor<3>, S4dState) {
        let [_, h, l] = u.dims();
        let k = s4d_kernel(self.log_dt.clone(), self.a.clone(), self.c.clone(), l);
        let mut y = causal_conv(u.clone(), k) + u.clone() * self.d.clone().reshape([1, h, 1]);
        let (dta, c_prime) = self.discrete();
        let x0 = state.map(S4dState::resolve);
        if let Some(x0) = &x0 {
            // y_t += 2 Re Σ_n C'_n e^{ΔA (t+1)} x0_n
            let w = ComplexTensor::new(x0.re.clone().swap_dims(0, 1), x0.im.clone().swap_dims(0, 1)) // [H, B, N/2]
                * c_prime.unsqueeze_dim::<3>(1);
            y = y + vandermonde(w, &dta, l, 1).swap_dims(0, 1).mul_scalar(2.0);
        }
        (y, S4dState::Pending { u, dta, x0 })
    }

    /// Recurrent mode for one token `u` `[B, H]`.
    pub fn step(&self, u: Tensor<2>, state: S4dState) -> (Tensor<2>, S4dState) {
        let (dta, c_prime) = self.discrete();
        let da = dta.exp().unsqueeze_dim::<3>(0);
        let prev = state.resolve();
        let xs = prev.mul(da).add(ComplexTensor::from_real(u.clone().unsqueeze_dim(2)));
        let yc = xs.clone().mul(c_prime.unsqueeze_dim::<3>(0)).re.sum_dim(2).squeeze_dim::<2>(2).mul_scalar(2.0);
        (yc + u * self.d.clone().unsqueeze_dim(0), S4dState::Ready(xs))
    }
}

impl SequenceMixer for S4d {
    type State = S4dState;

    fn d_model(&self) -> usize {
        self.d.dims()[0]
    }

    fn init_state(&self, batch: usize, _device: &Device) -> S4dState {
        self.ssm().init_state(batch)
    }

    /// Convolution mode over `x` `[B, L, H]`, from `state` (zero when `None`).
    fn forward(&self, x: Tensor<3>, state: Option<S4dState>) -> (Tensor<3>, S4dState) {
        let (y, state) = self.ssm().forward(x.swap_dims(1, 2), state);
        (self.output(y.swap_dims(1, 2)), state)
    }

    /// Recurrent mode for one token `x` `[B, H]`.
    fn step(&self, x: Tensor<2>, state: S4dState) -> (Tensor<2>, S4dState) {
        let (y, state) = self.ssm().step(x, state);
        (self.output(y), state)
    }
}
