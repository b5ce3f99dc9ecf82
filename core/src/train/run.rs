//! A run in progress: the steps of [`super::fit`] — start or resume, one optimiser step, the
//! time budget's re-planning, the end of an epoch (evaluate, record, keep the best, checkpoint),
//! early stopping, the result.

use super::files::{io_err, load_checkpoint, resume, save_checkpoint, save_model, write_outputs};
use super::parallel::Replicas;
use super::{
    Best, DataSource, EpochRecord, Fitted, RunState, Stats, TrainConfig, TrainError, Trainable, evals_since_best,
    evaluate,
};
use crate::error::{FileError, InvalidConfig};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use std::time::Instant;

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
pub(super) struct Run<M: Trainable> {
    model: M,
    optim: ModuleOptimizer,
    pub(super) state: RunState,
    cfg: TrainConfig,
    /// The best model so far (keep_best).
    best_model: Option<M>,
    /// `best_model` is newer than `out/best/`.
    best_unsaved: bool,
    /// This invocation's last step (stop_after, or the schedule's end).
    pub(super) end: usize,
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
    /// Copies of the model on `cfg.replicas` (data parallelism; none on one device).
    replicas: Replicas<M>,
}

impl<M: Trainable> Run<M> {
    /// A fresh run, or the one in `out/checkpoint/` when resuming.
    pub(super) fn start(mut model: M, cfg: &TrainConfig) -> Result<Self, TrainError> {
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
        let replicas = Replicas::new(&model, &cfg.replicas);
        let mut run = Run {
            replicas,
            model,
            optim,
            spent: state.train_seconds,
            state,
            per_epoch: 0,
            end: 0,
            max_steps: cfg.steps,
            cfg,
            best_model,
            best_unsaved: false,
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
        if self.budget.is_some() {
            // a warm-up sized for the configured steps must not outlast a schedule fitted to
            // the time budget: at most 5 % of it, so a slow model still reaches its peak rate
            self.cfg.warmup_steps = self.cfg.warmup_steps.min((steps / 20).max(1));
        }
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
    pub(super) fn train_step(
        &mut self,
        data: &mut dyn DataSource<M::Batch>,
        device: &Device,
    ) -> Result<(), TrainError> {
        let step = self.state.step;
        let lr = self.cfg.lr_at(step);
        let t0 = Instant::now();
        let (grads, stats) = self.replicas.gradients(&self.model, data, step, device);
        let lv = stats.loss();
        if !lv.is_finite() {
            return Err(self.diverged("the loss", lv));
        }
        let g2 = squared_norm(&self.model, &grads);
        if !g2.is_finite() {
            return Err(self.diverged("the gradient norm", g2.sqrt()));
        }
        self.model = self.optim.step(lr, self.model.clone(), grads);
        self.replicas.broadcast(&self.model);
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

    /// The error for a non-finite `what` at this step, saying what was kept.
    fn diverged(&self, what: &'static str, value: f64) -> TrainError {
        self.bar.abandon();
        let kept = match (&self.cfg.out, self.state.epochs.last()) {
            (Some(out), Some(e)) => format!(
                "the last checkpoint ({}, step {}) is kept: --resume continues from it (perhaps with a lower --lr)",
                out.join("checkpoint").display(),
                e.step
            ),
            _ => "no checkpoint had been written yet (perhaps lower --lr)".to_string(),
        };
        TrainError::Diverged { step: self.state.step, what, value, kept }
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

    pub(super) fn at_epoch_end(&self) -> bool {
        self.state.step.is_multiple_of(self.per_epoch) || self.state.step == self.cfg.steps
    }

    /// Evaluates, records the epoch, keeps the best model, writes the checkpoint.
    pub(super) fn end_epoch(&mut self, data: &dyn DataSource<M::Batch>, device: &Device) -> Result<(), TrainError> {
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
            self.best_model = Some(self.model.clone());
            self.best_unsaved = true;
        }
        let due = self.state.epochs.len().is_multiple_of(self.cfg.save_every.unwrap_or(1).max(1));
        let last = self.state.step >= self.end || self.patience_spent();
        if let (Some(out), true) = (&self.cfg.out, due || last) {
            if let (true, Some(best)) = (self.best_unsaved, &self.best_model) {
                save_model(&out.join("best"), best)?;
                self.best_unsaved = false;
            }
            save_checkpoint(&out.join("checkpoint"), &self.model, &self.optim, &self.state)?;
            write_outputs(out, &self.state)?;
        }
        (self.epoch_stats, self.epoch_train_time, self.epoch_start) = (Stats::default(), 0.0, Instant::now());
        Ok(())
    }

    /// Early stopping: `patience` evaluations without a lower evaluation loss.
    pub(super) fn out_of_patience(&self) -> bool {
        let stop = self.patience_spent();
        if stop {
            let since = evals_since_best(&self.state);
            self.say(format!("early stop: no lower evaluation loss in {since} evaluations"));
        }
        stop
    }

    fn patience_spent(&self) -> bool {
        self.cfg.patience.is_some_and(|p| evals_since_best(&self.state) >= p) && self.state.step < self.end
    }

    pub(super) fn finish(self) -> Fitted<M> {
        self.bar.finish_and_clear();
        let model = match (self.cfg.keep_best, self.best_model) {
            (true, Some(best)) => best,
            _ => self.model,
        };
        Fitted { model, state: self.state }
    }
}

/// Σ g² over every parameter's gradient: one read-back per step, NaN or ∞ when any gradient is.
fn squared_norm<M: Module>(model: &M, grads: &GradientsParams) -> f64 {
    struct Squares<'a> {
        grads: &'a GradientsParams,
        total: Option<Tensor<1>>,
    }
    impl ModuleVisitor for Squares<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                let s = g.square().sum();
                self.total = Some(match self.total.take() {
                    Some(t) => t + s,
                    None => s,
                });
            }
        }
    }
    let mut v = Squares { grads, total: None };
    model.visit(&mut v);
    v.total.map_or(0.0, |t| t.into_scalar::<f64>())
}
