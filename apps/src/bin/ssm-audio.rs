//! `ssm-audio`: spoken-word classification from raw waveforms (any registered mixer, with
//! pooling) or from log-mel spectrograms (Audio Mamba), and spectrogram pictures.

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::Device;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use ssm_apps::{Machine, MixerArgs, TrainFlags, exit_on_error, parse_with_defaults, update_metrics, write_json};
use ssm_audio::dataset::{AudioFolder, Clip};
use ssm_audio::features::{MelConfig, log_mel};
use ssm_audio::models::raw::RawConfig;
use ssm_audio::models::{AudioModel, AudioModelConfig};
use ssm_audio::train::{AudioSource, LoadedClips, predict};
use ssm_audio::wav::read_wav;
use ssm_core::backbone::BackboneConfig;
use ssm_core::blocks::{BlockConfig, Combine};
use ssm_core::plot;
use ssm_core::train::{fit, load_checkpoint, model_dir};
use ssm_vision::models::InputShape;
use ssm_vision::models::vim::VimConfig;
use std::path::{Path, PathBuf};

#[derive(Parser, Debug)]
#[command(about = "State-space models for audio: spoken-digit classification from raw samples or spectrograms")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Cmd {
    /// Train a classifier on a labelled folder (FSDD names or one sub-directory per class),
    /// then score its test split.
    Train(TrainArgs),
    /// Test accuracy and confusion matrix of a trained model.
    Eval(EvalArgs),
    /// The most likely classes of WAV files.
    Predict(PredictArgs),
    /// A WAV file's log-mel spectrogram and waveform as PNGs.
    Spectrogram(SpectrogramArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
enum ModelName {
    /// Mixer stages over the raw samples with down-pooling between them (S4 on raw speech).
    Raw,
    /// Audio Mamba: bidirectional Mamba over log-mel patches with a middle class token.
    Aum,
}

#[derive(Args, Debug)]
struct TrainArgs {
    /// The data folder.
    #[arg(long, default_value = "../shared/data/audio/fsdd")]
    data: PathBuf,
    #[arg(long, value_enum, default_value_t = ModelName::Raw)]
    model: ModelName,
    /// The raw model's mixer (any registered family) and its options.
    #[command(flatten)]
    mixer: MixerArgs,
    /// The model's sample rate (recordings at other rates are resampled).
    #[arg(long, default_value_t = 8000)]
    rate: u32,
    /// Clip length in seconds (longer clips are cropped, shorter ones padded with silence).
    #[arg(long, default_value_t = 0.75)]
    seconds: f64,
    /// Width of the first stage (raw; doubled at each pooling) or of the model (AuM).
    #[arg(long, default_value_t = 32)]
    d_model: usize,
    /// Blocks per stage (raw) or in all (AuM).
    #[arg(long, default_value_t = 2)]
    layers: usize,
    /// Stages of the raw model.
    #[arg(long, default_value_t = 3)]
    stages: usize,
    /// Down-pooling factor between stages.
    #[arg(long, default_value_t = 4)]
    pool: usize,
    /// Causal blocks in the raw model (default: bidirectional, as S4 on Speech Commands).
    #[arg(long)]
    causal: bool,
    /// AuM's square patch size on the (frames × mels) spectrogram.
    #[arg(long, default_value_t = 8)]
    patch: usize,
    /// Test share of each class for folders without an official split.
    #[arg(long, default_value_t = 0.1)]
    test_fraction: f64,
    #[command(flatten)]
    train: TrainFlags,
}

#[derive(Args, Debug)]
struct EvalArgs {
    /// A `train --out` directory.
    #[arg(long)]
    model: PathBuf,
    #[arg(long, default_value = "../shared/data/audio/fsdd")]
    data: PathBuf,
    #[command(flatten)]
    machine: Machine,
}

#[derive(Args, Debug)]
struct PredictArgs {
    /// A `train --out` directory.
    #[arg(long)]
    model: PathBuf,
    /// WAV files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Classes listed per file.
    #[arg(long, default_value_t = 3)]
    top_k: usize,
    #[command(flatten)]
    machine: Machine,
}

#[derive(Args, Debug)]
struct SpectrogramArgs {
    file: PathBuf,
    /// The spectrogram PNG (the waveform goes beside it as `<stem>-waveform.png`).
    #[arg(long)]
    out: PathBuf,
}

/// What `train` saves beside the checkpoint: the model and the class names.
#[derive(Debug, Serialize, Deserialize)]
struct RunInfo {
    model: AudioModelConfig,
    classes: Vec<String>,
}

/// The training flags' defaults here: the settings behind the README's figures.
const TRAIN_DEFAULTS: &[(&str, &str)] =
    &[("epochs", "20"), ("batch", "16"), ("lr", "2e-3"), ("weight_decay", "0.01"), ("out", "runs/audio")];

fn model_config(a: &TrainArgs, classes: usize) -> Result<AudioModelConfig> {
    let samples = (a.seconds * a.rate as f64).round() as usize;
    if samples < 16 {
        bail!("--seconds {} at --rate {} gives {samples} samples: too short", a.seconds, a.rate);
    }
    Ok(match a.model {
        ModelName::Raw => {
            let mut stages = Vec::new();
            for s in 0..a.stages.max(1) {
                let mut block = BlockConfig::canonical(a.mixer.config(a.d_model << s)?);
                if !a.causal {
                    block.bidirectional = Some(Combine::Sum);
                }
                stages.push(BackboneConfig::uniform(block, a.layers.max(1)));
            }
            AudioModelConfig::Raw { net: RawConfig { classes, stages, pool: a.pool.max(1) }, rate: a.rate, samples }
        }
        ModelName::Aum => {
            let mel = MelConfig::speech(a.rate);
            let input = InputShape::image(1, mel.frames(samples), mel.n_mels);
            let vim = VimConfig {
                patch: a.patch,
                d_model: a.d_model.max(2),
                depth: a.layers.max(1),
                ..VimConfig::new(input, classes)
            };
            if vim.grid().1 == 0 || vim.grid().2 == 0 {
                bail!("--patch {} is larger than the {}×{} spectrogram", a.patch, input.height, input.width);
            }
            AudioModelConfig::Aum { vim, mel, samples }
        }
    })
}

/// Counts `[true][predicted]`.
fn confusion(probs: &[Vec<f32>], labels: &[i64], k: usize) -> (Vec<Vec<usize>>, f64) {
    let mut m = vec![vec![0usize; k]; k];
    let mut correct = 0;
    for (p, &y) in probs.iter().zip(labels) {
        let pred = p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |x| x.0);
        m[y as usize][pred] += 1;
        correct += usize::from(pred == y as usize);
    }
    (m, correct as f64 / labels.len().max(1) as f64)
}

fn load(clips: &[Clip], cfg: &AudioModelConfig, what: &str) -> Result<LoadedClips> {
    let (rate, len) = cfg.input();
    println!("reading {} {what} clips ({} samples at {rate} Hz each)", clips.len(), len);
    Ok(LoadedClips::load(clips, rate, len)?)
}

fn run_train(a: TrainArgs) -> Result<()> {
    let device = a.train.machine.device()?;
    let folder = AudioFolder::open(&a.data, a.test_fraction, a.train.seed)?;
    let cfg = model_config(&a, folder.classes.len())?;
    let out = a.train.out.clone();
    std::fs::create_dir_all(&out).with_context(|| format!("{}: cannot create", out.display()))?;
    let train = load(&folder.train, &cfg, "training")?;
    let test = load(&folder.test, &cfg, "test")?;
    let per_epoch = train.len().div_ceil(a.train.batch.max(1));
    let tc = a.train.config(a.train.steps_or(|| per_epoch * a.train.epochs));
    let adev = device.clone().autodiff();
    device.seed(a.train.seed);
    let model = cfg.init(&adev);
    println!("{:?} model, {} parameters", a.model, model.num_params());
    write_json(&out.join("config.json"), &RunInfo { model: cfg.clone(), classes: folder.classes.clone() })?;
    // The evaluation set is the test split: reported each epoch, never used to pick a model.
    let mut source =
        AudioSource { cfg: cfg.clone(), train, eval: test.clone(), batch: a.train.batch, seed: a.train.seed };
    let fitted = fit(model, &mut source, &tc, &adev)?;
    let model = fitted.model.valid();
    report(&out, &model, &cfg, &test, &folder.classes, &device.clone().inner(), "test")
}

/// Test accuracy and the confusion matrix into metrics.json and confusion.png.
fn report(
    out: &Path,
    model: &AudioModel,
    cfg: &AudioModelConfig,
    test: &LoadedClips,
    classes: &[String],
    device: &Device,
    what: &str,
) -> Result<()> {
    let probs = predict(model, cfg, test, 32, device);
    let (m, acc) = confusion(&probs, &test.labels, classes.len());
    println!("{what} accuracy {acc:.4} ({} clips)", test.len());
    update_metrics(
        out,
        serde_json::json!({"test_accuracy": acc, "test_clips": test.len(), "classes": classes, "confusion": m}),
    )?;
    plot::confusion_matrix(&out.join("confusion.png"), &format!("{what} accuracy {:.1} %", 100.0 * acc), classes, &m)?;
    println!("wrote {} (metrics.json, confusion.png)", out.display());
    Ok(())
}

/// A trained run: its config, class names and model on `device`.
fn open_run(dir: &Path, device: &Device) -> Result<(RunInfo, AudioModel)> {
    let path = dir.join("config.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("{}: not a trained ssm-audio run", path.display()))?;
    let info: RunInfo =
        serde_json::from_str(&text).with_context(|| format!("{}: not an ssm-audio config", path.display()))?;
    let model = load_checkpoint(&model_dir(dir), info.model.init(device))?;
    Ok((info, model))
}

fn run_eval(a: EvalArgs) -> Result<()> {
    let device = a.machine.device()?;
    let (info, model) = open_run(&a.model, &device)?;
    let folder = AudioFolder::open(&a.data, 0.1, 0)?;
    if folder.classes != info.classes {
        bail!("{}: classes {:?} differ from the model's {:?}", a.data.display(), folder.classes, info.classes);
    }
    let test = load(&folder.test, &info.model, "test")?;
    report(&a.model, &model, &info.model, &test, &info.classes, &device, "test")
}

fn run_predict(a: PredictArgs) -> Result<()> {
    let device = a.machine.device()?;
    let (info, model) = open_run(&a.model, &device)?;
    let clips: Vec<Clip> = a.files.iter().map(|p| Clip { path: p.clone(), label: 0 }).collect();
    let probs = predict(&model, &info.model, &load(&clips, &info.model, "input")?, 32, &device);
    for (file, p) in a.files.iter().zip(probs) {
        let mut order: Vec<usize> = (0..p.len()).collect();
        order.sort_by(|&x, &y| p[y].total_cmp(&p[x]));
        let top: Vec<String> =
            order.iter().take(a.top_k.max(1)).map(|&c| format!("{} {:.3}", info.classes[c], p[c])).collect();
        println!("{}\t{}", file.display(), top.join("\t"));
    }
    Ok(())
}

fn run_spectrogram(a: SpectrogramArgs) -> Result<()> {
    let audio = read_wav(&a.file)?;
    let mel = MelConfig::speech(audio.rate);
    let s = log_mel(&audio.samples, &mel);
    let cols: Vec<Vec<f32>> = (0..s.frames).map(|t| (0..s.bins).map(|b| s.at(t, b)).collect()).collect();
    let name = a.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let secs = audio.seconds();
    plot::heatmap(
        &a.out,
        &format!("{name}: log-mel ({} bands, dB)", s.bins),
        ("seconds", secs),
        ("mel band", s.bins as f64),
        &cols,
    )?;
    let stem = a.out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "spectrogram".into());
    let wave_path = a.out.with_file_name(format!("{stem}-waveform.png"));
    let points: Vec<(f64, f64)> =
        audio.samples.iter().enumerate().map(|(i, &v)| (i as f64 / audio.rate as f64, v as f64)).collect();
    plot::line_chart(
        &wave_path,
        &format!("{name}: waveform"),
        "seconds",
        "amplitude",
        &[(name.clone(), points)],
        plot::Scale::Linear,
        plot::Scale::Linear,
    )?;
    println!("wrote {} and {}", a.out.display(), wave_path.display());
    Ok(())
}

fn main() {
    let cli: Cli = parse_with_defaults(&[("train", TRAIN_DEFAULTS)]);
    exit_on_error(match cli.cmd {
        Cmd::Train(a) => run_train(a),
        Cmd::Eval(a) => run_eval(a),
        Cmd::Predict(a) => run_predict(a),
        Cmd::Spectrogram(a) => run_spectrogram(a),
    });
}
