//! The shared training runner every app plugs its model and data into.
//!
//! AdamW with linear warm-up and cosine decay, gradient-norm clipping, evaluation every epoch,
//! checkpoints (model as safetensors, optimizer state, run state) written atomically after each
//! epoch, `--resume` from them, `metrics.json` (final and per-epoch figures), a progress bar,
//! and a loss-curve PNG. The training stream is deterministic in (seed, step), so a resumed run
//! sees the batches an uninterrupted one would have seen.

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

/// Writes `bytes` to `path` through a temporary file and a rename (never a half-written file).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes `model.bpk` (burn's record: keeps parameter ids, so the optimizer state re-attaches on
/// resume) and `model.safetensors` (the same weights for other tools) into `dir`, each through a
/// temporary file and a rename.
fn save_model<M: Module>(dir: &Path, model: &M) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let bpk_tmp = dir.join("model.bpk.tmp");
    model.clone().save_file(&bpk_tmp).map_err(|e| format!("{}: {e:?}", bpk_tmp.display()))?;
    let tmp = dir.join("model.safetensors.tmp");
    let mut store = SafetensorsStore::from_file(&tmp).overwrite(true);
    model.save_into(&mut store).map_err(|e| format!("{}: {e:?}", tmp.display()))?;
    for (from, to) in [(&bpk_tmp, "model.bpk"), (&tmp, "model.safetensors")] {
        std::fs::rename(from, dir.join(to)).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(())
}

fn save_checkpoint<M: Module>(dir: &Path, model: &M, optim: &ModuleOptimizer, state: &RunState) -> Result<(), String> {
    save_model(dir, model)?;
    let opt_tmp = dir.join("optimizer.tmp");
    optim.save(&opt_tmp).map_err(|e| format!("{}: {e:?}", opt_tmp.display()))?;
    std::fs::rename(&opt_tmp, dir.join("optimizer.bin")).map_err(|e| format!("{}: {e}", dir.display()))?;
    let json = serde_json::to_vec_pretty(state).unwrap();
    write_atomic(&dir.join("state.json"), &json)
}

/// The directory holding a finished run's model: `out/best/` when the run kept its best
/// evaluation (see [`TrainConfig::keep_best`]), else `out/checkpoint/`.
pub fn model_dir(out: &Path) -> PathBuf {
    let best = out.join("best");
    if best.join("model.bpk").exists() { best } else { out.join("checkpoint") }
}

/// Restores a checkpoint's model record (`model.bpk`) into `model`.
pub fn load_checkpoint<M: Module>(dir: &Path, model: M) -> Result<M, String> {
    let path = dir.join("model.bpk");
    if !path.exists() {
        return Err(format!("{}: no checkpoint", path.display()));
    }
    model.try_load_file(&path).map_err(|e| format!("{}: cannot load into this model: {e:?}", path.display()))
}

/// Loads `model.safetensors` from `dir` into `model`.
pub fn load_model<M: Module>(dir: &Path, model: &mut M) -> Result<(), String> {
    let path = dir.join("model.safetensors");
    if !path.exists() {
        return Err(format!("{}: no checkpoint", path.display()));
    }
    let mut store = SafetensorsStore::from_file(&path);
    let r = model.load_from(&mut store).map_err(|e| format!("{}: {e:?}", path.display()))?;
    if !r.errors.is_empty() || !r.missing.is_empty() {
        return Err(format!("{}: checkpoint does not match the model: {:?} {:?}", path.display(), r.missing, r.errors));
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

/// Trains `model` on `device` (an autodiff device) with `data` under `cfg`.
pub fn fit<M: Trainable>(
    mut model: M,
    data: &mut dyn DataSource<M::Batch>,
    cfg: &TrainConfig,
    device: &Device,
) -> Result<Fitted<M>, String> {
    assert!(device.is_autodiff(), "fit needs an autodiff device (Device::…().autodiff())");
    if cfg.steps == 0 || cfg.epochs == 0 {
        return Err("training needs steps ≥ 1 and epochs ≥ 1".into());
    }
    let mut adamw = AdamWConfig::new().with_weight_decay(cfg.weight_decay as f32);
    if let Some(c) = cfg.grad_clip {
        adamw = adamw.with_grad_clipping(Some(burn::optim::grad_clipping::GradientClippingConfig::Norm(c)));
    }
    let mut optim = adamw.init();
    let ckpt = cfg.out.as_ref().map(|o| o.join("checkpoint"));
    let mut state = RunState::default();
    if cfg.resume {
        let dir = ckpt.as_ref().ok_or("--resume needs an output directory")?;
        let sp = dir.join("state.json");
        if sp.exists() {
            let text = std::fs::read_to_string(&sp).map_err(|e| format!("{}: {e}", sp.display()))?;
            state = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", sp.display()))?;
            model = load_checkpoint(dir, model)?;
            optim = optim
                .load(dir.join("optimizer.bin"))
                .map_err(|e| format!("{}: {e:?}", dir.join("optimizer.bin").display()))?;
            eprintln!("resuming from step {} ({})", state.step, dir.display());
        } else {
            eprintln!("no checkpoint in {}: starting afresh", dir.display());
        }
    }
    let best_dir = cfg.out.as_ref().map(|o| o.join("best"));
    // The best model so far: restored on resume; a fresh run removes a stale one.
    let mut best_model: Option<M> = None;
    if let Some(bd) = best_dir.as_ref().filter(|d| d.exists()) {
        if cfg.resume && cfg.keep_best && state.best.is_some() {
            best_model = Some(load_checkpoint(bd, model.clone())?);
        } else {
            std::fs::remove_dir_all(bd).map_err(|e| format!("{}: {e}", bd.display()))?;
        }
    }
    let mut cfg = cfg.clone();
    if cfg.resume && state.planned_steps > 0 {
        cfg.steps = state.planned_steps; // a time-budgeted run keeps the schedule it chose
    }
    let mut per_epoch = cfg.steps.div_ceil(cfg.epochs);
    let bar = if cfg.progress { ProgressBar::new(cfg.steps as u64) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed_precise}<{eta_precise}]").unwrap(),
    );
    bar.set_position(state.step as u64);
    let mut epoch_stats = Stats::default();
    let mut epoch_start = Instant::now();
    let mut train_time = 0.0;
    let stop_end = cfg.stop_after.map(|n| state.step + n);
    let mut end = stop_end.map_or(cfg.steps, |e| e.min(cfg.steps));
    if cfg.patience.is_some_and(|p| evals_since_best(&state) >= p) {
        end = state.step; // a resumed run that had already stopped early
    }
    let say = |line: String| if bar.is_hidden() { eprintln!("{line}") } else { bar.println(line) };
    let (mut spent, mut budget_steps) = (state.train_seconds, 0usize);
    let max_steps = cfg.steps;
    // (budget steps, seconds spent) at the last fit, and whether this invocation chose the plan
    let (mut mark, mut planned_here) = ((0usize, spent), false);
    while state.step < end {
        let step = state.step;
        let lr = cfg.lr_at(step);
        let t0 = Instant::now();
        let batch = data.train_batch(step, device);
        let (loss, stats) = model.loss(&batch);
        let lv = stats.loss();
        if !lv.is_finite() {
            bar.abandon();
            return Err(format!("training diverged at step {step}: loss {lv}"));
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(lr, model, grads);
        let dt = t0.elapsed().as_secs_f64();
        train_time += dt;
        spent += dt;
        epoch_stats.add(stats);
        state.losses.push((step, lv));
        state.step += 1;
        if let Some(budget) = cfg.time_budget {
            budget_steps += 1;
            let may_plan = state.planned_steps == 0 || planned_here;
            if matches!(budget_steps, 10 | 30 | 100) && may_plan && state.step * 4 < cfg.steps.max(4) {
                // Fit the schedule to the budget at the speed of the steps since the last fit.
                let per_step = (spent - mark.1) / (budget_steps - mark.0) as f64;
                let left = ((budget - spent).max(0.0) / per_step.max(1e-9)) as usize;
                cfg.steps = (state.step + left).clamp(state.step + 1, max_steps);
                per_epoch = cfg.steps.div_ceil(cfg.epochs);
                end = stop_end.map_or(cfg.steps, |e| e.min(cfg.steps));
                state.planned_steps = cfg.steps;
                bar.set_length(cfg.steps as u64);
                (mark, planned_here) = ((budget_steps, spent), true);
            }
            if spent >= budget && state.step < cfg.steps {
                cfg.steps = state.step; // budget spent: evaluate and stop here
                end = state.step;
            }
        }
        bar.set_message(format!("loss {lv:.4} lr {lr:.2e}"));
        bar.inc(1);
        if state.step % per_epoch == 0 || state.step == cfg.steps {
            let ev = evaluate(&model, data, device);
            let secs = epoch_start.elapsed().as_secs_f64();
            let rec = EpochRecord {
                epoch: state.epochs.len() + 1,
                step: state.step,
                train_loss: epoch_stats.loss(),
                train_accuracy: epoch_stats.accuracy(),
                eval_loss: ev.loss(),
                eval_accuracy: ev.accuracy(),
                lr,
                seconds: secs,
                train_items_per_second: epoch_stats.items as f64 / train_time.max(1e-9),
                extra: data.eval_metrics(&ev),
            };
            // Accuracies only for models that score any (regression losses count none).
            let scored = rec.train_accuracy > 0.0 || rec.eval_accuracy > 0.0;
            let acc = |a: f64| if scored { format!(" acc {a:.4}") } else { String::new() };
            say(format!(
                "epoch {} step {}: train loss {:.4}{} | eval loss {:.4}{}",
                rec.epoch,
                rec.step,
                rec.train_loss,
                acc(rec.train_accuracy),
                rec.eval_loss,
                acc(rec.eval_accuracy)
            ));
            state.train_seconds += train_time;
            let improved = state.best.is_none_or(|b| rec.eval_loss < b.eval_loss);
            if improved {
                state.best = Some(Best { epoch: rec.epoch, step: rec.step, eval_loss: rec.eval_loss });
            }
            state.epochs.push(rec);
            if cfg.keep_best && improved {
                if let Some(bd) = &best_dir {
                    save_model(bd, &model)?;
                }
                best_model = Some(model.clone());
            }
            if let Some(dir) = &ckpt {
                save_checkpoint(dir, &model, &optim, &state)?;
                write_outputs(cfg.out.as_ref().unwrap(), &state)?;
            }
            epoch_stats = Stats::default();
            epoch_start = Instant::now();
            train_time = 0.0;
            let since = evals_since_best(&state);
            if cfg.patience.is_some_and(|p| since >= p) && state.step < end {
                say(format!("early stop: no lower evaluation loss in {since} evaluations"));
                break;
            }
        }
    }
    bar.finish_and_clear();
    if let (true, Some(best)) = (cfg.keep_best, best_model) {
        model = best;
    }
    Ok(Fitted { model, state })
}

/// Evaluations recorded after the best one (0 when the latest is the best, or none is).
fn evals_since_best(state: &RunState) -> usize {
    state.best.map_or(0, |b| state.epochs.iter().filter(|e| e.step > b.step).count())
}

/// metrics.json and loss.png for a run state.
pub fn write_outputs(out: &Path, state: &RunState) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
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
    write_atomic(&out.join("metrics.json"), &serde_json::to_vec_pretty(&metrics).unwrap())?;
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
