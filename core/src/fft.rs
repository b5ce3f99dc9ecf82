//! Differentiable multi-dimensional Fourier transforms built on burn-signal's `rfft` / `cfft` /
//! `irfft` (all with autodiff), for S4ND's N-D convolutions and SiMBA's EinFFT.
//!
//! * [`dft`] / [`idft`]: the complex DFT `X[k] = Σ_n x[n] e^{−2πikn/N}` along one dimension of any
//!   length — burn-signal's FFT for powers of two, a DFT-matrix product otherwise (the token
//!   counts of vision models, e.g. 49 = 7×7, are rarely powers of two; at those sizes the matrix
//!   product is exact and cheap).
//! * [`fft_conv_nd`]: `y = k ⊛ u` over the trailing axes of `u` by N-D FFT, with the kernel given
//!   in circular layout (lag `m` at index `m mod Nᵢ`, negative lags at the end), so the
//!   convolution is linear when `Nᵢ ≥ 2·Xᵢ − 1`.

use burn::signal::{cfft, irfft, rfft};
use burn::tensor::{Int, Tensor};
use std::f64::consts::PI;

/// The DFT (`inverse = false`) or unnormalised inverse DFT (`inverse = true`, no 1/N) matrix
/// `[N, N]` as (re, im), laid out so that `x · M` transforms the last dimension.
fn dft_matrix(
    n: usize,
    inverse: bool,
    device: &burn::tensor::Device,
    dtype: burn::tensor::DType,
) -> (Tensor<2>, Tensor<2>) {
    let idx = Tensor::<1, Int>::arange(0..n as i64, device);
    let kn = idx.clone().reshape([n, 1]).mul(idx.reshape([1, n])).remainder_scalar(n as i64).float().cast(dtype);
    let angle = kn.mul_scalar(if inverse { 2.0 * PI / n as f64 } else { -2.0 * PI / n as f64 });
    (angle.clone().cos(), angle.sin())
}

/// Transforms `dim` of (re, im); `inverse` without the 1/N factor.
fn transform<const D: usize>(re: Tensor<D>, im: Tensor<D>, dim: usize, inverse: bool) -> (Tensor<D>, Tensor<D>) {
    let n = re.dims()[dim];
    if n.is_power_of_two() {
        if !inverse {
            return cfft(re, im, dim, None);
        }
        // IDFT(X) = conj(DFT(conj X)) (unnormalised)
        let (r, i) = cfft(re, im.neg(), dim, None);
        return (r, i.neg());
    }
    let (mr, mi) = dft_matrix(n, inverse, &re.device(), re.dtype());
    let last = D - 1;
    let (re, im) = (re.swap_dims(dim, last), im.swap_dims(dim, last));
    let shape = re.dims();
    let rows = re.shape().num_elements() / n;
    let (r2, i2) = (re.reshape([rows, n]), im.reshape([rows, n]));
    // (a + ib)(c + id) with the matrix on the right
    let out_re = r2.clone().matmul(mr.clone()) - i2.clone().matmul(mi.clone());
    let out_im = r2.matmul(mi) + i2.matmul(mr);
    (out_re.reshape(shape).swap_dims(dim, last), out_im.reshape(shape).swap_dims(dim, last))
}

/// Complex DFT of (re, im) along `dim` (any length).
pub fn dft<const D: usize>(re: Tensor<D>, im: Tensor<D>, dim: usize) -> (Tensor<D>, Tensor<D>) {
    transform(re, im, dim, false)
}

/// Inverse complex DFT along `dim` (any length), with the 1/N factor.
pub fn idft<const D: usize>(re: Tensor<D>, im: Tensor<D>, dim: usize) -> (Tensor<D>, Tensor<D>) {
    let n = re.dims()[dim] as f64;
    let (r, i) = transform(re, im, dim, true);
    (r.div_scalar(n), i.div_scalar(n))
}

/// The power-of-two FFT size for a linear (non-circular) convolution of an axis of `len`
/// samples with a kernel spanning lags −(len−1) … len−1.
pub fn conv_fft_len(len: usize) -> usize {
    (2 * len - 1).next_power_of_two()
}

/// Linear convolution of `u` `[B, C, X₁, …]` with one kernel per channel `k` `[1, C, N₁, …]` over
/// the trailing axes `axes` (ascending; the last must be `D − 1`), by N-D FFT:
///
/// ```text
/// y[b, c, i] = Σ_j k[c, (i − j) mod N] · u[b, c, j]          (i, j over the axes)
/// ```
///
/// `k` is in circular layout with `Nᵢ = conv_fft_len(Xᵢ)` (checked), so lags of either sign do
/// not wrap into each other. The real FFT runs along the last axis, complex FFTs along the rest.
pub fn fft_conv_nd<const D: usize>(u: Tensor<D>, k: Tensor<D>, axes: &[usize]) -> Tensor<D> {
    assert!(!axes.is_empty() && *axes.last().unwrap() == D - 1, "fft_conv_nd: axes {axes:?} must end at {}", D - 1);
    let (ud, kd) = (u.dims(), k.dims());
    for &a in axes {
        assert_eq!(
            kd[a],
            conv_fft_len(ud[a]),
            "fft_conv_nd: kernel {kd:?} must have size {} on axis {a} for input {ud:?}",
            conv_fft_len(ud[a])
        );
    }
    // Zero-pad u to the FFT sizes.
    let mut up = u;
    for &a in axes {
        let mut dims = up.dims();
        let pad = kd[a] - dims[a];
        dims[a] = pad;
        up = Tensor::cat(vec![up.clone(), Tensor::zeros(dims, &up.device())], a);
    }
    let last = D - 1;
    let forward = |x: Tensor<D>| {
        let (mut re, mut im) = rfft(x, last, None);
        for &a in &axes[..axes.len() - 1] {
            (re, im) = cfft(re, im, a, None);
        }
        (re, im)
    };
    let (ur, ui) = forward(up);
    let (kr, ki) = forward(k);
    let (mut yr, mut yi) = (ur.clone() * kr.clone() - ui.clone() * ki.clone(), ur * ki + ui * kr);
    for &a in &axes[..axes.len() - 1] {
        (yr, yi) = idft(yr, yi, a);
    }
    let mut y = irfft(yr, yi, last, Some(kd[last]));
    for &a in axes {
        y = y.narrow(a, 0, ud[a]);
    }
    y
}

/// A per-axis kernel `[C, L]` for lags 0 … L−1 and, optionally, a backward kernel `[C, L]` whose
/// entry `j` is the weight of lag −(j+1), laid out circularly on `n` points: `[C, n]`.
pub fn circular_kernel(fwd: Tensor<2>, bwd: Option<Tensor<2>>, n: usize) -> Tensor<2> {
    let [c, l] = fwd.dims();
    assert!(n >= 2 * l - 1, "circular_kernel: {n} points cannot hold lags ±{}", l - 1);
    let device = fwd.device();
    let mut parts = vec![fwd];
    let tail = bwd.filter(|_| l > 1).map(|b| b.narrow(1, 0, l - 1).flip([1]));
    let tail_len = tail.as_ref().map_or(0, |t| t.dims()[1]);
    if n - l - tail_len > 0 {
        parts.push(Tensor::zeros([c, n - l - tail_len], &device));
    }
    parts.extend(tail);
    Tensor::cat(parts, 1)
}

/// `fft_conv_nd` for a kernel that is an outer product of per-axis kernels, computed axis by
/// axis: the N-D DFT factorises into 1-D DFTs along each axis, and the spectrum of an outer
/// product is the outer product of the spectra, so
/// `IFFT_N(FFT_N(u) · ⊗ᵢ K̂ᵢ) = Πᵢ (IFFTᵢ ∘ K̂ᵢ ∘ FFTᵢ) u` — the same linear convolution, with
/// per-axis FFTs (the causal-convolution kernel of [`crate::kernels::causal_conv`]).
///
/// `u` `[B, C, X₀, X₁, X₂]`; `kernels[j]` `[C, 2Xₐ − 1]` for axis `a = axes[j]`, two-sided with
/// lag `m` at index `m + Xₐ − 1`.
pub fn separable_conv_nd(u: Tensor<5>, kernels: &[Tensor<2>], axes: &[usize]) -> Tensor<5> {
    assert_eq!(kernels.len(), axes.len(), "separable_conv_nd: one kernel per axis");
    let mut y = u;
    for (k, &a) in kernels.iter().zip(axes) {
        assert!((2..5).contains(&a), "separable_conv_nd: axis {a} is not spatial");
        let dims = y.dims();
        let (c, len) = (dims[1], dims[a]);
        assert_eq!(k.dims(), [c, 2 * len - 1], "separable_conv_nd: kernel {:?} for axis {a} of {dims:?}", k.dims());
        // Move axis a last and the channels next to it: [rest…, C, Xₐ] → rows of [C, Xₐ].
        let order: Vec<usize> = [0].into_iter().chain((2..5).filter(|&d| d != a)).chain([1, a]).collect();
        let perm = [order[0], order[1], order[2], order[3], order[4]];
        let moved = y.permute(perm);
        let md = moved.dims();
        let rows = md[0] * md[1] * md[2];
        let flat = moved.reshape([rows, c, len]);
        // y[i] = Σ_m k[m] u[i − m], m ∈ [−(X−1), X−1]: a causal convolution of u padded with
        // X − 1 zeros by the kernel shifted by X − 1, read from index X − 1.
        let padded = Tensor::cat(vec![flat.clone(), Tensor::zeros([rows, c, len - 1], &flat.device())], 2);
        let conv = crate::kernels::causal_conv(padded, k.clone()).narrow(2, len - 1, len);
        let back = conv.reshape(md);
        let mut inv = [0usize; 5];
        for (i, &p) in perm.iter().enumerate() {
            inv[p] = i;
        }
        y = back.permute(inv);
    }
    y
}

/// Two-sided kernel `[C, 2L − 1]` (lag m at index m + L − 1) from a forward kernel `[C, L]`
/// (lags 0 … L−1) and a backward kernel `[C, L]` (entry j = lag −(j+1)).
pub fn two_sided_kernel(fwd: Tensor<2>, bwd: Tensor<2>) -> Tensor<2> {
    let l = fwd.dims()[1];
    if l == 1 {
        return fwd;
    }
    Tensor::cat(vec![bwd.narrow(1, 0, l - 1).flip([1]), fwd], 1)
}
