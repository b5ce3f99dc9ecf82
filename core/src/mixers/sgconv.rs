//! SGConv, the Structured Global Convolution (Li, Cai, Zhang, Chen & Dey, "What Makes
//! Convolutional Models Great on Long Sequence Modeling?", ICLR 2023, §3): a global kernel
//! assembled from a few short learned sub-kernels, each stretched to a longer scale and weighted
//! down with it — sub-linear parameters, a decaying kernel. Checked against ctlllll/SGConv
//! `gconv_standalone.py` (`GConv`: `kernel_dim`, scales doubling, `decay_min` weights, GELU +
//! output linear).
//!
//! ```text
//! S = ⌈log₂(max_len / d)⌉ + 1 scales;  sub-kernels w_i ∈ R^{H×d}
//! K = concat_i( α^i · Upsample_{2^{max(0, i−1)}}(w_i) )[:max_len]     (α = 1/2: decaying weights)
//! y = K ∗ u + D ⊙ u,   out = GLU(W GELU(y))
//! ```
//!
//! Upsampling is linear interpolation (a fixed matrix per scale); the reference also divides K
//! by its norm at initialisation, folded here into the sub-kernels' initial scale. The state is
//! the last `max_len − 1` inputs (as LongConv).

use super::long_conv::{ConvHistory, conv_block};
use super::{MixerSpec, SequenceMixer};
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Distribution, Tensor, TensorData};

#[derive(Config, Debug)]
pub struct SgConvConfig {
    pub d_model: usize,
    /// Kernel taps.
    #[config(default = 1024)]
    pub max_len: usize,
    /// Taps d of each sub-kernel.
    #[config(default = 32)]
    pub kernel_dim: usize,
    /// Weight decay α between scales.
    #[config(default = 0.5)]
    pub decay: f64,
}

/// A structured-global-convolution layer.
#[derive(Module, Debug)]
pub struct SgConv {
    /// Sub-kernels, one `[H, d]` per scale.
    pub kernels: Vec<Param<Tensor<2>>>,
    pub d: Param<Tensor<1>>,
    pub output_linear: Linear,
    pub max_len: usize,
    pub decay: f64,
}

impl SgConvConfig {
    fn scales(&self) -> usize {
        (self.max_len as f64 / self.kernel_dim as f64).log2().ceil().max(0.0) as usize + 1
    }
}

impl MixerSpec for SgConvConfig {
    const NAME: &'static str = "sgconv";
    type Mixer = SgConv;

    fn with_width(d_model: usize) -> Self {
        Self::new(d_model)
    }

    fn small(d_model: usize) -> Self {
        Self::new(d_model).with_max_len(16).with_kernel_dim(4)
    }

    fn d_model(&self) -> usize {
        self.d_model
    }

    fn init(&self, device: &Device) -> SgConv {
        let (h, d) = (self.d_model, self.kernel_dim);
        assert!(d >= 1 && self.max_len >= 2, "sgconv: kernel_dim ≥ 1 and max_len ≥ 2");
        let std = (1.0 / (d * self.scales()) as f64).sqrt();
        SgConv {
            kernels: (0..self.scales())
                .map(|_| Param::from_tensor(Tensor::random([h, d], Distribution::Normal(0.0, std), device)))
                .collect(),
            d: Param::from_tensor(Tensor::random([h], Distribution::Normal(0.0, 1.0), device)),
            output_linear: LinearConfig::new(h, 2 * h).init(device),
            max_len: self.max_len,
            decay: self.decay,
        }
    }
}

/// The `[d, d·s]` matrix of linear interpolation by an integer factor `s` (sample j of the output
/// sits at input position (j + ½)/s − ½, clamped to the ends).
fn upsample_matrix(d: usize, s: usize, device: &Device) -> Tensor<2> {
    let mut m = vec![0.0f64; d * d * s];
    for j in 0..d * s {
        let x = ((j as f64 + 0.5) / s as f64 - 0.5).clamp(0.0, (d - 1) as f64);
        let (i0, f) = (x.floor() as usize, x - x.floor());
        m[i0 * d * s + j] += 1.0 - f;
        if f > 0.0 {
            m[(i0 + 1) * d * s + j] += f;
        }
    }
    Tensor::from_data(TensorData::new(m, [d, d * s]), device)
}

impl SgConv {
    /// K `[H, max_len]`.
    fn kernel(&self) -> Tensor<2> {
        let mut parts = Vec::new();
        for (i, w) in self.kernels.iter().enumerate() {
            let s = 1usize << i.saturating_sub(1);
            let w = w.val();
            let d = w.dims()[1];
            let up = if s == 1 { w } else { w.clone().matmul(upsample_matrix(d, s, &w.device()).cast(w.dtype())) };
            parts.push(up.mul_scalar(self.decay.powi(i as i32)));
        }
        let k = Tensor::cat(parts, 1);
        let len = k.dims()[1].min(self.max_len);
        k.narrow(1, 0, len)
    }
}

impl SequenceMixer for SgConv {
    type State = ConvHistory;

    fn d_model(&self) -> usize {
        self.d.dims()[0]
    }

    fn init_state(&self, batch: usize, device: &Device) -> ConvHistory {
        // The kernel always reaches max_len taps (the scales cover at least that much).
        ConvHistory { history: Tensor::zeros([batch, self.d.dims()[0], self.max_len - 1], device) }
    }

    fn forward(&self, x: Tensor<3>, state: Option<ConvHistory>) -> (Tensor<3>, ConvHistory) {
        conv_block(x, self.kernel(), &self.d, &self.output_linear, state)
    }

    fn step(&self, x: Tensor<2>, state: ConvHistory) -> (Tensor<2>, ConvHistory) {
        let (y, s) = self.forward(x.unsqueeze_dim(1), Some(state));
        (y.squeeze_dim(1), s)
    }
}
