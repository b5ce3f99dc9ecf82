//! `ssm-timeseries`: long-term forecasting (S-Mamba, SiMBA-TS, a temporal SSM over patches, the
//! DLinear baseline) on CSV series, and sequence classification of UEA / UCR `.ts` files.

mod classify;
mod trained;

use anyhow::{Context, Result};
use burn::module::Module;
use burn::tensor::Device;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use ssm_apps::{Machine, MixerArgs, TrainFlags, update_metrics, write_json};
use ssm_core::train::{TrainConfig, fit};
use ssm_timeseries::data::{Mode, Protocol, Scaler, Splits, Table};
use ssm_timeseries::kalman::{self, KalmanForecaster};
use ssm_timeseries::models::{ForecastConfig, ForecastModel, MODEL_NAMES};
use ssm_timeseries::train::{ForecastSource, forecast_metrics};
use std::path::{Path, PathBuf};

#[derive(Parser, Debug)]
#[command(about = "State-space models for time series: forecasting and classification")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Train a forecaster (test MSE / MAE on z-scored data at the end).
    Train(TrainArgs),
    /// Test MSE / MAE of a trained forecaster.
    Eval(EvalArgs),
    /// Forecast one test window: CSV of history, forecast and truth, and PNGs.
    Forecast(ForecastArgs),
    /// Train a classifier on UEA / UCR `.ts` files.
    ClassifyTrain(classify::ClassifyArgs),
    /// Test accuracy of a trained classifier.
    ClassifyEval(classify::ClassifyEvalArgs),
}

/// Model selection on the validation split (forecasting only: the `.ts` archives have none).
#[derive(Args, Debug)]
struct Selection {
    /// Which model is tested.
    #[arg(long, value_enum, default_value_t = Select::Best)]
    select: Select,
    /// Stop after this many epochs without a lower validation loss (0: never).
    #[arg(long, default_value_t = 3, value_parser = ssm_apps::positive)]
    patience: usize,
}

/// Training flags with this app's defaults: `--epochs` passes over the training windows (or
/// cases) unless `--steps` is given.
pub(crate) const TRAIN_DEFAULTS: &[(&str, &str)] = &[("epochs", "10"), ("weight_decay", "0.01")];

/// The runner's settings for a training set of `items` windows or cases, written to `out`.
pub(crate) fn schedule(t: &TrainFlags, items: usize, out: &Path) -> TrainConfig {
    t.config_in(t.steps_or(|| t.epochs * items.div_ceil(t.batch.max(1))), out)
}

/// Which model the test split scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Select {
    /// The epoch with the lowest validation loss (the papers' protocol).
    Best,
    /// The last epoch.
    Last,
}

#[derive(Args, Debug)]
struct TrainArgs {
    /// CSV with a header (optional `date` column), or a header-less file with a sibling
    /// `<name>.columns.txt`. Default: a generated noisy multi-seasonal series.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Target variable for S / MS (default: the last column).
    #[arg(long)]
    target: Option<String>,
    /// M (all → all), S (target → target), MS (all → target).
    #[arg(long, value_enum, default_value_t = Mode::M)]
    mode: Mode,
    #[arg(long, default_value_t = 96, value_parser = ssm_apps::positive)]
    lookback: usize,
    #[arg(long, default_value_t = 96, value_parser = ssm_apps::positive)]
    horizon: usize,
    /// The model: one of s-mamba | simba | dlinear | temporal, several joined by `+` (an
    /// ensemble: each trained in turn into `--out`/NAME, the forecast their mean), or `kalman`:
    /// the Kalman-filter baseline (local linear trend, noise fitted by maximum likelihood on the
    /// training split).
    #[arg(long, default_value = "s-mamba+dlinear", value_parser = model_spec)]
    model: String,
    /// The temporal model's mixer.
    #[command(flatten)]
    mixer: MixerArgs,
    #[arg(long, value_parser = ssm_apps::positive)]
    d_model: Option<usize>,
    #[arg(long, value_parser = ssm_apps::positive)]
    layers: Option<usize>,
    /// S-Mamba's dropout probability while training (default 0.1, the released setting).
    #[arg(long, value_parser = ssm_apps::probability)]
    dropout: Option<f64>,
    /// Residual cycle (CycleNet's RCF) of this many rows around the model; 0 or 1: none.
    /// Default: one day, when the date column advances by a fixed step below a day (ETTh: 24,
    /// ETTm: 96, Weather: 144), else none.
    #[arg(long)]
    cycle: Option<usize>,
    #[command(flatten)]
    selection: Selection,
    #[command(flatten)]
    train: TrainFlags,
}

#[derive(Args, Debug)]
struct EvalArgs {
    #[arg(long)]
    model: PathBuf,
    /// Default: the CSV the model was trained on.
    #[arg(long)]
    data: Option<PathBuf>,
    #[command(flatten)]
    machine: Machine,
}

#[derive(Args, Debug)]
struct ForecastArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    data: Option<PathBuf>,
    /// Variables to plot, comma-separated (default: the targets, at most 3).
    #[arg(long)]
    vars: Option<String>,
    /// Test window to forecast (default: the last).
    #[arg(long, value_parser = ssm_apps::positive)]
    window: Option<usize>,
    /// Output directory for forecast.csv and the PNGs (default: the model directory).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    machine: Machine,
}

/// What a forecaster's directory holds besides the checkpoint.
#[derive(Serialize, Deserialize)]
struct ForecastInfo {
    config: ForecastConfig,
    data: Option<PathBuf>,
    target: String,
    mode: Mode,
    lookback: usize,
    horizon: usize,
    scaler: Scaler,
    names: Vec<String>,
    /// Rows in the residual cycle (0: none).
    #[serde(default)]
    cycle: usize,
}

fn load_table(path: Option<&Path>) -> Result<(Table, Protocol)> {
    match path {
        Some(p) => Ok((Table::read(p)?, Protocol::for_path(p))),
        None => Ok((Table::generated(), Protocol::Ratio { train: 0.7, test: 0.2 })),
    }
}

fn splits(t: &Table, protocol: Protocol, i: &ForecastInfo, path: Option<&Path>) -> Result<Splits> {
    Splits::new(t, protocol, i.lookback, i.mode, &i.target)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.map_or("generated series".into(), |p| p.display().to_string())))
}

fn read_json<T: for<'a> Deserialize<'a>>(p: &Path) -> Result<T> {
    let text = std::fs::read_to_string(p).with_context(|| format!("{}: not a model directory", p.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: unreadable", p.display()))
}

/// `ensemble.json` in an ensemble's directory: its members, each a model directory below it.
#[derive(Serialize, Deserialize)]
struct EnsembleInfo {
    members: Vec<String>,
}

const ENSEMBLE_FILE: &str = "ensemble.json";

/// `--model`: `kalman`, or known models joined by `+`, each at most once.
fn model_spec(s: &str) -> std::result::Result<String, String> {
    if s == kalman::NAME {
        return Ok(s.into());
    }
    let names: Vec<&str> = s.split('+').collect();
    for (i, n) in names.iter().enumerate() {
        if !MODEL_NAMES.contains(n) {
            return Err(format!(
                "unknown model '{n}' (known: {}, {}; join models with +)",
                MODEL_NAMES.join(", "),
                kalman::NAME
            ));
        }
        if names[..i].contains(n) {
            return Err(format!("model '{n}' appears twice"));
        }
    }
    Ok(s.into())
}

/// What a command reads once for every member: the table and the target variable.
struct Data {
    table: Table,
    protocol: Protocol,
    target: String,
}

/// A trained member: its settings, splits, model, parameters and training seconds.
struct Trained {
    info: ForecastInfo,
    sp: Splits,
    model: ForecastModel,
    params: usize,
    seconds: f64,
}

fn train(a: TrainArgs, lr_given: bool) -> Result<()> {
    let t = &a.train;
    let device = t.device()?;
    if a.data.is_none() {
        println!("no --data given: training on a generated 3-variable series");
    }
    let (table, protocol) = load_table(a.data.as_deref())?;
    let target = a.target.clone().unwrap_or_else(|| table.names.last().cloned().unwrap_or_default());
    if a.model == kalman::NAME {
        return train_kalman(&a, &table, protocol, &target);
    }
    let data = Data { table, protocol, target };
    let names: Vec<&str> = a.model.split('+').collect();
    // Every member's settings and data are checked before anything is written.
    let mut plans = names.iter().map(|n| plan_member(&a, &data, n)).collect::<Result<Vec<_>>>()?;
    if plans.len() == 1 {
        let m = train_member(&a, plans.remove(0), &t.out, lr_given, &device)?;
        return score(std::slice::from_ref(&m.model), &m, m.info.config.name(), m.params, m.seconds, &t.out, &device);
    }
    std::fs::create_dir_all(&t.out).with_context(|| format!("{}", t.out.display()))?;
    write_json(&t.out.join(ENSEMBLE_FILE), &EnsembleInfo { members: names.iter().map(|n| n.to_string()).collect() })?;
    let mut members = Vec::new();
    for (name, plan) in names.iter().zip(plans) {
        println!("ensemble member {name} → {}", t.out.join(name).display());
        let m = train_member(&a, plan, &t.out.join(name), lr_given, &device)?;
        score(std::slice::from_ref(&m.model), &m, name, m.params, m.seconds, &t.out.join(name), &device)?;
        members.push(m);
    }
    let models: Vec<ForecastModel> = members.iter().map(|m| m.model.clone()).collect();
    let (params, seconds) = (members.iter().map(|m| m.params).sum(), members.iter().map(|m| m.seconds).sum());
    score(&models, &members[0], &a.model, params, seconds, &t.out, &device)
}

/// A member about to train: its settings, splits and training windows.
struct Plan {
    info: ForecastInfo,
    sp: Splits,
    src: ForecastSource,
}

/// Model `name`'s settings and data under the command's flags (nothing written yet).
fn plan_member(a: &TrainArgs, d: &Data, name: &str) -> Result<Plan> {
    let t = &a.train;
    let mixer = a.mixer.config(a.d_model.unwrap_or(64))?;
    let mut config = ForecastConfig::by_name(name, a.lookback, a.horizon, 0, mixer)?;
    let mut info = ForecastInfo {
        config: config.clone(),
        data: a.data.clone(),
        target: d.target.clone(),
        mode: a.mode,
        lookback: a.lookback,
        horizon: a.horizon,
        scaler: Scaler { mean: vec![], std: vec![] },
        names: vec![],
        cycle: a.cycle.or(d.table.rows_per_day()).unwrap_or(0),
    };
    let sp = splits(&d.table, d.protocol, &info, a.data.as_deref())?;
    match &mut config {
        ForecastConfig::SMamba(c) => {
            c.d_model = a.d_model.unwrap_or(c.d_model);
            c.d_ff = c.d_model;
            c.e_layers = a.layers.unwrap_or(c.e_layers);
            c.dropout = a.dropout.unwrap_or(c.dropout);
        }
        ForecastConfig::Simba(c) => {
            c.d_model = a.d_model.unwrap_or(c.d_model);
            c.layers = a.layers.unwrap_or(c.layers);
        }
        ForecastConfig::Temporal(c) => {
            c.vars = sp.train.vars;
            c.layers = a.layers.unwrap_or(c.layers);
        }
        ForecastConfig::Dlinear(_) => {}
    }
    info.config = config;
    info.scaler = sp.scaler.clone();
    info.names = sp.names.clone();
    println!(
        "{} rows × {} variables; windows: {} train / {} val / {} test (lookback {}, horizon {}, mode {:?}, target {})",
        d.table.rows,
        sp.train.vars,
        sp.train.windows(a.lookback, a.horizon),
        sp.val.windows(a.lookback, a.horizon),
        sp.test.windows(a.lookback, a.horizon),
        a.lookback,
        a.horizon,
        a.mode,
        info.target
    );
    let src = ForecastSource::new(sp.train.clone(), sp.val.clone(), a.lookback, a.horizon, t.batch, t.seed)?;
    Ok(Plan { info, sp, src })
}

/// Trains a planned member into `out` (its own complete run directory).
fn train_member(a: &TrainArgs, plan: Plan, out: &Path, lr_given: bool, device: &Device) -> Result<Trained> {
    let Plan { info, sp, mut src } = plan;
    let t = &a.train;
    std::fs::create_dir_all(out).with_context(|| format!("{}", out.display()))?;
    write_json(&out.join("timeseries.json"), &info)?;
    let adev = device.clone().autodiff();
    adev.seed(t.seed);
    let model = info.config.init_forecaster(info.cycle, sp.train.vars, &adev);
    let params = model.num_params();
    let lr = if lr_given { t.lr } else { info.config.default_lr() };
    let cycle = model.cycle.as_ref().map(|c| format!(", residual cycle of {} rows", c.period())).unwrap_or_default();
    println!("{}: {params} parameters{cycle}, lr {lr:e}", info.config.name());
    let tc = TrainConfig {
        keep_best: a.selection.select == Select::Best,
        patience: (a.selection.patience > 0).then_some(a.selection.patience),
        lr,
        ..schedule(t, sp.train.windows(a.lookback, a.horizon), out)
    };
    let fitted = fit(model, &mut src, &tc, &adev)?;
    if let (true, Some(b)) = (tc.keep_best, fitted.state.best) {
        println!("testing the model of epoch {} (step {}, validation loss {:.4})", b.epoch, b.step, b.eval_loss);
    }
    Ok(Trained { info, sp, model: fitted.model.valid(), params, seconds: fitted.state.train_seconds })
}

/// Scores the mean forecast of `models` on the test and validation splits into `out`'s metrics.
fn score(
    models: &[ForecastModel],
    m: &Trained,
    name: &str,
    params: usize,
    seconds: f64,
    out: &Path,
    device: &Device,
) -> Result<()> {
    let (l, h) = (m.info.lookback, m.info.horizon);
    let (mse, mae, n) = forecast_metrics(models, &m.sp.test, l, h, device);
    let (vmse, vmae, _) = forecast_metrics(models, &m.sp.val, l, h, device);
    update_metrics(
        out,
        serde_json::json!({"model": name, "params": params, "test_mse": mse, "test_mae": mae,
            "test_windows": n, "val_mse": vmse, "val_mae": vmae}),
    )?;
    println!(
        "{name}: test MSE {mse:.4} MAE {mae:.4} over {n} windows (validation {vmse:.4} / {vmae:.4}); {seconds:.0} s training → {}",
        out.display()
    );
    Ok(())
}

/// Training rows the Kalman baseline's noise fit reads (the last ones of the training split).
const KALMAN_FIT_ROWS: usize = 20_000;

/// The Kalman baseline: fit on the training split, score validation and test like the models.
fn train_kalman(a: &TrainArgs, table: &Table, protocol: Protocol, target: &str) -> Result<()> {
    let path = a.data.as_deref();
    let sp = Splits::new(table, protocol, a.lookback, a.mode, target)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.map_or("generated series".into(), |p| p.display().to_string())))?;
    let started = std::time::Instant::now();
    let fc = KalmanForecaster::fit(&sp.train, KALMAN_FIT_ROWS);
    for (v, n) in fc.targets.iter().zip(&fc.noise) {
        println!(
            "{}: level noise {:.3e}, slope noise {:.3e}, observation noise {:.3e} (log-likelihood {:.1})",
            sp.names[*v], n.q_level, n.q_slope, n.r, n.log_likelihood
        );
    }
    let (mse, mae, n) = fc.metrics(&sp.test, a.lookback, a.horizon);
    let (vmse, vmae, _) = fc.metrics(&sp.val, a.lookback, a.horizon);
    let out = &a.train.out;
    std::fs::create_dir_all(out).with_context(|| format!("{}", out.display()))?;
    write_json(&out.join("kalman.json"), &fc)?;
    update_metrics(
        out,
        serde_json::json!({"model": kalman::NAME, "params": 3 * fc.targets.len(), "test_mse": mse, "test_mae": mae,
            "test_windows": n, "val_mse": vmse, "val_mae": vmae}),
    )?;
    println!(
        "{}: test MSE {mse:.4} MAE {mae:.4} over {n} windows (validation {vmse:.4} / {vmae:.4}); {:.1} s → {}",
        kalman::NAME,
        started.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}

fn main() {
    let forecaster = [TRAIN_DEFAULTS, &[("out", "runs/timeseries")]].concat();
    let classify = [TRAIN_DEFAULTS, &[("out", "runs/classify")]].concat();
    // A forecaster trains at its model's own learning rate (`ForecastConfig::default_lr`) unless
    // `--lr` is given, which then holds for every member of an ensemble.
    let cmd = ssm_apps::command_with_defaults::<Cli>(&[("train", &forecaster), ("classify-train", &classify)])
        .mut_subcommand("train", |c| {
            c.mut_arg("lr", |a| {
                a.hide_default_value(true).help("Peak learning rate (AdamW, linear warm-up then cosine decay) [default: the model's own: 1e-4, DLinear 1e-2]")
            })
        });
    let (cli, matches): (Cli, _) = ssm_apps::parse_command(cmd);
    let lr_given = matches
        .subcommand_matches("train")
        .is_some_and(|m| m.value_source("lr") == Some(clap::parser::ValueSource::CommandLine));
    ssm_apps::exit_on_error(match cli.cmd {
        Cmd::Train(a) => train(a, lr_given),
        Cmd::Eval(a) => trained::eval(a),
        Cmd::Forecast(a) => trained::forecast(a),
        Cmd::ClassifyTrain(a) => classify::classify_train(a),
        Cmd::ClassifyEval(a) => classify::classify_eval(a),
    });
}
