//! Language-model directories written before backbones were lists of layers (`config.json`
//! with `"ssm": {"n_layers", "block"}`, by the code of commit 59b02b0; in
//! `core/tests/regressions/legacy/lm-*`) load and give the logits they gave then.

use burn::tensor::{Device, Int, Tensor, TensorData};
use ssm_core::fixtures::{max_abs_diff, values_f64};
use ssm_language::checkpoint;
use std::path::PathBuf;

#[test]
fn language_models_saved_by_earlier_code_load_with_the_same_logits() {
    let dev = Device::flex();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../core/tests/regressions/legacy");
    let mut n = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.file_name().unwrap().to_string_lossy().starts_with("lm-") {
            continue;
        }
        let (model, cfg) = checkpoint::load(&dir, &dev).unwrap();
        assert_eq!(cfg.backbone.layers.len(), 2, "{}", dir.display());
        let tokens: Vec<i64> = (0..10).map(|i| (i * 3 + 1) % 7).collect();
        let logits = model.forward(Tensor::<2, Int>::from_data(TensorData::new(tokens, [1, 10]), &dev));
        let want: Vec<f64> = serde_json::from_str(&std::fs::read_to_string(dir.join("logits.json")).unwrap()).unwrap();
        let err = max_abs_diff(&values_f64(logits), &want);
        assert!(err < 1e-5, "{}: logits differ by {err:.2e}", dir.display());
        n += 1;
    }
    assert_eq!(n, 4, "one legacy LM directory per family of that time");
}
