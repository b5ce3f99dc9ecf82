//! [`Mamba2::step`](super::Mamba2) in plain Rust ([`crate::plain`]), fused per layer:
//!
//! ```text
//! [z, xBC, Δ̃] = in_proj(x);  xBC = silu(conv(xBC));  Δ_h = softplus(Δ̃_h + dt_bias_h) (clamped)
//! S_h[p, n] ← exp(Δ_h A_h) S_h[p, n] + Δ_h x_h[p] B_g[n]        (g: head h's group)
//! y_h[p] = Σ_n C_g[n] S_h[p, n] + D_h x_h[p];   out = out_proj(gated_rmsnorm(y, z))
//! ```

use super::{Mamba2, Mamba2State};
use crate::kernels::gemv_cpu::dot_lanes;
use crate::kernels::real::{Real, exp_f32};
use crate::kernels::with_simd;
use crate::plain::{PlainConv, PlainLinear, PlainStep, Precision, host, silu};
use rayon::prelude::*;

pub(super) struct Mamba2Plain {
    in_proj: PlainLinear,
    out_proj: PlainLinear,
    conv: PlainConv,
    dt_bias: Vec<f32>,
    /// A = −exp(A_log) and D per head.
    a: Vec<f32>,
    d: Vec<f32>,
    norm_w: Vec<f32>,
    group_size: usize,
    eps: f32,
    dt_min: f32,
    dt_max: f32,
    /// (d_inner, d_state, groups, head_dim)
    dims: (usize, usize, usize, usize),
    /// `[B, H, P, N]`.
    ssm: Vec<f32>,
    zxbcdt: Vec<f32>,
    xbc: Vec<f32>,
    y: Vec<f32>,
}

impl Mamba2Plain {
    pub(super) fn new(m: &Mamba2, s: &Mamba2State, p: Precision) -> Self {
        let batch = s.ssm.dims()[0];
        let conv_dim = m.conv_dim();
        Self {
            in_proj: PlainLinear::new(&m.in_proj, p),
            out_proj: PlainLinear::new(&m.out_proj, p),
            conv: PlainConv::new(&m.conv1d, s.conv.clone()),
            dt_bias: host(m.dt_bias.val()),
            a: host(m.A_log.val().exp().neg()),
            d: host(m.D.val()),
            norm_w: host(m.norm.weight.val()),
            group_size: m.norm.group_size,
            eps: m.norm.eps as f32,
            dt_min: m.dt_limit_min as f32,
            dt_max: m.dt_limit_max.filter(|v| v.is_finite()).map_or(f32::INFINITY, |v| v as f32),
            dims: (m.d_inner, m.d_state, m.n_groups, m.head_dim),
            ssm: host(s.ssm.clone()),
            zxbcdt: vec![0.0; batch * m.in_proj.weight.dims()[1]],
            xbc: vec![0.0; batch * conv_dim],
            y: vec![0.0; batch * m.d_inner],
        }
    }

    /// The scan and skip for sequence `bi` (its in-projection `zx`, conv rows of `conv_dim`),
    /// into `self.y`.
    fn scan(&mut self, bi: usize, zx: &[f32], conv_dim: usize) {
        let (di, n, g, p) = self.dims;
        let h = self.a.len();
        let xbc = &self.xbc[bi * conv_dim..(bi + 1) * conv_dim];
        let (a, d, dt_bias, (dt_min, dt_max)) = (&self.a, &self.d, &self.dt_bias, (self.dt_min, self.dt_max));
        let ssm = &mut self.ssm[bi * h * p * n..(bi + 1) * h * p * n];
        let y = &mut self.y[bi * di..(bi + 1) * di];
        // heads over the cores
        ssm.par_chunks_mut(p * n).zip(y.par_chunks_mut(p)).enumerate().for_each(|(hh, (states, ys))| {
            let dt = (zx[di + conv_dim + hh] + dt_bias[hh]).softplus().clamp(dt_min, dt_max);
            let decay = exp_f32(dt * a[hh]);
            let grp = hh / (h / g);
            let bm = &xbc[di + grp * n..di + (grp + 1) * n];
            let cm = &xbc[di + g * n + grp * n..di + g * n + (grp + 1) * n];
            with_simd(
                #[inline(always)]
                || {
                    for (pi, (s, yv)) in states.chunks_exact_mut(n).zip(ys).enumerate() {
                        let xv = xbc[hh * p + pi];
                        for (s, &b) in s.iter_mut().zip(bm) {
                            *s = decay * *s + dt * xv * b;
                        }
                        *yv = dot_lanes::<f32, 16>(cm, s) + d[hh] * xv;
                    }
                },
            )
        });
    }
}

impl PlainStep for Mamba2Plain {
    fn step(&mut self, x: &[f32], out: &mut [f32]) {
        let di = self.dims.0;
        let batch = self.y.len() / di;
        let conv_dim = self.xbc.len() / batch;
        let width = self.zxbcdt.len() / batch;
        self.in_proj.apply(x, &mut self.zxbcdt);
        for (row, v) in self.xbc.iter_mut().enumerate() {
            let (bi, c) = (row / conv_dim, row % conv_dim);
            *v = silu(self.conv.step(row, self.zxbcdt[bi * width + di + c]));
        }
        let zxbcdt = std::mem::take(&mut self.zxbcdt);
        for bi in 0..batch {
            let zx = &zxbcdt[bi * width..(bi + 1) * width];
            self.scan(bi, zx, conv_dim);
            // gated RMSNorm per group: weight · rmsnorm(y · silu(z))
            let y = &mut self.y[bi * di..(bi + 1) * di];
            y.iter_mut().zip(&zx[..di]).for_each(|(v, &z)| *v *= silu(z));
            for (grp, w) in y.chunks_exact_mut(self.group_size).zip(self.norm_w.chunks_exact(self.group_size)) {
                let inv = 1.0 / (grp.iter().map(|v| v * v).sum::<f32>() / grp.len() as f32 + self.eps).sqrt();
                grp.iter_mut().zip(w).for_each(|(v, w)| *v *= inv * w);
            }
        }
        self.zxbcdt = zxbcdt;
        self.out_proj.apply(&self.y, out);
    }
}
