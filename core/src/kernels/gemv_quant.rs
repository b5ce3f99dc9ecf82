//! Reduced-precision weights for decoding: a matrix stored row by row as bf16 (the top 16 bits
//! of each f32) or as int8 with one f32 scale per block of 32 values along the row (llama.cpp's
//! Q8_0 layout, with an f32 scale). A [`QMatrix`] is a [`Rows`], so the few-row products of
//! [`super::gemv_cpu`] run over it: `y = x · W` (W `[K, N]`, row ranges per thread) and
//! `y = x · Wᵀ` (W `[N, K]`, one dot product per row). Values are widened to f32 in vector
//! registers; accumulation is f32.

use super::gemv_cpu::{AVX512_LANES, Rows, x_w_into, x_wt_into};

/// Values per int8 scale.
pub const BLOCK: usize = 32;

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
        let v: Vec<u16> = w.iter().map(|&v| to_bf16(v)).collect();
        super::gemv_cpu::advise_huge_pages(&v);
        Self { rows, cols, store: Store::Bf16(v) }
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
        super::gemv_cpu::advise_huge_pages(&q);
        Self { rows, cols, store: Store::Int8 { q, scales } }
    }

    /// Bytes of the stored values and scales.
    pub fn bytes(&self) -> usize {
        match &self.store {
            Store::Bf16(v) => 2 * v.len(),
            Store::Int8 { q, scales } => q.len() + 4 * scales.len(),
        }
    }

    /// `y [M, cols] = x [M, rows] · W`.
    pub fn x_w(&self, x: &[f32], y: &mut [f32]) {
        x_w_into(self, x, y)
    }

    /// `y [M, rows] = x [M, cols] · Wᵀ`.
    pub fn x_wt(&self, x: &[f32], y: &mut [f32]) {
        x_wt_into(self, x, y)
    }
}

impl Rows<f32> for QMatrix {
    fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    #[inline(always)]
    fn axpy<const W: usize>(&self, r: usize, xv: f32, acc: &mut [f32]) {
        let row = r * self.cols..(r + 1) * self.cols;
        match &self.store {
            // no reduction: flat loops, which the loop vectoriser widens itself
            Store::Bf16(v) => {
                for (o, &w) in acc.iter_mut().zip(&v[row]) {
                    *o += xv * from_bf16(w);
                }
            }
            Store::Int8 { q, scales } => {
                let srow = &scales[r * self.cols.div_ceil(BLOCK)..];
                for ((o, w), &s) in acc.chunks_mut(BLOCK).zip(q[row].chunks(BLOCK)).zip(srow) {
                    let xs = xv * s;
                    for (o, &w) in o.iter_mut().zip(w) {
                        *o += xs * f32::from(w);
                    }
                }
            }
        }
    }

    #[inline(always)]
    fn dot<const W: usize>(&self, r: usize, x: &[f32]) -> f32 {
        let row = r * self.cols..(r + 1) * self.cols;
        let srow = r * self.cols.div_ceil(BLOCK)..(r + 1) * self.cols.div_ceil(BLOCK);
        #[cfg(target_arch = "x86_64")]
        if W == AVX512_LANES {
            use super::gemv_avx512 as k;
            // SAFETY: W is AVX512_LANES only where the CPU has AVX-512 (see `Rows`).
            return unsafe {
                match &self.store {
                    Store::Bf16(v) if k::has_bf16_dot() => k::dot_bf16_pairs(x, &v[row]),
                    Store::Bf16(v) => k::dot_bf16(x, &v[row]),
                    Store::Int8 { q, scales } => k::dot_int8(x, &q[row], &scales[srow]),
                }
            };
        }
        match &self.store {
            Store::Bf16(v) => dot_bf16::<W>(x, &v[row]),
            Store::Int8 { q, scales } => dot_int8(x, &q[row], &scales[srow]),
        }
    }
}

// The dot products keep four independent sums per lane (four chains of vector adds): one
// chain would wait on the add latency instead of on memory.

/// `Σ x[c] · w[c]` for bf16 `w`.
#[inline(always)]
fn dot_bf16<const W: usize>(x: &[f32], w: &[u16]) -> f32 {
    let mut acc = [[0f32; W]; 4];
    let ((xc, xr), (wc, wr)) = (x.as_chunks::<W>(), w.as_chunks::<W>());
    let ((xq, xq_rest), (wq, wq_rest)) = (xc.as_chunks::<4>(), wc.as_chunks::<4>());
    for (xs, ws) in xq.iter().zip(wq) {
        for h in 0..4 {
            for j in 0..W {
                acc[h][j] += xs[h][j] * from_bf16(ws[h][j]);
            }
        }
    }
    for (xs, ws) in xq_rest.iter().zip(wq_rest) {
        for j in 0..W {
            acc[0][j] += xs[j] * from_bf16(ws[j]);
        }
    }
    let tail: f32 = xr.iter().zip(wr).map(|(a, &w)| a * from_bf16(w)).sum();
    lane_total(acc) + tail
}

/// `Σ x[c] · q[c] · scale[c / BLOCK]` for int8 `q`.
#[inline(always)]
fn dot_int8(x: &[f32], q: &[i8], scales: &[f32]) -> f32 {
    let mut acc = [[0f32; BLOCK]; 4];
    let ((xc, xr), (qc, qr)) = (x.as_chunks::<BLOCK>(), q.as_chunks::<BLOCK>());
    let ((xq, xq_rest), (qq, qq_rest), (sq, _)) = (xc.as_chunks::<4>(), qc.as_chunks::<4>(), scales.as_chunks::<4>());
    for ((xs, ws), s) in xq.iter().zip(qq).zip(sq) {
        for h in 0..4 {
            for j in 0..BLOCK {
                acc[h][j] += xs[h][j] * f32::from(ws[h][j]) * s[h];
            }
        }
    }
    let rest = &scales[4 * xq.len()..];
    for ((xs, ws), &s) in xq_rest.iter().zip(qq_rest).zip(rest) {
        for j in 0..BLOCK {
            acc[0][j] += xs[j] * f32::from(ws[j]) * s;
        }
    }
    let s = rest.get(xq_rest.len()).copied().unwrap_or(0.0);
    let tail: f32 = xr.iter().zip(qr).map(|(a, &w)| a * f32::from(w) * s).sum();
    lane_total(acc) + tail
}

#[inline(always)]
fn lane_total<const W: usize>(acc: [[f32; W]; 4]) -> f32 {
    let mut lanes = acc[0];
    for a in &acc[1..] {
        for j in 0..W {
            lanes[j] += a[j];
        }
    }
    lanes.iter().sum()
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

    /// The baseline dot products and the AVX-512 ones (where this CPU has it) agree, on a
    /// shape large enough for the parallel path and with ragged blocks.
    #[test]
    fn every_width_gives_the_same_dot_products() {
        let (n, k) = (500, 611);
        let wt: Vec<f32> = (0..n * k).map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.1).collect();
        let x: Vec<f32> = (0..k).map(|i| (i as f32 * 0.37).sin()).collect();
        let avx512 = super::super::selective_scan_cpu::simd_level() == super::super::selective_scan_cpu::Simd::Avx512;
        // with AVX-512 BF16 the bf16 products also round x to bf16: within 2⁻⁸ of Σ|x w|
        for (q, x_rounding) in [(QMatrix::bf16(&wt, n, k), 2f32.powi(-8)), (QMatrix::int8(&wt, n, k), 0.0)] {
            let mut y = vec![0f32; n];
            q.x_wt(&x, &mut y);
            for (r, &got) in y.iter().enumerate() {
                let base = Rows::<f32>::dot::<8>(&q, r, &x);
                let mag: f32 = x.iter().zip(&wt[r * k..(r + 1) * k]).map(|(a, b)| (a * b).abs()).sum();
                let tol = 1e-4 * (1.0 + base.abs()) + x_rounding * mag;
                assert!((got - base).abs() <= tol, "row {r}: {got} vs baseline {base}");
                if avx512 {
                    let wide = Rows::<f32>::dot::<{ AVX512_LANES }>(&q, r, &x);
                    assert!((wide - base).abs() <= tol, "row {r}: AVX-512 {wide} vs {base}");
                }
            }
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
