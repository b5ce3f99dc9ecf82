//! The shared training runner every app plugs its model and data into.
//!
//! ```text
//! fit:  start (fresh, or resumed from checkpoint/)
//!       while step < end:
//!           one AdamW step (warm-up + cosine lr, gradient-norm clipping)
//!           time budget: re-fit the step count after 10 / 30 / 100 steps; stop when spent
//!           at each epoch boundary: evaluate → record → keep best → checkpoint → early stop?
//!       the best model (keep_best) or the last
//! ```
//!
//! Checkpoints (model record + safetensors, optimizer state, run state) are written atomically
//! after each evaluation, with `metrics.json` and a loss-curve PNG. The training stream is
//! deterministic in (seed, step), so a resumed run sees the batches an uninterrupted one would
//! have seen.

mod files;
mod parallel;
mod run;

pub use files::{load_checkpoint, load_model, model_dir, resume, write_atomic, write_outputs};

use crate::error::{FileError, InvalidConfig};
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use run::Run;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Loss and accuracy tallies of one or more batches.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Stats {
    /// Sum of per-item losses.
    pub loss_sum: f64,
    pub correct: usize,
    /// Scored items (positions or examples).
    pub count: usize,
    /// Input items processed (tokens), for throughput.
    pub items: usize,
}

impl Stats {
    pub fn add(&mut self, o: Stats) {
        self.loss_sum += o.loss_sum;
        self.correct += o.correct;
        self.count += o.count;
        self.items += o.items;
    }
    pub fn loss(&self) -> f64 {
        self.loss_sum / self.count.max(1) as f64
    }
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.count.max(1) as f64
    }
}

/// A model the runner can train: a scalar loss and statistics for a batch.
pub trait Trainable: Module + Sized + Sync {
    /// Sent to a replica's thread under data parallelism.
    type Batch: Send;
    fn loss(&self, batch: &Self::Batch) -> (Tensor<1>, Stats);
}

/// Where batches come from. `train_batch` must be deterministic in `step`.
pub trait DataSource<B> {
    fn train_batch(&mut self, step: usize, device: &Device) -> B;
    /// The evaluation set (the same every call).
    fn eval_batches(&self, device: &Device) -> Vec<B>;
    /// Domain figures derived from the evaluation tallies (e.g. bits per byte), recorded with
    /// each epoch and at the top level of metrics.json.
    fn eval_metrics(&self, _eval: &Stats) -> serde_json::Map<String, serde_json::Value> {
        serde_json::Map::new()
    }
}

/// Runner settings (the apps' common flags).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainConfig {
    pub steps: usize,
    pub epochs: usize,
    pub lr: f64,
    /// Final learning rate as a fraction of `lr` (cosine decay).
    pub min_lr_ratio: f64,
    pub warmup_steps: usize,
    pub weight_decay: f64,
    /// Clip each gradient to this L2 norm.
    pub grad_clip: Option<f32>,
    pub seed: u64,
    /// Output directory for checkpoints, metrics.json and loss.png (nothing written when `None`).
    pub out: Option<PathBuf>,
    pub resume: bool,
    pub progress: bool,
    /// Stop after this many steps in this invocation (time-boxed jobs; continue with `resume`).
    pub stop_after: Option<usize>,
    /// Training-time budget in seconds: after 10 steps the step count is fitted to it (and
    /// re-fitted after 30 and 100 steps from the speed of the latest steps, so a slow start —
    /// a busy machine, warm-up allocations — does not fix the plan), so the schedule still ends
    /// in its cosine tail; the run also stops when the budget is spent.
    #[serde(default)]
    pub time_budget: Option<f64>,
    /// Model selection on the evaluation set: keep the model of the evaluation with the lowest
    /// loss (saved to `out/best/`) and return it instead of the last one. Only for a held-out
    /// validation split — never when the evaluation set is the test set.
    #[serde(default)]
    pub keep_best: bool,
    /// Early stopping: end the run after this many evaluations without a lower evaluation loss.
    #[serde(default)]
    pub patience: Option<usize>,
    /// Write the checkpoint, `best/`, metrics.json and loss.png at every n-th evaluation (and
    /// always at the last) instead of at each — for runs that evaluate every few steps.
    #[serde(default)]
    pub save_every: Option<usize>,
    /// Data parallelism: further devices, each training a replica on its own micro-batch per
    /// step (see `parallel.rs`); empty trains on `fit`'s device alone.
    #[serde(skip)]
    pub replicas: Vec<Device>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            steps: 1000,
            epochs: 5,
            lr: 1e-3,
            min_lr_ratio: 0.1,
            warmup_steps: 50,
            weight_decay: 0.01,
            grad_clip: Some(1.0),
            seed: 0,
            out: None,
            resume: false,
            progress: true,
            stop_after: None,
            time_budget: None,
            keep_best: false,
            patience: None,
            save_every: None,
            replicas: Vec::new(),
        }
    }
}

impl TrainConfig {
    /// Devices a step trains on (the first and the replicas): each step sees this many batches.
    pub fn devices(&self) -> usize {
        1 + self.replicas.len()
    }

    /// Learning rate at `step`: linear warm-up, then cosine decay to `min_lr_ratio · lr`.
    pub fn lr_at(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let span = (self.steps.saturating_sub(self.warmup_steps)).max(1) as f64;
        let p = ((step - self.warmup_steps) as f64 / span).min(1.0);
        let min = self.lr * self.min_lr_ratio;
        min + 0.5 * (self.lr - min) * (1.0 + (std::f64::consts::PI * p).cos())
    }
}

/// One epoch's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub step: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub eval_loss: f64,
    pub eval_accuracy: f64,
    pub lr: f64,
    pub seconds: f64,
    pub train_items_per_second: f64,
    /// Domain figures from [`DataSource::eval_metrics`].
    #[serde(default, flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Run state saved beside the checkpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunState {
    pub step: usize,
    pub epochs: Vec<EpochRecord>,
    /// (step, train loss) every step.
    pub losses: Vec<(usize, f64)>,
    pub train_seconds: f64,
    /// Step count chosen to fit a time budget (0: the configured count).
    #[serde(default)]
    pub planned_steps: usize,
    /// The evaluation with the lowest loss so far.
    #[serde(default)]
    pub best: Option<Best>,
}

/// Where the lowest evaluation loss was reached.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Best {
    pub epoch: usize,
    pub step: usize,
    pub eval_loss: f64,
}

/// The outcome of [`fit`].
pub struct Fitted<M> {
    pub model: M,
    pub state: RunState,
}

/// Why a run could not go on.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    File(#[from] FileError),
    /// A non-finite loss or gradient; nothing of this step was applied or written.
    #[error("training diverged at step {step}: {what} is {value}; {kept}")]
    Diverged { step: usize, what: &'static str, value: f64, kept: String },
    #[error(transparent)]
    Invalid(#[from] InvalidConfig),
}

/// Evaluates `model` (without gradients) on the data's evaluation set.
pub fn evaluate<M: Trainable>(model: &M, data: &dyn DataSource<M::Batch>, device: &Device) -> Stats {
    let valid = model.valid();
    let mut s = Stats::default();
    for b in data.eval_batches(&device.clone().inner()) {
        s.add(valid.loss(&b).1);
    }
    s
}

impl EpochRecord {
    /// The progress line: losses, and accuracies for models that score any.
    fn line(&self) -> String {
        let scored = self.train_accuracy > 0.0 || self.eval_accuracy > 0.0;
        let acc = |a: f64| if scored { format!(" acc {a:.4}") } else { String::new() };
        format!(
            "epoch {} step {}: train loss {:.4}{} | eval loss {:.4}{}",
            self.epoch,
            self.step,
            self.train_loss,
            acc(self.train_accuracy),
            self.eval_loss,
            acc(self.eval_accuracy)
        )
    }
}

/// Trains `model` on `device` (an autodiff device) with `data` under `cfg`.
pub fn fit<M: Trainable>(
    model: M,
    data: &mut dyn DataSource<M::Batch>,
    cfg: &TrainConfig,
    device: &Device,
) -> Result<Fitted<M>, TrainError> {
    assert!(device.is_autodiff(), "fit needs an autodiff device (Device::…().autodiff())");
    let mut run = Run::start(model, cfg)?;
    while run.state.step < run.end {
        run.train_step(data, device)?;
        if run.at_epoch_end() {
            run.end_epoch(data, device)?;
            if run.out_of_patience() {
                break;
            }
        }
    }
    Ok(run.finish())
}

/// Evaluations recorded after the best one (0 when the latest is the best, or none is).
fn evals_since_best(state: &RunState) -> usize {
    state.best.map_or(0, |b| state.epochs.iter().filter(|e| e.step > b.step).count())
}
