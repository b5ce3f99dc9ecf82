//! The tabular models by name, the shared input encoders, and how the runner trains them.

pub mod mambatab;
pub mod mlp;
pub mod tokens;

use crate::data::{Encoded, Schema, Task};
use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use ssm_core::loss::classification_loss;
use ssm_core::train::{Stats, Trainable};

/// A batch of encoded rows on a device.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// `[B, numeric]` standardised values.
    pub num: Tensor<2>,
    /// `[B, categorical]` ids, already offset into one shared embedding table.
    pub cat: Tensor<2, Int>,
    /// Class ids or standardised regression targets, on the host.
    pub target: Vec<f32>,
    pub task: Task,
}

impl Inputs {
    /// Rows `idx` of `e` (category ids offset by `offsets`).
    pub fn new(e: &Encoded, idx: &[usize], offsets: &[i64], task: Task, device: &Device) -> Self {
        let (nn, nc, b) = (e.numeric.len() / e.rows.max(1), offsets.len(), idx.len());
        let num: Vec<f32> = idx.iter().flat_map(|&r| e.numeric[r * nn..(r + 1) * nn].to_vec()).collect();
        let cat: Vec<i64> =
            idx.iter().flat_map(|&r| (0..nc).map(move |j| e.categorical[r * nc + j] + offsets[j])).collect();
        Inputs {
            num: Tensor::from_data(TensorData::new(num, [b, nn]), device),
            cat: Tensor::from_data(TensorData::new(cat, [b, nc]), device),
            target: idx.iter().map(|&r| e.target[r]).collect(),
            task,
        }
    }

    pub fn rows(&self) -> usize {
        self.target.len()
    }
}

/// Where each categorical feature's ids start in the shared table (and the table's size).
pub fn offsets(cardinalities: &[usize]) -> (Vec<i64>, usize) {
    let mut acc = 0;
    let offs = cardinalities
        .iter()
        .map(|&c| {
            let o = acc as i64;
            acc += c;
            o
        })
        .collect();
    (offs, acc.max(1))
}

/// Numeric values and categorical embeddings of one row, concatenated: `[B, numeric + categorical · e]`.
#[derive(Module, Debug)]
pub struct FlatInput {
    embedding: Embedding,
    width: usize,
}

impl FlatInput {
    pub fn new(schema: &Schema, dim: usize, device: &Device) -> Self {
        let (_, total) = offsets(&schema.cardinalities());
        FlatInput {
            embedding: EmbeddingConfig::new(total, dim).init(device),
            width: schema.numeric() + schema.cardinalities().len() * dim,
        }
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn forward(&self, x: &Inputs) -> Tensor<2> {
        let [b, nc] = x.cat.dims();
        if nc == 0 {
            return x.num.clone();
        }
        let e = self.embedding.forward(x.cat.clone());
        let d = e.dims()[2];
        Tensor::cat(vec![x.num.clone(), e.reshape([b, nc * d])], 1)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "kebab-case")]
pub enum TabularConfig {
    Mambatab(mambatab::MambaTabConfig),
    Tokens(tokens::TokensConfig),
    Mlp(mlp::MlpConfig),
}

// One model lives per run: the variants' size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum TabularModel {
    Mambatab(mambatab::MambaTab),
    Tokens(tokens::FeatureTokens),
    Mlp(mlp::Mlp),
}

impl TabularConfig {
    pub fn init(&self, schema: &Schema, device: &Device) -> TabularModel {
        match self {
            Self::Mambatab(c) => TabularModel::Mambatab(c.init(schema, device)),
            Self::Tokens(c) => TabularModel::Tokens(c.init(schema, device)),
            Self::Mlp(c) => TabularModel::Mlp(c.init(schema, device)),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Mambatab(_) => "mambatab",
            Self::Tokens(_) => "tokens",
            Self::Mlp(_) => "mlp",
        }
    }
}

impl TabularModel {
    /// `[B, outputs]`: class logits, or the standardised regression prediction.
    pub fn forward(&self, x: &Inputs) -> Tensor<2> {
        match self {
            Self::Mambatab(m) => m.forward(x),
            Self::Tokens(m) => m.forward(x),
            Self::Mlp(m) => m.forward(x),
        }
    }
}

impl Trainable for TabularModel {
    type Batch = Inputs;

    /// Cross-entropy (classification) or mean squared error on standardised targets.
    fn loss(&self, b: &Inputs) -> (Tensor<1>, Stats) {
        let out = self.forward(b);
        let n = b.rows();
        match b.task {
            Task::Regression => {
                let y = Tensor::<2>::from_data(TensorData::new(b.target.clone(), [n, 1]), &out.device());
                let mse = (out - y).powi_scalar(2).mean();
                let v = ssm_core::loss::scalar(mse.clone());
                (mse, Stats { loss_sum: v * n as f64, correct: 0, count: n, items: n })
            }
            _ => {
                let labels: Vec<i64> = b.target.iter().map(|&t| t as i64).collect();
                let (ce, stats, _) = classification_loss(out, &labels);
                (ce, stats)
            }
        }
    }
}
