//! GAT — Veličković et al., "Graph Attention Networks", ICLR 2018 (reference code:
//! `PetarV-/GAT`, `utils/layers.py` `attn_head`, `models/gat.py`).
//!
//! ```text
//! e_ij = LeakyReLU_0.2( aᵀ [W h_i ‖ W h_j] ),   α_ij = softmax_{j ∈ N(i) ∪ {i}} e_ij
//! h'_i = ‖_{k=1..K} ELU( Σ_j α^k_ij W^k h_j )            (hidden layer: K = 8 heads × 8)
//! z_i  = mean_k Σ_j α^k_ij W^k h_j                         (output layer: 1 head)
//! ```
//! Dropout 0.6 on each layer's input and on the normalised coefficients α, L2 5·10⁻⁴ on the
//! weights, Glorot initialisation. `aᵀ[W h_i ‖ W h_j]` is split as `a_lᵀ W h_j + a_rᵀ W h_i`.

use crate::gcn::glorot;
use crate::model::GraphInputs;
use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::tensor::activation::{elu, leaky_relu};
use burn::tensor::{Device, Distribution, Tensor};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GatConfig {
    pub heads: usize,
    pub hidden: usize,
    pub out_heads: usize,
    pub dropout: f64,
    pub l2: f64,
}

impl Default for GatConfig {
    fn default() -> Self {
        GatConfig { heads: 8, hidden: 8, out_heads: 1, dropout: 0.6, l2: 5e-4 }
    }
}

/// One multi-head attention layer.
#[derive(Module, Debug)]
pub struct GatLayer {
    w: Linear,
    a_src: Param<Tensor<2>>,
    a_dst: Param<Tensor<2>>,
    bias: Param<Tensor<1>>,
    heads: usize,
    width: usize,
}

fn glorot_param(shape: [usize; 2], device: &Device) -> Param<Tensor<2>> {
    let b = (6.0 / (shape[0] + shape[1]) as f64).sqrt();
    Param::from_tensor(Tensor::random(shape, Distribution::Uniform(-b, b), device))
}

impl GatLayer {
    fn new(d_in: usize, heads: usize, width: usize, device: &Device) -> Self {
        GatLayer {
            w: glorot(d_in, heads * width, false, device),
            a_src: glorot_param([heads, width], device),
            a_dst: glorot_param([heads, width], device),
            bias: Param::from_tensor(Tensor::zeros([heads * width], device)),
            heads,
            width,
        }
    }

    /// `[N, heads · width]` (heads concatenated, before the activation) from the projected
    /// inputs `wh = W x` `[N, heads · width]`.
    fn forward(&self, g: &GraphInputs, wh: Tensor<2>, dropout: &Dropout) -> Tensor<2> {
        let (n, h, f) = (wh.dims()[0], self.heads, self.width);
        let wh3 = wh.clone().reshape([n, h, f]);
        let score = |a: &Param<Tensor<2>>| (wh3.clone() * a.val().unsqueeze_dim(0)).sum_dim(2).reshape([n, h]);
        let (s_src, s_dst) = (score(&self.a_src), score(&self.a_dst));
        let e = leaky_relu(s_src.select(0, g.edges.src.clone()) + s_dst.select(0, g.edges.dst.clone()), 0.2);
        let alpha = dropout.forward(g.edges.edge_softmax(e));
        let n_edges = alpha.dims()[0];
        let w = alpha.unsqueeze_dim::<3>(2).expand([n_edges, h, f]).reshape([n_edges, h * f]);
        g.edges.propagate(wh, w) + self.bias.val().unsqueeze_dim(0)
    }

    fn sq_norm(&self) -> Tensor<1> {
        self.w.weight.val().powi_scalar(2).sum()
            + self.a_src.val().powi_scalar(2).sum()
            + self.a_dst.val().powi_scalar(2).sum()
    }
}

#[derive(Module, Debug)]
pub struct Gat {
    hidden: GatLayer,
    out: GatLayer,
    dropout: Dropout,
    l2: f64,
}

impl GatConfig {
    pub fn init(&self, n_features: usize, n_classes: usize, device: &Device) -> Gat {
        Gat {
            hidden: GatLayer::new(n_features, self.heads, self.hidden, device),
            out: GatLayer::new(self.heads * self.hidden, self.out_heads, n_classes, device),
            dropout: DropoutConfig::new(self.dropout).init(),
            l2: self.l2,
        }
    }
}

impl Gat {
    pub fn embed(&self, g: &GraphInputs) -> Tensor<2> {
        elu(self.hidden.forward(g, g.x.linear(&self.hidden.w, &self.dropout), &self.dropout), 1.0)
    }

    /// Logits `[N, C]`: the output heads averaged.
    pub fn forward(&self, g: &GraphInputs) -> Tensor<2> {
        let h = self.embed(g);
        let z = self.out.forward(g, self.out.w.forward(self.dropout.forward(h)), &self.dropout);
        let [n, _] = z.dims();
        z.reshape([n, self.out.heads, self.out.width]).mean_dim(1).reshape([n, self.out.width])
    }

    /// `λ/2 Σ ‖W‖²` over the weights (not the biases).
    pub fn penalty(&self) -> Tensor<1> {
        (self.hidden.sq_norm() + self.out.sq_norm()).mul_scalar(self.l2 / 2.0)
    }
}
