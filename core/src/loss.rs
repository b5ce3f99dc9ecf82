//! The losses the models share, defined once: cross-entropy with its tallies, and reading a
//! one-element tensor back as `f64`.

use crate::train::Stats;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};

/// The value of a one-element tensor (NaN if it cannot be read).
pub fn scalar(t: Tensor<1>) -> f64 {
    t.into_data().convert::<f64>().try_into_vec::<f64>().ok().and_then(|v| v.first().copied()).unwrap_or(f64::NAN)
}

/// Mean cross-entropy `−(1/N) Σ log softmax(logits)[n, yₙ]` of `logits` `[N, C]` against the
/// classes `targets` `[N]`, with the loss and arg-max accuracy tallies.
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> (Tensor<1>, Stats) {
    let n = targets.dims()[0];
    let nll = log_softmax(logits.clone(), 1).gather(1, targets.clone().unsqueeze_dim(1)).neg().mean();
    let hits = logits.argmax(1).reshape([n]).equal(targets).int().sum();
    let correct = hits.into_data().convert::<i64>().try_into_vec::<i64>().ok().and_then(|v| v.first().copied());
    let loss = scalar(nll.clone());
    (nll, Stats { loss_sum: loss * n as f64, correct: correct.unwrap_or(0) as usize, count: n, items: n })
}

/// [`cross_entropy`] against labels on the host, also returning the predicted classes.
pub fn classification_loss(logits: Tensor<2>, labels: &[i64]) -> (Tensor<1>, Stats, Vec<i64>) {
    let n = labels.len();
    let device = logits.device();
    let pred = logits.clone().argmax(1).into_data().convert::<i64>().try_into_vec::<i64>().unwrap_or_default();
    let tgt = Tensor::<1, Int>::from_data(TensorData::new(labels.to_vec(), [n]), &device);
    let (nll, stats) = cross_entropy(logits, tgt);
    (nll, stats, pred)
}
