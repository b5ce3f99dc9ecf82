//! `ssm-language`: train a character-, byte- or BPE-level language model over any mixer, generate
//! from it (or from a HuggingFace Mamba / Mamba-2 checkpoint), evaluate it, describe it.

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::Device;
use clap::{Args, Parser, Subcommand};
use ssm_apps::{LayoutArgs, Machine, TrainFlags};
use ssm_core::plain::Precision;
use ssm_core::train::{Stats, Trainable, fit, write_atomic};
use ssm_language::checkpoint;
use ssm_language::data::TextData;
use ssm_language::generate::{SamplingConfig, generate};
use ssm_language::{LmConfig, Tokenizer};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Parser, Debug)]
#[command(about = "State-space language models: train, generate, eval, info")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Train on a text file (first 90 % train, last 10 % validation).
    Train(TrainArgs),
    /// Generate from a model directory (ours or a HuggingFace Mamba / Mamba-2 checkpoint).
    Generate(GenArgs),
    /// Loss, perplexity and bits per byte of a model on a text file.
    Eval(EvalArgs),
    /// Configuration and parameter count of a model directory.
    Info(InfoArgs),
}

#[derive(Args, Debug)]
struct TrainArgs {
    /// Training text (UTF-8). Without it, a small generated corpus is used.
    #[arg(long)]
    text: Option<PathBuf>,
    /// char, byte, or the path of a HuggingFace tokenizer.json.
    #[arg(long, default_value = "char")]
    tokenizer: String,
    #[command(flatten)]
    stack: LayoutArgs,
    /// Model width.
    #[arg(long, default_value_t = 128, value_parser = ssm_apps::positive)]
    d_model: usize,
    /// Residual blocks (a --layout is cycled to this many).
    #[arg(long, default_value_t = 4, value_parser = ssm_apps::positive)]
    layers: usize,
    /// Context length of training windows.
    #[arg(long, default_value_t = 128, value_parser = ssm_apps::positive)]
    context: usize,
    /// Validation windows per evaluation.
    #[arg(long, default_value_t = 256, value_parser = ssm_apps::positive)]
    eval_windows: usize,
    /// Characters of sample text written after training (sample.txt).
    #[arg(long, default_value_t = 300)]
    sample_chars: usize,
    #[command(flatten)]
    train: TrainFlags,
}

#[derive(Args, Debug)]
struct GenArgs {
    /// Model directory (config.json + model.safetensors [+ tokenizer]).
    #[arg(long)]
    model: PathBuf,
    /// Prompt text; repeat for a batch of prompts.
    #[arg(long)]
    prompt: Vec<String>,
    /// Prompt token ids, comma-separated (for checkpoints without a tokenizer).
    #[arg(long)]
    prompt_ids: Option<String>,
    /// Print the generated ids, comma-separated, instead of text.
    #[arg(long)]
    print_ids: bool,
    #[arg(long, default_value_t = 200)]
    max_new_tokens: usize,
    /// Arg-max decoding (same as --temperature 0).
    #[arg(long)]
    greedy: bool,
    #[arg(long, default_value_t = 0.8)]
    temperature: f32,
    #[arg(long, value_parser = ssm_apps::positive)]
    top_k: Option<usize>,
    #[arg(long)]
    top_p: Option<f32>,
    #[arg(long, default_value_t = 1.0)]
    repetition_penalty: f32,
    /// Stop a sequence when its text contains this string (repeatable).
    #[arg(long)]
    stop: Vec<String>,
    /// Do not stop at the checkpoint's end-of-sequence token.
    #[arg(long)]
    ignore_eos: bool,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Weight storage while decoding (the prompt is prefilled in f32): f32, bf16 or int8 with a
    /// scale per 32 values. Models whose every layer has a plain-Rust step (Mamba, Mamba-2, S4).
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    dtype: Precision,
    #[command(flatten)]
    machine: Machine,
}

#[derive(Args, Debug)]
struct EvalArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    text: PathBuf,
    /// Window length (tokens).
    #[arg(long, default_value_t = 256, value_parser = ssm_apps::positive)]
    context: usize,
    #[arg(long, default_value_t = 8, value_parser = ssm_apps::positive)]
    batch: usize,
    /// Evaluate at most this many windows (evenly spaced).
    #[arg(long, value_parser = ssm_apps::positive)]
    max_windows: Option<usize>,
    #[command(flatten)]
    machine: Machine,
}

#[derive(Args, Debug)]
struct InfoArgs {
    #[arg(long)]
    model: PathBuf,
}

fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| anyhow::anyhow!("{}: not UTF-8 text ({e})", path.display()))
}

/// A small generated corpus (sums written out) for a run without data.
fn generated_corpus() -> String {
    let mut s = String::new();
    for i in 0..4000u64 {
        let (a, b) = ((i * 7919) % 97, (i * 104_729) % 89);
        s.push_str(&format!("{a} plus {b} is {}.\n", a + b));
    }
    s
}

fn train(a: TrainArgs) -> Result<()> {
    let t = &a.train;
    let device = t.device()?;
    let backbone = a.stack.backbone(a.d_model, a.layers)?; // bad mixer options fail before any reading
    let text = match &a.text {
        Some(p) => read_text(p)?,
        None => {
            eprintln!("no --text given: training on a generated corpus of sums");
            generated_corpus()
        }
    };
    let tok = Tokenizer::from_spec(&a.tokenizer, &text)?;
    let data = TextData::split(&text, |s| tok.encode(s), a.context, t.batch, t.seed);
    let mut data =
        data.map_err(|e| anyhow::anyhow!("{}: {e}", a.text.as_deref().unwrap_or(Path::new("corpus")).display()))?;
    data.eval_windows = a.eval_windows;
    let cfg = LmConfig {
        vocab_size: tok.vocab_size(),
        backbone,
        tie_embeddings: true,
        bos_token_id: None,
        eos_token_id: None,
        pad_token_id: None,
    };
    let adev = device.clone().autodiff();
    adev.seed(t.seed);
    let model = cfg.init(&adev);
    println!(
        "{} model: {} parameters, vocabulary {} ({}), {} train / {} validation tokens",
        cfg.backbone.describe(),
        model.parameter_count(),
        cfg.vocab_size,
        tok.name(),
        data.train.len(),
        data.val.len()
    );
    let tc = t.config(t.steps_or(|| 2000));
    let fitted = fit(model, &mut data, &tc, &adev)?;
    let model = fitted.model.valid();
    checkpoint::save(&t.out, &model, &cfg)?;
    tok.save(&t.out)?;
    let last = fitted.state.epochs.last().context("no evaluation ran")?;
    println!(
        "step {}: validation loss {:.4} nats/token, {:.4} bits/byte ({:.0} s training, {:.0} tokens/s)",
        last.step,
        last.eval_loss,
        last.extra.get("val_bits_per_byte").and_then(|v| v.as_f64()).unwrap_or(f64::NAN),
        fitted.state.train_seconds,
        last.train_items_per_second
    );
    if a.sample_chars > 0 {
        let prompt = tok.encode("\n").ok().filter(|p| !p.is_empty()).unwrap_or(vec![0]);
        let sc = SamplingConfig {
            max_new_tokens: a.sample_chars,
            temperature: 0.8,
            seed: t.seed,
            ..SamplingConfig::default()
        };
        let ids = generate(&model, &[prompt], &sc, &device, &mut |_, _| true).remove(0);
        let sample = tok.decode(&ids);
        write_atomic(&t.out.join("sample.txt"), sample.as_bytes())?;
        println!("--- sample (temperature 0.8) ---\n{sample}\n---");
    }
    println!("wrote {} (model, tokenizer, metrics.json, loss.png, sample.txt)", t.out.display());
    Ok(())
}

fn parse_ids(s: &str) -> Result<Vec<u32>> {
    s.split(',')
        .map(|x| x.trim().parse::<u32>().map_err(|_| anyhow::anyhow!("--prompt-ids: '{x}' is not a token id")))
        .collect()
}

fn generate_cmd(a: GenArgs) -> Result<()> {
    let device = a.machine.device()?;
    let (model, cfg) = checkpoint::load(&a.model, &device)?;
    let tok = Tokenizer::load(&a.model)?;
    let prompts: Vec<Vec<u32>> = match (&a.prompt_ids, a.prompt.is_empty()) {
        (Some(ids), true) => vec![parse_ids(ids)?],
        (None, false) => {
            let t = tok.as_ref().with_context(|| {
                format!("{}: no tokenizer in the model directory: use --prompt-ids", a.model.display())
            })?;
            a.prompt.iter().map(|p| Ok(t.encode(p)?)).collect::<Result<_>>()?
        }
        (Some(_), false) => bail!("give --prompt or --prompt-ids, not both"),
        (None, true) => bail!("give a --prompt TEXT or --prompt-ids 1,2,3"),
    };
    if let Some(p) = prompts.iter().find(|p| p.is_empty()) {
        bail!("empty prompt {p:?}: give at least one token");
    }
    let vocab = model.vocab_size() as u32;
    if let Some(t) = prompts.iter().flatten().find(|&&t| t >= vocab) {
        bail!("prompt token id {t} is outside the model's vocabulary ({vocab})");
    }
    let sc = SamplingConfig {
        max_new_tokens: a.max_new_tokens,
        temperature: if a.greedy { 0.0 } else { a.temperature },
        top_k: a.top_k,
        top_p: a.top_p,
        repetition_penalty: a.repetition_penalty,
        seed: a.seed,
        precision: a.dtype,
        eos_token_id: if a.ignore_eos { None } else { cfg.eos_token_id.map(|e| e as u32) },
    };
    let stream = !a.print_ids && prompts.len() == 1 && tok.is_some();
    let mut produced: Vec<Vec<u32>> = vec![Vec::new(); prompts.len()];
    let mut printed = 0usize;
    let mut stdout = std::io::stdout();
    if stream {
        print!("{}", tok.as_ref().unwrap().decode(&prompts[0]));
    }
    let out = generate(&model, &prompts, &sc, &device, &mut |i, t| {
        produced[i].push(t);
        let Some(tk) = &tok else { return true };
        if a.stop.is_empty() && !stream {
            return true;
        }
        let text = tk.decode(&produced[i]);
        let stop_at = a.stop.iter().filter_map(|s| text.find(s.as_str()).map(|p| p + s.len())).min();
        if stream {
            let upto = stop_at.unwrap_or(text.len());
            if upto > printed && text.is_char_boundary(printed) {
                print!("{}", &text[printed..upto]);
                let _ = stdout.flush();
                printed = upto;
            }
        }
        stop_at.is_none()
    });
    if a.print_ids {
        for ids in &out {
            println!("{}", ids.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(","));
        }
    } else if stream {
        println!();
    } else {
        let tk = tok.as_ref().context("no tokenizer to print text: use --print-ids")?;
        for (p, ids) in prompts.iter().zip(&out) {
            let mut text = tk.decode(ids);
            if let Some(cut) = a.stop.iter().filter_map(|s| text.find(s.as_str()).map(|q| q + s.len())).min() {
                text.truncate(cut);
            }
            println!("{}{}\n---", tk.decode(p), text);
        }
    }
    Ok(())
}

fn eval(a: EvalArgs) -> Result<()> {
    let device = a.machine.device()?;
    let (model, _) = checkpoint::load(&a.model, &device)?;
    let tok = Tokenizer::load(&a.model)?
        .with_context(|| format!("{}: no tokenizer in the model directory", a.model.display()))?;
    let text = read_text(&a.text)?;
    let ids = tok.encode(&text).with_context(|| a.text.display().to_string())?;
    let len = a.context + 1;
    if ids.len() < len {
        bail!("{}: {} tokens, fewer than one window of {len}", a.text.display(), ids.len());
    }
    let vocab = model.vocab_size() as u32;
    if let Some(t) = ids.iter().find(|&&t| t >= vocab) {
        bail!("{}: token id {t} is outside the model's vocabulary ({vocab})", a.text.display());
    }
    let all = (ids.len() - 1) / a.context;
    let n = a.max_windows.map_or(all, |m| m.min(all)).max(1);
    let starts: Vec<usize> = (0..n).map(|i| i * all / n * a.context).collect();
    let mut s = Stats::default();
    for c in starts.chunks(a.batch.max(1)) {
        let w: Vec<Vec<u32>> = c.iter().map(|&st| ids[st..st + len].to_vec()).collect();
        s.add(model.loss(&ssm_language::LmBatch::from_windows(&w, &device)).1);
    }
    let bytes_per_token = text.len() as f64 / ids.len() as f64;
    let loss = s.loss();
    println!(
        "{}: {} tokens in {n} windows of {}: loss {loss:.4} nats/token, perplexity {:.3}, {:.4} bits/byte, accuracy {:.4}",
        a.text.display(),
        s.count,
        a.context,
        loss.exp(),
        loss / std::f64::consts::LN_2 / bytes_per_token,
        s.accuracy()
    );
    Ok(())
}

fn info(a: InfoArgs) -> Result<()> {
    let cfg = checkpoint::read_config(&a.model)?;
    let model = cfg.init(&Device::flex());
    let files = checkpoint::weight_files(&a.model)?;
    let tok = Tokenizer::load(&a.model)?;
    println!("model:      {}", a.model.display());
    println!("layers:     {} ({})", cfg.backbone.layers.len(), cfg.backbone.describe());
    println!("d_model:    {}", cfg.d_model());
    println!("vocabulary: {}", cfg.vocab_size);
    println!("tied head:  {}", cfg.tie_embeddings);
    println!("parameters: {}", model.parameter_count());
    println!("weights:    {}", files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "));
    println!("tokenizer:  {}", tok.as_ref().map_or("none", |t| t.name()));
    println!("config:     {}", serde_json::to_string(&cfg)?);
    Ok(())
}

ssm_apps::lazy_arenas!();

fn main() {
    let defaults =
        [("steps", "2000"), ("batch", "16"), ("lr", "2e-3"), ("weight_decay", "0.1"), ("out", "runs/language")];
    let cli: Cli = ssm_apps::parse_with_defaults(&[("train", &defaults)]);
    ssm_apps::exit_on_error(match cli.cmd {
        Cmd::Train(a) => train(a),
        Cmd::Generate(a) => generate_cmd(a),
        Cmd::Eval(a) => eval(a),
        Cmd::Info(a) => info(a),
    });
}
