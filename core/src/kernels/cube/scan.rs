//! The selective scan's core on CubeCL: h_t = exp(Δ_t A) ⊙ h_{t−1} + Δ_t B_t u_t, y_t = ⟨C_t, h_t⟩
//! (Gu & Dao 2023, Algorithm 2; checked against mamba_ssm's `selective_scan_ref` and its CUDA
//! `selective_scan_fwd_kernel.cuh` / `selective_scan_bwd_kernel.cuh`). Δ's softplus and bias, the
//! skip `D u` and the gate `silu(z)` are element-wise and run as tensor ops around this core
//! (see [`crate::kernels::selective_scan`]).
//!
//! Forward: one unit per row (b, d); the state (N values, `N` a compile-time constant) lives in
//! registers while the unit walks time — the CUDA kernel's layout with one row per unit instead
//! of per block.
//!
//! Backward, chunked over L with the state carried between chunks: a cube holds a few rows of
//! one (batch, group). Each unit first walks time forward and stores its state at the start of
//! every segment of S = K·T steps (`[units, ⌈L/S⌉, N]`: N/S values per input element — never
//! B·D·L·N). It then walks the segments backwards: recompute the segment's K chunk-start states
//! from its checkpoint, and per chunk (last first) its T states into a local array; walk them
//! in reverse carrying the state gradient ḡ,
//!   ḡ_t = ḡ_{t+1} ⊙ exp(Δ_{t+1} A) + y′_t C_t,
//!   ∂u_t = Δ_t ⟨ḡ_t, B_t⟩,  ∂Δ_t = ⟨ḡ_t ⊙ h_{t−1} ⊙ exp(Δ_t A), A⟩ + u_t ⟨ḡ_t, B_t⟩,
//!   ∂A += Δ_t ḡ_t ⊙ h_{t−1} ⊙ exp(Δ_t A),  ∂B_t = Σ_d Δ_t u_t ḡ_t,  ∂C_t = Σ_d y′_t h_t,
//! and reduce the chunk's per-row ∂B, ∂C over the cube's rows in shared memory (no float
//! atomics, which WGSL lacks). Per-cube partial sums of ∂B, ∂C and per-row ∂A are summed over
//! cubes and batch by tensor ops.

use super::{at3, at4, empty, flagged};
use burn::backend::TensorMetadata;
use burn::backend::cubecl::dtype_to_storage_type;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

/// Row d of A into `av`, and the initial state of row (b, d) into `h` (h0, or zeros).
#[cube]
fn load_row<F: Float>(
    a: &Tensor<F>,
    h0: &Tensor<F>,
    b: usize,
    d: usize,
    has_h0: u32,
    av: &mut Array<F>,
    h: &mut Array<F>,
    #[comptime] n: usize,
) {
    #[unroll]
    for k in 0..n {
        av[k] = a[d * a.stride(0) + k * a.stride(1)];
        h[k] = F::new(0.0);
        if has_h0 == 1 {
            h[k] = h0[at3::<F>(h0, b, d, k)];
        }
    }
}

/// One step of row (b, d) at time t: h ← exp(Δ_t A) ⊙ h + Δ_t u_t B_t (B of group g).
#[cube]
#[allow(clippy::too_many_arguments)]
fn advance<F: Float>(
    h: &mut Array<F>,
    av: &Array<F>,
    u: &Tensor<F>,
    dt: &Tensor<F>,
    bm: &Tensor<F>,
    b: usize,
    d: usize,
    g: usize,
    t: usize,
    #[comptime] n: usize,
) {
    let dtt = dt[at3::<F>(dt, b, d, t)];
    let du = dtt * u[at3::<F>(u, b, d, t)];
    #[unroll]
    for k in 0..n {
        h[k] = (dtt * av[k]).exp() * h[k] + du * bm[at4::<F>(bm, b, g, k, t)];
    }
}

#[cube(launch)]
fn scan_forward_kernel<F: Float>(
    u: &Tensor<F>,        // [B, D, L]
    dt: &Tensor<F>,       // [B, D, L], Δ
    a: &Tensor<F>,        // [D, N]
    bm: &Tensor<F>,       // [B, G, N, L]
    cm: &Tensor<F>,       // [B, G, N, L]
    h0: &Tensor<F>,       // [B, D, N] (read when has_h0 = 1)
    y: &mut Tensor<F>,    // [B, D, L]
    last: &mut Tensor<F>, // [B, D, N]
    has_h0: u32,
    #[comptime] n: usize,
    #[define(F)] _dtype: ElemType,
) {
    let dim = u.shape(1);
    let len = u.shape(2);
    let row = ABSOLUTE_POS;
    if row >= u.shape(0) * dim {
        terminate!();
    }
    let b = row / dim;
    let d = row % dim;
    let g = d / (dim / bm.shape(1));
    let mut h = Array::<F>::new(n);
    let mut av = Array::<F>::new(n);
    load_row::<F>(a, h0, b, d, has_h0, &mut av, &mut h, n);
    for t in 0..len {
        advance::<F>(&mut h, &av, u, dt, bm, b, d, g, t, n);
        let mut acc = F::new(0.0);
        #[unroll]
        for k in 0..n {
            acc += cm[at4::<F>(cm, b, g, k, t)] * h[k];
        }
        y[row * len + t] = acc;
    }
    #[unroll]
    for k in 0..n {
        last[row * n + k] = h[k];
    }
}

/// Inputs of one core-scan call, as CubeCL tensors.
pub struct CoreScan {
    pub u: CubeTensor,
    pub dt: CubeTensor,
    pub a: CubeTensor,
    pub b: CubeTensor,
    pub c: CubeTensor,
    pub h0: Option<CubeTensor>,
}

impl CoreScan {
    fn dims(&self) -> [usize; 5] {
        let [bsz, dim, len] = self.u.shape().dims::<3>();
        let [_, groups, n, _] = self.b.shape().dims::<4>();
        [bsz, dim, len, n, groups]
    }

    /// The h0 argument: the state, or (absent) `u` itself, never read.
    fn h0_arg(&self) -> (CubeTensor, u32) {
        flagged(self.h0.clone(), || self.u.clone())
    }
}

/// Units per cube of the forward kernel.
const ROWS_PER_CUBE: u32 = 64;

/// `(y [B, D, L], last_state [B, D, N])` of the core scan.
pub fn forward(x: CoreScan) -> (CubeTensor, CubeTensor) {
    let [bsz, dim, len, n, _] = x.dims();
    let y = empty(&x.u, vec![bsz, dim, len]);
    let last = empty(&x.u, vec![bsz, dim, n]);
    let rows = (bsz * dim) as u32;
    let (h0, has_h0) = x.h0_arg();
    let dtype = x.u.dtype;
    let client = x.u.client.clone();
    scan_forward_kernel::launch(
        &client,
        CubeCount::Static(rows.div_ceil(ROWS_PER_CUBE), 1, 1),
        CubeDim::new_1d(ROWS_PER_CUBE),
        x.u.into_tensor_arg(),
        x.dt.into_tensor_arg(),
        x.a.into_tensor_arg(),
        x.b.into_tensor_arg(),
        x.c.into_tensor_arg(),
        h0.into_tensor_arg(),
        y.clone().into_tensor_arg(),
        last.clone().into_tensor_arg(),
        has_h0,
        n,
        dtype_to_storage_type(dtype),
    );
    (y, last)
}

/// Chunk length T, chunks per checkpointed segment and rows per cube of the backward kernel:
/// the two shared ∂B, ∂C tiles of `rows · T · N` values stay within 16 KiB (WebGPU's
/// guaranteed workgroup storage); a unit's local arrays hold T·N states and the N-value states
/// at its segment's chunk starts (≤ 256 values each).
fn backward_tiling(n: usize) -> (usize, usize, usize) {
    let t = (2048 / n).clamp(1, 8);
    let per_seg = (256 / n).clamp(1, 8);
    let rows = (2048 / (t * n)).clamp(1, 32);
    (t, per_seg, rows)
}

#[cube(launch)]
fn scan_backward_kernel<F: Float>(
    u: &Tensor<F>,       // [B, D, L]
    dt: &Tensor<F>,      // [B, D, L]
    a: &Tensor<F>,       // [D, N]
    bm: &Tensor<F>,      // [B, G, N, L]
    cm: &Tensor<F>,      // [B, G, N, L]
    h0: &Tensor<F>,      // [B, D, N]
    gy: &Tensor<F>,      // [B, D, L]
    glast: &Tensor<F>,   // [B, D, N]
    ck: &mut Tensor<F>,  // [units, segments, N] scratch: the state at each segment's start
    gu: &mut Tensor<F>,  // [B, D, L]
    gdt: &mut Tensor<F>, // [B, D, L]
    ga: &mut Tensor<F>,  // [B, D, N] per row
    gb: &mut Tensor<F>,  // [B·G, blocks, N, L] per cube
    gc: &mut Tensor<F>,  // [B·G, blocks, N, L] per cube
    gh0: &mut Tensor<F>, // [B, D, N]
    has_h0: u32,
    #[comptime] n: usize,
    #[comptime] chunk: usize,
    #[comptime] per_seg: usize,
    #[comptime] rows: usize,
    #[define(F)] _dtype: ElemType,
) {
    let dim = u.shape(1);
    let len = u.shape(2);
    let groups = bm.shape(1);
    let per_group = dim / groups;
    let blk = CUBE_POS_X as usize;
    let b = CUBE_POS_Y as usize / groups;
    let g = CUBE_POS_Y as usize % groups;
    let r = UNIT_POS_X as usize;
    let in_group = blk * rows + r;
    let valid = in_group < per_group;
    // Units past the group's end mirror its last row and contribute nothing.
    let d = g * per_group + if valid { in_group } else { per_group - 1 };
    let mut live = F::new(0.0);
    if valid {
        live = F::new(1.0);
    }
    let blocks = CUBE_COUNT_X as usize;
    let unit = (CUBE_POS_Y as usize * blocks + blk) * rows + r;
    let row = b * dim + d;
    let seg = chunk * per_seg;
    let segs = len.div_ceil(seg);

    let mut av = Array::<F>::new(n);
    let mut h = Array::<F>::new(n);
    load_row::<F>(a, h0, b, d, has_h0, &mut av, &mut h, n);
    // Forward walk: checkpoint the state at each segment's start.
    for t in 0..len {
        if t % seg == 0 {
            #[unroll]
            for k in 0..n {
                ck[(unit * segs + t / seg) * n + k] = h[k];
            }
        }
        advance::<F>(&mut h, &av, u, dt, bm, b, d, g, t, n);
    }

    let mut gh = Array::<F>::new(n);
    let mut gak = Array::<F>::new(n);
    #[unroll]
    for k in 0..n {
        gh[k] = glast[at3::<F>(glast, b, d, k)];
        gak[k] = F::new(0.0);
    }
    let mut sub = Array::<F>::new(per_seg * n);
    let mut hs = Array::<F>::new(chunk * n);
    let mut sb = Shared::<[F]>::new_slice(rows * chunk * n);
    let mut sc = Shared::<[F]>::new_slice(rows * chunk * n);
    for ss in 0..segs {
        let s0 = (segs - 1 - ss) * seg;
        let seg_steps = if len - s0 < seg { len - s0 } else { seg };
        // The states at the segment's chunk starts, from its checkpoint.
        #[unroll]
        for k in 0..n {
            h[k] = ck[(unit * segs + s0 / seg) * n + k];
        }
        for j in 0..seg_steps {
            if j % chunk == 0 {
                #[unroll]
                for k in 0..n {
                    sub[(j / chunk) * n + k] = h[k];
                }
            }
            advance::<F>(&mut h, &av, u, dt, bm, b, d, g, s0 + j, n);
        }
        let subs = seg_steps.div_ceil(chunk);
        for qq in 0..subs {
            let q = subs - 1 - qq;
            let t0 = s0 + q * chunk;
            let steps = if len - t0 < chunk { len - t0 } else { chunk };
            // Recompute the chunk's states from its start.
            #[unroll]
            for k in 0..n {
                h[k] = sub[q * n + k];
            }
            for j in 0..steps {
                advance::<F>(&mut h, &av, u, dt, bm, b, d, g, t0 + j, n);
                #[unroll]
                for k in 0..n {
                    hs[j * n + k] = h[k];
                }
            }
            // Reverse walk over the chunk.
            for jj in 0..chunk {
                let tile = (r * chunk + (chunk - 1 - jj)) * n;
                if jj < chunk - steps {
                    #[unroll]
                    for k in 0..n {
                        sb[tile + k] = F::new(0.0);
                        sc[tile + k] = F::new(0.0);
                    }
                } else {
                    let j = chunk - 1 - jj;
                    let t = t0 + j;
                    let dtt = dt[at3::<F>(dt, b, d, t)];
                    let ut = u[at3::<F>(u, b, d, t)];
                    let gyt = gy[at3::<F>(gy, b, d, t)];
                    let mut sdt = F::new(0.0);
                    let mut su = F::new(0.0);
                    #[unroll]
                    for k in 0..n {
                        let mut prev = sub[q * n + k];
                        if j > 0 {
                            prev = hs[(j - 1) * n + k];
                        }
                        let bk = bm[at4::<F>(bm, b, g, k, t)];
                        let da = (dtt * av[k]).exp();
                        let ghi = gh[k] + gyt * cm[at4::<F>(cm, b, g, k, t)];
                        let dhp = ghi * prev * da;
                        sdt += dhp * av[k] + ghi * bk * ut;
                        su += ghi * bk;
                        gak[k] += dhp * dtt;
                        sb[tile + k] = live * ghi * dtt * ut;
                        sc[tile + k] = live * gyt * hs[j * n + k];
                        gh[k] = ghi * da;
                    }
                    if valid {
                        gdt[row * len + t] = sdt;
                        gu[row * len + t] = su * dtt;
                    }
                }
            }
            sync_cube();
            // Sum the cube's rows: unit r takes tile entries r, r + rows, …
            let mut e = r;
            while e < chunk * n {
                let j = e / n;
                let k = e % n;
                if j < steps {
                    let mut accb = F::new(0.0);
                    let mut accc = F::new(0.0);
                    for q2 in 0..rows {
                        accb += sb[q2 * chunk * n + e];
                        accc += sc[q2 * chunk * n + e];
                    }
                    let o = ((CUBE_POS_Y as usize * blocks + blk) * n + k) * len + t0 + j;
                    gb[o] = accb;
                    gc[o] = accc;
                }
                e += rows;
            }
            sync_cube();
        }
    }
    if valid {
        #[unroll]
        for k in 0..n {
            ga[row * n + k] = gak[k];
            gh0[row * n + k] = gh[k];
        }
    }
}

/// Gradients of the core scan: `[u, Δ, A, B, C, h0]` given `gy` `[B, D, L]` and `glast`
/// `[B, D, N]`. ∂A `[B, D, N]` and ∂B, ∂C `[B·G, blocks, N, L]` come back unsummed: the
/// caller sums ∂A over batch (dim 0) and ∂B, ∂C over blocks (dim 1).
pub fn backward(x: CoreScan, gy: CubeTensor, glast: CubeTensor) -> [CubeTensor; 6] {
    let [bsz, dim, len, n, groups] = x.dims();
    let (chunk, per_seg, rows) = backward_tiling(n);
    let per_group = dim / groups;
    let blocks = per_group.div_ceil(rows);
    let units = bsz * groups * blocks * rows;
    let ck = empty(&x.u, vec![units, len.div_ceil(chunk * per_seg), n]);
    let gu = empty(&x.u, vec![bsz, dim, len]);
    let gdt = empty(&x.u, vec![bsz, dim, len]);
    let ga = empty(&x.u, vec![bsz, dim, n]);
    let gb = empty(&x.u, vec![bsz * groups, blocks, n, len]);
    let gc = empty(&x.u, vec![bsz * groups, blocks, n, len]);
    let gh0 = empty(&x.u, vec![bsz, dim, n]);
    let (h0, has_h0) = x.h0_arg();
    let dtype = x.u.dtype;
    let client = x.u.client.clone();
    scan_backward_kernel::launch(
        &client,
        CubeCount::Static(blocks as u32, (bsz * groups) as u32, 1),
        CubeDim::new_1d(rows as u32),
        x.u.into_tensor_arg(),
        x.dt.into_tensor_arg(),
        x.a.into_tensor_arg(),
        x.b.into_tensor_arg(),
        x.c.into_tensor_arg(),
        h0.into_tensor_arg(),
        gy.into_tensor_arg(),
        glast.into_tensor_arg(),
        ck.into_tensor_arg(),
        gu.clone().into_tensor_arg(),
        gdt.clone().into_tensor_arg(),
        ga.clone().into_tensor_arg(),
        gb.clone().into_tensor_arg(),
        gc.clone().into_tensor_arg(),
        gh0.clone().into_tensor_arg(),
        has_h0,
        n,
        chunk,
        per_seg,
        rows,
        dtype_to_storage_type(dtype),
    );
    [gu, gdt, ga, gb, gc, gh0]
}
