//! SaShiMi (Goel, Gu, Donahue & Ré, "It's Raw! Audio Generation with State-Space Models", ICML
//! 2022, §3): an autoregressive model of 8-bit µ-law samples built as a multi-scale U-Net of S4
//! blocks, with the pooling made causal so that generation runs one sample at a time through
//! every block's recurrent `step`. Checked against state-spaces/s4 `sashimi/sashimi.py`
//! (`DownPool`, `UpPool` with its one-step shift, `Sashimi.forward` / `step`).
//!
//! ```text
//! level ℓ (rate r/pᵉ):  s = [x];  x ← Blockᵢ(x), s.push(x)   (i = 1 … n)
//!                       c = DownPool(x)                  [B, L, H] → [B, L/p, p·H] → Linear → [B, L/p, eH]
//!                       y = level ℓ+1 (c)  — or, below the last level, Center(c) + c
//!                       x = UpPool(y) + s.pop()          Linear → [B, L/p, p·H] → shifted one pooled step
//!                       x ← Blockᵢ(x) + s.pop()          (i = 1 … n)         → [B, L, H]
//! logits = W norm(level 0 (Embed(µ-law tokens)))
//! ```
//!
//! The shift delays each pooled step's output until its p fine steps have all been seen, so the
//! output at t depends on tokens ≤ t. Each block is a residual mixer block with an MLP (S4 and FF
//! residual layers of the reference, one after the other); the mixer is any registered family,
//! S4 by default. In `step` a level below ℓ runs once every pᵉ samples.

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};
use ssm_core::blocks::{BlockConfig, ResidualBlock};
use ssm_core::layers::{Norm, NormKind};
use ssm_core::mixers::{MixerConfig, MixerError, MixerState};

/// µ-law levels (8-bit).
pub const LEVELS: usize = 256;

/// 8-bit µ-law: F(x) = sign(x) ln(1 + µ|x|) / ln(1 + µ), µ = 255, quantised to 0 … 255.
pub fn mu_law_encode(x: f32) -> i64 {
    let mu = (LEVELS - 1) as f32;
    let y = x.clamp(-1.0, 1.0).signum() * (1.0 + mu * x.abs().min(1.0)).ln() / (1.0 + mu).ln();
    (((y + 1.0) / 2.0 * mu) + 0.5).floor().clamp(0.0, mu) as i64
}

/// The inverse of [`mu_law_encode`] (the centre of the level).
pub fn mu_law_decode(q: i64) -> f32 {
    let mu = (LEVELS - 1) as f32;
    let y = 2.0 * q as f32 / mu - 1.0;
    y.signum() * ((1.0 + mu).powf(y.abs()) - 1.0) / mu
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SashimiConfig {
    /// The mixer family of every block and its `key=value` options (widths set per level).
    pub mixer: String,
    pub mixer_opt: Vec<String>,
    pub d_model: usize,
    /// Blocks per level on the way down and on the way up, and in the centre.
    pub blocks: usize,
    /// Pooling factor of each level.
    pub pool: Vec<usize>,
    /// Width multiplier e per level.
    pub expand: usize,
    /// MLP hidden width as a multiple of the block's width.
    pub ff: usize,
}

/// The epsilon of the LayerNorm before the output head.
pub const HEAD_NORM_EPS: f64 = 1e-5;

impl SashimiConfig {
    /// The norm epsilon of the blocks at `width`.
    pub fn norm_eps(&self, width: usize) -> Option<f64> {
        self.block(width).ok().map(|b| b.norm_eps)
    }

    fn block(&self, width: usize) -> Result<BlockConfig, MixerError> {
        let mixer = MixerConfig::with_options(&self.mixer, width, &self.mixer_opt)?;
        Ok(BlockConfig { mlp_hidden: Some(self.ff * width), ..BlockConfig::new(mixer) })
    }

    /// The samples of one pooled step of the deepest level (inputs are padded to a multiple).
    pub fn stride(&self) -> usize {
        self.pool.iter().product::<usize>().max(1)
    }

    pub fn init(&self, device: &Device) -> Result<Sashimi, MixerError> {
        let mut width = self.d_model;
        let mut levels = Vec::new();
        let stack = |w: usize, d: &Device| -> Result<Vec<ResidualBlock>, MixerError> {
            let b = self.block(w)?;
            Ok((0..self.blocks).map(|i| b.init_at(i, self.blocks, d)).collect())
        };
        for &p in &self.pool {
            let wide = width * self.expand;
            levels.push(Level {
                down: stack(width, device)?,
                down_pool: LinearConfig::new(p * width, wide).init(device),
                up_pool: LinearConfig::new(wide, p * width).init(device),
                up: stack(width, device)?,
                pool: p,
            });
            width = wide;
        }
        Ok(Sashimi {
            embed: EmbeddingConfig::new(LEVELS, self.d_model).init(device),
            levels,
            center: stack(width, device)?,
            norm: Norm::new(NormKind::Layer, self.d_model, HEAD_NORM_EPS, device),
            head: LinearConfig::new(self.d_model, LEVELS).init(device),
        })
    }
}

/// One pooling level: blocks down, DownPool, UpPool, blocks up.
#[derive(Module, Debug)]
pub struct Level {
    pub down: Vec<ResidualBlock>,
    pub down_pool: Linear,
    pub up_pool: Linear,
    pub up: Vec<ResidualBlock>,
    pub pool: usize,
}

#[derive(Module, Debug)]
pub struct Sashimi {
    pub embed: Embedding,
    pub levels: Vec<Level>,
    pub center: Vec<ResidualBlock>,
    pub norm: Norm,
    pub head: Linear,
}

/// Generation state: every block's mixer state (down, up per level, then the centre), and per
/// level the inputs waiting for DownPool and the UpPool outputs still to emit.
#[derive(Debug, Clone)]
pub struct SashimiState {
    pub down: Vec<Vec<MixerState>>,
    pub up: Vec<Vec<MixerState>>,
    pub center: Vec<MixerState>,
    pub waiting: Vec<Vec<Tensor<2>>>,
    pub pending: Vec<Vec<Tensor<2>>>,
}

fn run(blocks: &[ResidualBlock], mut x: Tensor<3>, mut skips: Option<&mut Vec<Tensor<3>>>) -> Tensor<3> {
    for b in blocks {
        x = b.forward(x, None).0;
        if let Some(s) = skips.as_deref_mut() {
            s.push(x.clone());
        }
    }
    x
}

impl Level {
    /// DownPool `[B, L, H]` → `[B, L/p, eH]`.
    fn pool_down(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, l, h] = x.dims();
        self.down_pool.forward(x.reshape([b, l / self.pool, self.pool * h]))
    }

    /// UpPool `[B, L/p, eH]` → `[B, L, H]`, shifted one pooled step (causal).
    fn pool_up(&self, y: Tensor<3>) -> Tensor<3> {
        let [b, lc, _] = y.dims();
        let z = self.up_pool.forward(y);
        let ph = z.dims()[2];
        let shifted = Tensor::cat(vec![z.zeros_like().narrow(1, 0, 1), z.narrow(1, 0, lc - 1)], 1);
        shifted.reshape([b, lc * self.pool, ph / self.pool])
    }
}

impl Sashimi {
    fn level_forward(&self, l: usize, x: Tensor<3>) -> Tensor<3> {
        let level = &self.levels[l];
        let mut skips = vec![x.clone()];
        let x = run(&level.down, x, Some(&mut skips));
        let coarse = level.pool_down(x);
        let y = if l + 1 < self.levels.len() {
            self.level_forward(l + 1, coarse)
        } else {
            run(&self.center, coarse.clone(), None) + coarse
        };
        let mut x = level.pool_up(y) + skips.pop().expect("skip");
        for b in &level.up {
            x = b.forward(x, None).0 + skips.pop().expect("skip");
        }
        x
    }

    /// Logits `[B, L, 256]` for µ-law tokens `[B, L]`: position t predicts token t + 1.
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        let [b, l] = tokens.dims();
        let stride: usize = self.levels.iter().map(|v| v.pool).product();
        let padded_len = l.div_ceil(stride) * stride;
        let tokens = if padded_len > l {
            let pad = Tensor::<2, Int>::zeros([b, padded_len - l], &tokens.device());
            Tensor::cat(vec![tokens, pad], 1)
        } else {
            tokens
        };
        let x = self.embed.forward(tokens);
        let y = if self.levels.is_empty() { run(&self.center, x, None) } else { self.level_forward(0, x) };
        self.head.forward(self.norm.forward(y.narrow(1, 0, l))).reshape([b, l, LEVELS])
    }

    pub fn init_state(&self, batch: usize, device: &Device) -> SashimiState {
        let states =
            |blocks: &[ResidualBlock]| blocks.iter().map(|b| b.mixer.init_state(batch, device)).collect::<Vec<_>>();
        let pending = self
            .levels
            .iter()
            .map(|v| {
                let h = v.up_pool.weight.dims()[1] / v.pool;
                (0..v.pool).map(|_| Tensor::zeros([batch, h], device)).collect()
            })
            .collect();
        SashimiState {
            down: self.levels.iter().map(|v| states(&v.down)).collect(),
            up: self.levels.iter().map(|v| states(&v.up)).collect(),
            center: states(&self.center),
            waiting: self.levels.iter().map(|_| Vec::new()).collect(),
            pending,
        }
    }

    fn step_blocks(
        blocks: &[ResidualBlock],
        mut x: Tensor<2>,
        states: &mut [MixerState],
        mut skips: Option<&mut Vec<Tensor<2>>>,
    ) -> Tensor<2> {
        for (b, s) in blocks.iter().zip(states.iter_mut()) {
            let (y, next) = b.step(x, s.clone());
            *s = next;
            x = y;
            if let Some(v) = skips.as_deref_mut() {
                v.push(x.clone());
            }
        }
        x
    }

    fn level_step(&self, l: usize, x: Tensor<2>, st: &mut SashimiState) -> Tensor<2> {
        let level = &self.levels[l];
        let mut skips = vec![x.clone()];
        let x = Self::step_blocks(&level.down, x, &mut st.down[l], Some(&mut skips));
        // The UpPool output for this sample was computed when the previous group completed.
        let emitted = st.pending[l].remove(0);
        st.waiting[l].push(x);
        if st.waiting[l].len() == level.pool {
            let group = Tensor::cat(std::mem::take(&mut st.waiting[l]), 1); // [B, p·H]
            let coarse = level.down_pool.forward(group);
            let y = if l + 1 < self.levels.len() {
                self.level_step(l + 1, coarse, st)
            } else {
                Self::step_blocks(&self.center, coarse.clone(), &mut st.center, None) + coarse
            };
            let z = level.up_pool.forward(y);
            let h = z.dims()[1] / level.pool;
            st.pending[l] = (0..level.pool).map(|i| z.clone().narrow(1, i * h, h)).collect();
        }
        let mut x = emitted + skips.pop().expect("skip");
        for (b, s) in level.up.iter().zip(st.up[l].iter_mut()) {
            let (y, next) = b.step(x, s.clone());
            *s = next;
            x = y + skips.pop().expect("skip");
        }
        x
    }

    /// Logits `[B, 256]` for one token per sequence `[B]`, advancing `state`.
    pub fn step(&self, token: Tensor<1, Int>, state: &mut SashimiState) -> Tensor<2> {
        let x = self.embed.forward(token.unsqueeze_dim(1)).squeeze_dim(1);
        let y = if self.levels.is_empty() {
            Self::step_blocks(&self.center, x, &mut state.center, None)
        } else {
            self.level_step(0, x, state)
        };
        self.head.forward(self.norm.forward(y))
    }
}
