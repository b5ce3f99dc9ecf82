//! A trained forecaster or ensemble read back: test metrics (`eval`) and one window's forecast
//! as CSV and plots (`forecast`).

use crate::{ENSEMBLE_FILE, EnsembleInfo, EvalArgs, ForecastArgs, ForecastInfo, load_table, read_json, splits};
use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use ssm_core::train::{load_checkpoint, model_dir, write_atomic};
use ssm_timeseries::data::{Splits, Table};
use ssm_timeseries::models::{ForecastModel, mean_forecast};
use ssm_timeseries::train::{forecast_batch, forecast_metrics};
use std::path::Path;

/// A trained forecaster or ensemble: its name, the (first) member's settings, the data and the
/// members' models.
struct Loaded {
    name: String,
    info: ForecastInfo,
    table: Table,
    sp: Splits,
    models: Vec<ForecastModel>,
}

fn load_forecaster(dir: &Path, data: Option<&Path>, device: &Device) -> Result<Loaded> {
    if dir.join("kalman.json").exists() {
        bail!("{}: a Kalman baseline has no checkpoint to evaluate; its scores are in metrics.json", dir.display());
    }
    // An ensemble is named by its members; a single model by its config (below).
    let (name, dirs) = if dir.join(ENSEMBLE_FILE).exists() {
        let e: EnsembleInfo = read_json(&dir.join(ENSEMBLE_FILE))?;
        if e.members.is_empty() {
            bail!("{}: an ensemble without members", dir.join(ENSEMBLE_FILE).display());
        }
        (Some(e.members.join("+")), e.members.iter().map(|m| dir.join(m)).collect())
    } else {
        (None, vec![dir.to_path_buf()])
    };
    let infos: Vec<ForecastInfo> = dirs.iter().map(|d| read_json(&d.join("timeseries.json"))).collect::<Result<_>>()?;
    let info = &infos[0];
    let path = data.map(Path::to_path_buf).or(info.data.clone());
    let (table, protocol) = load_table(path.as_deref())?;
    let sp = splits(&table, protocol, info, path.as_deref())?;
    let mut models = Vec::new();
    for (d, i) in dirs.iter().zip(&infos) {
        if (i.lookback, i.horizon, i.mode, &i.target) != (info.lookback, info.horizon, info.mode, &info.target) {
            bail!("{}: this member forecasts another task than the ensemble's first", d.display());
        }
        if sp.train.vars != i.names.len() {
            bail!("the data has {} variables, the model was trained on {}", sp.train.vars, i.names.len());
        }
        models.push(load_checkpoint(&model_dir(d), i.config.init_forecaster(i.cycle, i.names.len(), device))?);
    }
    let name = name.unwrap_or_else(|| info.config.name().to_string());
    Ok(Loaded { name, info: infos.into_iter().next().expect("a member"), table, sp, models })
}

pub(crate) fn eval(a: EvalArgs) -> Result<()> {
    let device = a.machine.device()?;
    let Loaded { name, info, sp, models, .. } = load_forecaster(&a.model, a.data.as_deref(), &device)?;
    let (mse, mae, n) = forecast_metrics(&models, &sp.test, info.lookback, info.horizon, &device);
    println!(
        "{name}: test MSE {mse:.4} MAE {mae:.4} over {n} windows (z-scored, {} target variables)",
        sp.test.targets.len()
    );
    Ok(())
}

pub(crate) fn forecast(a: ForecastArgs) -> Result<()> {
    let device = a.machine.device()?;
    let Loaded { name, info, table, sp, models } = load_forecaster(&a.model, a.data.as_deref(), &device)?;
    let (l, h) = (info.lookback, info.horizon);
    let n = sp.test.windows(l, h);
    let w = a.window.unwrap_or(n.saturating_sub(1));
    if w >= n {
        bail!("--window {w}: the test split has {n} windows");
    }
    let b = forecast_batch(&sp.test, &[w], l, h, &device);
    let pred = mean_forecast(&models, b.x.clone(), &b.starts)
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap_or_default();
    let v = sp.test.vars;
    let vars: Vec<usize> = match &a.vars {
        Some(list) => list
            .split(',')
            .map(|s| sp.names.iter().position(|n| n == s.trim()).with_context(|| format!("--vars: no variable '{s}'")))
            .collect::<Result<_>>()?,
        None => sp.test.targets.iter().copied().take(3).collect(),
    };
    let out = a.out.clone().unwrap_or(a.model.clone());
    std::fs::create_dir_all(&out).with_context(|| format!("{}", out.display()))?;
    // CSV in original units: step (negative = history), date if known, then truth / forecast per variable.
    let first_row = sp.ranges[2].start + w;
    let date = |r: usize| table.dates.as_ref().and_then(|d| d.get(r)).cloned().unwrap_or_default();
    let mut csv = String::from("step,date");
    for &j in &vars {
        csv.push_str(&format!(",{0}_true,{0}_forecast", sp.names[j]));
    }
    csv.push('\n');
    let raw = |t: usize, j: usize| sp.scaler.inverse(j, sp.test.values[(w + t) * v + j]);
    for t in 0..l + h {
        csv.push_str(&format!("{},{}", t as i64 - l as i64, date(first_row + t)));
        for &j in &vars {
            let f = if t >= l { format!("{}", sp.scaler.inverse(j, pred[(t - l) * v + j])) } else { String::new() };
            csv.push_str(&format!(",{},{f}", raw(t, j)));
        }
        csv.push('\n');
    }
    write_atomic(&out.join("forecast.csv"), csv.as_bytes())?;
    for &j in &vars {
        let hist: Vec<(f64, f64)> = (0..l).map(|t| (t as f64 - l as f64, raw(t, j) as f64)).collect();
        let truth: Vec<(f64, f64)> = (l - 1..l + h).map(|t| (t as f64 - l as f64, raw(t, j) as f64)).collect();
        let fc: Vec<(f64, f64)> = (0..h).map(|t| (t as f64, sp.scaler.inverse(j, pred[t * v + j]) as f64)).collect();
        let safe: String = sp.names[j].chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        let png = out.join(format!("forecast-{safe}.png"));
        ssm_core::plot::line_chart(
            &png,
            &format!("{name} — {} (test window {w})", sp.names[j]),
            "step",
            &sp.names[j],
            &[("history".into(), hist), ("truth".into(), truth), ("forecast".into(), fc)],
            ssm_core::plot::Scale::Linear,
            ssm_core::plot::Scale::Linear,
        )?;
        println!("{}", png.display());
    }
    println!("{}", out.join("forecast.csv").display());
    Ok(())
}
