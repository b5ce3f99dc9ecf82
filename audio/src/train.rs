//! Batches for the runner: clips loaded once (resampled, cropped or padded), shuffled per epoch
//! by the seed, turned into the model's input per batch.

use crate::dataset::{Clip, load_clip};
use crate::models::{AudioBatch, AudioModel, AudioModelConfig};
use burn::tensor::Device;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use ssm_core::error::FileError;
use ssm_core::train::{DataSource, Stats};

/// Clips at the model's rate and length, with their labels.
#[derive(Debug, Clone)]
pub struct LoadedClips {
    pub samples: Vec<Vec<f32>>,
    pub labels: Vec<i64>,
}

impl LoadedClips {
    pub fn load(clips: &[Clip], rate: u32, len: usize) -> Result<Self, FileError> {
        let mut samples = Vec::with_capacity(clips.len());
        for c in clips {
            samples.push(load_clip(&c.path, rate, len)?);
        }
        Ok(Self { samples, labels: clips.iter().map(|c| c.label as i64).collect() })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Windows of `len` samples from the middle of each clip at least that long (shorter clips
    /// are left out), for sample-level models that must not learn padding.
    pub fn load_windows(clips: &[Clip], rate: u32, len: usize) -> Result<Self, FileError> {
        let (mut samples, mut labels) = (Vec::new(), Vec::new());
        for c in clips {
            let audio = crate::wav::read_wav(&c.path)?;
            let x = crate::resample::resample(&audio.samples, audio.rate, rate);
            if x.len() >= len {
                let start = (x.len() - len) / 2;
                samples.push(x[start..start + len].to_vec());
                labels.push(c.label as i64);
            }
        }
        Ok(Self { samples, labels })
    }

    /// The batch of clips `idx`.
    pub fn batch(&self, cfg: &AudioModelConfig, idx: &[usize], device: &Device) -> AudioBatch {
        self.shifted_batch(cfg, idx, &vec![0; idx.len()], device)
    }

    /// The batch of clips `idx`, clip `k` moved `shifts[k]` samples later (earlier when
    /// negative) inside its window, the vacated samples zero: the time-shift augmentation.
    pub fn shifted_batch(
        &self,
        cfg: &AudioModelConfig,
        idx: &[usize],
        shifts: &[isize],
        device: &Device,
    ) -> AudioBatch {
        let mut flat = Vec::new();
        for (&i, &s) in idx.iter().zip(shifts) {
            let x = &self.samples[i];
            let n = x.len() as isize;
            flat.extend((0..n).map(|t| if (0..n).contains(&(t - s)) { x[(t - s) as usize] } else { 0.0 }));
        }
        AudioBatch { x: cfg.features(&flat, idx.len(), device), labels: idx.iter().map(|&i| self.labels[i]).collect() }
    }

    /// Consecutive batches of every clip, in order.
    pub fn batches(&self, cfg: &AudioModelConfig, batch: usize, device: &Device) -> Vec<AudioBatch> {
        let idx: Vec<usize> = (0..self.len()).collect();
        idx.chunks(batch.max(1)).map(|c| self.batch(cfg, c, device)).collect()
    }
}

/// Training batches (a seeded shuffle per epoch) and the evaluation clips.
pub struct AudioSource {
    pub cfg: AudioModelConfig,
    pub train: LoadedClips,
    pub eval: LoadedClips,
    pub batch: usize,
    pub seed: u64,
    /// Largest random time shift of a training clip, in samples (0: none).
    pub max_shift: usize,
}

impl DataSource<AudioBatch> for AudioSource {
    fn train_batch(&mut self, step: usize, device: &Device) -> AudioBatch {
        let n = self.train.len();
        let per_epoch = n.div_ceil(self.batch).max(1);
        let (epoch, within) = (step / per_epoch, step % per_epoch);
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut StdRng::seed_from_u64(self.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64)));
        let idx: Vec<usize> = order.into_iter().cycle().skip(within * self.batch).take(self.batch.min(n)).collect();
        let m = self.max_shift as i64;
        let mut rng = StdRng::seed_from_u64(self.seed ^ (step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let shifts: Vec<isize> =
            idx.iter().map(|_| if m > 0 { rng.random_range(-m..=m) as isize } else { 0 }).collect();
        self.train.shifted_batch(&self.cfg, &idx, &shifts, device)
    }

    fn eval_batches(&self, device: &Device) -> Vec<AudioBatch> {
        self.eval.batches(&self.cfg, self.batch, device)
    }

    /// For SaShiMi: the evaluation loss in bits per sample.
    fn eval_metrics(&self, eval: &Stats) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        if self.cfg.is_generative() {
            m.insert("test_nll_bits".into(), (eval.loss() / std::f64::consts::LN_2).into());
        }
        m
    }
}

/// Class probabilities `[clips][classes]` from a model on a plain (non-autodiff) device.
pub fn predict(
    model: &AudioModel,
    cfg: &AudioModelConfig,
    clips: &LoadedClips,
    batch: usize,
    device: &Device,
) -> Vec<Vec<f32>> {
    let mut out = Vec::with_capacity(clips.len());
    for b in clips.batches(cfg, batch, device) {
        let p = burn::tensor::activation::softmax(model.forward(b.x), 1);
        let k = p.dims()[1];
        let v = p.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_default();
        out.extend(v.chunks(k).map(|row| row.to_vec()));
    }
    out
}
