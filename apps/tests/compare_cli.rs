//! End-to-end runs of the `ssm-compare` binary on tiny budgets, and its error handling.

mod common;

use common::one_error_line;
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
        .args(["--d-model", "16", "--layers", "1", "--test-size", "16", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(m["task"], "mqar");
    let r = m["results"].as_array().unwrap();
    assert_eq!(r.len(), 3);
    for (x, name) in r.iter().zip(["mamba", "s4d", "attention"]) {
        assert_eq!(x["mixer"], name);
        let acc = x["test_accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc));
        assert!(x["params"].as_u64().unwrap() > 0);
        assert!(x["tokens_per_second"].as_f64().unwrap() > 0.0);
        assert!(x["train_seconds"].as_f64().unwrap() > 0.0);
    }
    assert!(out.join("compare.png").exists());
    assert!(out.join("mamba/loss.png").exists() && out.join("mamba/checkpoint/model.bpk").exists());
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
    one_error_line(&bin().args(["--task", "sorting"]).output().unwrap(), "unknown task 'sorting'");
    let o = bin().args(["--task", "listops", "--data", "/nonexistent/listops"]).output().unwrap();
    one_error_line(&o, "/nonexistent/listops");
    one_error_line(&bin().args(["--mixers", "mamba,lstm"]).output().unwrap(), "unknown mixer 'lstm'");
}
