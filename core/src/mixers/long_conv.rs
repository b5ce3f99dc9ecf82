//! LongConv (Fu, Epstein, Nguyen, Thomas, Zhang, Dao, Rudra & Ré, "Simple Hardware-Efficient
//! Long Convolutions for Sequence Modeling", ICML 2023, §3): the SSM's kernel replaced by a
//! directly learned one, kept smooth and sparse by two operations applied in every forward pass.
//! Checked against HazyResearch/safari `src/models/sequence/long_conv.py` (`LongConv`: kernel
//! per channel, `kernel_lam` soft threshold, GELU + output linear) and the paper's §3.2.
//!
//! ```text
//! Squash:  K ← sign(K) · max(|K| − λ, 0)            (soft threshold: many exact zeros)
//! Smooth:  K ← AvgPool_p(K)                          (moving average over p taps, same length)
//! y = K ∗ u + D ⊙ u                                  (causal FFT convolution, core kernel)
//! out = GLU(W GELU(y))                               (the S4-style output block)
//! ```
//!
//! The kernel has `max_len` taps; the state is the last `max_len − 1` inputs, so `step` is one
//! dot product with that window (O(max_len) per token) and chunked forwards continue exactly.

use super::{BatchState, MixerSpec, SequenceMixer, cat_batch_dim, split_batch_dim};
use crate::kernels::causal_conv_history;
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{gelu, glu, relu};
use burn::tensor::{Device, Distribution, Tensor};

#[derive(Config, Debug)]
pub struct LongConvConfig {
    pub d_model: usize,
    /// Kernel taps (the longest dependency it can express).
    #[config(default = 1024)]
    pub max_len: usize,
    /// Squash threshold λ.
    #[config(default = 0.003)]
    pub lam: f64,
    /// Smooth window p (1: none).
    #[config(default = 3)]
    pub smooth: usize,
    /// Standard deviation of the initial taps.
    #[config(default = 0.02)]
    pub init_std: f64,
}

/// A long-convolution layer.
#[derive(Module, Debug)]
pub struct LongConv {
    /// `[H, max_len]`.
    pub kernel: Param<Tensor<2>>,
    pub d: Param<Tensor<1>>,
    pub output_linear: Linear,
    pub lam: f64,
    pub smooth: usize,
}

/// The last `max_len − 1` inputs `[B, H, max_len − 1]`.
#[derive(Debug, Clone)]
pub struct ConvHistory {
    pub history: Tensor<3>,
}

impl BatchState for ConvHistory {
    fn cat_batch(states: Vec<Self>) -> Option<Self> {
        Some(ConvHistory { history: cat_batch_dim(states.into_iter().map(|s| s.history).collect()) })
    }

    fn split_batch(self) -> Vec<Self> {
        split_batch_dim(self.history).into_iter().map(|history| ConvHistory { history }).collect()
    }
}

impl MixerSpec for LongConvConfig {
    const NAME: &'static str = "long_conv";
    type Mixer = LongConv;

    fn with_width(d_model: usize) -> Self {
        Self::new(d_model)
    }

    fn small(d_model: usize) -> Self {
        Self::new(d_model).with_max_len(16).with_lam(0.0)
    }

    fn d_model(&self) -> usize {
        self.d_model
    }

    fn init(&self, device: &Device) -> LongConv {
        let h = self.d_model;
        assert!(self.max_len >= 2 && self.smooth >= 1, "long_conv: max_len ≥ 2 and smooth ≥ 1");
        LongConv {
            kernel: Param::from_tensor(Tensor::random([h, self.max_len], Distribution::Normal(0.0, self.init_std), device)),
            d: Param::from_tensor(Tensor::random([h], Distribution::Normal(0.0, 1.0), device)),
            output_linear: LinearConfig::new(h, 2 * h).init(device),
            lam: self.lam,
            smooth: self.smooth,
        }
    }
}

/// Soft threshold then a centred moving average of `p` taps (zero beyond the ends).
pub fn squash_smooth(k: Tensor<2>, lam: f64, p: usize) -> Tensor<2> {
    let k = if lam > 0.0 { k.clone().sign() * relu(k.abs().sub_scalar(lam)) } else { k };
    if p <= 1 {
        return k;
    }
    let [h, l] = k.dims();
    let device = k.device();
    let (left, right) = ((p - 1) / 2, p / 2);
    let dtype = k.dtype();
    let pad = |w: usize| (w > 0).then(|| Tensor::<2>::zeros([h, w], &device).cast(dtype));
    let padded = Tensor::cat(pad(left).into_iter().chain([k]).chain(pad(right)).collect(), 1);
    let sum = (0..p).map(|s| padded.clone().narrow(1, s, l)).reduce(|a, b| a + b).expect("p ≥ 1");
    sum.div_scalar(p as f64)
}

impl LongConv {
    fn kernel(&self) -> Tensor<2> {
        squash_smooth(self.kernel.val(), self.lam, self.smooth)
    }

}

/// The block of the explicit-kernel layers (LongConv, SGConv): `GLU(W GELU(K ∗ u + D ⊙ u))`
/// over `x` `[B, L, H]`, continuing from `state`.
pub fn conv_block(
    x: Tensor<3>,
    kernel: Tensor<2>,
    d: &Param<Tensor<1>>,
    output_linear: &Linear,
    state: Option<ConvHistory>,
) -> (Tensor<3>, ConvHistory) {
    let h = x.dims()[2];
    let u = x.swap_dims(1, 2);
    let (y, history) = causal_conv_history(u.clone(), kernel, state.map(|s| s.history));
    let y = y + u * d.val().reshape([1, h, 1]);
    (glu(output_linear.forward(gelu(y.swap_dims(1, 2))), 2), ConvHistory { history })
}

impl SequenceMixer for LongConv {
    type State = ConvHistory;

    fn d_model(&self) -> usize {
        self.d.dims()[0]
    }

    fn init_state(&self, batch: usize, device: &Device) -> ConvHistory {
        let [h, l] = self.kernel.dims();
        ConvHistory { history: Tensor::zeros([batch, h, l - 1], device) }
    }

    fn forward(&self, x: Tensor<3>, state: Option<ConvHistory>) -> (Tensor<3>, ConvHistory) {
        conv_block(x, self.kernel(), &self.d, &self.output_linear, state)
    }

    fn step(&self, x: Tensor<2>, state: ConvHistory) -> (Tensor<2>, ConvHistory) {
        let (y, s) = self.forward(x.unsqueeze_dim(1), Some(state));
        (y.squeeze_dim(1), s)
    }
}
