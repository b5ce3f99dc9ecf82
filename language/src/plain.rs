//! Token decode in plain Rust ([`ssm_core::plain`]): the embedding row, every block's fused
//! step, the final norm and the LM head, with the weights copied once and the buffers allocated
//! once, continuing from the state a parallel prefill ends in. [`crate::generate`] uses it when
//! every layer has a plain step, and the tensor `step` otherwise.

use crate::model::{LanguageModel, LmState};
use ssm_core::kernels::gemv_cpu::{self, Dense};
use ssm_core::kernels::gemv_quant::QMatrix;
use ssm_core::plain::{PlainBackbone, PlainLinear, PlainSpec, Precision, Weights};

/// A language model ready to decode `batch` sequences from a state.
pub struct PlainLm {
    /// The embedding `[V, D]` (rows are read, f32).
    embed: Weights,
    /// The tied head at reduced precision (the embedding read as `[V, D]` rows otherwise).
    tied: Option<QMatrix>,
    d: usize,
    vocab: usize,
    backbone: PlainBackbone,
    head: Option<PlainLinear>,
    x: Vec<f32>,
    h: Vec<f32>,
    logits: Vec<f32>,
}

impl PlainLm {
    /// `None` when a layer has no plain step (or uses a LayerNorm, whose epsilon burn hides).
    /// `precision`: the storage of every matrix but the embedding rows.
    pub fn new(model: &LanguageModel, state: &LmState, batch: usize, precision: Precision) -> Option<Self> {
        let [vocab, d] = model.embedding.weight.dims();
        let embed = Weights::of(model.embedding.weight.val());
        let tied = match (precision, &model.lm_head) {
            (Precision::Bf16, None) => Some(QMatrix::bf16(&embed, vocab, d)),
            (Precision::Int8, None) => Some(QMatrix::int8(&embed, vocab, d)),
            _ => None,
        };
        let spec = PlainSpec { batch, precision, layer_eps: None };
        Some(Self {
            embed,
            tied,
            d,
            vocab,
            backbone: PlainBackbone::new(&model.backbone, state, spec)?,
            head: model.lm_head.as_ref().map(|l| PlainLinear::new(l, precision)),
            x: vec![0.0; batch * d],
            h: vec![0.0; batch * d],
            logits: vec![0.0; batch * vocab],
        })
    }

    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// Logits `[batch, V]` after one token per sequence.
    pub fn step(&mut self, tokens: &[u32]) -> &[f32] {
        // on a pool thread: each product's parallel part is then a cheap fork, not a hand-off
        // from this thread to the pool and back (dozens per token)
        rayon::scope(|_| self.step_here(tokens));
        &self.logits
    }

    fn step_here(&mut self, tokens: &[u32]) {
        let d = self.d;
        for (row, &t) in self.x.chunks_exact_mut(d).zip(tokens) {
            let t = (t as usize).min(self.vocab - 1);
            row.copy_from_slice(&self.embed[t * d..(t + 1) * d]);
        }
        self.backbone.step(&mut self.x, &mut self.h);
        match (&self.head, &self.tied) {
            (Some(l), _) => l.apply(&self.h, &mut self.logits),
            (None, Some(q)) => q.x_wt(&self.h, &mut self.logits),
            (None, None) => {
                let head = Dense { values: &self.embed, rows: self.vocab, cols: d };
                gemv_cpu::x_wt_into(&head, &self.h, &mut self.logits);
            }
        }
    }
}
