//! A raw-waveform classifier in the manner of S4 on Speech Commands' raw audio (Gu, Goel & Ré,
//! ICLR 2022, §4.3) with SaShiMi's pooling (Goel, Gu, Donahue & Ré, "It's Raw! Audio Generation
//! with State-Space Models", ICML 2022, §3.1 `DownPool`): stages of mixer blocks over the
//! samples, each but the last followed by a down-pooling that folds p neighbouring steps into
//! the channels, then the mean over time and a linear head.
//!
//! ```text
//! x̂ = x / √(mean_t x_t² + ε)                    each clip at unit RMS (recording levels vary 15×)
//! h⁰ = W_in x̂_t                                  x: samples [B, L] → [B, L, d₀]
//! hˢ = Blocksˢ(hˢ⁻¹ pooled)                      any registered mixer, bidirectional by default
//! DownPool_p: [B, L, d] → [B, L/p, p·d] → Linear → [B, L/p, d_next]
//! logits = W_out mean_t(h^S)
//! ```

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use ssm_core::backbone::BackboneConfig;
use ssm_core::blocks::Backbone;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RawConfig {
    pub classes: usize,
    /// One backbone per stage (their widths d₀, d₁, …).
    pub stages: Vec<BackboneConfig>,
    /// The pooling factor p between stages.
    pub pool: usize,
}

impl RawConfig {
    pub fn init(&self, device: &Device) -> RawClassifier {
        assert!(!self.stages.is_empty() && self.pool >= 1, "raw classifier: at least one stage and pool ≥ 1");
        let widths: Vec<usize> = self.stages.iter().map(|s| s.d_model()).collect();
        RawClassifier {
            input: LinearConfig::new(1, widths[0]).init(device),
            stages: self.stages.iter().map(|s| s.init(device)).collect(),
            pools: widths.windows(2).map(|w| LinearConfig::new(self.pool * w[0], w[1]).init(device)).collect(),
            head: LinearConfig::new(*widths.last().expect("one stage"), self.classes).init(device),
            pool: self.pool,
        }
    }
}

#[derive(Module, Debug)]
pub struct RawClassifier {
    pub input: Linear,
    pub stages: Vec<Backbone>,
    pub pools: Vec<Linear>,
    pub head: Linear,
    pub pool: usize,
}

impl RawClassifier {
    /// DownPool: groups of p steps folded into the channels (a ragged tail is dropped).
    fn down_pool(&self, h: Tensor<3>, proj: &Linear) -> Tensor<3> {
        let [b, l, d] = h.dims();
        let p = self.pool;
        let kept = (l / p).max(1) * p;
        let h = if kept <= l {
            h.narrow(1, 0, kept)
        } else {
            let pad = Tensor::<3>::zeros([b, kept - l, d], &h.device()).cast(h.dtype());
            Tensor::cat(vec![h, pad], 1)
        };
        proj.forward(h.reshape([b, kept / p, p * d]))
    }

    /// Logits `[B, classes]` of samples `[B, L]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let rms = x.clone().powi_scalar(2).mean_dim(1).add_scalar(1e-8).sqrt(); // [B, 1]
        let mut h = self.input.forward((x / rms).unsqueeze_dim(2));
        for (i, stage) in self.stages.iter().enumerate() {
            if i > 0 {
                h = self.down_pool(h, &self.pools[i - 1]);
            }
            h = stage.forward(h, None).0;
        }
        let [b, _, d] = h.dims();
        self.head.forward(h.mean_dim(1).reshape([b, d]))
    }
}
