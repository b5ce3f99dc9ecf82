//! The seed corpora, made here from code (no shared data file is copied): small valid inputs
//! of each format, written to `<corpus>/<target>/seed-N`.

use crate::bundle::pack;
use crate::targets::{Shape, TARGETS, tiny_lm};
use anyhow::{Context, Result};
use burn::module::Module;
use flate2::{Compression, write::GzEncoder};
use ssm_core::device::device_by_name;
use ssm_core::train::{TrainConfig, fit};
use ssm_language::data::TextData;
use ssm_language::{Tokenizer, checkpoint};
use std::io::Write;
use std::path::Path;

/// A file of a seed: its path in the folder (the file's name for one-file targets), its bytes.
type Files = Vec<(String, Vec<u8>)>;

/// Writes every target's seeds under `corpus`, replacing earlier seeds (regression inputs stay).
pub fn write_all(corpus: &Path) -> Result<()> {
    let scratch = std::env::temp_dir().join(format!("ssm-fuzz-seeds-{}", std::process::id()));
    for t in TARGETS {
        let dir = corpus.join(t.name);
        std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
        for old in std::fs::read_dir(&dir)?.filter_map(|e| e.ok()).map(|e| e.path()) {
            if old.file_name().is_some_and(|n| n.to_string_lossy().starts_with("seed-")) {
                std::fs::remove_file(&old)?;
            }
        }
        for (i, files) in seeds(t.name, &scratch)?.into_iter().enumerate() {
            let bytes = match t.shape {
                Shape::File(_) => files.into_iter().next().map(|f| f.1).unwrap_or_default(),
                Shape::Folder => {
                    let _ = std::fs::remove_dir_all(&scratch);
                    for (rel, b) in &files {
                        let p = scratch.join(rel);
                        std::fs::create_dir_all(p.parent().unwrap())?;
                        std::fs::write(&p, b)?;
                    }
                    pack(&scratch)?
                }
            };
            std::fs::write(dir.join(format!("seed-{i}")), bytes)?;
        }
        println!("{}: seeds written to {}", t.name, dir.display());
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

fn seeds(target: &str, scratch: &Path) -> Result<Vec<Files>> {
    let one = |name: &str, text: &str| vec![(name.to_string(), text.as_bytes().to_vec())];
    Ok(match target {
        "idx" => vec![idx_folder(false)?, idx_folder(true)?],
        "image-folders" => vec![image_folder()?],
        "csv-series" => vec![one("data.csv", SERIES)],
        "uea" => vec![one("data.ts", UEA)],
        "wav" => {
            vec![vec![("clip.wav".into(), wav(1, 16, 8000, 200))], vec![("clip.wav".into(), wav(2, 32, 16000, 64))]]
        }
        "planetoid" => vec![planetoid()],
        "tabular-csv" => vec![one("data.csv", TABULAR)],
        "listops" => vec![one("data.tsv", LISTOPS)],
        "checkpoint" => vec![lm_files(scratch, &["config.json", "model.safetensors", "ssm_tokenizer.json"])?],
        "tokenizer" => vec![one("tokenizer.json", WORD_LEVEL), one("tokenizer.json", BPE), char_tokenizer(scratch)?],
        "run-dir" => {
            vec![lm_files(scratch, &["checkpoint/state.json", "checkpoint/model.bpk", "checkpoint/optimizer.bin"])?]
        }
        other => anyhow::bail!("no seeds for target {other}"),
    })
}

const SERIES: &str = "date,HUFL,MUFL,OT\n2016-07-01 00:00:00,5.827,1.599,30.531\n\
2016-07-01 01:00:00,5.693,1.492,27.787\n2016-07-01 02:00:00,5.157,1.279,27.787\n\
2016-07-01 03:00:00,5.090,1.279,25.044\n2016-07-01 04:00:00,5.358,1.492,21.948\n\
2016-07-01 05:00:00,5.626,1.528,21.174\n2016-07-01 06:00:00,7.167,2.132,22.792\n\
2016-07-01 07:00:00,7.435,2.309,23.144\n";

const UEA: &str = "# a tiny UEA file\n@problemName Tiny\n@timeStamps false\n@missing false\n\
@univariate false\n@dimensions 2\n@equalLength true\n@seriesLength 4\n@classLabel true up down\n@data\n\
1.0,2.0,3.0,4.0:0.5,0.25,0.0,-0.5:up\n4.0,3.0,2.0,1.0:0.0,0.1,0.2,0.3:down\n1.5,2.5,3.5,4.5:1,1,1,1:up\n";

const TABULAR: &str = "age,workclass,hours,income\n39,State-gov,40,<=50K\n50,Self-emp,13,<=50K\n\
38,Private,40,>50K\n53,Private,?,>50K\n28,Private,40,<=50K\n37,Private,40,<=50K\n49,Private,16,>50K\n";

const LISTOPS: &str = "Source\tTarget\n( ( [MAX 2 9 ) ] )\t9\n[MIN 4 ( [SM 1 2 ] ) 7 ]\t3\n[MED 1 5 8 ]\t5\n";

const WORD_LEVEL: &str = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,
"pre_tokenizer":{"type":"Whitespace"},"post_processor":null,"decoder":null,
"model":{"type":"WordLevel","vocab":{"[UNK]":0,"state":1,"space":2},"unk_token":"[UNK]"}}"#;

const BPE: &str = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,
"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true},
"post_processor":null,"decoder":{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true},
"model":{"type":"BPE","dropout":null,"unk_token":null,"continuing_subword_prefix":null,"end_of_word_suffix":null,
"fuse_unk":false,"byte_fallback":false,"vocab":{"s":0,"t":1,"a":2,"e":3,"p":4,"c":5,"Ġ":6,"st":7,"at":8},
"merges":["s t","a t"]}}"#;

fn idx(dims: &[u32], values: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 8, dims.len() as u8];
    dims.iter().for_each(|d| out.extend(d.to_be_bytes()));
    out.extend(values);
    out
}

fn idx_folder(gzip: bool) -> Result<Files> {
    let pixels: Vec<u8> = (0..2 * 4 * 4).map(|i| (i * 37 % 256) as u8).collect();
    let mut files = Vec::new();
    for split in ["train", "t10k"] {
        let mut images = idx(&[2, 4, 4], &pixels);
        let mut name = format!("{split}-images-idx3-ubyte");
        if gzip {
            let mut gz = GzEncoder::new(Vec::new(), Compression::default());
            gz.write_all(&images)?;
            (images, name) = (gz.finish()?, name + ".gz");
        }
        files.push((name, images));
        files.push((format!("{split}-labels-idx1-ubyte"), idx(&[2], &[3, 7])));
    }
    Ok(files)
}

fn image_folder() -> Result<Files> {
    let mut files = Vec::new();
    for (i, (split, class)) in [("train", "cat"), ("train", "dog"), ("test", "cat"), ("test", "dog")].iter().enumerate()
    {
        let img = image::GrayImage::from_fn(4, 4, |x, y| image::Luma([(x * 60 + y * 3 + i as u32 * 20) as u8]));
        let mut png = std::io::Cursor::new(Vec::new());
        img.write_to(&mut png, image::ImageFormat::Png)?;
        files.push((format!("{split}/{class}/{i}.png"), png.into_inner()));
    }
    files.push(("test/dog/5.pgm".into(), b"P2\n2 2\n255\n0 64\n128 255\n".to_vec()));
    Ok(files)
}

/// A WAV file of `frames` frames of a ramp: PCM integers, or 32-bit floats when `bits` is 32.
fn wav(channels: u16, bits: u16, rate: u32, frames: u32) -> Vec<u8> {
    let float = bits == 32;
    let bytes = u32::from(bits / 8);
    let data = frames * u32::from(channels) * bytes;
    let mut out = b"RIFF".to_vec();
    out.extend((36 + data).to_le_bytes());
    out.extend(b"WAVEfmt ");
    out.extend(16u32.to_le_bytes());
    out.extend((if float { 3u16 } else { 1u16 }).to_le_bytes());
    out.extend(channels.to_le_bytes());
    out.extend(rate.to_le_bytes());
    out.extend((rate * u32::from(channels) * bytes).to_le_bytes());
    out.extend((channels * bits / 8).to_le_bytes());
    out.extend(bits.to_le_bytes());
    out.extend(b"data");
    out.extend(data.to_le_bytes());
    for i in 0..frames * u32::from(channels) {
        let x = (i as f32 / frames as f32) - 0.5;
        if float {
            out.extend(x.to_le_bytes());
        } else {
            out.extend(((x * 30000.0) as i16).to_le_bytes());
        }
    }
    out
}

fn planetoid() -> Files {
    let f = |name: &str, text: &str| (name.to_string(), text.as_bytes().to_vec());
    vec![
        f("edges.csv", "source,target\n0,1\n1,2\n2,3\n3,4\n4,5\n5,0\n"),
        f("features.csv", "node,feature,value\n0,0,1\n1,1,1\n2,0,0.5\n3,2,1\n4,1,2\n5,2,1\n"),
        f("labels.csv", "node,label\n0,0\n1,1\n2,0\n3,1\n4,0\n5,1\n"),
        f("train_idx.txt", "0\n1\n"),
        f("val_idx.txt", "2\n3\n"),
        f("test_idx.txt", "4\n5\n"),
    ]
}

fn char_tokenizer(scratch: &Path) -> Result<Files> {
    let dir = scratch.join("char");
    std::fs::create_dir_all(&dir)?;
    Tokenizer::char_level("state space models").save(&dir)?;
    read_files(&dir, &["ssm_tokenizer.json"])
}

/// Two steps of training a tiny byte-level language model into `scratch/run`: the files named.
fn lm_files(scratch: &Path, names: &[&str]) -> Result<Files> {
    let out = scratch.join("run");
    let _ = std::fs::remove_dir_all(&out);
    let device = device_by_name("cpu")?;
    let tok = Tokenizer::Byte;
    let text = "state space models read sequences in linear time; ".repeat(8);
    let mut data = TextData::split(&text, |s| tok.encode(s), 8, 2, 0)?;
    data.eval_windows = 2;
    let cfg = tiny_lm(tok.vocab_size())?;
    let adev = device.autodiff();
    let tc = TrainConfig { steps: 2, epochs: 1, out: Some(out.clone()), progress: false, ..TrainConfig::default() };
    let fitted = fit(cfg.init(&adev), &mut data, &tc, &adev)?;
    checkpoint::save(&out, &fitted.model.valid(), &cfg)?;
    tok.save(&out)?;
    read_files(&out, names)
}

fn read_files(dir: &Path, names: &[&str]) -> Result<Files> {
    names
        .iter()
        .map(|n| Ok((n.to_string(), std::fs::read(dir.join(n)).with_context(|| format!("{}", dir.join(n).display()))?)))
        .collect()
}
