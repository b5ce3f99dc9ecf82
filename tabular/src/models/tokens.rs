//! Feature tokens: each row is a sequence of feature tokens read by any registered mixer stack —
//! the per-row SSM variant, and with `attention` layers an FT-Transformer (Gorishniy et al.,
//! "Revisiting Deep Learning Models for Tabular Data", NeurIPS 2021; reference code:
//! `yandex-research/rtdl`).
//!
//! ```text
//! t_j = x_j W_j + b_j         numeric feature j
//! t_j = E[x_j] + b_j          categorical feature j
//! z = Backbone([t_1, …, t_F, [CLS]])      ŷ = W_o ReLU(LayerNorm(z_[CLS]))
//! ```
//! The class token comes last so that causal mixers (Mamba, S4D, …) read every feature before it.

use super::Inputs;
use crate::data::Schema;
use burn::module::{Module, Param};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Distribution, Tensor};
use serde::{Deserialize, Serialize};
use ssm_core::backbone::BackboneConfig;
use ssm_core::blocks::Backbone;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokensConfig {
    pub backbone: BackboneConfig,
}

#[derive(Module, Debug)]
pub struct FeatureTokens {
    num_weight: Param<Tensor<2>>,
    num_bias: Param<Tensor<2>>,
    embedding: Embedding,
    cat_bias: Param<Tensor<2>>,
    cls: Param<Tensor<1>>,
    backbone: Backbone,
    norm: LayerNorm,
    head: Linear,
}

impl TokensConfig {
    pub fn init(&self, schema: &Schema, device: &Device) -> FeatureTokens {
        let d = self.backbone.d_model();
        let (nn, cards) = (schema.numeric(), schema.cardinalities());
        let s = 1.0 / (d as f64).sqrt();
        let p = |shape: [usize; 2]| Param::from_tensor(Tensor::random(shape, Distribution::Uniform(-s, s), device));
        FeatureTokens {
            num_weight: p([nn, d]),
            num_bias: p([nn, d]),
            embedding: EmbeddingConfig::new(cards.iter().sum::<usize>().max(1), d).init(device),
            cat_bias: p([cards.len(), d]),
            cls: Param::from_tensor(Tensor::random([d], Distribution::Uniform(-s, s), device)),
            backbone: self.backbone.init(device),
            norm: LayerNormConfig::new(d).init(device),
            head: LinearConfig::new(d, schema.outputs()).init(device),
        }
    }
}

impl FeatureTokens {
    pub fn forward(&self, x: &Inputs) -> Tensor<2> {
        let [b, nn] = x.num.dims();
        let nc = x.cat.dims()[1];
        let d = self.cls.dims()[0];
        let mut tokens = Vec::new();
        if nn > 0 {
            tokens.push(
                x.num.clone().unsqueeze_dim::<3>(2) * self.num_weight.val().unsqueeze_dim(0)
                    + self.num_bias.val().unsqueeze_dim(0),
            );
        }
        if nc > 0 {
            tokens.push(self.embedding.forward(x.cat.clone()) + self.cat_bias.val().unsqueeze_dim(0));
        }
        tokens.push(self.cls.val().reshape([1, 1, d]).expand([b, 1, d]));
        let seq = Tensor::cat(tokens, 1);
        let l = seq.dims()[1];
        let (z, _) = self.backbone.forward(seq, None);
        let last = z.slice([0..b, l - 1..l, 0..d]).reshape([b, d]);
        self.head.forward(relu(self.norm.forward(last)))
    }
}
