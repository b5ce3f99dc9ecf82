//! A temporal SSM forecaster in the PatchTST layout with an SSM over time: RevIN, patching,
//! any ssm-core mixer over the patch sequence of each variable (channel-independent), and a
//! flatten head:
//!
//! ```text
//! x̃        = RevIN(x) = γ (x − μ)/σ + β                  (per window and variable)
//! patches  = unfold(x̃, P, stride S)                      (pad the end by S, as PatchTST)
//! z        = Backbone(W_p · patches + W_pos)             (mixer over the patches)
//! ŷ        = RevIN⁻¹(Linear(flatten(z)))                  (n_patches · D → H)
//! ```

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Distribution, Tensor};
use serde::{Deserialize, Serialize};
use ssm_core::blocks::{Backbone, BlockConfig};
use ssm_core::mixers::MixerConfig;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TemporalConfig {
    pub lookback: usize,
    pub horizon: usize,
    pub vars: usize,
    pub patch_len: usize,
    pub stride: usize,
    pub block: BlockConfig,
    pub layers: usize,
}

impl TemporalConfig {
    pub fn new(lookback: usize, horizon: usize, vars: usize, mixer: MixerConfig) -> Self {
        Self { lookback, horizon, vars, patch_len: 16, stride: 8, block: BlockConfig::new(mixer), layers: 2 }
    }

    pub fn patches(&self) -> usize {
        (self.lookback + self.stride - self.patch_len) / self.stride + 1
    }

    pub fn init(&self, device: &Device) -> Temporal {
        let d = self.block.mixer.d_model();
        Temporal {
            revin_weight: Param::from_tensor(Tensor::ones([self.vars], device)),
            revin_bias: Param::from_tensor(Tensor::zeros([self.vars], device)),
            patch_embed: LinearConfig::new(self.patch_len, d).init(device),
            pos: Param::from_tensor(Tensor::random([1, self.patches(), d], Distribution::Normal(0.0, 0.02), device)),
            backbone: Backbone::new(&self.block, self.layers, device),
            head: LinearConfig::new(self.patches() * d, self.horizon).init(device),
            patch_len: self.patch_len,
            stride: self.stride,
        }
    }
}

#[derive(Module, Debug)]
pub struct Temporal {
    pub revin_weight: Param<Tensor<1>>,
    pub revin_bias: Param<Tensor<1>>,
    pub patch_embed: Linear,
    pub pos: Param<Tensor<3>>,
    pub backbone: Backbone,
    pub head: Linear,
    pub patch_len: usize,
    pub stride: usize,
}

impl Temporal {
    /// `x` `[B, L, V]` → `[B, H, V]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, l, v] = x.dims();
        let n = super::Normalised::new(x);
        let (w, bias) = (self.revin_weight.val().reshape([1, 1, v]), self.revin_bias.val().reshape([1, 1, v]));
        let xs = (n.x.clone() * w.clone() + bias.clone()).swap_dims(1, 2); // [B, V, L]
        // pad the end with the last value (stride steps), then unfold
        let last = xs.clone().narrow(2, l - 1, 1).repeat_dim(2, self.stride);
        let padded = Tensor::cat(vec![xs, last], 2).reshape([b * v, l + self.stride]);
        let np = self.pos.dims()[1];
        let patches: Vec<Tensor<2>> =
            (0..np).map(|i| padded.clone().narrow(1, i * self.stride, self.patch_len)).collect();
        let p = Tensor::stack::<3>(patches, 1); // [B·V, np, P]
        let z = self.patch_embed.forward(p) + self.pos.val();
        let (z, _) = self.backbone.forward(z, None);
        let d = z.dims()[2];
        let y =
            self.head.forward(z.reshape([b * v, np * d])).reshape([b, v, self.head.weight.dims()[1]]).swap_dims(1, 2);
        let y = (y - bias) / (w + 1e-10);
        n.restore(y)
    }
}
