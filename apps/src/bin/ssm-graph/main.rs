//! `ssm-graph`: transductive node classification — Graph-Mamba (any registered mixer in its
//! sequence branch), GCN and GAT — on Planetoid CSVs or any edge/feature/label files.

mod scale;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::Device;
use burn::tensor::activation::softmax;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use ssm_apps::{
    Machine, MixerArgs, RunDirArgs, check_out, exit_on_error, mean_std, parse_with_defaults, seed_dir, update_metrics,
    write_json,
};
use ssm_core::train::{TrainConfig, fit, load_checkpoint, model_dir, write_atomic};
use ssm_graph::data::{GraphData, GraphFiles, load, load_planetoid};
use ssm_graph::gat::GatConfig;
use ssm_graph::gcn::GcnConfig;
use ssm_graph::graph_mamba::{GraphMambaConfig, Local, Tokens};
use ssm_graph::model::{HostGraph, NodeModel, NodeModelConfig, NodeSource, node_tensor};
use ssm_graph::pca::pca2;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(about = "State-space models on graphs: Graph-Mamba, GCN and GAT node classification")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

// Parsed once per run: the variants' size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Cmd {
    /// Train on the train split (model selection on validation), report test accuracy.
    Train(TrainArgs),
    /// Validation and test accuracy of a trained model.
    Eval(RunDirArgs),
    /// Predicted classes of some nodes.
    Predict(PredictArgs),
    /// Node embeddings to CSV and a 2-D PCA plot coloured by class.
    Embed(EmbedArgs),
    /// Memory and time of training on a generated graph (default 100 000 nodes).
    Scale(scale::ScaleArgs),
}

/// Where the graph comes from: a Planetoid folder, or the files one by one.
#[derive(Args, Debug, Clone, Serialize, Deserialize)]
struct DataArgs {
    /// A Planetoid CSV folder (edges.csv, features.csv, labels.csv, {train,val,test}_idx.txt).
    #[arg(long, required_unless_present = "edges", conflicts_with_all = ["edges", "features", "labels", "split"])]
    data: Option<PathBuf>,
    /// `src,dst` edge list (with --features and --labels instead of --data).
    #[arg(long, requires_all = ["features", "labels"])]
    edges: Option<PathBuf>,
    /// Features: sparse `node,feature,value` or dense `node,v0,v1,…` rows.
    #[arg(long)]
    features: Option<PathBuf>,
    /// `node,label` rows (-1: unlabelled).
    #[arg(long)]
    labels: Option<PathBuf>,
    /// A folder with train_idx.txt, val_idx.txt, test_idx.txt (default: 20 per class train,
    /// 500 val, 1000 test, drawn with --split-seed).
    #[arg(long)]
    split: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    split_seed: u64,
}

impl DataArgs {
    fn load(&self) -> Result<GraphData> {
        if let Some(dir) = &self.data {
            return Ok(load_planetoid(dir)?);
        }
        let (Some(edges), Some(features), Some(labels)) = (&self.edges, &self.features, &self.labels) else {
            bail!("give --data DIR, or --edges, --features and --labels");
        };
        let files = GraphFiles { edges, features, labels, split: self.split.as_deref() };
        let name =
            edges.parent().and_then(|p| p.file_name()).map_or("graph".into(), |s| s.to_string_lossy().to_string());
        Ok(load(&name, &files, self.split_seed)?)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
enum ModelName {
    /// Graph-Mamba: GCN branch + a sequence mixer over degree-ordered nodes (GPS layer).
    GraphMamba,
    /// GCN (Kipf & Welling 2017): 16 hidden, dropout 0.5.
    Gcn,
    /// GAT (Veličković et al. 2018): 8 heads × 8, dropout 0.6.
    Gat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TokenArg {
    /// All nodes as one sequence ordered by degree (random tie-breaks).
    Degree,
    /// Each node's hop-aggregated neighbourhoods, far to near (`--hops`).
    Hops,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LocalArg {
    /// `Â h W`.
    Gcn,
    /// Edge-gated aggregation (Bresson & Laurent 2017), the reference's default.
    GatedGcn,
}

#[derive(Args, Debug)]
struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    #[arg(long, value_enum, default_value_t = ModelName::GraphMamba)]
    model: ModelName,
    /// Graph-Mamba's sequence mixer.
    #[command(flatten)]
    mixer: MixerArgs,
    /// Graph-Mamba width.
    #[arg(long, default_value_t = 64, value_parser = ssm_apps::positive)]
    d_model: usize,
    /// Graph-Mamba layers.
    #[arg(long, default_value_t = 1, value_parser = ssm_apps::positive)]
    layers: usize,
    /// Graph-Mamba's sequence tokens.
    #[arg(long, value_enum, default_value_t = TokenArg::Degree)]
    tokens: TokenArg,
    #[arg(long, default_value_t = 3)]
    hops: usize,
    /// Graph-Mamba's local message-passing branch.
    #[arg(long, value_enum, default_value_t = LocalArg::GatedGcn)]
    local: LocalArg,
    /// Dropout (default: GCN 0.5 and GAT 0.6 as their papers; Graph-Mamba 0.7).
    #[arg(long, value_parser = ssm_apps::probability)]
    dropout: Option<f64>,
    /// L2 penalty `λ/2 ‖W‖²` (GCN: first layer; GAT, Graph-Mamba: every weight matrix). Default: 5e-4, Graph-Mamba 2e-2.
    #[arg(long)]
    l2: Option<f64>,
    /// Full-graph training steps (epochs). Default: GCN 200, GAT 1000, Graph-Mamba 300.
    #[arg(long, value_parser = ssm_apps::positive)]
    steps: Option<usize>,
    /// Adam learning rate. Default: GCN 0.01, GAT 0.005, Graph-Mamba 0.005.
    #[arg(long)]
    lr: Option<f64>,
    /// Stop after this many steps without a lower validation loss. Default: GCN 10, GAT 100,
    /// Graph-Mamba 50.
    #[arg(long, value_parser = ssm_apps::positive)]
    patience: Option<usize>,
    /// Runs with seeds seed..seed+N; metrics are their mean ± std.
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Continue each seed's run from its checkpoint in --out.
    #[arg(long)]
    resume: bool,
    /// Output directory (graph.json, metrics.json, seed-K/ checkpoints).
    #[arg(long, default_value = "runs/graph")]
    out: PathBuf,
    #[command(flatten)]
    machine: Machine,
}

#[derive(Args, Debug)]
struct PredictArgs {
    #[command(flatten)]
    using: RunDirArgs,
    /// Node ids, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    nodes: Vec<usize>,
    /// Classes listed per node.
    #[arg(long, default_value_t = 3, value_parser = ssm_apps::positive)]
    top_k: usize,
}

#[derive(Args, Debug)]
struct EmbedArgs {
    #[command(flatten)]
    using: RunDirArgs,
    /// Where embeddings.csv and embeddings-pca.png go (default: the model directory).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// What a trained directory holds besides the checkpoints.
#[derive(Serialize, Deserialize)]
struct GraphInfo {
    config: NodeModelConfig,
    data: DataArgs,
    n_features: usize,
    n_classes: usize,
    seeds: Vec<u64>,
}

struct Defaults {
    steps: usize,
    lr: f64,
    patience: usize,
}

/// The L2 default: GCN's and GAT's papers use 5e-4; Graph-Mamba, with several times their
/// weights and 120–140 labels, was chosen at 2e-2 on the validation splits.
fn default_l2(m: ModelName) -> f64 {
    if m == ModelName::GraphMamba { 2e-2 } else { 5e-4 }
}

fn model_config(a: &TrainArgs) -> Result<(NodeModelConfig, Defaults)> {
    let l2 = a.l2.unwrap_or(default_l2(a.model));
    Ok(match a.model {
        ModelName::Gcn => {
            let c = GcnConfig { dropout: a.dropout.unwrap_or(0.5), l2, ..GcnConfig::default() };
            (NodeModelConfig::Gcn(c), Defaults { steps: 200, lr: 0.01, patience: 10 })
        }
        ModelName::Gat => {
            let c = GatConfig { dropout: a.dropout.unwrap_or(0.6), l2, ..GatConfig::default() };
            (NodeModelConfig::Gat(c), Defaults { steps: 1000, lr: 0.005, patience: 100 })
        }
        ModelName::GraphMamba => {
            let mut c = GraphMambaConfig::new(a.mixer.config(a.d_model)?);
            c.layers = a.layers;
            c.tokens = match a.tokens {
                TokenArg::Degree => Tokens::Degree,
                TokenArg::Hops => Tokens::Hops(a.hops),
            };
            c.local = if a.local == LocalArg::GatedGcn { Local::GatedGcn } else { Local::Gcn };
            c.dropout = a.dropout.unwrap_or(c.dropout);
            c.input_dropout = a.dropout.unwrap_or(c.input_dropout);
            c.l2 = l2;
            (NodeModelConfig::GraphMamba(c), Defaults { steps: 300, lr: 0.005, patience: 50 })
        }
    })
}

/// Predicted classes of every node (one forward pass).
fn predictions(model: &NodeModel, host: &HostGraph, device: &Device) -> Vec<i64> {
    let logits = model.forward(&host.to_device(device), 0);
    logits.argmax(1).into_data().convert::<i64>().try_into_vec::<i64>().unwrap_or_default()
}

/// Accuracy of the predictions `pred` on `nodes`.
fn accuracy(pred: &[i64], g: &GraphData, nodes: &[usize]) -> f64 {
    let hits = nodes.iter().filter(|&&n| pred.get(n) == Some(&g.labels[n])).count();
    hits as f64 / nodes.len().max(1) as f64
}

fn train(a: TrainArgs) -> Result<()> {
    check_out(&a.out)?;
    let device = a.machine.device()?;
    let g = a.data.load()?;
    let host = Arc::new(HostGraph::new(&g));
    let (config, d) = model_config(&a)?;
    let seeds: Vec<u64> = (a.seed..a.seed + a.seeds.max(1)).collect();
    println!(
        "{}: {} nodes, {} edges, {} features, {} classes; split {} train / {} val / {} test",
        g.name,
        g.n_nodes(),
        g.graph.edge_count(),
        g.features.dim,
        g.n_classes,
        g.split.train.len(),
        g.split.val.len(),
        g.split.test.len()
    );
    std::fs::create_dir_all(&a.out).with_context(|| format!("{}: cannot create", a.out.display()))?;
    let info = GraphInfo {
        config: config.clone(),
        data: a.data.clone(),
        n_features: g.features.dim,
        n_classes: g.n_classes,
        seeds: seeds.clone(),
    };
    write_json(&a.out.join("graph.json"), &info)?;
    let (mut runs, mut params, mut seconds) = (Vec::new(), 0, 0.0);
    for &seed in &seeds {
        let adev = device.clone().autodiff();
        adev.seed(seed);
        let model = config.init(g.features.dim, g.n_classes, &adev);
        params = model.num_params();
        let mut src = NodeSource::new(host.clone(), &g, &g.split.val, seed);
        let steps = a.steps.unwrap_or(d.steps);
        let tc = TrainConfig {
            steps,
            epochs: steps,
            lr: a.lr.unwrap_or(d.lr),
            min_lr_ratio: 1.0,
            warmup_steps: 0,
            weight_decay: 0.0,
            grad_clip: None,
            seed,
            out: Some(seed_dir(&a.out, seed)),
            resume: a.resume,
            progress: seeds.len() == 1,
            keep_best: true,
            patience: Some(a.patience.unwrap_or(d.patience)),
            save_every: Some(25),
            ..TrainConfig::default()
        };
        let fitted = fit(model, &mut src, &tc, &adev)?;
        let model = fitted.model.valid();
        let pred = predictions(&model, &host, &device);
        let (test, val) = (accuracy(&pred, &g, &g.split.test), accuracy(&pred, &g, &g.split.val));
        let best = fitted.state.best.map_or(0, |b| b.step);
        seconds += fitted.state.train_seconds;
        println!(
            "seed {seed}: test accuracy {test:.4}, validation {val:.4} (best step {best} of {})",
            fitted.state.step
        );
        let run = serde_json::json!({"seed": seed, "test_accuracy": test, "val_accuracy": val, "best_step": best, "steps": fitted.state.step});
        update_metrics(&seed_dir(&a.out, seed), run.clone())?;
        runs.push(run);
    }
    let col = |k: &str| runs.iter().filter_map(|r| r[k].as_f64()).collect::<Vec<_>>();
    let ((test, test_std), (val, val_std)) = (mean_std(&col("test_accuracy")), mean_std(&col("val_accuracy")));
    write_json(
        &a.out.join("metrics.json"),
        &serde_json::json!({"model": config.name(), "dataset": g.name, "params": params, "seeds": seeds.len(),
            "test_accuracy": test, "test_accuracy_std": test_std, "val_accuracy": val, "val_accuracy_std": val_std,
            "train_seconds": seconds, "runs": runs}),
    )?;
    println!(
        "{} on {}: test accuracy {:.2} ± {:.2} % (validation {:.2} ± {:.2} %) over {} seed(s); {params} parameters, {seconds:.1} s training → {}",
        config.name(),
        g.name,
        100.0 * test,
        100.0 * test_std,
        100.0 * val,
        100.0 * val_std,
        seeds.len(),
        a.out.display()
    );
    Ok(())
}

/// A trained directory's model, graph and host tensors.
fn open(u: &RunDirArgs, device: &Device) -> Result<(GraphInfo, GraphData, HostGraph, NodeModel)> {
    let path = u.model.join("graph.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: not a `ssm-graph train` output directory", path.display()))?;
    let info: GraphInfo = serde_json::from_str(&text).with_context(|| format!("{}: unreadable", path.display()))?;
    let g = info.data.load()?;
    if (g.features.dim, g.n_classes) != (info.n_features, info.n_classes) {
        bail!(
            "the graph now has {} features and {} classes; the model was trained with {} and {}",
            g.features.dim,
            g.n_classes,
            info.n_features,
            info.n_classes
        );
    }
    let seed = u.seed.or(info.seeds.first().copied()).unwrap_or(0);
    let dir = model_dir(&seed_dir(&u.model, seed));
    let model = load_checkpoint(&dir, info.config.init(info.n_features, info.n_classes, device))?;
    let host = HostGraph::new(&g);
    Ok((info, g, host, model))
}

fn eval(u: RunDirArgs) -> Result<()> {
    let device = u.machine.device()?;
    let (info, g, host, model) = open(&u, &device)?;
    let pred = predictions(&model, &host, &device);
    let (test, val) = (accuracy(&pred, &g, &g.split.test), accuracy(&pred, &g, &g.split.val));
    println!(
        "{} on {}: test accuracy {test:.4} ({} nodes), validation {val:.4} ({} nodes)",
        info.config.name(),
        g.name,
        g.split.test.len(),
        g.split.val.len()
    );
    Ok(())
}

fn predict(a: PredictArgs) -> Result<()> {
    let device = a.using.machine.device()?;
    let (_, g, host, model) = open(&a.using, &device)?;
    if let Some(&bad) = a.nodes.iter().find(|&&n| n >= g.n_nodes()) {
        bail!("--nodes: node {bad} is outside 0..{}", g.n_nodes());
    }
    let probs = softmax(model.forward(&host.to_device(&device), 0).select(0, node_tensor(&a.nodes, &device)), 1);
    let p = probs.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_default();
    let c = g.n_classes;
    println!("node,label,predicted,top_{}", a.top_k);
    for (i, &node) in a.nodes.iter().enumerate() {
        let row = &p[i * c..(i + 1) * c];
        let mut order: Vec<usize> = (0..c).collect();
        order.sort_by(|&x, &y| row[y].total_cmp(&row[x]));
        let top: Vec<String> = order.iter().take(a.top_k.max(1)).map(|&k| format!("{k}:{:.3}", row[k])).collect();
        let label = if g.labels[node] >= 0 { g.labels[node].to_string() } else { "?".into() };
        println!("{node},{label},{},{}", order[0], top.join(" "));
    }
    Ok(())
}

fn embed(a: EmbedArgs) -> Result<()> {
    let device = a.using.machine.device()?;
    let (info, g, host, model) = open(&a.using, &device)?;
    let e = model.embed(&host.to_device(&device));
    let [n, d] = e.dims();
    let v = e.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_default();
    let out = a.out.clone().unwrap_or(a.using.model.clone());
    std::fs::create_dir_all(&out).with_context(|| format!("{}: cannot create", out.display()))?;
    let mut csv = String::from("node,label");
    (0..d).for_each(|j| csv.push_str(&format!(",e{j}")));
    csv.push('\n');
    for (i, row) in v.chunks(d).enumerate() {
        csv.push_str(&format!("{i},{}", g.labels[i]));
        row.iter().for_each(|x| csv.push_str(&format!(",{x}")));
        csv.push('\n');
    }
    write_atomic(&out.join("embeddings.csv"), csv.as_bytes())?;
    let xy = pca2(&v, n, d);
    let groups: Vec<(String, Vec<(f64, f64)>)> = (0..g.n_classes as i64)
        .map(|c| (format!("class {c}"), xy.iter().zip(&g.labels).filter(|(_, l)| **l == c).map(|(p, _)| *p).collect()))
        .collect();
    let png = out.join("embeddings-pca.png");
    ssm_core::plot::scatter(
        &png,
        &format!("{} on {}: node embeddings (PCA)", info.config.name(), g.name),
        "PC 1",
        "PC 2",
        &groups,
    )?;
    println!("{n} embeddings of width {d} → {} and {}", out.join("embeddings.csv").display(), png.display());
    Ok(())
}

fn main() {
    let cli: Cli = parse_with_defaults(&[]);
    exit_on_error(match cli.cmd {
        Cmd::Train(a) => train(a),
        Cmd::Eval(u) => eval(u),
        Cmd::Predict(a) => predict(a),
        Cmd::Embed(a) => embed(a),
        Cmd::Scale(a) => scale::run(a),
    });
}
