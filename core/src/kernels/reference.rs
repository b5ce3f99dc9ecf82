//! Reference implementations in ordinary burn tensor ops: the oracle for the kernel tests and
//! the path taken on backends without a custom kernel (CUDA, Vulkan). Differentiable through
//! burn's own autodiff. Scans use the Hillis–Steele doubling form (log₂ L steps of O(L) tensor
//! ops, never a per-timestep slice loop), at the cost of materialising `[B, D, L, N]`.

use super::conv_cpu::DIRECT_MAX_TAPS;
use super::{ConvArgs, ScanArgs, ScanOutput};
use crate::complex::ComplexTensor;
use burn::tensor::Tensor;
use burn::tensor::activation::{silu, softplus};
use std::ops::{Add, Mul};

/// Inclusive scan of h_t = a_t h_{t-1} + b_t along `dim` (h_{-1} = 0).
pub fn scan_real<const D: usize>(mut a: Tensor<D>, mut b: Tensor<D>, dim: usize) -> Tensor<D> {
    let l = a.dims()[dim];
    let mut k = 1;
    while k < l {
        let (a_prev, b_prev) = (a.clone().narrow(dim, 0, l - k), b.clone().narrow(dim, 0, l - k));
        let (a_head, b_head) = (a.clone().narrow(dim, 0, k), b.clone().narrow(dim, 0, k));
        let (a_tail, b_tail) = (a.narrow(dim, k, l - k), b.narrow(dim, k, l - k));
        b = Tensor::cat(vec![b_head, a_tail.clone() * b_prev + b_tail], dim);
        a = Tensor::cat(vec![a_head, a_tail * a_prev], dim);
        k *= 2;
    }
    b
}

/// Complex version of [`scan_real`].
pub fn scan_complex<const D: usize>(mut a: ComplexTensor<D>, mut b: ComplexTensor<D>, dim: usize) -> ComplexTensor<D> {
    let l = a.dims()[dim];
    let mut k = 1;
    while k < l {
        let (a_prev, b_prev) = (a.clone().narrow(dim, 0, l - k), b.clone().narrow(dim, 0, l - k));
        let (a_head, b_head) = (a.clone().narrow(dim, 0, k), b.clone().narrow(dim, 0, k));
        let (a_tail, b_tail) = (a.narrow(dim, k, l - k), b.narrow(dim, k, l - k));
        let nb = a_tail.clone().mul(b_prev).add(b_tail);
        let na = a_tail.mul(a_prev);
        b = ComplexTensor::new(Tensor::cat(vec![b_head.re, nb.re], dim), Tensor::cat(vec![b_head.im, nb.im], dim));
        a = ComplexTensor::new(Tensor::cat(vec![a_head.re, na.re], dim), Tensor::cat(vec![a_head.im, na.im], dim));
        k *= 2;
    }
    b
}

/// Adds a_0 · h0 to b_0 (the initial state's contribution), along `dim` = 1 of `[B, L, C]`.
fn with_initial(a: &Tensor<3>, b: Tensor<3>, h0: Option<Tensor<2>>) -> Tensor<3> {
    match h0 {
        None => b,
        Some(h0) => {
            let l = b.dims()[1];
            let first = b.clone().narrow(1, 0, 1) + a.clone().narrow(1, 0, 1) * h0.unsqueeze_dim(1);
            if l == 1 { first } else { Tensor::cat(vec![first, b.narrow(1, 1, l - 1)], 1) }
        }
    }
}

/// The scan's Δ: `delta + delta_bias`, through softplus when asked.
pub fn scan_delta(delta: Tensor<3>, bias: Option<Tensor<1>>, softplus_on: bool) -> Tensor<3> {
    let d = delta.dims()[1];
    let delta = match bias {
        Some(bias) => delta + bias.reshape([1, d, 1]),
        None => delta,
    };
    if softplus_on { softplus(delta, 1.0) } else { delta }
}

/// The scan's output from the state read-out y = ⟨C, h⟩: `(y + D u) · silu(z)`.
pub fn scan_output(y: Tensor<3>, u: Tensor<3>, skip: Option<Tensor<1>>, z: Option<Tensor<3>>) -> Tensor<3> {
    let d = u.dims()[1];
    let y = match skip {
        Some(dv) => y + u * dv.reshape([1, d, 1]),
        None => y,
    };
    match z {
        Some(z) => y * silu(z),
        None => y,
    }
}

/// Reference selective scan (see [`super::selective_scan`]).
pub fn selective_scan(x: ScanArgs) -> ScanOutput {
    let [bsz, d, l] = x.u.dims();
    let [_, g, n, _] = x.b.dims();
    let delta = scan_delta(x.delta, x.delta_bias, x.delta_softplus);
    // [B, G, N, L] → per channel [B, D, L, N]
    let per_channel = |t: Tensor<4>| -> Tensor<4> {
        t.unsqueeze_dim::<5>(2).repeat_dim(2, d / g).reshape([bsz, d, n, l]).swap_dims(2, 3)
    };
    let (bm, cm) = (per_channel(x.b), per_channel(x.c));
    let dl: Tensor<4> = delta.unsqueeze_dim(3);
    let da = (dl.clone() * x.a.reshape([1, d, 1, n])).exp();
    let dbu = dl * x.u.clone().unsqueeze_dim(3) * bm;
    // Fold in the initial state: flatten (B, D) → rows, time on dim 1.
    let da3 = da.clone().reshape([bsz * d, l, n]);
    let dbu3 = with_initial(&da3, dbu.reshape([bsz * d, l, n]), x.h0.map(|h| h.reshape([bsz * d, n])));
    let h = scan_real(da3, dbu3, 1).reshape([bsz, d, l, n]);
    let y: Tensor<3> = (h.clone() * cm).sum_dim(3).squeeze_dim(3);
    let y = scan_output(y, x.u, x.d, x.z);
    let last = h.narrow(2, l - 1, 1).squeeze_dim(2);
    ScanOutput { y, last_state: last }
}

/// Reference real recurrence over `[B, L, C]`.
pub fn linear_recurrence(a: Tensor<3>, b: Tensor<3>, h0: Option<Tensor<2>>, reverse: bool) -> Tensor<3> {
    let (a, b) = if reverse { (a.flip([1]), b.flip([1])) } else { (a, b) };
    let b = with_initial(&a, b, h0);
    let h = scan_real(a, b, 1);
    if reverse { h.flip([1]) } else { h }
}

/// Reference complex recurrence over `[B, L, C]`.
pub fn linear_recurrence_complex(
    a: ComplexTensor<3>,
    b: ComplexTensor<3>,
    h0: Option<ComplexTensor<2>>,
    reverse: bool,
) -> ComplexTensor<3> {
    let flip = |t: ComplexTensor<3>| ComplexTensor::new(t.re.flip([1]), t.im.flip([1]));
    let (a, b) = if reverse { (flip(a), flip(b)) } else { (a, b) };
    let b = match h0 {
        None => b,
        Some(h0) => {
            let l = b.dims()[1];
            let first = b.clone().narrow(1, 0, 1).add(a.clone().narrow(1, 0, 1).mul(h0.unsqueeze_dim(1)));
            if l == 1 {
                first
            } else {
                let rest = b.narrow(1, 1, l - 1);
                ComplexTensor::new(Tensor::cat(vec![first.re, rest.re], 1), Tensor::cat(vec![first.im, rest.im], 1))
            }
        }
    };
    let h = scan_complex(a, b, 1);
    if reverse { flip(h) } else { h }
}

/// Reference WKV, `[B, L + 3, C]` as the kernel: the two sums as real recurrences on
/// exponents shifted by m = max(max_t k_t, p₀) per sequence and channel (detached; the ratio
/// does not depend on it). Exact unless k spans more than ~80 within one sequence (f32 range).
pub fn wkv(w: Tensor<1>, u: Tensor<1>, k: Tensor<3>, v: Tensor<3>, s0: Option<Tensor<3>>) -> Tensor<3> {
    let [b, l, c] = k.dims();
    let mut m = k.clone().max_dim(1).detach(); // [B, 1, C]
    if let Some(s) = &s0 {
        m = m.max_pair(s.clone().narrow(1, 2, 1).detach());
    }
    let decay = w.neg().exp().reshape([1, 1, c]).expand([b, l, c]);
    let ek = (k.clone() - m.clone()).exp();
    let (h_num, h_den) = match &s0 {
        Some(s) => {
            let scale = (s.clone().narrow(1, 2, 1) - m.clone()).exp();
            let at = |r: usize| (s.clone().narrow(1, r, 1) * scale.clone()).reshape([b, c]);
            (Some(at(0)), Some(at(1)))
        }
        None => (None, None),
    };
    let num = linear_recurrence(decay.clone(), ek.clone() * v.clone(), h_num.clone(), false);
    let den = linear_recurrence(decay, ek, h_den.clone(), false);
    let device = k.device();
    let zero = || Tensor::zeros([b, 1, c], &device);
    let prev = |h: Tensor<3>, h0: Option<Tensor<2>>| {
        let first = h0.map_or_else(zero, |h| h.unsqueeze_dim(1));
        if l == 1 { first } else { Tensor::cat(vec![first, h.narrow(1, 0, l - 1)], 1) }
    };
    let bonus = (k + u.reshape([1, 1, c]) - m.clone()).exp();
    let y = (prev(num.clone(), h_num) + bonus.clone() * v) / (prev(den.clone(), h_den) + bonus);
    let last = |h: Tensor<3>| h.narrow(1, l - 1, 1);
    Tensor::cat(vec![y, last(num), last(den), m], 1)
}

/// Reference causal convolution by burn-signal's differentiable rfft/irfft (power-of-two size),
/// or for kernels of at most [`DIRECT_MAX_TAPS`] taps as Lk shifted multiply-adds.
pub fn causal_conv(x: ConvArgs) -> Tensor<3> {
    let [b, h, l] = x.u.dims();
    let lk = x.k.dims()[1];
    if lk <= DIRECT_MAX_TAPS {
        // y[t] = Σ_j k[j] u[t − j] over u left-padded with Lk − 1 zeros.
        let zeros = Tensor::<3>::zeros([b, h, lk - 1], &x.u.device()).cast(x.u.dtype());
        let padded = Tensor::cat(vec![zeros, x.u], 2);
        let tap = |j: usize| padded.clone().narrow(2, lk - 1 - j, l) * x.k.clone().narrow(1, j, 1).unsqueeze_dim(0);
        return (1..lk).fold(tap(0), |y, j| y + tap(j));
    }
    let n = (l + lk).next_power_of_two();
    let (ur, ui) = burn::signal::rfft(x.u, 2, Some(n));
    let (kr, ki) = burn::signal::rfft(x.k.unsqueeze_dim::<3>(0), 2, Some(n));
    let yr = ur.clone() * kr.clone() - ui.clone() * ki.clone();
    let yi = ur * ki + ui * kr;
    burn::signal::irfft(yr, yi, 2, Some(n)).narrow(2, 0, l)
}
