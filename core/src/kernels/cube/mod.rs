//! `SsmKernels` for burn's CubeCL backend (the `vulkan` and `cuda` features): the selective
//! scan's core and the real and complex diagonal recurrences as CubeCL kernels ([`scan`],
//! [`recurrence`]), forward and backward, under the same `Autodiff` wrapper as the CPU kernels.
//!
//! The public functions in [`crate::kernels`] send only those ops here (see
//! [`crate::kernels::has_gpu_kernels`]), and the scan only in its core form: Δ already through
//! bias and softplus, no skip, no gate (`opts` ⊆ `HAS_H0`). WKV, the causal convolution and the
//! decoding product take the tensor-op reference on these devices, so their trait methods are
//! never reached.

pub mod recurrence;
pub mod scan;

use super::ops::{HAS_H0, SsmKernels};
use burn::backend::ops::FloatTensorOps;
use burn::backend::{Shape, TensorMetadata, tensor::FloatTensor};
use burn_cubecl::CubeBackend;
use burn_cubecl::ops::numeric::{empty_device_contiguous_dtype, zeros_client};
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

type Cube = CubeBackend;

/// Flat offset of `t[i, j, k]` in an input (any strides; outputs are contiguous).
#[cube]
fn at3<F: Float>(t: &Tensor<F>, i: usize, j: usize, k: usize) -> usize {
    i * t.stride(0) + j * t.stride(1) + k * t.stride(2)
}

/// Flat offset of `t[i, j, k, l]`.
#[cube]
fn at4<F: Float>(t: &Tensor<F>, i: usize, j: usize, k: usize, l: usize) -> usize {
    i * t.stride(0) + j * t.stride(1) + k * t.stride(2) + l * t.stride(3)
}

/// A contiguous, uninitialised tensor of `shape` on `like`'s device and of its dtype (a kernel
/// output).
fn empty(like: &CubeTensor, shape: Vec<usize>) -> CubeTensor {
    empty_device_contiguous_dtype(like.client.clone(), like.device.clone(), Shape::from(shape), like.dtype)
}

/// An optional kernel input and its flag: the input (1), or a stand-in the kernel never reads (0).
fn flagged<T>(input: Option<T>, stand_in: impl FnOnce() -> T) -> (T, u32) {
    match input {
        Some(t) => (t, 1),
        None => (stand_in(), 0),
    }
}

fn not_routed(op: &str) -> ! {
    unreachable!("ssm kernels: `{op}` has no CubeCL kernel; kernels::{op} sends these devices to the reference")
}

fn core_scan(
    u: CubeTensor,
    dt: CubeTensor,
    a: CubeTensor,
    b: CubeTensor,
    c: CubeTensor,
    h0: CubeTensor,
    opts: u32,
) -> scan::CoreScan {
    assert_eq!(opts & !HAS_H0, 0, "ssm kernels: the CubeCL scan takes the core form only (opts {opts:#b})");
    scan::CoreScan { u, dt, a, b, c, h0: (opts & HAS_H0 != 0).then_some(h0) }
}

/// Sums `t` over `dim` and drops that dimension.
fn sum_out(t: CubeTensor, dim: usize) -> CubeTensor {
    let mut shape = t.shape().to_vec();
    shape.remove(dim);
    Cube::float_reshape(Cube::float_sum_dim(t, dim), Shape::from(shape))
}

fn placeholder_grad(like: &CubeTensor) -> CubeTensor {
    zeros_client(like.client.clone(), like.device.clone(), Shape::from(vec![1]), like.dtype)
}

impl SsmKernels for CubeBackend {
    fn selective_scan(
        u: FloatTensor<Self>,
        delta: FloatTensor<Self>,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        c: FloatTensor<Self>,
        _d: FloatTensor<Self>,
        _z: FloatTensor<Self>,
        _delta_bias: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        opts: u32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        scan::forward(core_scan(u, delta, a, b, c, h0, opts))
    }

    fn selective_scan_backward(
        u: FloatTensor<Self>,
        delta: FloatTensor<Self>,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        c: FloatTensor<Self>,
        _d: FloatTensor<Self>,
        _z: FloatTensor<Self>,
        _delta_bias: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        opts: u32,
        dy: FloatTensor<Self>,
        dlast: FloatTensor<Self>,
    ) -> Vec<FloatTensor<Self>> {
        let [bsz, groups, n, len] = b.shape().dims::<4>();
        let none = placeholder_grad(&u);
        let [gu, gdt, ga, gb, gc, gh0] = scan::backward(core_scan(u, delta, a, b, c, h0, opts), dy, dlast);
        let bc = |t: CubeTensor| Cube::float_reshape(sum_out(t, 1), Shape::from(vec![bsz, groups, n, len]));
        vec![gu, gdt, sum_out(ga, 0), bc(gb), bc(gc), none.clone(), none.clone(), none, gh0]
    }

    fn linear_recurrence(
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        has_h0: bool,
        reverse: bool,
    ) -> FloatTensor<Self> {
        recurrence::forward(a, b, has_h0.then_some(h0), reverse)
    }

    fn linear_recurrence_backward(
        a: FloatTensor<Self>,
        h: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        has_h0: bool,
        dh: FloatTensor<Self>,
        reverse: bool,
    ) -> Vec<FloatTensor<Self>> {
        recurrence::backward(a, h, has_h0.then_some(h0), dh, reverse).into()
    }

    fn linear_recurrence_complex(
        a_re: FloatTensor<Self>,
        a_im: FloatTensor<Self>,
        b_re: FloatTensor<Self>,
        b_im: FloatTensor<Self>,
        h0_re: FloatTensor<Self>,
        h0_im: FloatTensor<Self>,
        has_h0: bool,
        reverse: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        recurrence::forward_complex((a_re, a_im), (b_re, b_im), has_h0.then_some((h0_re, h0_im)), reverse)
    }

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
    ) -> Vec<FloatTensor<Self>> {
        let h0 = has_h0.then_some((h0_re, h0_im));
        recurrence::backward_complex((a_re, a_im), (h_re, h_im), h0, (dh_re, dh_im), reverse).into()
    }

    fn wkv(
        _: FloatTensor<Self>,
        _: FloatTensor<Self>,
        _: FloatTensor<Self>,
        _: FloatTensor<Self>,
        _: FloatTensor<Self>,
        _: bool,
    ) -> FloatTensor<Self> {
        not_routed("wkv")
    }

    fn wkv_backward(
        _: FloatTensor<Self>,
        _: FloatTensor<Self>,
        _: FloatTensor<Self>,
        _: FloatTensor<Self>,
        _: FloatTensor<Self>,
        _: bool,
        _: FloatTensor<Self>,
    ) -> Vec<FloatTensor<Self>> {
        not_routed("wkv")
    }

    fn causal_conv(_: FloatTensor<Self>, _: FloatTensor<Self>) -> FloatTensor<Self> {
        not_routed("causal_conv")
    }

    fn bias_silu(_: FloatTensor<Self>, _: FloatTensor<Self>) -> FloatTensor<Self> {
        not_routed("bias_silu")
    }

    fn bias_silu_backward(_: FloatTensor<Self>, _: FloatTensor<Self>, _: FloatTensor<Self>) -> Vec<FloatTensor<Self>> {
        not_routed("bias_silu")
    }

    fn matmul_rows(_: FloatTensor<Self>, _: FloatTensor<Self>, _: bool) -> FloatTensor<Self> {
        not_routed("matmul_rows")
    }

    fn causal_conv_backward(
        _: FloatTensor<Self>,
        _: FloatTensor<Self>,
        _: FloatTensor<Self>,
    ) -> Vec<FloatTensor<Self>> {
        not_routed("causal_conv")
    }
}
