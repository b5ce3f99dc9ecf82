//! Few-row matrix products for recurrent decoding (`M` ≤ a handful of sequences): each weight
//! is streamed from memory once, front to back, by all cores. At batch 1 a decode step is a
//! chain of matrix–vector products whose cost is reading the weights, so the loop order is
//! chosen for the memory system, not for FLOPs: every task reads one contiguous run of rows.
//!
//! * `y = x · W`,  W `[K, N]` (burn's `Linear` layout): the K rows are split into one
//!   contiguous range per thread, each accumulating `y += Σ_k x_k · W_k` four rows per pass
//!   into its own `[M, N]` partial (L1/L2 resident), and the partials are summed;
//! * `y = x · Wᵀ`, W `[N, K]` (an embedding used as the LM head): one dot product per row of W,
//!   blocks of rows in parallel, written straight into `y`.
//!
//! The storage of W is a [`Rows`]: f32 / f64 here ([`Dense`]), bf16 and int8 in
//! [`super::gemv_quant`]. Each product is compiled three times (AVX-512, AVX2+FMA, baseline) and
//! chosen at run time; the row operations are `#[inline(always)]` so they are compiled with the
//! caller's vector width.

use super::real::Real;
use super::selective_scan_cpu::{Simd, hsum, simd_level};
use rayon::prelude::*;
use std::ops::Range;

/// Rows of W per task of [`x_wt_into`].
const ROWS: usize = 256;
/// Weights below which a product runs in the calling thread (waking the pool costs more).
const PARALLEL_WEIGHTS: usize = 1 << 18;

/// The lane width `W` of the products compiled for AVX-512: a [`Rows`] method called with it
/// runs in a function compiled with AVX-512 enabled, on a CPU that has it, so it may call
/// AVX-512 code.
pub const AVX512_LANES: usize = 32;

/// A row-major `[rows, cols]` matrix as the products read it. `W`: the vector width in lanes
/// the caller was compiled for ([`AVX512_LANES`] for AVX-512, 16 for AVX2, 8 otherwise).
pub trait Rows<T: Real>: Sync {
    /// `(rows, cols)`.
    fn shape(&self) -> (usize, usize);
    /// `acc[c] += xv · W[r, c]` for every column (`acc.len() == cols`).
    fn axpy<const W: usize>(&self, r: usize, xv: T, acc: &mut [T]);
    /// `acc[c] += Σ_j xs[j] · W[r + j, c]` over four consecutive rows.
    #[inline(always)]
    fn axpy4<const W: usize>(&self, r: usize, xs: [T; 4], acc: &mut [T]) {
        for (j, xv) in xs.into_iter().enumerate() {
            self.axpy::<W>(r + j, xv, acc);
        }
    }
    /// `Σ_c x[c] · W[r, c]` (`x.len() == cols`).
    fn dot<const W: usize>(&self, r: usize, x: &[T]) -> T;
}

/// A row-major matrix of plain values.
#[derive(Debug, Clone, Copy)]
pub struct Dense<'a, T> {
    pub values: &'a [T],
    pub rows: usize,
    pub cols: usize,
}

impl<T: Real> Rows<T> for Dense<'_, T> {
    fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    #[inline(always)]
    fn axpy<const W: usize>(&self, r: usize, xv: T, acc: &mut [T]) {
        // no reduction: a flat loop, which the loop vectoriser widens and unrolls itself
        let row = &self.values[r * self.cols..(r + 1) * self.cols];
        for (o, &w) in acc.iter_mut().zip(row) {
            *o += xv * w;
        }
    }

    /// One pass over `acc` for four rows: a quarter of the accumulator loads and stores.
    #[inline(always)]
    fn axpy4<const W: usize>(&self, r: usize, xs: [T; 4], acc: &mut [T]) {
        let c = self.cols;
        let (w0, rest) = self.values[r * c..(r + 4) * c].split_at(c);
        let (w1, rest) = rest.split_at(c);
        let (w2, w3) = rest.split_at(c);
        #[cfg(target_arch = "x86_64")]
        if W == AVX512_LANES && std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() {
            let (xs, ws) = (xs.map(|v| v.to_f64() as f32), [w0, w1, w2, w3].map(bytemuck::cast_slice::<T, f32>));
            // SAFETY: W is AVX512_LANES only where the CPU has AVX-512 (see `Rows`).
            return unsafe { super::gemv_avx512::axpy4_f32(xs, ws, bytemuck::cast_slice_mut(acc)) };
        }
        let [x0, x1, x2, x3] = xs;
        for ((((o, &a), &b), &d), &e) in acc.iter_mut().zip(w0).zip(w1).zip(w2).zip(w3) {
            *o += (x0 * a + x1 * b) + (x2 * d + x3 * e);
        }
    }

    #[inline(always)]
    fn dot<const W: usize>(&self, r: usize, x: &[T]) -> T {
        let row = &self.values[r * self.cols..(r + 1) * self.cols];
        #[cfg(target_arch = "x86_64")]
        if W == AVX512_LANES && std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() {
            let (x32, w32) = (bytemuck::cast_slice::<T, f32>(x), bytemuck::cast_slice::<T, f32>(row));
            // SAFETY: W is AVX512_LANES only where the CPU has AVX-512 (see `Rows`).
            return T::from_f64(f64::from(unsafe { super::gemv_avx512::dot_f32(x32, w32) }));
        }
        dot_lanes::<T, W>(x, row)
    }
}

/// `Σ a[i] · b[i]` over `min(len)` values, in `W` partial sums (so it vectorises: a single
/// running sum is a serial chain the compiler may not reorder).
#[inline(always)]
pub fn dot_lanes<T: Real, const W: usize>(a: &[T], b: &[T]) -> T {
    let mut lanes = [T::ZERO; W];
    let (ac, ar) = a.as_chunks::<W>();
    let (bc, br) = b.as_chunks::<W>();
    for (x, y) in ac.iter().zip(bc) {
        for j in 0..W {
            lanes[j] += x[j] * y[j];
        }
    }
    let mut s = T::ZERO;
    for (&x, &y) in ar.iter().zip(br) {
        s += x * y;
    }
    hsum(lanes) + s
}

/// `acc [M, N] += x [M, K] · W[rows]` over the given rows of W `[K, N]`.
#[inline(always)]
fn axpy_rows<T: Real, R: Rows<T>, const W: usize>(w: &R, x: &[T], rows: Range<usize>, acc: &mut [T]) {
    let (k, n) = w.shape();
    let quads = rows.start..rows.start + rows.len() / 4 * 4;
    for r in quads.clone().step_by(4) {
        for (xm, out) in x.chunks_exact(k).zip(acc.chunks_exact_mut(n)) {
            w.axpy4::<W>(r, [xm[r], xm[r + 1], xm[r + 2], xm[r + 3]], out);
        }
    }
    for r in quads.end..rows.end {
        for (xm, out) in x.chunks_exact(k).zip(acc.chunks_exact_mut(n)) {
            w.axpy::<W>(r, xm[r], out);
        }
    }
}

/// `out [M, rows] = x [M, K] · W[r0..r0 + rows]ᵀ` for W `[N, K]`.
#[inline(always)]
fn dot_rows<T: Real, R: Rows<T>, const W: usize>(w: &R, x: &[T], r0: usize, out: &mut [T]) {
    let k = w.shape().1;
    let m = x.len() / k;
    let rows = out.len() / m;
    for r in 0..rows {
        for mi in 0..m {
            out[mi * rows + r] = w.dot::<W>(r0 + r, &x[mi * k..(mi + 1) * k]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
fn axpy_rows_avx512<T: Real, R: Rows<T>>(w: &R, x: &[T], rows: Range<usize>, acc: &mut [T]) {
    axpy_rows::<T, R, AVX512_LANES>(w, x, rows, acc)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn axpy_rows_avx2<T: Real, R: Rows<T>>(w: &R, x: &[T], rows: Range<usize>, acc: &mut [T]) {
    axpy_rows::<T, R, 16>(w, x, rows, acc)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
fn dot_rows_avx512<T: Real, R: Rows<T>>(w: &R, x: &[T], r0: usize, out: &mut [T]) {
    dot_rows::<T, R, AVX512_LANES>(w, x, r0, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_rows_avx2<T: Real, R: Rows<T>>(w: &R, x: &[T], r0: usize, out: &mut [T]) {
    dot_rows::<T, R, 16>(w, x, r0, out)
}

/// [`axpy_rows`] at the CPU's vector width.
fn axpy_simd<T: Real, R: Rows<T>>(simd: Simd, w: &R, x: &[T], rows: Range<usize>, acc: &mut [T]) {
    match simd {
        // SAFETY: the CPU supports the features `simd_level` reported.
        #[cfg(target_arch = "x86_64")]
        Simd::Avx512 => unsafe { axpy_rows_avx512(w, x, rows, acc) },
        #[cfg(target_arch = "x86_64")]
        Simd::Avx2 => unsafe { axpy_rows_avx2(w, x, rows, acc) },
        _ => axpy_rows::<T, R, 8>(w, x, rows, acc),
    }
}

/// [`dot_rows`] at the CPU's vector width.
fn dot_simd<T: Real, R: Rows<T>>(simd: Simd, w: &R, x: &[T], r0: usize, out: &mut [T]) {
    match simd {
        // SAFETY: the CPU supports the features `simd_level` reported.
        #[cfg(target_arch = "x86_64")]
        Simd::Avx512 => unsafe { dot_rows_avx512(w, x, r0, out) },
        #[cfg(target_arch = "x86_64")]
        Simd::Avx2 => unsafe { dot_rows_avx2(w, x, r0, out) },
        _ => dot_rows::<T, R, 8>(w, x, r0, out),
    }
}

/// Asks the kernel to back the whole 2 MiB pages inside `w` with transparent huge pages, now
/// (`MADV_HUGEPAGE`, then `MADV_COLLAPSE`): a decode step reads every weight once, and in
/// 4 KiB pages that read also walks the page tables. Called on the weights a decoder keeps;
/// best effort — where the kernel declines (THP off, an older kernel), nothing changes.
pub fn advise_huge_pages<T>(w: &[T]) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = w.as_ptr() as usize;
        let (a, b) = (start.next_multiple_of(HUGE), (start + std::mem::size_of_val(w)) / HUGE * HUGE);
        if a < b {
            // SAFETY: [a, b) lies inside `w`'s allocation; the advice changes how its pages are
            // backed, never their contents, and the return values are deliberately ignored.
            unsafe {
                libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_HUGEPAGE);
                libc::madvise(a as *mut libc::c_void, b - a, 25); // MADV_COLLAPSE (Linux 6.1)
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = w;
}

/// `y [M, N] = x [M, K] · W` for W `[K, N]` (all row-major).
pub fn x_w_into<T: Real, R: Rows<T>>(w: &R, x: &[T], y: &mut [T]) {
    let (k, n) = w.shape();
    let m = x.len() / k.max(1);
    assert_eq!((x.len(), y.len()), (m * k, m * n), "x_w: x {}, y {} for W {k}×{n}", x.len(), y.len());
    let simd = simd_level();
    let tasks = if k * n < PARALLEL_WEIGHTS { 1 } else { rayon::current_num_threads().clamp(1, k) };
    y.fill(T::ZERO);
    if tasks == 1 {
        return axpy_simd(simd, w, x, 0..k, y);
    }
    let per = k.div_ceil(tasks);
    // the first range accumulates straight into y while the pool works on the others
    let ((), partials) = rayon::join(
        || axpy_simd(simd, w, x, 0..per.min(k), y),
        || {
            (1..tasks)
                .into_par_iter()
                .map(|t| {
                    let mut acc = vec![T::ZERO; m * n];
                    axpy_simd(simd, w, x, (t * per).min(k)..((t + 1) * per).min(k), &mut acc);
                    acc
                })
                .collect::<Vec<_>>()
        },
    );
    for p in &partials {
        y.iter_mut().zip(p).for_each(|(a, &b)| *a += b);
    }
}

/// `y [M, N] = x [M, K] · Wᵀ` for W `[N, K]` (all row-major).
pub fn x_wt_into<T: Real, R: Rows<T>>(w: &R, x: &[T], y: &mut [T]) {
    let (n, k) = w.shape();
    let m = x.len() / k.max(1);
    assert_eq!((x.len(), y.len()), (m * k, m * n), "x_wt: x {}, y {} for W {n}×{k}", x.len(), y.len());
    let simd = simd_level();
    if n * k < PARALLEL_WEIGHTS {
        return dot_simd(simd, w, x, 0, y);
    }
    if m == 1 {
        return y.par_chunks_mut(ROWS).enumerate().for_each(|(j, out)| dot_simd(simd, w, x, j * ROWS, out));
    }
    let blocks: Vec<Vec<T>> = (0..n.div_ceil(ROWS))
        .into_par_iter()
        .map(|j| {
            let mut out = vec![T::ZERO; m * ROWS.min(n - j * ROWS)];
            dot_simd(simd, w, x, j * ROWS, &mut out);
            out
        })
        .collect();
    for (j, block) in blocks.iter().enumerate() {
        let (c0, width) = (j * ROWS, block.len() / m);
        for mi in 0..m {
            y[mi * n + c0..mi * n + c0 + width].copy_from_slice(&block[mi * width..(mi + 1) * width]);
        }
    }
}

/// `y [M, N] = x [M, K] · w [K, N]` (all row-major).
pub fn x_w<T: Real>(x: &[T], w: &[T], m: usize, k: usize, n: usize) -> Vec<T> {
    assert_eq!(x.len(), m * k, "x_w: x has {} values, expected {m}×{k}", x.len());
    assert_eq!(w.len(), k * n, "x_w: w has {} values, expected {k}×{n}", w.len());
    let mut y = vec![T::ZERO; m * n];
    x_w_into(&Dense { values: w, rows: k, cols: n }, x, &mut y);
    y
}

/// `y [M, N] = x [M, K] · wᵀ` for `w [N, K]` (all row-major).
pub fn x_wt<T: Real>(x: &[T], w: &[T], m: usize, k: usize, n: usize) -> Vec<T> {
    assert_eq!(x.len(), m * k, "x_wt: x has {} values, expected {m}×{k}", x.len());
    assert_eq!(w.len(), n * k, "x_wt: w has {} values, expected {n}×{k}", w.len());
    let mut y = vec![T::ZERO; m * n];
    x_wt_into(&Dense { values: w, rows: n, cols: k }, x, &mut y);
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(x: &[f64], w: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        (0..m * n).map(|i| (0..k).map(|j| x[(i / n) * k + j] * w[j * n + i % n]).sum()).collect()
    }

    fn max_err(a: &[f32], b: &[f64]) -> f64 {
        a.iter().zip(b).fold(0.0, |e, (&p, &q)| e.max((f64::from(p) - q).abs()))
    }

    /// Shapes past the parallel threshold with ragged lane tails, one and several rows, through
    /// the dispatched kernels and the baseline ones, against an f64 product.
    #[test]
    fn products_match_a_plain_product_at_every_width() {
        let (k, n) = (611, 733); // k·n > PARALLEL_WEIGHTS; neither a multiple of 16
        let w: Vec<f64> = (0..k * n).map(|i| ((i * 7919 % 1000) as f64 / 500.0 - 1.0) * 0.05).collect();
        let wt: Vec<f64> = (0..n * k).map(|i| w[(i % k) * n + i / k]).collect();
        let (w32, wt32): (Vec<f32>, Vec<f32>) =
            (w.iter().map(|&v| v as f32).collect(), wt.iter().map(|&v| v as f32).collect());
        for m in [1, 3] {
            let x: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
            let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let exact = naive(&x, &w, m, k, n);
            assert!(max_err(&x_w(&x32, &w32, m, k, n), &exact) < 1e-4, "x_w f32, m {m}");
            assert!(max_err(&x_wt(&x32, &wt32, m, k, n), &exact) < 1e-4, "x_wt f32, m {m}");
            let f64_err = x_w(&x, &w, m, k, n).iter().zip(&exact).fold(0f64, |e, (a, b)| e.max((a - b).abs()));
            assert!(f64_err < 1e-10, "x_w f64: {f64_err}");
            // the baseline kernels, whatever this CPU has
            let dense = Dense { values: &wt32[..], rows: n, cols: k };
            let mut y = vec![0f32; m * n];
            dot_rows::<f32, _, 8>(&dense, &x32, 0, &mut y);
            assert!(max_err(&y, &exact) < 1e-4, "dot_rows baseline, m {m}");
            let mut y = vec![0f32; m * n];
            axpy_rows::<f32, _, 8>(&Dense { values: &w32[..], rows: k, cols: n }, &x32, 0..k, &mut y);
            assert!(max_err(&y, &exact) < 1e-4, "axpy_rows baseline, m {m}");
        }
    }
}
