//! `classify-train` and `classify-eval`: sequence classification of UEA / UCR `.ts` files.

use crate::{read_json, schedule};
use anyhow::{Context, Result, bail};
use burn::module::Module;
use clap::Args;
use serde::{Deserialize, Serialize};
use ssm_apps::{Machine, MixerArgs, TrainFlags, update_metrics, write_json};
use ssm_core::blocks::BlockConfig;
use ssm_core::train::{fit, load_checkpoint};
use ssm_timeseries::models::ClassifierConfig;
use ssm_timeseries::train::{ClassifySource, classify_accuracy};
use ssm_timeseries::uea::TsSet;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ClassifyArgs {
    /// `*_TRAIN.ts`
    #[arg(long)]
    train: PathBuf,
    /// `*_TEST.ts`
    #[arg(long)]
    test: PathBuf,
    #[command(flatten)]
    mixer: MixerArgs,
    #[arg(long, default_value_t = 64, value_parser = ssm_apps::positive)]
    d_model: usize,
    #[arg(long, default_value_t = 2, value_parser = ssm_apps::positive)]
    layers: usize,
    #[command(flatten)]
    flags: TrainFlags,
}

#[derive(Args, Debug)]
pub struct ClassifyEvalArgs {
    #[arg(long)]
    model: PathBuf,
    /// Default: the test file the model was trained with.
    #[arg(long)]
    test: Option<PathBuf>,
    #[command(flatten)]
    machine: Machine,
}

#[derive(Serialize, Deserialize)]
struct ClassifyInfo {
    config: ClassifierConfig,
    stats: Vec<(f32, f32)>,
    class_names: Vec<String>,
    test: PathBuf,
}

pub fn classify_train(a: ClassifyArgs) -> Result<()> {
    let t = &a.flags;
    let device = t.device()?;
    let train = TsSet::read(&a.train, None)?;
    let test = TsSet::read(&a.test, Some(&train.class_names))?;
    if test.dims != train.dims {
        bail!("{}: {} dimensions, the training file has {}", a.test.display(), test.dims, train.dims);
    }
    let stats = train.stats();
    let mut block = BlockConfig::new(a.mixer.config(a.d_model)?);
    block.mlp_hidden = Some(2 * a.d_model);
    let config = ClassifierConfig { dims: train.dims, classes: train.class_names.len(), block, layers: a.layers };
    println!(
        "{}: {} train / {} test cases, {} dimensions, lengths {}–{}, {} classes",
        train.problem,
        train.len(),
        test.len(),
        train.dims,
        train.lengths.iter().min().unwrap_or(&0),
        train.max_len(),
        config.classes
    );
    std::fs::create_dir_all(&t.out).with_context(|| format!("{}", t.out.display()))?;
    let info = ClassifyInfo {
        config: config.clone(),
        stats: stats.clone(),
        class_names: train.class_names.clone(),
        test: a.test.clone(),
    };
    write_json(&t.out.join("classifier.json"), &info)?;
    let adev = device.clone().autodiff();
    adev.seed(t.seed);
    let model = config.init(&adev);
    let params = model.num_params();
    // Evaluation during training uses the training cases (no separate validation split in
    // these archives); the test file is scored once, at the end.
    let mut src = ClassifySource::new(train.clone(), train, stats.clone(), t.batch, t.seed);
    let tc = schedule(t, src.train.len(), &t.out);
    let fitted = fit(model, &mut src, &tc, &adev)?;
    let acc = classify_accuracy(&fitted.model.valid(), &test, &stats, &device);
    update_metrics(
        &t.out,
        serde_json::json!({"problem": test.problem, "mixer": a.mixer.mixer, "params": params, "test_accuracy": acc, "test_size": test.len()}),
    )?;
    println!(
        "{}: test accuracy {acc:.4} on {} cases ({params} parameters) → {}",
        test.problem,
        test.len(),
        t.out.display()
    );
    Ok(())
}

pub fn classify_eval(a: ClassifyEvalArgs) -> Result<()> {
    let device = a.machine.device()?;
    let info: ClassifyInfo = read_json(&a.model.join("classifier.json"))?;
    let path = a.test.clone().unwrap_or(info.test.clone());
    let test = TsSet::read(&path, Some(&info.class_names))?;
    if test.dims != info.config.dims {
        bail!("{}: {} dimensions, the model takes {}", path.display(), test.dims, info.config.dims);
    }
    let model = load_checkpoint(&a.model.join("checkpoint"), info.config.init(&device))?;
    let acc = classify_accuracy(&model, &test, &info.stats, &device);
    println!("{}: test accuracy {acc:.4} on {} cases", test.problem, test.len());
    Ok(())
}
