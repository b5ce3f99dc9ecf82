//! The SSM kernel layer: selective scan, diagonal linear recurrences (real and complex),
//! causal FFT convolution, the S4D kernel generator and single-step forms.
//!
//! Every op exists three times: a tensor-op reference ([`reference`]), a plain-Rust CPU kernel
//! run by burn-flex through the [`ops::SsmKernels`] backend extension, and a hand-written
//! backward under `Autodiff`. The functions here validate shapes (panicking with the shapes
//! named: a wrong shape is a programmer error), then route Flex tensors (with or without
//! autodiff) to the kernels and any other backend to the reference.

/// Defines `$name`, a copy of `$inner::<T, $w>` compiled with the given target features
/// (the inner function is `#[inline(always)]`, so its loops are vectorised for them).
macro_rules! simd_variant {
    ($name:ident, $features:literal, $inner:ident, $w:literal, ($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?, ($($extra:expr),*)) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        #[allow(clippy::too_many_arguments)]
        fn $name<T: Real>($($arg: $ty),*) $(-> $ret)? {
            $inner::<T, $w>($($arg),* $(, $extra)*)
        }
    };
}

/// Runs `f` compiled for the CPU's widest vector unit (AVX-512, else AVX2 + FMA, else the
/// baseline). `f` must be an `#[inline(always)]` closure whose loops are inlined into it: the
/// widening happens by inlining into a `#[target_feature]` function.
#[inline(always)]
pub fn with_simd<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        use selective_scan_cpu::{Simd, simd_level};
        #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
        fn avx512<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        #[target_feature(enable = "avx2,fma")]
        fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        match simd_level() {
            // SAFETY: the CPU supports the features `simd_level` reported.
            Simd::Avx512 => return unsafe { avx512(f) },
            Simd::Avx2 => return unsafe { avx2(f) },
            Simd::Base => {}
        }
    }
    f()
}

mod autodiff;
pub mod conv_cpu;
#[cfg(any(feature = "vulkan", feature = "cuda"))]
pub mod cube;
pub mod dplr;
mod flex;
#[cfg(target_arch = "x86_64")]
mod gemv_avx512;
pub mod gemv_cpu;
pub mod gemv_quant;
pub mod ops;
pub mod real;
pub mod recurrence_cpu;
pub mod reference;
pub mod s4d;
pub mod selective_scan_cpu;
pub mod silu_cpu;
pub mod step;
pub mod wkv_cpu;

use crate::complex::ComplexTensor;
use burn::backend::{Dispatch, DispatchDevice, DispatchTensor};
use burn::tensor::{Device, Tensor};
use ops::SsmKernels;

/// Whether tensors on `device` run the custom CPU kernels (burn-flex, with or without autodiff).
pub fn has_kernels(device: &Device) -> bool {
    matches!(device.clone().inner().as_dispatch(), DispatchDevice::Flex(_))
}

/// Whether tensors on `device` run the CubeCL kernels (burn's CubeCL backend, built with the
/// `vulkan` or `cuda` feature): the selective scan's core and the real and complex diagonal
/// recurrences.
pub fn has_gpu_kernels(device: &Device) -> bool {
    #[cfg(any(feature = "vulkan", feature = "cuda"))]
    if matches!(device.clone().inner().as_dispatch(), DispatchDevice::Cube(_)) {
        return true;
    }
    let _ = device;
    false
}

/// A one-element stand-in for an absent optional kernel input (never read).
fn placeholder(device: &Device) -> DispatchTensor {
    Tensor::<1>::zeros([1], device).into_dispatch()
}

fn or_placeholder<const D: usize>(t: Option<Tensor<D>>, device: &Device) -> DispatchTensor {
    t.map_or_else(|| placeholder(device), Tensor::into_dispatch)
}

/// Inputs of the Mamba-1 selective scan (mamba_ssm's `selective_scan_fn` layout).
///
/// `u`, `delta`: `[B, D, L]`; `a`: `[D, N]` (A, usually −exp(A_log)); `b`, `c`: `[B, G, N, L]`
/// (G groups of D/G channels share B and C; [`ScanArgs::new`] takes the usual `[B, N, L]`);
/// `d` (skip), `delta_bias`: `[D]`; `z` (gate): `[B, D, L]`; `h0` (initial state): `[B, D, N]`.
#[derive(Debug, Clone)]
pub struct ScanArgs {
    pub u: Tensor<3>,
    pub delta: Tensor<3>,
    pub a: Tensor<2>,
    pub b: Tensor<4>,
    pub c: Tensor<4>,
    pub d: Option<Tensor<1>>,
    pub z: Option<Tensor<3>>,
    pub delta_bias: Option<Tensor<1>>,
    pub h0: Option<Tensor<3>>,
    pub delta_softplus: bool,
}

/// Output of the selective scan: `y` `[B, D, L]` and the final state `[B, D, N]`.
#[derive(Debug, Clone)]
pub struct ScanOutput {
    pub y: Tensor<3>,
    pub last_state: Tensor<3>,
}

impl ScanArgs {
    /// Ungrouped B and C of shape `[B, N, L]`.
    pub fn new(u: Tensor<3>, delta: Tensor<3>, a: Tensor<2>, b: Tensor<3>, c: Tensor<3>) -> Self {
        Self::grouped(u, delta, a, b.unsqueeze_dim(1), c.unsqueeze_dim(1))
    }
    /// Grouped B and C of shape `[B, G, N, L]`.
    pub fn grouped(u: Tensor<3>, delta: Tensor<3>, a: Tensor<2>, b: Tensor<4>, c: Tensor<4>) -> Self {
        Self { u, delta, a, b, c, d: None, z: None, delta_bias: None, h0: None, delta_softplus: false }
    }
    pub fn d(mut self, d: Tensor<1>) -> Self {
        self.d = Some(d);
        self
    }
    pub fn z(mut self, z: Tensor<3>) -> Self {
        self.z = Some(z);
        self
    }
    pub fn delta_bias(mut self, bias: Tensor<1>) -> Self {
        self.delta_bias = Some(bias);
        self
    }
    pub fn h0(mut self, h0: Tensor<3>) -> Self {
        self.h0 = Some(h0);
        self
    }
    pub fn softplus(mut self, on: bool) -> Self {
        self.delta_softplus = on;
        self
    }

    /// Panics with the offending shapes if they are inconsistent.
    pub fn validate(&self) {
        let [b, d, l] = self.u.dims();
        let [db, g, n, dl] = self.b.dims();
        let ctx = format!(
            "selective_scan: u {:?}, delta {:?}, A {:?}, B {:?}, C {:?}",
            self.u.dims(),
            self.delta.dims(),
            self.a.dims(),
            self.b.dims(),
            self.c.dims()
        );
        assert!(b > 0 && d > 0 && l > 0 && n > 0 && g > 0, "{ctx}: empty dimension");
        assert_eq!(self.delta.dims(), [b, d, l], "{ctx}: delta must match u [B, D, L]");
        assert_eq!(self.a.dims(), [d, n], "{ctx}: A must be [D, N]");
        assert_eq!([db, dl], [b, l], "{ctx}: B must be [B, G, N, L]");
        assert_eq!(self.c.dims(), [b, g, n, l], "{ctx}: C must match B");
        assert!(d % g == 0, "{ctx}: D = {d} must be a multiple of the group count {g}");
        if let Some(t) = &self.d {
            assert_eq!(t.dims(), [d], "{ctx}: D (skip) must be [D], got {:?}", t.dims());
        }
        if let Some(t) = &self.delta_bias {
            assert_eq!(t.dims(), [d], "{ctx}: delta_bias must be [D], got {:?}", t.dims());
        }
        if let Some(t) = &self.z {
            assert_eq!(t.dims(), [b, d, l], "{ctx}: z must be [B, D, L], got {:?}", t.dims());
        }
        if let Some(t) = &self.h0 {
            assert_eq!(t.dims(), [b, d, n], "{ctx}: h0 must be [B, D, N], got {:?}", t.dims());
        }
    }
}

/// Mamba-1 selective scan:
/// h_t = exp(Δ_t A) h_{t−1} + Δ_t B_t u_t, y_t = C_t h_t + D u_t, out_t = y_t · silu(z_t),
/// with Δ = softplus(delta + delta_bias) when `delta_softplus`. Differentiable in every input.
pub fn selective_scan(x: ScanArgs) -> ScanOutput {
    x.validate();
    if has_gpu_kernels(&x.u.device()) {
        return gpu_selective_scan(x);
    }
    if !has_kernels(&x.u.device()) {
        return reference::selective_scan(x);
    }
    let device = x.u.device();
    let mut opts = if x.delta_softplus { ops::DELTA_SOFTPLUS } else { 0 };
    let mut flag = |present: bool, bit: u32| {
        if present {
            opts |= bit;
        }
    };
    flag(x.d.is_some(), ops::HAS_D);
    flag(x.z.is_some(), ops::HAS_Z);
    flag(x.delta_bias.is_some(), ops::HAS_DELTA_BIAS);
    flag(x.h0.is_some(), ops::HAS_H0);
    let (y, last) = <Dispatch as SsmKernels>::selective_scan(
        x.u.into_dispatch(),
        x.delta.into_dispatch(),
        x.a.into_dispatch(),
        x.b.into_dispatch(),
        x.c.into_dispatch(),
        or_placeholder(x.d, &device),
        or_placeholder(x.z, &device),
        or_placeholder(x.delta_bias, &device),
        or_placeholder(x.h0, &device),
        opts,
    );
    ScanOutput { y: Tensor::from_dispatch(y), last_state: Tensor::from_dispatch(last) }
}

/// The scan on CubeCL devices: Δ and the output's skip and gate as tensor ops (element-wise),
/// the recurrence itself as the CubeCL kernel of [`cube::scan`].
fn gpu_selective_scan(x: ScanArgs) -> ScanOutput {
    let device = x.u.device();
    let delta = reference::scan_delta(x.delta, x.delta_bias, x.delta_softplus);
    let opts = if x.h0.is_some() { ops::HAS_H0 } else { 0 };
    let (y, last) = <Dispatch as SsmKernels>::selective_scan(
        x.u.clone().into_dispatch(),
        delta.into_dispatch(),
        x.a.into_dispatch(),
        x.b.into_dispatch(),
        x.c.into_dispatch(),
        placeholder(&device),
        placeholder(&device),
        placeholder(&device),
        or_placeholder(x.h0, &device),
        opts,
    );
    let y = reference::scan_output(Tensor::from_dispatch(y), x.u, x.d, x.z);
    ScanOutput { y, last_state: Tensor::from_dispatch(last) }
}

fn check_rec(name: &str, a: &[usize; 3], b: &[usize; 3], h0: Option<[usize; 2]>) {
    assert_eq!(a, b, "{name}: a {a:?} and b {b:?} must both be [B, L, C]");
    assert!(a.iter().all(|&x| x > 0), "{name}: empty dimension in {a:?}");
    if let Some(h) = h0 {
        assert_eq!(h, [a[0], a[2]], "{name}: h0 must be [B, C] = {:?}, got {h:?}", [a[0], a[2]]);
    }
}

/// Diagonal linear recurrence h_t = a_t ⊙ h_{t−1} + b_t over `[B, L, C]` (time on dim 1),
/// from `h0` `[B, C]` (zero when absent); with `reverse`, time runs backwards. Returns all h_t.
pub fn linear_recurrence(a: Tensor<3>, b: Tensor<3>, h0: Option<Tensor<2>>, reverse: bool) -> Tensor<3> {
    check_rec("linear_recurrence", &a.dims(), &b.dims(), h0.as_ref().map(|h| h.dims()));
    if !has_kernels(&a.device()) && !has_gpu_kernels(&a.device()) {
        return reference::linear_recurrence(a, b, h0, reverse);
    }
    let device = a.device();
    let has_h0 = h0.is_some();
    Tensor::from_dispatch(<Dispatch as SsmKernels>::linear_recurrence(
        a.into_dispatch(),
        b.into_dispatch(),
        or_placeholder(h0, &device),
        has_h0,
        reverse,
    ))
}

/// Complex diagonal linear recurrence (values as (re, im) pairs), as [`linear_recurrence`].
pub fn linear_recurrence_complex(
    a: ComplexTensor<3>,
    b: ComplexTensor<3>,
    h0: Option<ComplexTensor<2>>,
    reverse: bool,
) -> ComplexTensor<3> {
    check_rec("linear_recurrence_complex", &a.dims(), &b.dims(), h0.as_ref().map(|h| h.dims()));
    for (what, s) in [("a.im", a.im.dims()), ("b.im", b.im.dims())] {
        assert_eq!(s, a.dims(), "linear_recurrence_complex: {what} shape {s:?} differs from a.re");
    }
    if !has_kernels(&a.re.device()) && !has_gpu_kernels(&a.re.device()) {
        return reference::linear_recurrence_complex(a, b, h0, reverse);
    }
    let device = a.re.device();
    let has_h0 = h0.is_some();
    let (h0r, h0i) = match h0 {
        Some(h) => (h.re.into_dispatch(), h.im.into_dispatch()),
        None => (placeholder(&device), placeholder(&device)),
    };
    let (re, im) = <Dispatch as SsmKernels>::linear_recurrence_complex(
        a.re.into_dispatch(),
        a.im.into_dispatch(),
        b.re.into_dispatch(),
        b.im.into_dispatch(),
        h0r,
        h0i,
        has_h0,
        reverse,
    );
    ComplexTensor::new(Tensor::from_dispatch(re), Tensor::from_dispatch(im))
}

/// RWKV-4's WKV (see [`wkv_cpu`]): `k`, `v` `[B, L, C]`, decay rate `w ≥ 0` and bonus `u` `[C]`,
/// from the state `s0` `[B, 3, C]` (rows a, b, p: sums a·eᵖ, b·eᵖ; none = empty history).
/// Returns `wkv` `[B, L, C]` and the final state; differentiable in `w`, `u`, `k`, `v` and `s0`
/// (the final state is not differentiated).
pub fn wkv(w: Tensor<1>, u: Tensor<1>, k: Tensor<3>, v: Tensor<3>, s0: Option<Tensor<3>>) -> (Tensor<3>, Tensor<3>) {
    let [b, l, c] = k.dims();
    let ctx = format!("wkv: w {:?}, u {:?}, k {:?}, v {:?}", w.dims(), u.dims(), k.dims(), v.dims());
    assert!(b > 0 && l > 0 && c > 0, "{ctx}: empty dimension");
    assert_eq!(v.dims(), [b, l, c], "{ctx}: v must match k [B, L, C]");
    assert!(w.dims() == [c] && u.dims() == [c], "{ctx}: w and u must be [C]");
    if let Some(s) = &s0 {
        assert_eq!(s.dims(), [b, 3, c], "{ctx}: the state must be [B, 3, C], got {:?}", s.dims());
    }
    let out = if has_kernels(&k.device()) {
        let device = k.device();
        let has_s0 = s0.is_some();
        Tensor::from_dispatch(<Dispatch as SsmKernels>::wkv(
            w.into_dispatch(),
            u.into_dispatch(),
            k.into_dispatch(),
            v.into_dispatch(),
            or_placeholder(s0, &device),
            has_s0,
        ))
    } else {
        reference::wkv(w, u, k, v, s0)
    };
    (out.clone().narrow(1, 0, l), out.narrow(1, l, 3).detach())
}

/// Inputs of the causal convolution: `u` `[B, H, L]` and one kernel per channel `k` `[H, Lk]`.
#[derive(Debug, Clone)]
pub struct ConvArgs {
    pub u: Tensor<3>,
    pub k: Tensor<2>,
}

/// Causal long convolution y[b,h,t] = Σ_{s≤t} k[h,s] u[b,h,t−s] by FFT, differentiable in u and k.
pub fn causal_conv(u: Tensor<3>, k: Tensor<2>) -> Tensor<3> {
    let [b, h, l] = u.dims();
    let [kh, lk] = k.dims();
    assert!(b > 0 && h > 0 && l > 0 && lk > 0, "causal_conv: empty dimension in u {:?}, k {:?}", u.dims(), k.dims());
    assert_eq!(kh, h, "causal_conv: k {:?} must be [H, Lk] for u {:?} = [B, H, L]", k.dims(), u.dims());
    if !has_kernels(&u.device()) {
        return reference::causal_conv(ConvArgs { u, k });
    }
    Tensor::from_dispatch(<Dispatch as SsmKernels>::causal_conv(u.into_dispatch(), k.into_dispatch()))
}

/// `silu(x + bias[c])` for `x` `[B, C, L]` and an optional per-channel `bias` `[C]` (the
/// activation after a depthwise convolution), as one kernel pass forward and one backward.
pub fn bias_silu(x: Tensor<3>, bias: Option<Tensor<1>>) -> Tensor<3> {
    let [_, c, _] = x.dims();
    if let Some(b) = &bias {
        assert_eq!(b.dims(), [c], "bias_silu: bias {:?} must be [C] for x {:?} = [B, C, L]", b.dims(), x.dims());
    }
    if !has_kernels(&x.device()) || x.dims().contains(&0) {
        let v = match bias {
            Some(b) => x + b.reshape([1, c, 1]),
            None => x,
        };
        return burn::tensor::activation::silu(v);
    }
    let bias = bias.unwrap_or_else(|| Tensor::<1>::zeros([c], &x.device()).cast(x.dtype()));
    Tensor::from_dispatch(<Dispatch as SsmKernels>::bias_silu(x.into_dispatch(), bias.into_dispatch()))
}

/// A causal convolution of `u` `[B, H, L]` with an explicit kernel `k` `[H, Lk]` that continues
/// from `history` `[B, H, Lk − 1]`, the inputs before `u` (zero when `None`). Returns the outputs
/// and the new history (the last Lk − 1 inputs), so `step`s and chunked forwards equal one long
/// forward. One position runs as a dot product with the window, longer inputs by FFT.
pub fn causal_conv_history(u: Tensor<3>, k: Tensor<2>, history: Option<Tensor<3>>) -> (Tensor<3>, Tensor<3>) {
    let [b, h, l] = u.dims();
    let lk = k.dims()[1];
    assert!(lk >= 2, "causal_conv_history: the kernel needs at least 2 taps, got {:?}", k.dims());
    if history.is_none() && l > 1 {
        // Zero history: only the first min(L, Lk) taps can reach an output.
        let y = causal_conv(u.clone(), k.narrow(1, 0, lk.min(l)));
        let last = if l >= lk - 1 {
            u.narrow(2, l - (lk - 1), lk - 1)
        } else {
            let zeros = Tensor::<3>::zeros([b, h, lk - 1 - l], &u.device()).cast(u.dtype());
            Tensor::cat(vec![zeros, u], 2)
        };
        return (y, last);
    }
    let hist = history.unwrap_or_else(|| Tensor::<3>::zeros([b, h, lk - 1], &u.device()).cast(u.dtype()));
    assert_eq!(hist.dims(), [b, h, lk - 1], "causal_conv_history: history must be [B, H, Lk − 1] for k {:?}", k.dims());
    let all = Tensor::cat(vec![hist, u], 2); // [B, H, Lk − 1 + L]
    let y = if l == 1 {
        (all.clone() * k.flip([1]).unsqueeze_dim::<3>(0)).sum_dim(2)
    } else {
        causal_conv(all.clone(), k).narrow(2, lk - 1, l)
    };
    (y, all.narrow(2, l, lk - 1))
}

/// `x [M, K] · w` for a few rows (decoding): `w` is `[K, N]`, or `[N, K]` when `w_transposed`
/// (an embedding matrix used as the LM head). On plain burn-flex (no autodiff) and M ≤ 16 this
/// runs the streaming kernel of [`gemv_cpu`]; otherwise burn's matmul.
pub fn matmul_rows(x: Tensor<2>, w: Tensor<2>, w_transposed: bool) -> Tensor<2> {
    let [m, k] = x.dims();
    let [w0, w1] = w.dims();
    let wk = if w_transposed { w1 } else { w0 };
    assert_eq!(k, wk, "matmul_rows: x {:?} and w {:?} (transposed: {w_transposed}) do not chain", x.dims(), w.dims());
    let device = x.device();
    let fast = has_kernels(&device)
        && !device.is_autodiff()
        && (1..=16).contains(&m)
        && k > 0
        && matches!(x.dtype(), burn::tensor::DType::F32 | burn::tensor::DType::F64)
        && x.dtype() == w.dtype();
    if !fast {
        return if w_transposed { x.matmul(w.transpose()) } else { x.matmul(w) };
    }
    Tensor::from_dispatch(<Dispatch as SsmKernels>::matmul_rows(x.into_dispatch(), w.into_dispatch(), w_transposed))
}

/// A `Linear` layer on `[M, K]` rows through [`matmul_rows`] (decoding steps).
pub fn linear_rows(layer: &burn::nn::Linear, x: Tensor<2>) -> Tensor<2> {
    let y = matmul_rows(x, layer.weight.val(), false);
    match &layer.bias {
        Some(b) => y + b.val().unsqueeze_dim(0),
        None => y,
    }
}
