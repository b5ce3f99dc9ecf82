//! Hyena (Poli, Massaroli, Nguyen, Fu, Dao, Baccus, Bengio, Ermon & Ré, "Hyena Hierarchy:
//! Towards Larger Convolutional Language Models", ICML 2023, §3): attention replaced by a
//! recurrence of long convolutions with implicitly parameterised filters and data-controlled
//! element-wise gates. Checked against HazyResearch/safari `src/models/sequence/hyena.py`
//! (`HyenaOperator`, `HyenaFilter`, `PositionalEmbedding`, `ExponentialModulation`, `Sin`).
//!
//! ```text
//! (x¹ … x^N, v) = ShortConv₃(W_in u)                   N + 1 projections, causal depthwise conv of 3 taps
//! z_t = [t/T, cos 2πk t/T, sin 2πk t/T]_{k=1..K}       positional features
//! hⁿ_t = FFN(z_t) · exp(−|α| t/T)                      implicit filter: Linear–Sin–Linear–Sin–Linear,
//!                                                      decay rates α spread over the channels
//! v ← xⁿ ⊙ (hⁿ ∗ v + bⁿ ⊙ v)   for n = N … 2;   y = x¹ ⊙ v;   out = W_out y
//! ```
//!
//! (order N = 2: one long convolution.) The filters have `max_len` taps (T = `max_len`), so they do
//! not depend on the input's length and the recurrent form exists: the state is the short
//! convolution's history and, per long convolution, the last `max_len − 1` inputs.

use super::{BatchState, MixerSpec, SequenceMixer, cat_batch_dim, split_batch_dim};
use crate::kernels::causal_conv_history;
use crate::layers::DepthwiseConv1d;
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor};

#[derive(Config, Debug)]
pub struct HyenaConfig {
    pub d_model: usize,
    /// Hyena's order N (N − 1 long convolutions).
    #[config(default = 2)]
    pub order: usize,
    /// Filter taps T.
    #[config(default = 1024)]
    pub max_len: usize,
    /// Width of the filter FFN.
    #[config(default = 64)]
    pub filter_order: usize,
    /// Frequencies K of the positional features (embedding width 2K + 1).
    #[config(default = 1)]
    pub bands: usize,
    #[config(default = 3)]
    pub short_filter: usize,
}

/// The implicit filter of one long convolution: an FFN over positional features, modulated.
#[derive(Module, Debug)]
pub struct HyenaFilter {
    pub layers: Vec<Linear>,
    /// The Sin activations' frequencies, one per hidden layer `[filter_order]`.
    pub freq: Vec<Param<Tensor<1>>>,
    /// Per-channel decay rates α `[D]`.
    pub decay: Param<Tensor<1>>,
    /// Per-channel bias b `[D]` (the skip term of the convolution).
    pub bias: Param<Tensor<1>>,
}

/// A Hyena operator.
#[derive(Module, Debug)]
pub struct Hyena {
    pub in_proj: Linear,
    pub short_filter: DepthwiseConv1d,
    pub filters: Vec<HyenaFilter>,
    pub out_proj: Linear,
    pub max_len: usize,
    pub bands: usize,
}

/// The short convolution's history and one input history per long convolution.
#[derive(Debug, Clone)]
pub struct HyenaState {
    pub short: Tensor<3>,
    pub long: Vec<Tensor<3>>,
}

impl BatchState for HyenaState {
    fn cat_batch(states: Vec<Self>) -> Option<Self> {
        let n = states.first()?.long.len();
        let long = (0..n).map(|i| cat_batch_dim(states.iter().map(|s| s.long[i].clone()).collect())).collect();
        Some(HyenaState { short: cat_batch_dim(states.into_iter().map(|s| s.short).collect()), long })
    }

    fn split_batch(self) -> Vec<Self> {
        let shorts = split_batch_dim(self.short);
        let longs: Vec<Vec<Tensor<3>>> = self.long.into_iter().map(split_batch_dim).collect();
        shorts
            .into_iter()
            .enumerate()
            .map(|(b, short)| HyenaState { short, long: longs.iter().map(|l| l[b].clone()).collect() })
            .collect()
    }
}

impl MixerSpec for HyenaConfig {
    const NAME: &'static str = "hyena";
    type Mixer = Hyena;

    fn with_width(d_model: usize) -> Self {
        Self::new(d_model)
    }

    fn small(d_model: usize) -> Self {
        Self::new(d_model).with_max_len(16).with_filter_order(8)
    }

    fn d_model(&self) -> usize {
        self.d_model
    }

    fn init(&self, device: &Device) -> Hyena {
        let (d, n, f) = (self.d_model, self.order, self.filter_order);
        assert!(n >= 2 && self.max_len >= 2, "hyena: order ≥ 2 and max_len ≥ 2");
        let emb = 2 * self.bands + 1;
        // Decay rates spread from "fast" (1 % left at 30 % of the filter) to "slow" (at 150 %).
        let target = 0.01f64.ln().abs();
        let (fast, slow) = (target / 0.3, target / 1.5);
        let decay = Tensor::<1, Int>::arange(0..d as i64, device).float().mul_scalar((fast - slow) / (d.max(2) - 1) as f64).add_scalar(slow);
        let filter = || HyenaFilter {
            layers: vec![LinearConfig::new(emb, f).init(device), LinearConfig::new(f, f).init(device), LinearConfig::new(f, d).with_bias(false).init(device)],
            freq: (0..2).map(|_| Param::from_tensor(Tensor::ones([f], device))).collect(),
            decay: Param::from_tensor(decay.clone()),
            bias: Param::from_tensor(Tensor::random([d], burn::tensor::Distribution::Normal(0.0, 1.0), device)),
        };
        Hyena {
            in_proj: LinearConfig::new(d, (n + 1) * d).init(device),
            short_filter: DepthwiseConv1d::init((n + 1) * d, self.short_filter, true, device),
            filters: (0..n - 1).map(|_| filter()).collect(),
            out_proj: LinearConfig::new(d, d).init(device),
            max_len: self.max_len,
            bands: self.bands,
        }
    }
}

impl Hyena {
    /// Positional features `[T, 2K + 1]` of positions 0 … T − 1 (T = max_len).
    fn features(&self, device: &Device) -> Tensor<2> {
        let t = self.max_len;
        let pos = Tensor::<1, Int>::arange(0..t as i64, device).float().div_scalar(t as f64).reshape([t, 1]);
        let mut cols = vec![pos.clone()];
        for k in 1..=self.bands {
            let w = pos.clone().mul_scalar(2.0 * std::f64::consts::PI * k as f64);
            cols.push(w.clone().cos());
            cols.push(w.sin());
        }
        Tensor::cat(cols, 1)
    }
}

impl HyenaFilter {
    /// hₜ `[D, T]` from features `z` `[T, E]`.
    fn kernel(&self, z: Tensor<2>) -> Tensor<2> {
        let t = z.dims()[0];
        let mut h = z;
        for (layer, freq) in self.layers.iter().zip(&self.freq) {
            h = (layer.forward(h) * freq.val().unsqueeze_dim(0)).sin();
        }
        let h = self.layers[2].forward(h).transpose(); // [D, T]
        let pos = Tensor::<1, Int>::arange(0..t as i64, &h.device()).float().cast(h.dtype()).div_scalar(t as f64);
        let window = (self.decay.val().abs().unsqueeze_dim::<2>(1) * pos.unsqueeze_dim(0)).neg().exp();
        h * window
    }
}

impl SequenceMixer for Hyena {
    type State = HyenaState;

    fn d_model(&self) -> usize {
        self.out_proj.weight.dims()[1]
    }

    fn init_state(&self, batch: usize, device: &Device) -> HyenaState {
        let d = SequenceMixer::d_model(self);
        let long = self.filters.iter().map(|_| Tensor::zeros([batch, d, self.max_len - 1], device)).collect();
        HyenaState { short: self.short_filter.init_history(batch, device), long }
    }

    fn forward(&self, x: Tensor<3>, state: Option<HyenaState>) -> (Tensor<3>, HyenaState) {
        let [_, _, d] = x.dims();
        // No state: zero histories, which the long convolutions skip (kernels cut to the length).
        let (short0, histories): (Option<Tensor<3>>, Vec<Option<Tensor<3>>>) = match state {
            Some(s) => (Some(s.short), s.long.into_iter().map(Some).collect()),
            None => (None, self.filters.iter().map(|_| None).collect()),
        };
        let (uc, short) = self.short_filter.forward(self.in_proj.forward(x).swap_dims(1, 2), short0); // [B, (N+1)D, L]
        let n = self.filters.len() + 1;
        let part = |i: usize| uc.clone().narrow(1, i * d, d);
        let z = self.features(&uc.device()).cast(uc.dtype());
        let mut v = part(n);
        let mut long = Vec::new();
        for (i, (f, hist)) in self.filters.iter().zip(histories).enumerate().rev() {
            v = v * part(i + 1);
            let (y, h) = causal_conv_history(v.clone(), f.kernel(z.clone()), hist);
            v = y + v * f.bias.val().reshape([1, d, 1]);
            long.push(h);
        }
        long.reverse();
        let y = (v * part(0)).swap_dims(1, 2);
        (self.out_proj.forward(y), HyenaState { short, long })
    }

    fn step(&self, x: Tensor<2>, state: HyenaState) -> (Tensor<2>, HyenaState) {
        let (y, s) = self.forward(x.unsqueeze_dim(1), Some(state));
        (y.squeeze_dim(1), s)
    }
}
