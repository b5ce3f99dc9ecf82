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

use crate::error::{FileError, InvalidConfig};
use crate::plot;
use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::{Device, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

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
pub trait Trainable: Module + Sized {
    type Batch;
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
        }
    }
}

impl TrainConfig {
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
    #[error("training diverged at step {step}: loss {loss}")]
    Diverged { step: usize, loss: f64 },
    #[error(transparent)]
    Invalid(#[from] InvalidConfig),
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> FileError {
    FileError::new(path, e.to_string())
}

/// Writes `bytes` to `path` through a temporary file and a rename (never a half-written file).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| io_err(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))
}

/// Writes `model.bpk` (burn's record: keeps parameter ids, so the optimizer state re-attaches on
/// resume) and `model.safetensors` (the same weights for other tools) into `dir`, each through a
/// temporary file and a rename.
fn save_model<M: Module>(dir: &Path, model: &M) -> Result<(), FileError> {
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let bpk_tmp = dir.join("model.bpk.tmp");
    model.clone().save_file(&bpk_tmp).map_err(|e| io_err(&bpk_tmp, format!("{e:?}")))?;
    let tmp = dir.join("model.safetensors.tmp");
    let mut store = SafetensorsStore::from_file(&tmp).overwrite(true);
    model.save_into(&mut store).map_err(|e| io_err(&tmp, format!("{e:?}")))?;
    for (from, to) in [(&bpk_tmp, "model.bpk"), (&tmp, "model.safetensors")] {
        std::fs::rename(from, dir.join(to)).map_err(|e| io_err(dir, e))?;
    }
    Ok(())
}

fn save_checkpoint<M: Module>(
    dir: &Path,
    model: &M,
    optim: &ModuleOptimizer,
    state: &RunState,
) -> Result<(), FileError> {
    save_model(dir, model)?;
    let opt_tmp = dir.join("optimizer.tmp");
    optim.save(&opt_tmp).map_err(|e| io_err(&opt_tmp, format!("{e:?}")))?;
    std::fs::rename(&opt_tmp, dir.join("optimizer.bin")).map_err(|e| io_err(dir, e))?;
    let json = serde_json::to_vec_pretty(state).map_err(|e| io_err(dir, e))?;
    write_atomic(&dir.join("state.json"), &json)
}

/// The directory holding a finished run's model: `out/best/` when the run kept its best
/// evaluation (see [`TrainConfig::keep_best`]), else `out/checkpoint/`.
pub fn model_dir(out: &Path) -> PathBuf {
    let best = out.join("best");
    if best.join("model.bpk").exists() { best } else { out.join("checkpoint") }
}

/// Restores a checkpoint's model record (`model.bpk`) into `model`.
pub fn load_checkpoint<M: Module>(dir: &Path, model: M) -> Result<M, FileError> {
    let path = dir.join("model.bpk");
    if !path.exists() {
        return Err(FileError::new(&path, "no checkpoint"));
    }
    model.try_load_file(&path).map_err(|e| io_err(&path, format!("cannot load into this model: {e:?}")))
}

/// Loads `model.safetensors` from `dir` into `model`.
pub fn load_model<M: Module>(dir: &Path, model: &mut M) -> Result<(), FileError> {
    let path = dir.join("model.safetensors");
    if !path.exists() {
        return Err(FileError::new(&path, "no checkpoint"));
    }
    let mut store = SafetensorsStore::from_file(&path);
    let r = model.load_from(&mut store).map_err(|e| io_err(&path, format!("{e:?}")))?;
    if !r.errors.is_empty() || !r.missing.is_empty() {
        let msg = format!("checkpoint does not match the model: {:?} {:?}", r.missing, r.errors);
        return Err(FileError::new(&path, msg));
    }
    Ok(())
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

/// Fits the step count to a training-time budget: after 10, 30 and 100 steps of this
/// invocation, from the speed of the steps since the previous fit.
struct Budget {
    seconds: f64,
    /// Steps taken under the budget in this invocation.
    taken: usize,
    /// (steps taken, seconds spent) at the last fit.
    mark: (usize, f64),
    /// Whether this invocation chose the plan (a resumed run keeps the plan it was given).
    planned_here: bool,
}

impl Budget {
    /// After a step: re-fits `steps` when due; `true` once the budget is spent.
    fn after_step(&mut self, state: &mut RunState, steps: &mut usize, max_steps: usize, spent: f64) -> bool {
        self.taken += 1;
        let may_plan = state.planned_steps == 0 || self.planned_here;
        if matches!(self.taken, 10 | 30 | 100) && may_plan && state.step * 4 < (*steps).max(4) {
            let per_step = (spent - self.mark.1) / (self.taken - self.mark.0) as f64;
            let left = ((self.seconds - spent).max(0.0) / per_step.max(1e-9)) as usize;
            *steps = (state.step + left).clamp(state.step + 1, max_steps);
            state.planned_steps = *steps;
            (self.mark, self.planned_here) = ((self.taken, spent), true);
        }
        spent >= self.seconds
    }
}

/// A run in progress: the model, its optimizer, the run state and the schedule.
struct Run<M: Trainable> {
    model: M,
    optim: ModuleOptimizer,
    state: RunState,
    cfg: TrainConfig,
    /// The best model so far (keep_best).
    best_model: Option<M>,
    /// This invocation's last step (stop_after, or the schedule's end).
    end: usize,
    /// The configured step count: a time budget plans at most this many.
    max_steps: usize,
    per_epoch: usize,
    budget: Option<Budget>,
    /// Seconds of training since the start (this and earlier invocations).
    spent: f64,
    /// Training tallies and seconds since the last evaluation.
    epoch_stats: Stats,
    epoch_train_time: f64,
    epoch_start: Instant,
    bar: ProgressBar,
}

impl<M: Trainable> Run<M> {
    /// A fresh run, or the one in `out/checkpoint/` when resuming.
    fn start(mut model: M, cfg: &TrainConfig) -> Result<Self, TrainError> {
        if cfg.steps == 0 || cfg.epochs == 0 {
            return Err(InvalidConfig("training needs steps ≥ 1 and epochs ≥ 1".into()).into());
        }
        let mut adamw = AdamWConfig::new().with_weight_decay(cfg.weight_decay as f32);
        if let Some(c) = cfg.grad_clip {
            adamw = adamw.with_grad_clipping(Some(burn::optim::grad_clipping::GradientClippingConfig::Norm(c)));
        }
        let mut optim = adamw.init();
        let mut state = RunState::default();
        if cfg.resume {
            let dir = cfg.out.as_ref().map(|o| o.join("checkpoint"));
            let dir = dir.ok_or_else(|| InvalidConfig("--resume needs an output directory".into()))?;
            (model, optim, state) = resume(&dir, model, optim)?;
        }
        let best_model = Self::best_so_far(cfg, &state, &model)?;
        let mut cfg = cfg.clone();
        if cfg.resume && state.planned_steps > 0 {
            cfg.steps = state.planned_steps; // a time-budgeted run keeps the schedule it chose
        }
        let bar = if cfg.progress { ProgressBar::new(cfg.steps as u64) } else { ProgressBar::hidden() };
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed_precise}<{eta_precise}]").unwrap(),
        );
        bar.set_position(state.step as u64);
        let budget = cfg.time_budget.map(|seconds| Budget {
            seconds,
            taken: 0,
            mark: (0, state.train_seconds),
            planned_here: false,
        });
        let mut run = Run {
            model,
            optim,
            spent: state.train_seconds,
            state,
            per_epoch: 0,
            end: 0,
            max_steps: cfg.steps,
            cfg,
            best_model,
            budget,
            epoch_stats: Stats::default(),
            epoch_train_time: 0.0,
            epoch_start: Instant::now(),
            bar,
        };
        run.plan(run.cfg.steps);
        if run.cfg.patience.is_some_and(|p| evals_since_best(&run.state) >= p) {
            run.end = run.state.step; // a resumed run that had already stopped early
        }
        Ok(run)
    }

    /// The best model of a resumed run (from `out/best/`); a fresh run removes a stale one.
    fn best_so_far(cfg: &TrainConfig, state: &RunState, model: &M) -> Result<Option<M>, FileError> {
        let Some(dir) = cfg.out.as_ref().map(|o| o.join("best")).filter(|d| d.exists()) else { return Ok(None) };
        if cfg.resume && cfg.keep_best && state.best.is_some() {
            return Ok(Some(load_checkpoint(&dir, model.clone())?));
        }
        std::fs::remove_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        Ok(None)
    }

    /// Sets the schedule's length: `steps` in all, an evaluation every `steps / epochs`.
    fn plan(&mut self, steps: usize) {
        self.cfg.steps = steps;
        self.per_epoch = steps.div_ceil(self.cfg.epochs);
        let stop = self.cfg.stop_after.map(|n| self.start_step() + n);
        self.end = stop.map_or(steps, |e| e.min(steps));
        self.bar.set_length(steps as u64);
    }

    /// The step this invocation started from.
    fn start_step(&self) -> usize {
        self.state.step - self.budget.as_ref().map_or(0, |b| b.taken).min(self.state.step)
    }

    fn say(&self, line: String) {
        if self.bar.is_hidden() { eprintln!("{line}") } else { self.bar.println(line) }
    }

    /// One optimiser step on the batch of the current step.
    fn train_step(&mut self, data: &mut dyn DataSource<M::Batch>, device: &Device) -> Result<(), TrainError> {
        let step = self.state.step;
        let lr = self.cfg.lr_at(step);
        let t0 = Instant::now();
        let batch = data.train_batch(step, device);
        let (loss, stats) = self.model.loss(&batch);
        let lv = stats.loss();
        if !lv.is_finite() {
            self.bar.abandon();
            return Err(TrainError::Diverged { step, loss: lv });
        }
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        self.model = self.optim.step(lr, self.model.clone(), grads);
        let dt = t0.elapsed().as_secs_f64();
        (self.epoch_train_time, self.spent) = (self.epoch_train_time + dt, self.spent + dt);
        self.epoch_stats.add(stats);
        self.state.losses.push((step, lv));
        self.state.step += 1;
        self.bar.set_message(format!("loss {lv:.4} lr {lr:.2e}"));
        self.bar.inc(1);
        self.apply_budget();
        Ok(())
    }

    /// Re-plans to the time budget; ends the schedule here once it is spent.
    fn apply_budget(&mut self) {
        let Some(b) = self.budget.as_mut() else { return };
        let mut steps = self.cfg.steps;
        let spent_all = b.after_step(&mut self.state, &mut steps, self.max_steps, self.spent);
        if steps != self.cfg.steps {
            self.plan(steps);
        }
        if spent_all && self.state.step < self.cfg.steps {
            self.cfg.steps = self.state.step; // budget spent: evaluate and stop here
            self.end = self.state.step;
        }
    }

    fn at_epoch_end(&self) -> bool {
        self.state.step % self.per_epoch == 0 || self.state.step == self.cfg.steps
    }

    /// Evaluates, records the epoch, keeps the best model, writes the checkpoint.
    fn end_epoch(&mut self, data: &dyn DataSource<M::Batch>, device: &Device) -> Result<(), TrainError> {
        let ev = evaluate(&self.model, data, device);
        let rec = EpochRecord {
            epoch: self.state.epochs.len() + 1,
            step: self.state.step,
            train_loss: self.epoch_stats.loss(),
            train_accuracy: self.epoch_stats.accuracy(),
            eval_loss: ev.loss(),
            eval_accuracy: ev.accuracy(),
            lr: self.cfg.lr_at(self.state.step - 1),
            seconds: self.epoch_start.elapsed().as_secs_f64(),
            train_items_per_second: self.epoch_stats.items as f64 / self.epoch_train_time.max(1e-9),
            extra: data.eval_metrics(&ev),
        };
        self.say(rec.line());
        self.state.train_seconds += self.epoch_train_time;
        let improved = self.state.best.is_none_or(|b| rec.eval_loss < b.eval_loss);
        if improved {
            self.state.best = Some(Best { epoch: rec.epoch, step: rec.step, eval_loss: rec.eval_loss });
        }
        self.state.epochs.push(rec);
        if self.cfg.keep_best && improved {
            if let Some(out) = &self.cfg.out {
                save_model(&out.join("best"), &self.model)?;
            }
            self.best_model = Some(self.model.clone());
        }
        if let Some(out) = &self.cfg.out {
            save_checkpoint(&out.join("checkpoint"), &self.model, &self.optim, &self.state)?;
            write_outputs(out, &self.state)?;
        }
        (self.epoch_stats, self.epoch_train_time, self.epoch_start) = (Stats::default(), 0.0, Instant::now());
        Ok(())
    }

    /// Early stopping: `patience` evaluations without a lower evaluation loss.
    fn out_of_patience(&self) -> bool {
        let since = evals_since_best(&self.state);
        let stop = self.cfg.patience.is_some_and(|p| since >= p) && self.state.step < self.end;
        if stop {
            self.say(format!("early stop: no lower evaluation loss in {since} evaluations"));
        }
        stop
    }

    fn finish(self) -> Fitted<M> {
        self.bar.finish_and_clear();
        let model = match (self.cfg.keep_best, self.best_model) {
            (true, Some(best)) => best,
            _ => self.model,
        };
        Fitted { model, state: self.state }
    }
}

/// Model, optimizer and run state from a checkpoint directory (a fresh start when it has none).
fn resume<M: Module>(
    dir: &Path,
    model: M,
    optim: ModuleOptimizer,
) -> Result<(M, ModuleOptimizer, RunState), FileError> {
    let sp = dir.join("state.json");
    if !sp.exists() {
        eprintln!("no checkpoint in {}: starting afresh", dir.display());
        return Ok((model, optim, RunState::default()));
    }
    let text = std::fs::read_to_string(&sp).map_err(|e| io_err(&sp, e))?;
    let state: RunState = serde_json::from_str(&text).map_err(|e| io_err(&sp, e))?;
    let model = load_checkpoint(dir, model)?;
    let op = dir.join("optimizer.bin");
    let optim = optim.load(&op).map_err(|e| io_err(&op, format!("{e:?}")))?;
    eprintln!("resuming from step {} ({})", state.step, dir.display());
    Ok((model, optim, state))
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

/// metrics.json and loss.png for a run state.
pub fn write_outputs(out: &Path, state: &RunState) -> Result<(), FileError> {
    std::fs::create_dir_all(out).map_err(|e| io_err(out, e))?;
    let last = state.epochs.last();
    let mut metrics = serde_json::json!({
        "final": last,
        "steps": state.step,
        "train_seconds": state.train_seconds,
        "best": state.best,
        "epochs": state.epochs,
    });
    if let (Some(last), Some(m)) = (last, metrics.as_object_mut()) {
        m.extend(last.extra.clone());
    }
    let json = serde_json::to_vec_pretty(&metrics).map_err(|e| io_err(out, e))?;
    write_atomic(&out.join("metrics.json"), &json)?;
    let smooth = plot::smooth(&state.losses.iter().map(|&(s, l)| (s as f64, l)).collect::<Vec<_>>(), 25);
    let eval: Vec<(f64, f64)> = state.epochs.iter().map(|e| (e.step as f64, e.eval_loss)).collect();
    plot::line_chart(
        &out.join("loss.png"),
        "loss",
        "step",
        "loss",
        &[("train (smoothed)".to_string(), smooth), ("eval".to_string(), eval)],
        plot::Scale::Linear,
        plot::Scale::Linear,
    )
}
