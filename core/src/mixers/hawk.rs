//! Hawk — the recurrent block of De et al., "Griffin: Mixing Gated Linear Recurrences with Local
//! Attention for Efficient Language Models", 2024 (§2.4, Fig. 2), with its Real-Gated Linear
//! Recurrent Unit; checked against google-deepmind/recurrentgemma (`layers.py`: `RGLRU`,
//! `RecurrentBlock`, `rnn_param_init`), whose names it keeps.
//!
//! ```text
//! recurrent block:  y = W_out( GeLU(W_y x) ⊙ RG-LRU(Conv1D_4(W_x x)) )
//! RG-LRU:           r_t = σ(W_a x_t + b_a)            recurrence gate
//!                   i_t = σ(W_x x_t + b_x)            input gate
//!                   log a_t = −c · r_t · softplus(Λ)  (a_t = a^{c r_t} with a = exp(−softplus(Λ)), c = 8)
//!                   h_t = a_t ⊙ h_{t−1} + √(1 − a_t²) ⊙ (i_t ⊙ x_t)
//! ```
//! Λ is initialised so that `a^c = exp(−c·softplus(Λ))` has its square uniform in
//! [min_rad², max_rad²] = [0.9², 0.999²] (`rnn_param_init`). The gates here are dense (the
//! reference uses block-diagonal, per-head gate weights). The parallel form is the core real
//! diagonal-recurrence kernel with data-dependent `a_t` (a scan with a hand-written backward);
//! the state is the convolution's last K−1 inputs and `h`.

use super::{BatchState, MixerSpec, SequenceMixer, cat_batch_pairs, split_batch_pairs};
use crate::kernels::linear_recurrence;
use crate::layers::DepthwiseConv1d;
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{gelu, sigmoid, softplus};
use burn::tensor::{Device, Distribution, Tensor};

/// `1 / (4 · 1000²)`: below it √x's derivative would exceed 1000.
const SQRT_FLOOR: f64 = 2.5e-7;

/// Hyper-parameters of a Hawk recurrent block.
#[derive(Config, Debug)]
pub struct HawkConfig {
    pub d_model: usize,
    /// Recurrence width (the paper uses 4/3 · d_model).
    #[config(default = "None")]
    pub d_rnn: Option<usize>,
    #[config(default = 4)]
    pub conv_kernel: usize,
    /// The gate's exponent scale c.
    #[config(default = 8.0)]
    pub c: f64,
    #[config(default = 0.9)]
    pub min_rad: f64,
    #[config(default = 0.999)]
    pub max_rad: f64,
}

impl HawkConfig {
    fn width(&self) -> usize {
        self.d_rnn.unwrap_or((4 * self.d_model).div_ceil(3))
    }
}

/// A Hawk recurrent block (gated branch ⊙ conv + RG-LRU branch).
#[derive(Module, Debug)]
pub struct Hawk {
    linear_y: Linear,
    linear_x: Linear,
    conv_1d: DepthwiseConv1d,
    /// RG-LRU gates `W_a`, `W_x`.
    gate_a: Linear,
    gate_x: Linear,
    /// Λ `[d_rnn]`.
    a_param: Param<Tensor<1>>,
    linear_out: Linear,
    c: f64,
}

/// The Hawk state: the convolution history `[B, d_rnn, K−1]` and `h` `[B, d_rnn]`.
#[derive(Debug, Clone)]
pub struct HawkState {
    pub conv: Tensor<3>,
    pub h: Tensor<2>,
}

impl BatchState for HawkState {
    fn cat_batch(states: Vec<Self>) -> Option<Self> {
        let (conv, h) = cat_batch_pairs(states.into_iter().map(|s| (s.conv, s.h)).collect());
        Some(HawkState { conv, h })
    }

    fn split_batch(self) -> Vec<Self> {
        split_batch_pairs(self.conv, self.h).into_iter().map(|(conv, h)| HawkState { conv, h }).collect()
    }
}

impl MixerSpec for HawkConfig {
    const NAME: &'static str = "hawk";
    type Mixer = Hawk;

    fn with_width(d_model: usize) -> Self {
        Self::new(d_model)
    }

    fn d_model(&self) -> usize {
        self.d_model
    }

    fn init(&self, device: &Device) -> Hawk {
        let (d, r) = (self.d_model, self.width());
        assert!(0.0 < self.min_rad && self.min_rad < self.max_rad && self.max_rad < 1.0, "hawk: need 0 < min_rad < max_rad < 1");
        let lin = |i: usize, o: usize| LinearConfig::new(i, o).init(device);
        // softplus(Λ) = −ln(ρ)/c with ρ² ~ U[min², max²]; Λ = ln(exp(v) − 1).
        let (lo, hi) = (self.min_rad * self.min_rad, self.max_rad * self.max_rad);
        let rho_sq = Tensor::<1>::random([r], Distribution::Uniform(lo, hi), device);
        let v = rho_sq.log().mul_scalar(-0.5 / self.c);
        let a_param = v.exp().sub_scalar(1.0).log();
        Hawk {
            linear_y: lin(d, r),
            linear_x: lin(d, r),
            conv_1d: DepthwiseConv1d::init(r, self.conv_kernel, true, device),
            gate_a: lin(r, r),
            gate_x: lin(r, r),
            a_param: Param::from_tensor(a_param),
            linear_out: lin(r, d),
            c: self.c,
        }
    }
}

impl Hawk {
    /// `(a_t, √(1 − a_t²) ⊙ i_t ⊙ x_t)` for conv outputs `x` `[…, d_rnn]`.
    fn gates<const R: usize>(&self, x: Tensor<R>) -> (Tensor<R>, Tensor<R>) {
        let r = sigmoid(self.gate_a.forward(x.clone()));
        let i = sigmoid(self.gate_x.forward(x.clone()));
        let mut shape = [1; R];
        shape[R - 1] = self.a_param.dims()[0];
        let log_a = r * softplus(self.a_param.val(), 1.0).reshape(shape).mul_scalar(-self.c);
        let a = log_a.clone().exp();
        // √(1 − a²) with its derivative bounded by 1000, as the reference's `sqrt_bound_derivative`
        // (near a = 1 the plain square root's gradient is infinite).
        let norm = (log_a.mul_scalar(2.0).exp().neg().add_scalar(1.0)).clamp_min(SQRT_FLOOR).sqrt();
        (a, norm * i * x)
    }
}

impl SequenceMixer for Hawk {
    type State = HawkState;

    fn d_model(&self) -> usize {
        self.linear_out.weight.dims()[1]
    }

    fn init_state(&self, batch: usize, device: &Device) -> HawkState {
        let r = self.a_param.dims()[0];
        HawkState { conv: self.conv_1d.init_history(batch, device), h: Tensor::zeros([batch, r], device) }
    }

    /// Parallel form over `x` `[B, L, D]`: the RG-LRU as one diagonal scan.
    fn forward(&self, x: Tensor<3>, state: Option<HawkState>) -> (Tensor<3>, HawkState) {
        let [b, l, _] = x.dims();
        let s = state.unwrap_or_else(|| self.init_state(b, &x.device()));
        let y = gelu(self.linear_y.forward(x.clone()));
        let (conv, history) = self.conv_1d.forward(self.linear_x.forward(x).swap_dims(1, 2), Some(s.conv));
        let (a, input) = self.gates(conv.swap_dims(1, 2));
        let h = linear_recurrence(a, input, Some(s.h), false); // [B, L, d_rnn]
        let r = h.dims()[2];
        let last = h.clone().narrow(1, l - 1, 1).reshape([b, r]);
        (self.linear_out.forward(h * y), HawkState { conv: history, h: last })
    }

    /// One token `x` `[B, D]`.
    fn step(&self, x: Tensor<2>, state: HawkState) -> (Tensor<2>, HawkState) {
        let y = gelu(self.linear_y.forward(x.clone()));
        let (conv, history) = self.conv_1d.forward(self.linear_x.forward(x).unsqueeze_dim::<3>(2), Some(state.conv));
        let [b, r, _] = conv.dims();
        let (a, input) = self.gates(conv.reshape([b, r]));
        let h = a * state.h + input;
        (self.linear_out.forward(h.clone() * y), HawkState { conv: history, h })
    }
}
