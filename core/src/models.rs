//! A token-sequence model over any mixer: embedding → backbone → head, the model the synthetic
//! tasks and `ssm-compare` train, with cross-entropy over the scored positions.

use crate::backbone::BackboneConfig;
use crate::blocks::Backbone;
use crate::loss::cross_entropy;
use crate::mixers::MixerState;
use crate::tasks::TokenBatch;
use crate::train::{Stats, Trainable};
use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "SavedTokenModelConfig")]
pub struct TokenModelConfig {
    pub vocab: usize,
    pub n_classes: usize,
    pub backbone: BackboneConfig,
}

/// The config as saved now, or as saved before backbones were lists (`n_layers` × `block`).
#[derive(Deserialize)]
#[serde(untagged)]
enum SavedTokenModelConfig {
    Layers { vocab: usize, n_classes: usize, backbone: BackboneConfig },
    Uniform { vocab: usize, n_classes: usize, n_layers: usize, block: crate::blocks::BlockConfig },
}

impl From<SavedTokenModelConfig> for TokenModelConfig {
    fn from(s: SavedTokenModelConfig) -> Self {
        match s {
            SavedTokenModelConfig::Layers { vocab, n_classes, backbone } => Self { vocab, n_classes, backbone },
            SavedTokenModelConfig::Uniform { vocab, n_classes, n_layers, block } => {
                Self { vocab, n_classes, backbone: BackboneConfig::uniform(block, n_layers) }
            }
        }
    }
}

#[derive(Module, Debug)]
pub struct TokenModel {
    pub embedding: Embedding,
    pub backbone: Backbone,
    pub head: Linear,
}

impl TokenModelConfig {
    pub fn init(&self, device: &Device) -> TokenModel {
        let d = self.backbone.d_model();
        TokenModel {
            embedding: EmbeddingConfig::new(self.vocab, d).init(device),
            backbone: self.backbone.init(device),
            head: LinearConfig::new(d, self.n_classes).init(device),
        }
    }
}

impl TokenModel {
    /// Logits `[B, L, classes]` for tokens `[B, L]`.
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        let h = self.embedding.forward(tokens);
        self.head.forward(self.backbone.forward(h, None).0)
    }

    /// Recurrent inference: logits `[B, classes]` for one token per sequence.
    pub fn step(&self, token: Tensor<1, Int>, states: Vec<MixerState>) -> (Tensor<2>, Vec<MixerState>) {
        let h = self.embedding.forward(token.unsqueeze_dim::<2>(1)).squeeze_dim::<2>(1);
        let (y, s) = self.backbone.step(h, states);
        (self.head.forward(y), s)
    }

    /// Number of trainable scalars.
    pub fn parameter_count(&self) -> usize {
        Module::num_params(self)
    }
}

/// Tensors of a token batch on a device.
#[derive(Debug, Clone)]
pub struct TokenTensors {
    pub inputs: Tensor<2, Int>,
    pub targets: Vec<i64>,
    pub batch: usize,
    pub len: usize,
}

impl TokenTensors {
    pub fn new(b: &TokenBatch, device: &Device) -> Self {
        let inputs = Tensor::<2, Int>::from_data(TensorData::new(b.inputs.clone(), [b.batch, b.len]), device);
        Self { inputs, targets: b.targets.clone(), batch: b.batch, len: b.len }
    }
}

impl Trainable for TokenModel {
    type Batch = TokenTensors;

    /// Cross-entropy over the scored positions, plus the MoE layers' load-balancing loss.
    fn loss(&self, b: &TokenTensors) -> (Tensor<1>, Stats) {
        let (h, _, aux) = self.backbone.forward_aux(self.embedding.forward(b.inputs.clone()), None);
        let logits = self.head.forward(h);
        let classes = logits.dims()[2];
        let flat = logits.reshape([b.batch * b.len, classes]);
        let (idx, tgt): (Vec<i64>, Vec<i64>) =
            b.targets.iter().enumerate().filter(|(_, t)| **t >= 0).map(|(i, t)| (i as i64, *t)).unzip();
        assert!(!idx.is_empty(), "token batch has no scored position");
        let (device, n) = (flat.device(), idx.len());
        let int = |v: Vec<i64>| Tensor::<1, Int>::from_data(TensorData::new(v, [n]), &device);
        let (nll, stats) = cross_entropy(flat.select(0, int(idx)), int(tgt));
        let loss = match aux {
            Some(a) => nll + a,
            None => nll,
        };
        (loss, Stats { items: b.batch * b.len, ..stats })
    }
}
