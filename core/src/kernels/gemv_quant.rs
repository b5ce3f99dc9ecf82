//! Reduced-precision weights for decoding: a matrix stored row by row as bf16 (the top 16 bits
//! of each f32) or as int8 with one f32 scale per block of 32 values along the row (llama.cpp's
//! Q8_0 layout, with an f32 scale), and the two few-row products decoding needs, as
//! [`super::gemv_cpu`] does for f32:
//!
//! * `y = x · W` for W `[K, N]` stored as K rows of N (`y += x_k · W_k`, column blocks in parallel);
//! * `y = x · Wᵀ` for W `[N, K]` stored as N rows of K (one dot product per row, rows in parallel).
//!
//! Values are widened to f32 in registers; accumulation is f32.

use rayon::prelude::*;

/// Values per int8 scale.
pub const BLOCK: usize = 32;
/// Output columns per task of [`QMatrix::x_w`].
const COLS: usize = 512;
/// Rows per task of [`QMatrix::x_wt`].
const ROWS: usize = 256;

/// How a [`QMatrix`] stores its values.
#[derive(Debug, Clone)]
enum Store {
    Bf16(Vec<u16>),
    /// Values and one scale per block of [`BLOCK`] along each row.
    Int8 {
        q: Vec<i8>,
        scales: Vec<f32>,
    },
}

/// A row-major `[rows, cols]` matrix in reduced precision.
#[derive(Debug, Clone)]
pub struct QMatrix {
    pub rows: usize,
    pub cols: usize,
    store: Store,
}

/// bf16 by round-to-nearest-even of the f32 bits.
fn to_bf16(v: f32) -> u16 {
    let b = v.to_bits();
    ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

#[inline(always)]
fn from_bf16(v: u16) -> f32 {
    f32::from_bits(u32::from(v) << 16)
}

impl QMatrix {
    /// `w` `[rows, cols]` rounded to bf16.
    pub fn bf16(w: &[f32], rows: usize, cols: usize) -> Self {
        assert_eq!(w.len(), rows * cols);
        Self { rows, cols, store: Store::Bf16(w.iter().map(|&v| to_bf16(v)).collect()) }
    }

    /// `w` `[rows, cols]` as int8, each block of 32 along a row scaled by its largest |value| / 127.
    pub fn int8(w: &[f32], rows: usize, cols: usize) -> Self {
        assert_eq!(w.len(), rows * cols);
        let per_row = cols.div_ceil(BLOCK);
        let (mut q, mut scales) = (Vec::with_capacity(w.len()), Vec::with_capacity(rows * per_row));
        for row in w.chunks_exact(cols) {
            for block in row.chunks(BLOCK) {
                let max = block.iter().fold(0f32, |m, v| m.max(v.abs()));
                let s = if max > 0.0 { max / 127.0 } else { 1.0 };
                scales.push(s);
                q.extend(block.iter().map(|v| (v / s).round().clamp(-127.0, 127.0) as i8));
            }
        }
        Self { rows, cols, store: Store::Int8 { q, scales } }
    }

    /// Bytes of the stored values and scales.
    pub fn bytes(&self) -> usize {
        match &self.store {
            Store::Bf16(v) => 2 * v.len(),
            Store::Int8 { q, scales } => q.len() + 4 * scales.len(),
        }
    }

    /// `acc[j] += xv · W[r, c0 + j]` for the columns of `acc`.
    #[inline(always)]
    fn axpy(&self, r: usize, c0: usize, xv: f32, acc: &mut [f32]) {
        let (start, len) = (r * self.cols + c0, acc.len());
        match &self.store {
            Store::Bf16(v) => {
                for (a, &w) in acc.iter_mut().zip(&v[start..start + len]) {
                    *a += xv * from_bf16(w);
                }
            }
            Store::Int8 { q, scales } => {
                // c0 is a multiple of BLOCK, so blocks of acc line up with the scales
                let srow = &scales[r * self.cols.div_ceil(BLOCK) + c0 / BLOCK..];
                for ((a, w), &s) in acc.chunks_mut(BLOCK).zip(q[start..start + len].chunks(BLOCK)).zip(srow) {
                    let xs = xv * s;
                    for (a, &w) in a.iter_mut().zip(w) {
                        *a += xs * f32::from(w);
                    }
                }
            }
        }
    }

    /// Σ_c x[c] · W[r, c].
    #[inline(always)]
    fn dot(&self, r: usize, x: &[f32]) -> f32 {
        let start = r * self.cols;
        match &self.store {
            Store::Bf16(v) => {
                let mut lanes = [0f32; 16];
                let row = &v[start..start + self.cols];
                let (mut xc, mut wc) = (x.chunks_exact(16), row.chunks_exact(16));
                for (xs, ws) in (&mut xc).zip(&mut wc) {
                    for j in 0..16 {
                        lanes[j] += xs[j] * from_bf16(ws[j]);
                    }
                }
                let tail: f32 = xc.remainder().iter().zip(wc.remainder()).map(|(a, &w)| a * from_bf16(w)).sum();
                lanes.iter().sum::<f32>() + tail
            }
            Store::Int8 { q, scales } => {
                let srow = &scales[r * self.cols.div_ceil(BLOCK)..];
                let row = &q[start..start + self.cols];
                // one accumulator per lane across the row; each block's scale folded into x
                let mut lanes = [0f32; BLOCK];
                let mut tail = 0f32;
                for ((xs, ws), &s) in x.chunks(BLOCK).zip(row.chunks(BLOCK)).zip(srow) {
                    if xs.len() == BLOCK {
                        for j in 0..BLOCK {
                            lanes[j] += xs[j] * s * f32::from(ws[j]);
                        }
                    } else {
                        tail += xs.iter().zip(ws).map(|(a, &w)| a * s * f32::from(w)).sum::<f32>();
                    }
                }
                lanes.iter().sum::<f32>() + tail
            }
        }
    }

    /// `y [M, cols] = x [M, rows] · W`.
    pub fn x_w(&self, x: &[f32], y: &mut [f32]) {
        let (k, n) = (self.rows, self.cols);
        let m = x.len() / k;
        assert_eq!((x.len(), y.len()), (m * k, m * n), "QMatrix::x_w: shapes");
        let blocks: Vec<Vec<f32>> = (0..n.div_ceil(COLS))
            .into_par_iter()
            .map(|j| {
                let (c0, width) = (j * COLS, COLS.min(n - j * COLS));
                let mut acc = vec![0f32; m * width];
                simd(|| self.block_x_w(x, c0, &mut acc));
                acc
            })
            .collect();
        place_blocks(&blocks, m, COLS, y);
    }

    #[inline(always)]
    fn block_x_w(&self, x: &[f32], c0: usize, acc: &mut [f32]) {
        let k = self.rows;
        let width = acc.len() / (x.len() / k);
        for r in 0..k {
            for (mi, out) in acc.chunks_exact_mut(width).enumerate() {
                self.axpy(r, c0, x[mi * k + r], out);
            }
        }
    }

    /// `y [M, rows] = x [M, cols] · Wᵀ`.
    pub fn x_wt(&self, x: &[f32], y: &mut [f32]) {
        let (n, k) = (self.rows, self.cols);
        let m = x.len() / k;
        assert_eq!((x.len(), y.len()), (m * k, m * n), "QMatrix::x_wt: shapes");
        let blocks: Vec<Vec<f32>> = (0..n.div_ceil(ROWS))
            .into_par_iter()
            .map(|j| {
                let (r0, rows) = (j * ROWS, ROWS.min(n - j * ROWS));
                let mut out = vec![0f32; m * rows];
                simd(|| {
                    for r in 0..rows {
                        for mi in 0..m {
                            out[mi * rows + r] = self.dot(r0 + r, &x[mi * k..(mi + 1) * k]);
                        }
                    }
                });
                out
            })
            .collect();
        place_blocks(&blocks, m, ROWS, y);
    }
}

/// Copies per-task output blocks (each `[M, width]`, task j starting at column j·step) into
/// `y` `[M, N]`.
fn place_blocks(blocks: &[Vec<f32>], m: usize, step: usize, y: &mut [f32]) {
    let n = y.len() / m;
    for (j, block) in blocks.iter().enumerate() {
        let (c0, width) = (j * step, block.len() / m);
        for mi in 0..m {
            y[mi * n + c0..mi * n + c0 + width].copy_from_slice(&block[mi * width..(mi + 1) * width]);
        }
    }
}

/// Runs `f` compiled for AVX-512 or AVX2 when the CPU has them (inlined bodies vectorise wider).
#[inline(always)]
fn simd(f: impl FnOnce()) {
    #[cfg(target_arch = "x86_64")]
    {
        use super::selective_scan_cpu::{Simd, simd_level};
        #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
        fn avx512(f: impl FnOnce()) {
            f()
        }
        #[target_feature(enable = "avx2,fma")]
        fn avx2(f: impl FnOnce()) {
            f()
        }
        match simd_level() {
            // SAFETY: the CPU supports the features `simd_level` reported.
            Simd::Avx512 => return unsafe { avx512(f) },
            Simd::Avx2 => return unsafe { avx2(f) },
            Simd::Base => {}
        }
    }
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(x: &[f32], w: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        (0..m * n).map(|i| (0..k).map(|j| x[(i / n) * k + j] * w[j * n + i % n]).sum()).collect()
    }

    #[test]
    fn products_match_f32_within_the_rounding() {
        let (m, k, n) = (2, 70, 1100); // ragged blocks and column tasks
        let w: Vec<f32> = (0..k * n).map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.1).collect();
        let x: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let exact = naive(&x, &w, m, k, n);
        let scale = exact.iter().fold(0f32, |a, v| a.max(v.abs()));
        for (q, tol) in [(QMatrix::bf16(&w, k, n), 1e-2), (QMatrix::int8(&w, k, n), 2e-2)] {
            let mut y = vec![0f32; m * n];
            q.x_w(&x, &mut y);
            let err = y.iter().zip(&exact).fold(0f32, |a, (p, e)| a.max((p - e).abs()));
            assert!(err <= tol * scale, "x_w: {err} vs scale {scale}");
        }
        // transposed: W [N, K] rows
        let wt: Vec<f32> = (0..n * k).map(|i| w[(i % k) * n + i / k]).collect();
        for q in [QMatrix::bf16(&wt, n, k), QMatrix::int8(&wt, n, k)] {
            let mut y = vec![0f32; m * n];
            q.x_wt(&x, &mut y);
            let err = y.iter().zip(&exact).fold(0f32, |a, (p, e)| a.max((p - e).abs()));
            assert!(err <= 2e-2 * scale, "x_wt: {err} vs scale {scale}");
        }
    }

    #[test]
    fn int8_round_trips_each_block_to_half_a_step() {
        let w: Vec<f32> = (0..96).map(|i| (i as f32 - 40.0) / 13.0).collect();
        let q = QMatrix::int8(&w, 1, 96);
        let mut y = vec![0f32; 96];
        let mut eye = vec![0f32; 96];
        for c in 0..96 {
            eye.iter_mut().for_each(|v| *v = 0.0);
            eye[c] = 1.0;
            q.x_wt(&eye, &mut y[c..c + 1]);
        }
        for (b, (got, want)) in y.chunks(BLOCK).zip(w.chunks(BLOCK)).enumerate() {
            let step = want.iter().fold(0f32, |a, v| a.max(v.abs())) / 127.0;
            for (g, v) in got.iter().zip(want) {
                assert!((g - v).abs() <= 0.5 * step + 1e-6, "block {b}: {g} vs {v}");
            }
        }
        assert_eq!(q.bytes(), 96 + 4 * 3);
    }
}
