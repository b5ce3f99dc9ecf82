//! The gated (GLU / SwiGLU) channel mixer: `down(silu(gate(x)) ⊙ up(x))`.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::silu;
use burn::tensor::{Device, Tensor};

/// down(silu(gate(x)) ⊙ up(x))
#[derive(Module, Debug)]
pub struct GatedMlp {
    pub gate: Linear,
    pub up: Linear,
    pub down: Linear,
}

impl GatedMlp {
    pub fn new(d: usize, hidden: usize, device: &Device) -> Self {
        let lin = |i, o| LinearConfig::new(i, o).with_bias(false).init(device);
        Self { gate: lin(d, hidden), up: lin(d, hidden), down: lin(hidden, d) }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.down.forward(silu(self.gate.forward(x.clone())) * self.up.forward(x))
    }
}
