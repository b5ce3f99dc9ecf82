//! MLP baseline (as in Gorishniy et al., "Revisiting Deep Learning Models for Tabular Data",
//! NeurIPS 2021): `x → (Linear → ReLU → Dropout)ᴸ → Linear`, categorical features embedded.

use super::{FlatInput, Inputs};
use crate::data::Schema;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MlpConfig {
    pub hidden: usize,
    pub layers: usize,
    pub dropout: f64,
    pub embedding: usize,
}

impl Default for MlpConfig {
    fn default() -> Self {
        MlpConfig { hidden: 256, layers: 3, dropout: 0.1, embedding: 8 }
    }
}

#[derive(Module, Debug)]
pub struct Mlp {
    input: FlatInput,
    hidden: Vec<Linear>,
    head: Linear,
    dropout: Dropout,
}

impl MlpConfig {
    pub fn init(&self, schema: &Schema, device: &Device) -> Mlp {
        let input = FlatInput::new(schema, self.embedding, device);
        let mut d = input.width();
        let hidden = (0..self.layers)
            .map(|_| {
                let l = LinearConfig::new(d, self.hidden).init(device);
                d = self.hidden;
                l
            })
            .collect();
        Mlp {
            input,
            hidden,
            head: LinearConfig::new(d, schema.outputs()).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
        }
    }
}

impl Mlp {
    pub fn forward(&self, x: &Inputs) -> Tensor<2> {
        let mut h = self.input.forward(x);
        for l in &self.hidden {
            h = self.dropout.forward(relu(l.forward(h)));
        }
        self.head.forward(h)
    }
}
