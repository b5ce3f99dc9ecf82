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

use super::real::Real;
use rayon::prelude::*;

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

#[inline(always)]
fn silu<T: Real>(x: T) -> T {
    x * x.sigmoid()
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
            *yv *= silu(zv);
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

/// Gradients of the selective scan, in the inputs' layouts (B, C as `[B, G, L, N]`).
pub struct ScanGrads<T> {
    pub u: Vec<T>,
    pub delta: Vec<T>,
    pub a: Vec<T>,
    pub b: Vec<T>,
    pub c: Vec<T>,
    pub d: Vec<T>,
    pub z: Vec<T>,
    pub delta_bias: Vec<T>,
    pub h0: Vec<T>,
}

/// Per-task mutable outputs: a contiguous run of rows `d0..d1` of one batch element.
struct Task<'a, T> {
    bi: usize,
    d0: usize,
    gu: &'a mut [T],
    gdelta: &'a mut [T],
    gz: &'a mut [T],
    gh0: &'a mut [T],
}

/// One row of the backward pass: reverse walk over time.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn row_backward<T: Real, const W: usize>(
    u: &[T],
    dt: &[T],
    a: &[T],
    bt: &[T],
    ct: &[T],
    h0: &[T],
    hs: &[T],
    das: &[T],
    gy: &[T],
    gh: &mut [T],
    gu: &mut [T],
    gdt: &mut [T],
    ga: &mut [T],
    gb: &mut [T],
    gc: &mut [T],
) {
    let n = a.len();
    let l = u.len();
    assert!(hs.len() == l * n && das.len() == l * n && gb.len() == l * n && gc.len() == l * n);
    assert!(gy.len() == l && gu.len() == l && gdt.len() == l && gh.len() == n && ga.len() == n);
    assert!(bt.len() == l * n && ct.len() == l * n && h0.len() == n && dt.len() == l);
    let full = n - n % W;
    for t in (0..l).rev() {
        let g = gy[t];
        let dtt = dt[t];
        let ut = u[t];
        let du = dtt * ut;
        let row = t * n..(t + 1) * n;
        let prev: &[T] = if t > 0 { &hs[(t - 1) * n..t * n] } else { h0 };
        let (b_t, c_t, h_t, da_t) = (&bt[row.clone()], &ct[row.clone()], &hs[row.clone()], &das[row.clone()]);
        let (gb_t, gc_t) = (&mut gb[row.clone()], &mut gc[row]);
        let mut acc_dt = [T::ZERO; W];
        let mut acc_u = [T::ZERO; W];
        let mut k = 0;
        while k < full {
            let w = k..k + W;
            let ghv: &mut [T; W] = (&mut gh[w.clone()]).try_into().unwrap();
            let gcv: &mut [T; W] = (&mut gc_t[w.clone()]).try_into().unwrap();
            let gbv: &mut [T; W] = (&mut gb_t[w.clone()]).try_into().unwrap();
            let gav: &mut [T; W] = (&mut ga[w.clone()]).try_into().unwrap();
            let cv: &[T; W] = c_t[w.clone()].try_into().unwrap();
            let bv: &[T; W] = b_t[w.clone()].try_into().unwrap();
            let hv: &[T; W] = h_t[w.clone()].try_into().unwrap();
            let dav: &[T; W] = da_t[w.clone()].try_into().unwrap();
            let pv: &[T; W] = prev[w.clone()].try_into().unwrap();
            let av: &[T; W] = a[w].try_into().unwrap();
            for j in 0..W {
                let ghi = ghv[j] + g * cv[j];
                gcv[j] += g * hv[j];
                let dhp = ghi * pv[j] * dav[j];
                acc_dt[j] += dhp * av[j] + ghi * bv[j] * ut;
                gav[j] += dhp * dtt;
                gbv[j] += ghi * du;
                acc_u[j] += ghi * bv[j];
                ghv[j] = ghi * dav[j];
            }
            k += W;
        }
        let (mut sdt, mut su) = (T::ZERO, T::ZERO);
        for i in full..n {
            let ghi = gh[i] + g * c_t[i];
            gc_t[i] += g * h_t[i];
            let dhp = ghi * prev[i] * da_t[i];
            sdt += dhp * a[i] + ghi * b_t[i] * ut;
            ga[i] += dhp * dtt;
            gb_t[i] += ghi * du;
            su += ghi * b_t[i];
            gh[i] = ghi * da_t[i];
        }
        sdt += hsum(acc_dt);
        su += hsum(acc_u);
        gdt[t] = sdt;
        gu[t] += su * dtt;
    }
}

/// The reverse walk kept out of line: inlined into the large task body it compiles worse.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn row_backward_outlined<T: Real>(
    simd: Simd,
    u: &[T],
    dt: &[T],
    a: &[T],
    bt: &[T],
    ct: &[T],
    h0: &[T],
    hs: &[T],
    das: &[T],
    gy: &[T],
    gh: &mut [T],
    gu: &mut [T],
    gdt: &mut [T],
    ga: &mut [T],
    gb: &mut [T],
    gc: &mut [T],
) {
    // SAFETY: each variant runs only on a CPU with its features (`simd_level`).
    match simd {
        #[cfg(target_arch = "x86_64")]
        Simd::Avx512 => unsafe { row_backward_avx512(u, dt, a, bt, ct, h0, hs, das, gy, gh, gu, gdt, ga, gb, gc) },
        #[cfg(target_arch = "x86_64")]
        Simd::Avx2 => unsafe { row_backward_avx2(u, dt, a, bt, ct, h0, hs, das, gy, gh, gu, gdt, ga, gb, gc) },
        _ => row_backward::<T, 8>(u, dt, a, bt, ct, h0, hs, das, gy, gh, gu, gdt, ga, gb, gc),
    }
}

/// Backward selective scan. `dy` is the gradient of `out` `[B,D,L]`, `dlast` of the final state.
pub fn backward<T: Real>(x: &ScanInputs<'_, T>, s: ScanDims, dy: &[T], dlast: Option<&[T]>) -> ScanGrads<T> {
    let (bsz, dim, l, n, groups) = (s.batch, s.dim, s.len, s.state, s.groups);
    let simd = simd_level();
    let per_group = dim / groups;
    // Enough tasks to keep every thread busy, never crossing a group boundary.
    let want = 4 * rayon::current_num_threads();
    let splits = want.div_ceil(bsz * groups).clamp(1, per_group.max(1));
    let chunk = per_group.div_ceil(splits);

    let mut gu = vec![T::ZERO; bsz * dim * l];
    let mut gdelta = vec![T::ZERO; bsz * dim * l];
    let mut gz = vec![T::ZERO; if x.z.is_some() { bsz * dim * l } else { 0 }];
    let mut gh0 = vec![T::ZERO; bsz * dim * n];

    let mut tasks: Vec<Task<'_, T>> = Vec::new();
    {
        let (mut ru, mut rdl, mut rz, mut rh) = (&mut gu[..], &mut gdelta[..], &mut gz[..], &mut gh0[..]);
        for bi in 0..bsz {
            let mut d0 = 0;
            while d0 < dim {
                let gend = (s.group_of(d0) + 1) * per_group;
                let d1 = (d0 + chunk).min(gend);
                let rows = d1 - d0;
                let (a1, b1) = ru.split_at_mut(rows * l);
                let (a2, b2) = rdl.split_at_mut(rows * l);
                let zl = if x.z.is_some() { rows * l } else { 0 };
                let (a3, b3) = rz.split_at_mut(zl);
                let (a4, b4) = rh.split_at_mut(rows * n);
                tasks.push(Task { bi, d0, gu: a1, gdelta: a2, gz: a3, gh0: a4 });
                (ru, rdl, rz, rh) = (b1, b2, b3, b4);
                d0 = d1;
            }
        }
    }

    // Each task returns its partial gB/gC for its (batch, group) and per-row gA, gD, gbias.
    let parts: Vec<Part<T>> = tasks
        .into_par_iter()
        .map(|task| {
            // SAFETY: each variant runs only on a CPU with its features (`simd_level`).
            match simd {
                #[cfg(target_arch = "x86_64")]
                Simd::Avx512 => unsafe { backward_task_avx512(x, s, dy, dlast, task) },
                #[cfg(target_arch = "x86_64")]
                Simd::Avx2 => unsafe { backward_task_avx2(x, s, dy, dlast, task) },
                _ => backward_task::<T, 8>(x, s, dy, dlast, task, simd),
            }
        })
        .collect();

    let mut g_a = vec![T::ZERO; dim * n];
    let mut g_b = vec![T::ZERO; bsz * groups * l * n];
    let mut g_c = vec![T::ZERO; bsz * groups * l * n];
    let mut g_d = vec![T::ZERO; dim];
    let mut g_bias = vec![T::ZERO; dim];
    for (bi, d0, gb, gc, ga, gd, gbias) in parts {
        let g = s.group_of(d0);
        let off = (bi * groups + g) * l * n;
        for (o, v) in g_b[off..off + l * n].iter_mut().zip(&gb) {
            *o += *v;
        }
        for (o, v) in g_c[off..off + l * n].iter_mut().zip(&gc) {
            *o += *v;
        }
        for (o, v) in g_a[d0 * n..d0 * n + ga.len()].iter_mut().zip(&ga) {
            *o += *v;
        }
        for (r, (v, w)) in gd.iter().zip(&gbias).enumerate() {
            g_d[d0 + r] += *v;
            g_bias[d0 + r] += *w;
        }
    }
    ScanGrads { u: gu, delta: gdelta, a: g_a, b: g_b, c: g_c, d: g_d, z: gz, delta_bias: g_bias, h0: gh0 }
}

type Part<T> = (usize, usize, Vec<T>, Vec<T>, Vec<T>, Vec<T>, Vec<T>);

/// The backward pass of one task (a run of rows of one batch element).
#[inline(always)]
fn backward_task<T: Real, const W: usize>(
    x: &ScanInputs<'_, T>,
    s: ScanDims,
    dy: &[T],
    dlast: Option<&[T]>,
    task: Task<'_, T>,
    simd: Simd,
) -> Part<T> {
    let (dim, l, n, groups) = (s.dim, s.len, s.state, s.groups);
    let rows = task.gh0.len() / n.max(1);
    let g = s.group_of(task.d0);
    let bc = (task.bi * groups + g) * l * n..(task.bi * groups + g + 1) * l * n;
    let (bt, ct) = (&x.b[bc.clone()], &x.c[bc]);
    let mut gb = vec![T::ZERO; l * n];
    let mut gc = vec![T::ZERO; l * n];
    let mut ga = vec![T::ZERO; rows * n];
    let mut gd = vec![T::ZERO; rows];
    let mut gbias = vec![T::ZERO; rows];
    let mut hs = vec![T::ZERO; l * n];
    let mut das = vec![T::ZERO; l * n];
    let mut dt = vec![T::ZERO; l];
    let mut ypre = vec![T::ZERO; l];
    let mut gyv = vec![T::ZERO; l];
    let mut gdt = vec![T::ZERO; l];
    let zero_h = vec![T::ZERO; n];
    for r in 0..rows {
        let di = task.d0 + r;
        let row = task.bi * dim + di;
        let span = row * l..(row + 1) * l;
        let u = &x.u[span.clone()];
        let a = &x.a[di * n..(di + 1) * n];
        let bias = x.delta_bias.map_or(T::ZERO, |v| v[di]);
        let d_skip = x.d.map_or(T::ZERO, |v| v[di]);
        let h0 = x.h0.map_or(&zero_h[..], |h| &h[row * n..(row + 1) * n]);
        row_delta(&x.delta[span.clone()], bias, x.softplus, &mut dt);
        // Recompute this row's states (scratch of L·N values).
        let mut h = h0.to_vec();
        row_forward::<T, W>(u, &dt, a, bt, ct, d_skip, &mut h, &mut ypre, Some((&mut hs, &mut das)));
        // Gate: out = y · silu(z).
        let dyr = &dy[span.clone()];
        match x.z {
            Some(z) => {
                let zr = &z[span.clone()];
                let gzr = &mut task.gz[r * l..(r + 1) * l];
                for t in 0..l {
                    let sg = zr[t].sigmoid();
                    let sl = zr[t] * sg;
                    gyv[t] = dyr[t] * sl;
                    gzr[t] = dyr[t] * ypre[t] * sg * (T::ONE + zr[t] * (T::ONE - sg));
                }
            }
            None => gyv.copy_from_slice(dyr),
        }
        let gur = &mut task.gu[r * l..(r + 1) * l];
        let mut gdsum = T::ZERO;
        for t in 0..l {
            gdsum += gyv[t] * u[t];
            gur[t] = gyv[t] * d_skip;
        }
        gd[r] = gdsum;
        let gh = &mut task.gh0[r * n..(r + 1) * n];
        match dlast {
            Some(dl) => gh.copy_from_slice(&dl[row * n..(row + 1) * n]),
            None => gh.fill(T::ZERO),
        }
        let gar = &mut ga[r * n..(r + 1) * n];
        row_backward_outlined(simd, u, &dt, a, bt, ct, h0, &hs, &das, &gyv, gh, gur, &mut gdt, gar, &mut gb, &mut gc);
        // Through softplus: dΔ/d(delta) = sigmoid(delta + bias).
        let dlr = &x.delta[span];
        let gdr = &mut task.gdelta[r * l..(r + 1) * l];
        let mut gbs = T::ZERO;
        for t in 0..l {
            let gv = if x.softplus { gdt[t] * (dlr[t] + bias).sigmoid() } else { gdt[t] };
            gdr[t] = gv;
            gbs += gv;
        }
        gbias[r] = gbs;
    }
    (task.bi, task.d0, gb, gc, ga, gd, gbias)
}

simd_variant!(row_full_avx2, "avx2,fma", row_full, 8, (x: &ScanInputs<'_, T>, delta: &[T], bias: T, u: &[T], a: &[T], bt: &[T], ct: &[T], d_skip: T, z: Option<&[T]>, dt: &mut [T], h: &mut [T], y: &mut [T]), ());
simd_variant!(row_full_avx512, "avx512f,avx2,fma", row_full, 16, (x: &ScanInputs<'_, T>, delta: &[T], bias: T, u: &[T], a: &[T], bt: &[T], ct: &[T], d_skip: T, z: Option<&[T]>, dt: &mut [T], h: &mut [T], y: &mut [T]), ());
simd_variant!(row_backward_avx2, "avx2,fma", row_backward, 8, (u: &[T], dt: &[T], a: &[T], bt: &[T], ct: &[T], h0: &[T], hs: &[T], das: &[T], gy: &[T], gh: &mut [T], gu: &mut [T], gdt: &mut [T], ga: &mut [T], gb: &mut [T], gc: &mut [T]), ());
simd_variant!(row_backward_avx512, "avx512f,avx2,fma", row_backward, 16, (u: &[T], dt: &[T], a: &[T], bt: &[T], ct: &[T], h0: &[T], hs: &[T], das: &[T], gy: &[T], gh: &mut [T], gu: &mut [T], gdt: &mut [T], ga: &mut [T], gb: &mut [T], gc: &mut [T]), ());
simd_variant!(backward_task_avx2, "avx2,fma", backward_task, 8, (x: &ScanInputs<'_, T>, s: ScanDims, dy: &[T], dlast: Option<&[T]>, task: Task<'_, T>) -> Part<T>, (Simd::Avx2));
simd_variant!(backward_task_avx512, "avx512f,avx2,fma", backward_task, 16, (x: &ScanInputs<'_, T>, s: ScanDims, dy: &[T], dlast: Option<&[T]>, task: Task<'_, T>) -> Part<T>, (Simd::Avx512));

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
