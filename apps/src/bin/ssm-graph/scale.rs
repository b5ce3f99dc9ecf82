//! `ssm-graph scale`: time and peak memory of full-graph training on a generated planted-
//! partition graph — evidence that message passing stays sparse (a dense N×N adjacency of
//! 100 000 nodes would be 40 GB).

use crate::{ModelName, TokenArg};
use anyhow::Result;
use clap::Args;
use ssm_apps::{Machine, MixerArgs};
use ssm_core::train::{TrainConfig, fit};
use ssm_graph::gat::GatConfig;
use ssm_graph::gcn::GcnConfig;
use ssm_graph::graph_mamba::{GraphMambaConfig, Tokens};
use ssm_graph::model::{HostGraph, NodeModelConfig, NodeSource};
use ssm_graph::synthetic::Planted;
use std::sync::Arc;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct ScaleArgs {
    #[arg(long, default_value_t = 100_000, value_parser = ssm_apps::positive)]
    nodes: usize,
    /// Mean degree.
    #[arg(long, default_value_t = 10)]
    degree: usize,
    #[arg(long, default_value_t = 500, value_parser = ssm_apps::positive)]
    features: usize,
    #[arg(long, value_enum, default_value_t = ModelName::GraphMamba)]
    model: ModelName,
    #[command(flatten)]
    mixer: MixerArgs,
    #[arg(long, value_enum, default_value_t = TokenArg::Degree)]
    tokens: TokenArg,
    /// Full-graph training steps (each followed by a validation pass).
    #[arg(long, default_value_t = 5, value_parser = ssm_apps::positive)]
    steps: usize,
    #[command(flatten)]
    machine: Machine,
}

/// Peak resident memory of this process in MiB (Linux `VmHWM`).
fn peak_rss_mib() -> Option<f64> {
    Some(ssm_apps::proc_status_kib("VmHWM:")? as f64 / 1024.0)
}

pub fn run(a: ScaleArgs) -> Result<()> {
    let device = a.machine.device()?;
    let t0 = Instant::now();
    let planted = Planted { nodes: a.nodes, degree: a.degree, features: a.features, ..Planted::default() };
    let g = planted.generate(0);
    let host = Arc::new(HostGraph::new(&g));
    println!(
        "generated {} nodes, {} undirected edges ({} messages with self-loops), {} features, {} classes in {:.1} s; peak memory so far {:.0} MiB",
        g.n_nodes(),
        g.graph.edge_count(),
        host.gcn.len(),
        g.features.dim,
        g.n_classes,
        t0.elapsed().as_secs_f64(),
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    let config = match a.model {
        ModelName::Gcn => NodeModelConfig::Gcn(GcnConfig::default()),
        ModelName::Gat => NodeModelConfig::Gat(GatConfig::default()),
        ModelName::GraphMamba => {
            let mut c = GraphMambaConfig::new(a.mixer.config(64)?);
            c.tokens = if a.tokens == TokenArg::Hops { Tokens::Hops(3) } else { Tokens::Degree };
            NodeModelConfig::GraphMamba(c)
        }
    };
    let adev = device.clone().autodiff();
    adev.seed(0);
    let model = config.init(g.features.dim, g.n_classes, &adev);
    let mut src = NodeSource::new(host, &g, &g.split.val, 0);
    let tc = TrainConfig {
        steps: a.steps,
        epochs: a.steps,
        lr: 5e-3,
        warmup_steps: 0,
        min_lr_ratio: 1.0,
        progress: false,
        ..TrainConfig::default()
    };
    let t1 = Instant::now();
    let fitted = fit(model, &mut src, &tc, &adev)?;
    let wall = t1.elapsed().as_secs_f64();
    let last = fitted.state.epochs.last();
    println!(
        "{}: {} full-graph training steps in {:.1} s ({:.2} s per step, {:.1} s with the validation passes); validation accuracy after them {:.3}; peak memory {:.0} MiB",
        config.name(),
        a.steps,
        fitted.state.train_seconds,
        fitted.state.train_seconds / a.steps.max(1) as f64,
        wall,
        last.map_or(f64::NAN, |e| e.eval_accuracy),
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    Ok(())
}
