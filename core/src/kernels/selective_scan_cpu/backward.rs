//! The selective scan's backward pass: per row, the states are recomputed into a scratch of
//! L·N values and time is walked in reverse, accumulating the gradients of every input.

use super::{ScanDims, ScanInputs, Simd, hsum, row_delta, row_forward, simd_level};
use crate::kernels::real::Real;
use rayon::prelude::*;

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

simd_variant!(row_backward_avx2, "avx2,fma", row_backward, 8, (u: &[T], dt: &[T], a: &[T], bt: &[T], ct: &[T], h0: &[T], hs: &[T], das: &[T], gy: &[T], gh: &mut [T], gu: &mut [T], gdt: &mut [T], ga: &mut [T], gb: &mut [T], gc: &mut [T]), ());
simd_variant!(row_backward_avx512, "avx512f,avx2,fma", row_backward, 16, (u: &[T], dt: &[T], a: &[T], bt: &[T], ct: &[T], h0: &[T], hs: &[T], das: &[T], gy: &[T], gh: &mut [T], gu: &mut [T], gdt: &mut [T], ga: &mut [T], gb: &mut [T], gc: &mut [T]), ());
simd_variant!(backward_task_avx2, "avx2,fma", backward_task, 8, (x: &ScanInputs<'_, T>, s: ScanDims, dy: &[T], dlast: Option<&[T]>, task: Task<'_, T>) -> Part<T>, (Simd::Avx2));
simd_variant!(backward_task_avx512, "avx512f,avx2,fma", backward_task, 16, (x: &ScanInputs<'_, T>, s: ScanDims, dy: &[T], dlast: Option<&[T]>, task: Task<'_, T>) -> Part<T>, (Simd::Avx512));
