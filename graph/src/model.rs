//! The node classifiers by name, their inputs on a device, and how the runner trains them.

use crate::data::GraphData;
use crate::data::SparseFeatures;
use crate::gat::{Gat, GatConfig};
use crate::gcn::{Gcn, GcnConfig};
use crate::graph_mamba::{GraphMamba, GraphMambaConfig};
use crate::sparse::{EdgeList, EdgeTensors, FeatureTensors};
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use ssm_core::loss::classification_loss;
use ssm_core::train::{DataSource, Stats, Trainable};
use std::sync::Arc;

/// A graph's tensors on one device.
#[derive(Debug, Clone)]
pub struct GraphInputs {
    /// Node features `X` `[N, F]` (sparse, row-normalised).
    pub x: FeatureTensors,
    /// `Â = D̃^{-1/2}(A + I)D̃^{-1/2}` (GCN propagation).
    pub gcn: EdgeTensors,
    /// `A + I` with unit weights (attention over neighbours and self).
    pub edges: EdgeTensors,
    pub degrees: Vec<usize>,
}

/// A graph prepared once on the host, moved to any device on demand.
#[derive(Debug, Clone)]
pub struct HostGraph {
    pub features: SparseFeatures,
    pub n: usize,
    pub gcn: EdgeList,
    pub edges: EdgeList,
    pub degrees: Vec<usize>,
}

impl HostGraph {
    pub fn new(g: &GraphData) -> Self {
        let n = g.n_nodes();
        let edges = EdgeList::with_self_loops(g);
        HostGraph { features: g.features.clone(), n, gcn: edges.gcn_normalised(), edges, degrees: g.degrees() }
    }

    pub fn to_device(&self, device: &Device) -> GraphInputs {
        GraphInputs {
            x: FeatureTensors::new(&self.features, self.n, true, device),
            gcn: self.gcn.to_device(device),
            edges: self.edges.to_device(device),
            degrees: self.degrees.clone(),
        }
    }
}

/// The node classifiers, by name.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "kebab-case")]
pub enum NodeModelConfig {
    Gcn(GcnConfig),
    Gat(GatConfig),
    GraphMamba(GraphMambaConfig),
}

// One model lives per run: the variants' size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum NodeModel {
    Gcn(Gcn),
    Gat(Gat),
    GraphMamba(GraphMamba),
}

impl NodeModelConfig {
    pub fn init(&self, n_features: usize, n_classes: usize, device: &Device) -> NodeModel {
        match self {
            Self::Gcn(c) => NodeModel::Gcn(c.init(n_features, n_classes, device)),
            Self::Gat(c) => NodeModel::Gat(c.init(n_features, n_classes, device)),
            Self::GraphMamba(c) => NodeModel::GraphMamba(c.init(n_features, n_classes, device)),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Gcn(_) => "gcn",
            Self::Gat(_) => "gat",
            Self::GraphMamba(_) => "graph-mamba",
        }
    }
}

impl NodeModel {
    /// Logits `[N, C]` for every node; `seed` draws Graph-Mamba's training ordering.
    pub fn forward(&self, g: &GraphInputs, seed: u64) -> Tensor<2> {
        match self {
            Self::Gcn(m) => m.forward(g),
            Self::Gat(m) => m.forward(g),
            Self::GraphMamba(m) => m.forward(g, seed),
        }
    }

    /// Node embeddings (the last hidden representation) `[N, d]`.
    pub fn embed(&self, g: &GraphInputs) -> Tensor<2> {
        match self {
            Self::Gcn(m) => m.embed(g),
            Self::Gat(m) => m.embed(g),
            Self::GraphMamba(m) => m.embed(g, 0),
        }
    }

    fn penalty(&self) -> Tensor<1> {
        match self {
            Self::Gcn(m) => m.penalty(),
            Self::Gat(m) => m.penalty(),
            Self::GraphMamba(m) => m.penalty(),
        }
    }
}

/// The scored nodes of one step: the whole graph goes through the model, the loss is taken on
/// `nodes`.
#[derive(Debug, Clone)]
pub struct NodeBatch {
    pub inputs: Arc<GraphInputs>,
    pub nodes: Tensor<1, Int>,
    pub labels: Vec<i64>,
    pub seed: u64,
}

impl Trainable for NodeModel {
    type Batch = NodeBatch;

    /// Cross-entropy on the batch's nodes, plus the L2 penalty while training.
    fn loss(&self, b: &NodeBatch) -> (Tensor<1>, Stats) {
        let logits = self.forward(&b.inputs, b.seed).select(0, b.nodes.clone());
        let (ce, stats, _) = classification_loss(logits, &b.labels);
        let loss = if b.inputs.x.device().is_autodiff() { ce + self.penalty() } else { ce };
        (loss, stats)
    }
}

/// Full-graph training on the train split, evaluation on `eval` nodes.
pub struct NodeSource {
    host: Arc<HostGraph>,
    train: (Vec<usize>, Vec<i64>),
    eval: (Vec<usize>, Vec<i64>),
    seed: u64,
    cached: std::sync::Mutex<Vec<(Device, Arc<GraphInputs>)>>,
}

impl NodeSource {
    pub fn new(host: Arc<HostGraph>, g: &GraphData, eval: &[usize], seed: u64) -> Self {
        let train = (g.split.train.clone(), g.labels_of(&g.split.train));
        NodeSource { host, train, eval: (eval.to_vec(), g.labels_of(eval)), seed, cached: Default::default() }
    }

    /// The graph on `device`, moved there once.
    fn inputs(&self, device: &Device) -> Arc<GraphInputs> {
        let mut cache = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, g)) = cache.iter().find(|(d, _)| d == device) {
            return g.clone();
        }
        let g = Arc::new(self.host.to_device(device));
        cache.push((device.clone(), g.clone()));
        g
    }
}

/// Node ids as an index tensor.
pub fn node_tensor(nodes: &[usize], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(TensorData::new(nodes.iter().map(|&i| i as i64).collect::<Vec<_>>(), [nodes.len()]), device)
}

impl DataSource<NodeBatch> for NodeSource {
    fn train_batch(&mut self, step: usize, device: &Device) -> NodeBatch {
        let inputs = self.inputs(device);
        let seed = self.seed.wrapping_mul(1_000_003).wrapping_add(step as u64);
        NodeBatch { inputs, nodes: node_tensor(&self.train.0, device), labels: self.train.1.clone(), seed }
    }

    fn eval_batches(&self, device: &Device) -> Vec<NodeBatch> {
        let inputs = self.inputs(device);
        vec![NodeBatch { inputs, nodes: node_tensor(&self.eval.0, device), labels: self.eval.1.clone(), seed: 0 }]
    }
}
