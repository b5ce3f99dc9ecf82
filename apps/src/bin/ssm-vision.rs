//! `ssm-vision`: train, evaluate and apply Vision Mamba, VMamba, S4ND and SiMBA on images
//! (MNIST-format idx, CIFAR-10 binary, image folders, pixel CSV) and video (frame folders or
//! generated moving digits).

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::Device;
use clap::{Args, Parser, Subcommand};
use serde::{Deserialize, Serialize};
use ssm_apps::Machine;
use ssm_core::einfft::ImagPart;
use ssm_core::train::{DataSource, TrainConfig, fit, load_checkpoint, write_atomic};
use ssm_vision::data::ImageSet;
use ssm_vision::folders::{Labelled, frame_folders, load_split, read_image, resized};
use ssm_vision::models::{ImageBatch, VisionConfig, VisionModel, predict_classes};
use ssm_vision::train::{Augment, ClipSource, ImageSource, clip_set, host_batches, input_shape};
use ssm_vision::video::{ClipLabel, MovingDigits};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    Eval(EvalArgs),
    /// Top-k classes with probabilities for image files.
    Predict(PredictArgs),
    /// Train a video classifier on frame folders or generated moving digits.
    TrainVideo(VideoArgs),
    /// Test accuracy of a trained video model.
    EvalVideo(EvalArgs),
    /// Training and inference throughput of each model (images/s).
    Bench(BenchArgs),
}

#[derive(Args, Debug, Clone)]
struct ModelArgs {
    /// vim, vmamba, s4nd or simba.
    #[arg(long, default_value = "vim")]
    model: String,
    /// Width (first stage's for vmamba / simba).
    #[arg(long)]
    width: Option<usize>,
    /// Blocks (per stage for vmamba / simba).
    #[arg(long)]
    depth: Option<usize>,
    /// Patch size in pixels.
    #[arg(long)]
    patch: Option<usize>,
    /// SiMBA: what EinFFT does with the imaginary part after its inverse FFT: drop (the
    /// released code's choice), add, modulus.
    #[arg(long, default_value = "drop")]
    imag: String,
}

#[derive(Args, Debug)]
struct Schedule {
    #[arg(long, default_value_t = 4000)]
    steps: usize,
    /// Evaluations (and checkpoints) per run.
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    #[arg(long, default_value_t = 0.05)]
    weight_decay: f64,
    /// Training-time budget in seconds: the step count is fitted to it.
    #[arg(long)]
    time_budget: Option<f64>,
    /// Test items evaluated at each epoch (the whole test split is evaluated at the end).
    #[arg(long, default_value_t = 2000)]
    eval_size: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Continue from the checkpoint in --out.
    #[arg(long)]
    resume: bool,
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
    #[arg(long)]
    size: Option<usize>,
    /// Augmentation: none, crop (pad 2, random crop) or crop-flip.
    #[arg(long, default_value = "crop")]
    augment: String,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    schedule: Schedule,
    #[arg(long, default_value = "runs/vision")]
    out: PathBuf,
    #[command(flatten)]
    machine: Machine,
}

#[derive(Args, Debug)]
struct EvalArgs {
    /// A directory written by train / train-video.
    #[arg(long)]
    model: PathBuf,
    /// Dataset (default: the one the model was trained on).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Evaluate at SIZE×SIZE (S4ND generates its kernels for any resolution).
    #[arg(long)]
    size: Option<usize>,
    /// Where eval.json and confusion.png go (default: the model directory).
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, default_value_t = 128)]
    batch: usize,
    #[command(flatten)]
    machine: Machine,
}

#[derive(Args, Debug)]
struct PredictArgs {
    #[arg(long)]
    model: PathBuf,
    /// Image files.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    #[arg(long, default_value_t = 3)]
    top_k: usize,
    #[command(flatten)]
    machine: Machine,
}

#[derive(Args, Debug)]
struct VideoArgs {
    /// Frame folders: a directory with train/ and test/, each `<class>/<clip>/<frames>`.
    /// Default: moving digits generated from --digits-train / --digits-test.
    #[arg(long)]
    data: Option<PathBuf>,
    #[arg(long, default_value = "../shared/data/vision/mnist-small/mnist_5k.csv.gz")]
    digits_train: PathBuf,
    #[arg(long, default_value = "../shared/data/vision/mnist-small")]
    digits_test: PathBuf,
    /// Moving digits: the label is the digits' sum or the larger digit.
    #[arg(long, default_value = "sum")]
    label: String,
    #[arg(long, default_value_t = 8)]
    frames: usize,
    /// Frame side in pixels.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Generated test clips.
    #[arg(long, default_value_t = 1000)]
    test_clips: usize,
    /// Frames per tubelet.
    #[arg(long, default_value_t = 2)]
    tubelet: usize,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    schedule: Schedule,
    #[arg(long, default_value = "runs/video")]
    out: PathBuf,
    #[command(flatten)]
    machine: Machine,
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// Models, comma-separated.
    #[arg(long, default_value = "vim,vmamba,s4nd,simba")]
    models: String,
    #[arg(long, default_value_t = 28)]
    size: usize,
    #[arg(long, default_value_t = 1)]
    channels: usize,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    #[arg(long, default_value_t = 5)]
    iters: usize,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    machine: Machine,
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
    video: Option<VideoSpec>,
}

#[derive(Serialize, Deserialize, Clone)]
struct VideoSpec {
    frames: usize,
    size: usize,
    label: String,
    digits_test: PathBuf,
    test_clips: usize,
    seed: u64,
}

fn model_config(
    m: &ModelArgs,
    input: ssm_vision::models::InputShape,
    classes: usize,
    tubelet: usize,
) -> Result<VisionConfig> {
    let mut cfg = VisionConfig::by_name(&m.model, input, classes).map_err(anyhow::Error::msg)?;
    if let Some(w) = m.width {
        cfg.set_width(w);
    }
    if let Some(d) = m.depth {
        cfg.set_depth(d);
    }
    if let Some(p) = m.patch {
        cfg.set_patch(p);
    }
    let imag = match m.imag.as_str() {
        "drop" => ImagPart::Drop,
        "add" => ImagPart::Add,
        "modulus" => ImagPart::Modulus,
        o => bail!("--imag: unknown choice '{o}' (drop, add, modulus)"),
    };
    match &mut cfg {
        VisionConfig::Simba(c) => c.imag = imag,
        VisionConfig::Vim(c) => c.tubelet = tubelet,
        VisionConfig::S4nd(c) => c.tubelet = tubelet,
        _ => {}
    }
    Ok(cfg)
}

fn train_config(s: &Schedule, out: &Path) -> TrainConfig {
    TrainConfig {
        steps: s.steps,
        epochs: s.epochs,
        lr: s.lr,
        warmup_steps: (s.steps / 20).clamp(1, 200),
        weight_decay: s.weight_decay,
        seed: s.seed,
        out: Some(out.to_path_buf()),
        resume: s.resume,
        time_budget: s.time_budget,
        ..TrainConfig::default()
    }
}

/// Accuracy, confusion matrix and inference throughput on a whole set.
struct Report {
    accuracy: f64,
    confusion: Vec<Vec<usize>>,
    images_per_second: f64,
}

fn evaluate_set(
    model: &VisionModel,
    set: &ImageSet,
    stats: &[(f32, f32)],
    classes: usize,
    batch: usize,
    device: &Device,
) -> Report {
    let idx: Vec<usize> = (0..set.len()).collect();
    let mut confusion = vec![vec![0usize; classes]; classes];
    let (mut correct, mut seconds) = (0usize, 0.0);
    for hb in host_batches(set, stats, &idx, batch) {
        let b = hb.to_device(device);
        let t0 = Instant::now();
        let pred = predict_classes(model, b.x);
        seconds += t0.elapsed().as_secs_f64();
        for (p, t) in pred.iter().zip(&hb.labels) {
            correct += usize::from(p == t);
            if let (Some(row), true) = (confusion.get_mut(*t as usize), (*p as usize) < classes) {
                row[*p as usize] += 1;
            }
        }
    }
    Report {
        accuracy: correct as f64 / set.len().max(1) as f64,
        confusion,
        images_per_second: set.len() as f64 / seconds.max(1e-9),
    }
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
    load_checkpoint(&dir.join("checkpoint"), model).map_err(anyhow::Error::msg)
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
    write_atomic(&out.join("vision.json"), &serde_json::to_vec_pretty(&info)?).map_err(anyhow::Error::msg)?;
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
    let fitted = fit(model, data, tc, &adev).map_err(anyhow::Error::msg)?;
    let model = fitted.model.valid();
    let r = evaluate_set(&model, test, &info.stats, info.config.classes(), batch.max(64), device);
    fitted.state.epochs.last().context("no evaluation ran")?;
    // training throughput over the whole run (steps × batch / seconds of training steps)
    let train_ips = (fitted.state.step * batch) as f64 / fitted.state.train_seconds.max(1e-9);
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
    write_atomic(&mp, &serde_json::to_vec_pretty(&metrics)?).map_err(anyhow::Error::msg)?;
    let title = format!("{} — test accuracy {:.4}", info.config.name(), r.accuracy);
    ssm_core::plot::confusion_matrix(&out.join("confusion.png"), &title, &info.class_names, &r.confusion)
        .map_err(anyhow::Error::msg)?;
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

fn augment_of(name: &str) -> Result<Option<Augment>> {
    Ok(match name {
        "none" => None,
        "crop" => Some(Augment { pad: 2, flip: false }),
        "crop-flip" => Some(Augment { pad: 2, flip: true }),
        o => bail!("--augment: unknown choice '{o}' (none, crop, crop-flip)"),
    })
}

fn train(a: TrainArgs) -> Result<()> {
    let device = a.machine.device()?;
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
            let names: Vec<String> = ["square", "frame", "disc", "cross"].iter().map(|s| s.to_string()).collect();
            (
                Labelled { set: shapes(6000, 1), class_names: names.clone() },
                Labelled { set: shapes(1000, 2), class_names: names },
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
    let eval_idx = eval_subset(test_set.len(), a.schedule.eval_size);
    let mut src =
        ImageSource::new(train_set, &test_set, &eval_idx, a.schedule.batch, a.schedule.seed, augment_of(&a.augment)?);
    println!("{} training / {} test images of {:?}", src.train.len(), test_set.len(), input_shape(&src.train));
    let info = RunInfo {
        config: cfg,
        stats: src.stats.clone(),
        class_names: train.class_names,
        data: a.data.clone(),
        test: a.test.clone(),
        video: None,
    };
    let tc = train_config(&a.schedule, &a.out);
    train_and_report(info, &mut src, &test_set, &tc, &a.out, &device, a.schedule.batch)
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

/// A generated task for runs without data: filled square, hollow square, disc or cross at a
/// random place and scale on a noisy 28×28 background.
fn shapes(n: usize, seed: u64) -> ImageSet {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (s, mut pixels, mut labels) = (28usize, Vec::with_capacity(n * 784), Vec::with_capacity(n));
    for _ in 0..n {
        let k = rng.random_range(0..4u32);
        let r = rng.random_range(4..9) as f64;
        let (cy, cx) = (rng.random_range(r..s as f64 - r), rng.random_range(r..s as f64 - r));
        for y in 0..s {
            for x in 0..s {
                let (dy, dx) = (y as f64 - cy, x as f64 - cx);
                let on = match k {
                    0 => dy.abs() <= r && dx.abs() <= r,
                    1 => dy.abs().max(dx.abs()) <= r && dy.abs().max(dx.abs()) >= r - 1.5,
                    2 => dy * dy + dx * dx <= r * r,
                    _ => (dy.abs() <= 1.0 && dx.abs() <= r) || (dx.abs() <= 1.0 && dy.abs() <= r),
                };
                let noise = rng.random_range(0..40u8);
                pixels.push(if on { 255 - noise } else { noise });
            }
        }
        labels.push(k);
    }
    ImageSet { pixels, labels, channels: 1, frames: 1, height: s, width: s, classes: 4 }
}

fn eval(a: EvalArgs, video: bool) -> Result<()> {
    let device = a.machine.device()?;
    let info = read_info(&a.model)?;
    let want = info.config.input();
    if want.is_video() != video {
        let (kind, cmd) = if want.is_video() { ("a video", "eval-video") } else { ("an image", "eval") };
        bail!("{}: {kind} model: use {cmd}", a.model.display());
    }
    let data = a.data.clone().or(info.test.clone()).or(info.data.clone());
    let test = match (&info.video, data) {
        (Some(v), None) => generated_test_clips(v)?,
        (_, Some(path)) if video => frame_folders(&path.join("test"), want.frames, (want.height, want.width))?.set,
        (_, Some(path)) => {
            let l = load_split(&path, true, a.size.map(|s| (s, s)))?;
            match a.size {
                Some(s) => resized(&l.set, (s, s)),
                None => l.set,
            }
        }
        (None, None) => match a.size {
            Some(s) => resized(&shapes(1000, 2), (s, s)),
            None => shapes(1000, 2),
        },
    };
    let model = load_model(&a.model, &info, &device)?;
    if test.channels != want.channels || test.frames != want.frames {
        bail!(
            "test items have {} channels × {} frames, the model takes {} × {}",
            test.channels,
            test.frames,
            want.channels,
            want.frames
        );
    }
    if (test.height, test.width) != (want.height, want.width) && !matches!(info.config, VisionConfig::S4nd(_)) {
        bail!(
            "test images are {}×{}, the model was trained at {}×{} (only s4nd evaluates at other sizes)",
            test.height,
            test.width,
            want.height,
            want.width
        );
    }
    let r = evaluate_set(&model, &test, &info.stats, info.config.classes(), a.batch, &device);
    let out = a.out.clone().unwrap_or(a.model.clone());
    std::fs::create_dir_all(&out).with_context(|| format!("{}", out.display()))?;
    let json = serde_json::json!({
        "model": info.config.name(), "test_accuracy": r.accuracy, "test_size": test.len(),
        "height": test.height, "width": test.width, "inference_images_per_second": r.images_per_second,
        "confusion": r.confusion,
    });
    write_atomic(&out.join("eval.json"), &serde_json::to_vec_pretty(&json)?).map_err(anyhow::Error::msg)?;
    let title = format!("{} — test accuracy {:.4} ({}×{})", info.config.name(), r.accuracy, test.height, test.width);
    ssm_core::plot::confusion_matrix(&out.join("eval-confusion.png"), &title, &info.class_names, &r.confusion)
        .map_err(anyhow::Error::msg)?;
    println!(
        "{}: test accuracy {:.4} on {} items at {}×{} ({:.1} images/s) → {}",
        info.config.name(),
        r.accuracy,
        test.len(),
        test.height,
        test.width,
        r.images_per_second,
        out.join("eval.json").display()
    );
    Ok(())
}

fn predict(a: PredictArgs) -> Result<()> {
    let device = a.machine.device()?;
    let info = read_info(&a.model)?;
    if info.video.is_some() {
        bail!("{}: a video model (predict takes images)", a.model.display());
    }
    let model = load_model(&a.model, &info, &device)?;
    let inp = info.config.input();
    for path in &a.images {
        let px = read_image(path, inp.channels, (inp.height, inp.width))?;
        let set = ImageSet {
            pixels: px,
            labels: vec![0],
            channels: inp.channels,
            frames: 1,
            height: inp.height,
            width: inp.width,
            classes: 1,
        };
        let hb = host_batches(&set, &info.stats, &[0], 1).remove(0);
        let probs = model
            .probabilities(hb.to_device(&device).x)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        let mut ranked: Vec<(usize, f32)> = probs.into_iter().enumerate().collect();
        ranked.sort_by(|x, y| y.1.total_cmp(&x.1));
        let top: Vec<String> = ranked
            .iter()
            .take(a.top_k.max(1))
            .map(|(k, p)| format!("{} {:.4}", info.class_names.get(*k).cloned().unwrap_or_else(|| k.to_string()), p))
            .collect();
        println!("{}: {}", path.display(), top.join(", "));
    }
    Ok(())
}

fn clip_label(name: &str) -> Result<ClipLabel> {
    match name {
        "sum" => Ok(ClipLabel::Sum),
        "larger" => Ok(ClipLabel::Larger),
        o => bail!("--label: unknown choice '{o}' (sum, larger)"),
    }
}

fn load_digits(p: &Path, test: bool) -> Result<ImageSet> {
    if !p.exists() {
        bail!(
            "{}: no such file or directory (moving digits need MNIST digits: pass --digits-train / --digits-test)",
            p.display()
        );
    }
    Ok(load_split(p, test, None)?.set)
}

fn generated_test_clips(v: &VideoSpec) -> Result<ImageSet> {
    let digits = load_digits(&v.digits_test, true)?;
    let generator = MovingDigits::new(v.frames, v.size, clip_label(&v.label)?);
    Ok(clip_set(&generator, &digits, v.seed.wrapping_add(1_000_003), 0, v.test_clips))
}

fn train_video(a: VideoArgs) -> Result<()> {
    let device = a.machine.device()?;
    let tc = train_config(&a.schedule, &a.out);
    if let Some(dir) = &a.data {
        let size = (a.size, a.size);
        let train = frame_folders(&dir.join("train"), a.frames, size)?;
        let test = frame_folders(&dir.join("test"), a.frames, size)?;
        check_compatible(&train.set, &test.set)?;
        let cfg = model_config(&a.model, input_shape(&train.set), train.set.classes.max(test.set.classes), a.tubelet)?;
        let eval_idx = eval_subset(test.set.len(), a.schedule.eval_size);
        let mut src = ImageSource::new(train.set, &test.set, &eval_idx, a.schedule.batch, a.schedule.seed, None);
        let info = RunInfo {
            config: cfg,
            stats: src.stats.clone(),
            class_names: train.class_names,
            data: a.data.clone(),
            test: None,
            video: None,
        };
        return train_and_report(info, &mut src, &test.set, &tc, &a.out, &device, a.schedule.batch);
    }
    let spec = VideoSpec {
        frames: a.frames,
        size: a.size,
        label: a.label.clone(),
        digits_test: a.digits_test.clone(),
        test_clips: a.test_clips,
        seed: a.schedule.seed,
    };
    let generator = MovingDigits::new(a.frames, a.size, clip_label(&a.label)?);
    let digits = load_digits(&a.digits_train, false)?;
    let test = generated_test_clips(&spec)?;
    let eval = ImageSet::clone(&test);
    let eval_idx = eval_subset(eval.len(), a.schedule.eval_size);
    let eval_part = subset(&eval, &eval_idx);
    let classes = generator.classes(&digits);
    let mut src = ClipSource::new(generator, digits, &eval_part, a.schedule.batch, a.schedule.seed);
    let cfg = model_config(&a.model, input_shape(&test), classes, a.tubelet)?;
    println!(
        "moving digits: {} frames of {}×{}, label {}, {classes} classes; {} test clips",
        a.frames,
        a.size,
        a.size,
        a.label,
        test.len()
    );
    let info = RunInfo {
        config: cfg,
        stats: src.stats.clone(),
        class_names: (0..classes).map(|i| i.to_string()).collect(),
        data: None,
        test: None,
        video: Some(spec),
    };
    train_and_report(info, &mut src, &test, &tc, &a.out, &device, a.schedule.batch)
}

fn subset(set: &ImageSet, idx: &[usize]) -> ImageSet {
    let n = set.image_size();
    ImageSet {
        pixels: idx.iter().flat_map(|&i| set.pixels[i * n..(i + 1) * n].iter().copied()).collect(),
        labels: idx.iter().map(|&i| set.labels[i]).collect(),
        ..set.clone()
    }
}

fn bench(a: BenchArgs) -> Result<()> {
    use burn::optim::{AdamWConfig, GradientsParams};
    use ssm_core::train::Trainable;
    let device = a.machine.device()?;
    let adev = device.clone().autodiff();
    let input = ssm_vision::models::InputShape::image(a.channels, a.size, a.size);
    println!("| model | params | train images/s | inference images/s |\n|---|---|---|---|");
    for name in a.models.split(',').map(str::trim) {
        let m = ModelArgs { model: name.to_string(), ..a.model.clone() };
        let cfg = model_config(&m, input, 10, 1)?;
        let mut model = cfg.init(&adev);
        let params = model.parameter_count();
        let n = a.batch * a.channels * a.size * a.size;
        let pixels: Vec<f32> = (0..n).map(|i| ((i * 7919) % 255) as f32 / 255.0).collect();
        let labels: Vec<i64> = (0..a.batch as i64).map(|i| i % 10).collect();
        let shape = [a.batch, a.channels, 1, a.size, a.size];
        let b = ImageBatch::new(pixels.clone(), shape, labels.clone(), &adev);
        let mut optim = AdamWConfig::new().init();
        let mut times = Vec::new();
        for _ in 0..a.iters + 1 {
            let t0 = Instant::now();
            let (loss, _) = model.loss(&b);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(1e-4, model, grads);
            times.push(t0.elapsed().as_secs_f64());
        }
        let train = a.batch as f64 / median(&mut times[1..].to_vec());
        let valid = model.valid();
        let bi = ImageBatch::new(pixels, shape, labels, &device);
        let mut times = Vec::new();
        for _ in 0..a.iters + 1 {
            let t0 = Instant::now();
            let _ = predict_classes(&valid, bi.x.clone());
            times.push(t0.elapsed().as_secs_f64());
        }
        let infer = a.batch as f64 / median(&mut times[1..].to_vec());
        println!("| {name} | {params} | {train:.1} | {infer:.1} |");
    }
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Train(a) => train(a),
        Cmd::Eval(a) => eval(a, false),
        Cmd::Predict(a) => predict(a),
        Cmd::TrainVideo(a) => train_video(a),
        Cmd::EvalVideo(a) => eval(a, true),
        Cmd::Bench(a) => bench(a),
    };
    if let Err(e) = r {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
