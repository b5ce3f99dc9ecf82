//! Data sources for the shared runner — an in-memory image (or clip) set with per-epoch seeded
//! shuffling and augmentation, and an endless stream of moving-digits clips — and the
//! whole-set evaluation (accuracy, confusion matrix, inference throughput).

use crate::data::{ImageSet, augment};
use crate::models::{ImageBatch, InputShape, VisionModel, predict_classes};
use crate::video::MovingDigits;
use burn::tensor::Device;
use rand::SeedableRng;
use rand::rngs::StdRng;
use ssm_core::data::EpochOrder;
use ssm_core::train::DataSource;
use std::time::Instant;

/// A batch on the host: normalised pixels `[B, C, T, H, W]` and labels.
#[derive(Debug, Clone)]
pub struct HostBatch {
    pub pixels: Vec<f32>,
    pub shape: [usize; 5],
    pub labels: Vec<i64>,
}

impl HostBatch {
    pub fn to_device(&self, device: &Device) -> ImageBatch {
        ImageBatch::new(self.pixels.clone(), self.shape, self.labels.clone(), device)
    }
}

/// The input shape of a set's items.
pub fn input_shape(set: &ImageSet) -> InputShape {
    InputShape { channels: set.channels, frames: set.frames, height: set.height, width: set.width }
}

/// Items `indices` of `set`, normalised with `stats`, as host batches of at most `batch`.
pub fn host_batches(set: &ImageSet, stats: &[(f32, f32)], indices: &[usize], batch: usize) -> Vec<HostBatch> {
    indices
        .chunks(batch.max(1))
        .map(|chunk| {
            let mut pixels = Vec::with_capacity(chunk.len() * set.image_size());
            for &i in chunk {
                pixels.extend(set.normalised(i, stats));
            }
            HostBatch {
                pixels,
                shape: [chunk.len(), set.channels, set.frames, set.height, set.width],
                labels: chunk.iter().map(|&i| set.labels[i] as i64).collect(),
            }
        })
        .collect()
}

/// Random-crop padding and horizontal flips for training images.
#[derive(Debug, Clone, Copy)]
pub struct Augment {
    pub pad: usize,
    pub flip: bool,
}

/// Training batches drawn from `train` (a fresh seeded permutation each epoch, augmented),
/// evaluation on a fixed set.
pub struct ImageSource {
    pub train: ImageSet,
    pub stats: Vec<(f32, f32)>,
    pub batch: usize,
    pub seed: u64,
    pub augment: Option<Augment>,
    eval: Vec<HostBatch>,
    order: EpochOrder,
}

impl ImageSource {
    pub fn new(
        train: ImageSet,
        eval: &ImageSet,
        eval_indices: &[usize],
        batch: usize,
        seed: u64,
        augment: Option<Augment>,
    ) -> Self {
        let stats = train.channel_stats();
        let eval = host_batches(eval, &stats, eval_indices, batch.max(64));
        let order = EpochOrder::new(train.len(), seed);
        Self { train, stats, batch, seed, augment, eval, order }
    }

    fn host_train_batch(&mut self, step: usize) -> HostBatch {
        let idx = self.order.batch(step, self.batch);
        let mut hb = host_batches(&self.train, &self.stats, &idx, self.batch).remove(0);
        if let Some(a) = self.augment.filter(|_| self.train.frames == 1) {
            let mut rng = StdRng::seed_from_u64(self.seed ^ (step as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
            let (c, h, w) = (self.train.channels, self.train.height, self.train.width);
            for img in hb.pixels.chunks_exact_mut(c * h * w) {
                augment(img, c, h, w, a.pad, a.flip, &mut rng);
            }
        }
        hb
    }
}

impl DataSource<ImageBatch> for ImageSource {
    fn train_batch(&mut self, step: usize, device: &Device) -> ImageBatch {
        self.host_train_batch(step).to_device(device)
    }
    fn eval_batches(&self, device: &Device) -> Vec<ImageBatch> {
        self.eval.iter().map(|b| b.to_device(device)).collect()
    }
}

/// `count` moving-digits clips of the stream `seed` as a clip set (`[N, 1, T, S, S]`).
pub fn clip_set(generator: &MovingDigits, digits: &ImageSet, seed: u64, start: u64, count: usize) -> ImageSet {
    let mut pixels = Vec::with_capacity(count * generator.frames * generator.size * generator.size);
    let mut labels = Vec::with_capacity(count);
    for i in 0..count as u64 {
        let c = generator.clip(digits, seed, start + i);
        pixels.extend(c.pixels);
        labels.push(c.label);
    }
    ImageSet {
        pixels,
        labels,
        channels: 1,
        frames: generator.frames,
        height: generator.size,
        width: generator.size,
        classes: generator.classes(digits),
    }
}

/// An endless stream of fresh moving-digits clips for training (clip `step·B + i` of the seed's
/// stream), normalised with statistics of the first 256 clips; evaluation on a fixed clip set.
pub struct ClipSource {
    pub generator: MovingDigits,
    pub digits: ImageSet,
    pub stats: Vec<(f32, f32)>,
    pub batch: usize,
    pub seed: u64,
    eval: Vec<HostBatch>,
}

impl ClipSource {
    pub fn new(generator: MovingDigits, digits: ImageSet, eval: &ImageSet, batch: usize, seed: u64) -> Self {
        let stats = clip_set(&generator, &digits, seed, 0, 256).channel_stats();
        let idx: Vec<usize> = (0..eval.len()).collect();
        let eval = host_batches(eval, &stats, &idx, batch.max(32));
        Self { generator, digits, stats, batch, seed, eval }
    }
}

impl DataSource<ImageBatch> for ClipSource {
    fn train_batch(&mut self, step: usize, device: &Device) -> ImageBatch {
        let set = clip_set(&self.generator, &self.digits, self.seed, (step * self.batch) as u64, self.batch);
        let idx: Vec<usize> = (0..set.len()).collect();
        host_batches(&set, &self.stats, &idx, self.batch).remove(0).to_device(device)
    }
    fn eval_batches(&self, device: &Device) -> Vec<ImageBatch> {
        self.eval.iter().map(|b| b.to_device(device)).collect()
    }
}

/// Accuracy, confusion matrix (rows: true class, columns: predicted) and inference throughput
/// of a model on a whole set.
#[derive(Debug, Clone)]
pub struct Report {
    pub accuracy: f64,
    pub confusion: Vec<Vec<usize>>,
    pub images_per_second: f64,
}

/// Evaluates `model` on every item of `set` in batches of `batch` (throughput counts the
/// forward passes only, not the batch preparation).
pub fn evaluate(
    model: &VisionModel,
    set: &ImageSet,
    stats: &[(f32, f32)],
    classes: usize,
    batch: usize,
    device: &Device,
) -> Report {
    let idx: Vec<usize> = (0..set.len()).collect();
    let mut confusion = vec![vec![0usize; classes]; classes];
    let (mut correct, mut seconds) = (0usize, 0.0);
    for hb in host_batches(set, stats, &idx, batch) {
        let b = hb.to_device(device);
        let t0 = Instant::now();
        let pred = predict_classes(model, b.x);
        seconds += t0.elapsed().as_secs_f64();
        for (p, t) in pred.iter().zip(&hb.labels) {
            correct += usize::from(p == t);
            if let (Some(row), true) = (confusion.get_mut(*t as usize), (*p as usize) < classes) {
                row[*p as usize] += 1;
            }
        }
    }
    Report {
        accuracy: correct as f64 / set.len().max(1) as f64,
        confusion,
        images_per_second: set.len() as f64 / seconds.max(1e-9),
    }
}
