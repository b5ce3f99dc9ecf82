//! `train-video`: video classifiers on frame folders or generated moving digits.

use crate::{
    EvalSize, ModelArgs, RunInfo, check_compatible, eval_subset, model_config, train_and_report, train_config,
};
use anyhow::{Result, bail};
use clap::Args;
use serde::{Deserialize, Serialize};
use ssm_apps::TrainFlags;
use ssm_vision::data::ImageSet;
use ssm_vision::folders::{frame_folders, load_split};
use ssm_vision::train::{ClipSource, ImageSource, clip_set, input_shape};
use ssm_vision::video::{ClipLabel, MovingDigits};
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct VideoArgs {
    /// Frame folders: a directory with train/ and test/, each `<class>/<clip>/<frames>`.
    /// Default: moving digits generated from --digits-train / --digits-test.
    #[arg(long)]
    data: Option<PathBuf>,
    #[arg(long, default_value = "../shared/data/vision/mnist-small/mnist_5k.csv.gz")]
    digits_train: PathBuf,
    #[arg(long, default_value = "../shared/data/vision/mnist-small")]
    digits_test: PathBuf,
    /// Moving digits: the label is the digits' sum or the larger digit.
    #[arg(long, value_enum, default_value_t = ClipLabel::Sum)]
    label: ClipLabel,
    #[arg(long, default_value_t = 8, value_parser = ssm_apps::positive)]
    frames: usize,
    /// Frame side in pixels.
    #[arg(long, default_value_t = 64, value_parser = ssm_apps::positive)]
    size: usize,
    /// Generated test clips.
    #[arg(long, default_value_t = 1000, value_parser = ssm_apps::positive)]
    test_clips: usize,
    /// Frames per tubelet.
    #[arg(long, default_value_t = 2, value_parser = ssm_apps::positive)]
    tubelet: usize,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    eval: EvalSize,
    #[command(flatten)]
    train: TrainFlags,
}

#[derive(Serialize, Deserialize, Clone)]
pub struct VideoSpec {
    frames: usize,
    size: usize,
    label: ClipLabel,
    digits_test: PathBuf,
    test_clips: usize,
    seed: u64,
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

pub fn generated_test_clips(v: &VideoSpec) -> Result<ImageSet> {
    let digits = load_digits(&v.digits_test, true)?;
    let generator = MovingDigits::new(v.frames, v.size, v.label);
    Ok(clip_set(&generator, &digits, v.seed.wrapping_add(1_000_003), 0, v.test_clips))
}

pub fn train_video(a: VideoArgs) -> Result<()> {
    let t = &a.train;
    let device = t.device()?;
    let tc = train_config(t);
    if let Some(dir) = &a.data {
        let size = (a.size, a.size);
        let train = frame_folders(&dir.join("train"), a.frames, size)?;
        let test = frame_folders(&dir.join("test"), a.frames, size)?;
        check_compatible(&train.set, &test.set)?;
        let cfg = model_config(&a.model, input_shape(&train.set), train.set.classes.max(test.set.classes), a.tubelet)?;
        let eval_idx = eval_subset(test.set.len(), a.eval.eval_size);
        let mut src = ImageSource::new(train.set, &test.set, &eval_idx, t.batch, t.seed, None);
        let info = RunInfo {
            config: cfg,
            stats: src.stats.clone(),
            class_names: train.class_names,
            data: a.data.clone(),
            test: None,
            video: None,
        };
        return train_and_report(info, &mut src, &test.set, &tc, &t.out, &device, t.batch);
    }
    let spec = VideoSpec {
        frames: a.frames,
        size: a.size,
        label: a.label,
        digits_test: a.digits_test.clone(),
        test_clips: a.test_clips,
        seed: t.seed,
    };
    let generator = MovingDigits::new(a.frames, a.size, a.label);
    let digits = load_digits(&a.digits_train, false)?;
    let test = generated_test_clips(&spec)?;
    let eval_part = test.subset(&eval_subset(test.len(), a.eval.eval_size));
    let classes = generator.classes(&digits);
    let mut src = ClipSource::new(generator, digits, &eval_part, t.batch, t.seed);
    let cfg = model_config(&a.model, input_shape(&test), classes, a.tubelet)?;
    println!(
        "moving digits: {} frames of {}×{}, label {:?}, {classes} classes; {} test clips",
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
    train_and_report(info, &mut src, &test, &tc, &t.out, &device, t.batch)
}
