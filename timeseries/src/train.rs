//! Data sources for the shared runner and the test metrics.

use crate::data::Segment;
use crate::models::{Classifier, ForecastBatch, ForecastModel, SeqBatch, mean_forecast};
use crate::uea::TsSet;
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use ssm_core::data::EpochOrder;
use ssm_core::error::InvalidConfig;
use ssm_core::train::DataSource;

/// Windows `idx` of a segment as a batch.
pub fn forecast_batch(seg: &Segment, idx: &[usize], l: usize, h: usize, device: &Device) -> ForecastBatch {
    let v = seg.vars;
    let (mut xs, mut ys) = (Vec::with_capacity(idx.len() * l * v), Vec::with_capacity(idx.len() * h * v));
    for &i in idx {
        let (x, y) = seg.window(i, l, h);
        xs.extend_from_slice(x);
        ys.extend_from_slice(y);
    }
    let b = idx.len();
    ForecastBatch {
        x: Tensor::from_data(TensorData::new(xs, [b, l, v]), device),
        y: Tensor::from_data(TensorData::new(ys, [b, h, v]), device),
        starts: idx.iter().map(|&i| seg.first_row + i).collect(),
        targets: seg.targets.clone(),
    }
}

/// Training windows in a fresh seeded order each epoch; evaluation on every validation window.
pub struct ForecastSource {
    pub train: Segment,
    pub val: Segment,
    pub lookback: usize,
    pub horizon: usize,
    pub batch: usize,
    order: EpochOrder,
}

impl ForecastSource {
    pub fn new(
        train: Segment,
        val: Segment,
        lookback: usize,
        horizon: usize,
        batch: usize,
        seed: u64,
    ) -> Result<Self, InvalidConfig> {
        for (name, s) in [("training", &train), ("validation", &val)] {
            if s.windows(lookback, horizon) == 0 {
                return Err(InvalidConfig(format!(
                    "the {name} split ({} rows) is shorter than lookback + horizon",
                    s.rows
                )));
            }
        }
        let order = EpochOrder::new(train.windows(lookback, horizon), seed);
        Ok(Self { train, val, lookback, horizon, batch, order })
    }
}

impl DataSource<ForecastBatch> for ForecastSource {
    fn train_batch(&mut self, step: usize, device: &Device) -> ForecastBatch {
        let idx = self.order.batch(step, self.batch);
        forecast_batch(&self.train, &idx, self.lookback, self.horizon, device)
    }
    fn eval_batches(&self, device: &Device) -> Vec<ForecastBatch> {
        let n = self.val.windows(self.lookback, self.horizon);
        (0..n)
            .collect::<Vec<_>>()
            .chunks(256)
            .map(|c| forecast_batch(&self.val, c, self.lookback, self.horizon, device))
            .collect()
    }
}

/// Test MSE and MAE over every window of `seg` (no drop_last), target variables, z-scored, of
/// the mean forecast of `models` (one model: its own forecast).
pub fn forecast_metrics(
    models: &[ForecastModel],
    seg: &Segment,
    l: usize,
    h: usize,
    device: &Device,
) -> (f64, f64, usize) {
    let models: Vec<ForecastModel> =
        models.iter().map(|m| if device.is_autodiff() { m.valid() } else { m.clone() }).collect();
    let n = seg.windows(l, h);
    let (mut se, mut ae, mut count) = (0f64, 0f64, 0usize);
    for c in (0..n).collect::<Vec<_>>().chunks(256) {
        let b = forecast_batch(seg, c, l, h, device);
        let pred = b.select(mean_forecast(&models, b.x.clone(), &b.starts));
        let truth = b.select(b.y.clone());
        let d = (pred - truth).into_data().convert::<f32>().try_to_vec::<f32>().unwrap_or_default();
        se += d.iter().map(|v| (*v as f64).powi(2)).sum::<f64>();
        ae += d.iter().map(|v| v.abs() as f64).sum::<f64>();
        count += d.len();
    }
    (se / count.max(1) as f64, ae / count.max(1) as f64, n)
}

/// Cases `idx` of a `.ts` set, normalised per dimension, right-padded to the longest.
pub fn seq_batch(set: &TsSet, stats: &[(f32, f32)], idx: &[usize], device: &Device) -> SeqBatch {
    let d = set.dims;
    let t = idx.iter().map(|&i| set.lengths[i]).max().unwrap_or(1);
    let b = idx.len();
    let (mut x, mut mask) = (vec![0f32; b * t * d], vec![0f32; b * t]);
    for (r, &i) in idx.iter().enumerate() {
        for s in 0..set.lengths[i] {
            mask[r * t + s] = 1.0;
            for j in 0..d {
                let v = set.series[i][s * d + j];
                // missing values become the dimension's mean (0 after normalisation)
                x[(r * t + s) * d + j] = if v.is_finite() { (v - stats[j].0) / stats[j].1 } else { 0.0 };
            }
        }
    }
    SeqBatch {
        x: Tensor::from_data(TensorData::new(x, [b, t, d]), device),
        mask: Tensor::from_data(TensorData::new(mask, [b, t, 1]), device),
        labels: idx.iter().map(|&i| set.labels[i] as i64).collect(),
    }
}

/// Seeded shuffled training cases; evaluation on a fixed set.
pub struct ClassifySource {
    pub train: TsSet,
    pub eval: TsSet,
    pub stats: Vec<(f32, f32)>,
    pub batch: usize,
    order: EpochOrder,
}

impl ClassifySource {
    pub fn new(train: TsSet, eval: TsSet, stats: Vec<(f32, f32)>, batch: usize, seed: u64) -> Self {
        let order = EpochOrder::new(train.len(), seed);
        Self { train, eval, stats, batch, order }
    }
}

impl DataSource<SeqBatch> for ClassifySource {
    fn train_batch(&mut self, step: usize, device: &Device) -> SeqBatch {
        let idx = self.order.batch(step, self.batch.min(self.train.len()));
        seq_batch(&self.train, &self.stats, &idx, device)
    }
    fn eval_batches(&self, device: &Device) -> Vec<SeqBatch> {
        (0..self.eval.len())
            .collect::<Vec<_>>()
            .chunks(64)
            .map(|c| seq_batch(&self.eval, &self.stats, c, device))
            .collect()
    }
}

/// Accuracy of a classifier on a whole set.
pub fn classify_accuracy(model: &Classifier, set: &TsSet, stats: &[(f32, f32)], device: &Device) -> f64 {
    let model = if device.is_autodiff() { model.valid() } else { model.clone() };
    let mut correct = 0;
    for c in (0..set.len()).collect::<Vec<_>>().chunks(64) {
        let b = seq_batch(set, stats, c, device);
        let pred =
            model.forward(b.x, b.mask).argmax(1).into_data().convert::<i64>().try_to_vec::<i64>().unwrap_or_default();
        correct += pred.iter().zip(&b.labels).filter(|(p, t)| p == t).count();
    }
    correct as f64 / set.len().max(1) as f64
}
