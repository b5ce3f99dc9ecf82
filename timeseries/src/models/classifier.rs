//! A sequence classifier over any ssm-core backbone, for UEA / UCR data: per-step embedding,
//! the backbone over time (causal mixers: right padding cannot reach the valid steps), the mean
//! of the valid steps, and a linear head:
//!
//! ```text
//! h_t    = W_in x_t + b                       (dims → D)
//! z      = Backbone(h)                        (mamba, mamba2, s4d or attention)
//! logits = W_out · mean_{t < len} z_t
//! ```

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use ssm_core::blocks::{Backbone, BlockConfig};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassifierConfig {
    pub dims: usize,
    pub classes: usize,
    pub block: BlockConfig,
    pub layers: usize,
}

impl ClassifierConfig {
    pub fn init(&self, device: &Device) -> Classifier {
        let d = self.block.mixer.d_model();
        Classifier {
            embed: LinearConfig::new(self.dims, d).init(device),
            backbone: Backbone::new(&self.block, self.layers, device),
            head: LinearConfig::new(d, self.classes).init(device),
        }
    }
}

#[derive(Module, Debug)]
pub struct Classifier {
    pub embed: Linear,
    pub backbone: Backbone,
    pub head: Linear,
}

impl Classifier {
    /// `x` `[B, T, dims]` (right-padded), `mask` `[B, T, 1]` (1 on valid steps) → logits.
    pub fn forward(&self, x: Tensor<3>, mask: Tensor<3>) -> Tensor<2> {
        let (z, _) = self.backbone.forward(self.embed.forward(x), None);
        let [b, _, d] = z.dims();
        let pooled = (z * mask.clone()).sum_dim(1) / mask.sum_dim(1).clamp_min(1.0);
        self.head.forward(pooled.reshape([b, d]))
    }
}
