//! Causal multi-head self-attention (Vaswani et al.), the Transformer baseline:
//!
//! ```text
//! q, k, v = split(qkv(x)),   positions by rotary embedding (RoPE) or a learned table
//! y = out(softmax(q kᵀ / √d_head + causal mask) v)
//! ```
//!
//! With `window = W` each token attends only to itself and the W − 1 tokens before it (local,
//! sliding-window attention, as Griffin's local-attention layers), and the cache keeps only
//! those W − 1 tokens. The scores are still computed as one masked `[L, T]` matrix per head.
//!
//! The recurrent state is the KV cache: `step` appends one token's key and value.

use super::{BatchState, MixerSpec, SequenceMixer, cat_batch_pairs, split_batch_pairs};
use crate::layers::rotary;
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, Device, Int, Tensor};
use serde::{Deserialize, Serialize};

/// How token positions enter attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Positions {
    /// Rotary embedding of queries and keys (GPT-NeoX layout: halves rotated).
    Rotary,
    /// A learned table added to the input, for sequences up to `max_len`.
    Learned { max_len: usize },
    /// None: order comes only from the causal mask and the layers below (MambaFormer).
    Absent,
}

#[derive(Config, Debug)]
pub struct AttentionConfig {
    pub d_model: usize,
    #[config(default = 4)]
    pub n_heads: usize,
    #[config(default = "Positions::Rotary")]
    pub positions: Positions,
    #[config(default = 10000.0)]
    pub rope_base: f64,
    /// Sliding-window size W (`None`: global causal attention).
    #[config(default = "None")]
    pub window: Option<usize>,
}

#[derive(Module, Debug)]
pub struct Attention {
    pub qkv: Linear,
    pub out: Linear,
    pub pos_table: Option<Param<Tensor<2>>>,
    pub n_heads: usize,
    pub rope_base: f64,
    pub window: Option<usize>,
    pub rotary: bool,
}

/// KV cache `[B, heads, T, d_head]` of the last T tokens, after `dropped` earlier ones that a
/// sliding window no longer needs.
#[derive(Debug, Clone)]
pub struct KvCache {
    pub k: Tensor<4>,
    pub v: Tensor<4>,
    pub dropped: usize,
}

impl KvCache {
    /// Tokens held.
    pub fn len(&self) -> usize {
        self.k.dims()[2]
    }
    /// Tokens seen (held and dropped): the next token's position.
    pub fn position(&self) -> usize {
        self.dropped + self.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl BatchState for KvCache {
    /// `None` for caches of different lengths.
    fn cat_batch(states: Vec<Self>) -> Option<Self> {
        let (len, dropped) = states.first().map(|c| (c.len(), c.dropped))?;
        let same = |c: &KvCache| c.len() == len && c.dropped == dropped;
        let pairs = states.into_iter().map(|c| same(&c).then_some((c.k, c.v))).collect::<Option<Vec<_>>>()?;
        let (k, v) = cat_batch_pairs(pairs);
        Some(KvCache { k, v, dropped })
    }

    fn split_batch(self) -> Vec<Self> {
        let dropped = self.dropped;
        split_batch_pairs(self.k, self.v).into_iter().map(|(k, v)| KvCache { k, v, dropped }).collect()
    }
}

impl MixerSpec for AttentionConfig {
    const NAME: &'static str = "attention";
    type Mixer = Attention;

    fn with_width(d_model: usize) -> Self {
        Self::new(d_model)
    }

    fn d_model(&self) -> usize {
        self.d_model
    }

    /// A Transformer block: attention, then an MLP.
    fn wants_mlp(&self) -> bool {
        true
    }

    /// Scores, softmax and their gradient: three `[B, heads, L, L]` f32 matrices.
    fn quadratic_bytes(&self, batch: usize, len: usize) -> Option<f64> {
        Some((batch * self.n_heads) as f64 * (len as f64).powi(2) * 4.0 * 3.0)
    }

    fn init(&self, device: &Device) -> Attention {
        let d = self.d_model;
        assert!(
            d.is_multiple_of(self.n_heads),
            "attention: d_model {d} must be a multiple of n_heads {}",
            self.n_heads
        );
        assert!((d / self.n_heads).is_multiple_of(2), "attention: the head size must be even (rotary embedding)");
        assert!(self.window != Some(0), "attention: the window must hold at least one token");
        Attention {
            qkv: LinearConfig::new(d, 3 * d).with_bias(false).init(device),
            out: LinearConfig::new(d, d).with_bias(false).init(device),
            pos_table: match self.positions {
                Positions::Rotary | Positions::Absent => None,
                Positions::Learned { max_len } => {
                    Some(Initializer::Normal { mean: 0.0, std: 0.02 }.init([max_len, d], device))
                }
            },
            n_heads: self.n_heads,
            rope_base: self.rope_base,
            window: self.window,
            rotary: self.positions == Positions::Rotary,
        }
    }
}

impl Attention {
    fn d_head(&self) -> usize {
        self.qkv.weight.dims()[0] / self.n_heads
    }

    /// Rotates `x` `[B, H, L, dh]` for absolute positions `offset..offset+L`.
    fn rope(&self, x: Tensor<4>, offset: usize) -> Tensor<4> {
        rotary(x, offset, self.rope_base)
    }

    /// Masked (query, key) pairs `[L, T]` for queries at positions `offset..offset+L` and keys
    /// at `dropped..dropped+T`: future keys, and keys W or more positions back with a window.
    fn mask(&self, offset: usize, l: usize, dropped: usize, t: usize) -> Tensor<2, Bool> {
        let device = self.out.weight.device();
        let qi = Tensor::<1, Int>::arange(offset as i64..(offset + l) as i64, &device).reshape([l, 1]);
        let kj = Tensor::<1, Int>::arange(dropped as i64..(dropped + t) as i64, &device).reshape([1, t]);
        let future = kj.clone().greater(qi.clone());
        match self.window {
            Some(w) => future.bool_or(kj.add_scalar(w as i64).lower_equal(qi)),
            None => future,
        }
    }

    /// Drops the keys no later token can see (all but the last W − 1 with a window).
    fn trim(&self, c: KvCache) -> KvCache {
        let (t, keep) = (c.len(), self.window.map_or(usize::MAX, |w| w - 1));
        if t <= keep {
            return c;
        }
        let drop = t - keep;
        let [b, h, _, dh] = c.k.dims();
        let tail = |x: Tensor<4>| if keep == 0 { Tensor::zeros([b, h, 0, dh], &x.device()) } else { x.narrow(2, drop, keep) };
        KvCache { k: tail(c.k), v: tail(c.v), dropped: c.dropped + drop }
    }

}

impl SequenceMixer for Attention {
    type State = KvCache;

    fn d_model(&self) -> usize {
        self.out.weight.dims()[1]
    }

    fn init_state(&self, batch: usize, device: &Device) -> KvCache {
        let z = Tensor::<4>::zeros([batch, self.n_heads, 0, self.d_head()], device);
        KvCache { k: z.clone(), v: z, dropped: 0 }
    }

    /// Attention over `x` `[B, L, D]` after the tokens in `cache` (empty when `None`).
    fn forward(&self, x: Tensor<3>, cache: Option<KvCache>) -> (Tensor<3>, KvCache) {
        let [b, l, d] = x.dims();
        let (h, dh) = (self.n_heads, self.d_head());
        let cache = cache.unwrap_or_else(|| self.init_state(b, &x.device()));
        let (offset, dropped) = (cache.position(), cache.dropped);
        let x = match &self.pos_table {
            Some(t) => {
                let max = t.dims()[0];
                assert!(offset + l <= max, "attention: position {} beyond the learned table ({max})", offset + l);
                x + t.val().narrow(0, offset, l).unsqueeze::<3>()
            }
            None => x,
        };
        let qkv = self.qkv.forward(x);
        let heads = |i: usize| qkv.clone().narrow(2, i * d, d).reshape([b, l, h, dh]).swap_dims(1, 2);
        let (mut q, mut k, v) = (heads(0), heads(1), heads(2));
        if self.rotary {
            q = self.rope(q, offset);
            k = self.rope(k, offset);
        }
        let k = Tensor::cat(vec![cache.k, k], 2);
        let v = Tensor::cat(vec![cache.v, v], 2);
        let t = k.dims()[2];
        let scores = q.matmul(k.clone().swap_dims(2, 3)).div_scalar((dh as f64).sqrt()); // [B, H, L, T]
        let scores = scores.mask_fill(self.mask(offset, l, dropped, t).unsqueeze::<4>(), -1e9);
        let y = softmax(scores, 3).matmul(v.clone()); // [B, H, L, dh]
        let y = y.swap_dims(1, 2).reshape([b, l, d]);
        (self.out.forward(y), self.trim(KvCache { k, v, dropped }))
    }

    /// One token `x` `[B, D]` with the KV cache.
    fn step(&self, x: Tensor<2>, cache: KvCache) -> (Tensor<2>, KvCache) {
        let (y, cache) = self.forward(x.unsqueeze_dim(1), Some(cache));
        (y.squeeze_dim(1), cache)
    }
}
