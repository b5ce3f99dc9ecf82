//! Rotary position embedding (Su et al., "RoFormer", 2021) in the GPT-NeoX layout: the last
//! dimension's two halves (x₁, x₂) rotated by angle p·θ_j, θ_j = base^{−2j/d}, for positions p
//! along the second-to-last dimension.

use burn::tensor::{Int, Tensor};

/// Rotates `x` `[…, L, d]` (d even) for positions `offset .. offset + L`.
pub fn rotary<const D: usize>(x: Tensor<D>, offset: usize, base: f64) -> Tensor<D> {
    let dims = x.dims();
    let (l, d) = (dims[D - 2], dims[D - 1]);
    let half = d / 2;
    let device = x.device();
    let pos = Tensor::<1, Int>::arange(offset as i64..(offset + l) as i64, &device).float().reshape([l, 1]);
    let inv = Tensor::<1, Int>::arange(0..half as i64, &device)
        .float()
        .mul_scalar(-2.0 * base.ln() / d as f64)
        .exp()
        .reshape([1, half]);
    let ang: Tensor<D> = (pos * inv).cast(x.dtype()).unsqueeze::<D>(); // [1, …, L, half]
    let (cos, sin) = (ang.clone().cos(), ang.sin());
    let x1 = x.clone().narrow(D - 1, 0, half);
    let x2 = x.narrow(D - 1, half, half);
    Tensor::cat(vec![x1.clone() * cos.clone() - x2.clone() * sin.clone(), x1 * sin + x2 * cos], D - 1)
}
