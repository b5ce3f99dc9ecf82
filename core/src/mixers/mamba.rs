//! Mamba (Gu & Dao, "Mamba: Linear-Time Sequence Modeling with Selective State Spaces"), the
//! block of mamba_ssm's `Mamba` module with its parameter names:
//!
//! ```text
//! [x, z]   = in_proj(h)                          (d_model → 2·d_inner)
//! x        = silu(causal depthwise conv1d(x))    (kernel d_conv)
//! [Δ̃, B, C] = x_proj(x)                          (d_inner → dt_rank + 2·d_state)
//! Δ        = softplus(dt_proj.weight · Δ̃ + dt_proj.bias)
//! A        = −exp(A_log)                         (S4D-real init: A_log[:, n] = ln(n+1))
//! h_t      = exp(Δ_t A) h_{t−1} + Δ_t B_t x_t,   y_t = C_t h_t + D x_t
//! out      = out_proj(y · silu(z))
//! ```
//!
//! dt_proj's bias is the inverse softplus of Δ ~ log-uniform[dt_min, dt_max].

#![allow(non_snake_case)] // A_log and D: mamba_ssm's parameter names, so checkpoints map one to one

mod plain;

use super::{BatchState, MixerSpec, SequenceMixer, cat_batch_pairs, split_batch_pairs};
use crate::kernels::step::{ScanParams, ScanStepInput, selective_scan_step};
use crate::kernels::{ScanArgs, linear_rows, matmul_rows, selective_scan};
use crate::layers::DepthwiseConv1d;
use crate::plain::{PlainStep, Precision};
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::activation::silu;
use burn::tensor::{Device, Distribution, Int, Tensor};

/// Hyper-parameters of a Mamba block (mamba_ssm's defaults).
#[derive(Config, Debug)]
pub struct MambaConfig {
    pub d_model: usize,
    #[config(default = 16)]
    pub d_state: usize,
    #[config(default = 4)]
    pub d_conv: usize,
    #[config(default = 2)]
    pub expand: usize,
    /// Rank of Δ's projection; `None` means ⌈d_model / 16⌉.
    #[config(default = "None")]
    pub dt_rank: Option<usize>,
    #[config(default = 0.001)]
    pub dt_min: f64,
    #[config(default = 0.1)]
    pub dt_max: f64,
    #[config(default = 1e-4)]
    pub dt_init_floor: f64,
    #[config(default = true)]
    pub conv_bias: bool,
    #[config(default = false)]
    pub bias: bool,
}

/// The Δ bias of Mamba and Mamba-2: softplus⁻¹(Δ) = Δ + ln(1 − e^{−Δ}) for `n` values of Δ
/// log-uniform in [dt_min, dt_max], floored at `floor`.
pub fn dt_bias_init(n: usize, dt_min: f64, dt_max: f64, floor: f64, device: &Device) -> Tensor<1> {
    let dt = Tensor::<1>::random([n], Distribution::Uniform(dt_min.ln(), dt_max.ln()), device).exp().clamp_min(floor);
    dt.clone() + (dt.neg().exp().neg() + 1.0).log()
}

/// A Mamba block.
#[derive(Module, Debug)]
#[allow(non_snake_case)]
pub struct Mamba {
    pub in_proj: Linear,
    pub conv1d: DepthwiseConv1d,
    pub x_proj: Linear,
    pub dt_proj: Linear,
    /// `[d_inner, d_state]`; A = −exp(A_log).
    pub A_log: Param<Tensor<2>>,
    /// Skip connection `[d_inner]`.
    pub D: Param<Tensor<1>>,
    pub out_proj: Linear,
    pub d_inner: usize,
    pub d_state: usize,
    pub d_conv: usize,
    pub dt_rank: usize,
}

/// Recurrent state of a Mamba block: conv history `[B, d_inner, d_conv−1]`, SSM state
/// `[B, d_inner, d_state]`.
#[derive(Debug, Clone)]
pub struct MambaState {
    pub conv: Tensor<3>,
    pub ssm: Tensor<3>,
}

impl MambaConfig {
    /// transformers' `model_type` of a Mamba checkpoint.
    pub const HF_MODEL_TYPE: &'static str = "mamba";

    pub fn d_inner(&self) -> usize {
        self.expand * self.d_model
    }
}

impl MixerSpec for MambaConfig {
    const NAME: &'static str = "mamba";
    type Mixer = Mamba;

    fn with_width(d_model: usize) -> Self {
        Self::new(d_model)
    }

    fn d_model(&self) -> usize {
        self.d_model
    }

    fn init(&self, device: &Device) -> Mamba {
        let (d_inner, n, k) = (self.d_inner(), self.d_state, self.d_conv);
        assert!(k >= 1 && n >= 1 && d_inner >= 1, "mamba: d_conv, d_state and d_inner must be positive");
        let dt_rank = self.dt_rank.unwrap_or(self.d_model.div_ceil(16));
        let lin = |i, o, bias| LinearConfig::new(i, o).with_bias(bias).init(device);
        let conv1d = DepthwiseConv1d::init(d_inner, k, self.conv_bias, device);
        // dt_proj: weight ~ U(±dt_rank^−½); bias = softplus⁻¹(Δ), Δ log-uniform in [dt_min, dt_max].
        let std = (dt_rank as f64).powf(-0.5);
        let mut dt_proj = lin(dt_rank, d_inner, true);
        dt_proj.weight = Initializer::Uniform { min: -std, max: std }.init([dt_rank, d_inner], device);
        let bias = dt_bias_init(d_inner, self.dt_min, self.dt_max, self.dt_init_floor, device);
        dt_proj.bias = Some(Param::from_tensor(bias));
        let a = Tensor::<1, Int>::arange(1..n as i64 + 1, device).float().log().reshape([1, n]).repeat_dim(0, d_inner);
        Mamba {
            in_proj: lin(self.d_model, 2 * d_inner, self.bias),
            conv1d,
            x_proj: lin(d_inner, dt_rank + 2 * n, false),
            dt_proj,
            A_log: Param::from_tensor(a),
            D: Param::from_tensor(Tensor::ones([d_inner], device)),
            out_proj: lin(d_inner, self.d_model, self.bias),
            d_inner,
            d_state: n,
            d_conv: k,
            dt_rank,
        }
    }
}

impl BatchState for MambaState {
    fn cat_batch(states: Vec<Self>) -> Option<Self> {
        let (conv, ssm) = cat_batch_pairs(states.into_iter().map(|s| (s.conv, s.ssm)).collect());
        Some(MambaState { conv, ssm })
    }

    fn split_batch(self) -> Vec<Self> {
        split_batch_pairs(self.conv, self.ssm).into_iter().map(|(conv, ssm)| MambaState { conv, ssm }).collect()
    }
}

impl Mamba {
    fn a(&self) -> Tensor<2> {
        self.A_log.val().exp().neg()
    }
}

/// Outputs `from..from + len` of `linear` for `xt` `[B, d_in, L]`, channel-major: `[B, len, L]`.
fn channel_major(linear: &Linear, from: usize, len: usize, xt: Tensor<3>) -> Tensor<3> {
    let w = linear.weight.val().narrow(1, from, len).transpose().unsqueeze::<3>(); // [1, len, d_in]
    let y = w.matmul(xt);
    match &linear.bias {
        Some(b) => y + b.val().narrow(0, from, len).reshape([1, len, 1]),
        None => y,
    }
}

impl SequenceMixer for Mamba {
    type State = MambaState;

    fn d_model(&self) -> usize {
        self.out_proj.weight.dims()[1]
    }

    fn init_state(&self, batch: usize, device: &Device) -> MambaState {
        MambaState {
            conv: self.conv1d.init_history(batch, device),
            ssm: Tensor::zeros([batch, self.d_inner, self.d_state], device),
        }
    }

    /// Parallel form over `x` `[B, L, d_model]`, from `state` (zero when `None`).
    fn forward(&self, x: Tensor<3>, state: Option<MambaState>) -> (Tensor<3>, MambaState) {
        let (e, n, r) = (self.d_inner, self.d_state, self.dt_rank);
        // Without a state, the conv history is zeros and the scan starts from h0 = 0 (no h0 input).
        let (history, h0) = match state {
            Some(s) => (Some(s.conv), Some(s.ssm)),
            None => (None, None),
        };
        // x and z come out channel-major, `[B, E, L]` = W_{x|z}ᵀ · hᵀ, the layout of the conv and
        // the scan: no transposed copies of them forward, no zero-padded halves backward.
        let ht = x.swap_dims(1, 2); // [B, d_model, L] (a view)
        let xs = channel_major(&self.in_proj, 0, e, ht.clone()); // [B, E, L]
        let z = channel_major(&self.in_proj, e, e, ht);
        let (u, conv) = self.conv1d.forward_silu(xs, history); // [B, E, L]
        let x_dbl = self.x_proj.forward(u.clone().swap_dims(1, 2)); // [B, L, R + 2N]
        let dt = x_dbl.clone().narrow(2, 0, r);
        let bm = x_dbl.clone().narrow(2, r, n).swap_dims(1, 2); // [B, N, L]
        let cm = x_dbl.narrow(2, r + n, n).swap_dims(1, 2);
        let delta = self.dt_proj.weight.val().transpose().unsqueeze::<3>().matmul(dt.swap_dims(1, 2)); // [B, E, L]
        let mut args = ScanArgs::new(u, delta, self.a(), bm, cm).d(self.D.val()).z(z).softplus(true);
        if let Some(h0) = h0 {
            args = args.h0(h0);
        }
        if let Some(bias) = &self.dt_proj.bias {
            args = args.delta_bias(bias.val());
        }
        let out = selective_scan(args);
        let y = self.out_proj.forward(out.y.swap_dims(1, 2));
        (y, MambaState { conv, ssm: out.last_state })
    }

    /// One token `x` `[B, d_model]`.
    fn step(&self, x: Tensor<2>, state: MambaState) -> (Tensor<2>, MambaState) {
        let (e, n, r) = (self.d_inner, self.d_state, self.dt_rank);
        let xz = linear_rows(&self.in_proj, x);
        let xs = xz.clone().narrow(1, 0, e).unsqueeze_dim::<3>(2); // [B, E, 1]
        let z = xz.narrow(1, e, e);
        let (xc, conv) = self.conv1d.forward(xs, Some(state.conv));
        let u = silu(xc.squeeze_dim::<2>(2)); // [B, E]
        let x_dbl = linear_rows(&self.x_proj, u.clone());
        let dt = x_dbl.clone().narrow(1, 0, r);
        let bm = x_dbl.clone().narrow(1, r, n).unsqueeze_dim::<3>(1); // [B, 1, N]
        let cm = x_dbl.narrow(1, r + n, n).unsqueeze_dim::<3>(1);
        let delta = matmul_rows(dt, self.dt_proj.weight.val(), false);
        let params = ScanParams {
            a: self.a(),
            d: Some(self.D.val()),
            delta_bias: self.dt_proj.bias.as_ref().map(|b| b.val()),
            delta_softplus: true,
        };
        let (y, ssm) = selective_scan_step(state.ssm, ScanStepInput { u, delta, b: bm, c: cm, z: Some(z) }, &params);
        (linear_rows(&self.out_proj, y), MambaState { conv, ssm })
    }

    fn plain_step(&self, state: &MambaState, p: Precision) -> Option<Box<dyn PlainStep>> {
        Some(Box::new(plain::MambaPlain::new(self, state, p)))
    }
}
