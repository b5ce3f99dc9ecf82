//! End-to-end runs of the `ssm-language` binary: generation from the HuggingFace fixtures, a tiny
//! train → generate → eval → info cycle with resume, and its error handling.

mod common;

use common::{ok, one_error_line};
use ssm_core::fixtures::fixture_or_skip;
use ssm_core::mixers::{AttentionConfig, HawkConfig, Mamba2Config, MambaConfig, MixerSpec};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ssm-language"))
}

fn tmp(name: &str) -> std::path::PathBuf {
    common::tmp("ssm-language", name)
}

#[test]
fn generate_print_ids_reproduces_the_transformers_continuation() {
    let Some(root) = fixture_or_skip("hf") else { return };
    for name in ["mamba-public", "mamba2-public"] {
        let dir = root.join(name);
        let j: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
        let ids = |k: &str| j[k].as_array().unwrap().iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",");
        let want = ids("greedy_continuation");
        let n = j["greedy_continuation"].as_array().unwrap().len().to_string();
        let o = bin()
            .args(["generate", "--model"])
            .arg(&dir)
            .args([
                "--prompt-ids",
                &ids("prompt_ids"),
                "--max-new-tokens",
                &n,
                "--greedy",
                "--print-ids",
                "--ignore-eos",
            ])
            .output()
            .unwrap();
        assert_eq!(ok(&o).trim(), want, "{name}");
        let info = ok(&bin().args(["info", "--model"]).arg(&dir).output().unwrap());
        assert!(
            info.contains("parameters:")
                && info.contains(if name.starts_with("mamba2") { Mamba2Config::NAME } else { MambaConfig::NAME })
        );
    }
}

#[test]
fn train_generate_eval_cycle_with_resume() {
    let out = tmp("cycle");
    std::fs::create_dir_all(&out).unwrap();
    let text = out.join("text.txt");
    let body: String = (0..400).map(|i| format!("line {} says {}\n", i % 17, i % 5)).collect();
    std::fs::write(&text, &body).unwrap();
    let model = out.join("model");
    let train = |extra: &[&str]| {
        bin()
            .args(["train", "--text"])
            .arg(&text)
            .args(["--d-model", "16", "--layers", "1", "--context", "16", "--batch", "4", "--steps", "8"])
            .args(["--epochs", "2", "--eval-windows", "4", "--sample-chars", "20", "--out"])
            .arg(&model)
            .args(extra)
            .output()
            .unwrap()
    };
    let first = ok(&train(&[]));
    assert!(first.contains("validation loss"), "{first}");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("metrics.json")).unwrap()).unwrap();
    assert!(m["val_loss"].as_f64().unwrap() > 0.0);
    assert!(m["val_bits_per_byte"].as_f64().unwrap() > 0.0);
    assert!(model.join("loss.png").exists() && model.join("sample.txt").exists());
    // resume: already at the final step, so it only re-evaluates nothing and re-saves
    let again = train(&["--resume"]);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert!(String::from_utf8_lossy(&again.stderr).contains("resuming from step 8"));
    let g = ok(&bin()
        .args(["generate", "--model"])
        .arg(&model)
        .args(["--prompt", "line 3", "--prompt", "line", "--max-new-tokens", "10", "--seed", "1"])
        .output()
        .unwrap());
    assert!(g.contains("line 3") && g.matches("---").count() == 2, "{g}");
    let e = ok(&bin()
        .args(["eval", "--model"])
        .arg(&model)
        .args(["--text"])
        .arg(&text)
        .args(["--context", "16"])
        .output()
        .unwrap());
    assert!(e.contains("perplexity") && e.contains("bits/byte"), "{e}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn bad_input_gives_one_clear_error() {
    let out = tmp("bad");
    std::fs::create_dir_all(&out).unwrap();
    let check = |args: &[&str], needle: &str| one_error_line(&bin().args(args).output().unwrap(), needle);
    let missing = out.join("nope.txt");
    check(&["train", "--text", missing.to_str().unwrap(), "--out", out.join("m").to_str().unwrap()], "nope.txt");
    check(&["generate", "--model", missing.to_str().unwrap(), "--prompt-ids", "1"], "nope.txt");
    let bin_file = out.join("binary.txt");
    std::fs::write(&bin_file, [0xff, 0xfe, 0x00]).unwrap();
    check(&["train", "--text", bin_file.to_str().unwrap(), "--out", out.join("m").to_str().unwrap()], "not UTF-8");
    if let Some(dir) = fixture_or_skip("hf/mamba-public") {
        check(&["generate", "--model", dir.to_str().unwrap(), "--prompt-ids", "1,x"], "'x'");
        check(&["generate", "--model", dir.to_str().unwrap(), "--prompt-ids", "99999"], "outside");
        check(&["generate", "--model", dir.to_str().unwrap(), "--prompt", "hi"], "no tokenizer");
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn mambabyte_and_a_named_hybrid_train_and_report_their_stack() {
    let out = tmp("byte-hybrid");
    std::fs::create_dir_all(&out).unwrap();
    let text = out.join("text.txt");
    std::fs::write(&text, "ça va, ça va bien — très bien.\n".repeat(60)).unwrap();
    let train = |dir: &str, extra: &[&str]| {
        let model = out.join(dir);
        let o = bin()
            .args(["train", "--text"])
            .arg(&text)
            .args(["--d-model", "16", "--context", "16", "--batch", "4", "--steps", "4", "--epochs", "1"])
            .args(["--eval-windows", "4", "--sample-chars", "10", "--out"])
            .arg(&model)
            .args(extra)
            .output()
            .unwrap();
        ok(&o);
        ok(&bin().args(["info", "--model"]).arg(&model).output().unwrap())
    };
    // MambaByte: Mamba over raw UTF-8 bytes (vocabulary 256).
    let byte = train("byte", &["--tokenizer", "byte", "--layers", "2"]);
    assert!(byte.contains("vocabulary: 256") && byte.contains("tokenizer:  byte"), "{byte}");
    assert!(byte.contains(&format!("({}*2)", MambaConfig::NAME)), "{byte}");
    // Griffin by name: two Hawk blocks then local attention (window 1024), 3 layers.
    let griffin = train("griffin", &["--layout", "griffin", "--layers", "3"]);
    let (h, a) = (HawkConfig::NAME, AttentionConfig::NAME);
    assert!(griffin.contains(&format!("({h}+mlp*2,{a}+mlp)")), "{griffin}");
    assert!(griffin.contains("\"window\":1024"), "{griffin}");
    let _ = std::fs::remove_dir_all(&out);
}
