//! Sparse message passing: an edge list with weights, multiplied into node features by gather
//! and scatter-add (`out[dst] += w · h[src]`), so memory is O(E·F), never O(N²).

use crate::data::GraphData;
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

    /// Kipf & Welling's renormalised adjacency `Â = D̃^{-1/2} (A + I) D̃^{-1/2}`.
    pub fn gcn_normalised(g: &GraphData) -> Self {
        let mut e = Self::with_self_loops(g);
        let mut deg = vec![0f32; e.n];
        e.dst.iter().for_each(|&d| deg[d as usize] += 1.0);
        for ((w, &s), &d) in e.weight.iter_mut().zip(&e.src).zip(&e.dst) {
            *w = 1.0 / (deg[s as usize] * deg[d as usize]).sqrt();
        }
        e
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
        let f = h.dims()[1];
        let msgs = h.clone().select(0, self.src.clone()) * w;
        Tensor::zeros([self.n, f], &h.device()).select_assign(0, self.dst.clone(), msgs, IndexingUpdateOp::Add)
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
