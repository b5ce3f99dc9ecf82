//! `ssm-vision`: train, evaluate and apply Vision Mamba, VMamba, S4ND and SiMBA on images
//! (MNIST-format idx, CIFAR-10 binary, image folders, pixel CSV) and video (frame folders or
//! generated moving digits).

mod bench;
mod eval;
mod video;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::Device;
use clap::builder::PossibleValuesParser;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use ssm_apps::{TrainFlags, write_json};
use ssm_core::einfft::ImagPart;
use ssm_core::train::{DataSource, TrainConfig, fit, load_checkpoint};
use ssm_vision::data::{ImageSet, SHAPE_CLASSES};
use ssm_vision::folders::{Labelled, load_split, resized};
use ssm_vision::models::{ImageBatch, MODEL_NAMES, VimPool, VisionConfig, VisionModel};
use ssm_vision::train::{Augment, ImageSource, evaluate, input_shape};
use std::path::{Path, PathBuf};

#[derive(Parser, Debug)]
#[command(about = "State-space vision models: Vision Mamba, VMamba, S4ND, SiMBA (images and video)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Train an image classifier (test accuracy on the dataset's test split at the end).
    Train(TrainArgs),
    /// Test accuracy and confusion matrix of a trained model (optionally at another --size).
    Eval(eval::EvalArgs),
    /// Top-k classes with probabilities for image files.
    Predict(eval::PredictArgs),
    /// Train a video classifier on frame folders or generated moving digits.
    TrainVideo(video::VideoArgs),
    /// Test accuracy of a trained video model.
    EvalVideo(eval::EvalArgs),
    /// Training and inference throughput of each model (images/s).
    Bench(bench::BenchArgs),
}

#[derive(Args, Debug, Clone)]
struct ModelArgs {
    #[arg(long, default_value = "vim", value_parser = PossibleValuesParser::new(MODEL_NAMES))]
    model: String,
    /// Width (first stage's for vmamba / simba).
    #[arg(long, value_parser = ssm_apps::positive)]
    width: Option<usize>,
    /// Blocks (per stage for vmamba / simba).
    #[arg(long, value_parser = ssm_apps::positive)]
    depth: Option<usize>,
    /// Patch size in pixels.
    #[arg(long, value_parser = ssm_apps::positive)]
    patch: Option<usize>,
    /// SiMBA: what EinFFT does with the imaginary part after its inverse FFT (drop: the
    /// released code's choice).
    #[arg(long, value_enum, default_value_t = ImagPart::Drop)]
    imag: ImagPart,
    /// Vim: what the head reads — the class token in the middle (Vim's published setting) or
    /// the mean of the patch tokens (no class token).
    #[arg(long, value_enum, default_value_t = VimPool::Middle)]
    pool: VimPool,
}

/// Test items evaluated at each epoch (the whole test split is evaluated at the end).
#[derive(Args, Debug)]
struct EvalSize {
    #[arg(long, default_value_t = 2000, value_parser = ssm_apps::positive)]
    eval_size: usize,
}

/// This app's training defaults.
const TRAIN_DEFAULTS: &[(&str, &str)] = &[("steps", "4000"), ("batch", "64"), ("lr", "2e-3")];

/// Training-time augmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AugmentChoice {
    None,
    /// Pad 2 pixels, random crop.
    Crop,
    /// Crop and random horizontal flip.
    CropFlip,
}

#[derive(Args, Debug)]
struct TrainArgs {
    /// Dataset: an MNIST-layout directory (idx, .gz or plain), a CIFAR-10 binary directory, a
    /// directory with train/ and test/ image folders, or a pixel CSV (then give --test).
    /// Default: a generated shapes task.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Test split, when --data holds only training data.
    #[arg(long)]
    test: Option<PathBuf>,
    /// Resize images to SIZE×SIZE.
    #[arg(long, value_parser = ssm_apps::positive)]
    size: Option<usize>,
    #[arg(long, value_enum, default_value_t = AugmentChoice::Crop)]
    augment: AugmentChoice,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    eval: EvalSize,
    #[command(flatten)]
    train: TrainFlags,
}

/// What a model directory holds besides the checkpoint.
#[derive(Serialize, Deserialize)]
struct RunInfo {
    config: VisionConfig,
    stats: Vec<(f32, f32)>,
    class_names: Vec<String>,
    /// Training data path (images) or the moving-digits settings (video).
    data: Option<PathBuf>,
    test: Option<PathBuf>,
    video: Option<video::VideoSpec>,
}

fn model_config(
    m: &ModelArgs,
    input: ssm_vision::models::InputShape,
    classes: usize,
    tubelet: usize,
) -> Result<VisionConfig> {
    let mut cfg = VisionConfig::by_name(&m.model, input, classes)?;
    if let Some(w) = m.width {
        cfg.set_width(w);
    }
    if let Some(d) = m.depth {
        cfg.set_depth(d);
    }
    if let Some(p) = m.patch {
        cfg.set_patch(p);
    }
    let (imag, pool) = (m.imag, m.pool);
    if pool != VimPool::Middle && !matches!(cfg, VisionConfig::Vim(_)) {
        bail!("--pool is a Vim setting (model '{}')", m.model);
    }
    match &mut cfg {
        VisionConfig::Simba(c) => c.imag = imag,
        VisionConfig::Vim(c) => (c.tubelet, c.pool) = (tubelet, pool),
        VisionConfig::S4nd(c) => c.tubelet = tubelet,
        _ => {}
    }
    Ok(cfg)
}

fn train_config(t: &TrainFlags) -> TrainConfig {
    t.config(t.steps_or(|| 4000))
}

/// Evenly spaced test items for the per-epoch evaluation.
fn eval_subset(n: usize, size: usize) -> Vec<usize> {
    let k = size.clamp(1, n.max(1));
    (0..k).map(|i| i * n / k).collect()
}

fn read_info(dir: &Path) -> Result<RunInfo> {
    let p = dir.join("vision.json");
    let text = std::fs::read_to_string(&p).with_context(|| format!("{}: not a model directory", p.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a vision run description", p.display()))
}

fn load_model(dir: &Path, info: &RunInfo, device: &Device) -> Result<VisionModel> {
    let model = info.config.init(device);
    Ok(load_checkpoint(&dir.join("checkpoint"), model)?)
}

/// Trains, evaluates the whole test set, writes metrics.json additions and confusion.png.
#[allow(clippy::too_many_arguments)]
fn train_and_report(
    info: RunInfo,
    data: &mut dyn DataSource<ImageBatch>,
    test: &ImageSet,
    tc: &TrainConfig,
    out: &Path,
    device: &Device,
    batch: usize,
) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("{}", out.display()))?;
    write_json(&out.join("vision.json"), &info)?;
    let adev = device.clone().autodiff();
    adev.seed(tc.seed);
    let model = info.config.init(&adev);
    let params = model.parameter_count();
    println!(
        "{} model: {params} parameters, input {:?}, {} classes",
        info.config.name(),
        info.config.input(),
        info.config.classes()
    );
    let fitted = fit(model, data, tc, &adev)?;
    let model = fitted.model.valid();
    let r = evaluate(&model, test, &info.stats, info.config.classes(), batch.max(64), device);
    fitted.state.epochs.last().context("no evaluation ran")?;
    // training throughput over the whole run (steps × batch × devices / seconds of training)
    let train_ips = (fitted.state.step * batch * tc.devices()) as f64 / fitted.state.train_seconds.max(1e-9);
    let mp = out.join("metrics.json");
    let mut metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&mp).with_context(|| format!("{}", mp.display()))?)?;
    let m = metrics.as_object_mut().context("metrics.json is not an object")?;
    m.insert("model".into(), info.config.name().into());
    m.insert("params".into(), params.into());
    m.insert("test_accuracy".into(), r.accuracy.into());
    m.insert("test_size".into(), test.len().into());
    m.insert("images_per_second".into(), train_ips.into());
    m.insert("inference_images_per_second".into(), r.images_per_second.into());
    m.insert("confusion".into(), serde_json::to_value(&r.confusion)?);
    let title = format!("{} — test accuracy {:.4}", info.config.name(), r.accuracy);
    save_report(&mp, &metrics, &out.join("confusion.png"), &title, &info.class_names, &r.confusion)?;
    println!(
        "{}: test accuracy {:.4} on {} items | {params} parameters | {:.1} images/s training, {:.1} images/s inference | {:.0} s training → {}",
        info.config.name(),
        r.accuracy,
        test.len(),
        train_ips,
        r.images_per_second,
        fitted.state.train_seconds,
        out.display()
    );
    Ok(())
}

/// Writes a JSON report (atomically) and the confusion-matrix PNG beside it.
fn save_report(
    json_path: &Path,
    json: &serde_json::Value,
    png: &Path,
    title: &str,
    class_names: &[String],
    confusion: &[Vec<usize>],
) -> Result<()> {
    write_json(json_path, json)?;
    Ok(ssm_core::plot::confusion_matrix(png, title, class_names, confusion)?)
}

fn augment_of(choice: AugmentChoice) -> Option<Augment> {
    match choice {
        AugmentChoice::None => None,
        AugmentChoice::Crop => Some(Augment { pad: 2, flip: false }),
        AugmentChoice::CropFlip => Some(Augment { pad: 2, flip: true }),
    }
}

fn train(a: TrainArgs) -> Result<()> {
    let t = &a.train;
    let device = t.device()?;
    let size = a.size.map(|s| (s, s));
    let (train, test) = match &a.data {
        Some(p) => {
            if a.test.is_none() && p.exists() && (p.is_file() || !has_test_split(p)) {
                bail!("{}: holds no separate test split: pass --test PATH", p.display());
            }
            let train = load_split(p, false, size)?;
            let test = load_split(a.test.as_deref().unwrap_or(p), true, size)?;
            (train, test)
        }
        None => {
            println!("no --data given: training on generated shapes (4 classes, 28×28)");
            let names: Vec<String> = SHAPE_CLASSES.iter().map(|s| s.to_string()).collect();
            (
                Labelled { set: ImageSet::shapes(6000, 1), class_names: names.clone() },
                Labelled { set: ImageSet::shapes(1000, 2), class_names: names },
            )
        }
    };
    let (train_set, test_set) = match size {
        Some(s) => (resized(&train.set, s), resized(&test.set, s)),
        None => (train.set, test.set),
    };
    check_compatible(&train_set, &test_set)?;
    let classes = train_set.classes.max(test_set.classes);
    let cfg = model_config(&a.model, input_shape(&train_set), classes, 1)?;
    let eval_idx = eval_subset(test_set.len(), a.eval.eval_size);
    let mut src = ImageSource::new(train_set, &test_set, &eval_idx, t.batch, t.seed, augment_of(a.augment));
    println!("{} training / {} test images of {:?}", src.train.len(), test_set.len(), input_shape(&src.train));
    let info = RunInfo {
        config: cfg,
        stats: src.stats.clone(),
        class_names: train.class_names,
        data: a.data.clone(),
        test: a.test.clone(),
        video: None,
    };
    train_and_report(info, &mut src, &test_set, &train_config(t), &t.out, &device, t.batch)
}

fn has_test_split(p: &Path) -> bool {
    let has = |n: &str| p.join(n).exists() || p.join(format!("{n}.gz")).exists();
    has("t10k-images-idx3-ubyte") || has("test_batch.bin") || p.join("test").is_dir()
}

fn check_compatible(train: &ImageSet, test: &ImageSet) -> Result<()> {
    if (train.channels, train.frames, train.height, train.width)
        != (test.channels, test.frames, test.height, test.width)
    {
        bail!(
            "train items are {}×{}×{}×{}, test items {}×{}×{}×{} (use --size to resize)",
            train.channels,
            train.frames,
            train.height,
            train.width,
            test.channels,
            test.frames,
            test.height,
            test.width
        );
    }
    if train.is_empty() || test.is_empty() {
        bail!("empty dataset: {} training, {} test items", train.len(), test.len());
    }
    Ok(())
}

fn main() {
    let images = [TRAIN_DEFAULTS, &[("out", "runs/vision")]].concat();
    let video = [TRAIN_DEFAULTS, &[("out", "runs/video")]].concat();
    let cli: Cli = ssm_apps::parse_with_defaults(&[("train", &images), ("train-video", &video)]);
    ssm_apps::exit_on_error(match cli.cmd {
        Cmd::Train(a) => train(a),
        Cmd::Eval(a) => eval::eval(a, false),
        Cmd::Predict(a) => eval::predict(a),
        Cmd::TrainVideo(a) => video::train_video(a),
        Cmd::EvalVideo(a) => eval::eval(a, true),
        Cmd::Bench(a) => bench::bench(a),
    });
}
