//! MambaTab — Ahamed & Cheng, "MambaTab: A Plug-and-Play Model for Learning Tabular Data",
//! 2024 (reference code: `Atik-Ahamed/MambaTab`, `MambaTab.py`).
//!
//! ```text
//! h = ReLU( LayerNorm( W x + b ) )          x: a row's features (categories embedded)
//! z = Mamba( [h_1, …, h_B] )                the mini-batch's rows as ONE sequence
//! ŷ_i = W_o z_i + b_o
//! ```
//! Because the rows of a batch form the sequence, a row's prediction depends on the rows before
//! it in its batch. As in the reference, evaluation runs the test rows in file order, in batches
//! of the training batch size ([`crate::train::predict`] does this).

use super::{FlatInput, Inputs};
use crate::data::Schema;
use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use ssm_core::mixers::{Mixer, MixerConfig};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MambaTabConfig {
    /// The representation width and the sequence mixer (Mamba in the paper).
    pub mixer: MixerConfig,
    pub embedding: usize,
}

#[derive(Module, Debug)]
pub struct MambaTab {
    input: FlatInput,
    embed: Linear,
    norm: LayerNorm,
    mixer: Mixer,
    head: Linear,
}

impl MambaTabConfig {
    pub fn init(&self, schema: &Schema, device: &Device) -> MambaTab {
        let d = self.mixer.d_model();
        let input = FlatInput::new(schema, self.embedding, device);
        MambaTab {
            embed: LinearConfig::new(input.width(), d).init(device),
            input,
            norm: LayerNormConfig::new(d).init(device),
            mixer: self.mixer.init(device),
            head: LinearConfig::new(d, schema.outputs()).init(device),
        }
    }
}

impl MambaTab {
    pub fn forward(&self, x: &Inputs) -> Tensor<2> {
        let h = relu(self.norm.forward(self.embed.forward(self.input.forward(x))));
        let [b, d] = h.dims();
        let (z, _) = self.mixer.forward(h.reshape([1, b, d]), None);
        self.head.forward(z.reshape([b, d]))
    }
}
