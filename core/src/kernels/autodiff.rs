//! Hand-written backward passes: `SsmKernels` for `Autodiff<B, C>`.
//!
//! Each op records its inputs' primitives (already alive, reference-counted) and, for the
//! recurrences, its output; the backward calls the inner backend's `*_backward` op, which
//! recomputes states instead of keeping B·D·L·N activations. Absent optional inputs are
//! stood in for by a one-element untracked leaf, so every op has a fixed number of parents.
//! The complex recurrence's two outputs (re, im) are one concatenated node, sliced, as
//! burn-signal's rfft does; the selective scan's two outputs are two nodes (see `ScanBackward`).

use super::ops::SsmKernels;
use burn::backend::autodiff::{
    Autodiff,
    checkpoint::{base::Checkpointer, strategy::CheckpointStrategy},
    grads::Gradients,
    ops::{Backward, Ops, OpsKind},
};
use burn::backend::{Backend, TensorMetadata, ops::FloatTensorOps, tensor::FloatTensor};
use burn::tensor::Slice;

type Prim<B> = FloatTensor<B>;

fn range_slices(shape: &[usize], dim: usize, start: usize, end: usize) -> Vec<Slice> {
    shape.iter().enumerate().map(|(i, &s)| if i == dim { Slice::from(start..end) } else { Slice::from(0..s) }).collect()
}

macro_rules! register_all {
    ($B:ty, $grads:expr, $parents:expr, $g:expr) => {
        for (parent, g) in $parents.into_iter().zip($g) {
            if let Some(node) = parent {
                $grads.register::<$B>(node.id, g);
            }
        }
    };
}

#[derive(Debug, Clone)]
struct ScanState<B: Backend> {
    inputs: [Prim<B>; 9],
    opts: u32,
    /// Which output this node is: `y` (false) or the final state (true).
    last: bool,
    /// `[B, D, L]` and `[B, D, N]`, to build the other output's zero gradient.
    y_shape: [usize; 3],
    state_shape: [usize; 3],
}

/// The scan's two outputs are two nodes over the same inputs: the usual loss reaches only `y`,
/// so only its backward runs (with a zero final-state gradient); a loss that also uses the final
/// state (chunked training) runs the kernel backward once per output.
#[derive(Debug)]
struct ScanBackward;

impl<B: Backend + SsmKernels> Backward<B, 9> for ScanBackward {
    type State = ScanState<B>;

    fn backward(self, ops: Ops<Self::State, 9>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let st = ops.state;
        let [u, delta, a, b, c, d, z, bias, h0] = st.inputs;
        let zeros = |s: [usize; 3]| B::float_zeros(s.to_vec().into(), &grad.device(), grad.dtype().into());
        let (dy, dlast) = if st.last { (zeros(st.y_shape), grad) } else { (grad.clone(), zeros(st.state_shape)) };
        let g = B::selective_scan_backward(u, delta, a, b, c, d, z, bias, h0, st.opts, dy, dlast);
        register_all!(B, grads, ops.parents, g);
    }
}

#[derive(Debug, Clone)]
struct RecState<B: Backend> {
    a: Prim<B>,
    h: Prim<B>,
    h0: Prim<B>,
    has_h0: bool,
    reverse: bool,
}

#[derive(Debug)]
struct RecBackward;

impl<B: Backend + SsmKernels> Backward<B, 3> for RecBackward {
    type State = RecState<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let s = ops.state;
        let g = B::linear_recurrence_backward(s.a, s.h, s.h0, s.has_h0, grad, s.reverse);
        register_all!(B, grads, ops.parents, g);
    }
}

#[derive(Debug, Clone)]
struct CRecState<B: Backend> {
    a: [Prim<B>; 2],
    h: [Prim<B>; 2],
    h0: [Prim<B>; 2],
    has_h0: bool,
    reverse: bool,
}

#[derive(Debug)]
struct CRecBackward;

impl<B: Backend + SsmKernels> Backward<B, 6> for CRecBackward {
    type State = CRecState<B>;

    fn backward(self, ops: Ops<Self::State, 6>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let shape = grad.shape().to_vec();
        let c = shape[2] / 2;
        let gre = B::float_slice(grad.clone(), &range_slices(&shape, 2, 0, c));
        let gim = B::float_slice(grad, &range_slices(&shape, 2, c, 2 * c));
        let s = ops.state;
        let [ar, ai] = s.a;
        let [hr, hi] = s.h;
        let [h0r, h0i] = s.h0;
        let g = B::linear_recurrence_complex_backward(ar, ai, hr, hi, h0r, h0i, s.has_h0, gre, gim, s.reverse);
        register_all!(B, grads, ops.parents, g);
    }
}

#[derive(Debug, Clone)]
struct WkvState<B: Backend> {
    inputs: [Prim<B>; 5],
    has_s0: bool,
}

#[derive(Debug)]
struct WkvBackward;

impl<B: Backend + SsmKernels> Backward<B, 5> for WkvBackward {
    type State = WkvState<B>;

    fn backward(self, ops: Ops<Self::State, 5>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let [w, u, k, v, s0] = ops.state.inputs;
        let g = B::wkv_backward(w, u, k, v, s0, ops.state.has_s0, grad);
        register_all!(B, grads, ops.parents, g);
    }
}

#[derive(Debug)]
struct ConvBackward;

impl<B: Backend + SsmKernels> Backward<B, 2> for ConvBackward {
    type State = (Prim<B>, Prim<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (u, k) = ops.state;
        let g = B::causal_conv_backward(u, k, grad);
        register_all!(B, grads, ops.parents, g);
    }
}

#[derive(Debug)]
struct BiasSiluBackward;

impl<B: Backend + SsmKernels> Backward<B, 2> for BiasSiluBackward {
    type State = (Prim<B>, Prim<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (x, bias) = ops.state;
        let g = B::bias_silu_backward(x, bias, grad);
        register_all!(B, grads, ops.parents, g);
    }
}

impl<B: Backend + SsmKernels, C: CheckpointStrategy> SsmKernels for Autodiff<B, C> {
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
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let all = [u, delta, a, b, c, d, z, delta_bias, h0];
        let guards_y = all.each_ref().map(|t| t.node());
        let guards_last = all.each_ref().map(|t| t.node());
        let inputs = all.map(|t| t.into_primitive());
        let [u, delta, a, b, c, d, z, bias, h0] = inputs.clone();
        let (y, last) = B::selective_scan(u, delta, a, b, c, d, z, bias, h0, opts);
        let y_shape: [usize; 3] = y.shape().to_vec().try_into().unwrap();
        let state_shape: [usize; 3] = last.shape().to_vec().try_into().unwrap();
        let state = ScanState { inputs, opts, last: false, y_shape, state_shape };
        let y = match ScanBackward.prepare::<C>(guards_y).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(state.clone(), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        let last = match ScanBackward.prepare::<C>(guards_last).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(ScanState { last: true, ..state }, last),
            OpsKind::UnTracked(prep) => prep.finish(last),
        };
        (y, last)
    }

    fn selective_scan_backward(
        _u: FloatTensor<Self>,
        _delta: FloatTensor<Self>,
        _a: FloatTensor<Self>,
        _b: FloatTensor<Self>,
        _c: FloatTensor<Self>,
        _d: FloatTensor<Self>,
        _z: FloatTensor<Self>,
        _delta_bias: FloatTensor<Self>,
        _h0: FloatTensor<Self>,
        _opts: u32,
        _dy: FloatTensor<Self>,
        _dlast: FloatTensor<Self>,
    ) -> Vec<FloatTensor<Self>> {
        panic!("selective_scan_backward is not differentiable (no double backward)")
    }

    fn linear_recurrence(
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        has_h0: bool,
        reverse: bool,
    ) -> FloatTensor<Self> {
        let guards = [a.node(), b.node(), h0.node()];
        let (a, b, h0) = (a.into_primitive(), b.into_primitive(), h0.into_primitive());
        let h = B::linear_recurrence(a.clone(), b, h0.clone(), has_h0, reverse);
        match RecBackward.prepare::<C>(guards).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let state = RecState { a, h: h.clone(), h0, has_h0, reverse };
                prep.finish(state, h)
            }
            OpsKind::UnTracked(prep) => prep.finish(h),
        }
    }

    fn wkv(
        w: FloatTensor<Self>,
        u: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        s0: FloatTensor<Self>,
        has_s0: bool,
    ) -> FloatTensor<Self> {
        let all = [w, u, k, v, s0];
        let guards = all.each_ref().map(|t| t.node());
        let inputs = all.map(|t| t.into_primitive());
        let [w, u, k, v, s0] = inputs.clone();
        let y = B::wkv(w, u, k, v, s0, has_s0);
        match WkvBackward.prepare::<C>(guards).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(WkvState { inputs, has_s0 }, y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn wkv_backward(
        _w: FloatTensor<Self>,
        _u: FloatTensor<Self>,
        _k: FloatTensor<Self>,
        _v: FloatTensor<Self>,
        _s0: FloatTensor<Self>,
        _has_s0: bool,
        _dy: FloatTensor<Self>,
    ) -> Vec<FloatTensor<Self>> {
        panic!("wkv_backward is not differentiable (no double backward)")
    }

    fn linear_recurrence_backward(
        _a: FloatTensor<Self>,
        _h: FloatTensor<Self>,
        _h0: FloatTensor<Self>,
        _has_h0: bool,
        _dh: FloatTensor<Self>,
        _reverse: bool,
    ) -> Vec<FloatTensor<Self>> {
        panic!("linear_recurrence_backward is not differentiable (no double backward)")
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
        let all = [a_re, a_im, b_re, b_im, h0_re, h0_im];
        let guards = all.each_ref().map(|t| t.node());
        let [ar, ai, br, bi, h0r, h0i] = all.map(|t| t.into_primitive());
        let (hr, hi) =
            B::linear_recurrence_complex(ar.clone(), ai.clone(), br, bi, h0r.clone(), h0i.clone(), has_h0, reverse);
        let shape = hr.shape().to_vec();
        let both = B::float_cat(vec![hr.clone(), hi.clone()], 2);
        let both = match CRecBackward.prepare::<C>(guards).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let state = CRecState { a: [ar, ai], h: [hr, hi], h0: [h0r, h0i], has_h0, reverse };
                prep.finish(state, both)
            }
            OpsKind::UnTracked(prep) => prep.finish(both),
        };
        let c = shape[2];
        let s = [shape[0], shape[1], 2 * c];
        (
            Self::float_slice(both.clone(), &range_slices(&s, 2, 0, c)),
            Self::float_slice(both, &range_slices(&s, 2, c, 2 * c)),
        )
    }

    fn linear_recurrence_complex_backward(
        _a_re: FloatTensor<Self>,
        _a_im: FloatTensor<Self>,
        _h_re: FloatTensor<Self>,
        _h_im: FloatTensor<Self>,
        _h0_re: FloatTensor<Self>,
        _h0_im: FloatTensor<Self>,
        _has_h0: bool,
        _dh_re: FloatTensor<Self>,
        _dh_im: FloatTensor<Self>,
        _reverse: bool,
    ) -> Vec<FloatTensor<Self>> {
        panic!("linear_recurrence_complex_backward is not differentiable (no double backward)")
    }

    fn causal_conv(u: FloatTensor<Self>, k: FloatTensor<Self>) -> FloatTensor<Self> {
        let guards = [u.node(), k.node()];
        let (u, k) = (u.into_primitive(), k.into_primitive());
        let y = B::causal_conv(u.clone(), k.clone());
        match ConvBackward.prepare::<C>(guards).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((u, k), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn bias_silu(x: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        let guards = [x.node(), bias.node()];
        let (x, bias) = (x.into_primitive(), bias.into_primitive());
        let y = B::bias_silu(x.clone(), bias.clone());
        match BiasSiluBackward.prepare::<C>(guards).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((x, bias), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn bias_silu_backward(
        _x: FloatTensor<Self>,
        _bias: FloatTensor<Self>,
        _dy: FloatTensor<Self>,
    ) -> Vec<FloatTensor<Self>> {
        panic!("bias_silu_backward is not differentiable (no double backward)")
    }

    fn matmul_rows(_x: FloatTensor<Self>, _w: FloatTensor<Self>, _w_transposed: bool) -> FloatTensor<Self> {
        panic!("matmul_rows is an inference kernel: use matmul under autodiff")
    }

    fn causal_conv_backward(
        _u: FloatTensor<Self>,
        _k: FloatTensor<Self>,
        _dy: FloatTensor<Self>,
    ) -> Vec<FloatTensor<Self>> {
        panic!("causal_conv_backward is not differentiable (no double backward)")
    }
}
