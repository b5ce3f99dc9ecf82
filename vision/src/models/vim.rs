//! Vision Mamba (Zhu et al., "Vision Mamba: Efficient Visual Representation Learning with
//! Bidirectional State Space Model"), as `VisionMamba` in the released `models_mamba.py`:
//!
//! ```text
//! t₁ … t_N   = patch_embed.proj(x)                  (p×p patches, or t×p×p tubelets for video)
//! T₀         = [t₁ … t_{N/2}, cls_token, t_{N/2+1} … t_N] + pos_embed     (class token in the middle)
//! T_ℓ        = T_{ℓ−1} + (f_ℓ(n) + flip(b_ℓ(flip(n)))) / 2,   n = RMSNorm(T_{ℓ−1})
//! logits     = head(norm_f(T_L)[N/2])
//! ```
//!
//! `f_ℓ` and `b_ℓ` are Mamba blocks with separate parameters (the forward and backward scans);
//! the output is averaged as with `if_divide_out=True`.
//!
//! `pool` chooses how the sequence reaches the head, as the released code's `if_cls_token` /
//! `final_pool_type` do: the middle class token above (`middle`, Vim's published setting), or no
//! class token and `head(mean_n norm_f(T_L)[n])` (`mean`).

use super::{InputShape, PatchEmbed};
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Distribution, Tensor};
use serde::{Deserialize, Serialize};
use ssm_core::blocks::{Backbone, BlockConfig, Combine};
use ssm_core::layers::NormKind;
use ssm_core::mixers::{MambaConfig, MixerConfig};

/// How the token sequence becomes one vector for the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum VimPool {
    /// The class token inserted in the middle of the sequence (Vim's published setting).
    #[default]
    Middle,
    /// No class token: the mean over all patch tokens (`final_pool_type='mean'`).
    Mean,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VimConfig {
    pub input: InputShape,
    pub classes: usize,
    pub patch: usize,
    /// Frames per tubelet (video only).
    pub tubelet: usize,
    pub d_model: usize,
    pub depth: usize,
    pub d_state: usize,
    pub expand: usize,
    #[serde(default)]
    pub pool: VimPool,
}

impl VimConfig {
    /// Vim-Tiny's structure at a CPU-sized width: d 64, 4 bidirectional layers, N = 16.
    pub fn new(input: InputShape, classes: usize) -> Self {
        Self {
            input,
            classes,
            patch: 4,
            tubelet: 2,
            d_model: 64,
            depth: 4,
            d_state: 16,
            expand: 2,
            pool: VimPool::Middle,
        }
    }

    /// Token grid (t, h, w) after the patch embedding.
    pub fn grid(&self) -> (usize, usize, usize) {
        let t = if self.input.is_video() { self.input.frames / self.tubelet } else { 1 };
        (t, self.input.height / self.patch, self.input.width / self.patch)
    }

    pub fn init(&self, device: &Device) -> Vim {
        let (t, h, w) = self.grid();
        assert!(t * h * w > 0, "Vim: input {:?} is smaller than one patch of {}", self.input, self.patch);
        let d = self.d_model;
        let mixer = MixerConfig::Mamba(MambaConfig::new(d).with_d_state(self.d_state).with_expand(self.expand));
        let block =
            BlockConfig { bidirectional: Some(Combine::Average), norm: NormKind::Rms, ..BlockConfig::new(mixer) };
        let trunc = Distribution::Normal(0.0, 0.02);
        let cls = self.pool == VimPool::Middle;
        Vim {
            patch_embed: PatchEmbed::new(self.input, d, self.patch, self.tubelet, device),
            cls_token: cls.then(|| Param::from_tensor(Tensor::random([1, 1, d], trunc, device))),
            pos_embed: Param::from_tensor(Tensor::random([1, t * h * w + usize::from(cls), d], trunc, device)),
            layers: Backbone::new(&block, self.depth, device),
            head: LinearConfig::new(d, self.classes).init(device),
        }
    }
}

#[derive(Module, Debug)]
pub struct Vim {
    pub patch_embed: PatchEmbed,
    /// `[1, 1, D]`; none when pooling by the mean.
    pub cls_token: Option<Param<Tensor<3>>>,
    /// `[1, N + 1, D]` (`[1, N, D]` without a class token)
    pub pos_embed: Param<Tensor<3>>,
    /// Bidirectional Mamba blocks and `norm_f`.
    pub layers: Backbone,
    pub head: Linear,
}

impl Vim {
    /// The token sequence `[B, N + 1, D]` with the class token at position N/2, and N/2 (or
    /// `[B, N, D]` and no position without a class token).
    pub fn tokens(&self, x: Tensor<5>) -> (Tensor<3>, Option<usize>) {
        let f = self.patch_embed.forward(x);
        let [b, d, t, h, w] = f.dims();
        let n = t * h * w;
        let expected = self.pos_embed.dims()[1] - usize::from(self.cls_token.is_some());
        assert_eq!(n, expected, "Vim: the input gives {n} patches, the model was built for {expected}");
        let patches = f.reshape([b, d, n]).swap_dims(1, 2);
        let Some(cls) = &self.cls_token else {
            return (patches + self.pos_embed.val(), None);
        };
        let mid = n / 2;
        let cls = cls.val().expand([b, 1, d]);
        let seq = Tensor::cat(vec![patches.clone().narrow(1, 0, mid), cls, patches.narrow(1, mid, n - mid)], 1);
        (seq + self.pos_embed.val(), Some(mid))
    }

    pub fn forward(&self, x: Tensor<5>) -> Tensor<2> {
        let (seq, mid) = self.tokens(x);
        let (h, _) = self.layers.forward(seq, None);
        let [b, _, d] = h.dims();
        let pooled = match mid {
            Some(m) => h.narrow(1, m, 1),
            None => h.mean_dim(1),
        };
        self.head.forward(pooled.reshape([b, d]))
    }
}
