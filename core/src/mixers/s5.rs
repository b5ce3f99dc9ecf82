//! S5 (Smith, Warrington & Linderman, "Simplified State Space Layers for Sequence Modeling",
//! ICLR 2023, §3–4): one multi-input multi-output SSM whose complex diagonal state of size P is
//! shared by all H channels (S4 runs H single-input SSMs), initialised from the diagonalised
//! normal part of HiPPO-LegS ("HiPPO-N"), discretised by zero-order hold with a step Δ per state,
//! and run by a parallel scan. Checked against lindermanlab/S5 (`s5/ssm.py`: `S5SSM`,
//! `discretize_zoh`, `apply_ssm` with `conj_sym` and `bidirectional`; `s5/ssm_init.py`:
//! `make_DPLR_HiPPO`).
//!
//! ```text
//! HiPPO-N = V Λ V*  (normal, V unitary);  B̃ = V* B  (B ∈ R^{P×H}),  C̃ = C V
//! Λ̄ = e^{ΛΔ},  B̄ = Λ⁻¹(Λ̄ − 1) B̃
//! x_k = Λ̄ x_{k−1} + B̄ u_k,    y_k = 2 Re(C̃ x_k) + D ⊙ u_k      (P/2 modes: conjugate symmetry)
//! out = GLU(W GELU(y))
//! ```
//!
//! The scan is the core complex diagonal-recurrence kernel over `[B, L, P/2]`. With
//! `bidirectional` a second scan runs backwards through the same Λ̄, B̄ and is read out by its own
//! C (non-causal: no `step`). Λ's real part is kept negative as −exp(·).

use super::{BatchState, MixerSpec, SequenceMixer, cat_batch_pairs, split_batch_pairs};
use crate::complex::ComplexTensor;
use crate::kernels::linear_recurrence_complex;
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{gelu, glu};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use nalgebra::{Complex, DMatrix};

#[derive(Config, Debug)]
pub struct S5Config {
    pub d_model: usize,
    /// State size P (P/2 complex modes are stored).
    #[config(default = 64)]
    pub d_state: usize,
    #[config(default = 0.001)]
    pub dt_min: f64,
    #[config(default = 0.1)]
    pub dt_max: f64,
    /// A second, backward scan (non-causal).
    #[config(default = false)]
    pub bidirectional: bool,
}

/// An S5 layer.
#[derive(Module, Debug)]
pub struct S5 {
    /// Λ = −exp(log_neg_re) + i im `[P/2]`.
    pub log_neg_re: Param<Tensor<1>>,
    pub im: Param<Tensor<1>>,
    /// log Δ per mode `[P/2]`.
    pub log_dt: Param<Tensor<1>>,
    /// B̃ `[P/2, H]`.
    pub b_re: Param<Tensor<2>>,
    pub b_im: Param<Tensor<2>>,
    /// C̃ `[H, P/2]`, and the backward scan's `[H, P/2]` when bidirectional.
    pub c_re: Param<Tensor<2>>,
    pub c_im: Param<Tensor<2>>,
    pub c_back: Option<[Param<Tensor<2>>; 2]>,
    pub d: Param<Tensor<1>>,
    pub output_linear: Linear,
}

/// The modes x `[B, P/2]` (real and imaginary parts).
#[derive(Debug, Clone)]
pub struct S5State {
    pub x: ComplexTensor<2>,
}

impl BatchState for S5State {
    fn cat_batch(states: Vec<Self>) -> Option<Self> {
        let (re, im) = cat_batch_pairs(states.into_iter().map(|s| (s.x.re, s.x.im)).collect());
        Some(S5State { x: ComplexTensor::new(re, im) })
    }

    fn split_batch(self) -> Vec<Self> {
        split_batch_pairs(self.x.re, self.x.im).into_iter().map(|(re, im)| S5State { x: ComplexTensor::new(re, im) }).collect()
    }
}

fn tensor2(v: Vec<f64>, shape: [usize; 2], device: &Device) -> Param<Tensor<2>> {
    Param::from_tensor(Tensor::from_data(TensorData::new(v, shape), device))
}

impl MixerSpec for S5Config {
    const NAME: &'static str = "s5";
    type Mixer = S5;

    fn with_width(d_model: usize) -> Self {
        Self::new(d_model)
    }

    fn small(d_model: usize) -> Self {
        Self::new(d_model).with_d_state(8)
    }

    fn d_model(&self) -> usize {
        self.d_model
    }

    fn init(&self, device: &Device) -> S5 {
        let (h, p) = (self.d_model, self.d_state);
        assert!(p >= 2 && p % 2 == 0, "s5: d_state must be even and at least 2");
        let (omega, v) = crate::hippo::legs_normal_eig(p);
        let p2 = omega.len();
        // B ~ LeCun normal [P, H], then B̃ = V* B for the kept modes.
        let b: Vec<f64> =
            Tensor::<2>::random([p, h], Distribution::Normal(0.0, (1.0 / h as f64).sqrt()), device).to_data().convert::<f64>().try_to_vec::<f64>().unwrap_or_default();
        let bm = DMatrix::from_fn(p, h, |i, k| Complex::new(b[i * h + k], 0.0));
        let bt = v.adjoint() * bm; // [P/2, H]
        let part = |f: fn(&Complex<f64>) -> f64| (0..p2 * h).map(|i| f(&bt[(i / h, i % h)])).collect::<Vec<_>>();
        let c = |d: &Device| Param::from_tensor(Tensor::random([h, p2], Distribution::Normal(0.0, (0.5 / p2 as f64).sqrt()), d));
        S5 {
            log_neg_re: Param::from_tensor(Tensor::full([p2], 0.5f64.ln(), device)),
            im: Param::from_tensor(Tensor::from_data(TensorData::new(omega, [p2]), device)),
            log_dt: Param::from_tensor(Tensor::random([p2], Distribution::Uniform(self.dt_min.ln(), self.dt_max.ln()), device)),
            b_re: tensor2(part(|z| z.re), [p2, h], device),
            b_im: tensor2(part(|z| z.im), [p2, h], device),
            c_re: c(device),
            c_im: c(device),
            c_back: self.bidirectional.then(|| [c(device), c(device)]),
            d: Param::from_tensor(Tensor::random([h], Distribution::Normal(0.0, 1.0), device)),
            output_linear: LinearConfig::new(h, 2 * h).init(device),
        }
    }
}

impl S5 {
    /// (Λ̄ `[P/2]`, B̄ `[P/2, H]`).
    fn discrete(&self) -> (ComplexTensor<1>, ComplexTensor<2>) {
        let lambda = ComplexTensor::new(self.log_neg_re.val().exp().neg(), self.im.val());
        let dl = lambda.clone().mul_real(self.log_dt.val().exp());
        let bar = dl.exp();
        let scale = (bar.clone().add_scalar(-1.0) / lambda).unsqueeze_dim::<2>(1);
        (bar, scale * ComplexTensor::new(self.b_re.val(), self.b_im.val()))
    }

    /// B̄ u for `u` `[…, H]` → `[…, P/2]`.
    fn drive<const R: usize>(b: &ComplexTensor<2>, u: Tensor<R>) -> ComplexTensor<R> {
        ComplexTensor::new(u.clone().matmul(b.re.clone().transpose().unsqueeze()), u.matmul(b.im.clone().transpose().unsqueeze()))
    }

    /// 2 Re(C x) for modes `x` `[…, P/2]` → `[…, H]`.
    fn read<const R: usize>(c: [Tensor<2>; 2], x: ComplexTensor<R>) -> Tensor<R> {
        let [cr, ci] = c;
        (x.re.matmul(cr.transpose().unsqueeze()) - x.im.matmul(ci.transpose().unsqueeze())).mul_scalar(2.0)
    }

    fn output<const R: usize>(&self, y: Tensor<R>, u: Tensor<R>) -> Tensor<R> {
        let mut shape = [1; R];
        shape[R - 1] = self.d.dims()[0];
        let y = y + u * self.d.val().reshape(shape);
        glu(self.output_linear.forward(gelu(y)), R - 1)
    }
}

impl SequenceMixer for S5 {
    type State = S5State;

    fn d_model(&self) -> usize {
        self.d.dims()[0]
    }

    fn init_state(&self, batch: usize, device: &Device) -> S5State {
        let z = Tensor::zeros([batch, self.im.dims()[0]], device);
        S5State { x: ComplexTensor::new(z.clone(), z) }
    }

    fn forward(&self, u: Tensor<3>, state: Option<S5State>) -> (Tensor<3>, S5State) {
        let [b, l, _] = u.dims();
        let p2 = self.im.dims()[0];
        let (bar, bb) = self.discrete();
        let a = bar.unsqueeze_dim::<2>(0).unsqueeze_dim::<3>(0);
        let a = ComplexTensor::new(a.re.expand([b, l, p2]), a.im.expand([b, l, p2]));
        let bu = Self::drive(&bb, u.clone());
        let x = linear_recurrence_complex(a.clone(), bu.clone(), state.map(|s| s.x), false);
        let mut y = Self::read([self.c_re.val(), self.c_im.val()], x.clone());
        if let Some([cr, ci]) = &self.c_back {
            y = y + Self::read([cr.val(), ci.val()], linear_recurrence_complex(a, bu, None, true));
        }
        let last = |t: Tensor<3>| t.narrow(1, l - 1, 1).reshape([b, p2]);
        (self.output(y, u), S5State { x: ComplexTensor::new(last(x.re), last(x.im)) })
    }

    fn step(&self, u: Tensor<2>, state: S5State) -> (Tensor<2>, S5State) {
        assert!(self.c_back.is_none(), "s5: a bidirectional layer is not causal: it has no step");
        let (bar, bb) = self.discrete();
        let x = state.x * bar.unsqueeze_dim::<2>(0) + Self::drive(&bb, u.clone());
        let y = Self::read([self.c_re.val(), self.c_im.val()], x.clone());
        (self.output(y, u), S5State { x })
    }
}
