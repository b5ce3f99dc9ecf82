//! What is fuzzed: every reader of outside bytes the binaries use, each called as the binaries
//! call it, on one file or on a folder unpacked from a bundle (see `bundle.rs`).

use anyhow::{Context, Result};
use burn::optim::AdamWConfig;
use ssm_core::backbone::{LayerTemplate, parse_layout};
use ssm_core::device::device_by_name;
use ssm_core::mixers::DEFAULT_MIXER;
use ssm_core::tasks::Labelled;
use ssm_core::train::resume;
use ssm_language::{LmConfig, Tokenizer, checkpoint};
use ssm_tabular::data::{CsvOptions, RawTable, Schema};
use std::path::Path;

/// The input's form on disk: one file of this name, or a folder (the input is a bundle).
#[derive(Clone, Copy)]
pub enum Shape {
    File(&'static str),
    Folder,
}

pub struct Target {
    pub name: &'static str,
    pub about: &'static str,
    pub shape: Shape,
    pub run: fn(&Path) -> Result<()>,
}

pub const TARGETS: &[Target] = &[
    Target { name: "idx", about: "MNIST idx folders (ssm-vision)", shape: Shape::Folder, run: vision_split },
    Target {
        name: "image-folders",
        about: "class-per-folder images, PNG / PNM / …  (ssm-vision)",
        shape: Shape::Folder,
        run: vision_split,
    },
    Target {
        name: "csv-series",
        about: "time-series CSV (ssm-timeseries)",
        shape: Shape::File("data.csv"),
        run: series,
    },
    Target {
        name: "uea",
        about: "UEA / UCR .ts files (ssm-timeseries classify)",
        shape: Shape::File("data.ts"),
        run: uea,
    },
    Target { name: "wav", about: "WAV clips, resampled (ssm-audio)", shape: Shape::File("clip.wav"), run: wav },
    Target { name: "planetoid", about: "Planetoid CSV folders (ssm-graph)", shape: Shape::Folder, run: planetoid },
    Target {
        name: "tabular-csv",
        about: "tabular CSV, typed and fitted (ssm-tabular)",
        shape: Shape::File("data.csv"),
        run: tabular,
    },
    Target { name: "listops", about: "ListOps TSV (ssm-compare)", shape: Shape::File("data.tsv"), run: listops },
    Target {
        name: "checkpoint",
        about: "config.json + safetensors + tokenizer checkpoints (ssm-language)",
        shape: Shape::Folder,
        run: lm_checkpoint,
    },
    Target { name: "tokenizer", about: "tokenizer.json (ssm-language)", shape: Shape::Folder, run: tokenizer },
    Target {
        name: "run-dir",
        about: "the runner's own run folders: state.json, model.bpk, optimizer.bin (--resume)",
        shape: Shape::Folder,
        run: run_dir,
    },
];

pub fn find(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

fn vision_split(dir: &Path) -> Result<()> {
    for test in [false, true] {
        ssm_vision::folders::load_split(dir, test, Some((8, 8)))?;
    }
    Ok(())
}

fn series(path: &Path) -> Result<()> {
    let t = ssm_timeseries::data::Table::read(path)?;
    let _ = t.rows_per_day(); // the date parser behind `train`'s default cycle
    let _ = ssm_timeseries::data::Protocol::for_path(path).splits(t.rows, 4);
    Ok(())
}

fn uea(path: &Path) -> Result<()> {
    let set = ssm_timeseries::uea::TsSet::read(path, None)?;
    set.stats();
    Ok(())
}

fn wav(path: &Path) -> Result<()> {
    ssm_audio::dataset::load_clip(path, 8000, 800)?;
    Ok(())
}

fn planetoid(dir: &Path) -> Result<()> {
    ssm_graph::data::load_planetoid(dir)?;
    Ok(())
}

fn tabular(path: &Path) -> Result<()> {
    let opts = CsvOptions::default();
    let t = RawTable::read(path, &opts)?;
    let target = t.names.last().context("no columns")?.clone();
    let rows: Vec<usize> = (0..t.rows).collect();
    let schema = Schema::fit(&t, &rows, &target, None, &opts, 1.0, path)?;
    schema.encode(&t, &rows, &opts, true, path)?;
    Ok(())
}

fn listops(path: &Path) -> Result<()> {
    Labelled::load_listops(path)?;
    Ok(())
}

fn lm_checkpoint(dir: &Path) -> Result<()> {
    checkpoint::load(dir, &device_by_name("cpu")?)?;
    tokenizer(dir)
}

fn tokenizer(dir: &Path) -> Result<()> {
    if let Some(t) = Tokenizer::load(dir)? {
        // an encoding error is about the probe text, not the file
        if let Ok(ids) = t.encode("state space") {
            t.decode(&ids);
        }
    }
    Ok(())
}

/// A training run's folder as `--resume` reads it (model record, optimizer and run state from
/// `checkpoint/`) into the model the seeds were trained with. The model lives on the plain CPU
/// device: the records read the same, and autodiff's per-parameter bookkeeping, created anew
/// for every input, would grow by ~18 kB an input.
fn run_dir(dir: &Path) -> Result<()> {
    let device = device_by_name("cpu")?;
    let model = tiny_lm(256)?.init(&device);
    resume(&dir.join("checkpoint"), model, AdamWConfig::new().init())?;
    Ok(())
}

/// The smallest language model of the default mixer (the seeds' checkpoints).
pub fn tiny_lm(vocab_size: usize) -> Result<LmConfig> {
    let backbone = parse_layout(DEFAULT_MIXER, Some(1), &LayerTemplate::new(8))?;
    Ok(LmConfig {
        vocab_size,
        backbone,
        tie_embeddings: true,
        bos_token_id: None,
        eos_token_id: None,
        pad_token_id: None,
    })
}
