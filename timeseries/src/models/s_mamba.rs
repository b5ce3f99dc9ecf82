//! S-Mamba (Wang et al., "Is Mamba Effective for Time Series Forecasting?"), as `S_Mamba` in the
//! released code: every variate's whole lookback window becomes one token, a bidirectional Mamba
//! mixes the variate tokens, an FFN mixes within each token, and a linear map reads out the
//! horizon:
//!
//! ```text
//! x̃          = (x − μ) / σ                              (per window and variate, over time)
//! tokens     = drop(enc_embedding(x̃ᵀ))                  (L → D per variate)
//! x          = norm1(x + mamba(x) + flip(mamba_r(flip(x))))   (over the variate axis)
//! x          = norm2(x + drop(conv2(drop(act(conv1(x))))))    (FFN D → d_ff → D, 1×1 convs)
//! ŷ          = projector(norm(x))ᵀ · σ + μ              (D → H)
//! ```
//!
//! `drop` is dropout with probability `dropout` while training (the released code's
//! `DataEmbedding_inverted` and `EncoderLayer` use it in these three places).

use super::Normalised;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use ssm_core::mixers::{Mamba, MambaConfig, MixerSpec, SequenceMixer};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SMambaConfig {
    pub lookback: usize,
    pub horizon: usize,
    pub d_model: usize,
    pub d_ff: usize,
    pub e_layers: usize,
    pub d_state: usize,
    pub d_conv: usize,
    pub expand: usize,
    /// Dropout probability while training (checkpoints from before it read 0).
    #[serde(default)]
    pub dropout: f64,
}

impl SMambaConfig {
    /// The released ETTh1 / 96 settings: D 256, d_ff 256, 2 layers, N 2, d_conv 2, expand 1,
    /// dropout 0.1.
    pub fn new(lookback: usize, horizon: usize) -> Self {
        Self { lookback, horizon, d_model: 256, d_ff: 256, e_layers: 2, d_state: 2, d_conv: 2, expand: 1, dropout: 0.1 }
    }

    pub fn init(&self, device: &Device) -> SMamba {
        let d = self.d_model;
        let mamba = || {
            MambaConfig::new(d)
                .with_d_state(self.d_state)
                .with_d_conv(self.d_conv)
                .with_expand(self.expand)
                .init(device)
        };
        let dropout = || DropoutConfig::new(self.dropout).init();
        SMamba {
            enc_embedding: LinearConfig::new(self.lookback, d).init(device),
            dropout: dropout(),
            layers: (0..self.e_layers)
                .map(|_| EncoderLayer {
                    mamba: mamba(),
                    mamba_r: mamba(),
                    conv1: LinearConfig::new(d, self.d_ff).init(device),
                    conv2: LinearConfig::new(self.d_ff, d).init(device),
                    norm1: LayerNormConfig::new(d).init(device),
                    norm2: LayerNormConfig::new(d).init(device),
                    dropout: dropout(),
                })
                .collect(),
            norm: LayerNormConfig::new(d).init(device),
            projector: LinearConfig::new(d, self.horizon).init(device),
        }
    }
}

#[derive(Module, Debug)]
pub struct EncoderLayer {
    pub mamba: Mamba,
    pub mamba_r: Mamba,
    pub conv1: Linear,
    pub conv2: Linear,
    pub norm1: LayerNorm,
    pub norm2: LayerNorm,
    pub dropout: Dropout,
}

impl EncoderLayer {
    /// Variate tokens `[B, V, D]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let (f, _) = self.mamba.forward(x.clone(), None);
        let (r, _) = self.mamba_r.forward(x.clone().flip([1]), None);
        let x = self.norm1.forward(x + f + r.flip([1]));
        let y = self.dropout.forward(relu(self.conv1.forward(x.clone())));
        let y = self.dropout.forward(self.conv2.forward(y));
        self.norm2.forward(x + y)
    }
}

#[derive(Module, Debug)]
pub struct SMamba {
    pub enc_embedding: Linear,
    pub dropout: Dropout,
    pub layers: Vec<EncoderLayer>,
    pub norm: LayerNorm,
    pub projector: Linear,
}

impl SMamba {
    /// `x` `[B, L, V]` → `[B, H, V]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let n = Normalised::new(x);
        let mut tokens = self.dropout.forward(self.enc_embedding.forward(n.x.clone().swap_dims(1, 2))); // [B, V, D]
        for layer in &self.layers {
            tokens = layer.forward(tokens);
        }
        let y = self.projector.forward(self.norm.forward(tokens)).swap_dims(1, 2); // [B, H, V]
        n.restore(y)
    }
}
