//! The runner's files: checkpoints (model record + safetensors, optimizer, run state), the kept
//! best model, metrics.json and the loss plot — each written through a temporary file and a
//! rename, so a reader never sees half of one.

use super::RunState;
use crate::error::FileError;
use crate::plot;
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use std::path::{Path, PathBuf};

pub(super) fn io_err(path: &Path, e: impl std::fmt::Display) -> FileError {
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
pub(super) fn save_model<M: Module>(dir: &Path, model: &M) -> Result<(), FileError> {
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

pub(super) fn save_checkpoint<M: Module>(
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

/// Model, optimizer and run state from a checkpoint directory (a fresh start when it has none).
pub(super) fn resume<M: Module>(
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
