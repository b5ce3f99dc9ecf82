//! The bad-input matrix over every binary: missing, empty, truncated, wrong-format files, wrong
//! shapes, NaN / inf values, unknown columns, labels out of range, zero-length sequences,
//! unknown mixers and options, an output folder that cannot be written, a checkpoint of another
//! model. Each must end with exactly one `error: …` line naming the file (or flag) and the
//! problem, a non-zero exit status, no panic, and nothing written to the output folder.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// One row of the matrix: a binary, its arguments (`{d}`: the data folder, `{out}`: this case's
/// output folder) and the text the error line must contain (`{d}` allowed).
struct Case {
    what: &'static str,
    bin: &'static str,
    args: &'static str,
    needle: &'static str,
}

const fn case(what: &'static str, bin: &'static str, args: &'static str, needle: &'static str) -> Case {
    Case { what, bin, args, needle }
}

const CASES: &[Case] = &[
    // ssm-vision
    case("missing", "ssm-vision", "train --data {d}/absent --out {out}", "{d}/absent"),
    case("empty", "ssm-vision", "train --data {d}/mnist-empty --out {out}", "train-images-idx3-ubyte"),
    case("truncated", "ssm-vision", "train --data {d}/mnist-trunc --out {out}", "train-images-idx3-ubyte"),
    case("wrong magic", "ssm-vision", "train --data {d}/mnist-magic --out {out}", "bad magic"),
    case("wrong shape", "ssm-vision", "train --data {d}/mnist-shape --out {out}", "train-labels-idx1-ubyte"),
    case("zero-size images", "ssm-vision", "train --data {d}/mnist-zero --out {out}", "train-images-idx3-ubyte"),
    case("NaN pixel", "ssm-vision", "train --data {d}/pixels-nan.csv --out {out}", "pixels-nan.csv"),
    case("label out of range", "ssm-vision", "train --data {d}/pixels-label.csv --out {out}", "pixels-label.csv"),
    case("unknown model", "ssm-vision", "train --model resnet --out {out}", "resnet"),
    case("unwritable output", "ssm-vision", "train --steps 1 --out {d}/afile/run", "{d}/afile"),
    case("another model's checkpoint", "ssm-vision", "eval --model {d}/lm", "vision.json"),
    case("corrupt image", "ssm-vision", "predict --model {d}/lm {d}/notimage.png", "{d}/lm"),
    // ssm-language
    case("missing", "ssm-language", "train --text {d}/absent.txt --out {out}", "{d}/absent.txt"),
    case("empty", "ssm-language", "train --text {d}/empty.txt --out {out}", "empty.txt"),
    case("not text", "ssm-language", "train --text {d}/binary.txt --out {out}", "binary.txt"),
    case("unknown mixer", "ssm-language", "train --mixer nope --out {out}", "nope"),
    case("unknown mixer option", "ssm-language", "train --mixer-opt nope=1 --out {out}", "nope"),
    case("unwritable output", "ssm-language", "train --steps 1 --out {d}/afile/run", "{d}/afile"),
    case("another model's checkpoint", "ssm-language", "generate --model {d}/vision-run", "config.json"),
    case("mismatched weights", "ssm-language", "generate --model {d}/lm-mismatch", "model.safetensors"),
    case("corrupt weights", "ssm-language", "generate --model {d}/lm-corrupt", "model.safetensors"),
    // ssm-audio
    case("missing", "ssm-audio", "train --data {d}/absent --out {out}", "{d}/absent"),
    case("empty wav", "ssm-audio", "train --data {d}/audio-empty --out {out}", ".wav"),
    case("truncated wav", "ssm-audio", "train --data {d}/audio-trunc --out {out}", ".wav"),
    case("not a wav", "ssm-audio", "spectrogram {d}/notwav.wav --out {out}", "notwav.wav"),
    case("NaN samples", "ssm-audio", "spectrogram {d}/nan.wav --out {out}", "nan.wav"),
    case("unknown mixer", "ssm-audio", "train --mixer nope --out {out}", "nope"),
    case("another model's checkpoint", "ssm-audio", "eval --model {d}/lm", "{d}/lm"),
    // ssm-timeseries
    case("missing", "ssm-timeseries", "train --data {d}/absent.csv --out {out}", "{d}/absent.csv"),
    case("empty", "ssm-timeseries", "train --data {d}/empty.csv --out {out}", "empty.csv"),
    case("NaN value", "ssm-timeseries", "train --data {d}/series-nan.csv --out {out}", "series-nan.csv"),
    case("ragged rows", "ssm-timeseries", "train --data {d}/series-ragged.csv --out {out}", "series-ragged.csv"),
    case("unknown variable", "ssm-timeseries", "train --data {d}/series.csv --target NOPE --out {out}", "NOPE"),
    case("too short", "ssm-timeseries", "train --data {d}/series-short.csv --out {out}", "series-short.csv"),
    case("unknown ensemble member", "ssm-timeseries", "train --model s-mamba+nope --out {out}", "nope"),
    case("ensemble member twice", "ssm-timeseries", "train --model dlinear+dlinear --out {out}", "twice"),
    case("dropout of 1", "ssm-timeseries", "train --dropout 1 --out {out}", "--dropout"),
    case("unknown mixer option", "ssm-timeseries", "train --mixer-opt nope=1 --out {out}", "nope"),
    case("unknown device", "ssm-timeseries", "train --device gpu:0 --out {out}", "gpu:0"),
    case("device not compiled in", "ssm-vision", "train --device cuda:1 --out {out}", "cuda:1"),
    case("unknown data-parallel device", "ssm-language", "train --devices cpu,gpu:0 --out {out}", "gpu:0"),
    case("--devices with --device", "ssm-tabular", "train --devices cpu,cpu --device cpu --out {out}", "--devices"),
    case("unwritable output", "ssm-timeseries", "train --steps 1 --out {d}/afile/run", "{d}/afile"),
    case("another model's checkpoint", "ssm-timeseries", "eval --model {d}/lm", "{d}/lm"),
    case(".ts: empty", "ssm-timeseries", "classify-train --train {d}/empty.ts --test {d}/T.ts --out {out}", "empty.ts"),
    case(
        ".ts: wrong dimensions",
        "ssm-timeseries",
        "classify-train --train {d}/dims.ts --test {d}/T.ts --out {out}",
        "dims.ts",
    ),
    case(
        ".ts: undeclared label",
        "ssm-timeseries",
        "classify-train --train {d}/label.ts --test {d}/T.ts --out {out}",
        "label.ts",
    ),
    case(
        ".ts: zero-length series",
        "ssm-timeseries",
        "classify-train --train {d}/zero.ts --test {d}/T.ts --out {out}",
        "zero.ts",
    ),
    // ssm-graph
    case("missing", "ssm-graph", "train --data {d}/absent --out {out}", "{d}/absent"),
    case("empty", "ssm-graph", "train --data {d}/graph-empty --out {out}", "edges.csv"),
    case("NaN feature", "ssm-graph", "train --data {d}/graph-nan --out {out}", "features.csv"),
    case("label not a class", "ssm-graph", "train --data {d}/graph-label --out {out}", "labels.csv"),
    case("wrong width", "ssm-graph", "train --data {d}/graph-cols --out {out}", "edges.csv"),
    case("huge node id", "ssm-graph", "train --data {d}/graph-huge --out {out}", "edges.csv"),
    case("unknown mixer", "ssm-graph", "train --model gcn --mixer nope --data {d}/graph", "nope"),
    case(
        "unwritable output",
        "ssm-graph",
        "train --model gcn --steps 1 --data {d}/graph --out {d}/afile/run",
        "{d}/afile",
    ),
    case("another model's checkpoint", "ssm-graph", "eval --model {d}/lm", "{d}/lm"),
    // ssm-tabular
    case("missing", "ssm-tabular", "train --data {d}/absent.csv --out {out}", "{d}/absent.csv"),
    case("empty", "ssm-tabular", "train --data {d}/empty.csv --out {out}", "empty.csv"),
    case("unknown column", "ssm-tabular", "train --data {d}/table.csv --target nope --out {out}", "nope"),
    case("inf value", "ssm-tabular", "train --data {d}/table-inf.csv --target y --out {out}", "table-inf.csv"),
    case("ragged rows", "ssm-tabular", "train --data {d}/table-ragged.csv --target y --out {out}", "table-ragged.csv"),
    case("unknown model", "ssm-tabular", "train --model xgboost --data {d}/table.csv", "xgboost"),
    case(
        "unwritable output",
        "ssm-tabular",
        "train --data {d}/table.csv --target y --steps 1 --out {d}/afile/run",
        "{d}/afile",
    ),
    case("another model's checkpoint", "ssm-tabular", "eval --model {d}/lm", "{d}/lm"),
    case("zero-length sequence", "ssm-language", "train --context 0 --out {out}", "--context"),
    case("zero batch", "ssm-language", "train --batch 0 --out {out}", "--batch"),
    case("no samples", "ssm-audio", "spectrogram {d}/silent.wav --out {out}", "silent.wav"),
    // ssm-kernels, ssm-lm-bench, ssm-fuzz
    case("zero-length sequence", "ssm-kernels", "--len 0", "--len"),
    case("unknown option", "ssm-kernels", "--no-such-flag", "--no-such-flag"),
    case("unknown mixer", "ssm-lm-bench", "--mixer nope", "nope"),
    case("unwritable output", "ssm-lm-bench", "--json {d}/afile/bench.json", "{d}/afile"),
    case("too few decode tokens to time", "ssm-lm-bench", "--decode-tokens 16", "--decode-tokens"),
    case("unknown target", "ssm-fuzz", "run nope --seconds 1 --out {out}", "nope"),
    // ssm-compare
    case("missing", "ssm-compare", "--task listops --data {d}/absent --out {out}", "{d}/absent"),
    case("label out of range", "ssm-compare", "--task listops --data {d}/listops --out {out}", "basic_train.tsv"),
    case("unknown mixer", "ssm-compare", "--mixers lstm --out {out}", "lstm"),
    case("unwritable output", "ssm-compare", "--quick --mixers s4d --out {d}/afile/run", "{d}/afile"),
];

fn bin_path(name: &str) -> &'static str {
    match name {
        "ssm-vision" => env!("CARGO_BIN_EXE_ssm-vision"),
        "ssm-language" => env!("CARGO_BIN_EXE_ssm-language"),
        "ssm-audio" => env!("CARGO_BIN_EXE_ssm-audio"),
        "ssm-timeseries" => env!("CARGO_BIN_EXE_ssm-timeseries"),
        "ssm-graph" => env!("CARGO_BIN_EXE_ssm-graph"),
        "ssm-tabular" => env!("CARGO_BIN_EXE_ssm-tabular"),
        "ssm-compare" => env!("CARGO_BIN_EXE_ssm-compare"),
        "ssm-kernels" => env!("CARGO_BIN_EXE_ssm-kernels"),
        "ssm-lm-bench" => env!("CARGO_BIN_EXE_ssm-lm-bench"),
        "ssm-fuzz" => env!("CARGO_BIN_EXE_ssm-fuzz"),
        other => panic!("no binary {other}"),
    }
}

/// What is wrong with a case's outcome, if anything.
fn judge(c: &Case, d: &Path, out: &Path) -> Option<String> {
    let fill = |s: &str| s.replace("{d}", &d.to_string_lossy()).replace("{out}", &out.to_string_lossy());
    let args: Vec<String> = fill(c.args).split_whitespace().map(String::from).collect();
    let o = Command::new(bin_path(c.bin)).args(&args).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    let last = lines.last().copied().unwrap_or("");
    let needle = fill(c.needle);
    let problem = if o.status.success() {
        "exited 0".to_string()
    } else if err.contains("panicked") || err.contains("RUST_BACKTRACE") {
        format!("panicked: {err}")
    } else if !matches!(o.status.code(), Some(1 | 2)) {
        format!("exit status {:?}", o.status)
    } else if lines.len() != 1 || !last.starts_with("error: ") {
        format!("expected one error line, got {} lines: {err}", lines.len())
    } else if !last.contains(&needle) {
        format!("error line lacks {needle:?}: {last}")
    } else if files_under(out) > 0 {
        format!("left {} file(s) in {}", files_under(out), out.display())
    } else {
        return None;
    };
    Some(format!("{} {} ({}): {problem}", c.bin, c.what, args.join(" ")))
}

fn files_under(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    rd.filter_map(|e| e.ok()).map(|e| e.path()).map(|p| if p.is_dir() { files_under(&p) } else { 1 }).sum()
}

#[test]
fn every_bad_input_gives_one_clear_error_line_and_no_outputs() {
    let d = common::tmp("ssm-bad-input", "matrix");
    write_inputs(&d);
    let failures: Vec<String> =
        CASES.iter().enumerate().filter_map(|(i, c)| judge(c, &d, &d.join(format!("out-{i}")))).collect();
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), CASES.len(), failures.join("\n"));
    std::fs::remove_dir_all(&d).unwrap();
}

fn put(path: PathBuf, bytes: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn idx(dims: &[u32], values: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 8, dims.len() as u8];
    dims.iter().for_each(|d| out.extend(d.to_be_bytes()));
    out.extend(values);
    out
}

fn mnist(d: &Path, name: &str, images: Vec<u8>, labels: Vec<u8>) {
    for split in ["train", "t10k"] {
        put(d.join(name).join(format!("{split}-images-idx3-ubyte")), &images);
        put(d.join(name).join(format!("{split}-labels-idx1-ubyte")), &labels);
    }
}

/// A WAV header for `frames` 16-bit mono frames at 8 kHz followed by `data`.
fn wav(frames: u32, data: &[u8]) -> Vec<u8> {
    let mut out = b"RIFF".to_vec();
    out.extend((36 + 2 * frames).to_le_bytes());
    out.extend(b"WAVEfmt ");
    out.extend(16u32.to_le_bytes());
    out.extend(1u16.to_le_bytes()); // PCM
    out.extend(1u16.to_le_bytes());
    out.extend(8000u32.to_le_bytes());
    out.extend(16000u32.to_le_bytes());
    out.extend(2u16.to_le_bytes());
    out.extend(16u16.to_le_bytes());
    out.extend(b"data");
    out.extend((2 * frames).to_le_bytes());
    out.extend(data);
    out
}

fn float_wav(samples: &[f32]) -> Vec<u8> {
    let mut out = wav(0, &[]);
    out[20] = 3; // IEEE float
    out[34] = 32;
    out[28..32].copy_from_slice(&32000u32.to_le_bytes());
    out[32] = 4;
    out[40..44].copy_from_slice(&(4 * samples.len() as u32).to_le_bytes());
    out[4..8].copy_from_slice(&(36 + 4 * samples.len() as u32).to_le_bytes());
    samples.iter().for_each(|s| out.extend(s.to_le_bytes()));
    out
}

fn series(rows: usize, bad: Option<(usize, &str)>) -> String {
    let mut s = String::from("date,a,OT\n");
    for i in 0..rows {
        let v = match bad {
            Some((r, v)) if r == i => v.to_string(),
            _ => format!("{}", (i as f64 / 5.0).sin()),
        };
        s.push_str(&format!("2021-01-01 {i},{v},{}\n", i as f64 * 0.01));
    }
    s
}

fn table(rows: usize, bad: Option<&str>) -> String {
    let mut s = String::from("x,c,y\n");
    for i in 0..rows {
        let x = if i == 7 { bad.unwrap_or("1.5") } else { "0.5" };
        s.push_str(&format!("{x},{},{}\n", ["a", "b"][i % 2], i % 3));
    }
    s
}

fn graph(d: &Path, name: &str, edges: &str, features: &str, labels: &str) {
    put(d.join(name).join("edges.csv"), edges);
    put(d.join(name).join("features.csv"), features);
    put(d.join(name).join("labels.csv"), labels);
    put(d.join(name).join("train_idx.txt"), "0\n1\n");
    put(d.join(name).join("val_idx.txt"), "2\n3\n");
    put(d.join(name).join("test_idx.txt"), "4\n5\n");
}

fn write_inputs(d: &Path) {
    put(d.join("afile"), "a file where a folder should be");
    for f in ["empty.csv", "empty.txt", "empty.ts"] {
        put(d.join(f), "");
    }
    let pixels: Vec<u8> = (0..32).collect();
    mnist(d, "mnist-empty", Vec::new(), idx(&[2], &[0, 1]));
    mnist(d, "mnist-trunc", idx(&[2, 4, 4], &pixels[..20]), idx(&[2], &[0, 1]));
    mnist(d, "mnist-magic", b"PK\x03\x04 a zip file".to_vec(), idx(&[2], &[0, 1]));
    mnist(d, "mnist-shape", idx(&[2, 4, 4], &pixels), idx(&[3], &[0, 1, 1]));
    mnist(d, "mnist-zero", idx(&[2, 0, 0], &[]), idx(&[2], &[0, 1]));
    put(d.join("pixels-nan.csv"), "0,1,2,nan,1\n0,1,2,3,0\n");
    put(d.join("pixels-label.csv"), "0,1,2,3,-1\n0,1,2,3,0\n");
    put(d.join("notimage.png"), "not a png");
    put(d.join("binary.txt"), [0xff, 0xfe, 0x00, 0x80, 0x81]);
    put(d.join("lm/config.json"), r#"{"model_type": "mamba", "hidden_size": 8}"#);
    put(d.join("vision-run/vision.json"), "{}");
    lm_runs(d);
    // FSDD names: recordings 0–4 of each digit and speaker are the test split, 5–49 training
    for (digit, index) in [(0, 0), (1, 0), (0, 10), (1, 10)] {
        let name = format!("{digit}_george_{index}.wav");
        put(d.join("audio-empty").join(&name), "");
        put(d.join("audio-trunc").join(&name), wav(800, &[0; 10]));
    }
    put(d.join("notwav.wav"), "RIFX not a wav");
    put(d.join("nan.wav"), float_wav(&[0.0, f32::NAN, 0.5, 0.1]));
    put(d.join("silent.wav"), wav(0, &[]));
    put(d.join("series.csv"), series(300, None));
    put(d.join("series-nan.csv"), series(300, Some((100, "nan"))));
    put(d.join("series-ragged.csv"), series(300, None).replacen("2021-01-01 5,", "2021-01-01 5,1,2,", 1));
    put(d.join("series-short.csv"), series(3, None));
    let ts = |rows: &str| {
        format!(
            "@problemName T\n@timeStamps false\n@univariate false\n@dimensions 2\n@equalLength true\n@seriesLength 3\n@classLabel true a b\n@data\n{rows}"
        )
    };
    put(d.join("T.ts"), ts("1,2,3:4,5,6:a\n3,2,1:6,5,4:b\n"));
    put(d.join("dims.ts"), ts("1,2,3:4,5,6:a\n3,2,1:b\n"));
    put(d.join("label.ts"), ts("1,2,3:4,5,6:a\n3,2,1:6,5,4:c\n"));
    put(d.join("zero.ts"), ts(":4,5,6:a\n3,2,1:6,5,4:b\n"));
    let (e, f, l) = (
        "0,1\n1,2\n2,3\n3,4\n4,5\n5,0\n",
        "0,1,0\n1,0,1\n2,1,1\n3,0,0\n4,1,0\n5,0,1\n",
        "0,0\n1,1\n2,0\n3,1\n4,0\n5,1\n",
    );
    graph(d, "graph", e, f, l);
    graph(d, "graph-empty", "", f, l);
    graph(d, "graph-nan", e, &f.replace("3,0,0", "3,nan,0"), l);
    graph(d, "graph-label", e, f, &l.replace("3,1", "3,1.5"));
    graph(d, "graph-cols", &e.replace("2,3", "2,3,4"), f, l);
    graph(d, "graph-huge", &e.replace("2,3", "2,4000000000"), f, l);
    put(d.join("table.csv"), table(60, None));
    put(d.join("table-inf.csv"), table(60, Some("inf")));
    put(d.join("table-ragged.csv"), table(60, None).replacen("0.5,b,1", "0.5,b", 1));
    for split in ["train", "val", "test"] {
        put(d.join(format!("listops/basic_{split}.tsv")), "Source\tTarget\n[MAX 2 9 ]\t12\n");
    }
}

/// A tiny trained language model, the same with a config that does not fit its weights, and
/// with its weights cut short.
fn lm_runs(d: &Path) {
    let run = d.join("lm-run");
    let o = Command::new(bin_path("ssm-language"))
        .args(["train", "--d-model", "8", "--layers", "1", "--context", "8", "--batch", "2", "--steps", "2"])
        .args(["--epochs", "1", "--eval-windows", "2", "--sample-chars", "0", "--threads", "1", "--out"])
        .arg(&run)
        .output()
        .unwrap();
    common::ok(&o);
    for (name, edit) in [("lm-mismatch", true), ("lm-corrupt", false)] {
        let dir = d.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["config.json", "model.safetensors"] {
            std::fs::copy(run.join(f), dir.join(f)).unwrap();
        }
        if edit {
            let cfg = std::fs::read_to_string(dir.join("config.json")).unwrap();
            std::fs::write(dir.join("config.json"), cfg.replace("\"d_state\": 16", "\"d_state\": 32")).unwrap();
        } else {
            let w = std::fs::read(dir.join("model.safetensors")).unwrap();
            std::fs::write(dir.join("model.safetensors"), &w[..w.len() / 2]).unwrap();
        }
    }
}
