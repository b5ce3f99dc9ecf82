//! Training batches, prediction in file order, and the metrics: accuracy, AUROC, RMSE.

use crate::data::{Encoded, Schema, Task};
use crate::models::{Inputs, TabularModel, offsets};
use burn::tensor::Device;
use burn::tensor::activation::softmax;
use ssm_core::data::EpochOrder;
use ssm_core::train::{DataSource, Stats};

/// Shuffled training batches; the validation rows in order, in batches of the same size.
pub struct TabularSource {
    train: Encoded,
    val: Encoded,
    offsets: Vec<i64>,
    task: Task,
    batch: usize,
    order: EpochOrder,
}

impl TabularSource {
    pub fn new(schema: &Schema, train: Encoded, val: Encoded, batch: usize, seed: u64) -> Self {
        let (offsets, _) = offsets(&schema.cardinalities());
        let order = EpochOrder::new(train.rows, seed);
        TabularSource { train, val, offsets, task: schema.task, batch: batch.max(1), order }
    }
}

impl DataSource<Inputs> for TabularSource {
    fn train_batch(&mut self, step: usize, device: &Device) -> Inputs {
        let idx = self.order.batch(step, self.batch);
        Inputs::new(&self.train, &idx, &self.offsets, self.task, device)
    }

    fn eval_batches(&self, device: &Device) -> Vec<Inputs> {
        in_order(&self.val, self.batch)
            .iter()
            .map(|idx| Inputs::new(&self.val, idx, &self.offsets, self.task, device))
            .collect()
    }

    fn eval_metrics(&self, eval: &Stats) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        if self.task == Task::Regression {
            m.insert("val_rmse_standardised".into(), eval.loss().sqrt().into());
        }
        m
    }
}

/// Row indices `0..n` in order, cut into batches.
fn in_order(e: &Encoded, batch: usize) -> Vec<Vec<usize>> {
    (0..e.rows).collect::<Vec<_>>().chunks(batch.max(1)).map(<[usize]>::to_vec).collect()
}

/// Per-row outputs in row order — class probabilities, or the prediction in target units
/// (divided by the target scale) — computed in batches of `batch` rows in file order (MambaTab's
/// predictions depend on the batch).
pub fn predict(model: &TabularModel, schema: &Schema, e: &Encoded, batch: usize, device: &Device) -> Vec<Vec<f64>> {
    let (offs, _) = offsets(&schema.cardinalities());
    let mut out = Vec::with_capacity(e.rows);
    for idx in in_order(e, batch) {
        let y = model.forward(&Inputs::new(e, &idx, &offs, schema.task, device));
        let y = if schema.task == Task::Regression { y } else { softmax(y, 1) };
        let k = y.dims()[1];
        let v = y.into_data().convert::<f64>().try_into_vec::<f64>().unwrap_or_default();
        for row in v.chunks(k) {
            out.push(match schema.task {
                Task::Regression => vec![row[0] * schema.target_std + schema.target_mean],
                _ => row.to_vec(),
            });
        }
    }
    out
}

/// Test figures of predictions against encoded targets.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Scores {
    pub accuracy: Option<f64>,
    pub auroc: Option<f64>,
    /// In target units divided by the target scale.
    pub rmse: Option<f64>,
    pub rows: usize,
}

pub fn score(schema: &Schema, e: &Encoded, pred: &[Vec<f64>]) -> Scores {
    let rows = pred.len();
    match schema.task {
        Task::Regression => {
            let se: f64 = pred
                .iter()
                .zip(&e.target)
                .map(|(p, &t)| (p[0] - (t as f64 * schema.target_std + schema.target_mean)).powi(2))
                .sum();
            Scores { rmse: Some((se / rows.max(1) as f64).sqrt()), rows, ..Scores::default() }
        }
        task => {
            let argmax = |p: &Vec<f64>| p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i);
            let hits = pred.iter().zip(&e.target).filter(|(p, t)| argmax(p) == **t as usize).count();
            let auroc = (task == Task::Binary).then(|| {
                auroc(
                    &pred.iter().map(|p| p[1]).collect::<Vec<_>>(),
                    &e.target.iter().map(|&t| t == 1.0).collect::<Vec<_>>(),
                )
            });
            Scores { accuracy: Some(hits as f64 / rows.max(1) as f64), auroc, rows, ..Scores::default() }
        }
    }
}

/// Area under the ROC curve: the probability that a random positive scores above a random
/// negative (ties count one half), by ranks (Mann–Whitney U).
pub fn auroc(scores: &[f64], positive: &[bool]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut i) = (0.0, 0);
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let mid = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += (i..=j).filter(|&k| positive[order[k]]).count() as f64 * mid;
        i = j + 1;
    }
    let np = positive.iter().filter(|&&p| p).count() as f64;
    let nn = positive.len() as f64 - np;
    if np == 0.0 || nn == 0.0 {
        return f64::NAN;
    }
    (rank_sum - np * (np + 1.0) / 2.0) / (np * nn)
}

/// ROC curve points `(false positive rate, true positive rate)`, thresholds high to low.
pub fn roc_curve(scores: &[f64], positive: &[bool]) -> Vec<(f64, f64)> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let np = positive.iter().filter(|&&p| p).count().max(1) as f64;
    let nn = (positive.len() as f64 - np).max(1.0);
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut pts = vec![(0.0, 0.0)];
    for (k, &i) in order.iter().enumerate() {
        if positive[i] {
            tp += 1.0
        } else {
            fp += 1.0
        }
        let last = k + 1 == order.len() || scores[order[k + 1]] != scores[i];
        if last {
            pts.push((fp / nn, tp / np));
        }
    }
    pts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_counts_ordered_pairs_and_half_ties() {
        // Positives 0.9, 0.4; negatives 0.5, 0.1: pairs (0.9>0.5, 0.9>0.1, 0.4<0.5, 0.4>0.1) → 3/4.
        assert!((auroc(&[0.9, 0.5, 0.4, 0.1], &[true, false, true, false]) - 0.75).abs() < 1e-12);
        assert!((auroc(&[0.5, 0.5], &[true, false]) - 0.5).abs() < 1e-12);
        assert_eq!(auroc(&[1.0, 2.0], &[false, true]), 1.0);
        let roc = roc_curve(&[0.9, 0.5, 0.4, 0.1], &[true, false, true, false]);
        assert_eq!(roc, vec![(0.0, 0.0), (0.0, 0.5), (0.5, 0.5), (0.5, 1.0), (1.0, 1.0)]);
    }
}
