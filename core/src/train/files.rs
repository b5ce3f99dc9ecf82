//! The runner's files: checkpoints (model record + safetensors, optimizer, run state), the kept
//! best model, metrics.json and the loss plot. A file is written to a temporary name, flushed to
//! disk (fsync) and renamed; a checkpoint or best-model directory is written whole into a
//! staging directory, flushed, and swapped in by renames — so after a crash or `kill -9` at any
//! instant a reader finds the previous complete checkpoint or the new one, never a mix.

use super::RunState;
use crate::error::{FileError, catch_quietly};
use crate::plot;
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use std::path::{Path, PathBuf};

pub(super) fn io_err(path: &Path, e: impl std::fmt::Display) -> FileError {
    FileError::new(path, e.to_string())
}

/// Flushes a file or directory to disk.
fn sync(path: &Path) -> Result<(), FileError> {
    std::fs::File::open(path).and_then(|f| f.sync_all()).map_err(|e| io_err(path, e))
}

/// Flushes the directory holding `path` (so a rename in it is durable); best effort.
fn sync_parent(path: &Path) {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let _ = sync(parent);
    }
}

/// Writes `bytes` to `path` through a temporary file, fsync and a rename (never a half-written
/// file, even after a crash).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| io_err(&tmp, e))?;
    sync(&tmp)?;
    std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))?;
    sync_parent(path);
    Ok(())
}

/// `dir` with `suffix` appended to its name (`checkpoint` → `checkpoint.old`).
fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(suffix);
    dir.with_file_name(name)
}

/// Replaces directory `dir` by what `write` puts into a fresh staging directory, flushed first;
/// the old one is renamed aside, the new one into place, then the old one removed. A crash
/// between the two renames leaves `dir.old` complete, which [`checkpoint_in`] falls back to.
fn replace_dir(dir: &Path, write: impl FnOnce(&Path) -> Result<(), FileError>) -> Result<(), FileError> {
    let (stage, old) = (sibling(dir, ".tmp"), sibling(dir, ".old"));
    if stage.exists() {
        std::fs::remove_dir_all(&stage).map_err(|e| io_err(&stage, e))?;
    }
    std::fs::create_dir_all(&stage).map_err(|e| io_err(&stage, e))?;
    write(&stage)?;
    for entry in std::fs::read_dir(&stage).map_err(|e| io_err(&stage, e))? {
        sync(&entry.map_err(|e| io_err(&stage, e))?.path())?;
    }
    sync(&stage)?;
    if dir.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| io_err(&old, e))?;
        }
        std::fs::rename(dir, &old).map_err(|e| io_err(dir, e))?;
    }
    std::fs::rename(&stage, dir).map_err(|e| io_err(dir, e))?;
    sync_parent(dir);
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| io_err(&old, e))?;
    }
    Ok(())
}

/// The complete checkpoint directory at `dir`: `dir` itself, or `dir.old` when a crash came
/// between the two renames of [`replace_dir`].
pub fn checkpoint_in(dir: &Path) -> PathBuf {
    let old = sibling(dir, ".old");
    if !dir.exists() && old.exists() { old } else { dir.to_path_buf() }
}

/// Writes `model.bpk` (burn's record: keeps parameter ids, so the optimizer state re-attaches on
/// resume) and `model.safetensors` (the same weights for other tools) into `dir`.
fn write_model<M: Module>(dir: &Path, model: &M) -> Result<(), FileError> {
    let bpk = dir.join("model.bpk");
    model.clone().save_file(&bpk).map_err(|e| io_err(&bpk, format!("{e:?}")))?;
    let st = dir.join("model.safetensors");
    let mut store = SafetensorsStore::from_file(&st).overwrite(true);
    model.save_into(&mut store).map_err(|e| io_err(&st, format!("{e:?}")))
}

/// Replaces the model directory `dir` (see [`replace_dir`]).
pub(super) fn save_model<M: Module>(dir: &Path, model: &M) -> Result<(), FileError> {
    replace_dir(dir, |stage| write_model(stage, model))
}

/// Replaces the checkpoint directory `dir`: model, optimizer and run state together.
pub(super) fn save_checkpoint<M: Module>(
    dir: &Path,
    model: &M,
    optim: &ModuleOptimizer,
    state: &RunState,
) -> Result<(), FileError> {
    replace_dir(dir, |stage| {
        write_model(stage, model)?;
        let op = stage.join("optimizer.bin");
        optim.save(&op).map_err(|e| io_err(&op, format!("{e:?}")))?;
        let json = serde_json::to_vec_pretty(state).map_err(|e| io_err(stage, e))?;
        std::fs::write(stage.join("state.json"), json).map_err(|e| io_err(stage, e))
    })
}

/// The directory holding a finished run's model: `out/best/` when the run kept its best
/// evaluation (see [`TrainConfig::keep_best`]), else `out/checkpoint/`.
pub fn model_dir(out: &Path) -> PathBuf {
    let best = checkpoint_in(&out.join("best"));
    if best.join("model.bpk").exists() { best } else { checkpoint_in(&out.join("checkpoint")) }
}

/// Restores a checkpoint's model record (`model.bpk`) into `model`.
pub fn load_checkpoint<M: Module>(dir: &Path, model: M) -> Result<M, FileError> {
    let path = dir.join("model.bpk");
    if !path.exists() {
        return Err(FileError::new(&path, "no checkpoint"));
    }
    // burn's record reader asserts on some corrupt records: a panic there is this file's error
    match catch_quietly(|| model.try_load_file(&path)) {
        Ok(r) => r.map_err(|e| io_err(&path, format!("cannot load into this model: {e:?}"))),
        Err(panic) => Err(io_err(&path, format!("corrupt model record ({panic})"))),
    }
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
pub fn resume<M: Module>(
    dir: &Path,
    model: M,
    optim: ModuleOptimizer,
) -> Result<(M, ModuleOptimizer, RunState), FileError> {
    let dir = &checkpoint_in(dir);
    let sp = dir.join("state.json");
    if !sp.exists() {
        eprintln!("no checkpoint in {}: starting afresh", dir.display());
        return Ok((model, optim, RunState::default()));
    }
    let text = std::fs::read_to_string(&sp).map_err(|e| io_err(&sp, e))?;
    let state: RunState = serde_json::from_str(&text).map_err(|e| io_err(&sp, e))?;
    let model = load_checkpoint(dir, model)?;
    let op = dir.join("optimizer.bin");
    let optim = match catch_quietly(|| optim.load(&op)) {
        Ok(r) => r.map_err(|e| io_err(&op, format!("{e:?}")))?,
        Err(panic) => return Err(io_err(&op, format!("corrupt optimizer state ({panic})"))),
    };
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
