//! The causal language model over any mixer — HuggingFace's `MambaForCausalLM` /
//! `Mamba2ForCausalLM` when the mixer is Mamba / Mamba-2:
//!
//! ```text
//! h      = embedding[tokens]
//! h      = h + mixerᵢ(rmsnormᵢ(h))        i = 1 … n_layers
//! logits = lm_head(norm_f(h))             (lm_head = embeddingᵀ when tied)
//! ```

use crate::config::LmConfig;
use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use ssm_core::blocks::Backbone;
use ssm_core::kernels::{linear_rows, matmul_rows};
use ssm_core::loss::cross_entropy;
use ssm_core::mixers::MixerState;
use ssm_core::train::{Stats, Trainable};

#[derive(Module, Debug)]
pub struct LanguageModel {
    pub embedding: Embedding,
    pub backbone: Backbone,
    /// `None` when tied to the embedding.
    pub lm_head: Option<Linear>,
}

impl LmConfig {
    pub fn init(&self, device: &Device) -> LanguageModel {
        let d = self.d_model();
        LanguageModel {
            // N(0, 0.02) as mamba_ssm / transformers: with a tied head, unit-variance embeddings
            // would start from logits of scale √d.
            embedding: EmbeddingConfig::new(self.vocab_size, d)
                .with_initializer(Initializer::Normal { mean: 0.0, std: 0.02 })
                .init(device),
            backbone: self.backbone.init(device),
            lm_head: (!self.tie_embeddings).then(|| {
                LinearConfig::new(d, self.vocab_size)
                    .with_bias(false)
                    .with_initializer(Initializer::Normal { mean: 0.0, std: 0.02 })
                    .init(device)
            }),
        }
    }
}

/// Per-layer recurrent states of a language model (the decoding cache).
pub type LmState = Vec<MixerState>;

impl LanguageModel {
    pub fn vocab_size(&self) -> usize {
        self.embedding.weight.dims()[0]
    }

    pub fn d_model(&self) -> usize {
        self.embedding.weight.dims()[1]
    }

    pub fn parameter_count(&self) -> usize {
        Module::num_params(self)
    }

    /// Logits of hidden states `[…, D]` → `[…, V]`.
    pub fn head<const D: usize>(&self, h: Tensor<D>) -> Tensor<D> {
        match &self.lm_head {
            Some(l) => l.forward(h),
            None => {
                let w = self.embedding.weight.val().transpose(); // [D, V]
                let mut shape = [1; D];
                shape[D - 2] = w.dims()[0];
                shape[D - 1] = w.dims()[1];
                h.matmul(w.reshape(shape))
            }
        }
    }

    /// Logits of rows `[M, D]` → `[M, V]` (decoding: the streaming few-row kernel on CPU).
    pub fn head_rows(&self, h: Tensor<2>) -> Tensor<2> {
        match &self.lm_head {
            Some(l) => linear_rows(l, h),
            None => matmul_rows(h, self.embedding.weight.val(), true),
        }
    }

    /// Final hidden states `[B, L, D]` (after norm_f) for tokens `[B, L]`, from `state`.
    pub fn hidden(&self, tokens: Tensor<2, Int>, state: Option<LmState>) -> (Tensor<3>, LmState) {
        let [_, l] = tokens.dims();
        assert!(l > 0, "language model: empty token sequence");
        self.backbone.forward(self.embedding.forward(tokens), state)
    }

    /// Parallel form: logits `[B, L, V]`.
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        self.head(self.hidden(tokens, None).0)
    }

    /// Prompt prefill in parallel mode: logits of the last position `[B, V]` and the state after
    /// the prompt (only the last position goes through the LM head).
    pub fn prefill(&self, tokens: Tensor<2, Int>, state: Option<LmState>) -> (Tensor<2>, LmState) {
        let (h, s) = self.hidden(tokens, state);
        let [b, l, d] = h.dims();
        (self.head_rows(h.narrow(1, l - 1, 1).reshape([b, d])), s)
    }

    pub fn init_state(&self, batch: usize, device: &Device) -> LmState {
        self.backbone.init_state(batch, device)
    }

    /// Recurrent form: one token per sequence `[B]` → logits `[B, V]`.
    pub fn step(&self, token: Tensor<1, Int>, state: LmState) -> (Tensor<2>, LmState) {
        let h = self.embedding.forward(token.unsqueeze_dim::<2>(1)).squeeze_dim::<2>(1);
        let (y, s) = self.backbone.step(h, state);
        (self.head_rows(y), s)
    }
}

/// A batch of next-token prediction: inputs and targets `[B, L]`.
#[derive(Debug, Clone)]
pub struct LmBatch {
    pub inputs: Tensor<2, Int>,
    pub targets: Tensor<2, Int>,
}

impl LmBatch {
    /// From windows of `len + 1` tokens each.
    pub fn from_windows(windows: &[Vec<u32>], device: &Device) -> Self {
        let b = windows.len();
        let l = windows[0].len() - 1;
        let mut inp = Vec::with_capacity(b * l);
        let mut tgt = Vec::with_capacity(b * l);
        for w in windows {
            assert_eq!(w.len(), l + 1, "LM batch: windows of different lengths");
            inp.extend(w[..l].iter().map(|&t| t as i64));
            tgt.extend(w[1..].iter().map(|&t| t as i64));
        }
        let t = |v: Vec<i64>| Tensor::<2, Int>::from_data(TensorData::new(v, [b, l]), device);
        Self { inputs: t(inp), targets: t(tgt) }
    }
}

impl Trainable for LanguageModel {
    type Batch = LmBatch;

    /// Mean next-token cross-entropy in nats; accuracy of the arg-max prediction.
    fn loss(&self, batch: &LmBatch) -> (Tensor<1>, Stats) {
        let (h, _, aux) = self.backbone.forward_aux(self.embedding.forward(batch.inputs.clone()), None);
        let logits = self.head(h);
        let [b, l, v] = logits.dims();
        let (nll, stats) = cross_entropy(logits.reshape([b * l, v]), batch.targets.clone().reshape([b * l]));
        // A mixture-of-experts layer adds its load-balancing loss to what is minimised.
        (aux.map_or(nll.clone(), |a| nll + a), stats)
    }
}
