//! End-to-end runs of the `ssm-timeseries` binary: forecasting on the generated series and on a
//! written CSV, forecast output, classification of written `.ts` files, and bad input.

mod common;

use common::{ok, one_error_line, usage_error_line};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ssm-timeseries"))
}

fn tmp(name: &str) -> std::path::PathBuf {
    common::tmp("ssm-ts-cli", name)
}

#[test]
fn forecast_train_eval_and_plot() {
    let d = tmp("fc");
    std::fs::create_dir_all(&d).unwrap();
    let csv = d.join("series.csv");
    let mut text = String::from("date,a,OT\n");
    for i in 0..400 {
        let t = i as f64;
        let (day, hour) = (1 + i / 24, i % 24);
        text.push_str(&format!(
            "2021-01-{day:02} {hour:02}:00:00,{},{}\n",
            (t / 5.0).sin(),
            (t / 7.0).cos() + 0.01 * t
        ));
    }
    std::fs::write(&csv, text).unwrap();
    let out = d.join("run");
    let o = bin()
        .args(["train", "--model", "dlinear", "--lookback", "24", "--horizon", "12", "--epochs", "2", "--data"])
        .arg(&csv)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let s = ok(&o);
    assert!(s.contains("test MSE"), "{s}");
    // hourly dates: a residual cycle of one day, which eval and forecast load back
    assert!(s.contains("residual cycle of 24 rows"), "{s}");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    // 20 % of 400 rows, lookback overlap: 80 + 24 rows → 104 − 36 + 1 windows
    assert_eq!(m["test_windows"], 69);
    // 2 epochs over 280 − 36 + 1 = 245 training windows at batch 32; tested with the best epoch's
    // model, which is kept in best/
    assert_eq!(m["steps"], 16);
    assert!(m["best"]["epoch"].as_u64().is_some_and(|e| e == 1 || e == 2), "{m}");
    assert!(out.join("best/model.bpk").exists());
    let mse = m["test_mse"].as_f64().unwrap();
    assert!(mse.is_finite() && mse > 0.0);
    let o = bin().args(["eval", "--model"]).arg(&out).output().unwrap();
    assert!(ok(&o).contains(&format!("test MSE {mse:.4}")));
    let o = bin().args(["forecast", "--vars", "OT,a", "--model"]).arg(&out).output().unwrap();
    ok(&o);
    let f = std::fs::read_to_string(out.join("forecast.csv")).unwrap();
    assert_eq!(f.lines().next().unwrap(), "step,date,OT_true,OT_forecast,a_true,a_forecast");
    assert_eq!(f.lines().count(), 1 + 24 + 12);
    assert!(out.join("forecast-OT.png").exists() && out.join("forecast-a.png").exists());
    // the generated default series trains too (S-Mamba, MS mode)
    let o = bin()
        .args(["train", "--model", "s-mamba", "--mode", "MS", "--d-model", "16", "--lookback", "48", "--horizon", "24"])
        .args(["--steps", "3", "--epochs", "1", "--out"])
        .arg(d.join("gen"))
        .output()
        .unwrap();
    assert!(ok(&o).contains("generated"));
    let _ = std::fs::remove_dir_all(&d);
}

/// `--model a+b`: each member trains into its own run directory at its own learning rate; the
/// ensemble's directory scores the mean of their forecasts, and eval / forecast load it whole.
#[test]
fn an_ensemble_trains_its_members_and_scores_their_mean() {
    let d = tmp("ens");
    let out = d.join("run");
    let o = bin()
        .args(["train", "--model", "dlinear+s-mamba", "--d-model", "16", "--lookback", "48", "--horizon", "24"])
        .args(["--steps", "4", "--epochs", "2", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let s = ok(&o);
    assert!(s.contains("ensemble member dlinear") && s.contains("ensemble member s-mamba"), "{s}");
    assert!(s.contains(", lr 1e-2") && s.contains(", lr 1e-4"), "{s}");
    let metrics = |p: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p.join("metrics.json")).unwrap()).unwrap()
    };
    let (e, a, b) = (metrics(&out), metrics(&out.join("dlinear")), metrics(&out.join("s-mamba")));
    assert_eq!(e["model"], "dlinear+s-mamba");
    assert_eq!(e["params"].as_u64().unwrap(), a["params"].as_u64().unwrap() + b["params"].as_u64().unwrap());
    let mse = |m: &serde_json::Value| m["test_mse"].as_f64().unwrap();
    assert!(mse(&e).is_finite() && (mse(&e) - mse(&a)).abs() > 1e-9 && (mse(&e) - mse(&b)).abs() > 1e-9);
    for (dir, m) in [(out.clone(), &e), (out.join("dlinear"), &a)] {
        let o = bin().args(["eval", "--model"]).arg(&dir).output().unwrap();
        assert!(ok(&o).contains(&format!("test MSE {:.4}", mse(m))), "{}", dir.display());
    }
    let o = bin().args(["forecast", "--model"]).arg(&out).output().unwrap();
    ok(&o);
    assert!(out.join("forecast.csv").exists());
    // `--lr` holds for every member
    let o = bin()
        .args(["train", "--model", "dlinear+s-mamba", "--d-model", "16", "--lookback", "48", "--horizon", "24"])
        .args(["--steps", "1", "--epochs", "1", "--lr", "3e-3", "--out"])
        .arg(d.join("lr"))
        .output()
        .unwrap();
    assert_eq!(ok(&o).matches(", lr 3e-3").count(), 2);
    let _ = std::fs::remove_dir_all(&d);
}

/// `--devices`: two CPU replicas train, checkpoint and evaluate like one device does.
#[test]
fn data_parallel_training_runs_on_two_replicas() {
    let d = tmp("ddp");
    let run = |devices: Option<&str>, name: &str| {
        let mut c = bin();
        c.args(["train", "--model", "s-mamba", "--d-model", "16", "--lookback", "48", "--horizon", "24"]);
        c.args(["--steps", "4", "--epochs", "2", "--out"]).arg(d.join(name));
        if let Some(list) = devices {
            c.args(["--devices", list]);
        }
        let m: serde_json::Value = {
            ok(&c.output().unwrap());
            serde_json::from_str(&std::fs::read_to_string(d.join(name).join("metrics.json")).unwrap()).unwrap()
        };
        m["test_mse"].as_f64().unwrap()
    };
    let (two, one) = (run(Some("cpu,cpu"), "two"), run(None, "one"));
    assert!(two.is_finite() && two > 0.0);
    // Twice the data per step: not the one-device run.
    assert!((two - one).abs() > 1e-6, "two replicas {two}, one device {one}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn classify_ts_files() {
    let d = tmp("cls");
    std::fs::create_dir_all(&d).unwrap();
    let mut train =
        String::from("@problemName Toy\n@dimensions 2\n@equalLength false\n@classLabel true up down\n@data\n");
    for i in 0..8 {
        let n = 5 + i % 4;
        let (s, lab) = if i % 2 == 0 { (1.0, "up") } else { (-1.0, "down") };
        let a: Vec<String> = (0..n).map(|t| format!("{}", s * t as f64)).collect();
        let b: Vec<String> = (0..n).map(|t| format!("{}", (t as f64).sin())).collect();
        train.push_str(&format!("{}:{}:{lab}\n", a.join(","), b.join(",")));
    }
    std::fs::write(d.join("T_TRAIN.ts"), &train).unwrap();
    std::fs::write(d.join("T_TEST.ts"), &train).unwrap();
    let out = d.join("run");
    let o = bin()
        .args([
            "classify-train",
            "--d-model",
            "16",
            "--layers",
            "1",
            "--steps",
            "40",
            "--epochs",
            "1",
            "--batch",
            "8",
            "--lr",
            "0.01",
            "--train",
        ])
        .arg(d.join("T_TRAIN.ts"))
        .arg("--test")
        .arg(d.join("T_TEST.ts"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(ok(&o).contains("test accuracy"));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(m["test_size"], 8);
    let o = bin().args(["classify-eval", "--model"]).arg(&out).output().unwrap();
    assert!(ok(&o).contains("on 8 cases"));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn bad_input_gives_one_error_line() {
    let o = bin().args(["train", "--data", "/no/such.csv", "--out"]).arg(tmp("x")).output().unwrap();
    one_error_line(&o, "/no/such.csv");
    let d = tmp("bad");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("s.csv"), "date,a\n1,2\n2,oops\n").unwrap();
    let o = bin().args(["train", "--data"]).arg(d.join("s.csv")).arg("--out").arg(d.join("r")).output().unwrap();
    one_error_line(&o, "s.csv");
    let o = bin().args(["train", "--model", "prophet", "--out"]).arg(d.join("r")).output().unwrap();
    usage_error_line(&o, "invalid value 'prophet'");
    std::fs::write(d.join("x.ts"), "@data\n1,2:zz\n").unwrap();
    let o = bin()
        .args(["classify-train", "--train"])
        .arg(d.join("x.ts"))
        .arg("--test")
        .arg(d.join("x.ts"))
        .output()
        .unwrap();
    one_error_line(&o, "x.ts");
    let _ = std::fs::remove_dir_all(&d);
}
