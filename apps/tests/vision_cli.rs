//! End-to-end runs of the `ssm-vision` binary: a tiny train → eval → predict cycle on the
//! generated shapes task, a tiny video run on frame folders, and its error handling.

use std::path::Path;
mod common;

use common::{ok, one_error_line, usage_error_line};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ssm-vision"))
}

fn tmp(name: &str) -> std::path::PathBuf {
    common::tmp("ssm-vision-cli", name)
}

fn metrics(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json")).unwrap()).unwrap()
}

#[test]
fn train_eval_predict_on_generated_shapes() {
    let out = tmp("shapes");
    let tiny = ["--width", "16", "--depth", "1", "--steps", "6", "--epochs", "2", "--batch", "8", "--eval-size", "40"];
    let o = bin().args(["train", "--model", "vim"]).args(tiny).arg("--out").arg(&out).output().unwrap();
    let stdout = ok(&o);
    assert!(stdout.contains("test accuracy"), "{stdout}");
    let m = metrics(&out);
    let acc = m["test_accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc), "{acc}");
    assert_eq!(m["test_size"], 1000);
    assert!(m["params"].as_u64().unwrap() > 1000);
    assert!(m["images_per_second"].as_f64().unwrap() > 0.0);
    let cm = m["confusion"].as_array().unwrap();
    let total: u64 = cm.iter().flat_map(|r| r.as_array().unwrap()).map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(total, 1000);
    for f in ["confusion.png", "loss.png", "vision.json", "checkpoint/model.bpk"] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    // eval on the stored test split reproduces the trained model's test accuracy
    let e = out.join("eval");
    let o = bin().args(["eval", "--model"]).arg(&out).arg("--out").arg(&e).output().unwrap();
    ok(&o);
    let ev: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(e.join("eval.json")).unwrap()).unwrap();
    assert_eq!(ev["test_accuracy"].as_f64().unwrap(), acc);
    // predict: top-2 classes with probabilities
    let img = out.join("x.png");
    image::GrayImage::from_fn(28, 28, |x, y| {
        image::Luma([if (8..20).contains(&x) && (8..20).contains(&y) { 250 } else { 5 }])
    })
    .save(&img)
    .unwrap();
    let o = bin().args(["predict", "--top-k", "2", "--model"]).arg(&out).arg(&img).output().unwrap();
    let line = ok(&o);
    let probs: Vec<f64> = line
        .trim()
        .rsplit(':')
        .next()
        .unwrap()
        .split(',')
        .map(|p| p.trim().rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(probs.len(), 2, "{line}");
    assert!(probs[0] >= probs[1] && probs[0] + probs[1] <= 1.0 + 1e-6, "{line}");
    // resume: continuing a finished run trains nothing more and reports again
    let o = bin().args(["train", "--model", "vim", "--resume"]).args(tiny).arg("--out").arg(&out).output().unwrap();
    ok(&o);
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn train_video_on_frame_folders_and_eval_video() {
    let root = tmp("frames");
    for split in ["train", "test"] {
        for (class, v) in [("dark", 20u8), ("bright", 220u8)] {
            for clip in 0..2 {
                for f in 0..4 {
                    let p = root.join(format!("{split}/{class}/clip{clip}/f{f}.png"));
                    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                    image::GrayImage::from_fn(16, 16, |x, _| image::Luma([v.saturating_add((x as u8) * f)]))
                        .save(&p)
                        .unwrap();
                }
            }
        }
    }
    let out = root.join("run");
    let o = bin()
        .args(["train-video", "--model", "s4nd", "--frames", "4", "--size", "16", "--width", "8", "--depth", "1"])
        .args(["--patch", "4", "--steps", "3", "--epochs", "1", "--batch", "4", "--data"])
        .arg(&root)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    ok(&o);
    assert_eq!(metrics(&out)["test_size"], 4);
    let o = bin().args(["eval-video", "--model"]).arg(&out).output().unwrap();
    let stdout = ok(&o);
    assert!(stdout.contains("on 4 items"), "{stdout}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn bad_input_gives_one_error_line() {
    let o = bin().args(["train", "--data", "/no/such/dir", "--out"]).arg(tmp("x")).output().unwrap();
    one_error_line(&o, "/no/such/dir");
    let d = tmp("corrupt");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("train-images-idx3-ubyte"), [0u8, 0, 8, 3, 0, 0]).unwrap();
    std::fs::write(d.join("train-labels-idx1-ubyte"), [0u8, 0, 8, 1, 0, 0, 0, 0]).unwrap();
    std::fs::write(d.join("t10k-images-idx3-ubyte"), [0u8, 0, 8, 3, 0, 0]).unwrap();
    let o = bin().args(["train", "--data"]).arg(&d).arg("--out").arg(d.join("run")).output().unwrap();
    one_error_line(&o, "train-images-idx3-ubyte");
    assert!(!d.join("run").exists(), "no outputs for bad input");
    let o = bin().args(["train", "--model", "resnet", "--out"]).arg(d.join("run")).output().unwrap();
    usage_error_line(&o, "invalid value 'resnet'");
    let o = bin().args(["eval", "--model"]).arg(&d).output().unwrap();
    one_error_line(&o, "vision.json");
    let o =
        bin().args(["train-video", "--model", "vmamba", "--steps", "1", "--out"]).arg(d.join("v")).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let _ = std::fs::remove_dir_all(&d);
}
