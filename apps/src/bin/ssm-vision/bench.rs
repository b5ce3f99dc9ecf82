//! `bench`: training and inference throughput of each model on synthetic batches.

use crate::{ModelArgs, model_config};
use anyhow::Result;
use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use clap::Args;
use clap::builder::PossibleValuesParser;
use ssm_apps::{Machine, median_secs};
use ssm_core::train::Trainable;
use ssm_vision::models::{ImageBatch, MODEL_NAMES, predict_classes};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Models, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "vim,vmamba,s4nd,simba", value_parser = PossibleValuesParser::new(MODEL_NAMES))]
    models: Vec<String>,
    #[arg(long, default_value_t = 28, value_parser = ssm_apps::positive)]
    size: usize,
    #[arg(long, default_value_t = 1, value_parser = ssm_apps::positive)]
    channels: usize,
    #[arg(long, default_value_t = 64, value_parser = ssm_apps::positive)]
    batch: usize,
    #[arg(long, default_value_t = 5, value_parser = ssm_apps::positive)]
    iters: usize,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    machine: Machine,
}

pub fn bench(a: BenchArgs) -> Result<()> {
    let device = a.machine.device()?;
    let adev = device.clone().autodiff();
    let input = ssm_vision::models::InputShape::image(a.channels, a.size, a.size);
    println!("| model | params | train images/s | inference images/s |\n|---|---|---|---|");
    for name in &a.models {
        let m = ModelArgs { model: name.clone(), ..a.model.clone() };
        let cfg = model_config(&m, input, 10, 1)?;
        let model = cfg.init(&adev);
        let params = model.parameter_count();
        let n = a.batch * a.channels * a.size * a.size;
        let pixels: Vec<f32> = (0..n).map(|i| ((i * 7919) % 255) as f32 / 255.0).collect();
        let labels: Vec<i64> = (0..a.batch as i64).map(|i| i % 10).collect();
        let shape = [a.batch, a.channels, 1, a.size, a.size];
        let b = ImageBatch::new(pixels.clone(), shape, labels.clone(), &adev);
        let mut optim = AdamWConfig::new().init();
        let mut slot = Some(model);
        let train = a.batch as f64
            / median_secs(a.iters, || {
                let model = slot.take().expect("the model is put back after every step");
                let (loss, _) = model.loss(&b);
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                slot = Some(optim.step(1e-4, model, grads));
            });
        let valid = slot.take().expect("trained model").valid();
        let bi = ImageBatch::new(pixels, shape, labels, &device);
        let infer = a.batch as f64 / median_secs(a.iters, || drop(predict_classes(&valid, bi.x.clone())));
        println!("| {name} | {params} | {train:.1} | {infer:.1} |");
    }
    Ok(())
}
