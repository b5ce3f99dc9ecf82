//! Mixture-of-experts channel mixer (Switch Transformer, Fedus et al. 2021; the top-k form of
//! Mixtral / Jamba / MoE-Mamba):
//!
//! ```text
//! p      = softmax(router(x))                         router: d → E, per token
//! T_k    = the k experts of largest p;  g_e = p_e / Σ_{e'∈T_k} p_e'    (renormalised gates)
//! y      = Σ_{e ∈ T_k} g_e · expert_e(x)              expert_e: a gated MLP
//! L_aux  = α · E · Σ_e f_e · P_e                       load balancing
//! ```
//!
//! `f_e` is the fraction of the T·k routing slots assigned to expert e (not differentiable) and
//! `P_e` the mean router probability of e (differentiable), so minimising `L_aux` spreads
//! tokens evenly; it equals α when routing is perfectly uniform. Tokens are dispatched: each
//! expert runs only on the tokens routed to it (rows gathered, results added back by index).

use super::GatedMlp;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, IndexingUpdateOp, Int, Shape, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// Shape of a mixture-of-experts layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MoeConfig {
    /// Number of experts E.
    pub experts: usize,
    /// Experts per token k.
    pub top_k: usize,
    /// Hidden width of each expert's gated MLP.
    pub hidden: usize,
    /// Weight α of the load-balancing loss.
    #[serde(default = "default_aux_weight")]
    pub aux_weight: f64,
}

fn default_aux_weight() -> f64 {
    0.01
}

impl MoeConfig {
    /// `experts` experts of hidden width `hidden`, top-`top_k` routing, α = 0.01.
    pub fn new(experts: usize, top_k: usize, hidden: usize) -> Self {
        Self { experts, top_k, hidden, aux_weight: default_aux_weight() }
    }

    pub fn init(&self, d: usize, device: &Device) -> Moe {
        assert!(
            self.top_k >= 1 && self.top_k <= self.experts,
            "moe: top_k {} must be in 1..={} (the number of experts)",
            self.top_k,
            self.experts
        );
        Moe {
            router: LinearConfig::new(d, self.experts).with_bias(false).init(device),
            experts: (0..self.experts).map(|_| GatedMlp::new(d, self.hidden, device)).collect(),
            top_k: self.top_k,
            aux_weight: self.aux_weight,
        }
    }
}

#[derive(Module, Debug)]
pub struct Moe {
    pub router: Linear,
    pub experts: Vec<GatedMlp>,
    pub top_k: usize,
    pub aux_weight: f64,
}

impl Moe {
    /// `x` `[…, d]` → (`y` `[…, d]`, the weighted load-balancing loss `[1]`).
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> (Tensor<D>, Tensor<1>) {
        let dims = x.dims();
        let d = dims[D - 1];
        let t: usize = dims[..D - 1].iter().product();
        let (e, k) = (self.experts.len(), self.top_k);
        let device = x.device();
        let flat: Tensor<2> = x.reshape([t, d]);
        let probs = softmax(self.router.forward(flat.clone()), 1); // [T, E]
        let (top_p, top_i) = probs.clone().topk_with_indices(k, 1); // [T, k]
        let gates = (top_p.clone() / top_p.sum_dim(1)).reshape([t * k]);
        let chosen: Vec<i64> = top_i.into_data().convert::<i64>().try_into_vec().expect("router indices");
        let mut y = Tensor::<2>::zeros([t, d], &device);
        let mut load = vec![0f32; e];
        for (expert, mlp) in self.experts.iter().enumerate() {
            let slots: Vec<i64> =
                chosen.iter().enumerate().filter(|(_, c)| **c == expert as i64).map(|(s, _)| s as i64).collect();
            load[expert] = slots.len() as f32 / (t * k) as f32;
            if slots.is_empty() {
                continue;
            }
            let n = slots.len();
            let rows: Vec<i64> = slots.iter().map(|s| s / k as i64).collect();
            let rows = Tensor::<1, Int>::from_data(TensorData::new(rows, [n]), &device);
            let slots = Tensor::<1, Int>::from_data(TensorData::new(slots, [n]), &device);
            let g = gates.clone().select(0, slots).reshape([n, 1]);
            let out = mlp.forward(flat.clone().select(0, rows.clone())) * g;
            y = y.select_assign(0, rows, out, IndexingUpdateOp::Add);
        }
        let f = Tensor::<1>::from_data(TensorData::new(load, [e]), &device).cast(probs.dtype());
        let aux = (probs.mean_dim(0).reshape([e]) * f).sum().mul_scalar(self.aux_weight * e as f64);
        (y.reshape(Shape::from(dims)), aux)
    }
}
