//! `SsmKernels` for burn-flex: unwrap the primitives into contiguous slices (zero-copy when
//! already contiguous) and run the plain-Rust kernels for f32 or f64.

use super::conv_cpu::{self, ConvDims};
use super::gemv_cpu;
use super::ops::{DELTA_SOFTPLUS, HAS_D, HAS_DELTA_BIAS, HAS_H0, HAS_Z, SsmKernels};
use super::real::Real;
use super::recurrence_cpu::{self, Cplx, RecDims};
use super::selective_scan_cpu::{self as scan, ScanDims, ScanInputs, transpose_last2};
use super::silu_cpu;
use super::wkv_cpu::{self, WkvDims, WkvInputs};
use burn::backend::flex::FlexTensor;
use burn::backend::{Flex, TensorMetadata, tensor::FloatTensor};
use burn::tensor::{DType, TensorData};

fn contiguous(t: FlexTensor) -> FlexTensor {
    t.to_contiguous()
}

fn slice<T: Real>(t: &FlexTensor) -> &[T] {
    t.as_slice::<T>()
        .unwrap_or_else(|| panic!("ssm kernel: expected a contiguous {:?} tensor, got {:?}", T::dtype(), t))
}

fn out<T: Real>(v: Vec<T>, shape: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, shape.to_vec()))
}

fn dims(t: &FlexTensor) -> Vec<usize> {
    t.shape().to_vec()
}

fn opt(t: FlexTensor, opts: u32, bit: u32) -> Option<FlexTensor> {
    (opts & bit != 0).then_some(t)
}

fn check_dtype(ts: &[&FlexTensor]) -> DType {
    let d = ts[0].dtype();
    for t in ts {
        assert_eq!(t.dtype(), d, "ssm kernel: all inputs must share one dtype");
    }
    assert!(matches!(d, DType::F32 | DType::F64), "ssm kernel: f32 or f64 required, got {d:?}");
    d
}

/// Contiguous copies of the selective scan inputs, with B and C transposed to `[B, G, L, N]`.
struct ScanOwned {
    u: FlexTensor,
    delta: FlexTensor,
    a: FlexTensor,
    b: FlexTensor,
    c: FlexTensor,
    d: Option<FlexTensor>,
    z: Option<FlexTensor>,
    bias: Option<FlexTensor>,
    h0: Option<FlexTensor>,
    softplus: bool,
    dims: ScanDims,
    bc3: bool,
}

impl ScanOwned {
    /// Decodes the `opts` bitmask: absent optional inputs (placeholders) become `None`.
    #[allow(clippy::too_many_arguments)]
    fn new(
        u: FlexTensor,
        delta: FlexTensor,
        a: FlexTensor,
        b: FlexTensor,
        c: FlexTensor,
        d: FlexTensor,
        z: FlexTensor,
        bias: FlexTensor,
        h0: FlexTensor,
        opts: u32,
    ) -> Self {
        let (us, bs) = (dims(&u), dims(&b));
        let bc3 = bs.len() == 3;
        let groups = if bc3 { 1 } else { bs[1] };
        let dims = ScanDims { batch: us[0], dim: us[1], len: us[2], state: dims(&a)[1], groups };
        Self {
            u: contiguous(u),
            delta: contiguous(delta),
            a: contiguous(a),
            b: contiguous(b),
            c: contiguous(c),
            d: opt(d, opts, HAS_D).map(contiguous),
            z: opt(z, opts, HAS_Z).map(contiguous),
            bias: opt(bias, opts, HAS_DELTA_BIAS).map(contiguous),
            h0: opt(h0, opts, HAS_H0).map(contiguous),
            softplus: opts & DELTA_SOFTPLUS != 0,
            dims,
            bc3,
        }
    }

    fn bc_shape(&self) -> Vec<usize> {
        let s = self.dims;
        if self.bc3 { vec![s.batch, s.state, s.len] } else { vec![s.batch, s.groups, s.state, s.len] }
    }

    fn run<T: Real>(&self, f: impl FnOnce(&ScanInputs<'_, T>) -> Vec<FlexTensor>) -> Vec<FlexTensor> {
        let s = self.dims;
        let outer = s.batch * s.groups;
        let bt = transpose_last2(slice::<T>(&self.b), outer, s.state, s.len);
        let ct = transpose_last2(slice::<T>(&self.c), outer, s.state, s.len);
        let inputs = ScanInputs {
            u: slice(&self.u),
            delta: slice(&self.delta),
            a: slice(&self.a),
            b: &bt,
            c: &ct,
            d: self.d.as_ref().map(slice),
            z: self.z.as_ref().map(slice),
            delta_bias: self.bias.as_ref().map(slice),
            h0: self.h0.as_ref().map(slice),
            softplus: self.softplus,
        };
        f(&inputs)
    }
}

fn scan_forward<T: Real>(x: &ScanOwned) -> Vec<FlexTensor> {
    let s = x.dims;
    x.run::<T>(|inp| {
        let (y, last) = scan::forward(inp, s);
        vec![out(y, &[s.batch, s.dim, s.len]), out(last, &[s.batch, s.dim, s.state])]
    })
}

fn scan_backward<T: Real>(x: &ScanOwned, dy: &FlexTensor, dlast: &FlexTensor) -> Vec<FlexTensor> {
    let s = x.dims;
    x.run::<T>(|inp| {
        let g = scan::backward(inp, s, slice(dy), Some(slice(dlast)));
        let outer = s.batch * s.groups;
        let gb = transpose_last2(&g.b, outer, s.len, s.state);
        let gc = transpose_last2(&g.c, outer, s.len, s.state);
        let bdl = [s.batch, s.dim, s.len];
        let zshape: Vec<usize> = if x.z.is_some() { bdl.to_vec() } else { vec![0] };
        vec![
            out(g.u, &bdl),
            out(g.delta, &bdl),
            out(g.a, &[s.dim, s.state]),
            out(gb, &x.bc_shape()),
            out(gc, &x.bc_shape()),
            out(g.d, &[s.dim]),
            out(g.z, &zshape),
            out(g.delta_bias, &[s.dim]),
            out(g.h0, &[s.batch, s.dim, s.state]),
        ]
    })
}

fn rec_dims(t: &FlexTensor) -> RecDims {
    let s = dims(t);
    RecDims { batch: s[0], len: s[1], channels: s[2] }
}

fn conv_dims(u: &FlexTensor, k: &FlexTensor) -> ConvDims {
    let (us, ks) = (dims(u), dims(k));
    ConvDims { batch: us[0], channels: us[1], len: us[2], kernel_len: ks[1] }
}

macro_rules! by_dtype {
    ($dtype:expr, $f:ident ( $($arg:expr),* )) => {
        match $dtype {
            DType::F64 => $f::<f64>($($arg),*),
            _ => $f::<f32>($($arg),*),
        }
    };
}

fn rec_fwd<T: Real>(a: &FlexTensor, b: &FlexTensor, h0: Option<&FlexTensor>, rev: bool) -> FlexTensor {
    let s = rec_dims(a);
    let h = recurrence_cpu::forward_real(slice::<T>(a), slice(b), h0.map(slice), s, rev);
    out(h, &[s.batch, s.len, s.channels])
}

fn rec_bwd<T: Real>(
    a: &FlexTensor,
    h: &FlexTensor,
    h0: Option<&FlexTensor>,
    g: &FlexTensor,
    rev: bool,
) -> Vec<FlexTensor> {
    let s = rec_dims(a);
    let (ga, gb, gh0) = recurrence_cpu::backward_real(slice::<T>(a), slice(h), h0.map(slice), slice(g), s, rev);
    let shape = [s.batch, s.len, s.channels];
    vec![out(ga, &shape), out(gb, &shape), out(gh0, &[s.batch, s.channels])]
}

fn wkv_inputs<'a, T: Real>(t: &'a [FlexTensor; 4], s0: Option<&'a FlexTensor>) -> (WkvInputs<'a, T>, WkvDims) {
    let s = dims(&t[2]);
    let x = WkvInputs { w: slice(&t[0]), u: slice(&t[1]), k: slice(&t[2]), v: slice(&t[3]), s0: s0.map(slice) };
    (x, WkvDims { batch: s[0], len: s[1], channels: s[2] })
}

fn wkv_fwd<T: Real>(t: &[FlexTensor; 4], s0: Option<&FlexTensor>) -> FlexTensor {
    let (x, s) = wkv_inputs::<T>(t, s0);
    out(wkv_cpu::forward(&x, s), &[s.batch, s.len + 3, s.channels])
}

fn wkv_bwd<T: Real>(t: &[FlexTensor; 4], s0: Option<&FlexTensor>, dy: &FlexTensor) -> Vec<FlexTensor> {
    let (x, s) = wkv_inputs::<T>(t, s0);
    let [gw, gu, gk, gv, gs] = wkv_cpu::backward(&x, s, slice(dy));
    let (c, seq) = ([s.channels], [s.batch, s.len, s.channels]);
    vec![out(gw, &c), out(gu, &c), out(gk, &seq), out(gv, &seq), out(gs, &[s.batch, 3, s.channels])]
}

fn cplx<'a, T: Real>(re: &'a FlexTensor, im: &'a FlexTensor) -> Cplx<'a, T> {
    Cplx { re: slice(re), im: slice(im) }
}

fn crec_fwd<T: Real>(t: &[FlexTensor; 4], h0: Option<(&FlexTensor, &FlexTensor)>, rev: bool) -> Vec<FlexTensor> {
    let s = rec_dims(&t[0]);
    let (hr, hi) = recurrence_cpu::forward_complex(
        cplx::<T>(&t[0], &t[1]),
        cplx(&t[2], &t[3]),
        h0.map(|(r, i)| cplx(r, i)),
        s,
        rev,
    );
    let shape = [s.batch, s.len, s.channels];
    vec![out(hr, &shape), out(hi, &shape)]
}

fn crec_bwd<T: Real>(t: &[FlexTensor; 6], h0: Option<(&FlexTensor, &FlexTensor)>, rev: bool) -> Vec<FlexTensor> {
    let s = rec_dims(&t[0]);
    let g = recurrence_cpu::backward_complex(
        cplx::<T>(&t[0], &t[1]),
        cplx(&t[2], &t[3]),
        h0.map(|(r, i)| cplx(r, i)),
        cplx(&t[4], &t[5]),
        s,
        rev,
    );
    let (shape, s0) = ([s.batch, s.len, s.channels], [s.batch, s.channels]);
    vec![
        out(g.a.0, &shape),
        out(g.a.1, &shape),
        out(g.b.0, &shape),
        out(g.b.1, &shape),
        out(g.h0.0, &s0),
        out(g.h0.1, &s0),
    ]
}

fn conv_fwd<T: Real + realfft::FftNum>(u: &FlexTensor, k: &FlexTensor) -> FlexTensor {
    let s = conv_dims(u, k);
    out(conv_cpu::forward(slice::<T>(u), slice(k), s), &[s.batch, s.channels, s.len])
}

fn conv_bwd<T: Real + realfft::FftNum>(u: &FlexTensor, k: &FlexTensor, g: &FlexTensor) -> Vec<FlexTensor> {
    let s = conv_dims(u, k);
    let (gu, gk) = conv_cpu::backward(slice::<T>(u), slice(k), slice(g), s);
    vec![out(gu, &[s.batch, s.channels, s.len]), out(gk, &[s.channels, s.kernel_len])]
}

fn silu_fwd<T: Real>(x: &FlexTensor, bias: &FlexTensor) -> FlexTensor {
    let d = dims(x);
    out(silu_cpu::forward(slice::<T>(x), slice(bias), d[2]), &d)
}

fn silu_bwd<T: Real>(x: &FlexTensor, bias: &FlexTensor, g: &FlexTensor) -> Vec<FlexTensor> {
    let d = dims(x);
    let (gx, gb) = silu_cpu::backward(slice::<T>(x), slice(bias), slice(g), d[2]);
    let c = gb.len();
    vec![out(gx, &d), out(gb, &[c])]
}

fn rows_fwd<T: Real>(x: &FlexTensor, w: &FlexTensor, transposed: bool) -> FlexTensor {
    let (xd, wd) = (dims(x), dims(w));
    let (m, k) = (xd[0], xd[1]);
    let n = if transposed { wd[0] } else { wd[1] };
    let y = if transposed {
        gemv_cpu::x_wt(slice::<T>(x), slice(w), m, k, n)
    } else {
        gemv_cpu::x_w(slice::<T>(x), slice(w), m, k, n)
    };
    out(y, &[m, n])
}

impl SsmKernels for Flex {
    fn matmul_rows(x: FloatTensor<Flex>, w: FloatTensor<Flex>, w_transposed: bool) -> FloatTensor<Flex> {
        let dt = check_dtype(&[&x, &w]);
        let (x, w) = (contiguous(x), contiguous(w));
        by_dtype!(dt, rows_fwd(&x, &w, w_transposed))
    }

    fn selective_scan(
        u: FloatTensor<Flex>,
        delta: FloatTensor<Flex>,
        a: FloatTensor<Flex>,
        b: FloatTensor<Flex>,
        c: FloatTensor<Flex>,
        d: FloatTensor<Flex>,
        z: FloatTensor<Flex>,
        delta_bias: FloatTensor<Flex>,
        h0: FloatTensor<Flex>,
        opts: u32,
    ) -> (FloatTensor<Flex>, FloatTensor<Flex>) {
        let dt = check_dtype(&[&u, &delta, &a, &b, &c]);
        let x = ScanOwned::new(u, delta, a, b, c, d, z, delta_bias, h0, opts);
        let mut o = by_dtype!(dt, scan_forward(&x));
        let last = o.pop().unwrap();
        (o.pop().unwrap(), last)
    }

    fn selective_scan_backward(
        u: FloatTensor<Flex>,
        delta: FloatTensor<Flex>,
        a: FloatTensor<Flex>,
        b: FloatTensor<Flex>,
        c: FloatTensor<Flex>,
        d: FloatTensor<Flex>,
        z: FloatTensor<Flex>,
        delta_bias: FloatTensor<Flex>,
        h0: FloatTensor<Flex>,
        opts: u32,
        dy: FloatTensor<Flex>,
        dlast: FloatTensor<Flex>,
    ) -> Vec<FloatTensor<Flex>> {
        let dt = check_dtype(&[&u, &delta, &a, &b, &c, &dy, &dlast]);
        let x = ScanOwned::new(u, delta, a, b, c, d, z, delta_bias, h0, opts);
        let (dy, dlast) = (contiguous(dy), contiguous(dlast));
        by_dtype!(dt, scan_backward(&x, &dy, &dlast))
    }

    fn linear_recurrence(
        a: FloatTensor<Flex>,
        b: FloatTensor<Flex>,
        h0: FloatTensor<Flex>,
        has_h0: bool,
        reverse: bool,
    ) -> FloatTensor<Flex> {
        let dt = check_dtype(&[&a, &b]);
        let (a, b, h0) = (contiguous(a), contiguous(b), has_h0.then(|| contiguous(h0)));
        by_dtype!(dt, rec_fwd(&a, &b, h0.as_ref(), reverse))
    }

    fn wkv(
        w: FloatTensor<Flex>,
        u: FloatTensor<Flex>,
        k: FloatTensor<Flex>,
        v: FloatTensor<Flex>,
        s0: FloatTensor<Flex>,
        has_s0: bool,
    ) -> FloatTensor<Flex> {
        let dt = check_dtype(&[&w, &u, &k, &v]);
        let t = [w, u, k, v].map(contiguous);
        let s0 = has_s0.then(|| contiguous(s0));
        by_dtype!(dt, wkv_fwd(&t, s0.as_ref()))
    }

    fn wkv_backward(
        w: FloatTensor<Flex>,
        u: FloatTensor<Flex>,
        k: FloatTensor<Flex>,
        v: FloatTensor<Flex>,
        s0: FloatTensor<Flex>,
        has_s0: bool,
        dy: FloatTensor<Flex>,
    ) -> Vec<FloatTensor<Flex>> {
        let dt = check_dtype(&[&w, &u, &k, &v, &dy]);
        let t = [w, u, k, v].map(contiguous);
        let s0 = has_s0.then(|| contiguous(s0));
        by_dtype!(dt, wkv_bwd(&t, s0.as_ref(), &contiguous(dy)))
    }

    fn linear_recurrence_backward(
        a: FloatTensor<Flex>,
        h: FloatTensor<Flex>,
        h0: FloatTensor<Flex>,
        has_h0: bool,
        dh: FloatTensor<Flex>,
        reverse: bool,
    ) -> Vec<FloatTensor<Flex>> {
        let dt = check_dtype(&[&a, &h, &dh]);
        let (a, h, h0, dh) = (contiguous(a), contiguous(h), has_h0.then(|| contiguous(h0)), contiguous(dh));
        by_dtype!(dt, rec_bwd(&a, &h, h0.as_ref(), &dh, reverse))
    }

    fn linear_recurrence_complex(
        a_re: FloatTensor<Flex>,
        a_im: FloatTensor<Flex>,
        b_re: FloatTensor<Flex>,
        b_im: FloatTensor<Flex>,
        h0_re: FloatTensor<Flex>,
        h0_im: FloatTensor<Flex>,
        has_h0: bool,
        reverse: bool,
    ) -> (FloatTensor<Flex>, FloatTensor<Flex>) {
        let dt = check_dtype(&[&a_re, &a_im, &b_re, &b_im]);
        let t = [a_re, a_im, b_re, b_im].map(contiguous);
        let h0 = has_h0.then(|| (contiguous(h0_re), contiguous(h0_im)));
        let mut o = by_dtype!(dt, crec_fwd(&t, h0.as_ref().map(|(r, i)| (r, i)), reverse));
        let im = o.pop().unwrap();
        (o.pop().unwrap(), im)
    }

    fn linear_recurrence_complex_backward(
        a_re: FloatTensor<Flex>,
        a_im: FloatTensor<Flex>,
        h_re: FloatTensor<Flex>,
        h_im: FloatTensor<Flex>,
        h0_re: FloatTensor<Flex>,
        h0_im: FloatTensor<Flex>,
        has_h0: bool,
        dh_re: FloatTensor<Flex>,
        dh_im: FloatTensor<Flex>,
        reverse: bool,
    ) -> Vec<FloatTensor<Flex>> {
        let dt = check_dtype(&[&a_re, &a_im, &h_re, &h_im, &dh_re, &dh_im]);
        let t = [a_re, a_im, h_re, h_im, dh_re, dh_im].map(contiguous);
        let h0 = has_h0.then(|| (contiguous(h0_re), contiguous(h0_im)));
        by_dtype!(dt, crec_bwd(&t, h0.as_ref().map(|(r, i)| (r, i)), reverse))
    }

    fn causal_conv(u: FloatTensor<Flex>, k: FloatTensor<Flex>) -> FloatTensor<Flex> {
        let dt = check_dtype(&[&u, &k]);
        let (u, k) = (contiguous(u), contiguous(k));
        by_dtype!(dt, conv_fwd(&u, &k))
    }

    fn bias_silu(x: FloatTensor<Flex>, bias: FloatTensor<Flex>) -> FloatTensor<Flex> {
        let dt = check_dtype(&[&x, &bias]);
        let (x, bias) = (contiguous(x), contiguous(bias));
        by_dtype!(dt, silu_fwd(&x, &bias))
    }

    fn bias_silu_backward(
        x: FloatTensor<Flex>,
        bias: FloatTensor<Flex>,
        dy: FloatTensor<Flex>,
    ) -> Vec<FloatTensor<Flex>> {
        let dt = check_dtype(&[&x, &bias, &dy]);
        let (x, bias, dy) = (contiguous(x), contiguous(bias), contiguous(dy));
        by_dtype!(dt, silu_bwd(&x, &bias, &dy))
    }

    fn causal_conv_backward(
        u: FloatTensor<Flex>,
        k: FloatTensor<Flex>,
        dy: FloatTensor<Flex>,
    ) -> Vec<FloatTensor<Flex>> {
        let dt = check_dtype(&[&u, &k, &dy]);
        let (u, k, dy) = (contiguous(u), contiguous(k), contiguous(dy));
        by_dtype!(dt, conv_bwd(&u, &k, &dy))
    }
}
