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
    let device = dta.re.device();
    let steps: Tensor<3> =
        Tensor::<1, Int>::arange(0..len as i64, &device).float().cast(dta.re.dtype()).reshape([1, 1, len]);
    let powers = dta.unsqueeze_dim::<3>(2).mul_real(steps).exp(); // [H, N, L]
    let k = c_prime.unsqueeze_dim::<3>(2).mul(powers).sum_dim(1); // [H, 1, L]
    k.re.squeeze_dim::<2>(1).mul_scalar(2.0)
}

/// The S4D convolution y = K ∗ u + D u for u `[B, H, L]`.
pub fn s4d_conv(u: Tensor<3>, kernel: Tensor<2>, d: Tensor<1>) -> Tensor<3> {
    let h = kernel.dims()[0];
    super::causal_conv(u.clone(), kernel) + u * d.reshape([1, h, 1])
}
