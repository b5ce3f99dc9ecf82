//! Sparse message passing: an edge list with weights, multiplied into node features by gather
//! and scatter-add (`out[dst] += w · h[src]`), so memory is O(E·F), never O(N²).

use crate::data::{GraphData, SparseFeatures};
use burn::nn::{Dropout, Linear};
use burn::tensor::{Device, IndexingUpdateOp, Int, Tensor, TensorData};

/// A weighted directed edge list (both directions of every undirected edge, plus self-loops).
#[derive(Debug, Clone)]
pub struct EdgeList {
    pub n: usize,
    pub src: Vec<i64>,
    pub dst: Vec<i64>,
    pub weight: Vec<f32>,
}

impl EdgeList {
    /// Both directions of each edge and one self-loop per node, all of weight 1.
    pub fn with_self_loops(g: &GraphData) -> Self {
        let n = g.n_nodes();
        let edges = g.edges();
        let mut e = EdgeList { n, src: Vec::with_capacity(2 * edges.len() + n), dst: Vec::new(), weight: Vec::new() };
        e.dst.reserve(2 * edges.len() + n);
        for (a, b) in edges {
            e.src.extend([a as i64, b as i64]);
            e.dst.extend([b as i64, a as i64]);
        }
        e.src.extend(0..n as i64);
        e.dst.extend(0..n as i64);
        e.weight = vec![1.0; e.src.len()];
        e
    }

    /// Kipf & Welling's renormalised adjacency `Â = D̃^{-1/2} (A + I) D̃^{-1/2}` from this list
    /// of both directions plus self-loops ([`EdgeList::with_self_loops`]).
    pub fn gcn_normalised(&self) -> Self {
        let mut deg = vec![0f32; self.n];
        self.dst.iter().for_each(|&d| deg[d as usize] += 1.0);
        let weight =
            self.src.iter().zip(&self.dst).map(|(&s, &d)| 1.0 / (deg[s as usize] * deg[d as usize]).sqrt()).collect();
        EdgeList { weight, ..self.clone() }
    }

    pub fn len(&self) -> usize {
        self.src.len()
    }

    pub fn is_empty(&self) -> bool {
        self.src.is_empty()
    }

    pub fn to_device(&self, device: &Device) -> EdgeTensors {
        let e = self.len();
        let int = |v: &[i64]| Tensor::<1, Int>::from_data(TensorData::new(v.to_vec(), [e]), device);
        EdgeTensors {
            n: self.n,
            src: int(&self.src),
            dst: int(&self.dst),
            weight: Tensor::from_data(TensorData::new(self.weight.clone(), [e, 1]), device),
            dst_host: self.dst.clone(),
        }
    }
}

/// An [`EdgeList`] on a device.
#[derive(Debug, Clone)]
pub struct EdgeTensors {
    pub n: usize,
    pub src: Tensor<1, Int>,
    pub dst: Tensor<1, Int>,
    /// `[E, 1]`.
    pub weight: Tensor<2>,
    /// The destinations on the host (segment maxima for edge softmax).
    pub dst_host: Vec<i64>,
}

impl EdgeTensors {
    /// `A h`: `out[dst] += w · h[src]` for `h` `[N, F]`.
    pub fn spmm(&self, h: Tensor<2>) -> Tensor<2> {
        self.propagate(h, self.weight.clone())
    }

    /// `out[dst] += w_e ⊙ h[src]` with per-edge weights `w` `[E, F]` or `[E, 1]`.
    pub fn propagate(&self, h: Tensor<2>, w: Tensor<2>) -> Tensor<2> {
        self.sum_into(h.select(0, self.src.clone()) * w)
    }

    /// Per-edge values `[E, F]` summed into their destination nodes, `[N, F]`.
    pub fn sum_into(&self, values: Tensor<2>) -> Tensor<2> {
        let f = values.dims()[1];
        Tensor::zeros([self.n, f], &values.device()).select_assign(0, self.dst.clone(), values, IndexingUpdateOp::Add)
    }

    /// Softmax of edge scores `s` `[E, H]` over the edges entering each node (GAT's
    /// normalisation). Shifted by each node's maximum (computed on the host, outside the graph,
    /// so gradients are exact).
    pub fn edge_softmax(&self, s: Tensor<2>) -> Tensor<2> {
        let [e, h] = s.dims();
        let device = s.device();
        let host = s.clone().into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_default();
        let mut max = vec![f32::NEG_INFINITY; self.n * h];
        for (i, &d) in self.dst_host.iter().enumerate() {
            for k in 0..h {
                let m = &mut max[d as usize * h + k];
                *m = m.max(host[i * h + k]);
            }
        }
        let shift: Vec<f32> =
            self.dst_host.iter().flat_map(|&d| max[d as usize * h..(d as usize + 1) * h].to_vec()).collect();
        let ex = (s - Tensor::from_data(TensorData::new(shift, [e, h]), &device)).exp();
        let denom =
            Tensor::zeros([self.n, h], &device).select_assign(0, self.dst.clone(), ex.clone(), IndexingUpdateOp::Add);
        ex / denom.select(0, self.dst.clone())
    }
}

/// Sparse node features `X` on a device (COO), for first layers computed as `X W` without
/// materialising the dense `N × F` matrix; dropout acts on the stored non-zeros (Kipf's
/// sparse dropout: the zeros stay zero either way).
#[derive(Debug, Clone)]
pub struct FeatureTensors {
    pub n: usize,
    pub dim: usize,
    rows: Tensor<1, Int>,
    cols: Tensor<1, Int>,
    /// `[nnz, 1]`.
    vals: Tensor<2>,
}

impl FeatureTensors {
    /// `features` of `n` nodes, each row divided by its sum when `row_normalise`.
    pub fn new(f: &SparseFeatures, n: usize, row_normalise: bool, device: &Device) -> Self {
        let mut sums = vec![0f32; n];
        f.rows.iter().zip(&f.vals).for_each(|(&r, &v)| sums[r as usize] += v);
        let vals: Vec<f32> = f
            .rows
            .iter()
            .zip(&f.vals)
            .map(|(&r, &v)| if row_normalise && sums[r as usize] != 0.0 { v / sums[r as usize] } else { v })
            .collect();
        let nnz = vals.len();
        let int = |v: &[u32]| {
            Tensor::<1, Int>::from_data(TensorData::new(v.iter().map(|&x| x as i64).collect::<Vec<_>>(), [nnz]), device)
        };
        FeatureTensors {
            n,
            dim: f.dim,
            rows: int(&f.rows),
            cols: int(&f.cols),
            vals: Tensor::from_data(TensorData::new(vals, [nnz, 1]), device),
        }
    }

    /// `dropout(X) W + b` `[N, out]` for `layer` `F → out`.
    pub fn linear(&self, layer: &Linear, dropout: &Dropout) -> Tensor<2> {
        let w = layer.weight.val();
        let out = w.dims()[1];
        let msgs = w.select(0, self.cols.clone()) * dropout.forward(self.vals.clone());
        let y = Tensor::zeros([self.n, out], &msgs.device()).select_assign(
            0,
            self.rows.clone(),
            msgs,
            IndexingUpdateOp::Add,
        );
        match &layer.bias {
            Some(b) => y + b.val().unsqueeze_dim(0),
            None => y,
        }
    }

    pub fn device(&self) -> Device {
        self.vals.device()
    }
}
