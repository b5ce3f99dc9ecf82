//! End-to-end runs of the `ssm-tabular` binary on written CSV files: train over seeds, eval,
//! predict, plots, and bad input.

mod common;

use common::{ok, one_error_line, usage_error_line};
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ssm-tabular"))
}

/// A header-less table: x (numeric, `?` sometimes), colour (categorical), label (`pos.`/`neg.`).
fn write_table(dir: &Path, name: &str, rows: usize, seed: usize) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let mut t = String::from("| a comment line\n");
    for i in 0..rows {
        let x = ((i * 37 + seed * 11) % 100) as f64 / 25.0 - 2.0;
        let c = ["red", "green", "blue"][(i + seed) % 3];
        let shift = if c == "red" { 1.0 } else { -0.5 };
        let xs = if i % 23 == 0 { "?".into() } else { format!("{x}") };
        t.push_str(&format!("{xs}, {c}, {}\n", if x + shift > 0.0 { "pos." } else { "neg." }));
    }
    let p = dir.join(name);
    std::fs::write(&p, t).unwrap();
    p
}

fn read_opts() -> Vec<&'static str> {
    vec!["--names", "x,colour", "--comment", "|", "--strip-suffix", "."]
}

#[test]
fn train_over_seeds_then_eval_and_predict() {
    let d = common::tmp("ssm-tab-cli", "flow");
    let (train, test) = (write_table(&d, "train.csv", 400, 0), write_table(&d, "test.csv", 120, 1));
    let out = d.join("run");
    let o = bin()
        .args(["train", "--model", "mambatab", "--epochs", "4", "--batch", "32", "--seeds", "2", "--data"])
        .arg(&train)
        .arg("--test")
        .arg(&test)
        .args(read_opts())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let text = ok(&o);
    assert!(text.contains("over 2 seed(s)"), "{text}");
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
    for k in ["test_accuracy", "test_auroc", "test_accuracy_std"] {
        assert!(m[k].as_f64().is_some_and(|v| (0.0..=1.0).contains(&v)), "{k}: {m}");
    }
    assert!(image::open(out.join("seed-0/roc.png")).is_ok());
    let ev = ok(&bin().args(["eval", "--model"]).arg(&out).output().unwrap());
    assert!(ev.contains("test accuracy") && ev.contains("120 rows"), "{ev}");
    let preds = d.join("p.csv");
    ok(&bin().arg("predict").arg(&test).arg("--model").arg(&out).arg("--out").arg(&preds).output().unwrap());
    let p = std::fs::read_to_string(&preds).unwrap();
    assert_eq!(p.lines().count(), 121);
    assert!(p.starts_with("row,prediction,p_neg,p_pos"), "{p}");

    // Regression on a generated table with a header, 64/16/20 split, the tokens model.
    let mut t = String::from("a,b,y\n");
    (0..300).for_each(|i| t.push_str(&format!("{},{},{}\n", i % 17, i % 5, 2 * (i % 17) + i % 5)));
    let reg = d.join("reg.csv");
    std::fs::write(&reg, t).unwrap();
    let rout = d.join("reg");
    let o = bin()
        .args(["train", "--model", "tokens", "--epochs", "3", "--data"])
        .arg(&reg)
        .arg("--out")
        .arg(&rout)
        .output()
        .unwrap();
    assert!(ok(&o).contains("RMSE"));
    assert!(image::open(rout.join("seed-0/pred_vs_true.png")).is_ok());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn bad_input_is_one_clear_error_and_writes_nothing() {
    let d = common::tmp("ssm-tab-cli", "bad");
    let train = write_table(&d, "train.csv", 100, 0);
    let out = d.join("run");
    let o = bin().args(["train", "--data"]).arg(d.join("absent.csv")).arg("--out").arg(&out).output().unwrap();
    one_error_line(&o, "absent.csv: no such file");
    let o = bin()
        .args(["train", "--target", "nope", "--data"])
        .arg(&train)
        .args(read_opts())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    one_error_line(&o, "no target column 'nope'");
    let mut text = std::fs::read_to_string(&train).unwrap();
    text.push_str("zzz, red, pos.\n");
    std::fs::write(&train, text).unwrap();
    let o = bin().args(["train", "--data"]).arg(&train).args(read_opts()).arg("--out").arg(&out).output().unwrap();
    one_error_line(&o, "column 'x' is numeric but holds 'zzz'");
    assert!(!out.exists(), "nothing written for a failed load");
    let o = bin().args(["train", "--split", "0.5,0.6,0.1", "--data"]).arg(&train).output().unwrap();
    one_error_line(&o, "--split");
    let o = bin().args(["eval", "--model"]).arg(d.join("nothing")).output().unwrap();
    one_error_line(&o, "not a `ssm-tabular train` output directory");
    let o = bin().args(["train", "--model", "xgboost", "--data", "x"]).output().unwrap();
    usage_error_line(&o, "xgboost");
    let _ = std::fs::remove_dir_all(&d);
}
