//! HGRN (Qin, Yang & Zhong, "Hierarchically Gated Recurrent Neural Network for Sequence
//! Modeling", NeurIPS 2023, §3): a gated linear recurrence whose forget gates have a lower bound
//! that rises with depth, so lower layers model short-term and upper layers long-term
//! dependencies. Checked against fla-org/flash-linear-attention `fla/layers/hgrn.py`
//! (`HGRNAttention`) and `fla/models/hgrn` (the per-layer lower bounds), whose real-valued form
//! this is (the paper's complex variant adds a learned rotation).
//!
//! ```text
//! f_t = γ_l + (1 − γ_l) σ(W_f x_t)          forget gate, lower bound γ_l for layer l
//! i_t = SiLU(W_i x_t) ⊙ (1 − f_t)           input, coupled to the forget gate
//! h_t = f_t ⊙ h_{t−1} + i_t                  (the core diagonal-recurrence kernel)
//! o_t = W_o( RMSNorm(h_t) ⊙ SiLU(W_g x_t) )
//! ```
//!
//! `expand` widens the recurrence (fla's `expand_ratio`, 1 by default).
//! The paper learns γ as a cumulative softmax over layers, which starts at γ_l = l / n_layers;
//! here γ_l is that starting value, fixed (or set by `lower_bound`). Layer l of n comes from the
//! backbone ([`MixerSpec::init_at`]); a lone layer has γ = 0.

use super::{BatchState, MixerSpec, SequenceMixer, cat_batch_dim, split_batch_dim};
use crate::kernels::linear_recurrence;
use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig, RmsNorm, RmsNormConfig};
use burn::tensor::activation::{sigmoid, silu};
use burn::tensor::{Device, Tensor};

#[derive(Config, Debug)]
pub struct HgrnConfig {
    pub d_model: usize,
    /// Recurrence width = expand · d_model (fla's `expand_ratio`).
    #[config(default = 1)]
    pub expand: usize,
    /// A fixed forget-gate lower bound γ in [0, 1) for every layer (`None`: l / n_layers).
    #[config(default = "None")]
    pub lower_bound: Option<f64>,
}

/// An HGRN token mixer.
#[derive(Module, Debug)]
pub struct Hgrn {
    input_proj: Linear,
    forget_proj: Linear,
    g_proj: Linear,
    g_norm: RmsNorm,
    o_proj: Linear,
    lower_bound: f64,
}

/// The HGRN state: h `[B, D]`.
#[derive(Debug, Clone)]
pub struct HgrnState {
    pub h: Tensor<2>,
}

impl BatchState for HgrnState {
    fn cat_batch(states: Vec<Self>) -> Option<Self> {
        Some(HgrnState { h: cat_batch_dim(states.into_iter().map(|s| s.h).collect()) })
    }

    fn split_batch(self) -> Vec<Self> {
        split_batch_dim(self.h).into_iter().map(|h| HgrnState { h }).collect()
    }
}

impl MixerSpec for HgrnConfig {
    const NAME: &'static str = "hgrn";
    type Mixer = Hgrn;

    fn with_width(d_model: usize) -> Self {
        Self::new(d_model)
    }

    fn d_model(&self) -> usize {
        self.d_model
    }

    fn init(&self, device: &Device) -> Hgrn {
        self.init_at(0, 1, device)
    }

    fn init_at(&self, layer: usize, n_layers: usize, device: &Device) -> Hgrn {
        let (d, e) = (self.d_model, self.expand * self.d_model);
        assert!(e > 0, "hgrn: expand must be positive");
        let gamma = self.lower_bound.unwrap_or(layer as f64 / n_layers.max(1) as f64);
        assert!((0.0..1.0).contains(&gamma), "hgrn: the lower bound must lie in [0, 1), got {gamma}");
        let lin = |i: usize, o: usize| LinearConfig::new(i, o).with_bias(false).init(device);
        Hgrn {
            input_proj: lin(d, e),
            forget_proj: lin(d, e),
            g_proj: lin(d, e),
            g_norm: RmsNormConfig::new(e).init(device),
            o_proj: lin(e, d),
            lower_bound: gamma,
        }
    }
}

impl Hgrn {
    /// (f_t, i_t) for inputs `x` `[…, D]`.
    fn gates<const R: usize>(&self, x: Tensor<R>) -> (Tensor<R>, Tensor<R>) {
        let g = self.lower_bound;
        let f = sigmoid(self.forget_proj.forward(x.clone())).mul_scalar(1.0 - g).add_scalar(g);
        let i = silu(self.input_proj.forward(x)) * f.clone().neg().add_scalar(1.0);
        (f, i)
    }

    fn output<const R: usize>(&self, h: Tensor<R>, x: Tensor<R>) -> Tensor<R> {
        self.o_proj.forward(self.g_norm.forward(h) * silu(self.g_proj.forward(x)))
    }
}

impl SequenceMixer for Hgrn {
    type State = HgrnState;

    fn d_model(&self) -> usize {
        self.o_proj.weight.dims()[1]
    }

    fn init_state(&self, batch: usize, device: &Device) -> HgrnState {
        HgrnState { h: Tensor::zeros([batch, self.o_proj.weight.dims()[0]], device) }
    }

    fn forward(&self, x: Tensor<3>, state: Option<HgrnState>) -> (Tensor<3>, HgrnState) {
        let [b, l, _] = x.dims();
        let h0 = state.map_or_else(|| self.init_state(b, &x.device()).h, |s| s.h);
        let (f, i) = self.gates(x.clone());
        let h = linear_recurrence(f, i, Some(h0), false);
        let e = h.dims()[2];
        let last = h.clone().narrow(1, l - 1, 1).reshape([b, e]);
        (self.output(h, x), HgrnState { h: last })
    }

    fn step(&self, x: Tensor<2>, state: HgrnState) -> (Tensor<2>, HgrnState) {
        let (f, i) = self.gates(x.clone());
        let h = f * state.h + i;
        (self.output(h.clone(), x), HgrnState { h })
    }
}
