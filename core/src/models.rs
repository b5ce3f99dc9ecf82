//! A token-sequence model over any mixer: embedding → backbone → head, the model the synthetic
//! tasks and `ssm-compare` train, with cross-entropy over the scored positions.

use crate::blocks::{Backbone, BlockConfig};
use crate::mixers::MixerState;
use crate::tasks::TokenBatch;
use crate::train::{Stats, Trainable};
use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenModelConfig {
    pub vocab: usize,
    pub n_classes: usize,
    pub n_layers: usize,
    pub block: BlockConfig,
}

#[derive(Module, Debug)]
pub struct TokenModel {
    pub embedding: Embedding,
    pub backbone: Backbone,
    pub head: Linear,
}

impl TokenModelConfig {
    pub fn init(&self, device: &Device) -> TokenModel {
        let d = self.block.mixer.d_model();
        TokenModel {
            embedding: EmbeddingConfig::new(self.vocab, d).init(device),
            backbone: Backbone::new(&self.block, self.n_layers, device),
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

    fn loss(&self, b: &TokenTensors) -> (Tensor<1>, Stats) {
        let logits = self.forward(b.inputs.clone());
        let classes = logits.dims()[2];
        let flat = logits.reshape([b.batch * b.len, classes]);
        let idx: Vec<i64> = b.targets.iter().enumerate().filter(|(_, t)| **t >= 0).map(|(i, _)| i as i64).collect();
        assert!(!idx.is_empty(), "token batch has no scored position");
        let device = flat.device();
        let n = idx.len();
        let rows = Tensor::<1, Int>::from_data(TensorData::new(idx.clone(), [n]), &device);
        let picked = flat.select(0, rows); // [n, classes]
        let tgt: Vec<i64> = idx.iter().map(|&i| b.targets[i as usize]).collect();
        let tgt_t = Tensor::<1, Int>::from_data(TensorData::new(tgt.clone(), [n]), &device);
        let logp = log_softmax(picked.clone(), 1);
        let nll = logp.gather(1, tgt_t.unsqueeze_dim(1)).neg().mean();
        let pred = picked.argmax(1).into_data().convert::<i64>().try_to_vec::<i64>().unwrap_or_default();
        let correct = pred.iter().zip(&tgt).filter(|(p, t)| p == t).count();
        let loss_val = nll.clone().into_scalar_f64();
        (nll, Stats { loss_sum: loss_val * n as f64, correct, count: n, items: b.batch * b.len })
    }
}

trait ScalarF64 {
    fn into_scalar_f64(self) -> f64;
}

impl ScalarF64 for Tensor<1> {
    fn into_scalar_f64(self) -> f64 {
        self.into_data().convert::<f64>().try_to_vec::<f64>().map(|v| v[0]).unwrap_or(f64::NAN)
    }
}
