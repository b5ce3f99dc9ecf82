//! Few-row matrix products for recurrent decoding (`M` ≤ a handful of sequences): each weight
//! is streamed from memory once, in contiguous runs, by all cores. At batch 1 a decode step is
//! a chain of matrix–vector products whose cost is reading the weights, so the loop order is
//! chosen for the memory system, not for FLOPs.
//!
//! * `y = x · W`,  W `[K, N]` (burn's `Linear` layout): rows of W are read in column blocks
//!   and accumulated into `M` output rows (`y += x_k · W_k`);
//! * `y = x · Wᵀ`, W `[N, K]` (an embedding used as the LM head): one dot product per row of W.

use super::real::Real;
use super::selective_scan_cpu::{Simd, hsum, simd_level};
use rayon::prelude::*;

/// Output columns per task of [`x_w`] (the accumulators stay in L1).
const COLS: usize = 512;
/// Rows of W per task of [`x_wt`].
const ROWS: usize = 256;

#[inline(always)]
fn block_x_w<T: Real, const W: usize>(x: &[T], w: &[T], k: usize, n: usize, c0: usize, acc: &mut [T]) {
    let width = acc.len() / (x.len() / k);
    for kk in 0..k {
        let row = &w[kk * n + c0..kk * n + c0 + width];
        for (mi, out) in acc.chunks_exact_mut(width).enumerate() {
            let xv = x[mi * k + kk];
            let mut oc = out.chunks_exact_mut(W);
            let mut rc = row.chunks_exact(W);
            for (o, r) in (&mut oc).zip(&mut rc) {
                for j in 0..W {
                    o[j] += xv * r[j];
                }
            }
            for (o, &r) in oc.into_remainder().iter_mut().zip(rc.remainder()) {
                *o += xv * r;
            }
        }
    }
}

#[inline(always)]
fn dot<T: Real, const W: usize>(a: &[T], b: &[T]) -> T {
    let mut lanes = [T::ZERO; W];
    let mut ac = a.chunks_exact(W);
    let mut bc = b.chunks_exact(W);
    for (x, y) in (&mut ac).zip(&mut bc) {
        for j in 0..W {
            lanes[j] += x[j] * y[j];
        }
    }
    let mut s = T::ZERO;
    for (&x, &y) in ac.remainder().iter().zip(bc.remainder()) {
        s += x * y;
    }
    hsum(lanes) + s
}

#[inline(always)]
fn block_x_wt<T: Real, const W: usize>(x: &[T], w: &[T], k: usize, r0: usize, out: &mut [T]) {
    let m = x.len() / k;
    let rows = out.len() / m;
    for r in 0..rows {
        let wr = &w[(r0 + r) * k..(r0 + r + 1) * k];
        for mi in 0..m {
            out[mi * rows + r] = dot::<T, W>(&x[mi * k..(mi + 1) * k], wr);
        }
    }
}

simd_variant!(block_x_w_avx2, "avx2,fma", block_x_w, 16, (x: &[T], w: &[T], k: usize, n: usize, c0: usize, acc: &mut [T]), ());
simd_variant!(block_x_w_avx512, "avx512f,avx2,fma", block_x_w, 32, (x: &[T], w: &[T], k: usize, n: usize, c0: usize, acc: &mut [T]), ());
simd_variant!(block_x_wt_avx2, "avx2,fma", block_x_wt, 16, (x: &[T], w: &[T], k: usize, r0: usize, out: &mut [T]), ());
simd_variant!(block_x_wt_avx512, "avx512f,avx2,fma", block_x_wt, 32, (x: &[T], w: &[T], k: usize, r0: usize, out: &mut [T]), ());

/// `y [M, N]` from per-task blocks of `step` output columns, each block `[M, width]`.
fn join_columns<T: Real>(blocks: &[Vec<T>], m: usize, n: usize, step: usize) -> Vec<T> {
    let mut y = vec![T::ZERO; m * n];
    for (j, block) in blocks.iter().enumerate() {
        let (c0, width) = (j * step, block.len() / m);
        for mi in 0..m {
            y[mi * n + c0..mi * n + c0 + width].copy_from_slice(&block[mi * width..(mi + 1) * width]);
        }
    }
    y
}

/// `y [M, N] = x [M, K] · w [K, N]` (all row-major).
pub fn x_w<T: Real>(x: &[T], w: &[T], m: usize, k: usize, n: usize) -> Vec<T> {
    assert_eq!(x.len(), m * k, "x_w: x has {} values, expected {m}×{k}", x.len());
    assert_eq!(w.len(), k * n, "x_w: w has {} values, expected {k}×{n}", w.len());
    let simd = simd_level();
    let blocks: Vec<Vec<T>> = (0..n.div_ceil(COLS))
        .into_par_iter()
        .map(|j| {
            let c0 = j * COLS;
            let width = COLS.min(n - c0);
            let mut acc = vec![T::ZERO; m * width];
            match simd {
                // SAFETY: the CPU supports the features `simd_level` reported.
                #[cfg(target_arch = "x86_64")]
                Simd::Avx512 => unsafe { block_x_w_avx512(x, w, k, n, c0, &mut acc) },
                #[cfg(target_arch = "x86_64")]
                Simd::Avx2 => unsafe { block_x_w_avx2(x, w, k, n, c0, &mut acc) },
                _ => block_x_w::<T, 8>(x, w, k, n, c0, &mut acc),
            }
            acc
        })
        .collect();
    join_columns(&blocks, m, n, COLS)
}

/// `y [M, N] = x [M, K] · wᵀ` for `w [N, K]` (all row-major).
pub fn x_wt<T: Real>(x: &[T], w: &[T], m: usize, k: usize, n: usize) -> Vec<T> {
    assert_eq!(x.len(), m * k, "x_wt: x has {} values, expected {m}×{k}", x.len());
    assert_eq!(w.len(), n * k, "x_wt: w has {} values, expected {n}×{k}", w.len());
    let simd = simd_level();
    let blocks: Vec<Vec<T>> = (0..n.div_ceil(ROWS))
        .into_par_iter()
        .map(|j| {
            let r0 = j * ROWS;
            let mut out = vec![T::ZERO; m * ROWS.min(n - r0)];
            match simd {
                // SAFETY: the CPU supports the features `simd_level` reported.
                #[cfg(target_arch = "x86_64")]
                Simd::Avx512 => unsafe { block_x_wt_avx512(x, w, k, r0, &mut out) },
                #[cfg(target_arch = "x86_64")]
                Simd::Avx2 => unsafe { block_x_wt_avx2(x, w, k, r0, &mut out) },
                _ => block_x_wt::<T, 8>(x, w, k, r0, &mut out),
            }
            out
        })
        .collect();
    join_columns(&blocks, m, n, ROWS)
}
