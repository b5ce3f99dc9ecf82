//! `eval`, `eval-video` and `predict`: a trained model on a test split or on image files.

use crate::{load_model, read_info, save_report, video};
use anyhow::{Context, Result, bail};
use clap::Args;
use ssm_apps::Machine;
use ssm_vision::data::ImageSet;
use ssm_vision::folders::{frame_folders, load_split, read_image, resized};
use ssm_vision::models::VisionConfig;
use ssm_vision::train::{evaluate, host_batches};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A directory written by train / train-video.
    #[arg(long)]
    model: PathBuf,
    /// Dataset (default: the one the model was trained on).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Evaluate at SIZE×SIZE (S4ND generates its kernels for any resolution).
    #[arg(long, value_parser = ssm_apps::positive)]
    size: Option<usize>,
    /// Where eval.json and confusion.png go (default: the model directory).
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, default_value_t = 128, value_parser = ssm_apps::positive)]
    batch: usize,
    #[command(flatten)]
    machine: Machine,
}

#[derive(Args, Debug)]
pub struct PredictArgs {
    #[arg(long)]
    model: PathBuf,
    /// Image files.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    #[arg(long, default_value_t = 3, value_parser = ssm_apps::positive)]
    top_k: usize,
    #[command(flatten)]
    machine: Machine,
}

pub fn eval(a: EvalArgs, video: bool) -> Result<()> {
    let device = a.machine.device()?;
    let info = read_info(&a.model)?;
    let want = info.config.input();
    if want.is_video() != video {
        let (kind, cmd) = if want.is_video() { ("a video", "eval-video") } else { ("an image", "eval") };
        bail!("{}: {kind} model: use {cmd}", a.model.display());
    }
    let data = a.data.clone().or(info.test.clone()).or(info.data.clone());
    let test = match (&info.video, data) {
        (Some(v), None) => video::generated_test_clips(v)?,
        (_, Some(path)) if video => frame_folders(&path.join("test"), want.frames, (want.height, want.width))?.set,
        (_, Some(path)) => {
            let l = load_split(&path, true, a.size.map(|s| (s, s)))?;
            match a.size {
                Some(s) => resized(&l.set, (s, s)),
                None => l.set,
            }
        }
        (None, None) => match a.size {
            Some(s) => resized(&ImageSet::shapes(1000, 2), (s, s)),
            None => ImageSet::shapes(1000, 2),
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
    let r = evaluate(&model, &test, &info.stats, info.config.classes(), a.batch, &device);
    let out = a.out.clone().unwrap_or(a.model.clone());
    std::fs::create_dir_all(&out).with_context(|| format!("{}", out.display()))?;
    let json = serde_json::json!({
        "model": info.config.name(), "test_accuracy": r.accuracy, "test_size": test.len(),
        "height": test.height, "width": test.width, "inference_images_per_second": r.images_per_second,
        "confusion": r.confusion,
    });
    let title = format!("{} — test accuracy {:.4} ({}×{})", info.config.name(), r.accuracy, test.height, test.width);
    let png = out.join("eval-confusion.png");
    save_report(&out.join("eval.json"), &json, &png, &title, &info.class_names, &r.confusion)?;
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

pub fn predict(a: PredictArgs) -> Result<()> {
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
