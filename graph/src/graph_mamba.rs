//! Graph-Mamba — Wang et al., "Graph-Mamba: Towards Long-Range Graph Sequence Modeling with
//! Selective State Spaces", 2024 (reference code: `bowang-lab/Graph-Mamba`, `graphgps/layer/
//! gps_layer.py`, global model `Mamba_Hybrid_Degree_Noise`).
//!
//! A GPS-style layer: a local message-passing branch and a global sequence branch, added, then
//! a feed-forward block:
//! ```text
//! h_local  = Norm( h + Dropout( Local(h) ) )                      (GCN or GatedGCN branch)
//! h_global = Norm( h + Dropout( Mixer( h[π] )[π⁻¹] ) )            (Mamba branch)
//! h        = Norm( (h_local + h_global) + FFN(h_local + h_global) )
//! ```
//! Node prioritisation: the sequence `π` orders nodes by degree, low to high, ties broken by
//! uniform noise (`deg + U(0,1)`), so the best-connected nodes come last and see the most
//! context. A fresh random tie-break every training step (permutation-based training); at
//! evaluation the branch's output is averaged over `eval_orderings` orderings.
//!
//! The local branch is GCN (`Â h W`) or, as the reference's default, GatedGCN (Bresson &
//! Laurent 2017, without edge features): `ReLU( U h_i + Σ_j η_ij ⊙ V h_j / (Σ_j η_ij + ε) )`,
//! `η_ij = σ(A h_i + B h_j)` over the neighbours and self. The feature encoder and the
//! classifier are GCN layers (`ReLU(Â X W)`, `Â h W`): with Planetoid's few labels, a path
//! that bypasses propagation memorises raw features.
//!
//! Neighbourhood tokens (`tokens = Hops`): instead of one sequence over the graph, each node
//! reads its own short sequence `[Âᴷh, …, Âh, h]_v`, far hops first and the node last — the
//! paper's neighbourhood tokenisation with hop-aggregated neighbourhoods in place of sampled
//! subgraphs. The sequence branch's mixer is any registered mixer (`--mixer`).

use crate::gcn::glorot;
use crate::model::GraphInputs;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::activation::{gelu, relu, sigmoid};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use ssm_core::mixers::{Mixer, MixerConfig};

/// The local message-passing branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Local {
    Gcn,
    GatedGcn,
}

/// What the sequence branch reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tokens {
    /// All nodes as one sequence, ordered by degree with random tie-breaking.
    Degree,
    /// Per node, its hop-aggregated neighbourhoods `Âᴷh … Âh, h`.
    Hops(usize),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GraphMambaConfig {
    pub d_model: usize,
    pub layers: usize,
    pub mixer: MixerConfig,
    pub tokens: Tokens,
    pub local: Local,
    pub dropout: f64,
    pub input_dropout: f64,
    /// Orderings averaged at evaluation (`Tokens::Degree`).
    pub eval_orderings: usize,
    pub l2: f64,
}

impl GraphMambaConfig {
    pub fn new(mixer: MixerConfig) -> Self {
        let d_model = mixer.d_model();
        GraphMambaConfig {
            d_model,
            layers: 1,
            mixer,
            tokens: Tokens::Degree,
            local: Local::GatedGcn,
            dropout: 0.7,
            input_dropout: 0.7,
            eval_orderings: 5,
            l2: 2e-2,
        }
    }

    pub fn init(&self, n_features: usize, n_classes: usize, device: &Device) -> GraphMamba {
        let d = self.d_model;
        let norm = || LayerNormConfig::new(d).init(device);
        let layer = |_| GmbLayer {
            local: glorot(d, d, true, device),
            gated: (self.local == Local::GatedGcn).then(|| Gated {
                v: glorot(d, d, false, device),
                a: glorot(d, d, true, device),
                b: glorot(d, d, false, device),
            }),
            mixer: self.mixer.init(device),
            ff1: glorot(d, 2 * d, true, device),
            ff2: glorot(2 * d, d, true, device),
            norm_local: norm(),
            norm_global: norm(),
            norm_ff: norm(),
        };
        GraphMamba {
            encoder: glorot(n_features, d, true, device),
            layers: (0..self.layers).map(layer).collect(),
            head: glorot(d, n_classes, true, device),
            dropout: DropoutConfig::new(self.dropout).init(),
            input_dropout: DropoutConfig::new(self.input_dropout).init(),
            tokens: self.tokens,
            eval_orderings: self.eval_orderings,
            l2: self.l2,
        }
    }
}

/// GatedGCN's extra weights (`U` is the layer's `local`).
#[derive(Module, Debug)]
pub struct Gated {
    v: Linear,
    a: Linear,
    b: Linear,
}

#[derive(Module, Debug)]
pub struct GmbLayer {
    local: Linear,
    gated: Option<Gated>,
    mixer: Mixer,
    ff1: Linear,
    ff2: Linear,
    norm_local: LayerNorm,
    norm_global: LayerNorm,
    norm_ff: LayerNorm,
}

#[derive(Module, Debug)]
pub struct GraphMamba {
    encoder: Linear,
    layers: Vec<GmbLayer>,
    head: Linear,
    dropout: Dropout,
    input_dropout: Dropout,
    #[module(skip)]
    tokens: Tokens,
    eval_orderings: usize,
    l2: f64,
}

/// A degree ordering `π` (ascending `deg + U(0,1)`) and its inverse, as index tensors.
fn degree_order(degrees: &[usize], seed: u64, device: &Device) -> (Tensor<1, Int>, Tensor<1, Int>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let key: Vec<f64> = degrees.iter().map(|&d| d as f64 + rng.random::<f64>()).collect();
    let mut perm: Vec<i64> = (0..degrees.len() as i64).collect();
    perm.sort_by(|&a, &b| key[a as usize].total_cmp(&key[b as usize]));
    let mut inv = vec![0i64; perm.len()];
    perm.iter().enumerate().for_each(|(i, &p)| inv[p as usize] = i as i64);
    let t = |v: Vec<i64>| Tensor::<1, Int>::from_data(TensorData::new(v, [degrees.len()]), device);
    (t(perm), t(inv))
}

impl GmbLayer {
    /// The sequence branch over all nodes in degree order, `[N, d]`.
    fn over_nodes(&self, h: Tensor<2>, degrees: &[usize], seeds: &[u64]) -> Tensor<2> {
        let device = h.device();
        let outs: Vec<Tensor<2>> = seeds
            .iter()
            .map(|&s| {
                let (perm, inv) = degree_order(degrees, s, &device);
                let (y, _) = self.mixer.forward(h.clone().select(0, perm).unsqueeze_dim(0), None);
                y.squeeze_dim::<2>(0).select(0, inv)
            })
            .collect();
        let k = outs.len() as f64;
        outs.into_iter().reduce(|a, b| a + b).expect("at least one ordering").div_scalar(k)
    }

    /// The sequence branch over each node's hop tokens `[Âᴷh … Âh, h]`, `[N, d]`.
    fn over_hops(&self, g: &GraphInputs, h: Tensor<2>, hops: usize) -> Tensor<2> {
        let mut seq = vec![h.clone()];
        for _ in 0..hops {
            let next = g.gcn.spmm(seq.last().expect("non-empty").clone());
            seq.push(next);
        }
        seq.reverse();
        let [n, d] = h.dims();
        let x = Tensor::stack::<3>(seq, 1);
        let (y, _) = self.mixer.forward(x, None);
        y.slice([0..n, hops..hops + 1, 0..d]).reshape([n, d])
    }

    /// GCN `Â h W`, or GatedGCN `ReLU(U h_i + Σ_j η_ij ⊙ V h_j / (Σ_j η_ij + ε))`.
    fn local(&self, g: &GraphInputs, h: Tensor<2>) -> Tensor<2> {
        let Some(gt) = &self.gated else { return g.gcn.spmm(self.local.forward(h)) };
        let e = &g.edges;
        let eta = sigmoid(
            gt.a.forward(h.clone()).select(0, e.dst.clone()) + gt.b.forward(h.clone()).select(0, e.src.clone()),
        );
        let num = e.propagate(gt.v.forward(h.clone()), eta.clone());
        let den = e.sum_into(eta).add_scalar(1e-6);
        relu(self.local.forward(h) + num / den)
    }

    fn forward(&self, g: &GraphInputs, h: Tensor<2>, tokens: Tokens, seeds: &[u64], dropout: &Dropout) -> Tensor<2> {
        let local = self.norm_local.forward(h.clone() + dropout.forward(self.local(g, h.clone())));
        let global = match tokens {
            Tokens::Degree => self.over_nodes(h.clone(), &g.degrees, seeds),
            Tokens::Hops(k) => self.over_hops(g, h.clone(), k),
        };
        let global = self.norm_global.forward(h + dropout.forward(global));
        let h = local + global;
        let ff = dropout.forward(self.ff2.forward(dropout.forward(gelu(self.ff1.forward(h.clone())))));
        self.norm_ff.forward(h + ff)
    }
}

impl GraphMamba {
    /// Node representations `[N, d]`; `seed` draws the training ordering (evaluation averages
    /// the fixed orderings `0..eval_orderings`).
    pub fn embed(&self, g: &GraphInputs, seed: u64) -> Tensor<2> {
        let training = g.x.device().is_autodiff();
        let seeds: Vec<u64> = if training {
            vec![seed]
        } else {
            (0..self.eval_orderings.max(1) as u64).map(|s| s ^ 0x5eed_0000).collect()
        };
        let mut h = relu(g.gcn.spmm(g.x.linear(&self.encoder, &self.input_dropout)));
        for l in &self.layers {
            h = l.forward(g, h, self.tokens, &seeds, &self.dropout);
        }
        h
    }

    pub fn forward(&self, g: &GraphInputs, seed: u64) -> Tensor<2> {
        g.gcn.spmm(self.head.forward(self.dropout.forward(self.embed(g, seed))))
    }

    /// `λ/2 Σ ‖W‖²` over the weight matrices of the encoder, the local branches, the
    /// feed-forward blocks and the classifier (not the mixers' own parameters, norms or biases).
    pub fn penalty(&self) -> Tensor<1> {
        let sq = |l: &Linear| l.weight.val().powi_scalar(2).sum();
        let mut total = sq(&self.encoder) + sq(&self.head);
        for l in &self.layers {
            total = total + sq(&l.local) + sq(&l.ff1) + sq(&l.ff2);
            if let Some(g) = &l.gated {
                total = total + sq(&g.v) + sq(&g.a) + sq(&g.b);
            }
        }
        total.mul_scalar(self.l2 / 2.0)
    }
}
