//! `ssm-audio`: spoken-word classification from raw waveforms (any registered mixer, with
//! pooling) or from log-mel spectrograms (Audio Mamba), and spectrogram pictures.

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::Device;
use burn::tensor::{Int, Tensor, TensorData};
use clap::{Args, Parser, Subcommand, ValueEnum};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use ssm_apps::{Machine, MixerArgs, TrainFlags, exit_on_error, parse_with_defaults, update_metrics, write_json};
use ssm_audio::dataset::{AudioFolder, Clip};
use ssm_audio::features::{MelConfig, log_mel};
use ssm_audio::models::raw::RawConfig;
use ssm_audio::models::sashimi::{LEVELS, Sashimi, SashimiConfig, mu_law_decode, mu_law_encode};
use ssm_audio::models::sashimi_plain::PlainSashimi;
use ssm_audio::models::{AudioModel, AudioModelConfig};
use ssm_audio::resample::resample;
use ssm_audio::train::{AudioSource, LoadedClips, predict};
use ssm_audio::wav::{Audio, read_wav, write_wav};
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
    /// Sample audio from a trained SaShiMi model, one sample at a time (recurrent mode).
    Generate(GenerateArgs),
    /// A WAV file's log-mel spectrogram and waveform as PNGs.
    Spectrogram(SpectrogramArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
enum ModelName {
    /// Mixer stages over the raw samples with down-pooling between them (S4 on raw speech).
    Raw,
    /// Audio Mamba: bidirectional Mamba over log-mel patches with a middle class token.
    Aum,
    /// SaShiMi: an autoregressive multi-scale U-Net over µ-law samples (generation).
    Sashimi,
}

#[derive(Args, Debug)]
struct TrainArgs {
    /// The data folder.
    #[arg(long, default_value = "../shared/data/audio/fsdd")]
    data: PathBuf,
    #[arg(long, value_enum, default_value_t = ModelName::Raw)]
    model: ModelName,
    /// The mixer of the raw model's and SaShiMi's blocks (any registered family; default s4d
    /// for raw, s4 for SaShiMi).
    #[arg(long, value_parser = ssm_apps::mixer_names())]
    mixer: Option<String>,
    /// A mixer setting, `key=value` (e.g. d_state=32); repeatable.
    #[arg(long = "mixer-opt", value_name = "KEY=VALUE")]
    mixer_opt: Vec<String>,
    /// The model's sample rate (recordings at other rates are resampled).
    #[arg(long, default_value_t = 8000)]
    rate: u32,
    /// Clip length in seconds: classifiers crop longer clips and pad shorter ones with silence;
    /// SaShiMi trains on windows this long from the middle of the clips that are (default 0.75
    /// for classifiers, 0.256 for SaShiMi).
    #[arg(long)]
    seconds: Option<f64>,
    /// Width of the first stage (raw; doubled at each pooling) or of the model (default 16 for
    /// raw, 64 for AuM, 32 for SaShiMi).
    #[arg(long, value_parser = ssm_apps::positive)]
    d_model: Option<usize>,
    /// Blocks per stage (raw), in all (AuM) or per level and direction (SaShiMi) (default 2, 4
    /// for AuM).
    #[arg(long, value_parser = ssm_apps::positive)]
    layers: Option<usize>,
    /// Stages of the raw model, pooling levels of SaShiMi.
    #[arg(long, default_value_t = 3, value_parser = ssm_apps::positive)]
    stages: usize,
    /// Down-pooling factor between stages (levels).
    #[arg(long, default_value_t = 4, value_parser = ssm_apps::positive)]
    pool: usize,
    /// Causal blocks in the raw model (default: bidirectional, as S4 on Speech Commands).
    #[arg(long)]
    causal: bool,
    /// AuM's square patch size on the (frames × mels) spectrogram.
    #[arg(long, default_value_t = 8, value_parser = ssm_apps::positive)]
    patch: usize,
    /// Test share of each class for folders without an official split.
    #[arg(long, default_value_t = 0.1)]
    test_fraction: f64,
    /// Time-shift augmentation: each training clip moved by a random offset of up to ± this
    /// many seconds inside its window (default: 0.1 for the raw-waveform model, 0 for the others).
    #[arg(long)]
    shift: Option<f64>,
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
    #[arg(long, default_value_t = 3, value_parser = ssm_apps::positive)]
    top_k: usize,
    #[command(flatten)]
    machine: Machine,
}

#[derive(Args, Debug)]
struct GenerateArgs {
    /// A `train --model sashimi --out` directory.
    #[arg(long)]
    model: PathBuf,
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
    /// The WAV file to write (with `--count` N > 1: `<stem>-1.wav` … `<stem>-N.wav`).
    #[arg(long)]
    out: PathBuf,
    /// Clips generated together, as one batch (the same prompt for each).
    #[arg(long, default_value_t = 1, value_parser = ssm_apps::positive)]
    count: usize,
    /// Audio to continue (its samples are fed first; the output holds only the new ones).
    #[arg(long)]
    prompt: Option<PathBuf>,
    /// Softmax temperature of the sampling.
    #[arg(long, default_value_t = 1.0)]
    temperature: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
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
    &[("epochs", "16"), ("batch", "16"), ("lr", "2e-3"), ("weight_decay", "0.01"), ("out", "runs/audio")];

fn model_config(a: &TrainArgs, classes: usize) -> Result<AudioModelConfig> {
    let seconds = a.seconds.unwrap_or(if a.model == ModelName::Sashimi { 0.256 } else { 0.75 });
    let samples = (seconds * a.rate as f64).round() as usize;
    if samples < 16 {
        bail!("--seconds {seconds} at --rate {} gives {samples} samples: too short", a.rate);
    }
    let mixer = |default: &str| a.mixer.clone().unwrap_or_else(|| default.to_string());
    let (d_model, layers) = match a.model {
        ModelName::Raw => (a.d_model.unwrap_or(16), a.layers.unwrap_or(2)),
        ModelName::Aum => (a.d_model.unwrap_or(64), a.layers.unwrap_or(4)),
        ModelName::Sashimi => (a.d_model.unwrap_or(32), a.layers.unwrap_or(2)),
    };
    Ok(match a.model {
        ModelName::Raw => {
            let mut stages = Vec::new();
            for s in 0..a.stages.max(1) {
                let m = MixerArgs { mixer: mixer("s4d"), mixer_opt: a.mixer_opt.clone() };
                let mut block = BlockConfig::canonical(m.config(d_model << s)?);
                if !a.causal {
                    block.bidirectional = Some(Combine::Sum);
                }
                stages.push(BackboneConfig::uniform(block, layers.max(1)));
            }
            AudioModelConfig::Raw { net: RawConfig { classes, stages, pool: a.pool.max(1) }, rate: a.rate, samples }
        }
        ModelName::Aum => {
            let mel = MelConfig::speech(a.rate);
            let input = InputShape::image(1, mel.frames(samples), mel.n_mels);
            let vim = VimConfig {
                patch: a.patch,
                d_model: d_model.max(2),
                depth: layers.max(1),
                ..VimConfig::new(input, classes)
            };
            if vim.grid().1 == 0 || vim.grid().2 == 0 {
                bail!("--patch {} is larger than the {}×{} spectrogram", a.patch, input.height, input.width);
            }
            AudioModelConfig::Aum { vim, mel, samples }
        }
        ModelName::Sashimi => {
            let net = SashimiConfig {
                mixer: mixer("s4"),
                mixer_opt: a.mixer_opt.clone(),
                d_model,
                blocks: layers.max(1),
                pool: vec![a.pool.max(1); a.stages.saturating_sub(1)],
                expand: 2,
                ff: 2,
            };
            net.init(&Device::flex())?; // checks the mixer settings now, with a clear error
            AudioModelConfig::Sashimi { net, rate: a.rate, samples }
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
    let device = a.train.device()?;
    let folder = AudioFolder::open(&a.data, a.test_fraction, a.train.seed)?;
    let cfg = model_config(&a, folder.classes.len())?;
    let out = a.train.out.clone();
    std::fs::create_dir_all(&out).with_context(|| format!("{}: cannot create", out.display()))?;
    let (train, test) = if cfg.is_generative() {
        let (rate, len) = cfg.input();
        println!("reading windows of {len} samples at {rate} Hz from the clips at least that long");
        (LoadedClips::load_windows(&folder.train, rate, len)?, LoadedClips::load_windows(&folder.test, rate, len)?)
    } else {
        (load(&folder.train, &cfg, "training")?, load(&folder.test, &cfg, "test")?)
    };
    if train.is_empty() || test.is_empty() {
        bail!("{}: no clip is {} samples long: use a shorter --seconds", a.data.display(), cfg.input().1);
    }
    let per_epoch = train.len().div_ceil(a.train.batch.max(1));
    let tc = a.train.config(a.train.steps_or(|| per_epoch * a.train.epochs));
    let adev = device.clone().autodiff();
    device.seed(a.train.seed);
    let model = cfg.init(&adev)?;
    println!("{:?} model, {} parameters", a.model, model.num_params());
    write_json(&out.join("config.json"), &RunInfo { model: cfg.clone(), classes: folder.classes.clone() })?;
    // The evaluation set is the test split: reported each epoch, never used to pick a model.
    let shift = a.shift.unwrap_or(if a.model == ModelName::Raw { 0.1 } else { 0.0 });
    let (rate, len) = cfg.input();
    if !(shift >= 0.0 && shift * f64::from(rate) < len as f64) {
        bail!("--shift {shift}: must be between 0 and the clip length");
    }
    let max_shift = if cfg.is_generative() { 0 } else { (shift * f64::from(rate)).round() as usize };
    let mut source = AudioSource {
        cfg: cfg.clone(),
        train,
        eval: test.clone(),
        batch: a.train.batch,
        seed: a.train.seed,
        max_shift,
    };
    let fitted = fit(model, &mut source, &tc, &adev)?;
    let model = fitted.model.valid();
    if cfg.is_generative() {
        return report_nll(&out, &model, &cfg, &source.train, &test, &device.clone().inner());
    }
    report(&out, &model, &cfg, &test, &folder.classes, &device.clone().inner(), "test")
}

/// Bits per sample of the first-order entropy of µ-law tokens.
fn unigram_bits(clips: &LoadedClips) -> f64 {
    let mut counts = [0usize; LEVELS];
    for x in clips.samples.iter().flatten() {
        counts[mu_law_encode(*x) as usize] += 1;
    }
    let n = counts.iter().sum::<usize>().max(1) as f64;
    counts.iter().filter(|&&c| c > 0).map(|&c| -(c as f64 / n) * (c as f64 / n).log2()).sum()
}

/// SaShiMi's test NLL (bits per sample) beside the training data's µ-law unigram entropy.
fn report_nll(
    out: &Path,
    model: &AudioModel,
    cfg: &AudioModelConfig,
    train: &LoadedClips,
    test: &LoadedClips,
    device: &Device,
) -> Result<()> {
    let mut stats = ssm_core::train::Stats::default();
    for b in test.batches(cfg, 8, device) {
        stats.add(ssm_core::train::Trainable::loss(model, &b).1);
    }
    let bits = stats.loss() / std::f64::consts::LN_2;
    let unigram = unigram_bits(train);
    println!("test NLL {bits:.4} bits/sample over {} windows (µ-law unigram entropy {unigram:.4})", test.len());
    update_metrics(
        out,
        serde_json::json!({"test_nll_bits": bits, "unigram_entropy_bits": unigram, "test_windows": test.len()}),
    )?;
    println!("wrote {}", out.join("metrics.json").display());
    Ok(())
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
    let model = load_checkpoint(&model_dir(dir), info.model.init(device)?)?;
    Ok((info, model))
}

fn run_eval(a: EvalArgs) -> Result<()> {
    let device = a.machine.device()?;
    let (info, model) = open_run(&a.model, &device)?;
    if info.model.is_generative() {
        bail!(
            "{}: a SaShiMi model generates audio (use `generate`); its test NLL is in metrics.json",
            a.model.display()
        );
    }
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
    if info.model.is_generative() {
        bail!("{}: a SaShiMi model does not classify (use `generate`)", a.model.display());
    }
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

/// The files `generate` writes: `out` itself for one clip, numbered beside it for several.
fn numbered(out: &Path, count: usize) -> Vec<PathBuf> {
    if count == 1 {
        return vec![out.to_path_buf()];
    }
    let stem = out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "generated".into());
    (1..=count).map(|i| out.with_file_name(format!("{stem}-{i}.wav"))).collect()
}

/// One µ-law level per row of `probs` `[count × LEVELS]`, drawn by inverse-CDF sampling.
fn sample_levels(probs: &[f64], rng: &mut StdRng) -> Vec<i64> {
    probs
        .chunks(LEVELS)
        .map(|p| {
            let u: f64 = rng.random();
            let mut acc = 0.0;
            let q = p.iter().position(|&pi| {
                acc += pi;
                acc >= u
            });
            q.unwrap_or(LEVELS - 1) as i64
        })
        .collect()
}

/// Softmax of each row of `LEVELS` logits divided by `temperature`.
fn softmax_rows(logits: &[f32], temperature: f64) -> Vec<f64> {
    let mut p: Vec<f64> = logits.iter().map(|&v| f64::from(v) / temperature).collect();
    for row in p.chunks_mut(LEVELS) {
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        row.iter_mut().for_each(|v| *v = (*v - max).exp());
        let sum: f64 = row.iter().sum();
        row.iter_mut().for_each(|v| *v /= sum);
    }
    p
}

/// Tokens of every sequence → their logits.
type Sampler<'a> = dyn FnMut(&[i64]) -> Vec<f32> + 'a;

/// One generation step for `k` sequences: tokens → logits `[k × LEVELS]`, through the
/// plain-Rust network when every block has a plain step, else through the tensor `step`.
fn sampler<'a>(net: &'a Sashimi, cfg: &AudioModelConfig, k: usize, device: &'a Device) -> Box<Sampler<'a>> {
    let AudioModelConfig::Sashimi { net: net_cfg, .. } = cfg else { unreachable!("a SaShiMi run") };
    if let Some(mut plain) = PlainSashimi::new(net, net_cfg, k) {
        return Box::new(move |q| plain.step(q).to_vec());
    }
    let mut state = net.init_state(k, device);
    Box::new(move |q| {
        let t = Tensor::<1, Int>::from_data(TensorData::new(q.to_vec(), [q.len()]), device);
        ssm_core::plain::host(net.step(t, &mut state))
    })
}

fn run_generate(a: GenerateArgs) -> Result<()> {
    let device = a.machine.device()?;
    let (info, model) = open_run(&a.model, &device)?;
    let AudioModel::Sashimi(net) = &model else {
        bail!("{}: not a SaShiMi model (train one with --model sashimi)", a.model.display());
    };
    let positive = |v: f64| v.is_finite() && v > 0.0;
    if !positive(a.seconds) || !positive(a.temperature) || a.count == 0 {
        bail!("--seconds, --temperature and --count must be positive");
    }
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create the output folder", dir.display()))?;
    }
    let (rate, _) = info.model.input();
    let k = a.count;
    let prompt: Vec<i64> = match &a.prompt {
        Some(p) => {
            let audio = read_wav(p)?;
            resample(&audio.samples, audio.rate, rate).iter().map(|&x| mu_law_encode(x)).collect()
        }
        None => vec![mu_law_encode(0.0)],
    };
    let mut step = sampler(net, &info.model, k, &device);
    let mut logits = Vec::new();
    for &q in &prompt {
        logits = step(&vec![q; k]);
    }
    let n = (a.seconds * rate as f64).round() as usize;
    let mut rng = StdRng::seed_from_u64(a.seed);
    let mut clips = vec![Vec::with_capacity(n); k];
    let start = std::time::Instant::now();
    for _ in 0..n {
        let q = sample_levels(&softmax_rows(&logits, a.temperature), &mut rng);
        for (clip, &qi) in clips.iter_mut().zip(&q) {
            clip.push(mu_law_decode(qi));
        }
        logits = step(&q);
    }
    let secs = start.elapsed().as_secs_f64();
    for (path, samples) in numbered(&a.out, k).iter().zip(clips) {
        write_wav(path, &Audio { samples, rate })?;
        println!("wrote {} ({n} samples at {rate} Hz)", path.display());
    }
    let per_clip = n as f64 / secs;
    println!(
        "generated {k} × {n} samples in {secs:.1} s: {per_clip:.0} samples/s per clip ({:.2}× real time), {:.0} in all",
        per_clip / rate as f64,
        per_clip * k as f64
    );
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
        Cmd::Generate(a) => run_generate(a),
        Cmd::Spectrogram(a) => run_spectrogram(a),
    });
}
