//! Checkpoints written before the registry, the layer list and the MoE field existed (by the
//! code of commit 59b02b0, `tests/regressions/legacy/token-*`: a two-layer token model per family,
//! its config, its burn record and its logits on fixed tokens) load and give the same logits.

use burn::tensor::{Device, Int, Tensor, TensorData};
use ssm_core::fixtures::{max_abs_diff, values_f64};
use ssm_core::models::TokenModelConfig;
use ssm_core::train::load_checkpoint;
use std::path::PathBuf;

fn legacy_dirs(prefix: &str) -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/regressions/legacy");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn token_models_saved_by_earlier_code_load_with_the_same_logits() {
    let dev = Device::flex();
    let dirs = legacy_dirs("token-");
    assert_eq!(dirs.len(), 4, "one legacy checkpoint per family of that time");
    for dir in dirs {
        let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
        let cfg: TokenModelConfig = serde_json::from_str(&text).unwrap();
        let model = load_checkpoint(&dir, cfg.init(&dev)).unwrap();
        let tokens: Vec<i64> = (0..10).map(|i| (i * 3 + 1) % 7).collect();
        let logits = model.forward(Tensor::<2, Int>::from_data(TensorData::new(tokens, [1, 10]), &dev));
        let want: Vec<f64> = serde_json::from_str(&std::fs::read_to_string(dir.join("logits.json")).unwrap()).unwrap();
        let err = max_abs_diff(&values_f64(logits), &want);
        assert!(err < 1e-5, "{}: logits differ by {err:.2e}", dir.display());
    }
}
