//! Plain-Rust selective scan (Mamba S6) over contiguous buffers: forward and backward.
//!
//! Layout (mamba_ssm's): `u`, `delta`, `z`, `y`: `[B, D, L]`; `A`: `[D, N]`; `B`, `C`:
//! `[B, G, N, L]` (G groups of channels share one B/C; G = 1 is the `[B, N, L]` case), stored
//! here transposed to `[B, G, L, N]` so that the state dimension is the contiguous inner loop;
//! `D`, `delta_bias`: `[D]`; states `[B, D, N]`.
//!
//! Per row (b, d), with Δ_t = softplus(delta_t + delta_bias) (or without softplus):
//!   h_t = exp(Δ_t A) ⊙ h_{t-1} + Δ_t B_t u_t,   y_t = ⟨C_t, h_t⟩ + D u_t,   out_t = y_t · silu(z_t).
//!
//! Rows are independent: rayon splits them across threads; each row walks time with its state
//! `h` (N values) held in a small local array. The backward pass recomputes a row's states into
//! a per-row scratch of L·N values (never B·D·L·N) and walks time in reverse.

mod backward;

use super::real::Real;
use rayon::prelude::*;

pub use backward::{ScanGrads, backward};

/// Shapes of one selective-scan call.
#[derive(Debug, Clone, Copy)]
pub struct ScanDims {
    pub batch: usize,
    pub dim: usize,
    pub len: usize,
    pub state: usize,
    pub groups: usize,
}

/// Borrowed, contiguous inputs (B and C already transposed to `[B, G, L, N]`).
pub struct ScanInputs<'a, T> {
    pub u: &'a [T],
    pub delta: &'a [T],
    pub a: &'a [T],
    pub b: &'a [T],
    pub c: &'a [T],
    pub d: Option<&'a [T]>,
    pub z: Option<&'a [T]>,
    pub delta_bias: Option<&'a [T]>,
    pub h0: Option<&'a [T]>,
    pub softplus: bool,
}

impl ScanDims {
    fn group_of(&self, d: usize) -> usize {
        d / (self.dim / self.groups)
    }
}

/// Δ_t for one row, written into `out`.
#[inline(always)]
fn row_delta<T: Real>(delta: &[T], bias: T, softplus: bool, out: &mut [T]) {
    for (o, &x) in out.iter_mut().zip(delta) {
        let v = x + bias;
        *o = if softplus { v.softplus() } else { v };
    }
}

/// Pairwise (log-depth) sum of the lanes: a serial chain of W adds would sit on every step.
#[inline(always)]
pub(super) fn hsum<T: Real, const W: usize>(mut v: [T; W]) -> T {
    let mut w = W;
    while w > 1 {
        w /= 2;
        for j in 0..w {
            let add = v[j + w];
            v[j] += add;
        }
    }
    v[0]
}

/// One row of the forward scan. `h` holds h0 on entry and the final state on exit.
/// When `hist` is given, h_t and exp(Δ_t A) are stored there (backward recomputation).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn row_forward<T: Real, const W: usize>(
    u: &[T],
    dt: &[T],
    a: &[T],
    bt: &[T],
    ct: &[T],
    d_skip: T,
    h: &mut [T],
    y: &mut [T],
    mut hist: Option<(&mut [T], &mut [T])>,
) {
    let n = a.len();
    let l = u.len();
    assert!(dt.len() == l && y.len() == l && h.len() == n);
    assert!(bt.len() == l * n && ct.len() == l * n);
    match n / W {
        1 if n == W => return row_forward_regs::<T, W, 1>(u, dt, a, bt, ct, d_skip, h, y, hist),
        2 if n == 2 * W => return row_forward_regs::<T, W, 2>(u, dt, a, bt, ct, d_skip, h, y, hist),
        4 if n == 4 * W => return row_forward_regs::<T, W, 4>(u, dt, a, bt, ct, d_skip, h, y, hist),
        _ => {}
    }
    let full = n - n % W;
    for t in 0..l {
        let dtt = dt[t];
        let du = dtt * u[t];
        let b_t = &bt[t * n..(t + 1) * n];
        let c_t = &ct[t * n..(t + 1) * n];
        let mut acc = [T::ZERO; W];
        let mut k = 0;
        while k < full {
            let hh: &mut [T; W] = (&mut h[k..k + W]).try_into().unwrap();
            let aa: &[T; W] = a[k..k + W].try_into().unwrap();
            let bb: &[T; W] = b_t[k..k + W].try_into().unwrap();
            let cc: &[T; W] = c_t[k..k + W].try_into().unwrap();
            let mut da = [T::ZERO; W];
            for j in 0..W {
                da[j] = (dtt * aa[j]).exp_();
                hh[j] = da[j] * hh[j] + du * bb[j];
                acc[j] += cc[j] * hh[j];
            }
            if let Some((hs, das)) = hist.as_mut() {
                hs[t * n + k..t * n + k + W].copy_from_slice(hh);
                das[t * n + k..t * n + k + W].copy_from_slice(&da);
            }
            k += W;
        }
        let mut tail = T::ZERO;
        for k in full..n {
            let da = (dtt * a[k]).exp_();
            h[k] = da * h[k] + du * b_t[k];
            tail += c_t[k] * h[k];
            if let Some((hs, das)) = hist.as_mut() {
                hs[t * n + k] = h[k];
                das[t * n + k] = da;
            }
        }
        y[t] = hsum(acc) + tail + d_skip * u[t];
    }
}

/// [`row_forward`] for N = K·W, the state held in K local vectors (registers) for the whole
/// row. In the general loop h lives in `h`'s memory, and its store → load sat on the
/// recurrence's serial chain every step.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn row_forward_regs<T: Real, const W: usize, const K: usize>(
    u: &[T],
    dt: &[T],
    a: &[T],
    bt: &[T],
    ct: &[T],
    d_skip: T,
    h: &mut [T],
    y: &mut [T],
    mut hist: Option<(&mut [T], &mut [T])>,
) {
    let n = K * W;
    let (mut hv, mut av) = ([[T::ZERO; W]; K], [[T::ZERO; W]; K]);
    for k in 0..K {
        hv[k].copy_from_slice(&h[k * W..(k + 1) * W]);
        av[k].copy_from_slice(&a[k * W..(k + 1) * W]);
    }
    for (t, yt) in y.iter_mut().enumerate() {
        let dtt = dt[t];
        let du = dtt * u[t];
        let (b_t, c_t) = (&bt[t * n..(t + 1) * n], &ct[t * n..(t + 1) * n]);
        let mut acc = [T::ZERO; W];
        for k in 0..K {
            let mut da = [T::ZERO; W];
            for j in 0..W {
                da[j] = (dtt * av[k][j]).exp_();
                hv[k][j] = da[j] * hv[k][j] + du * b_t[k * W + j];
                acc[j] += c_t[k * W + j] * hv[k][j];
            }
            if let Some((hs, das)) = hist.as_mut() {
                let at = t * n + k * W;
                hs[at..at + W].copy_from_slice(&hv[k]);
                das[at..at + W].copy_from_slice(&da);
            }
        }
        *yt = hsum(acc) + d_skip * u[t];
    }
    for k in 0..K {
        h[k * W..(k + 1) * W].copy_from_slice(&hv[k]);
    }
}

/// Everything one output row needs: Δ (bias, softplus), the scan, the silu(z) gate.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn row_full<T: Real, const W: usize>(
    x: &ScanInputs<'_, T>,
    delta: &[T],
    bias: T,
    u: &[T],
    a: &[T],
    bt: &[T],
    ct: &[T],
    d_skip: T,
    z: Option<&[T]>,
    dt: &mut [T],
    h: &mut [T],
    y: &mut [T],
) {
    row_delta(delta, bias, x.softplus, dt);
    row_forward::<T, W>(u, dt, a, bt, ct, d_skip, h, y, None);
    if let Some(z) = z {
        for (yv, &zv) in y.iter_mut().zip(z) {
            *yv *= zv.silu();
        }
    }
}

/// The widest vector instruction set of this CPU that the kernels have a variant for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Simd {
    Base,
    Avx2,
    Avx512,
}

/// Detects the CPU's vector extensions (cached by the standard library). `SSM_NO_AVX512` set
/// in the environment caps it at AVX2.
pub fn simd_level() -> Simd {
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
        if avx2 && std::is_x86_feature_detected!("avx512f") && std::env::var_os("SSM_NO_AVX512").is_none() {
            return Simd::Avx512;
        }
        if avx2 {
            return Simd::Avx2;
        }
    }
    Simd::Base
}

/// Forward selective scan. Returns `(out [B,D,L], last_state [B,D,N])`.
pub fn forward<T: Real>(x: &ScanInputs<'_, T>, s: ScanDims) -> (Vec<T>, Vec<T>) {
    let (l, n) = (s.len, s.state);
    let simd = simd_level();
    let mut y = vec![T::ZERO; s.batch * s.dim * l];
    let mut last = vec![T::ZERO; s.batch * s.dim * n];
    y.par_chunks_mut(l.max(1)).zip(last.par_chunks_mut(n.max(1))).enumerate().for_each_init(
        || vec![T::ZERO; l],
        |dt, (row, (y_row, h))| {
            let (bi, di) = (row / s.dim, row % s.dim);
            let g = s.group_of(di);
            let bias = x.delta_bias.map_or(T::ZERO, |v| v[di]);
            let r = row * l..(row + 1) * l;
            if let Some(h0) = x.h0 {
                h.copy_from_slice(&h0[row * n..(row + 1) * n]);
            }
            let bc = (bi * s.groups + g) * l * n..(bi * s.groups + g + 1) * l * n;
            let (delta, u) = (&x.delta[r.clone()], &x.u[r.clone()]);
            let (a, bt, ct) = (&x.a[di * n..(di + 1) * n], &x.b[bc.clone()], &x.c[bc]);
            let d_skip = x.d.map_or(T::ZERO, |v| v[di]);
            let z = x.z.map(|z| &z[r]);
            // SAFETY: each variant runs only on a CPU with its features (`simd_level`).
            match simd {
                #[cfg(target_arch = "x86_64")]
                Simd::Avx512 => unsafe { row_full_avx512(x, delta, bias, u, a, bt, ct, d_skip, z, dt, h, y_row) },
                #[cfg(target_arch = "x86_64")]
                Simd::Avx2 => unsafe { row_full_avx2(x, delta, bias, u, a, bt, ct, d_skip, z, dt, h, y_row) },
                _ => row_full::<T, 8>(x, delta, bias, u, a, bt, ct, d_skip, z, dt, h, y_row),
            }
        },
    );
    (y, last)
}

simd_variant!(row_full_avx2, "avx2,fma", row_full, 8, (x: &ScanInputs<'_, T>, delta: &[T], bias: T, u: &[T], a: &[T], bt: &[T], ct: &[T], d_skip: T, z: Option<&[T]>, dt: &mut [T], h: &mut [T], y: &mut [T]), ());
simd_variant!(row_full_avx512, "avx512f,avx2,fma", row_full, 16, (x: &ScanInputs<'_, T>, delta: &[T], bias: T, u: &[T], a: &[T], bt: &[T], ct: &[T], d_skip: T, z: Option<&[T]>, dt: &mut [T], h: &mut [T], y: &mut [T]), ());

/// `[.., X, Y]` → `[.., Y, X]` for a contiguous buffer of `outer` matrices.
pub fn transpose_last2<T: Copy + Default + Send + Sync>(src: &[T], outer: usize, x: usize, y: usize) -> Vec<T> {
    let mut out = vec![T::default(); src.len()];
    if x == 0 || y == 0 {
        return out;
    }
    out.par_chunks_mut(x * y).zip(src.par_chunks(x * y)).take(outer).for_each(|(o, s)| {
        for i in 0..x {
            for j in 0..y {
                o[j * x + i] = s[i * y + j];
            }
        }
    });
    out
}
