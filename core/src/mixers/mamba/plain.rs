//! [`Mamba::step`](super::Mamba) in plain Rust ([`crate::plain`]), fused per layer:
//!
//! ```text
//! [x, z] = in_proj(h);  u = silu(conv(x));  [Δ̃, B, C] = x_proj(u);  Δ = softplus(dt_proj(Δ̃))
//! h[n, c] ← exp(Δ_c A[c, n]) h[n, c] + Δ_c B[n] u_c;   y_c = Σ_n C[n] h[n, c] + D_c u_c
//! out = out_proj(y · silu(z))
//! ```
//!
//! The projections stream each weight once ([`PlainLinear`]); every buffer is allocated once.
//! The scan keeps its state (and A) transposed, in blocks of [`CHANNELS`] channels stored
//! `[N, channels]`: the update of one state index is then one flat loop over contiguous
//! channels, which vectorises with no per-channel reduction, and the blocks run on all cores.

use super::{Mamba, MambaState};
use crate::kernels::real::{Real, exp_f32};
use crate::kernels::with_simd;
use crate::plain::{PlainConv, PlainLinear, PlainStep, Precision, host, silu};
use rayon::prelude::*;

/// Channels per block of the scan (a task; its Δ, u and y stay in registers or L1).
const CHANNELS: usize = 64;

/// `[E, N]` rows (per sequence) → blocks of `[N, w]` for each run of `CHANNELS` channels.
fn to_blocks(v: &[f32], e: usize, n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(v.len());
    for seq in v.chunks_exact(e * n) {
        for c0 in (0..e).step_by(CHANNELS) {
            let w = CHANNELS.min(e - c0);
            out.extend((0..n * w).map(|j| seq[(c0 + j % w) * n + j / w]));
        }
    }
    out
}

pub(super) struct MambaPlain {
    n: usize,
    r: usize,
    in_proj: PlainLinear,
    x_proj: PlainLinear,
    dt_proj: PlainLinear,
    out_proj: PlainLinear,
    conv: PlainConv,
    /// A = −exp(A_log) in channel blocks ([`to_blocks`]), D `[E]`.
    a: Vec<f32>,
    d: Vec<f32>,
    /// The scan state `[B, E, N]` in channel blocks.
    h: Vec<f32>,
    xz: Vec<f32>,
    u: Vec<f32>,
    x_dbl: Vec<f32>,
    dt_low: Vec<f32>,
    delta: Vec<f32>,
}

impl MambaPlain {
    pub(super) fn new(m: &Mamba, s: &MambaState, p: Precision) -> Self {
        let (e, n, r) = (m.d_inner, m.d_state, m.dt_rank);
        let batch = s.ssm.dims()[0];
        Self {
            n,
            r,
            in_proj: PlainLinear::new(&m.in_proj, p),
            x_proj: PlainLinear::new(&m.x_proj, p),
            dt_proj: PlainLinear::new(&m.dt_proj, p),
            out_proj: PlainLinear::new(&m.out_proj, p),
            conv: PlainConv::new(&m.conv1d, s.conv.clone()),
            a: to_blocks(&host(m.a()), e, n),
            d: host(m.D.val()),
            h: to_blocks(&host(s.ssm.clone()), e, n),
            xz: vec![0.0; batch * 2 * e],
            u: vec![0.0; batch * e],
            x_dbl: vec![0.0; batch * m.x_proj.weight.dims()[1]],
            dt_low: vec![0.0; batch * r],
            delta: vec![0.0; batch * e],
        }
    }
}

impl PlainStep for MambaPlain {
    fn step(&mut self, x: &[f32], out: &mut [f32]) {
        let (e, n, r) = (self.d.len(), self.n, self.r);
        self.in_proj.apply(x, &mut self.xz);
        for (row, u) in self.u.iter_mut().enumerate() {
            let (bi, c) = (row / e, row % e);
            *u = silu(self.conv.step(row, self.xz[bi * 2 * e + c]));
        }
        self.x_proj.apply(&self.u, &mut self.x_dbl);
        let w = r + 2 * n;
        for (dst, src) in self.dt_low.chunks_exact_mut(r).zip(self.x_dbl.chunks_exact(w)) {
            dst.copy_from_slice(&src[..r]);
        }
        self.dt_proj.apply(&self.dt_low, &mut self.delta);
        // one task per (sequence, channel block): its u (overwritten by y) and its state
        let blocks: Vec<_> = (self.u.chunks_mut(e).zip(self.h.chunks_mut(e * n)).enumerate())
            .flat_map(|(bi, (u, h))| u.chunks_mut(CHANNELS).zip(h.chunks_mut(CHANNELS * n)).enumerate().map(move |(j, b)| (bi, j, b)))
            .collect();
        let (delta, x_dbl, xz, a, d) = (&self.delta, &self.x_dbl, &self.xz, &self.a, &self.d);
        blocks.into_par_iter().for_each(|(bi, j, (u, h))| {
            let c0 = j * CHANNELS;
            let (bm, cm) = x_dbl[bi * w + r..(bi + 1) * w].split_at(n);
            let z = &xz[bi * 2 * e + e + c0..][..u.len()];
            let blk = Block { delta: &delta[bi * e + c0..][..u.len()], a: &a[c0 * n..][..h.len()], d: &d[c0..][..u.len()] };
            with_simd(
                #[inline(always)]
                || blk.step(u, h, bm, cm, z),
            )
        });
        self.out_proj.apply(&self.u, out);
    }
}

/// The read-only inputs of one channel block's scan step.
struct Block<'a> {
    delta: &'a [f32],
    /// `[N, w]`.
    a: &'a [f32],
    d: &'a [f32],
}

impl Block<'_> {
    /// `u` ← y for the block's `w` channels; `h` `[N, w]` updated in place.
    #[inline(always)]
    fn step(&self, u: &mut [f32], h: &mut [f32], bm: &[f32], cm: &[f32], z: &[f32]) {
        let w = u.len();
        let (mut dl, mut y) = ([0f32; CHANNELS], [0f32; CHANNELS]);
        let (dl, y) = (&mut dl[..w], &mut y[..w]);
        dl.iter_mut().zip(self.delta).for_each(|(o, &v)| *o = v.softplus());
        for ((hs, a), (&b, &c)) in h.chunks_exact_mut(w).zip(self.a.chunks_exact(w)).zip(bm.iter().zip(cm)) {
            for k in 0..w {
                hs[k] = exp_f32(dl[k] * a[k]) * hs[k] + dl[k] * b * u[k];
                y[k] += c * hs[k];
            }
        }
        for k in 0..w {
            u[k] = (y[k] + self.d[k] * u[k]) * silu(z[k]);
        }
    }
}
