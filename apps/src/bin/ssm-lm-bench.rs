//! `ssm-lm-bench`: language-model throughput on this machine.
//!
//! * decode: greedy tokens/s at batch 1 for a Mamba-130m-shaped model (d_model 768, 24 layers,
//!   vocabulary 50280, state 16, random weights), with peak memory after few and after many
//!   tokens (it must not grow: the recurrent state is fixed-size);
//! * prefill: tokens/s for a 512-token prompt (parallel mode, logits of the last position);
//! * training: tokens/s of forward + backward + AdamW for the full LM with its loss
//!   (d_model 256, 4 layers, vocabulary 65, context 256, batch 8).

use anyhow::{Context, Result};
use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ssm_apps::MixerArgs;
use ssm_core::backbone::BackboneConfig;
use ssm_core::blocks::BlockConfig;
use ssm_core::plain::Precision;
use ssm_core::train::Trainable;
use ssm_language::generate::{SamplingConfig, generate};
use ssm_language::{LanguageModel, LmBatch, LmConfig};
use std::path::Path;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(about = "Language-model decode / prefill / training throughput")]
struct Cli {
    /// Mixer of the benchmarked models (heads of 64 channels where the family has heads, as
    /// the Mamba-2 peers; `--mixer-opt head_dim=N` to change).
    #[command(flatten)]
    mixer: MixerArgs,
    /// Tokens generated in the decode benchmark (the first 16 are not timed, so at least 17).
    #[arg(long, default_value_t = 128, value_parser = more_than_16)]
    decode_tokens: usize,
    #[arg(long, default_value_t = 512)]
    prompt_len: usize,
    /// Training steps timed (after 2 warm-up steps).
    #[arg(long, default_value_t = 5)]
    train_steps: usize,
    /// Weight storage of the decoder (the plain-Rust decode path; f32 shares the model's weights).
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    dtype: Precision,
    /// Which parts to run: decode,prefill,train.
    #[arg(long, default_value = "decode,prefill,train")]
    only: String,
    #[arg(long)]
    threads: Option<usize>,
    /// Write the figures as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

/// Resets the peak-RSS counter (Linux: `clear_refs` 5).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn lm(mixer: &MixerArgs, d: usize, layers: usize, vocab: usize) -> Result<LmConfig> {
    let mut args = mixer.clone();
    let has = |k: &str| {
        ssm_core::mixers::MixerConfig::by_name(&mixer.mixer, d).is_ok_and(|c| c.option_names().iter().any(|o| o == k))
    };
    if has("head_dim") && !mixer.mixer_opt.iter().any(|o| o.starts_with("head_dim=")) {
        args.mixer_opt.insert(0, "head_dim=64".into());
    }
    Ok(LmConfig {
        vocab_size: vocab,
        backbone: BackboneConfig::uniform(BlockConfig::new(args.config(d)?), layers),
        tie_embeddings: true,
        bos_token_id: None,
        eos_token_id: None,
        pad_token_id: None,
    })
}

fn random_ids(n: usize, vocab: usize, seed: u64) -> Vec<u32> {
    let mut r = StdRng::seed_from_u64(seed);
    (0..n).map(|_| r.random_range(0..vocab as u32)).collect()
}

ssm_apps::lazy_arenas!();

fn main() {
    ssm_apps::exit_on_error(run(ssm_apps::parse_with_defaults(&[])));
}

fn run(cli: Cli) -> Result<()> {
    if let Some(parent) = cli.json.as_deref().and_then(Path::parent) {
        ssm_apps::check_out(parent)?; // before minutes of benchmarking, not after
    }
    if let Some(t) = cli.threads {
        rayon::ThreadPoolBuilder::new().num_threads(t).build_global().context("thread pool")?;
    }
    let dev = Device::flex();
    let mut out = serde_json::Map::new();
    out.insert("mixer".into(), cli.mixer.mixer.clone().into());
    out.insert("threads".into(), rayon::current_num_threads().into());
    let parts: Vec<&str> = cli.only.split(',').collect();
    if parts.contains(&"decode") || parts.contains(&"prefill") {
        dev.seed(0);
        let cfg = lm(&cli.mixer, 768, 24, 50280)?;
        let model: LanguageModel = cfg.init(&dev);
        println!("{}-130m shape: {} parameters", cli.mixer.mixer, model.parameter_count());
        if parts.contains(&"prefill") {
            let ids = random_ids(cli.prompt_len, 50280, 1);
            let t = Tensor::<2, Int>::from_data(
                TensorData::new(ids.iter().map(|&x| x as i64).collect(), [1, cli.prompt_len]),
                &dev,
            );
            let _ = model.prefill(t.clone().narrow(1, 0, 16), None); // warm-up
            let t0 = Instant::now();
            let (logits, _) = model.prefill(t, None);
            let _ = logits.into_data();
            let s = t0.elapsed().as_secs_f64();
            let tps = cli.prompt_len as f64 / s;
            println!("prefill {} tokens: {s:.2} s, {tps:.0} tokens/s", cli.prompt_len);
            out.insert("prefill_tokens_per_second".into(), tps.into());
        }
        if parts.contains(&"decode") {
            let prompt = random_ids(8, 50280, 2);
            let sc = SamplingConfig { max_new_tokens: 4, precision: cli.dtype, ..SamplingConfig::default() };
            let _ = generate(&model, std::slice::from_ref(&prompt), &sc, &dev, &mut |_, _| true); // warm-up
            reset_peak();
            let n = cli.decode_tokens;
            let (mut t_first, mut peak_first) = (None, 0);
            let mut count = 0usize;
            let sc = SamplingConfig { max_new_tokens: n, precision: cli.dtype, ..SamplingConfig::default() };
            let t0 = Instant::now();
            let mut t_mark = t0;
            generate(&model, &[prompt], &sc, &dev, &mut |_, _| {
                count += 1;
                if count == 16 {
                    t_first = Some(t0.elapsed().as_secs_f64());
                    peak_first = ssm_apps::proc_status_kib("VmHWM:").unwrap_or(0);
                    t_mark = Instant::now();
                }
                true
            });
            let rest = t_mark.elapsed().as_secs_f64();
            let peak_last = ssm_apps::proc_status_kib("VmHWM:").unwrap_or(0);
            let tps = (n - 16) as f64 / rest;
            println!(
                "decode batch 1: {tps:.1} tokens/s (tokens 17–{n}; first 16 incl. prefill {:.2} s); peak RSS {:.0} MiB after 16 tokens, {:.0} MiB after {n}",
                t_first.unwrap_or(0.0),
                peak_first as f64 / 1024.0,
                peak_last as f64 / 1024.0
            );
            out.insert("decode_tokens_per_second".into(), tps.into());
            out.insert("decode_peak_rss_mib_after_16".into(), (peak_first as f64 / 1024.0).into());
            out.insert(format!("decode_peak_rss_mib_after_{n}"), (peak_last as f64 / 1024.0).into());
        }
    }
    if parts.contains(&"train") {
        let adev = dev.clone().autodiff();
        adev.seed(0);
        let cfg = lm(&cli.mixer, 256, 4, 65)?;
        let mut model: LanguageModel = cfg.init(&adev);
        let (b, l) = (8, 256);
        let mut opt = AdamWConfig::new().with_weight_decay(0.1).init();
        let mut times = Vec::new();
        for step in 0..cli.train_steps + 2 {
            let ids = random_ids(b * (l + 1), 65, 10 + step as u64);
            let windows: Vec<Vec<u32>> = ids.chunks(l + 1).map(|c| c.to_vec()).collect();
            let t0 = Instant::now();
            let batch = LmBatch::from_windows(&windows, &adev);
            let (loss, _) = model.loss(&batch);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = opt.step(1e-3, model, grads);
            let _ = model.embedding.weight.val().narrow(0, 0, 1).into_data(); // wait for the step
            if step >= 2 {
                times.push(t0.elapsed().as_secs_f64());
            }
        }
        times.sort_by(f64::total_cmp);
        let med = times[times.len() / 2];
        let tps = (b * l) as f64 / med;
        println!(
            "training d256×4, vocab 65, context 256, batch 8 ({} parameters): {med:.3} s/step (median of {}), {tps:.0} tokens/s",
            model.num_params(),
            times.len()
        );
        out.insert("train_tokens_per_second".into(), tps.into());
    }
    if let Some(p) = cli.json {
        std::fs::write(&p, serde_json::to_vec_pretty(&out)?).with_context(|| p.display().to_string())?;
    }
    Ok(())
}

/// `--decode-tokens`: the rate is timed from token 17 on.
fn more_than_16(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 16 => Ok(n),
        Ok(_) => Err("must be at least 17 (the first 16 tokens are not timed)".into()),
        Err(e) => Err(e.to_string()),
    }
}
