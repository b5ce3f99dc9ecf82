//! SiMBA (Patro & Agneeswaran, "SiMBA: Simplified Mamba-based Architecture for Vision and
//! Multivariate Time series"), as `SiMBA` / `Block_mamba` in the released `simba.py`:
//!
//! ```text
//! h = h + Mamba(LN(h))          token mixing over the row-major token sequence
//! h = h + EinFFT(LN(h))         channel mixing in the frequency domain (ssm_core::einfft)
//! ```
//!
//! Stages at decreasing resolution: a patch stem, then `DownSamples` (3×3 stride-2 conv + LN)
//! between stages; head: LN, average pool, Linear. The imaginary part left after EinFFT's
//! inverse FFT is dropped by default, as in the released code (`imag` chooses otherwise; see
//! [`ImagPart`]).

use super::{InputShape, PatchEmbed};
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use ssm_core::einfft::{EinFft, EinFftConfig, ImagPart};
use ssm_core::mixers::{Mamba, MambaConfig, MixerSpec, SequenceMixer};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimbaConfig {
    pub input: InputShape,
    pub classes: usize,
    pub patch: usize,
    pub dims: Vec<usize>,
    pub depths: Vec<usize>,
    pub d_state: usize,
    pub expand: usize,
    /// EinFFT channel blocks.
    pub num_blocks: usize,
    pub sparsity_threshold: f64,
    pub imag: ImagPart,
}

impl SimbaConfig {
    pub fn new(input: InputShape, classes: usize) -> Self {
        Self {
            input,
            classes,
            patch: 2,
            dims: vec![32, 64],
            depths: vec![2, 2],
            d_state: 16,
            expand: 2,
            num_blocks: 4,
            sparsity_threshold: 0.01,
            imag: ImagPart::Drop,
        }
    }

    pub fn init(&self, device: &Device) -> Simba {
        assert!(!self.input.is_video(), "SiMBA is an image model");
        assert_eq!(self.dims.len(), self.depths.len(), "SiMBA: dims and depths differ in length");
        let ln = |d| LayerNormConfig::new(d).init(device);
        let stages = self
            .dims
            .iter()
            .zip(&self.depths)
            .enumerate()
            .map(|(i, (&d, &depth))| SimbaStage {
                downsample: (i > 0).then(|| DownSample {
                    proj: Conv2dConfig::new([self.dims[i - 1], d], [3, 3])
                        .with_stride([2, 2])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .init(device),
                    norm: ln(d),
                }),
                blocks: (0..depth)
                    .map(|_| SimbaBlock {
                        norm1: ln(d),
                        attn: MambaConfig::new(d).with_d_state(self.d_state).with_expand(self.expand).init(device),
                        norm2: ln(d),
                        mlp: EinFftConfig::new(d)
                            .with_num_blocks(self.num_blocks)
                            .with_sparsity_threshold(self.sparsity_threshold)
                            .with_imag(self.imag)
                            .init(device),
                    })
                    .collect(),
            })
            .collect();
        let last = *self.dims.last().expect("SiMBA needs at least one stage");
        Simba {
            patch_embed: PatchEmbed::new(self.input, self.dims[0], self.patch, 1, device),
            patch_norm: ln(self.dims[0]),
            stages,
            norm: ln(last),
            head: LinearConfig::new(last, self.classes).init(device),
        }
    }
}

#[derive(Module, Debug)]
pub struct SimbaBlock {
    pub norm1: LayerNorm,
    /// Token mixing (a Mamba block over the flattened grid).
    pub attn: Mamba,
    pub norm2: LayerNorm,
    /// Channel mixing.
    pub mlp: EinFft,
}

impl SimbaBlock {
    /// Tokens `[B, N, D]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let (y, _) = self.attn.forward(self.norm1.forward(x.clone()), None);
        let x = x + y;
        x.clone() + self.mlp.forward(self.norm2.forward(x))
    }
}

/// 3×3 stride-2 convolution and LayerNorm between stages.
#[derive(Module, Debug)]
pub struct DownSample {
    pub proj: Conv2d,
    pub norm: LayerNorm,
}

#[derive(Module, Debug)]
pub struct SimbaStage {
    pub downsample: Option<DownSample>,
    pub blocks: Vec<SimbaBlock>,
}

#[derive(Module, Debug)]
pub struct Simba {
    pub patch_embed: PatchEmbed,
    pub patch_norm: LayerNorm,
    pub stages: Vec<SimbaStage>,
    pub norm: LayerNorm,
    pub head: Linear,
}

impl Simba {
    pub fn forward(&self, x: Tensor<5>) -> Tensor<2> {
        let f = self.patch_embed.forward(x);
        let [b, d, _, mut h, mut w] = f.dims();
        let mut tokens = self.patch_norm.forward(f.reshape([b, d, h * w]).swap_dims(1, 2)); // [B, N, D]
        for stage in &self.stages {
            if let Some(ds) = &stage.downsample {
                let c = tokens.dims()[2];
                let map = tokens.swap_dims(1, 2).reshape([b, c, h, w]);
                let y = ds.proj.forward(map);
                let [_, c2, h2, w2] = y.dims();
                (h, w) = (h2, w2);
                tokens = ds.norm.forward(y.reshape([b, c2, h * w]).swap_dims(1, 2));
            }
            for blk in &stage.blocks {
                tokens = blk.forward(tokens);
            }
        }
        let pooled = self.norm.forward(tokens).mean_dim(1);
        let c = pooled.dims()[2];
        self.head.forward(pooled.reshape([b, c]))
    }
}
