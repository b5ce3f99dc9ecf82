//! End-to-end runs of the `ssm-graph` binary on a written graph: train over seeds, eval,
//! predict, embed, the scale check, and bad input.

mod common;

use common::{ok, one_error_line, usage_error_line};
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ssm-graph"))
}

/// Three 20-node communities (ring + chords inside, a few bridges), features hinting the class.
fn write_graph(d: &Path) -> [PathBuf; 3] {
    std::fs::create_dir_all(d).unwrap();
    let (mut e, mut f, mut l) =
        (String::from("src,dst\n"), String::from("node,feature,value\n"), String::from("node,label\n"));
    for c in 0..3 {
        for i in 0..20 {
            let v = c * 20 + i;
            e.push_str(&format!("{v},{}\n{v},{}\n", c * 20 + (i + 1) % 20, c * 20 + (i + 7) % 20));
            f.push_str(&format!("{v},{},1\n{v},{},1\n", c, 3 + v % 5));
            l.push_str(&format!("{v},{c}\n"));
        }
        e.push_str(&format!("{},{}\n", c * 20, ((c + 1) % 3) * 20 + 5));
    }
    let paths = [d.join("edges.csv"), d.join("features.csv"), d.join("labels.csv")];
    for (p, t) in paths.iter().zip([e, f, l]) {
        std::fs::write(p, t).unwrap();
    }
    paths
}

fn files_args(p: &[PathBuf; 3]) -> Vec<String> {
    let s = |p: &PathBuf| p.display().to_string();
    vec!["--edges".into(), s(&p[0]), "--features".into(), s(&p[1]), "--labels".into(), s(&p[2])]
}

#[test]
fn train_over_seeds_then_eval_predict_and_embed() {
    let d = common::tmp("ssm-graph-cli", "flow");
    let files = write_graph(&d);
    let out = d.join("run");
    let o = bin()
        .arg("train")
        .args(files_args(&files))
        .args(["--model", "gcn", "--steps", "30", "--seeds", "2", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let text = ok(&o);
    assert!(text.contains("over 2 seed(s)"), "{text}");
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(m["runs"].as_array().unwrap().len(), 2);
    for k in ["test_accuracy", "val_accuracy", "test_accuracy_std"] {
        assert!(m[k].as_f64().is_some_and(|v| (0.0..=1.0).contains(&v)), "{k}: {m}");
    }
    assert!(out.join("seed-1/metrics.json").exists() && out.join("graph.json").exists());

    let ev = ok(&bin().args(["eval", "--model"]).arg(&out).output().unwrap());
    assert!(ev.contains("test accuracy"), "{ev}");
    let pr = ok(&bin().args(["predict", "--nodes", "0,25,59", "--model"]).arg(&out).output().unwrap());
    assert_eq!(pr.lines().count(), 4, "{pr}");
    assert!(pr.lines().nth(1).unwrap().starts_with("0,0,"), "{pr}");
    let emb = d.join("emb");
    ok(&bin().args(["embed", "--model"]).arg(&out).arg("--out").arg(&emb).output().unwrap());
    let csv = std::fs::read_to_string(emb.join("embeddings.csv")).unwrap();
    assert_eq!(csv.lines().count(), 61);
    assert!(image::open(emb.join("embeddings-pca.png")).is_ok());

    // Graph-Mamba with another registered mixer in its sequence branch.
    let gm = d.join("gm");
    let o = bin()
        .arg("train")
        .args(files_args(&files))
        .args(["--mixer", "s4d", "--steps", "3", "--out"])
        .arg(&gm)
        .output()
        .unwrap();
    assert!(ok(&o).contains("graph-mamba"));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn scale_reports_time_and_peak_memory() {
    let o = bin().args(["scale", "--nodes", "3000", "--steps", "2", "--model", "gcn"]).output().unwrap();
    let text = ok(&o);
    assert!(text.contains("3000 nodes") && text.contains("peak memory"), "{text}");
}

#[test]
fn bad_input_is_one_clear_error() {
    let d = common::tmp("ssm-graph-cli", "bad");
    let files = write_graph(&d);
    let o = bin().args(["train", "--data"]).arg(d.join("absent")).output().unwrap();
    one_error_line(&o, "not a folder");
    std::fs::write(&files[0], "src,dst\n0,1\n1,two\n").unwrap();
    let o = bin().arg("train").args(files_args(&files)).args(["--out"]).arg(d.join("x")).output().unwrap();
    one_error_line(&o, "edges.csv: line 3");
    assert!(!d.join("x").exists(), "no output directory for a failed load");
    let o = bin().args(["eval", "--model"]).arg(d.join("nothing")).output().unwrap();
    one_error_line(&o, "not a `ssm-graph train` output directory");
    let o = bin().args(["train", "--model", "gcn", "--mixer", "nope", "--data", "x"]).output().unwrap();
    usage_error_line(&o, "nope");
    let _ = std::fs::remove_dir_all(&d);
}
