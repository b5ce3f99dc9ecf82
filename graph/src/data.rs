//! Graphs for transductive node classification: the Planetoid CSV layout and a generic
//! `--edges --features --labels [--split]` form.
//!
//! Files (header line optional, `#` comments ignored):
//! - edges: `src,dst` per line, node ids `0..N`; read as undirected (each pair once or twice).
//! - features: sparse COO `node,feature,value`, or dense `node,v0,v1,…` rows (detected by the
//!   column count: 3 columns are COO).
//! - labels: `node,label`, with `-1` for an unlabelled node (CiteSeer's isolated nodes).
//! - split: a folder with `train_idx.txt`, `val_idx.txt`, `test_idx.txt`, one node id per line.
//!
//! The graph is held as a petgraph [`UnGraph`]; node `i` is `NodeIndex::new(i)`.

use petgraph::graph::{NodeIndex, UnGraph};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use ssm_core::error::FileError;
use std::path::Path;

/// Node features as a sparse COO list (row-major order is not required).
#[derive(Debug, Clone, Default)]
pub struct SparseFeatures {
    pub dim: usize,
    pub rows: Vec<u32>,
    pub cols: Vec<u32>,
    pub vals: Vec<f32>,
}

/// Train / validation / test node ids.
#[derive(Debug, Clone, Default)]
pub struct Split {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
}

/// A graph with node features, labels and a split.
#[derive(Debug, Clone)]
pub struct GraphData {
    pub name: String,
    pub graph: UnGraph<(), ()>,
    pub features: SparseFeatures,
    /// One label per node, `-1` when unlabelled.
    pub labels: Vec<i64>,
    pub n_classes: usize,
    pub split: Split,
}

impl GraphData {
    pub fn n_nodes(&self) -> usize {
        self.graph.node_count()
    }

    /// Undirected edges, each once.
    pub fn edges(&self) -> Vec<(usize, usize)> {
        self.graph
            .edge_indices()
            .filter_map(|e| self.graph.edge_endpoints(e))
            .map(|(a, b)| (a.index(), b.index()))
            .collect()
    }

    /// Node degrees (self-loops not counted).
    pub fn degrees(&self) -> Vec<usize> {
        (0..self.n_nodes()).map(|i| self.graph.neighbors(NodeIndex::new(i)).count()).collect()
    }

    /// Labels of `nodes` (all labelled: the split is checked when the data is built).
    pub fn labels_of(&self, nodes: &[usize]) -> Vec<i64> {
        nodes.iter().map(|&i| self.labels[i]).collect()
    }

    /// Builds and checks a graph: ids in range, labelled split nodes, classes `0..C`.
    pub fn new(
        name: &str,
        n: usize,
        edges: &[(usize, usize)],
        features: SparseFeatures,
        labels: Vec<i64>,
        split: Split,
    ) -> Result<Self, String> {
        let mut graph = UnGraph::<(), ()>::with_capacity(n, edges.len());
        (0..n).for_each(|_| {
            graph.add_node(());
        });
        let mut seen = std::collections::HashSet::with_capacity(edges.len());
        for &(a, b) in edges {
            if a >= n || b >= n {
                return Err(format!("edge ({a}, {b}) names a node outside 0..{n}"));
            }
            if a != b && seen.insert((a.min(b), a.max(b))) {
                graph.add_edge(NodeIndex::new(a), NodeIndex::new(b), ());
            }
        }
        let n_classes = labels.iter().copied().max().map_or(0, |m| (m + 1).max(0) as usize);
        if n_classes < 2 {
            return Err("fewer than two classes are labelled".into());
        }
        for (part, ids) in [("train", &split.train), ("val", &split.val), ("test", &split.test)] {
            if ids.is_empty() {
                return Err(format!("the {part} split is empty"));
            }
            if let Some(&i) = ids.iter().find(|&&i| i >= n || labels[i] < 0) {
                return Err(format!("{part} node {i} is outside 0..{n} or has no label"));
            }
        }
        Ok(GraphData { name: name.into(), graph, features, labels, n_classes, split })
    }
}

/// Numeric CSV rows (header and `#` lines skipped) of a file: `(line number, fields)`.
fn rows(path: &Path) -> Result<Vec<(usize, Vec<f64>)>, FileError> {
    let text = std::fs::read_to_string(path).map_err(|e| FileError::new(path, format!("cannot read: {e}")))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Result<Vec<f64>, _> =
            line.split([',', '\t', ' ']).filter(|f| !f.is_empty()).map(|f| f.trim().parse::<f64>()).collect();
        match fields {
            Ok(v) if v.iter().all(|x| x.is_finite()) => out.push((i + 1, v)),
            Ok(_) => return Err(FileError::new(path, format!("line {}: NaN or infinite value", i + 1))),
            Err(_) if out.is_empty() && i == 0 => continue, // a header
            Err(_) => return Err(FileError::new(path, format!("line {}: not a number in {line:?}", i + 1))),
        }
    }
    if out.is_empty() {
        return Err(FileError::new(path, "no data rows"));
    }
    Ok(out)
}

/// A non-negative integer id from a field.
fn id(path: &Path, line: usize, v: f64, what: &str) -> Result<usize, FileError> {
    if v < 0.0 || v.fract() != 0.0 || v > u32::MAX as f64 {
        return Err(FileError::new(path, format!("line {line}: {what} {v} is not a node id")));
    }
    Ok(v as usize)
}

fn want_cols(path: &Path, line: usize, got: usize, want: usize) -> Result<(), FileError> {
    if got != want {
        return Err(FileError::new(path, format!("line {line}: {got} fields, expected {want}")));
    }
    Ok(())
}

/// `src,dst` pairs.
pub fn read_edges(path: &Path) -> Result<Vec<(usize, usize)>, FileError> {
    rows(path)?
        .into_iter()
        .map(|(l, f)| {
            want_cols(path, l, f.len(), 2)?;
            Ok((id(path, l, f[0], "source")?, id(path, l, f[1], "target")?))
        })
        .collect()
}

/// `node,label` pairs (label `-1`: unlabelled).
pub fn read_labels(path: &Path) -> Result<Vec<(usize, i64)>, FileError> {
    let mut labels = Vec::new();
    for (l, f) in rows(path)? {
        want_cols(path, l, f.len(), 2)?;
        let node = id(path, l, f[0], "node")?;
        if f[1].fract() != 0.0 || f[1] < -1.0 || f[1] > 1e6 {
            return Err(FileError::new(path, format!("line {l}: label {} is not a class id (or -1)", f[1])));
        }
        labels.push((node, f[1] as i64));
    }
    Ok(labels)
}

/// The widest feature vector a graph file may describe.
pub const MAX_FEATURES: usize = 1 << 20;

/// Sparse COO (`node,feature,value`) or dense (`node,v0,v1,…`) features.
pub fn read_features(path: &Path) -> Result<(SparseFeatures, usize), FileError> {
    let rows = rows(path)?;
    let width = rows[0].1.len();
    let mut f = SparseFeatures::default();
    let mut n = 0;
    for (l, v) in rows {
        want_cols(path, l, v.len(), width)?;
        let node = id(path, l, v[0], "node")?;
        n = n.max(node + 1);
        if width == 3 {
            let col = id(path, l, v[1], "feature")?;
            if col >= MAX_FEATURES {
                return Err(FileError::new(path, format!("line {l}: feature index {col} (at most {MAX_FEATURES})")));
            }
            f.dim = f.dim.max(col + 1);
            f.rows.push(node as u32);
            f.cols.push(col as u32);
            f.vals.push(v[2] as f32);
        } else {
            f.dim = width - 1;
            for (c, &x) in v[1..].iter().enumerate().filter(|(_, x)| **x != 0.0) {
                f.rows.push(node as u32);
                f.cols.push(c as u32);
                f.vals.push(x as f32);
            }
        }
    }
    if width < 2 {
        return Err(FileError::new(path, "expected node,feature,value or node,v0,v1,… rows"));
    }
    Ok((f, n))
}

/// One node id per line.
pub fn read_ids(path: &Path) -> Result<Vec<usize>, FileError> {
    rows(path)?
        .into_iter()
        .map(|(l, f)| {
            want_cols(path, l, f.len(), 1)?;
            id(path, l, f[0], "node")
        })
        .collect()
}

/// A split folder with `train_idx.txt`, `val_idx.txt`, `test_idx.txt`.
pub fn read_split(dir: &Path) -> Result<Split, FileError> {
    Ok(Split {
        train: read_ids(&dir.join("train_idx.txt"))?,
        val: read_ids(&dir.join("val_idx.txt"))?,
        test: read_ids(&dir.join("test_idx.txt"))?,
    })
}

/// A seeded split of the labelled nodes: `per_class` training nodes per class, then
/// `n_val` validation and the rest (at most `n_test`) test — Planetoid's recipe for any graph.
/// Small graphs: at most a third of each class trains, and when fewer nodes remain than
/// `n_val + n_test`, a third of them validate and the rest test.
pub fn random_split(labels: &[i64], per_class: usize, n_val: usize, n_test: usize, seed: u64) -> Split {
    let mut ids: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] >= 0).collect();
    ids.shuffle(&mut StdRng::seed_from_u64(seed));
    let mut sizes = std::collections::HashMap::new();
    ids.iter().for_each(|&i| *sizes.entry(labels[i]).or_insert(0usize) += 1);
    let mut taken = std::collections::HashMap::new();
    let (mut train, mut rest) = (Vec::new(), Vec::new());
    for i in ids {
        let c = taken.entry(labels[i]).or_insert(0usize);
        if *c < per_class.min(sizes[&labels[i]].div_ceil(3)) {
            *c += 1;
            train.push(i);
        } else {
            rest.push(i);
        }
    }
    // A graph too small for the requested sizes: a third of the rest for validation.
    let n_val = if n_val + n_test > rest.len() { rest.len() / 3 } else { n_val };
    let val: Vec<usize> = rest.iter().take(n_val).copied().collect();
    let test = rest.iter().skip(n_val).take(n_test).copied().collect();
    Split { train, val, test }
}

/// Where a dataset's files are.
#[derive(Debug, Clone)]
pub struct GraphFiles<'a> {
    pub edges: &'a Path,
    pub features: &'a Path,
    pub labels: &'a Path,
    /// A split folder; `None`: a seeded Planetoid-style split (20 per class, 500 val, 1000 test).
    pub split: Option<&'a Path>,
}

/// Reads a graph from its files; `seed` draws the split when there is no split folder.
pub fn load(name: &str, files: &GraphFiles, seed: u64) -> Result<GraphData, FileError> {
    let edges = read_edges(files.edges)?;
    let (features, n_feat) = read_features(files.features)?;
    let labelled = read_labels(files.labels)?;
    // node ids number the nodes 0…n−1, so n cannot exceed the rows that mention nodes: a
    // larger id is a corrupt file, not a reason to allocate for it
    let rows = 2 * edges.len() + features.rows.len() + labelled.len();
    let highest = [
        (edges.iter().map(|&(a, b)| a.max(b) + 1).max().unwrap_or(0), files.edges),
        (n_feat, files.features),
        (labelled.iter().map(|&(i, _)| i + 1).max().unwrap_or(0), files.labels),
    ];
    if let Some(&(n, path)) = highest.iter().find(|(n, _)| *n > rows) {
        let msg = format!("node id {} in a graph of at most {rows} nodes (ids must number the nodes 0…n−1)", n - 1);
        return Err(FileError::new(path, msg));
    }
    let n = highest.iter().map(|h| h.0).max().unwrap_or(0);
    let mut labels = vec![-1; n];
    labelled.iter().for_each(|&(i, c)| labels[i] = c);
    let split = match files.split {
        Some(dir) => read_split(dir)?,
        None => random_split(&labels, 20, 500, 1000, seed),
    };
    GraphData::new(name, n, &edges, features, labels, split).map_err(|m| FileError::new(files.labels, m))
}

/// The Planetoid CSV layout of `../shared/data/graph/planetoid/{cora,citeseer}` (public split).
pub fn load_planetoid(dir: &Path) -> Result<GraphData, FileError> {
    if !dir.is_dir() {
        return Err(FileError::new(
            dir,
            "not a folder (expected edges.csv, features.csv, labels.csv, {train,val,test}_idx.txt)",
        ));
    }
    let name = dir.file_name().map_or("graph".into(), |s| s.to_string_lossy().to_string());
    let files = GraphFiles {
        edges: &dir.join("edges.csv"),
        features: &dir.join("features.csv"),
        labels: &dir.join("labels.csv"),
        split: Some(dir),
    };
    load(&name, &files, 0)
}
