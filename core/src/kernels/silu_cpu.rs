//! `silu(x + b_c)` over the rows of a `[B, C, L]` tensor: the activation after Mamba's causal
//! convolution (bias add, sigmoid and product in one pass; as separate tensor ops they were
//! three passes forward and more backward, with a scalar `exp`):
//!
//! ```text
//! v = x + b_c        y = v · σ(v)        ∂y/∂v = σ(v) · (1 + v · (1 − σ(v)))
//! ∂L/∂x = ∂L/∂y · ∂y/∂v        ∂L/∂b_c = Σ_{batch, t} ∂L/∂x
//! ```

use super::real::Real;
use super::with_simd;
use rayon::prelude::*;

/// Rows per rayon task: a row is one (batch, channel) pair of `len` values.
fn min_rows(len: usize) -> usize {
    (4096 / len.max(1)).max(1)
}

#[inline(always)]
fn row_forward<T: Real>(x: &[T], b: T, y: &mut [T]) {
    for (o, &xv) in y.iter_mut().zip(x) {
        *o = (xv + b).silu();
    }
}

/// Writes ∂L/∂x of one row into `dx` and returns its sum (the row's share of ∂L/∂b).
#[inline(always)]
fn row_backward<T: Real>(x: &[T], b: T, dy: &[T], dx: &mut [T]) -> T {
    for ((d, &xv), &g) in dx.iter_mut().zip(x).zip(dy) {
        let v = xv + b;
        let s = v.sigmoid();
        *d = g * s * (T::ONE + v * (T::ONE - s));
    }
    // Sixteen partial sums: a single running sum would be one serial chain of adds.
    let mut acc = [T::ZERO; 16];
    for chunk in dx.chunks(16) {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a += v;
        }
    }
    acc.iter().fold(T::ZERO, |s, &v| s + v)
}

/// `y = silu(x + bias[c])` for `x` `[rows, len]` with row r in channel `r mod C`.
pub fn forward<T: Real>(x: &[T], bias: &[T], len: usize) -> Vec<T> {
    let c = bias.len().max(1);
    let mut y = vec![T::ZERO; x.len()];
    y.par_chunks_mut(len.max(1)).zip(x.par_chunks(len.max(1))).with_min_len(min_rows(len)).enumerate().for_each(
        |(row, (yr, xr))| {
            let b = bias.get(row % c).copied().unwrap_or(T::ZERO);
            with_simd(
                #[inline(always)]
                || row_forward(xr, b, yr),
            )
        },
    );
    y
}

/// `(∂L/∂x, ∂L/∂bias)` of [`forward`] given `dy`.
pub fn backward<T: Real>(x: &[T], bias: &[T], dy: &[T], len: usize) -> (Vec<T>, Vec<T>) {
    let c = bias.len().max(1);
    let mut dx = vec![T::ZERO; x.len()];
    let l = len.max(1);
    let sums: Vec<T> = dx
        .par_chunks_mut(l)
        .zip(x.par_chunks(l))
        .zip(dy.par_chunks(l))
        .with_min_len(min_rows(len))
        .enumerate()
        .map(|(row, ((dr, xr), gr))| {
            let b = bias.get(row % c).copied().unwrap_or(T::ZERO);
            with_simd(
                #[inline(always)]
                || row_backward(xr, b, gr, dr),
            )
        })
        .collect();
    let mut db = vec![T::ZERO; bias.len()];
    for (row, s) in sums.into_iter().enumerate() {
        if let Some(d) = db.get_mut(row % c) {
            *d += s;
        }
    }
    (dx, db)
}
