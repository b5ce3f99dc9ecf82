//! Single-step (recurrent) forms for O(1)-per-token inference: one token in, one state update.

use crate::complex::ComplexTensor;
use burn::tensor::Tensor;
use burn::tensor::activation::{silu, softplus};
use std::ops::{Add, Mul};

/// Per-token inputs of the selective scan: `u`, `delta`, `z` `[B, D]`; `b`, `c` `[B, G, N]`.
#[derive(Debug, Clone)]
pub struct ScanStepInput {
    pub u: Tensor<2>,
    pub delta: Tensor<2>,
    pub b: Tensor<3>,
    pub c: Tensor<3>,
    pub z: Option<Tensor<2>>,
}

/// Per-layer parameters of the selective scan: `a` `[D, N]`, `d`, `delta_bias` `[D]`.
#[derive(Debug, Clone)]
pub struct ScanParams {
    pub a: Tensor<2>,
    pub d: Option<Tensor<1>>,
    pub delta_bias: Option<Tensor<1>>,
    pub delta_softplus: bool,
}

/// One selective-scan step from `state` `[B, D, N]`; returns (out `[B, D]`, new state).
pub fn selective_scan_step(state: Tensor<3>, x: ScanStepInput, p: &ScanParams) -> (Tensor<2>, Tensor<3>) {
    let [bsz, d, n] = state.dims();
    let g = x.b.dims()[1];
    assert_eq!(
        x.u.dims(),
        [bsz, d],
        "selective_scan_step: u {:?} must be [B, D] for state {:?}",
        x.u.dims(),
        [bsz, d, n]
    );
    assert_eq!(x.delta.dims(), [bsz, d], "selective_scan_step: delta {:?} must be [B, D]", x.delta.dims());
    assert_eq!(x.b.dims(), [bsz, g, n], "selective_scan_step: B {:?} must be [B, G, N]", x.b.dims());
    assert_eq!(x.c.dims(), [bsz, g, n], "selective_scan_step: C {:?} must be [B, G, N]", x.c.dims());
    assert_eq!(p.a.dims(), [d, n], "selective_scan_step: A {:?} must be [D, N]", p.a.dims());
    let mut delta = x.delta;
    if let Some(bias) = &p.delta_bias {
        delta = delta + bias.clone().reshape([1, d]);
    }
    if p.delta_softplus {
        delta = softplus(delta, 1.0);
    }
    let per_channel = |t: Tensor<3>| -> Tensor<3> { t.unsqueeze_dim::<4>(2).repeat_dim(2, d / g).reshape([bsz, d, n]) };
    let (bm, cm) = (per_channel(x.b), per_channel(x.c));
    let dl: Tensor<3> = delta.unsqueeze_dim(2);
    let da = (dl.clone() * p.a.clone().unsqueeze_dim(0)).exp();
    let state = da * state + dl * x.u.clone().unsqueeze_dim(2) * bm;
    let mut y: Tensor<2> = (state.clone() * cm).sum_dim(2).squeeze_dim(2);
    if let Some(dv) = &p.d {
        y = y + x.u * dv.clone().reshape([1, d]);
    }
    if let Some(z) = x.z {
        y = y * silu(z);
    }
    (y, state)
}

/// One step of h = a ⊙ h + b, all `[B, C]`.
pub fn linear_recurrence_step(h: Tensor<2>, a: Tensor<2>, b: Tensor<2>) -> Tensor<2> {
    assert_eq!(h.dims(), a.dims(), "linear_recurrence_step: h {:?} and a {:?} differ", h.dims(), a.dims());
    assert_eq!(h.dims(), b.dims(), "linear_recurrence_step: h {:?} and b {:?} differ", h.dims(), b.dims());
    a * h + b
}

/// One complex step of h = a ⊙ h + b, all `[B, C]`.
pub fn linear_recurrence_complex_step(
    h: ComplexTensor<2>,
    a: ComplexTensor<2>,
    b: ComplexTensor<2>,
) -> ComplexTensor<2> {
    assert_eq!(h.dims(), a.dims(), "linear_recurrence_complex_step: h {:?} and a {:?} differ", h.dims(), a.dims());
    a.mul(h).add(b)
}
