//! Long convolutions with the FFT written as matrix multiplications, as FlashFFTConv does (Fu,
//! Kuang, Spector, Dao, Ré et al., "FlashFFTConv: Efficient Convolutions for Long Sequences with
//! Tensor Cores", 2023, §3.1 — the Monarch / Cooley–Tukey decomposition), in burn tensor ops (so
//! autodiff differentiates it):
//!
//! ```text
//! N = N₁N₂,  n = N₂n₁ + n₂,  k = k₁ + N₁k₂,  ω = e^{−2πi/N}
//! X[k₁ + N₁k₂] = Σ_{n₂} ω_{N₂}^{n₂k₂} · ω^{n₂k₁} · Σ_{n₁} ω_{N₁}^{n₁k₁} x[N₂n₁ + n₂]
//!              = ((F_{N₁} X₀) ⊙ T) F_{N₂}          X₀ = x as an N₁ × N₂ matrix, T the twiddles
//! ```
//!
//! two GEMMs with the twiddles between them. The spectrum stays in the (k₁, k₂) layout — the
//! convolution multiplies spectra point-wise and the inverse runs the same steps backwards
//! (conjugate matrices, conjugate twiddles, 1/N), so no transposition is ever needed.
//! `ssm-kernels --fft-sweep` times it beside the rustfft kernel (`kernels::causal_conv`), which
//! stays the default: on this CPU the GEMM form does O(N√N) work against the FFT's O(N log N)
//! and loses at every length measured (see README).

use crate::complex::ComplexTensor;
use burn::tensor::{DType, Device, Int, Tensor};
use std::f64::consts::PI;

/// (N₁, N₂) with N₁ N₂ = N (a power of two) and N₁ ≥ N₂ as close as possible.
fn split(n: usize) -> (usize, usize) {
    assert!(n.is_power_of_two(), "monarch FFT: length {n} is not a power of two");
    let bits = n.trailing_zeros();
    let n1 = 1usize << bits.div_ceil(2);
    (n1, n / n1)
}

/// e^{sign·2πi·a·b/n} for a < rows, b < cols, as a `[rows, cols]` complex matrix.
fn phases(rows: usize, cols: usize, n: usize, sign: f64, device: &Device, dtype: DType) -> ComplexTensor<2> {
    let a = Tensor::<1, Int>::arange(0..rows as i64, device).reshape([rows, 1]);
    let b = Tensor::<1, Int>::arange(0..cols as i64, device).reshape([1, cols]);
    let ab = (a * b).remainder_scalar(n as i64).float().cast(dtype);
    let angle = ab.mul_scalar(sign * 2.0 * PI / n as f64);
    ComplexTensor::new(angle.clone().cos(), angle.sin())
}

/// The DFT matrices and twiddles of one length.
struct Plan {
    n: usize,
    n1: usize,
    n2: usize,
    f1: ComplexTensor<3>,
    t: ComplexTensor<3>,
    f2: ComplexTensor<3>,
}

impl Plan {
    fn new(n: usize, inverse: bool, device: &Device, dtype: DType) -> Self {
        let (n1, n2) = split(n);
        let s = if inverse { 1.0 } else { -1.0 };
        Plan {
            n,
            n1,
            n2,
            f1: phases(n1, n1, n1, s, device, dtype).unsqueeze_dim(0),
            t: phases(n1, n2, n, s, device, dtype).unsqueeze_dim(0),
            f2: phases(n2, n2, n2, s, device, dtype).unsqueeze_dim(0),
        }
    }

    /// Forward transform of real rows `[R, N]` → spectrum `[R, N₁, N₂]` in (k₁, k₂) layout.
    fn forward(&self, x: Tensor<2>) -> ComplexTensor<3> {
        let r = x.dims()[0];
        let x0 = x.reshape([r, self.n1, self.n2]); // [n₁, n₂]
        // F_{N₁} X₀ with a real X₀: two real products
        let a = ComplexTensor::new(self.f1.re.clone().matmul(x0.clone()), self.f1.im.clone().matmul(x0));
        (a * self.t.clone()).matmul(self.f2.clone())
    }

    /// Inverse of [`Plan::forward`] (this plan built with `inverse`), real part, `[R, N]`.
    fn inverse_real(&self, y: ComplexTensor<3>) -> Tensor<2> {
        let r = y.dims()[0];
        let b = y.matmul(self.f2.clone()) * self.t.clone(); // [k₁, n₂]
        let x = self.f1.clone().matmul(b); // [n₁, n₂]
        x.re.reshape([r, self.n]).div_scalar(self.n as f64)
    }
}

/// Causal convolution y = k ∗ u of `u` `[B, H, L]` with `k` `[H, Lk]` (the same result as
/// [`crate::kernels::causal_conv`]), by the GEMM form of the FFT.
pub fn monarch_causal_conv(u: Tensor<3>, k: Tensor<2>) -> Tensor<3> {
    let [b, h, l] = u.dims();
    let lk = k.dims()[1];
    assert_eq!(k.dims()[0], h, "monarch_causal_conv: k {:?} must be [H, Lk] for u {:?}", k.dims(), u.dims());
    let n = (l + lk).next_power_of_two().max(4);
    let (device, dtype) = (u.device(), u.dtype());
    let fwd = Plan::new(n, false, &device, dtype);
    let pad = |t: Tensor<2>, len: usize| {
        let rows = t.dims()[0];
        Tensor::cat(vec![t, Tensor::<2>::zeros([rows, n - len], &device).cast(dtype)], 1)
    };
    let uf = fwd.forward(pad(u.reshape([b * h, l]), l)); // [B·H, N₁, N₂]
    let kf = fwd.forward(pad(k, lk)); // [H, N₁, N₂]
    let (n1, n2) = (fwd.n1, fwd.n2);
    let prod = uf.reshape([b, h, n1, n2]) * kf.unsqueeze_dim::<4>(0);
    let y = Plan::new(n, true, &device, dtype).inverse_real(prod.reshape([b * h, n1, n2]));
    y.narrow(1, 0, l).reshape([b, h, l])
}
