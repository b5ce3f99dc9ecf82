//! Cost against sequence length: the time of a forward pass (and of forward + backward) of each
//! model's backbone, skipping sizes whose L²-sized activations would not fit.

use crate::Common;
use anyhow::{Context, Result};
use burn::tensor::{Device, Distribution, Tensor};
use clap::Args;
use ssm_apps::{Machine, median_secs_warm, write_json};
use ssm_core::backbone::BackboneConfig;
use ssm_core::plot;
use std::path::{Path, PathBuf};

#[derive(Args, Debug, Clone)]
pub struct SpeedArgs {
    #[command(flatten)]
    pub common: Common,
    /// Sequence lengths, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1024,2048,4096,8192,16384")]
    pub lens: Vec<usize>,
    #[arg(long, default_value_t = 1, value_parser = ssm_apps::positive)]
    pub batch: usize,
    /// Timed repetitions per point (median reported).
    #[arg(long, default_value_t = 3, value_parser = ssm_apps::positive)]
    pub reps: usize,
    /// Skip points whose L²-sized activations (attention scores) would exceed this many GiB.
    #[arg(long, default_value_t = 4.0)]
    pub max_attention_gib: f64,
    #[arg(long, default_value = "runs/speed")]
    pub out: PathBuf,
    #[command(flatten)]
    pub machine: Machine,
}

/// One model's timing settings.
pub struct Timing {
    pub batch: usize,
    pub reps: usize,
    pub max_gib: f64,
    pub backward: bool,
    /// An untimed warm-up call before every point (else only before a model's first point).
    pub warm_each: bool,
}

/// GiB of the largest L²-sized activation of any layer at `len`, if any layer has one.
fn quadratic_gib(cfg: &BackboneConfig, batch: usize, len: usize) -> Option<f64> {
    let bytes = cfg
        .layers
        .iter()
        .filter_map(|b| b.mixer.quadratic_bytes(batch, len))
        .fold(None, |m: Option<f64>, b| Some(m.map_or(b, |m| m.max(b))));
    bytes.map(|b| b / (1u64 << 30) as f64)
}

/// Rows `{model, len, forward_seconds[, forward_backward_seconds] | skipped}` for one model.
pub fn time_model(
    label: &str,
    cfg: &BackboneConfig,
    lens: &[usize],
    t: &Timing,
    device: &Device,
) -> Vec<serde_json::Value> {
    let d = cfg.d_model();
    let mut rows = Vec::new();
    for (i, &l) in lens.iter().enumerate() {
        let warm = t.warm_each || i == 0;
        if let Some(gib) = quadratic_gib(cfg, t.batch, l).filter(|g| *g > t.max_gib) {
            println!("{label:<24} {l:>7} {:>12} {:>14}", "skipped", format!("(~{gib:.0} GiB)"));
            rows.push(
                serde_json::json!({"model": label, "len": l, "skipped": format!("L² activations need ~{gib:.1} GiB")}),
            );
            continue;
        }
        device.seed(0);
        let bb = cfg.init(device);
        let x = Tensor::<3>::random([t.batch, l, d], Distribution::Normal(0.0, 1.0), device);
        let fwd = median_secs_warm(t.reps, warm, || drop(bb.forward(x.clone(), None)));
        let mut row = serde_json::json!({"model": label, "len": l, "forward_seconds": fwd,
            "tokens_per_second": (t.batch * l) as f64 / fwd});
        let both = t.backward.then(|| {
            let adev = device.clone().autodiff();
            let bba = cfg.init(&adev);
            let xa = Tensor::<3>::random([t.batch, l, d], Distribution::Normal(0.0, 1.0), &adev);
            median_secs_warm(t.reps, warm, || drop(bba.forward(xa.clone(), None).0.sum().backward()))
        });
        if let Some(b) = both {
            row["forward_backward_seconds"] = b.into();
        }
        let b = both.map_or(String::new(), |b| format!("{:.2}", b * 1e3));
        println!("{label:<24} {l:>7} {:>12.2} {b:>14}", fwd * 1e3);
        rows.push(row);
    }
    rows
}

/// `speed.json` / `cost.json` rows as a log–log PNG of milliseconds against length.
pub fn plot_times(path: &Path, rows: &[serde_json::Value], labels: &[String]) -> Result<()> {
    let mut series = Vec::new();
    for label in labels {
        for (key, what) in [("forward_seconds", "fwd"), ("forward_backward_seconds", "fwd+bwd")] {
            let pts: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| r["model"] == label.as_str() && r.get(key).is_some())
                .map(|r| (r["len"].as_f64().unwrap_or(0.0), r[key].as_f64().unwrap_or(0.0) * 1e3))
                .collect();
            if !pts.is_empty() {
                series.push((format!("{label} {what}"), pts));
            }
        }
    }
    let title = "time per pass vs sequence length";
    Ok(plot::line_chart(path, title, "sequence length", "milliseconds", &series, plot::Scale::Log, plot::Scale::Log)?)
}

/// Slope of log(ms) against log(length) between the shortest and the longest length timed.
pub fn log_slope(rows: &[serde_json::Value], label: &str, key: &str) -> Option<f64> {
    let pts: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r["model"] == label)
        .filter_map(|r| Some((r["len"].as_f64()?, r[key].as_f64()?)))
        .collect();
    let (first, last) = (pts.first()?, pts.last()?);
    (last.0 > first.0).then(|| (last.1 / first.1).ln() / (last.0 / first.0).ln())
}

/// `speed.md`: forward and forward + backward milliseconds per length, and each model's
/// log–log slope (1: linear in length, 2: quadratic).
pub fn markdown(rows: &[serde_json::Value], labels: &[String], lens: &[usize]) -> String {
    let mut out = "| model |".to_string();
    for l in lens {
        out.push_str(&format!(" fwd / fwd+bwd ms @{l} |"));
    }
    out.push_str(" slope fwd | slope fwd+bwd |\n|---|");
    out.push_str(&"---|".repeat(lens.len() + 2));
    out.push('\n');
    let ms = |r: &serde_json::Value, k: &str| r[k].as_f64().map_or("–".into(), |s| format!("{:.1}", s * 1e3));
    for label in labels {
        out.push_str(&format!("| {label} |"));
        for &l in lens {
            match rows.iter().find(|r| r["model"] == label.as_str() && r["len"] == l) {
                Some(r) if r.get("skipped").is_some() => out.push_str(" skipped (memory) |"),
                Some(r) => {
                    out.push_str(&format!(" {} / {} |", ms(r, "forward_seconds"), ms(r, "forward_backward_seconds")))
                }
                None => out.push_str(" – |"),
            }
        }
        for key in ["forward_seconds", "forward_backward_seconds"] {
            out.push_str(&log_slope(rows, label, key).map_or(" – |".into(), |s| format!(" {s:.2} |")));
        }
        out.push('\n');
    }
    out
}

/// `ssm-compare speed`: every model at every length, forward and forward + backward.
pub fn run_speed(a: SpeedArgs) -> Result<()> {
    let device = a.machine.device()?;
    if a.common.params.is_some() {
        anyhow::bail!("--params applies to training runs; `speed` times every model at --d-model");
    }
    let models = a.common.models()?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("{}: cannot create", a.out.display()))?;
    println!("{:<24} {:>7} {:>12} {:>14}", "model", "len", "forward ms", "fwd+bwd ms");
    let t = Timing { batch: a.batch, reps: a.reps, max_gib: a.max_attention_gib, backward: true, warm_each: true };
    let rows: Vec<serde_json::Value> =
        models.iter().flat_map(|(label, cfg)| time_model(label, cfg, &a.lens, &t, &device)).collect();
    let c = &a.common;
    write_json(
        &a.out.join("speed.json"),
        &serde_json::json!({"d_model": c.d_model, "layers": c.layers, "batch": a.batch, "results": rows}),
    )?;
    let labels: Vec<String> = models.iter().map(|m| m.0.clone()).collect();
    plot_times(&a.out.join("speed.png"), &rows, &labels)?;
    ssm_core::train::write_atomic(&a.out.join("speed.md"), markdown(&rows, &labels, &a.lens).as_bytes())?;
    println!("wrote {} (speed.json, speed.md, speed.png)", a.out.display());
    Ok(())
}
