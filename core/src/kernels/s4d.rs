//! The S4D diagonal convolution kernel (Gu et al., "On the Parameterization and Initialization
//! of Diagonal State Space Models", s4d.py), zero-order hold:
//!
//!   Δ = exp(log_dt),  dtA = Δ·A,  C' = C · (exp(dtA) − 1) / A,
//!   K[h, l] = 2 · Re( Σ_n C'[h,n] · exp(dtA[h,n] · l) ),   l = 0 … L−1,
//!
//! for the N/2 eigenvalues A of one member of each conjugate pair (hence the factor 2).
//! The S4D layer is then y = causal_conv(u, K) + D ⊙ u.

use crate::complex::ComplexTensor;
use burn::tensor::{Int, Tensor};
use std::ops::{Div, Mul};

/// S4D kernel `[H, L]` from `log_dt` `[H]`, A = a_re + i a_im `[H, N]` and C = c_re + i c_im `[H, N]`.
pub fn s4d_kernel(log_dt: Tensor<1>, a: ComplexTensor<2>, c: ComplexTensor<2>, len: usize) -> Tensor<2> {
    let [h, n] = a.dims();
    assert_eq!(log_dt.dims(), [h], "s4d_kernel: log_dt {:?} must be [H] for A {:?}", log_dt.dims(), a.dims());
    assert_eq!(c.dims(), [h, n], "s4d_kernel: C {:?} must match A {:?}", c.dims(), a.dims());
    let dt: Tensor<2> = log_dt.exp().unsqueeze_dim(1);
    let dta = a.clone().mul_real(dt);
    let c_prime = c.mul(dta.clone().exp().add_scalar(-1.0)).div(a);
    vandermonde(c_prime.unsqueeze_dim(1), &dta, len, 0).reshape([h, len]).mul_scalar(2.0)
}

/// Re Σ_n w[h, m, n] · e^{dtA[h, n] (l + offset)} for l = 0 … len−1, `[H, M, len]`: the
/// Vandermonde product as a batched GEMM. With l + offset = i·L₂ + j + offset,
/// e^{dtA (l + offset)} = e^{dtA (i L₂ + offset)} · e^{dtA j}, so the sum is
/// Re Σ_n (w e^{dtA (i L₂ + offset)})[h, (m, i), n] · e^{dtA j}[h, n, j]: only O(H N √L)
/// exponentials and no [H, N, L] temporaries.
pub fn vandermonde(w: ComplexTensor<3>, dta: &ComplexTensor<2>, len: usize, offset: usize) -> Tensor<3> {
    let [h, m, n] = w.dims();
    let l2 = (len as f64).sqrt().ceil().max(1.0) as usize;
    let l1 = len.div_ceil(l2);
    let starts = exp_steps(dta, l1, l2 as f64, offset as f64).swap_dims(1, 2).unsqueeze_dim::<4>(1); // [H, 1, L₁, N]
    let coarse = (w.unsqueeze_dim::<4>(2) * starts).reshape([h, m * l1, n]);
    let fine = exp_steps(dta, l2, 1.0, 0.0); // [H, N, L₂]
    let k = coarse.re.matmul(fine.re) - coarse.im.matmul(fine.im); // [H, M·L₁, L₂]
    k.reshape([h, m, l1 * l2]).narrow(2, 0, len)
}

/// e^{dtA · (s · i + offset)} for i = 0 … count−1, `[H, N, count]`.
fn exp_steps(dta: &ComplexTensor<2>, count: usize, s: f64, offset: f64) -> ComplexTensor<3> {
    let steps: Tensor<3> = Tensor::<1, Int>::arange(0..count as i64, &dta.re.device())
        .float()
        .cast(dta.re.dtype())
        .mul_scalar(s)
        .add_scalar(offset)
        .reshape([1, 1, count]);
    dta.clone().unsqueeze_dim::<3>(2).mul_real(steps).exp()
}

/// The S4D convolution y = K ∗ u + D u for u `[B, H, L]`.
pub fn s4d_conv(u: Tensor<3>, kernel: Tensor<2>, d: Tensor<1>) -> Tensor<3> {
    let h = kernel.dims()[0];
    super::causal_conv(u.clone(), kernel) + u * d.reshape([1, h, 1])
}
