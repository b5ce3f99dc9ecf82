//! Normalisations: RMSNorm / LayerNorm behind one [`Norm`], and Mamba-2's gated RMSNorm.

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, LayerNormConfig, RmsNorm, RmsNormConfig};
use burn::tensor::activation::silu;
use burn::tensor::{Device, Shape, Tensor};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NormKind {
    Rms,
    Layer,
}

#[derive(Module, Debug)]
pub enum Norm {
    Rms(RmsNorm),
    Layer(LayerNorm),
}

impl Norm {
    pub fn new(kind: NormKind, d: usize, eps: f64, device: &Device) -> Self {
        match kind {
            NormKind::Rms => Norm::Rms(RmsNormConfig::new(d).with_epsilon(eps).init(device)),
            NormKind::Layer => Norm::Layer(LayerNormConfig::new(d).with_epsilon(eps).init(device)),
        }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Norm::Rms(n) => n.forward(x),
            Norm::Layer(n) => n.forward(x),
        }
    }
}

/// Gated RMSNorm (norm after the gate), normalised per group of `group_size` channels:
/// `weight · rmsnorm_groups(y · silu(z))`.
#[derive(Module, Debug)]
pub struct GatedRmsNorm {
    pub weight: Param<Tensor<1>>,
    pub group_size: usize,
    pub eps: f64,
}

impl GatedRmsNorm {
    /// Unit weight over `width` channels in groups of `group_size`.
    pub fn new(width: usize, group_size: usize, eps: f64, device: &Device) -> Self {
        Self { weight: Param::from_tensor(Tensor::ones([width], device)), group_size, eps }
    }

    /// `weight · rmsnorm_groups(y · silu(z))` over the last dimension (`D1 = D + 1`).
    pub fn forward<const D: usize, const D1: usize>(&self, y: Tensor<D>, z: Tensor<D>) -> Tensor<D> {
        let dims = y.dims();
        let width = dims[D - 1];
        let groups = width / self.group_size;
        let g = y * silu(z);
        let mut grouped = dims.to_vec();
        grouped[D - 1] = groups;
        grouped.push(self.group_size);
        let g: Tensor<D1> = g.reshape(Shape::from(grouped));
        let inv = g.clone().square().mean_dim(D).add_scalar(self.eps).sqrt().recip();
        let mut w_shape = vec![1; D - 1];
        w_shape.push(width);
        (g * inv).reshape(dims) * self.weight.val().reshape(Shape::from(w_shape))
    }
}
