//! `ssm-compare`: SSM mixers against a Transformer on the survey's synthetic tasks (selective
//! copying, induction heads, MQAR) and LRA ListOps, under one training budget; and `speed`, the
//! cost of each mixer against sequence length.

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use clap::{Args, Parser, Subcommand, ValueEnum};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ssm_apps::{Machine, median_secs, mixer_names, write_json};
use ssm_core::backbone::BackboneConfig;
use ssm_core::blocks::BlockConfig;
use ssm_core::mixers::MixerConfig;
use ssm_core::models::{TokenModel, TokenModelConfig, TokenTensors};
use ssm_core::plot;
use ssm_core::tasks::{LISTOPS_VOCAB, ListOps, SyntheticTask, TokenBatch};
use ssm_core::train::{DataSource, Stats, TrainConfig, Trainable, fit};
use std::path::{Path, PathBuf};

#[derive(Parser, Debug)]
#[command(about = "Compare sequence mixers (SSMs vs attention) on synthetic tasks and ListOps")]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    train: TrainArgs,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Time forward and forward+backward of each mixer against sequence length.
    Speed(SpeedArgs),
}

#[derive(Args, Debug, Clone)]
struct Common {
    /// Mixers to compare, comma-separated (any registered family).
    #[arg(long, value_delimiter = ',', default_value = "mamba,s4d,attention", value_parser = mixer_names())]
    mixers: Vec<String>,
    /// Model width.
    #[arg(long, default_value_t = 64)]
    d_model: usize,
    /// Number of residual blocks.
    #[arg(long, default_value_t = 2)]
    layers: usize,
    #[command(flatten)]
    machine: Machine,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Args, Debug, Clone)]
struct TrainArgs {
    #[arg(long, value_enum, default_value_t = Task::SelectiveCopying)]
    task: Task,
    #[command(flatten)]
    common: Common,
    /// Sequence length (for selective copying: the region holding the tokens).
    #[arg(long)]
    len: Option<usize>,
    /// Training steps per mixer.
    #[arg(long, default_value_t = 400)]
    steps: usize,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Peak learning rate (AdamW, warm-up then cosine decay).
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    /// Evaluations (and checkpoints) per run.
    #[arg(long, default_value_t = 4)]
    epochs: usize,
    /// Data tokens to copy (selective copying).
    #[arg(long, default_value_t = 8)]
    n_tokens: usize,
    /// Key–value pairs (MQAR).
    #[arg(long, default_value_t = 8)]
    n_pairs: usize,
    /// Data vocabulary size.
    #[arg(long, default_value_t = 16)]
    vocab: usize,
    /// Extra test lengths (extrapolation), comma-separated.
    #[arg(long)]
    eval_lens: Option<String>,
    /// Test sequences.
    #[arg(long, default_value_t = 512)]
    test_size: usize,
    /// ListOps directory (basic_{train,val,test}.tsv[.gz]).
    #[arg(long, default_value = "../shared/data/synthetic_tasks/listops")]
    data: PathBuf,
    /// Output directory.
    #[arg(long, default_value = "runs/compare")]
    out: PathBuf,
    /// Resume each mixer's run from its checkpoint in the output directory.
    #[arg(long)]
    resume: bool,
}

#[derive(Args, Debug, Clone)]
struct SpeedArgs {
    #[command(flatten)]
    common: Common,
    /// Comma-separated sequence lengths.
    #[arg(long, default_value = "1024,2048,4096,8192,16384")]
    lens: String,
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Timed repetitions per point (median reported).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Skip attention points whose score matrices would exceed this many GiB.
    #[arg(long, default_value_t = 4.0)]
    max_attention_gib: f64,
    #[arg(long, default_value = "runs/speed")]
    out: PathBuf,
}

fn parse_list<T: std::str::FromStr>(s: &str, what: &str) -> Result<Vec<T>> {
    s.split(',')
        .filter(|x| !x.trim().is_empty())
        .map(|x| x.trim().parse::<T>().map_err(|_| anyhow::anyhow!("{what}: cannot parse {x:?}")))
        .collect()
}

/// The tasks: the survey's synthetic ones and LRA ListOps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Task {
    SelectiveCopying,
    InductionHeads,
    Mqar,
    Listops,
}

fn setup(c: &Common) -> Result<(Device, Vec<String>)> {
    let device = c.machine.device()?;
    if c.mixers.is_empty() {
        bail!("--mixers: no mixer given");
    }
    Ok((device, c.mixers.clone()))
}

/// Each family's canonical block (a Transformer block for attention: attention + MLP).
fn block_for(name: &str, d_model: usize) -> Result<BlockConfig> {
    Ok(BlockConfig::canonical(MixerConfig::by_name(name, d_model)?))
}

/// Named test sets (by sequence length, or `test`).
type TestSets = Vec<(String, Vec<TokenBatch>)>;

/// Generated training stream, fixed evaluation set.
struct Synthetic {
    task: SyntheticTask,
    batch: usize,
    seed: u64,
    eval: Vec<TokenBatch>,
}

fn mix(seed: u64, stream: u64, i: u64) -> u64 {
    let mut r = StdRng::seed_from_u64(
        seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i.wrapping_mul(0xD1B5_4A32_D192_ED03),
    );
    r.random()
}

impl Synthetic {
    fn new(task: SyntheticTask, batch: usize, seed: u64, eval_size: usize) -> Self {
        let eval = (0..eval_size.div_ceil(batch)).map(|i| task.batch(batch, mix(seed, 2, i as u64))).collect();
        Self { task, batch, seed, eval }
    }
}

impl DataSource<TokenTensors> for Synthetic {
    fn train_batch(&mut self, step: usize, device: &Device) -> TokenTensors {
        TokenTensors::new(&self.task.batch(self.batch, mix(self.seed, 1, step as u64)), device)
    }
    fn eval_batches(&self, device: &Device) -> Vec<TokenTensors> {
        self.eval.iter().map(|b| TokenTensors::new(b, device)).collect()
    }
}

struct ListOpsData {
    train: ListOps,
    val: ListOps,
    batch: usize,
    seed: u64,
    max_len: usize,
}

impl DataSource<TokenTensors> for ListOpsData {
    fn train_batch(&mut self, step: usize, device: &Device) -> TokenTensors {
        let mut r = StdRng::seed_from_u64(mix(self.seed, 1, step as u64));
        let idx: Vec<usize> = (0..self.batch).map(|_| r.random_range(0..self.train.len())).collect();
        TokenTensors::new(&self.train.batch(&idx, self.max_len), device)
    }
    fn eval_batches(&self, device: &Device) -> Vec<TokenTensors> {
        batches_of(&self.val, self.batch, self.max_len).iter().map(|b| TokenTensors::new(b, device)).collect()
    }
}

fn batches_of(d: &ListOps, batch: usize, max_len: usize) -> Vec<TokenBatch> {
    (0..d.len()).collect::<Vec<_>>().chunks(batch).map(|c| d.batch(c, max_len)).collect()
}

fn test_stats(model: &TokenModel, batches: &[TokenBatch], device: &Device) -> Stats {
    let m = model.valid();
    let dev = device.clone().inner();
    let mut s = Stats::default();
    for b in batches {
        s.add(m.loss(&TokenTensors::new(b, &dev)).1);
    }
    s
}

fn listops_file(dir: &Path, split: &str) -> Result<PathBuf> {
    for name in [format!("basic_{split}.tsv.gz"), format!("basic_{split}.tsv")] {
        let p = dir.join(&name);
        if p.exists() {
            return Ok(p);
        }
    }
    bail!("{}: no basic_{split}.tsv[.gz] (pass --data DIR)", dir.display())
}

fn run_compare(a: TrainArgs) -> Result<()> {
    let (device, mixers) = setup(&a.common)?;
    let c = &a.common;
    std::fs::create_dir_all(&a.out).with_context(|| format!("{}: cannot create", a.out.display()))?;
    // Task, data and test sets.
    let (vocab, n_classes, seq_len, task_json): (usize, usize, usize, serde_json::Value);
    let mut test_sets: TestSets;
    let mut listops: Option<ListOpsData> = None;
    let synthetic = match a.task {
        Task::Listops => {
            let load = |s: &str| -> Result<ListOps> { Ok(ListOps::load(&listops_file(&a.data, s)?)?) };
            let (train, val, test) = (load("train")?, load("val")?, load("test")?);
            let max_len = a.len.unwrap_or(2048);
            vocab = LISTOPS_VOCAB.len();
            n_classes = 10;
            seq_len = max_len;
            task_json = serde_json::json!({"task": "listops", "max_len": max_len, "train": train.len(), "val": val.len(), "test": test.len()});
            test_sets = vec![("test".into(), batches_of(&test, a.batch, max_len))];
            listops = Some(ListOpsData { train, val, batch: a.batch, seed: c.seed, max_len });
            None
        }
        name => {
            let len = a.len.unwrap_or(match name {
                Task::InductionHeads => 256,
                _ => 64,
            });
            let task = match name {
                Task::SelectiveCopying => SyntheticTask::SelectiveCopying { len, n_tokens: a.n_tokens, vocab: a.vocab },
                Task::InductionHeads => SyntheticTask::InductionHeads { len, vocab: a.vocab },
                _ => SyntheticTask::Mqar { len, n_pairs: a.n_pairs, vocab: a.vocab.max(2 * a.n_pairs) },
            };
            task.validate()?;
            vocab = task.vocab_size();
            n_classes = task.vocab_size();
            seq_len = task.seq_len();
            task_json = serde_json::to_value(&task)?;
            let nb = a.test_size.div_ceil(a.batch);
            let test_of = |t: &SyntheticTask| -> Vec<TokenBatch> {
                (0..nb).map(|i| t.batch(a.batch, mix(c.seed, 3, i as u64))).collect()
            };
            test_sets = vec![(format!("{}", task.seq_len()), test_of(&task))];
            if let Some(l) = &a.eval_lens {
                for extra in parse_list::<usize>(l, "--eval-lens")? {
                    let t = task.with_len(extra);
                    t.validate()?;
                    test_sets.push((format!("{}", t.seq_len()), test_of(&t)));
                }
            }
            Some(task)
        }
    };
    println!("task {:?}: sequence length {seq_len}, vocabulary {vocab}, {} steps × batch {}", a.task, a.steps, a.batch);
    let mut results = Vec::new();
    for name in &mixers {
        device.seed(c.seed);
        let backbone = BackboneConfig::uniform(block_for(name, c.d_model)?, c.layers);
        let cfg = TokenModelConfig { vocab, n_classes, backbone };
        let adev = device.clone().autodiff();
        let model = cfg.init(&adev);
        let params = model.parameter_count();
        let out = a.out.join(name);
        let tc = TrainConfig {
            steps: a.steps,
            epochs: a.epochs,
            lr: a.lr,
            warmup_steps: (a.steps / 20).max(1),
            seed: c.seed,
            out: Some(out.clone()),
            resume: a.resume,
            ..TrainConfig::default()
        };
        println!("— {name}: {params} parameters");
        let fitted = match (&synthetic, &mut listops) {
            (Some(task), _) => fit(model, &mut Synthetic::new(task.clone(), a.batch, c.seed, a.batch * 8), &tc, &adev),
            (None, Some(data)) => fit(model, data, &tc, &adev),
            _ => unreachable!(),
        }?;
        write_json(&out.join("config.json"), &cfg)?;
        let train_seconds = fitted.state.train_seconds;
        let tokens = (fitted.state.step * a.batch * seq_len) as f64;
        let mut by_len = serde_json::Map::new();
        let mut test_accuracy = f64::NAN;
        for (i, (label, batches)) in test_sets.iter().enumerate() {
            let s = test_stats(&fitted.model, batches, &device);
            if i == 0 {
                test_accuracy = s.accuracy();
            }
            by_len.insert(label.clone(), serde_json::json!(s.accuracy()));
        }
        let r = serde_json::json!({
            "mixer": name,
            "params": params,
            "train_seconds": train_seconds,
            "test_accuracy": test_accuracy,
            "tokens_per_second": tokens / train_seconds.max(1e-9),
            "test_accuracy_by_length": by_len,
            "final_train_loss": fitted.state.epochs.last().map(|e| e.train_loss),
        });
        println!("  test accuracy {test_accuracy:.4}  ({train_seconds:.1} s)");
        results.push(r);
    }
    // Table, metrics.json, compare.png
    println!("\n{:<10} {:>9} {:>12} {:>14} {:>12}", "mixer", "params", "train s", "test accuracy", "tokens/s");
    for r in &results {
        println!(
            "{:<10} {:>9} {:>12.1} {:>14.4} {:>12.0}",
            r["mixer"].as_str().unwrap(),
            r["params"],
            r["train_seconds"].as_f64().unwrap(),
            r["test_accuracy"].as_f64().unwrap(),
            r["tokens_per_second"].as_f64().unwrap()
        );
        if test_sets.len() > 1 {
            println!("           accuracy by length: {}", r["test_accuracy_by_length"]);
        }
    }
    let metrics = serde_json::json!({
        "task": a.task.to_possible_value().map(|v| v.get_name().to_string()),
        "task_config": task_json,
        "model": {"d_model": c.d_model, "layers": c.layers},
        "train": {"steps": a.steps, "batch": a.batch, "lr": a.lr, "seed": c.seed},
        "results": results,
    });
    let mpath = a.out.join("metrics.json");
    write_json(&mpath, &metrics)?;
    let bars: Vec<(String, f64)> = results
        .iter()
        .map(|r| (r["mixer"].as_str().unwrap().to_string(), r["test_accuracy"].as_f64().unwrap()))
        .collect();
    plot::bar_chart(&a.out.join("compare.png"), &format!("{:?}: test accuracy", a.task), "accuracy", &bars, 1.0)?;
    println!("wrote {} and {}", mpath.display(), a.out.join("compare.png").display());
    Ok(())
}

fn run_speed(a: SpeedArgs) -> Result<()> {
    let (device, mixers) = setup(&a.common)?;
    let c = &a.common;
    let lens: Vec<usize> = parse_list(&a.lens, "--lens")?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("{}: cannot create", a.out.display()))?;
    let mut rows = Vec::new();
    println!("{:<10} {:>7} {:>12} {:>14}", "mixer", "len", "forward ms", "fwd+bwd ms");
    for name in &mixers {
        device.seed(c.seed);
        let block = block_for(name, c.d_model)?;
        for &l in &lens {
            // memory that grows with L² (attention's score matrices)
            if let Some(bytes) = block.mixer.quadratic_bytes(a.batch, l) {
                let gib = bytes / (1u64 << 30) as f64;
                if gib > a.max_attention_gib {
                    println!("{name:<10} {l:>7} {:>12} {:>14}", "skipped", format!("(~{gib:.0} GiB)"));
                    rows.push(serde_json::json!({"mixer": name, "len": l, "skipped": format!("attention scores need ~{gib:.1} GiB")}));
                    continue;
                }
            }
            let bb = BackboneConfig::uniform(block.clone(), c.layers).init(&device);
            let x = Tensor::<3>::random([a.batch, l, c.d_model], Distribution::Normal(0.0, 1.0), &device);
            let fwd = median_secs(a.reps, || drop(bb.forward(x.clone(), None)));
            let adev = device.clone().autodiff();
            let bba = BackboneConfig::uniform(block.clone(), c.layers).init(&adev);
            let xa = Tensor::<3>::random([a.batch, l, c.d_model], Distribution::Normal(0.0, 1.0), &adev);
            let both = median_secs(a.reps, || drop(bba.forward(xa.clone(), None).0.sum().backward()));
            println!("{name:<10} {l:>7} {:>12.2} {:>14.2}", fwd * 1e3, both * 1e3);
            rows.push(
                serde_json::json!({"mixer": name, "len": l, "forward_seconds": fwd, "forward_backward_seconds": both}),
            );
        }
    }
    let mut series = Vec::new();
    for name in &mixers {
        for (key, label) in [("forward_seconds", "fwd"), ("forward_backward_seconds", "fwd+bwd")] {
            let pts: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| r["mixer"] == name.as_str() && r.get(key).is_some())
                .map(|r| (r["len"].as_f64().unwrap(), r[key].as_f64().unwrap() * 1e3))
                .collect();
            series.push((format!("{name} {label}"), pts));
        }
    }
    let json = serde_json::json!({"d_model": c.d_model, "layers": c.layers, "batch": a.batch, "results": rows});
    write_json(&a.out.join("speed.json"), &json)?;
    plot::line_chart(
        &a.out.join("speed.png"),
        "time per pass vs sequence length",
        "sequence length",
        "milliseconds",
        &series,
        plot::Scale::Log,
        plot::Scale::Log,
    )?;
    println!("wrote {} and {}", a.out.join("speed.json").display(), a.out.join("speed.png").display());
    Ok(())
}

fn main() {
    let cli: Cli = ssm_apps::parse_with_defaults(&[]);
    ssm_apps::exit_on_error(match cli.cmd {
        Some(Cmd::Speed(s)) => run_speed(s),
        None => run_compare(cli.train),
    });
}
