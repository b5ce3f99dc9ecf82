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
use ssm_core::error::{FileError, catch_quietly};

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
    check_sizes(dir, &cfg)?;
    let cfg_path = dir.join("config.json");
    let mut model = catch_quietly(|| cfg.init(device))
        .map_err(|e| FileError::new(&cfg_path, format!("describes a model that cannot be built: {e}")))?;
    load_weights(dir, &mut model)?;
    Ok((model, cfg))
}

/// Every size `config.json` names (any integer in the model's description) must be at most the
/// largest dimension of a tensor in the weight files (or 4096), and the layers at most the
/// tensors: a corrupt or hostile config cannot make the loader allocate a model the files could
/// never fill.
fn check_sizes(dir: &Path, cfg: &LmConfig) -> Result<(), CheckpointError> {
    let (mut largest, mut tensors) = (4096u64, 0usize);
    for file in weight_files(dir)? {
        for shape in tensor_shapes(&file)? {
            largest = largest.max(shape.iter().copied().max().unwrap_or(0));
            tensors += 1;
        }
    }
    let path = dir.join("config.json");
    if cfg.backbone.layers.len() > tensors {
        return Err(FileError::new(&path, format!("{} layers for {tensors} tensors", cfg.backbone.layers.len())));
    }
    if let Some((key, n)) = integers(&cfg.to_json(), "").into_iter().find(|&(_, n)| n > largest) {
        let msg = format!("'{key}' = {n} is larger than any tensor dimension in the weights ({largest})");
        return Err(FileError::new(&path, msg));
    }
    Ok(())
}

/// The tensor shapes in a safetensors file's header (read alone, bounded to 100 MB).
fn tensor_shapes(path: &Path) -> Result<Vec<Vec<u64>>, CheckpointError> {
    use std::io::Read;
    let err = |m: String| FileError::new(path, m);
    let mut f = std::fs::File::open(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let mut n = [0u8; 8];
    f.read_exact(&mut n).map_err(|_| err("not a safetensors file (shorter than its header)".into()))?;
    let n = u64::from_le_bytes(n);
    if n > 100_000_000 || n > f.metadata().map(|m| m.len()).unwrap_or(0) {
        return Err(err(format!("not a safetensors file (header of {n} bytes)")));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header).map_err(|_| err("truncated safetensors header".into()))?;
    let v: serde_json::Value =
        serde_json::from_slice(&header).map_err(|e| err(format!("corrupt safetensors header: {e}")))?;
    let shapes = v.as_object().into_iter().flatten().filter(|(k, _)| *k != "__metadata__");
    Ok(shapes.map(|(_, t)| t["shape"].as_array().into_iter().flatten().filter_map(|d| d.as_u64()).collect()).collect())
}

/// Every integer in `v` with its key.
fn integers(v: &serde_json::Value, key: &str) -> Vec<(String, u64)> {
    match v {
        serde_json::Value::Number(n) => n.as_u64().map(|n| vec![(key.to_string(), n)]).unwrap_or_default(),
        serde_json::Value::Array(a) => a.iter().flat_map(|x| integers(x, key)).collect(),
        serde_json::Value::Object(o) => o.iter().flat_map(|(k, x)| integers(x, k)).collect(),
        _ => Vec::new(),
    }
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
