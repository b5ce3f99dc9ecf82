//! SiMBA for multivariate time series (Patro & Agneeswaran): variate tokens as in S-Mamba /
//! iTransformer, each block Mamba token mixing (across variates) and EinFFT channel mixing
//! (`ssm_core::einfft`, shared with the vision SiMBA):
//!
//! ```text
//! tokens = embed((x − μ)/σ ᵀ)                 (L → D per variate)
//! h      = h + Mamba(LN(h));   h = h + EinFFT(LN(h))
//! ŷ      = head(LN(h))ᵀ · σ + μ              (D → H)
//! ```

use super::Normalised;
use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use ssm_core::einfft::{EinFft, EinFftConfig, ImagPart};
use ssm_core::mixers::{Mamba, MambaConfig, MixerSpec, SequenceMixer};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimbaTsConfig {
    pub lookback: usize,
    pub horizon: usize,
    pub d_model: usize,
    pub layers: usize,
    pub d_state: usize,
    pub num_blocks: usize,
    pub imag: ImagPart,
}

impl SimbaTsConfig {
    pub fn new(lookback: usize, horizon: usize) -> Self {
        Self { lookback, horizon, d_model: 128, layers: 2, d_state: 16, num_blocks: 4, imag: ImagPart::Drop }
    }

    pub fn init(&self, device: &Device) -> SimbaTs {
        let d = self.d_model;
        SimbaTs {
            embed: LinearConfig::new(self.lookback, d).init(device),
            blocks: (0..self.layers)
                .map(|_| SimbaTsBlock {
                    norm1: LayerNormConfig::new(d).init(device),
                    mamba: MambaConfig::new(d).with_d_state(self.d_state).init(device),
                    norm2: LayerNormConfig::new(d).init(device),
                    einfft: EinFftConfig::new(d).with_num_blocks(self.num_blocks).with_imag(self.imag).init(device),
                })
                .collect(),
            norm: LayerNormConfig::new(d).init(device),
            head: LinearConfig::new(d, self.horizon).init(device),
        }
    }
}

#[derive(Module, Debug)]
pub struct SimbaTsBlock {
    pub norm1: LayerNorm,
    pub mamba: Mamba,
    pub norm2: LayerNorm,
    pub einfft: EinFft,
}

#[derive(Module, Debug)]
pub struct SimbaTs {
    pub embed: Linear,
    pub blocks: Vec<SimbaTsBlock>,
    pub norm: LayerNorm,
    pub head: Linear,
}

impl SimbaTs {
    /// `x` `[B, L, V]` → `[B, H, V]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let n = Normalised::new(x);
        let mut h = self.embed.forward(n.x.clone().swap_dims(1, 2));
        for b in &self.blocks {
            let (m, _) = b.mamba.forward(b.norm1.forward(h.clone()), None);
            h = h + m;
            h = h.clone() + b.einfft.forward(b.norm2.forward(h));
        }
        n.restore(self.head.forward(self.norm.forward(h)).swap_dims(1, 2))
    }
}
