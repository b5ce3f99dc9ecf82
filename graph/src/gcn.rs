//! GCN — Kipf & Welling, "Semi-Supervised Classification with Graph Convolutional Networks",
//! ICLR 2017 (reference code: `tkipf/gcn`, `gcn/models.py`, `layers.py`).
//!
//! ```text
//! Z = softmax( Â · ReLU( Â X W⁽⁰⁾ ) · W⁽¹⁾ ),   Â = D̃^{-1/2} (A + I) D̃^{-1/2}
//! ```
//! Dropout 0.5 on the input and hidden features, 16 hidden units, L2 5·10⁻⁴ on W⁽⁰⁾ only,
//! Glorot initialisation, row-normalised features.

use crate::model::GraphInputs;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Initializer, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GcnConfig {
    pub hidden: usize,
    pub dropout: f64,
    /// L2 penalty `λ/2 ‖W⁽⁰⁾‖²` added to the loss.
    pub l2: f64,
}

impl Default for GcnConfig {
    fn default() -> Self {
        GcnConfig { hidden: 16, dropout: 0.5, l2: 5e-4 }
    }
}

#[derive(Module, Debug)]
pub struct Gcn {
    w0: Linear,
    w1: Linear,
    dropout: Dropout,
    l2: f64,
}

pub(crate) fn glorot(d_in: usize, d_out: usize, bias: bool, device: &Device) -> Linear {
    LinearConfig::new(d_in, d_out)
        .with_bias(bias)
        .with_initializer(Initializer::XavierUniform { gain: 1.0 })
        .init(device)
}

impl GcnConfig {
    pub fn init(&self, n_features: usize, n_classes: usize, device: &Device) -> Gcn {
        Gcn {
            w0: glorot(n_features, self.hidden, true, device),
            w1: glorot(self.hidden, n_classes, true, device),
            dropout: DropoutConfig::new(self.dropout).init(),
            l2: self.l2,
        }
    }
}

impl Gcn {
    /// Logits `[N, C]` for every node.
    pub fn forward(&self, g: &GraphInputs) -> Tensor<2> {
        let h = relu(g.gcn.spmm(g.x.linear(&self.w0, &self.dropout)));
        g.gcn.spmm(self.w1.forward(self.dropout.forward(h)))
    }

    /// `λ/2 ‖W⁽⁰⁾‖²`.
    pub fn penalty(&self) -> Tensor<1> {
        self.w0.weight.val().powi_scalar(2).sum().mul_scalar(self.l2 / 2.0)
    }

    /// The hidden representation (the embedding `ssm-graph embed` writes).
    pub fn embed(&self, g: &GraphInputs) -> Tensor<2> {
        relu(g.gcn.spmm(g.x.linear(&self.w0, &self.dropout)))
    }
}
