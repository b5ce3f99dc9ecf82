//! The audio models: the raw-waveform classifier ([`raw`]), SaShiMi ([`sashimi`], generative)
//! and Audio Mamba (AuM: Erol, Senocak,
//! Luo, Kim & Kim, "Audio Mamba: Bidirectional State Space Model for Audio Representation
//! Learning", 2024) — log-mel spectrogram patches read by bidirectional Mamba blocks with a
//! class token in the middle of the sequence, which is Vision Mamba over the spectrogram as a
//! one-channel image, so AuM is `ssm_vision`'s [`Vim`] on [`crate::features::log_mel`] input.

pub mod raw;
pub mod sashimi;
pub mod sashimi_plain;

use crate::features::{MelConfig, log_mel};
use burn::module::Module;
use burn::tensor::Int;
use burn::tensor::{Device, Tensor, TensorData};
use raw::{RawClassifier, RawConfig};
use sashimi::{LEVELS, Sashimi, SashimiConfig, mu_law_encode};
use serde::{Deserialize, Serialize};
use ssm_core::loss::{classification_loss, cross_entropy};
use ssm_core::train::{Stats, Trainable};
use ssm_vision::models::vim::{Vim, VimConfig};

/// Which model, with its settings (saved as `config.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "lowercase")]
pub enum AudioModelConfig {
    /// Mixer stages over the samples.
    Raw { net: RawConfig, rate: u32, samples: usize },
    /// AuM: Vim over the log-mel spectrogram `[frames × mels]`.
    Aum { vim: VimConfig, mel: MelConfig, samples: usize },
    /// SaShiMi: next-sample prediction over µ-law tokens.
    Sashimi { net: SashimiConfig, rate: u32, samples: usize },
}

impl AudioModelConfig {
    /// The model's sample rate and clip length in samples.
    pub fn input(&self) -> (u32, usize) {
        match self {
            Self::Raw { rate, samples, .. } => (*rate, *samples),
            Self::Aum { mel, samples, .. } => (mel.rate, *samples),
            Self::Sashimi { rate, samples, .. } => (*rate, *samples),
        }
    }

    pub fn is_generative(&self) -> bool {
        matches!(self, Self::Sashimi { .. })
    }

    pub fn init(&self, device: &Device) -> Result<AudioModel, ssm_core::mixers::MixerError> {
        Ok(match self {
            Self::Raw { net, .. } => AudioModel::Raw(net.init(device)),
            Self::Aum { vim, .. } => AudioModel::Aum(vim.init(device)),
            Self::Sashimi { net, .. } => AudioModel::Sashimi(net.init(device)?),
        })
    }

    /// The model's input for clips of `samples` samples each (`batch` of them, concatenated):
    /// the samples themselves, or their log-mel spectrograms scaled to about unit range.
    pub fn features(&self, clips: &[f32], batch: usize, device: &Device) -> AudioInput {
        let (_, len) = self.input();
        match self {
            Self::Raw { .. } => {
                AudioInput::Samples(Tensor::from_data(TensorData::new(clips.to_vec(), [batch, len]), device))
            }
            Self::Aum { mel, .. } => {
                let frames = mel.frames(len);
                let mut v = Vec::with_capacity(batch * frames * mel.n_mels);
                for clip in clips.chunks_exact(len) {
                    // dB below the clip's loudest bin, [−80, 0] mapped to [−1, 1]
                    let db = log_mel(clip, mel).values;
                    let top = db.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    v.extend(db.iter().map(|d| (d - top) / 40.0 + 1.0));
                }
                AudioInput::Image(Tensor::from_data(TensorData::new(v, [batch, 1, 1, frames, mel.n_mels]), device))
            }
            Self::Sashimi { .. } => {
                let q: Vec<i64> = clips.iter().map(|&x| mu_law_encode(x)).collect();
                AudioInput::Tokens(Tensor::from_data(TensorData::new(q, [batch, len]), device))
            }
        }
    }
}

/// A model's input batch.
#[derive(Debug, Clone)]
pub enum AudioInput {
    /// `[B, L]`
    Samples(Tensor<2>),
    /// `[B, 1, 1, frames, mels]`
    Image(Tensor<5>),
    /// µ-law tokens `[B, L]`
    Tokens(Tensor<2, Int>),
}

#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum AudioModel {
    Raw(RawClassifier),
    Aum(Vim),
    Sashimi(Sashimi),
}

impl AudioModel {
    /// Class logits `[B, classes]` (classifiers).
    pub fn forward(&self, x: AudioInput) -> Tensor<2> {
        match (self, x) {
            (Self::Raw(m), AudioInput::Samples(x)) => m.forward(x),
            (Self::Aum(m), AudioInput::Image(x)) => m.forward(x),
            _ => panic!("audio model given another model's input"),
        }
    }
}

/// Inputs and labels.
#[derive(Debug, Clone)]
pub struct AudioBatch {
    pub x: AudioInput,
    pub labels: Vec<i64>,
}

impl Trainable for AudioModel {
    type Batch = AudioBatch;
    /// Cross-entropy of the class (classifiers) or of every next µ-law sample (SaShiMi).
    fn loss(&self, b: &AudioBatch) -> (Tensor<1>, Stats) {
        if let (Self::Sashimi(m), AudioInput::Tokens(t)) = (self, &b.x) {
            let [n, l] = t.dims();
            let logits = m.forward(t.clone().narrow(1, 0, l - 1)).reshape([n * (l - 1), LEVELS]);
            return cross_entropy(logits, t.clone().narrow(1, 1, l - 1).reshape([n * (l - 1)]));
        }
        let (l, s, _) = classification_loss(self.forward(b.x.clone()), &b.labels);
        (l, s)
    }
}
