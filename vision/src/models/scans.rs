//! Scan orders: the ways a 2-D token grid is read as a 1-D sequence by the vision SSMs.
//!
//! * VMamba's cross-scan: rows, columns, and both reversed.
//! * LocalVMamba's local scans (Huang et al., "LocalMamba: Visual State Space Model with
//!   Windowed Selective Scan", 2024; `local_scan` in hunto/LocalMamba): the grid cut into k×k
//!   windows visited row by row, each window read row by row; and reversed. Edge windows of a
//!   grid that k does not divide are clipped (the reference zero-pads them and drops the pad).
//! * PlainMamba's continuous 2-D scans (Yang et al., "PlainMamba: Improving Non-Hierarchical
//!   Mamba in Visual Recognition", 2024; `get_permute_order` in ChenhongyiYang/PlainMamba):
//!   snakes (boustrophedon) along rows from the top and from the bottom, along columns from the
//!   left and from the right, so consecutive tokens are always neighbours.
//!
//! An order lists the raster position (row · W + column) read at each step. [`gather`] turns a
//! `[B, C, L]` map into K sequences `[B, K, C, L]` with one index select, [`merge`] puts each
//! sequence's outputs back in raster order and sums them.

use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scan {
    /// Row by row (`h` in LocalMamba), and reversed (`h_flip`).
    Rows { flip: bool },
    /// Column by column (`v`, `v_flip`).
    Cols { flip: bool },
    /// k×k windows (`w2`, `w7`, `w7_flip`, …).
    Window { k: usize, flip: bool },
    /// A row snake starting at the top-left corner or, `from_end`, at the bottom row.
    SnakeRows { from_end: bool },
    /// A column snake starting at the left column or, `from_end`, at the right one.
    SnakeCols { from_end: bool },
}

impl Scan {
    /// VMamba's four cross-scan directions.
    pub const CROSS: [Scan; 4] =
        [Scan::Rows { flip: false }, Scan::Cols { flip: false }, Scan::Rows { flip: true }, Scan::Cols { flip: true }];

    /// PlainMamba's four continuous scans.
    pub const SNAKES: [Scan; 4] = [
        Scan::SnakeRows { from_end: false },
        Scan::SnakeRows { from_end: true },
        Scan::SnakeCols { from_end: false },
        Scan::SnakeCols { from_end: true },
    ];

    /// LocalMamba's names: `h`, `h_flip`, `v`, `v_flip`, `w<k>`, `w<k>_flip`.
    pub fn parse(name: &str) -> Option<Scan> {
        let (base, flip) = match name.strip_suffix("_flip") {
            Some(b) => (b, true),
            None => (name, false),
        };
        match base {
            "h" => Some(Scan::Rows { flip }),
            "v" => Some(Scan::Cols { flip }),
            _ => base.strip_prefix('w')?.parse().ok().filter(|&k| k > 0).map(|k| Scan::Window { k, flip }),
        }
    }

    /// The raster positions read at each step on an `h × w` grid (a permutation of 0 … hw−1).
    pub fn order(self, h: usize, w: usize) -> Vec<usize> {
        let flipped = |mut v: Vec<usize>, flip: bool| {
            if flip {
                v.reverse();
            }
            v
        };
        match self {
            Scan::Rows { flip } => flipped((0..h * w).collect(), flip),
            Scan::Cols { flip } => flipped((0..w).flat_map(|j| (0..h).map(move |i| i * w + j)).collect(), flip),
            Scan::Window { k, flip } => {
                let mut v = Vec::with_capacity(h * w);
                for (gi, gj) in (0..h.div_ceil(k)).flat_map(|gi| (0..w.div_ceil(k)).map(move |gj| (gi, gj))) {
                    for i in gi * k..((gi + 1) * k).min(h) {
                        v.extend((gj * k..((gj + 1) * k).min(w)).map(|j| i * w + j));
                    }
                }
                flipped(v, flip)
            }
            Scan::SnakeRows { from_end } => {
                let rows: Vec<usize> = if from_end { (0..h).rev().collect() } else { (0..h).collect() };
                // Starting from the bottom, the snake ends where a top-down one would start, as
                // in the reference (which starts at the bottom-right corner for odd heights).
                let start_right = from_end && h % 2 == 1;
                rows.iter()
                    .enumerate()
                    .flat_map(|(n, &i)| {
                        let right_to_left = (n % 2 == 1) != start_right;
                        let cols: Vec<usize> = if right_to_left { (0..w).rev().collect() } else { (0..w).collect() };
                        cols.into_iter().map(move |j| i * w + j)
                    })
                    .collect()
            }
            Scan::SnakeCols { from_end } => {
                // The row snake of the transposed grid, mapped back.
                let t = Scan::SnakeRows { from_end }.order(w, h);
                t.into_iter().map(|p| (p % h) * w + p / h).collect()
            }
        }
    }
}

/// PlainMamba's move codes along an order: 0 start, 1 right, 2 left, 3 up, 4 down (the code of
/// the step that reached each token; a jump that is not to a neighbour counts as a start).
pub fn moves(order: &[usize], w: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(order.len());
    out.push(0);
    for p in order.windows(2) {
        let (a, b) = (p[0], p[1]);
        out.push(match () {
            _ if b == a + 1 && b % w != 0 => 1,
            _ if b + 1 == a && a % w != 0 => 2,
            _ if b + w == a => 3,
            _ if b == a + w => 4,
            _ => 0,
        });
    }
    out
}

/// An index tensor of `values`.
pub fn index(values: Vec<usize>, device: &burn::tensor::Device) -> Tensor<1, Int> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values.into_iter().map(|v| v as i64).collect::<Vec<_>>(), [n]), device)
}

/// `x` `[B, C, L]` read in each of `orders` → `[B, K, C, L]`.
pub fn gather(x: Tensor<3>, orders: &[Vec<usize>]) -> Tensor<4> {
    let [b, c, l] = x.dims();
    let k = orders.len();
    let idx = index(orders.concat(), &x.device());
    x.select(2, idx).reshape([b, c, k, l]).swap_dims(1, 2)
}

/// The inverse of [`gather`] summed over the K orders: `[B, K, C, L]` → `[B, C, L]`.
pub fn merge(y: Tensor<4>, orders: &[Vec<usize>]) -> Tensor<3> {
    let [b, k, c, l] = y.dims();
    let mut inverse = vec![0; k * l];
    for (s, order) in orders.iter().enumerate() {
        for (t, &p) in order.iter().enumerate() {
            inverse[s * l + p] = s * l + t;
        }
    }
    let idx = index(inverse, &y.device());
    y.swap_dims(1, 2).reshape([b, c, k * l]).select(2, idx).reshape([b, c, k, l]).sum_dim(2).reshape([b, c, l])
}
