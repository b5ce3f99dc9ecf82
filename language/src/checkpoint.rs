//! Checkpoint directories in HuggingFace's layout: `config.json` + `model.safetensors` (or
//! sharded `model.safetensors.index.json` + shards), parameter names as transformers
//! (`backbone.embeddings.weight`, `backbone.layers.N.mixer.*`, `backbone.norm_f.weight`,
//! `lm_head.weight`) or as the state-spaces originals (`backbone.embedding.weight`). Names are
//! mapped with burn-store's key remapping and PyTorch adapter (Linear weights transposed,
//! RMSNorm `weight` ↔ `gamma`); half-precision files are cast to f32.

use crate::config::LmConfig;
use crate::model::LanguageModel;
use burn::store::{
    BurnToPyTorchAdapter, ChainAdapter, FloatCastAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore,
};
use burn::tensor::{DType, Device};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A checkpoint problem, naming the file.
pub use ssm_core::error::FileError as CheckpointError;
use ssm_core::error::FileError;

/// Reads and parses `dir/config.json`.
pub fn read_config(dir: &Path) -> Result<LmConfig, CheckpointError> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| FileError::new(&path, e.to_string()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| FileError::new(&path, format!("invalid JSON: {e}")))?;
    LmConfig::from_json(&v).map_err(|e| FileError::new(&path, e.to_string()))
}

/// The weight files of a checkpoint directory.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, CheckpointError> {
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if !index.exists() {
        return Err(FileError::new(dir, "no model.safetensors or model.safetensors.index.json"));
    }
    let text = std::fs::read_to_string(&index).map_err(|e| FileError::new(&index, e.to_string()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| FileError::new(&index, format!("invalid JSON: {e}")))?;
    let map = v
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| FileError::new(&index, "no 'weight_map' object"))?;
    let files: BTreeSet<String> = map.values().filter_map(|f| f.as_str().map(String::from)).collect();
    if files.is_empty() {
        return Err(FileError::new(&index, "empty weight_map"));
    }
    Ok(files.into_iter().map(|f| dir.join(f)).collect())
}

fn load_store(path: &Path) -> SafetensorsStore {
    SafetensorsStore::from_file(path)
        .with_from_adapter(ChainAdapter::new(PyTorchToBurnAdapter, FloatCastAdapter::to(DType::F32)))
        .skip_enum_variants(true)
        .allow_partial(true)
        .with_key_remapping(r"^backbone\.embeddings?\.", "embedding.")
        .with_key_remapping(r"^backbone\.layers\.", "backbone.blocks.")
}

/// Loads the weights of `dir` into `model`; every parameter of the model must be found.
pub fn load_weights(dir: &Path, model: &mut LanguageModel) -> Result<(), CheckpointError> {
    let mut applied = BTreeSet::new();
    let mut missing = BTreeSet::new();
    for file in weight_files(dir)? {
        if !file.exists() {
            return Err(FileError::new(&file, "weight file listed in the index is missing"));
        }
        let mut store = load_store(&file);
        let r = model.load_from(&mut store).map_err(|e| FileError::new(&file, format!("cannot read: {e}")))?;
        if let Some(e) = r.errors.first() {
            return Err(FileError::new(&file, format!("does not match the model: {e}")));
        }
        applied.extend(r.applied);
        missing.extend(r.missing.into_iter().map(|(p, _)| p));
    }
    let missing: Vec<_> = missing.difference(&applied).cloned().collect();
    if !missing.is_empty() {
        return Err(FileError::new(
            dir,
            format!("checkpoint lacks {} parameter(s), e.g. {}", missing.len(), missing[0]),
        ));
    }
    Ok(())
}

/// Builds the model `dir/config.json` describes and loads its weights.
pub fn load(dir: &Path, device: &Device) -> Result<(LanguageModel, LmConfig), CheckpointError> {
    if !dir.is_dir() {
        return Err(FileError::new(dir, "not a directory"));
    }
    let cfg = read_config(dir)?;
    let mut model = cfg.init(device);
    load_weights(dir, &mut model)?;
    Ok((model, cfg))
}

/// Writes `config.json` and `model.safetensors` (transformers' names and layouts) into `dir`.
/// Files are written under temporary names and renamed, so a failure leaves no half-written file.
pub fn save(dir: &Path, model: &LanguageModel, cfg: &LmConfig) -> Result<(), CheckpointError> {
    std::fs::create_dir_all(dir).map_err(|e| FileError::new(dir, e.to_string()))?;
    let tmp = dir.join("model.safetensors.tmp");
    let mut store = SafetensorsStore::from_file(&tmp)
        .with_to_adapter(BurnToPyTorchAdapter)
        .skip_enum_variants(true)
        .overwrite(true)
        .with_key_remapping(r"^embedding\.", "backbone.embeddings.")
        .with_key_remapping(r"^backbone\.blocks\.", "backbone.layers.");
    model.save_into(&mut store).map_err(|e| FileError::new(&tmp, format!("cannot write: {e}")))?;
    let cfg_tmp = dir.join("config.json.tmp");
    let json = serde_json::to_vec_pretty(&cfg.to_json()).expect("config serialises");
    std::fs::write(&cfg_tmp, json).map_err(|e| FileError::new(&cfg_tmp, e.to_string()))?;
    std::fs::rename(&tmp, dir.join("model.safetensors")).map_err(|e| FileError::new(dir, e.to_string()))?;
    std::fs::rename(&cfg_tmp, dir.join("config.json")).map_err(|e| FileError::new(dir, e.to_string()))?;
    Ok(())
}
