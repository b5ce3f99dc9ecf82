//! The backend extension: the kernels as burn custom ops.
//!
//! `Flex` runs the plain-Rust kernels of this module's siblings; `Autodiff<B, C>` wraps any
//! backend implementing the trait with hand-written backward passes that call the `*_backward`
//! ops (which recompute rather than store B·D·L·N activations). burn's CubeCL backend (features
//! `vulkan`, `cuda`) runs the CubeCL kernels of [`super::cube`] for the ops that have one. Other
//! backends never reach this trait: the public functions in [`super`] route them to the
//! tensor-op reference.

use burn::backend::{Backend, backend_extension, tensor::FloatTensor};

/// Bits of the `opts` argument of the selective-scan ops: which optional inputs are real
/// (absent ones are passed as one-element placeholders) and whether Δ goes through softplus.
pub const HAS_D: u32 = 1;
pub const HAS_Z: u32 = 2;
pub const HAS_DELTA_BIAS: u32 = 4;
pub const HAS_H0: u32 = 8;
pub const DELTA_SOFTPLUS: u32 = 16;

/// SSM kernels supplied by a backend extension (burn's extension macro takes no `Option`
/// tensor inputs, so optional inputs are placeholders flagged by `opts` / `has_h0`). Shapes: see the public wrappers in
/// [`crate::kernels`], which validate them before calling these.
#[backend_extension(Flex, Cube: cfg(any(feature = "vulkan", feature = "cuda")), Autodiff)]
pub trait SsmKernels: Backend {
    /// Selective scan; returns `(out [B,D,L], last_state [B,D,N])`.
    #[allow(clippy::too_many_arguments)]
    fn selective_scan(
        u: FloatTensor<Self>,
        delta: FloatTensor<Self>,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        c: FloatTensor<Self>,
        d: FloatTensor<Self>,
        z: FloatTensor<Self>,
        delta_bias: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        opts: u32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// Gradients of [`Self::selective_scan`] in input order
    /// `[u, delta, a, b, c, d, z, delta_bias, h0]` (`z`'s is empty when `z` is absent).
    #[allow(clippy::too_many_arguments)]
    fn selective_scan_backward(
        u: FloatTensor<Self>,
        delta: FloatTensor<Self>,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        c: FloatTensor<Self>,
        d: FloatTensor<Self>,
        z: FloatTensor<Self>,
        delta_bias: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        opts: u32,
        dy: FloatTensor<Self>,
        dlast: FloatTensor<Self>,
    ) -> Vec<FloatTensor<Self>>;

    /// Real diagonal recurrence over `[B, L, C]`; returns h `[B, L, C]`.
    fn linear_recurrence(
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        has_h0: bool,
        reverse: bool,
    ) -> FloatTensor<Self>;

    /// Gradients `[a, b, h0]` of [`Self::linear_recurrence`] given its output `h` and `dh`.
    fn linear_recurrence_backward(
        a: FloatTensor<Self>,
        h: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        has_h0: bool,
        dh: FloatTensor<Self>,
        reverse: bool,
    ) -> Vec<FloatTensor<Self>>;

    /// Complex diagonal recurrence; returns `(h_re, h_im)`.
    #[allow(clippy::too_many_arguments)]
    fn linear_recurrence_complex(
        a_re: FloatTensor<Self>,
        a_im: FloatTensor<Self>,
        b_re: FloatTensor<Self>,
        b_im: FloatTensor<Self>,
        h0_re: FloatTensor<Self>,
        h0_im: FloatTensor<Self>,
        has_h0: bool,
        reverse: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// Gradients `[a_re, a_im, b_re, b_im, h0_re, h0_im]` of the complex recurrence.
    #[allow(clippy::too_many_arguments)]
    fn linear_recurrence_complex_backward(
        a_re: FloatTensor<Self>,
        a_im: FloatTensor<Self>,
        h_re: FloatTensor<Self>,
        h_im: FloatTensor<Self>,
        h0_re: FloatTensor<Self>,
        h0_im: FloatTensor<Self>,
        has_h0: bool,
        dh_re: FloatTensor<Self>,
        dh_im: FloatTensor<Self>,
        reverse: bool,
    ) -> Vec<FloatTensor<Self>>;

    /// RWKV-4 WKV over `k`, `v` `[B, L, C]` with decay rate `w` and bonus `u` `[C]` from the state
    /// `s0` `[B, 3, C]` (when `has_s0`); returns `[B, L + 3, C]`: outputs, then the final state.
    fn wkv(
        w: FloatTensor<Self>,
        u: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        s0: FloatTensor<Self>,
        has_s0: bool,
    ) -> FloatTensor<Self>;

    /// Gradients `[w, u, k, v, s0]` of [`Self::wkv`] given `dy` (its state rows are ignored).
    #[allow(clippy::too_many_arguments)]
    fn wkv_backward(
        w: FloatTensor<Self>,
        u: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        s0: FloatTensor<Self>,
        has_s0: bool,
        dy: FloatTensor<Self>,
    ) -> Vec<FloatTensor<Self>>;

    /// Causal convolution of `u [B,H,L]` with `k [H,Lk]`; returns `[B,H,L]`.
    fn causal_conv(u: FloatTensor<Self>, k: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Few-row product for decoding: `x [M, K] · w` with `w [K, N]`, or `x · wᵀ` with `w [N, K]`
    /// when `w_transposed`. Inference only (no gradient).
    fn matmul_rows(x: FloatTensor<Self>, w: FloatTensor<Self>, w_transposed: bool) -> FloatTensor<Self>;

    /// `silu(x + bias[c])` over `x [B, C, L]` with `bias [C]`; returns `[B, C, L]`.
    fn bias_silu(x: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Gradients `[x, bias]` of [`Self::bias_silu`].
    fn bias_silu_backward(
        x: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> Vec<FloatTensor<Self>>;

    /// Gradients `[u, k]` of [`Self::causal_conv`].
    fn causal_conv_backward(
        u: FloatTensor<Self>,
        k: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> Vec<FloatTensor<Self>>;
}
