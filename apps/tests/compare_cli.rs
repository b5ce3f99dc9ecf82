//! End-to-end runs of the `ssm-compare` binary on tiny budgets, and its error handling.

mod common;

use common::{one_error_line, usage_error_line};
use ssm_core::mixers::COMPARED_BY_DEFAULT;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ssm-compare"))
}

fn tmp(name: &str) -> std::path::PathBuf {
    common::tmp("ssm-compare", name)
}

#[test]
fn tiny_comparison_writes_metrics_and_plot() {
    let out = tmp("tiny");
    let o = bin()
        .args(["--task", "mqar", "--len", "24", "--n-pairs", "4", "--steps", "6", "--epochs", "2", "--batch", "8"])
        .args([
            "--d-model",
            "16",
            "--layers",
            "1",
            "--test-size",
            "16",
            "--cost-lens",
            "0",
            "--eval-lens",
            "0",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(m["task"], "mqar");
    let r = m["results"].as_array().unwrap();
    assert_eq!(r.len(), 3);
    for (x, name) in r.iter().zip(COMPARED_BY_DEFAULT) {
        assert_eq!(x["mixer"], *name);
        let acc = x["test_accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc));
        assert!(x["params"].as_u64().unwrap() > 0);
        assert!(x["tokens_per_second"].as_f64().unwrap() > 0.0);
        assert!(x["train_seconds"].as_f64().unwrap() > 0.0);
    }
    assert!(out.join("compare.png").exists());
    let first = out.join(COMPARED_BY_DEFAULT[0]);
    assert!(first.join("loss.png").exists() && first.join("checkpoint/model.bpk").exists());
    assert!(m["conclusion"].as_str().unwrap().starts_with("conclusion: at length 24 "), "{}", m["conclusion"]);
    assert_eq!(m["cost"].as_array().unwrap().len(), 0, "--cost-lens 0 times nothing");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn speed_writes_a_table() {
    let out = tmp("speed");
    let o = bin()
        .args(["speed", "--lens", "32,64", "--d-model", "16", "--layers", "1", "--reps", "1", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("speed.json")).unwrap()).unwrap();
    assert_eq!(m["results"].as_array().unwrap().len(), 6);
    assert!(out.join("speed.png").exists());
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn bad_input_is_one_clear_error() {
    usage_error_line(&bin().args(["--task", "sorting"]).output().unwrap(), "invalid value 'sorting'");
    let o = bin().args(["--task", "listops", "--data", "/nonexistent/listops"]).output().unwrap();
    one_error_line(&o, "/nonexistent/listops");
    usage_error_line(&bin().args(["--mixers", "lstm"]).output().unwrap(), "invalid value 'lstm'");
}

/// `--quick`: the default comparison end to end (length generalisation, cost, conclusion).
#[test]
fn quick_default_run_concludes_from_its_numbers() {
    let out = tmp("quick");
    let o = bin().args(["--quick", "--d-model", "16", "--out"]).arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(m["task"], "induction-heads");
    for r in m["results"].as_array().unwrap() {
        let by_len = r["test_accuracy_by_length"].as_object().unwrap();
        assert_eq!(by_len.len(), 2, "trained length and 4× it");
        assert_eq!(r["test_accuracy"], by_len["16"], "the headline accuracy is the trained length's");
    }
    let cost = m["cost"].as_array().unwrap();
    assert_eq!(cost.len(), 2 * COMPARED_BY_DEFAULT.len(), "every model at 256 and 1024 tokens");
    let conclusion = m["conclusion"].as_str().unwrap();
    assert!(conclusion.contains("at length 16 ") && conclusion.contains("at length 64 "), "{conclusion}");
    assert!(conclusion.contains("at 1024 tokens the "), "{conclusion}");
    assert!(out.join("compare.png").exists() && out.join("cost.png").exists());
    let _ = std::fs::remove_dir_all(&out);
}

/// `--suite long-range --quick`: the four tasks (ListOps, image, Pathfinder, text), each with
/// its results in its own folder; and `--params` picks widths for a parameter budget.
#[test]
fn long_range_suite_smoke_run() {
    use ssm_core::fixtures::data_or_skip;
    let (Some(listops), Some(image), Some(text)) = (
        data_or_skip("synthetic_tasks/listops"),
        data_or_skip("vision/fashion-mnist"),
        data_or_skip("language/tinyshakespeare/input.txt"),
    ) else {
        return;
    };
    let out = tmp("long-range");
    let o = bin()
        .args(["--suite", "long-range", "--quick", "--mixers", "s4d,attention", "--params", "20000", "--layers", "1"])
        .args(["--batch", "4", "--cost-lens", "0", "--data"])
        .arg(&listops)
        .arg("--image-data")
        .arg(&image)
        .arg("--text-data")
        .arg(&text)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("widths for about 20000 parameters"), "{stdout}");
    for task in ["listops", "image", "pathfinder", "text"] {
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join(task).join("metrics.json")).unwrap()).unwrap();
        assert_eq!(m["task"], task, "{m}");
        let results = m["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        for r in results {
            let acc = r["test_accuracy"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&acc), "{task}: {r}");
            assert!(r["params"].as_u64().unwrap() > 5000, "{task}: {r}");
        }
    }
}
