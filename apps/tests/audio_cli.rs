//! End-to-end runs of the `ssm-audio` binary on written WAV folders: train (raw and AuM), eval,
//! predict, spectrogram, and bad input.

mod common;

use common::{ok, one_error_line};
use ssm_audio::wav::{Audio, write_wav};
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ssm-audio"))
}

/// Two classes of tones at 16 kHz (resampled to the model's 8 kHz): `low/` 300–500 Hz,
/// `high/` 1.5–2.5 kHz, ten clips each.
fn write_folder(dir: &Path) -> PathBuf {
    for (class, base) in [("low", 300.0), ("high", 1500.0)] {
        let d = dir.join(class);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..10 {
            let f = base * (1.0 + i as f64 / 15.0);
            let samples =
                (0..4000).map(|n| (0.4 * (2.0 * std::f64::consts::PI * f * n as f64 / 16000.0).sin()) as f32).collect();
            write_wav(&d.join(format!("{i}.wav")), &Audio { samples, rate: 16000 }).unwrap();
        }
    }
    dir.to_path_buf()
}

#[test]
fn train_eval_predict_and_draw() {
    let d = common::tmp("ssm-audio-cli", "flow");
    let data = write_folder(&d.join("data"));
    for (model, extra) in [
        ("raw", vec!["--d-model", "8", "--stages", "2", "--layers", "1", "--mixer", "s4d"]),
        ("aum", vec!["--d-model", "16", "--layers", "1", "--patch", "4"]),
    ] {
        let out = d.join(model);
        let o = bin()
            .args([
                "train",
                "--model",
                model,
                "--seconds",
                "0.25",
                "--epochs",
                "2",
                "--batch",
                "4",
                "--test-fraction",
                "0.2",
            ])
            .args(extra)
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let text = ok(&o);
        assert!(text.contains("test accuracy") && text.contains("4 clips"), "{text}");
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
        assert!(m["test_accuracy"].as_f64().is_some_and(|v| (0.0..=1.0).contains(&v)), "{m}");
        assert_eq!(m["classes"], serde_json::json!(["high", "low"]));
        assert!(image::open(out.join("confusion.png")).is_ok());
        let ev = ok(&bin().args(["eval", "--model"]).arg(&out).arg("--data").arg(&data).output().unwrap());
        assert!(ev.contains("test accuracy"), "{ev}");
        let p = ok(&bin()
            .args(["predict", "--top-k", "2", "--model"])
            .arg(&out)
            .arg(data.join("low/3.wav"))
            .output()
            .unwrap());
        let line = p.lines().find(|l| l.contains("3.wav")).expect("a line per file");
        assert_eq!(line.split('\t').count(), 3, "{line}");
    }
    // SaShiMi on 0.032 s windows: trains, reports bits per sample, generates a WAV.
    let out = d.join("sashimi");
    let o = bin()
        .args(["train", "--model", "sashimi", "--d-model", "8", "--layers", "1", "--stages", "3", "--seconds", "0.032"])
        .args(["--epochs", "1", "--batch", "4", "--test-fraction", "0.2", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let text = ok(&o);
    assert!(text.contains("bits/sample"), "{text}");
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
    assert!(m["test_nll_bits"].as_f64().is_some_and(|b| b > 0.0 && b < 12.0), "{m}");
    assert!(m["unigram_entropy_bits"].as_f64().is_some_and(|b| b > 0.0 && b <= 8.0), "{m}");
    let wav = d.join("gen.wav");
    let g = ok(&bin()
        .args(["generate", "--seconds", "0.05", "--model"])
        .arg(&out)
        .arg("--out")
        .arg(&wav)
        .arg("--prompt")
        .arg(data.join("low/1.wav"))
        .output()
        .unwrap());
    assert!(g.contains("samples/s"), "{g}");
    let back = ssm_audio::wav::read_wav(&wav).unwrap();
    assert_eq!((back.rate, back.samples.len()), (8000, 400));
    // --count: several clips in one batch, numbered beside --out
    let many = d.join("many.wav");
    ok(&bin()
        .args(["generate", "--seconds", "0.01", "--count", "2", "--model"])
        .arg(&out)
        .arg("--out")
        .arg(&many)
        .output()
        .unwrap());
    for i in 1..=2 {
        let clip = ssm_audio::wav::read_wav(&d.join(format!("many-{i}.wav"))).unwrap();
        assert_eq!(clip.samples.len(), 80);
    }
    one_error_line(
        &bin().args(["eval", "--model"]).arg(&out).arg("--data").arg(&data).output().unwrap(),
        "use `generate`",
    );
    let png = d.join("spec.png");
    ok(&bin().arg("spectrogram").arg(data.join("high/0.wav")).arg("--out").arg(&png).output().unwrap());
    assert!(image::open(&png).is_ok() && image::open(d.join("spec-waveform.png")).is_ok());
}

#[test]
fn bad_input_is_one_clear_error() {
    let d = common::tmp("ssm-audio-cli", "bad");
    std::fs::create_dir_all(&d).unwrap();
    let missing = d.join("nowhere");
    one_error_line(
        &bin().args(["train", "--data"]).arg(&missing).arg("--out").arg(d.join("o")).output().unwrap(),
        "no such folder",
    );
    let junk = d.join("junk.wav");
    std::fs::write(&junk, b"RIFF....not a wave").unwrap();
    one_error_line(
        &bin().arg("spectrogram").arg(&junk).arg("--out").arg(d.join("x.png")).output().unwrap(),
        "junk.wav: not a readable WAV file",
    );
    one_error_line(
        &bin().args(["predict", "--model"]).arg(&d).arg(&junk).output().unwrap(),
        "not a trained ssm-audio run",
    );
    let one_class = d.join("one");
    std::fs::create_dir_all(one_class.join("a")).unwrap();
    write_wav(&one_class.join("a/x.wav"), &Audio { samples: vec![0.1; 100], rate: 8000 }).unwrap();
    one_error_line(
        &bin().args(["train", "--data"]).arg(&one_class).arg("--out").arg(d.join("o")).output().unwrap(),
        "need at least 2",
    );
}
