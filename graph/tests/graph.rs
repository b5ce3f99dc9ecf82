//! ssm-graph: loaders against the shared Planetoid files, sparse propagation against dense
//! algebra and its gradient, edge softmax, and every model (every registered mixer in
//! Graph-Mamba's branch) training on a generated graph.

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use ssm_core::fixtures::data_or_skip;
use ssm_core::mixers::{MIXER_NAMES, MixerConfig};
use ssm_core::train::{TrainConfig, fit};
use ssm_graph::data::{GraphData, GraphFiles, SparseFeatures, Split, load, load_planetoid};
use ssm_graph::gat::GatConfig;
use ssm_graph::gcn::GcnConfig;
use ssm_graph::graph_mamba::{GraphMambaConfig, Tokens};
use ssm_graph::model::{HostGraph, NodeModelConfig, NodeSource};
use ssm_graph::sparse::{EdgeList, FeatureTensors};
use ssm_graph::synthetic::Planted;
use std::sync::Arc;

fn host(t: Tensor<2>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap()
}

#[test]
fn planetoid_cora_and_citeseer_match_their_published_sizes() {
    let Some(root) = data_or_skip("graph/planetoid") else { return };
    let cora = load_planetoid(&root.join("cora")).unwrap();
    assert_eq!((cora.n_nodes(), cora.graph.edge_count(), cora.features.dim, cora.n_classes), (2708, 5278, 1433, 7));
    assert_eq!(cora.features.vals.len(), 49_216);
    assert_eq!((cora.split.train.len(), cora.split.val.len(), cora.split.test.len()), (140, 500, 1000));
    let cs = load_planetoid(&root.join("citeseer")).unwrap();
    assert_eq!((cs.n_nodes(), cs.graph.edge_count(), cs.features.dim, cs.n_classes), (3327, 4552, 3703, 6));
    assert_eq!(cs.labels.iter().filter(|&&l| l < 0).count(), 15, "CiteSeer's isolated unlabelled nodes");
    assert_eq!((cs.split.train.len(), cs.split.val.len(), cs.split.test.len()), (120, 500, 1000));
    // Both directions plus self-loops, as PyG counts them.
    assert_eq!(EdgeList::with_self_loops(&cora).len(), 10_556 + 2708);
}

/// A path 0–1–2–3 plus the edge 1–3, with 2 features per node.
fn small() -> GraphData {
    let f = SparseFeatures { dim: 2, rows: vec![0, 1, 2, 3], cols: vec![0, 1, 0, 1], vals: vec![1.0; 4] };
    let split = Split { train: vec![0, 1], val: vec![2], test: vec![3] };
    GraphData::new("small", 4, &[(0, 1), (1, 2), (2, 3), (1, 3)], f, vec![0, 1, 0, 1], split).unwrap()
}

#[test]
fn sparse_propagation_equals_the_dense_renormalised_adjacency_and_its_transpose_gradient() {
    let g = small();
    let n = 4;
    let mut a = vec![0f64; n * n];
    for (i, j) in g.edges().into_iter().chain((0..n).map(|i| (i, i))) {
        a[i * n + j] = 1.0;
        a[j * n + i] = 1.0;
    }
    let deg: Vec<f64> = (0..n).map(|i| (0..n).map(|j| a[i * n + j]).sum()).collect();
    let dense: Vec<f64> = (0..n * n).map(|k| a[k] / (deg[k / n] * deg[k % n]).sqrt()).collect();
    let device = Device::flex().autodiff();
    let h = Tensor::<2>::random([n, 3], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let r = Tensor::<2>::random([n, 3], Distribution::Normal(0.0, 1.0), &device);
    let adj = EdgeList::with_self_loops(&g).gcn_normalised().to_device(&device);
    let out = adj.spmm(h.clone());
    let grads = (out.clone() * r.clone()).sum().backward();
    let (hv, rv, ov) = (host(h.clone().inner()), host(r.inner()), host(out.inner()));
    let gv = host(h.grad(&grads).unwrap());
    for i in 0..n {
        for c in 0..3 {
            let want: f64 = (0..n).map(|j| dense[i * n + j] * hv[j * 3 + c] as f64).sum();
            assert!((ov[i * 3 + c] as f64 - want).abs() < 1e-5, "(Âh)[{i},{c}] {} vs {want}", ov[i * 3 + c]);
            let want_g: f64 = (0..n).map(|j| dense[j * n + i] * rv[j * 3 + c] as f64).sum();
            assert!((gv[i * 3 + c] as f64 - want_g).abs() < 1e-5, "gradient [{i},{c}]");
        }
    }
}

#[test]
fn edge_softmax_sums_to_one_over_each_nodes_incoming_edges() {
    let g = small();
    let device = Device::flex();
    let e = EdgeList::with_self_loops(&g);
    let t = e.to_device(&device);
    let scores = Tensor::<2>::random([e.len(), 2], Distribution::Normal(0.0, 30.0), &device);
    let alpha = host(t.edge_softmax(scores));
    let mut sums = vec![0f64; 4 * 2];
    for (k, &d) in e.dst.iter().enumerate() {
        for h in 0..2 {
            assert!(alpha[k * 2 + h].is_finite() && alpha[k * 2 + h] >= 0.0);
            sums[d as usize * 2 + h] += alpha[k * 2 + h] as f64;
        }
    }
    assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5), "{sums:?}");
}

fn planted() -> GraphData {
    Planted { nodes: 400, degree: 8, classes: 4, features: 40, active: 6, homophily: 0.9 }.generate(3)
}

/// Test accuracy of `config` after `steps` full-graph steps on the planted graph.
fn trained_accuracy(config: NodeModelConfig, steps: usize) -> f64 {
    let g = planted();
    let h = Arc::new(HostGraph::new(&g));
    let device = Device::flex().autodiff();
    device.seed(1);
    let model = config.init(g.features.dim, g.n_classes, &device);
    let mut src = NodeSource::new(h.clone(), &g, &g.split.test, 1);
    let tc = TrainConfig {
        steps,
        epochs: 1,
        lr: 0.01,
        warmup_steps: 0,
        min_lr_ratio: 1.0,
        progress: false,
        weight_decay: 0.0,
        ..TrainConfig::default()
    };
    let fitted = fit(model, &mut src, &tc, &device).unwrap();
    fitted.state.epochs.last().unwrap().eval_accuracy
}

#[test]
fn gcn_gat_and_graph_mamba_learn_a_planted_partition() {
    // Chance is 0.25; features alone are weakly informative, neighbours strongly.
    for (config, steps) in [
        (NodeModelConfig::Gcn(GcnConfig::default()), 60),
        (NodeModelConfig::Gat(GatConfig::default()), 60),
        (NodeModelConfig::GraphMamba(GraphMambaConfig::new(MixerConfig::by_name("mamba", 16).unwrap())), 40),
    ] {
        let name = config.name();
        let acc = trained_accuracy(config, steps);
        assert!(acc > 0.7, "{name}: test accuracy {acc}");
    }
}

#[test]
fn every_registered_mixer_runs_in_graph_mambas_sequence_branch_and_evaluation_is_deterministic() {
    let g = planted();
    let h = HostGraph::new(&g);
    let device = Device::flex();
    let inputs = h.to_device(&device);
    for name in MIXER_NAMES {
        for tokens in [Tokens::Degree, Tokens::Hops(2)] {
            let mut c = GraphMambaConfig::new(MixerConfig::small_by_name(name, 16).unwrap());
            c.tokens = tokens;
            let m = NodeModelConfig::GraphMamba(c).init(g.features.dim, g.n_classes, &device);
            let (a, b) = (host(m.forward(&inputs, 0)), host(m.forward(&inputs, 7)));
            assert_eq!(a.len(), g.n_nodes() * g.n_classes, "{name}");
            assert!(a.iter().all(|v| v.is_finite()), "{name} {tokens:?}");
            // Evaluation averages fixed orderings: the training seed plays no part.
            assert_eq!(a, b, "{name} {tokens:?}");
        }
    }
}

#[test]
fn models_survive_save_and_load() {
    let g = planted();
    let h = HostGraph::new(&g);
    let device = Device::flex();
    let inputs = h.to_device(&device);
    let dir = std::env::temp_dir().join(format!("ssm-graph-save-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mamba = GraphMambaConfig::new(MixerConfig::small_by_name("mamba", 16).unwrap());
    for config in [NodeModelConfig::Gat(GatConfig::default()), NodeModelConfig::GraphMamba(mamba)] {
        let m = config.init(g.features.dim, g.n_classes, &device);
        let path = dir.join(config.name());
        m.clone().save_file(&path).unwrap();
        let loaded = config.init(g.features.dim, g.n_classes, &device).try_load_file(&path).unwrap();
        assert_eq!(host(m.forward(&inputs, 0)), host(loaded.forward(&inputs, 0)), "{}", config.name());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn bad_files_give_one_error_naming_the_file_and_the_problem() {
    let dir = std::env::temp_dir().join(format!("ssm-graph-bad-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let edges = write(&dir, "edges.csv", "src,dst\n0,1\n1,2\n");
    let feats = write(&dir, "features.csv", "node,feature,value\n0,0,1\n1,1,1\n2,0,1\n");
    let labels = write(&dir, "labels.csv", "node,label\n0,0\n1,1\n2,0\n");
    let files = |e: &std::path::Path, f: &std::path::Path, l: &std::path::Path| {
        load("t", &GraphFiles { edges: e, features: f, labels: l, split: None }, 0).map(|_| ()).unwrap_err().to_string()
    };
    let missing = dir.join("nope.csv");
    assert!(files(&missing, &feats, &labels).contains("nope.csv: cannot read"));
    let bad = write(&dir, "bad-edges.csv", "src,dst\n0,1\n1,x\n");
    let msg = files(&bad, &feats, &labels);
    assert!(msg.contains("bad-edges.csv") && msg.contains("line 3"), "{msg}");
    let nan = write(&dir, "nan.csv", "node,feature,value\n0,0,NaN\n");
    assert!(files(&edges, &nan, &labels).contains("NaN"));
    let neg = write(&dir, "neg.csv", "src,dst\n0,-1\n");
    assert!(files(&neg, &feats, &labels).contains("not a node id"));
    let empty = write(&dir, "empty.csv", "");
    assert!(files(&edges, &feats, &empty).contains("no data rows"));
    let one_class = write(&dir, "one.csv", "node,label\n0,0\n1,0\n");
    assert!(files(&edges, &feats, &one_class).contains("two classes"));
    assert!(load_planetoid(&dir.join("absent")).unwrap_err().to_string().contains("not a folder"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_sparse_first_layer_is_row_normalised_x_times_w() {
    let f = SparseFeatures { dim: 3, rows: vec![0, 0, 1], cols: vec![0, 2, 1], vals: vec![1.0, 3.0, 2.0] };
    let device = Device::flex();
    let x = FeatureTensors::new(&f, 3, true, &device);
    let layer = burn::nn::LinearConfig::new(3, 2).init(&device);
    let w = host(layer.weight.val());
    let b = host(layer.bias.as_ref().unwrap().val().unsqueeze_dim(0));
    let y = host(x.linear(&layer, &burn::nn::DropoutConfig::new(0.5).init()));
    // Row-normalised X = [[.25, 0, .75], [0, 1, 0], [0, 0, 0]]; dropout is off without autodiff.
    let xr = [[0.25, 0.0, 0.75], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]];
    for (i, row) in xr.iter().enumerate() {
        for o in 0..2 {
            let want: f32 = (0..3).map(|k| row[k] * w[k * 2 + o]).sum::<f32>() + b[o];
            assert!((y[i * 2 + o] - want).abs() < 1e-6, "[{i},{o}] {} vs {want}", y[i * 2 + o]);
        }
    }
}
