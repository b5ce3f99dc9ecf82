//! The diagonal linear recurrence h_t = a_t ⊙ h_{t−1} + b_t on CubeCL, over `[B, L, C]` with
//! time on dim 1 (the layout of [`crate::kernels::linear_recurrence`] and of the CPU kernel in
//! `recurrence_cpu.rs`). One unit per (b, c) walks time; neighbouring units read neighbouring
//! channels, so every step's reads are coalesced. With `reverse`, time runs from L − 1 down.
//!
//! Backward (the reverse recurrence, as on the CPU): ḡ_t = ∂h_t + a_{t+1} ḡ_{t+1},
//! ∂b_t = ḡ_t, ∂a_t = ḡ_t h_{t−1} (h_{−1} = h0), ∂h0 = a_0 ḡ_0 — in the direction's own order.
//! Mamba-2's chunked SSD passes its chunk states through this kernel (the intra-chunk terms are
//! burn's CubeCL matmuls), as the Triton `_state_passing_fwd` does.
//!
//! The complex recurrence (LRU, S5, …) is the same walk in complex arithmetic, its backward with
//! conjugates: ḡ_t = ∂h_t + conj(a_{t+1}) ḡ_{t+1}, ∂a_t = ḡ_t conj(h_{t−1}), ∂h0 = conj(a_0) ḡ_0.

use super::{at3, empty, flagged};
use burn::backend::TensorMetadata;
use burn::backend::cubecl::dtype_to_storage_type;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

/// The initial state of channel `c` of batch element `bi`: `h0[bi, c]`, or 0 without one.
#[cube]
fn initial<F: Float>(h0: &Tensor<F>, bi: usize, c: usize, has_h0: u32) -> F {
    let mut v = F::new(0.0);
    if has_h0 == 1 {
        v = h0[bi * h0.stride(0) + c * h0.stride(1)];
    }
    v
}

/// Time index of the `s`-th step.
#[cube]
fn time_of(s: usize, len: usize, reverse: u32) -> usize {
    if reverse == 1 { len - 1 - s } else { s }
}

#[cube(launch)]
fn recurrence_kernel<F: Float>(
    a: &Tensor<F>,     // [B, L, C]
    b: &Tensor<F>,     // [B, L, C]
    h0: &Tensor<F>,    // [B, C] (read when has_h0 = 1)
    h: &mut Tensor<F>, // [B, L, C]
    has_h0: u32,
    reverse: u32,
    #[define(F)] _dtype: ElemType,
) {
    let (len, ch) = (a.shape(1), a.shape(2));
    if ABSOLUTE_POS >= a.shape(0) * ch {
        terminate!();
    }
    let bi = ABSOLUTE_POS / ch;
    let c = ABSOLUTE_POS % ch;
    let mut state = initial::<F>(h0, bi, c, has_h0);
    for s in 0..len {
        let t = time_of(s, len, reverse);
        state = a[at3::<F>(a, bi, t, c)] * state + b[at3::<F>(b, bi, t, c)];
        h[(bi * len + t) * ch + c] = state;
    }
}

#[cube(launch)]
fn recurrence_backward_kernel<F: Float>(
    a: &Tensor<F>,       // [B, L, C]
    h: &Tensor<F>,       // [B, L, C], the forward's output
    h0: &Tensor<F>,      // [B, C]
    gh: &Tensor<F>,      // [B, L, C]
    ga: &mut Tensor<F>,  // [B, L, C]
    gb: &mut Tensor<F>,  // [B, L, C]
    gh0: &mut Tensor<F>, // [B, C]
    has_h0: u32,
    reverse: u32,
    #[define(F)] _dtype: ElemType,
) {
    let (len, ch) = (a.shape(1), a.shape(2));
    if ABSOLUTE_POS >= a.shape(0) * ch {
        terminate!();
    }
    let bi = ABSOLUTE_POS / ch;
    let c = ABSOLUTE_POS % ch;
    let first = initial::<F>(h0, bi, c, has_h0);
    // ḡ carried from step s + 1, already multiplied by a at step s + 1.
    let mut carry = F::new(0.0);
    for ss in 0..len {
        let s = len - 1 - ss;
        let t = time_of(s, len, reverse);
        let g = gh[at3::<F>(gh, bi, t, c)] + carry;
        let mut prev = first;
        if s > 0 {
            prev = h[at3::<F>(h, bi, time_of(s - 1, len, reverse), c)];
        }
        gb[(bi * len + t) * ch + c] = g;
        ga[(bi * len + t) * ch + c] = g * prev;
        carry = g * a[at3::<F>(a, bi, t, c)];
    }
    gh0[ABSOLUTE_POS] = carry;
}

#[cube(launch)]
fn complex_recurrence_kernel<F: Float>(
    a_re: &Tensor<F>,
    a_im: &Tensor<F>,
    b_re: &Tensor<F>,
    b_im: &Tensor<F>,
    h0_re: &Tensor<F>,
    h0_im: &Tensor<F>,
    h_re: &mut Tensor<F>,
    h_im: &mut Tensor<F>,
    has_h0: u32,
    reverse: u32,
    #[define(F)] _dtype: ElemType,
) {
    let (len, ch) = (a_re.shape(1), a_re.shape(2));
    if ABSOLUTE_POS >= a_re.shape(0) * ch {
        terminate!();
    }
    let bi = ABSOLUTE_POS / ch;
    let c = ABSOLUTE_POS % ch;
    let mut sr = initial::<F>(h0_re, bi, c, has_h0);
    let mut si = initial::<F>(h0_im, bi, c, has_h0);
    for s in 0..len {
        let t = time_of(s, len, reverse);
        let (ar, ai) = (a_re[at3::<F>(a_re, bi, t, c)], a_im[at3::<F>(a_im, bi, t, c)]);
        let nr = ar * sr - ai * si + b_re[at3::<F>(b_re, bi, t, c)];
        si = ar * si + ai * sr + b_im[at3::<F>(b_im, bi, t, c)];
        sr = nr;
        let o = (bi * len + t) * ch + c;
        h_re[o] = sr;
        h_im[o] = si;
    }
}

#[cube(launch)]
fn complex_recurrence_backward_kernel<F: Float>(
    a_re: &Tensor<F>,
    a_im: &Tensor<F>,
    h_re: &Tensor<F>,
    h_im: &Tensor<F>,
    h0_re: &Tensor<F>,
    h0_im: &Tensor<F>,
    g_re: &Tensor<F>,
    g_im: &Tensor<F>,
    ga_re: &mut Tensor<F>,
    ga_im: &mut Tensor<F>,
    gb_re: &mut Tensor<F>,
    gb_im: &mut Tensor<F>,
    gh0_re: &mut Tensor<F>,
    gh0_im: &mut Tensor<F>,
    has_h0: u32,
    reverse: u32,
    #[define(F)] _dtype: ElemType,
) {
    let (len, ch) = (a_re.shape(1), a_re.shape(2));
    if ABSOLUTE_POS >= a_re.shape(0) * ch {
        terminate!();
    }
    let bi = ABSOLUTE_POS / ch;
    let c = ABSOLUTE_POS % ch;
    let (fr, fi) = (initial::<F>(h0_re, bi, c, has_h0), initial::<F>(h0_im, bi, c, has_h0));
    // conj(a_{s+1}) ḡ_{s+1}, carried down from the step after.
    let mut cr = F::new(0.0);
    let mut ci = F::new(0.0);
    for ss in 0..len {
        let s = len - 1 - ss;
        let t = time_of(s, len, reverse);
        let xr = g_re[at3::<F>(g_re, bi, t, c)] + cr;
        let xi = g_im[at3::<F>(g_im, bi, t, c)] + ci;
        let mut pr = fr;
        let mut pi = fi;
        if s > 0 {
            let tp = time_of(s - 1, len, reverse);
            pr = h_re[at3::<F>(h_re, bi, tp, c)];
            pi = h_im[at3::<F>(h_im, bi, tp, c)];
        }
        let o = (bi * len + t) * ch + c;
        gb_re[o] = xr;
        gb_im[o] = xi;
        ga_re[o] = xr * pr + xi * pi;
        ga_im[o] = xi * pr - xr * pi;
        let (ar, ai) = (a_re[at3::<F>(a_re, bi, t, c)], a_im[at3::<F>(a_im, bi, t, c)]);
        cr = ar * xr + ai * xi;
        ci = ar * xi - ai * xr;
    }
    gh0_re[ABSOLUTE_POS] = cr;
    gh0_im[ABSOLUTE_POS] = ci;
}

fn empty_like(t: &CubeTensor) -> CubeTensor {
    empty(t, t.shape().to_vec())
}

const UNITS_PER_CUBE: u32 = 64;

fn grid(a: &CubeTensor) -> (CubeCount, CubeDim) {
    let [bsz, _, ch] = a.shape().dims::<3>();
    let units = (bsz * ch) as u32;
    (CubeCount::Static(units.div_ceil(UNITS_PER_CUBE), 1, 1), CubeDim::new_1d(UNITS_PER_CUBE))
}

/// All h_t `[B, L, C]`; `h0` `[B, C]` or none (zero).
pub fn forward(a: CubeTensor, b: CubeTensor, h0: Option<CubeTensor>, reverse: bool) -> CubeTensor {
    let h = empty_like(&a);
    let (count, dim) = grid(&a);
    let (h0, has_h0) = flagged(h0, || a.clone());
    let (client, dtype) = (a.client.clone(), a.dtype);
    recurrence_kernel::launch(
        &client,
        count,
        dim,
        a.into_tensor_arg(),
        b.into_tensor_arg(),
        h0.into_tensor_arg(),
        h.clone().into_tensor_arg(),
        has_h0,
        reverse as u32,
        dtype_to_storage_type(dtype),
    );
    h
}

/// Gradients `[a, b, h0]` given the forward's output `h` and its gradient `gh`.
pub fn backward(
    a: CubeTensor,
    h: CubeTensor,
    h0: Option<CubeTensor>,
    gh: CubeTensor,
    reverse: bool,
) -> [CubeTensor; 3] {
    let [bsz, _, ch] = a.shape().dims::<3>();
    let (ga, gb) = (empty_like(&a), empty_like(&a));
    let gh0 = empty(&a, vec![bsz, ch]);
    let (count, dim) = grid(&a);
    let (h0, has_h0) = flagged(h0, || a.clone());
    let (client, dtype) = (a.client.clone(), a.dtype);
    recurrence_backward_kernel::launch(
        &client,
        count,
        dim,
        a.into_tensor_arg(),
        h.into_tensor_arg(),
        h0.into_tensor_arg(),
        gh.into_tensor_arg(),
        ga.clone().into_tensor_arg(),
        gb.clone().into_tensor_arg(),
        gh0.clone().into_tensor_arg(),
        has_h0,
        reverse as u32,
        dtype_to_storage_type(dtype),
    );
    [ga, gb, gh0]
}

/// A complex tensor as its (re, im) parts.
pub type Parts = (CubeTensor, CubeTensor);

/// All h_t of the complex recurrence; `h0` `[B, C]` or none (zero).
pub fn forward_complex(a: Parts, b: Parts, h0: Option<Parts>, reverse: bool) -> Parts {
    let (h_re, h_im) = (empty_like(&a.0), empty_like(&a.0));
    let (count, dim) = grid(&a.0);
    let ((h0_re, h0_im), has_h0) = flagged(h0, || a.clone());
    let (client, dtype) = (a.0.client.clone(), a.0.dtype);
    complex_recurrence_kernel::launch(
        &client,
        count,
        dim,
        a.0.into_tensor_arg(),
        a.1.into_tensor_arg(),
        b.0.into_tensor_arg(),
        b.1.into_tensor_arg(),
        h0_re.into_tensor_arg(),
        h0_im.into_tensor_arg(),
        h_re.clone().into_tensor_arg(),
        h_im.clone().into_tensor_arg(),
        has_h0,
        reverse as u32,
        dtype_to_storage_type(dtype),
    );
    (h_re, h_im)
}

/// Gradients `[a_re, a_im, b_re, b_im, h0_re, h0_im]` of the complex recurrence.
pub fn backward_complex(a: Parts, h: Parts, h0: Option<Parts>, g: Parts, reverse: bool) -> [CubeTensor; 6] {
    let [bsz, _, ch] = a.0.shape().dims::<3>();
    let like = || empty_like(&a.0);
    let state = || empty(&a.0, vec![bsz, ch]);
    let out = [like(), like(), like(), like(), state(), state()];
    let (count, dim) = grid(&a.0);
    let ((h0_re, h0_im), has_h0) = flagged(h0, || a.clone());
    let (client, dtype) = (a.0.client.clone(), a.0.dtype);
    let arg = |i: usize| out[i].clone().into_tensor_arg();
    complex_recurrence_backward_kernel::launch(
        &client,
        count,
        dim,
        a.0.into_tensor_arg(),
        a.1.into_tensor_arg(),
        h.0.into_tensor_arg(),
        h.1.into_tensor_arg(),
        h0_re.into_tensor_arg(),
        h0_im.into_tensor_arg(),
        g.0.into_tensor_arg(),
        g.1.into_tensor_arg(),
        arg(0),
        arg(1),
        arg(2),
        arg(3),
        arg(4),
        arg(5),
        has_h0,
        reverse as u32,
        dtype_to_storage_type(dtype),
    );
    out
}
