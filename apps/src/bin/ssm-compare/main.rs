//! `ssm-compare`: SSM mixers against a Transformer under one training budget.
//!
//! The default run makes the survey's point in about three minutes on two cores: each model
//! learns induction heads at length 64, is tested at 64 and at 4× and 16× that length (an SSM
//! carries its state to any length; attention meets positions it never saw), and its forward
//! pass is timed at 1k, 4k and 16k tokens (linear against quadratic cost). A table, two plots
//! and a one-line conclusion drawn from the measured numbers follow. Other tasks: selective
//! copying, MQAR (Zoology) and LRA ListOps; `speed` times models against length.

mod data;
mod lm;
mod long_range;
mod report;
mod speed;
mod survey;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use clap::builder::PossibleValuesParser;
use clap::{Args, Parser, Subcommand, ValueEnum};
use data::{LabelledData, Synthetic, TestSets, batches_of, listops_file, synthetic_tests, test_stats};
use report::{conclude, markdown_table, plot_accuracy, print_table};
use speed::{SpeedArgs, Timing, plot_times, time_model};
use ssm_apps::{TrainFlags, write_json};
use ssm_core::backbone::{BackboneConfig, LayerTemplate, apply_options, parse_layout};
use ssm_core::blocks::BlockConfig;
use ssm_core::error::catch_quietly;
use ssm_core::mixers::{COMPARED_BY_DEFAULT, MIXER_NAMES, MixerConfig, MixerError};
use ssm_core::train::write_atomic;

/// `--mixers all`: every registered family.
const ALL: &str = "all";
use ssm_core::models::{TokenModel, TokenModelConfig};
use ssm_core::tasks::{LISTOPS_VOCAB, Labelled, SyntheticTask};
use ssm_core::train::fit;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(about = "Compare sequence mixers (SSMs vs attention): accuracy, length generalisation and cost")]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    train: TrainArgs,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Time forward and forward+backward of each model against sequence length.
    Speed(SpeedArgs),
    /// The survey page's combined table and claims, from the runs of scripts/survey.sh.
    Survey(survey::SurveyArgs),
}

/// The tasks: the survey's synthetic ones, LRA ListOps and the rest of the long-range suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Task {
    SelectiveCopying,
    InductionHeads,
    Mqar,
    Listops,
    /// Fashion-MNIST as 784-pixel sequences.
    Image,
    /// Generated 32×32 Pathfinder (1,024 pixels).
    Pathfinder,
    /// Byte-level speaker identification in tiny-shakespeare (512-byte passages).
    Text,
    /// Character-level language modelling on tiny-shakespeare (test loss in bits/character).
    Language,
}

/// Groups of tasks run one after the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Suite {
    /// ListOps, image, Pathfinder and text, each in its own folder under --out.
    LongRange,
}

/// The models compared and their size.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Mixers to compare, comma-separated (any registered family, or `all`; default: mamba,
    /// s4d, attention). Each is a stack of its canonical block (attention: a Transformer block).
    #[arg(long, value_delimiter = ',', value_parser = PossibleValuesParser::new(MIXER_NAMES.iter().copied().chain([ALL])))]
    mixers: Vec<String>,
    /// A hybrid stack to compare as well, in the layout syntax (e.g. "mamba*3,attention") or
    /// a named hybrid (jamba, mambaformer, spade, moe-mamba, blackmamba, griffin); repeatable.
    #[arg(long)]
    hybrid: Vec<String>,
    /// A mixer setting `key=value` or `mixer.key=value`; repeatable.
    #[arg(long = "mixer-opt", value_name = "KEY=VALUE")]
    mixer_opt: Vec<String>,
    /// Model width.
    #[arg(long, default_value_t = 64, value_parser = ssm_apps::positive)]
    d_model: usize,
    /// Number of residual blocks.
    #[arg(long, default_value_t = 2, value_parser = ssm_apps::positive)]
    layers: usize,
    /// Equal parameter budgets: each model's width is chosen (a multiple of 8) so that the whole
    /// model, embedding and head included, has the parameter count nearest this one (instead of
    /// one `--d-model` for all).
    #[arg(long, value_parser = ssm_apps::positive)]
    pub params: Option<usize>,
}

impl Common {
    /// (label, backbone) of every compared model at `--d-model`.
    pub fn models(&self) -> Result<Vec<(String, BackboneConfig)>> {
        self.models_at(self.d_model)
    }

    /// (label, backbone) of every compared model at width `d_model`.
    fn models_at(&self, d_model: usize) -> Result<Vec<(String, BackboneConfig)>> {
        let names: Vec<String> = if self.mixers.is_empty() {
            COMPARED_BY_DEFAULT.iter().map(|s| s.to_string()).collect()
        } else if self.mixers.iter().any(|m| m == ALL) {
            MIXER_NAMES.iter().map(|s| s.to_string()).collect()
        } else {
            self.mixers.clone()
        };
        let mut models = Vec::new();
        for name in &names {
            let block = BlockConfig::canonical(MixerConfig::by_name(name, d_model)?);
            models.push((name.clone(), BackboneConfig::uniform(block, self.layers)));
        }
        for layout in &self.hybrid {
            models.push((layout.clone(), parse_layout(layout, Some(self.layers), &LayerTemplate::new(d_model))?));
        }
        // Each option goes to every model with a layer that takes it; one that none takes is an error.
        for o in &self.mixer_opt {
            let mut used = false;
            for (_, cfg) in models.iter_mut() {
                match apply_options(&mut cfg.layers, std::slice::from_ref(o)) {
                    Ok(()) => used = true,
                    Err(MixerError::UnknownOption { .. } | MixerError::Config(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if !used {
                bail!("--mixer-opt {o}: no compared model has that setting");
            }
        }
        Ok(models)
    }
}

/// `--params N`: every model at the width (a multiple of 8, 16 … 1024) whose whole token model
/// has the parameter count nearest `target`. Widths a family cannot take (a head size that does
/// not divide it) are skipped.
fn match_params(c: &Common, target: usize, vocab: usize, n_classes: usize) -> Result<Vec<(String, BackboneConfig)>> {
    let device = Device::flex();
    let count = |backbone: &BackboneConfig| -> Option<usize> {
        let cfg = TokenModelConfig { vocab, n_classes, backbone: backbone.clone() };
        catch_quietly(|| cfg.init(&device).parameter_count()).ok()
    };
    let n = c.models_at(c.d_model)?.len();
    /// (width, parameters, model) of the closest match so far.
    type Match = (usize, usize, (String, BackboneConfig));
    let mut best: Vec<Option<Match>> = vec![None; n];
    for width in (16..=1024).step_by(8) {
        let models = c.models_at(width)?;
        let mut all_above = true;
        for (i, m) in models.into_iter().enumerate() {
            let Some(p) = count(&m.1) else { continue };
            all_above &= p > 2 * target;
            if best[i].as_ref().is_none_or(|b| p.abs_diff(target) < b.1.abs_diff(target)) {
                best[i] = Some((width, p, m));
            }
        }
        if all_above {
            break;
        }
    }
    let mut out = Vec::new();
    for (i, b) in best.into_iter().enumerate() {
        let Some((width, p, m)) = b else { bail!("--params {target}: model {i} builds at no width from 16 to 1024") };
        println!("{:<24} width {width:>4}: {p} parameters", m.0);
        out.push(m);
    }
    Ok(out)
}

#[derive(Args, Debug, Clone)]
struct TrainArgs {
    #[arg(long, value_enum, default_value_t = Task::InductionHeads)]
    task: Task,
    #[command(flatten)]
    common: Common,
    /// Training sequence length (selective copying: the region holding the tokens; default 64,
    /// ListOps 2048).
    #[arg(long, value_parser = ssm_apps::positive)]
    len: Option<usize>,
    /// Data tokens to copy (selective copying).
    #[arg(long, default_value_t = 8, value_parser = ssm_apps::positive)]
    n_tokens: usize,
    /// Key–value pairs (MQAR).
    #[arg(long, default_value_t = 8, value_parser = ssm_apps::positive)]
    n_pairs: usize,
    /// Data vocabulary size.
    #[arg(long, default_value_t = 16, value_parser = ssm_apps::positive)]
    vocab: usize,
    /// Test lengths besides the training one, comma-separated (default: 4× and 16× the
    /// training length; 0: none).
    #[arg(long, value_delimiter = ',')]
    eval_lens: Option<Vec<usize>>,
    /// Test sequences per length.
    #[arg(long, default_value_t = 128, value_parser = ssm_apps::positive)]
    test_size: usize,
    /// Lengths at which each model's forward pass is timed (batch 1); 0: none.
    #[arg(long, value_delimiter = ',', default_value = "1024,4096,16384")]
    cost_lens: Vec<usize>,
    /// A smoke run: 20 steps at length 16, small test sets, cost at 256 and 1024 tokens.
    #[arg(long)]
    quick: bool,
    /// ListOps directory (basic_{train,val,test}.tsv[.gz]).
    #[arg(long, default_value = "../shared/data/synthetic_tasks/listops")]
    data: PathBuf,
    /// Fashion-MNIST directory (idx files) for the image task.
    #[arg(long, default_value = "../shared/data/vision/fashion-mnist")]
    image_data: PathBuf,
    /// The tiny-shakespeare text file for the text and language tasks.
    #[arg(long, default_value = "../shared/data/language/tinyshakespeare/input.txt")]
    text_data: PathBuf,
    /// Training examples of the image and Pathfinder tasks.
    #[arg(long, default_value_t = 10000, value_parser = ssm_apps::positive)]
    examples: usize,
    /// Validation and test examples (each) of the image and Pathfinder tasks.
    #[arg(long, default_value_t = 1000, value_parser = ssm_apps::positive)]
    eval_examples: usize,
    /// Run a suite of tasks instead of --task (each in `--out/<task>`).
    #[arg(long, value_enum)]
    suite: Option<Suite>,
    /// Per model: steps, batch, lr, …; `--out` holds one folder per model, `--resume`
    /// continues each from its checkpoint there.
    #[command(flatten)]
    train: TrainFlags,
}

/// The training flags' defaults here: the settings behind the README's figure.
const TRAIN_DEFAULTS: &[(&str, &str)] = &[
    ("steps", "700"),
    ("batch", "32"),
    ("lr", "3e-3"),
    ("epochs", "4"),
    ("weight_decay", "0.01"),
    ("out", "runs/compare"),
];

impl TrainArgs {
    fn apply_quick(&mut self) {
        if self.quick {
            (self.train.steps, self.len, self.test_size, self.train.epochs) = (Some(20), Some(16), 64, 2);
            (self.examples, self.eval_examples) = (64, 32);
            self.eval_lens = Some(vec![64]);
            self.cost_lens = vec![256, 1024];
        }
    }
}

/// What a run trains on and is tested with.
struct Setup {
    vocab: usize,
    n_classes: usize,
    seq_len: usize,
    task_json: serde_json::Value,
    tests: TestSets,
    data: TaskData,
}

/// Where a run's training batches come from.
enum TaskData {
    Synthetic(SyntheticTask),
    Labelled(LabelledData),
    Language(lm::LmData),
}

/// The splits of a sequence-classification task with its natural length, or `None` for the
/// generated synthetic tasks.
fn classification_splits(a: &TrainArgs) -> Result<Option<(long_range::Splits, usize)>> {
    let (n, e, seed) = (a.examples, a.eval_examples, a.train.seed);
    Ok(Some(match a.task {
        Task::Listops => {
            let load = |s: &str| -> Result<Labelled> { Ok(Labelled::load_listops(&listops_file(&a.data, s)?)?) };
            let (train, val, test) = (load("train")?, load("val")?, load("test")?);
            (long_range::Splits { train, val, test, vocab: LISTOPS_VOCAB.len(), classes: 10 }, 2048)
        }
        Task::Image => (long_range::image(&a.image_data, n, e, e, seed)?, 784),
        Task::Pathfinder => (long_range::pathfinder(n, e, e, seed), 1024),
        Task::Text => (long_range::text(&a.text_data)?, long_range::PASSAGE),
        _ => return Ok(None),
    }))
}

/// The share of the most frequent label: the accuracy of always answering it.
fn majority(labels: &[i64]) -> f64 {
    let mut counts = std::collections::HashMap::new();
    for l in labels {
        *counts.entry(l).or_insert(0usize) += 1;
    }
    counts.values().max().map_or(0.0, |&m| m as f64 / labels.len() as f64)
}

fn setup(a: &TrainArgs) -> Result<Setup> {
    let (seed, batch) = (a.train.seed, a.train.batch);
    if a.task == Task::Language {
        let len = a.len.unwrap_or(256);
        let sp = lm::load(&a.text_data, len, batch, seed)?;
        let task_json = serde_json::json!({"task": "language", "len": len, "vocab": sp.vocab,
            "test_windows": sp.test.iter().map(|b| b.batch).sum::<usize>()});
        let tests = vec![("test".into(), sp.test)];
        let (vocab, data) = (sp.vocab, TaskData::Language(sp.data));
        return Ok(Setup { vocab, n_classes: vocab, seq_len: len, task_json, tests, data });
    }
    if let Some((sp, natural)) = classification_splits(a)? {
        let max_len = a.len.unwrap_or(natural);
        let name = a.task.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default();
        let task_json = serde_json::json!({"task": name, "max_len": max_len, "train": sp.train.len(),
            "val": sp.val.len(), "test": sp.test.len(), "test_majority": majority(&sp.test.labels)});
        let tests = vec![("test".into(), batches_of(&sp.test, batch, max_len))];
        let data = TaskData::Labelled(LabelledData { train: sp.train, val: sp.val, batch, seed, max_len });
        return Ok(Setup { vocab: sp.vocab, n_classes: sp.classes, seq_len: max_len, task_json, tests, data });
    }
    let len = a.len.unwrap_or(64);
    let task = match a.task {
        Task::SelectiveCopying => SyntheticTask::SelectiveCopying { len, n_tokens: a.n_tokens, vocab: a.vocab },
        Task::InductionHeads => SyntheticTask::InductionHeads { len, vocab: a.vocab },
        _ => SyntheticTask::Mqar { len, n_pairs: a.n_pairs, vocab: a.vocab.max(2 * a.n_pairs) },
    };
    task.validate()?;
    let extra: Vec<usize> = match &a.eval_lens {
        Some(l) => l.iter().copied().filter(|&x| x > 0).collect(),
        None => vec![4 * len, 16 * len],
    };
    let tests = synthetic_tests(&task, &extra, a.test_size, batch, seed)?;
    let (vocab, seq_len) = (task.vocab_size(), task.seq_len());
    let task_json = serde_json::to_value(&task)?;
    Ok(Setup { vocab, n_classes: vocab, seq_len, task_json, tests, data: TaskData::Synthetic(task) })
}

/// Trains one model and tests it at every length.
fn train_one(
    a: &TrainArgs,
    s: &mut Setup,
    label: &str,
    backbone: &BackboneConfig,
    device: &Device,
) -> Result<serde_json::Value> {
    let t = &a.train;
    device.seed(t.seed);
    let cfg = TokenModelConfig { vocab: s.vocab, n_classes: s.n_classes, backbone: backbone.clone() };
    let adev = device.clone().autodiff();
    let model: TokenModel = cfg.init(&adev);
    let params = model.parameter_count();
    let out = t.out.join(dir_name(label));
    let tc = t.config_in(t.steps_or(|| 700), &out);
    println!("— {label}: {params} parameters");
    let fitted = match &mut s.data {
        TaskData::Synthetic(task) => {
            fit(model, &mut Synthetic::new(task.clone(), t.batch, t.seed, t.batch * 8), &tc, &adev)
        }
        TaskData::Labelled(data) => fit(model, data, &tc, &adev),
        TaskData::Language(data) => fit(model, data, &tc, &adev),
    }?;
    write_json(&out.join("config.json"), &cfg)?;
    let train_seconds = fitted.state.train_seconds;
    let tokens = (fitted.state.step * t.batch * tc.devices() * s.seq_len) as f64;
    let (mut by_len, mut bits) = (serde_json::Map::new(), f64::NAN);
    for (i, (len, batches)) in s.tests.iter().enumerate() {
        let st = test_stats(&fitted.model, batches, device);
        by_len.insert(len.clone(), st.accuracy().into());
        if i == 0 {
            bits = st.loss() / std::f64::consts::LN_2;
        }
    }
    // the training length's test set comes first
    let test_accuracy = by_len.get(&s.tests[0].0).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
    println!("  test accuracy {test_accuracy:.4}, loss {bits:.4} bits/token  ({train_seconds:.1} s)");
    Ok(serde_json::json!({
        "mixer": label,
        "layout": backbone.describe(),
        "d_model": backbone.d_model(),
        "params": params,
        "train_seconds": train_seconds,
        "test_accuracy": test_accuracy,
        "test_bits_per_token": bits,
        "tokens_per_second": tokens / train_seconds.max(1e-9),
        "test_accuracy_by_length": by_len,
        "final_train_loss": fitted.state.epochs.last().map(|e| e.train_loss),
    }))
}

pub(crate) fn dir_name(label: &str) -> String {
    label.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

/// `--suite long-range`: every task of the suite into its own folder.
fn run_suite(a: TrainArgs) -> Result<()> {
    for task in [Task::Listops, Task::Image, Task::Pathfinder, Task::Text] {
        let name = task.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default();
        println!("\n=== {name} ===");
        let mut t = a.clone();
        (t.task, t.suite) = (task, None);
        t.train.out = a.train.out.join(&name);
        run_compare(t)?;
    }
    Ok(())
}

fn run_compare(mut a: TrainArgs) -> Result<()> {
    if a.suite.is_some() {
        return run_suite(a);
    }
    a.apply_quick();
    let device = a.train.device()?;
    let out = a.train.out.clone();
    let mut models = a.common.models()?;
    if models.is_empty() {
        bail!("no model to compare: give --mixers or --hybrid");
    }
    std::fs::create_dir_all(&out).with_context(|| format!("{}: cannot create", out.display()))?;
    let mut s = setup(&a)?;
    if let Some(target) = a.common.params {
        println!("widths for about {target} parameters each:");
        models = match_params(&a.common, target, s.vocab, s.n_classes)?;
    }
    let task_name = a.task.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default();
    let steps = a.train.steps_or(|| 700);
    println!(
        "task {task_name}: training length {}, vocabulary {}, {steps} steps × batch {}",
        s.seq_len, s.vocab, a.train.batch
    );
    let mut results = Vec::new();
    for (label, backbone) in &models {
        results.push(train_one(&a, &mut s, label, backbone, &device)?);
    }
    let lens: Vec<usize> = a.cost_lens.iter().copied().filter(|&l| l > 0).collect();
    let mut cost = Vec::new();
    if !lens.is_empty() {
        println!("\ninference cost (forward pass, batch 1):\n{:<24} {:>7} {:>12}", "model", "len", "forward ms");
        // one timed call per point; a warm-up call before each model's first
        let t = Timing { batch: 1, reps: 1, max_gib: 4.0, backward: false, warm_each: false };
        for (label, backbone) in &models {
            cost.extend(time_model(label, backbone, &lens, &t, &device));
        }
    }
    let lengths: Vec<String> = s.tests.iter().map(|t| t.0.clone()).collect();
    let conclusion = conclude(&models, &results, &lengths, &cost);
    print_table(&results, &s.tests, &cost, &lens);
    println!("\n{conclusion}");
    let (c, t) = (&a.common, &a.train);
    let metrics = serde_json::json!({
        "task": task_name,
        "task_config": s.task_json,
        "model": {"d_model": c.d_model, "layers": c.layers, "params_target": c.params},
        "train": {"steps": steps, "batch": t.batch, "lr": t.lr, "seed": t.seed},
        "results": results,
        "cost": cost,
        "conclusion": conclusion,
    });
    write_json(&out.join("metrics.json"), &metrics)?;
    let md = markdown_table(&results, &s.tests, &cost, &lens, &conclusion);
    write_atomic(&out.join("results.md"), md.as_bytes())?;
    plot_accuracy(&out.join("compare.png"), &task_name, &results, &s.tests)?;
    let labels: Vec<String> = models.iter().map(|m| m.0.clone()).collect();
    if !cost.is_empty() {
        plot_times(&out.join("cost.png"), &cost, &labels)?;
    }
    println!(
        "wrote {} (metrics.json, results.md, compare.png{})",
        out.display(),
        if cost.is_empty() { "" } else { ", cost.png" }
    );
    Ok(())
}

fn main() {
    let cli: Cli = ssm_apps::parse_with_defaults(&[("", TRAIN_DEFAULTS)]);
    ssm_apps::exit_on_error(match cli.cmd {
        Some(Cmd::Speed(s)) => speed::run_speed(s),
        Some(Cmd::Survey(s)) => survey::run_survey(s),
        None => run_compare(cli.train),
    });
}
