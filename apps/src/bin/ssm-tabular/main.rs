//! `ssm-tabular`: classification and regression on CSV tables — MambaTab, feature tokens over
//! any mixer stack (FT-Transformer with attention), MLP.

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::Device;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use ssm_apps::{
    LayoutArgs, RunDirArgs, TrainFlags, exit_on_error, mean_std, parse_with_defaults, seed_dir, update_metrics,
    write_json,
};
use ssm_core::plot;
use ssm_core::train::{TrainConfig, fit, load_checkpoint, model_dir, write_atomic};
use ssm_tabular::data::{CsvOptions, Encoded, RawTable, Schema, Task, read_names, split_rows};
use ssm_tabular::models::TabularConfig;
use ssm_tabular::models::mambatab::MambaTabConfig;
use ssm_tabular::models::mlp::MlpConfig;
use ssm_tabular::models::tokens::TokensConfig;
use ssm_tabular::train::{Scores, TabularSource, predict, roc_curve, score};
use std::path::{Path, PathBuf};

#[derive(Parser, Debug)]
#[command(about = "State-space models for tables: MambaTab, feature tokens over any mixer, MLP")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

// Parsed once per run: the variants' size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Cmd {
    /// Train (model selection on a validation split), then score the test rows once.
    Train(TrainArgs),
    /// Test figures of a trained model.
    Eval(RunDirArgs),
    /// Predictions for the rows of a CSV file.
    Predict(PredictArgs),
}

/// How the CSV files are read.
#[derive(Args, Debug, Clone, Serialize, Deserialize)]
struct ReadArgs {
    /// The files have no header row (columns c0, c1, … unless --names or --names-file).
    #[arg(long)]
    no_header: bool,
    /// Column names, comma-separated, for a header-less file (implies --no-header; one fewer
    /// than the columns: the last is `target`).
    #[arg(long, value_delimiter = ',', conflicts_with = "names_file")]
    names: Option<Vec<String>>,
    /// Column names from a file: UCI style (`name: …` lines; `|` comments) or one per line
    /// (implies --no-header).
    #[arg(long)]
    names_file: Option<PathBuf>,
    /// Skip lines starting with this.
    #[arg(long)]
    comment: Option<String>,
    /// A value meaning "missing" (repeatable; default: ?, empty, NA).
    #[arg(long)]
    na: Vec<String>,
    /// Strip this from the end of target values (e.g. "." for Adult's test labels).
    #[arg(long)]
    strip_suffix: Option<String>,
    /// Numeric features: quantile (to a standard normal through the training rows' CDF, as
    /// Gorishniy et al. preprocess) or standard (z-score).
    #[arg(long, value_enum, default_value_t = NumericArg::Quantile)]
    numeric: NumericArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
enum NumericArg {
    Quantile,
    Standard,
}

impl ReadArgs {
    fn options(&self) -> Result<CsvOptions> {
        let names = match (&self.names, &self.names_file) {
            (Some(n), _) => Some(n.clone()),
            (None, Some(f)) => Some(read_names(f)?),
            _ => None,
        };
        let mut o = CsvOptions {
            header: !self.no_header && names.is_none(),
            names,
            comment: self.comment.clone(),
            strip_suffix: self.strip_suffix.clone(),
            quantile: self.numeric == NumericArg::Quantile,
            ..CsvOptions::default()
        };
        if !self.na.is_empty() {
            o.na = self.na.clone();
        }
        Ok(o)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
enum ModelName {
    /// MambaTab: embedding → LayerNorm → ReLU → one Mamba block over the mini-batch → head.
    Mambatab,
    /// Feature tokens read by a mixer stack (--mixer / --layout); FT-Transformer with attention.
    Tokens,
    /// MLP baseline.
    Mlp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TaskArg {
    Auto,
    Binary,
    Multiclass,
    Regression,
}

#[derive(Args, Debug)]
struct TrainArgs {
    /// Training CSV (and the test rows too when there is no --test).
    #[arg(long)]
    data: PathBuf,
    /// Test CSV (same columns); without it --split cuts --data three ways.
    #[arg(long)]
    test: Option<PathBuf>,
    #[command(flatten)]
    read: ReadArgs,
    /// Target column (default: the last).
    #[arg(long)]
    target: Option<String>,
    #[arg(long, value_enum, default_value_t = TaskArg::Auto)]
    task: TaskArg,
    /// Divide the target by this (regression figures are then in these units, e.g. 100000).
    #[arg(long, default_value_t = 1.0)]
    target_scale: f64,
    /// Train / validation / test fractions of --data when there is no --test, drawn with the seed.
    #[arg(long, value_delimiter = ',', default_value = "0.64,0.16,0.2")]
    split: Vec<f64>,
    /// Validation fraction of --data when --test is given.
    #[arg(long, default_value_t = 0.2)]
    val_fraction: f64,
    #[arg(long, value_enum, default_value_t = ModelName::Mambatab)]
    model: ModelName,
    #[command(flatten)]
    layout: LayoutArgs,
    /// Representation width (MambaTab) or token width (tokens).
    #[arg(long, default_value_t = 64, value_parser = ssm_apps::positive)]
    d_model: usize,
    /// Mixer layers (tokens).
    #[arg(long, default_value_t = 2, value_parser = ssm_apps::positive)]
    layers: usize,
    /// Stop after this many epochs without a lower validation loss.
    #[arg(long, default_value_t = 5, value_parser = ssm_apps::positive)]
    patience: usize,
    /// Runs with seeds seed..seed+N (split and initialisation); figures are their mean ± std.
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    #[command(flatten)]
    train: TrainFlags,
}

#[derive(Args, Debug)]
struct PredictArgs {
    /// CSV rows to predict (read like the training data; the target column may be absent).
    csv: PathBuf,
    #[command(flatten)]
    using: RunDirArgs,
    /// Output CSV.
    #[arg(long, default_value = "predictions.csv")]
    out: PathBuf,
}

/// What a trained directory holds besides the seed folders.
#[derive(Serialize, Deserialize)]
struct TabularInfo {
    config: TabularConfig,
    data: PathBuf,
    test: Option<PathBuf>,
    read: ReadArgs,
    target: String,
    task: Option<Task>,
    target_scale: f64,
    split: Vec<f64>,
    val_fraction: f64,
    batch: usize,
    seeds: Vec<u64>,
}

/// The files of a run, read once: the reading options, the training table and the test table
/// (`None`: the test rows come from the training file).
struct Tables {
    opts: CsvOptions,
    train: RawTable,
    test: Option<RawTable>,
}

impl Tables {
    fn test(&self) -> &RawTable {
        self.test.as_ref().unwrap_or(&self.train)
    }
}

impl Tables {
    fn read(data: &Path, test: Option<&Path>, read: &ReadArgs) -> Result<Self> {
        let opts = read.options()?;
        let train = RawTable::read(data, &opts)?;
        let test = test.map(|t| RawTable::read(t, &opts)).transpose()?;
        Ok(Tables { opts, train, test })
    }
}

impl TabularInfo {
    fn tables(&self) -> Result<Tables> {
        Tables::read(&self.data, self.test.as_deref(), &self.read)
    }

    /// Seed `seed`'s train / validation / test row indices.
    fn rows(&self, t: &Tables, seed: u64) -> [Vec<usize>; 3] {
        match &t.test {
            Some(test) => {
                let [train, val]: [Vec<usize>; 2] =
                    split_rows(t.train.rows, &[1.0 - self.val_fraction, self.val_fraction], seed)
                        .try_into()
                        .expect("two parts");
                [train, val, (0..test.rows).collect()]
            }
            None => split_rows(t.train.rows, &self.split, seed).try_into().expect("three fractions"),
        }
    }

    fn test_path(&self) -> &Path {
        self.test.as_deref().unwrap_or(&self.data)
    }
}

fn model_config(a: &TrainArgs) -> Result<TabularConfig> {
    Ok(match a.model {
        ModelName::Mambatab => {
            TabularConfig::Mambatab(MambaTabConfig { mixer: a.layout.mixer.config(a.d_model)?, embedding: 8 })
        }
        ModelName::Tokens => TabularConfig::Tokens(TokensConfig { backbone: a.layout.backbone(a.d_model, a.layers)? }),
        ModelName::Mlp => TabularConfig::Mlp(MlpConfig::default()),
    })
}

/// Trains one seed; returns its test scores.
fn train_seed(
    info: &TabularInfo,
    tables: &Tables,
    t: &TrainFlags,
    patience: usize,
    seed: u64,
    device: &Device,
) -> Result<Scores> {
    let rows = info.rows(tables, seed);
    let opts = &tables.opts;
    let schema = Schema::fit(&tables.train, &rows[0], &info.target, info.task, opts, info.target_scale, &info.data)?;
    let enc = |table: &RawTable, rows: &[usize], path: &Path| -> Result<Encoded> {
        Ok(schema.encode(table, rows, opts, true, path)?)
    };
    let (train, val) = (enc(&tables.train, &rows[0], &info.data)?, enc(&tables.train, &rows[1], &info.data)?);
    let test = enc(tables.test(), &rows[2], info.test_path())?;
    let dir = seed_dir(&t.out, seed);
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    write_json(&dir.join("schema.json"), &schema)?;
    let adev = device.clone().autodiff();
    adev.seed(seed);
    let model = info.config.init(&schema, &adev);
    let params = model.num_params();
    println!(
        "seed {seed}: {} train / {} validation / {} test rows; {:?}, {} features; {} parameters",
        train.rows,
        val.rows,
        test.rows,
        schema.task,
        schema.features.len(),
        params
    );
    let steps = t.steps_or(|| t.epochs * train.rows.div_ceil(t.batch.max(1)));
    let tc = TrainConfig { keep_best: true, patience: Some(patience), seed, ..t.config_in(steps, &dir) };
    let mut src = TabularSource::new(&schema, train, val, t.batch, seed);
    let fitted = fit(model, &mut src, &tc, &adev)?;
    let model = fitted.model.valid();
    let pred = predict(&model, &schema, &test, info.batch, device);
    let s = score(&schema, &test, &pred);
    if test.unseen > 0 {
        println!("seed {seed}: {} test cells held categories unseen in training (read as missing)", test.unseen);
    }
    update_metrics(
        &dir,
        serde_json::json!({"test": s, "test_accuracy": s.accuracy, "test_auroc": s.auroc, "test_rmse": s.rmse, "params": params}),
    )?;
    plots(&dir, &schema, &test, &pred, info.config.name())?;
    println!("seed {seed}: {}", line(&s));
    Ok(s)
}

fn line(s: &Scores) -> String {
    let mut parts = Vec::new();
    if let Some(a) = s.accuracy {
        parts.push(format!("test accuracy {a:.4}"));
    }
    if let Some(a) = s.auroc {
        parts.push(format!("AUROC {a:.4}"));
    }
    if let Some(r) = s.rmse {
        parts.push(format!("RMSE {r:.4}"));
    }
    format!("{} ({} rows)", parts.join(", "), s.rows)
}

/// ROC curve (binary) or predicted-vs-true scatter (regression).
fn plots(dir: &Path, schema: &Schema, e: &Encoded, pred: &[Vec<f64>], name: &str) -> Result<()> {
    match schema.task {
        Task::Binary => {
            let pos: Vec<bool> = e.target.iter().map(|&t| t == 1.0).collect();
            let roc = roc_curve(&pred.iter().map(|p| p[1]).collect::<Vec<_>>(), &pos);
            let series = [("ROC".to_string(), roc), ("chance".to_string(), vec![(0.0, 0.0), (1.0, 1.0)])];
            plot::line_chart(
                &dir.join("roc.png"),
                &format!("{name}: test ROC (positive = {})", schema.classes[1]),
                "false positive rate",
                "true positive rate",
                &series,
                plot::Scale::Linear,
                plot::Scale::Linear,
            )?;
        }
        Task::Regression => {
            let pts: Vec<(f64, f64)> = pred
                .iter()
                .zip(&e.target)
                .map(|(p, &t)| (t as f64 * schema.target_std + schema.target_mean, p[0]))
                .collect();
            plot::scatter(
                &dir.join("pred_vs_true.png"),
                &format!("{name}: test predictions"),
                "true",
                "predicted",
                &[("test rows".to_string(), pts)],
            )?;
        }
        Task::Multiclass => {}
    }
    Ok(())
}

fn train(a: TrainArgs) -> Result<()> {
    let device = a.train.device()?;
    if a.test.is_none()
        && (a.split.len() != 3 || a.split.iter().any(|f| *f <= 0.0) || (a.split.iter().sum::<f64>() - 1.0).abs() > 1e-6)
    {
        bail!("--split needs three positive fractions summing to 1 (got {:?})", a.split);
    }
    let tables = Tables::read(&a.data, a.test.as_deref(), &a.read)?;
    let target = a.target.clone().unwrap_or_else(|| tables.train.names.last().cloned().unwrap_or_default());
    let task = match a.task {
        TaskArg::Auto => None,
        TaskArg::Binary => Some(Task::Binary),
        TaskArg::Multiclass => Some(Task::Multiclass),
        TaskArg::Regression => Some(Task::Regression),
    };
    let seeds: Vec<u64> = (a.train.seed..a.train.seed + a.seeds.max(1)).collect();
    let info = TabularInfo {
        config: model_config(&a)?,
        data: a.data.clone(),
        test: a.test.clone(),
        read: a.read.clone(),
        target,
        task,
        target_scale: a.target_scale,
        split: a.split.clone(),
        val_fraction: a.val_fraction,
        batch: a.train.batch,
        seeds: seeds.clone(),
    };
    // Check the columns before anything is written.
    let all: Vec<usize> = (0..tables.train.rows).collect();
    Schema::fit(&tables.train, &all, &info.target, info.task, &tables.opts, info.target_scale, &info.data)?;
    std::fs::create_dir_all(&a.train.out).with_context(|| format!("{}: cannot create", a.train.out.display()))?;
    write_json(&a.train.out.join("tabular.json"), &info)?;
    let mut runs = Vec::new();
    for &seed in &seeds {
        runs.push((seed, train_seed(&info, &tables, &a.train, a.patience, seed, &device)?));
    }
    let col = |f: fn(&Scores) -> Option<f64>| -> Option<(f64, f64)> {
        let v: Vec<f64> = runs.iter().filter_map(|(_, s)| f(s)).collect();
        (!v.is_empty()).then(|| mean_std(&v))
    };
    let (acc, auc, rmse) = (col(|s| s.accuracy), col(|s| s.auroc), col(|s| s.rmse));
    let mut m = serde_json::json!({"model": info.config.name(), "data": a.data, "seeds": seeds.len(),
        "runs": runs.iter().map(|(seed, s)| serde_json::json!({"seed": seed, "test": s})).collect::<Vec<_>>()});
    for (k, v) in [("test_accuracy", acc), ("test_auroc", auc), ("test_rmse", rmse)] {
        if let Some((mean, std)) = v {
            m[k] = mean.into();
            m[format!("{k}_std")] = std.into();
        }
    }
    write_json(&a.train.out.join("metrics.json"), &m)?;
    let pm = |name: &str, v: Option<(f64, f64)>| v.map(|(m, s)| format!("{name} {m:.4} ± {s:.4}"));
    let figures: Vec<String> =
        [pm("test accuracy", acc), pm("AUROC", auc), pm("RMSE", rmse)].into_iter().flatten().collect();
    println!("{}: {} over {} seed(s) → {}", info.config.name(), figures.join(", "), seeds.len(), a.train.out.display());
    Ok(())
}

/// A trained directory: its info, one seed's schema and model.
fn open(u: &RunDirArgs, device: &Device) -> Result<(TabularInfo, u64, Schema, ssm_tabular::models::TabularModel)> {
    let path = u.model.join("tabular.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: not a `ssm-tabular train` output directory", path.display()))?;
    let info: TabularInfo = serde_json::from_str(&text).with_context(|| format!("{}: unreadable", path.display()))?;
    let seed = u.seed.or(info.seeds.first().copied()).unwrap_or(0);
    let sp = seed_dir(&u.model, seed).join("schema.json");
    let text = std::fs::read_to_string(&sp).with_context(|| format!("{}: no such seed", sp.display()))?;
    let schema: Schema = serde_json::from_str(&text).with_context(|| format!("{}: unreadable", sp.display()))?;
    let model = load_checkpoint(&model_dir(&seed_dir(&u.model, seed)), info.config.init(&schema, device))?;
    Ok((info, seed, schema, model))
}

fn eval(u: RunDirArgs) -> Result<()> {
    let device = u.machine.device()?;
    let (info, seed, schema, model) = open(&u, &device)?;
    let tables = info.tables()?;
    let rows = info.rows(&tables, seed);
    let test = schema.encode(tables.test(), &rows[2], &tables.opts, true, info.test_path())?;
    let s = score(&schema, &test, &predict(&model, &schema, &test, info.batch, &device));
    println!("{} (seed {seed}): {}", info.config.name(), line(&s));
    Ok(())
}

fn predict_cmd(a: PredictArgs) -> Result<()> {
    let device = a.using.machine.device()?;
    let (info, _, schema, model) = open(&a.using, &device)?;
    let opts = info.read.options()?;
    let table = RawTable::read(&a.csv, &opts)?;
    let rows: Vec<usize> = (0..table.rows).collect();
    let e = schema.encode(&table, &rows, &opts, false, &a.csv)?;
    let pred = predict(&model, &schema, &e, info.batch, &device);
    let mut csv = String::from("row,prediction");
    if schema.task != Task::Regression {
        schema.classes.iter().for_each(|c| csv.push_str(&format!(",p_{c}")));
    }
    csv.push('\n');
    for (i, p) in pred.iter().enumerate() {
        match schema.task {
            Task::Regression => csv.push_str(&format!("{},{}\n", i + 1, p[0])),
            _ => {
                let best = p.iter().enumerate().max_by(|x, y| x.1.total_cmp(y.1)).map_or(0, |(k, _)| k);
                let probs: Vec<String> = p.iter().map(|v| format!("{v:.5}")).collect();
                csv.push_str(&format!("{},{},{}\n", i + 1, schema.classes[best], probs.join(",")));
            }
        }
    }
    write_atomic(&a.out, csv.as_bytes())?;
    println!("{} predictions → {}", pred.len(), a.out.display());
    Ok(())
}

/// Training defaults: 30 epochs at batch 256, lr 1e-3 (AdamW, weight decay 1e-5).
const DEFAULTS: &[(&str, &[(&str, &str)])] = &[(
    "train",
    &[("epochs", "30"), ("batch", "256"), ("lr", "1e-3"), ("weight_decay", "1e-5"), ("out", "runs/tabular")],
)];

fn main() {
    let cli: Cli = parse_with_defaults(DEFAULTS);
    exit_on_error(match cli.cmd {
        Cmd::Train(a) => train(a),
        Cmd::Eval(u) => eval(u),
        Cmd::Predict(a) => predict_cmd(a),
    });
}
