//! Linear recurrences (real, complex), causal FFT convolution, the fused bias + silu after a
//! convolution, and the S4D kernel.

mod common;
use burn::tensor::{DType, Device, Tensor};
use common::*;
use ssm_core::ComplexTensor;
use ssm_core::fixtures::{SafeFile, fixture_or_skip};
use ssm_core::kernels::s4d::{s4d_conv, s4d_kernel};
use ssm_core::kernels::step::{linear_recurrence_complex_step, linear_recurrence_step};
use ssm_core::kernels::{ConvArgs, bias_silu, causal_conv, linear_recurrence, linear_recurrence_complex, reference};

const SHAPES: &[[usize; 3]] = &[[2, 9, 5], [1, 1, 3], [3, 17, 70], [1, 4, 1]];

fn f32(t: Tensor<3>) -> Tensor<3> {
    t.cast(DType::F32)
}

#[test]
fn real_recurrence_gradients_match_finite_differences() {
    let (adev, dev) = (Device::flex().autodiff(), Device::flex());
    for (si, &[b, l, c]) in SHAPES.iter().enumerate() {
        for reverse in [false, true] {
            let make = |d: &Device| {
                let mut r = rng(si as u64);
                (
                    rand_t(&mut r, [b, l, c], -1.0, 1.0, d),
                    rand_t(&mut r, [b, l, c], -1.0, 1.0, d),
                    rand_t(&mut r, [b, c], -1.0, 1.0, d),
                    rand_t(&mut r, [b, l, c], -1.0, 1.0, d),
                )
            };
            let (a, x, h0, w) = make(&adev);
            let (a, x, h0) = (a.require_grad(), x.require_grad(), h0.require_grad());
            let grads = (linear_recurrence(a.clone(), x.clone(), Some(h0.clone()), reverse) * w).sum().backward();
            let (pa, px, ph, pw) = make(&dev);
            let mut r = rng(1);
            let what = format!("shape {si} reverse {reverse}");
            let f = |a: Tensor<3>, x: Tensor<3>, h: Tensor<2>| dot(linear_recurrence(a, x, Some(h), reverse), &pw);
            check_fd(
                &format!("{what} a"),
                &pa,
                &a.grad(&grads).unwrap(),
                &|t| f(t, px.clone(), ph.clone()),
                &mut r,
                10,
            );
            check_fd(
                &format!("{what} b"),
                &px,
                &x.grad(&grads).unwrap(),
                &|t| f(pa.clone(), t, ph.clone()),
                &mut r,
                10,
            );
            check_fd(
                &format!("{what} h0"),
                &ph,
                &h0.grad(&grads).unwrap(),
                &|t| f(pa.clone(), px.clone(), t),
                &mut r,
                10,
            );
        }
    }
}

#[test]
fn complex_recurrence_gradients_match_finite_differences() {
    let (adev, dev) = (Device::flex().autodiff(), Device::flex());
    for (si, &[b, l, c]) in SHAPES.iter().enumerate() {
        for reverse in [false, true] {
            let make = |d: &Device| {
                let mut r = rng(20 + si as u64);
                let mut t = || rand_t(&mut r, [b, l, c], -0.7, 0.7, d);
                let v: Vec<Tensor<3>> = (0..6).map(|_| t()).collect();
                let mut r2 = rng(30 + si as u64);
                let h: Vec<Tensor<2>> = (0..2).map(|_| rand_t(&mut r2, [b, c], -1.0, 1.0, d)).collect();
                (v, h)
            };
            let (v, h) = make(&adev);
            let v: Vec<Tensor<3>> = v.into_iter().map(|t| t.require_grad()).collect();
            let h: Vec<Tensor<2>> = h.into_iter().map(|t| t.require_grad()).collect();
            let out = linear_recurrence_complex(
                ComplexTensor::new(v[0].clone(), v[1].clone()),
                ComplexTensor::new(v[2].clone(), v[3].clone()),
                Some(ComplexTensor::new(h[0].clone(), h[1].clone())),
                reverse,
            );
            let grads = ((out.re * v[4].clone().inner().autodiff()).sum()
                + (out.im * v[5].clone().inner().autodiff()).sum())
            .backward();
            let (pv, ph) = make(&dev);
            let f = |v: &[Tensor<3>], h: &[Tensor<2>]| {
                let o = linear_recurrence_complex(
                    ComplexTensor::new(v[0].clone(), v[1].clone()),
                    ComplexTensor::new(v[2].clone(), v[3].clone()),
                    Some(ComplexTensor::new(h[0].clone(), h[1].clone())),
                    reverse,
                );
                dot(o.re, &v[4]) + dot(o.im, &v[5])
            };
            let mut r = rng(2);
            for i in 0..4 {
                let func = |t: Tensor<3>| {
                    let mut v2 = pv.clone();
                    v2[i] = t;
                    f(&v2, &ph)
                };
                check_fd(
                    &format!("shape {si} rev {reverse} input {i}"),
                    &pv[i],
                    &v[i].grad(&grads).unwrap(),
                    &func,
                    &mut r,
                    8,
                );
            }
            for i in 0..2 {
                let func = |t: Tensor<2>| {
                    let mut h2 = ph.clone();
                    h2[i] = t;
                    f(&pv, &h2)
                };
                check_fd(
                    &format!("shape {si} rev {reverse} h0 {i}"),
                    &ph[i],
                    &h[i].grad(&grads).unwrap(),
                    &func,
                    &mut r,
                    8,
                );
            }
        }
    }
}

#[test]
fn recurrences_match_reference_and_step_form() {
    let dev = Device::flex();
    for (si, &[b, l, c]) in SHAPES.iter().enumerate() {
        let mut r = rng(50 + si as u64);
        // a and b as non-contiguous f32 views ([B, C, L] transposed)
        let a = f32(rand_t(&mut r, [b, c, l], -1.0, 1.0, &dev)).swap_dims(1, 2);
        let x = f32(rand_t(&mut r, [b, c, l], -1.0, 1.0, &dev)).swap_dims(1, 2);
        let ai = f32(rand_t(&mut r, [b, l, c], -0.5, 0.5, &dev));
        let xi = f32(rand_t(&mut r, [b, l, c], -1.0, 1.0, &dev));
        let h0 = rand_t(&mut r, [b, c], -1.0, 1.0, &dev).cast(DType::F32);
        let h0i = rand_t(&mut r, [b, c], -1.0, 1.0, &dev).cast(DType::F32);
        for reverse in [false, true] {
            let k = linear_recurrence(a.clone(), x.clone(), Some(h0.clone()), reverse);
            let rf = reference::linear_recurrence(a.clone(), x.clone(), Some(h0.clone()), reverse);
            assert_close(&format!("real {si} {reverse}"), &k, &rf, 1e-5);
            let ca = ComplexTensor::new(a.clone(), ai.clone());
            let cx = ComplexTensor::new(x.clone(), xi.clone());
            let ch = ComplexTensor::new(h0.clone(), h0i.clone());
            let kc = linear_recurrence_complex(ca.clone(), cx.clone(), Some(ch.clone()), reverse);
            let rc = reference::linear_recurrence_complex(ca.clone(), cx.clone(), Some(ch.clone()), reverse);
            assert_close(&format!("complex re {si} {reverse}"), &kc.re, &rc.re, 1e-5);
            assert_close(&format!("complex im {si} {reverse}"), &kc.im, &rc.im, 1e-5);
            if !reverse {
                let (mut h, mut hc) = (h0.clone(), ch.clone());
                let (mut hs, mut hcs) = (Vec::new(), Vec::new());
                for t in 0..l {
                    let at = |v: &Tensor<3>| v.clone().narrow(1, t, 1).squeeze_dim::<2>(1);
                    h = linear_recurrence_step(h, at(&a), at(&x));
                    hc = linear_recurrence_complex_step(
                        hc,
                        ComplexTensor::new(at(&a), at(&ai)),
                        ComplexTensor::new(at(&x), at(&xi)),
                    );
                    hs.push(h.clone().unsqueeze_dim::<3>(1));
                    hcs.push(hc.re.clone().unsqueeze_dim::<3>(1));
                }
                assert_close(&format!("real step {si}"), &Tensor::cat(hs, 1), &k, 1e-5);
                assert_close(&format!("complex step {si}"), &Tensor::cat(hcs, 1), &kc.re, 1e-5);
            }
        }
    }
}

/// Direct O(L²) causal convolution.
fn direct_conv(u: &[f64], k: &[f64], [b, h, l]: [usize; 3], lk: usize) -> Vec<f64> {
    let mut y = vec![0.0; b * h * l];
    for bi in 0..b {
        for hi in 0..h {
            for t in 0..l {
                let mut s = 0.0;
                for j in 0..=t.min(lk - 1) {
                    s += k[hi * lk + j] * u[(bi * h + hi) * l + t - j];
                }
                y[(bi * h + hi) * l + t] = s;
            }
        }
    }
    y
}

#[test]
fn causal_conv_matches_direct_reference_and_fd() {
    let (adev, dev) = (Device::flex().autodiff(), Device::flex());
    for (si, &([b, h, l], lk)) in
        [([2, 3, 10], 10), ([1, 1, 1], 1), ([2, 4, 33], 7), ([1, 2, 100], 100), ([3, 2, 5], 8), ([2, 2, 70], 33)]
            .iter()
            .enumerate()
    {
        let make = |d: &Device| {
            let mut r = rng(60 + si as u64);
            (
                rand_t(&mut r, [b, h, l], -1.0, 1.0, d),
                rand_t(&mut r, [h, lk], -1.0, 1.0, d),
                rand_t(&mut r, [b, h, l], -1.0, 1.0, d),
            )
        };
        let (pu, pk, pw) = make(&dev);
        let y = causal_conv(pu.clone(), pk.clone());
        let want = direct_conv(&vals(&pu), &vals(&pk), [b, h, l], lk);
        let e = rel_err(&vals(&y), &want);
        assert!(e < 1e-12, "shape {si}: fft conv vs direct: {e:e}");
        let yr = reference::causal_conv(ConvArgs { u: pu.clone().cast(DType::F32), k: pk.clone().cast(DType::F32) });
        assert_close(&format!("shape {si} reference"), &yr.cast(DType::F64), &y, 1e-5);
        let (u, k, w) = make(&adev);
        let (u, k) = (u.require_grad(), k.require_grad());
        let grads = (causal_conv(u.clone(), k.clone()) * w).sum().backward();
        let mut r = rng(3);
        check_fd(
            &format!("shape {si} u"),
            &pu,
            &u.grad(&grads).unwrap(),
            &|t| dot(causal_conv(t, pk.clone()), &pw),
            &mut r,
            12,
        );
        check_fd(
            &format!("shape {si} k"),
            &pk,
            &k.grad(&grads).unwrap(),
            &|t| dot(causal_conv(pu.clone(), t), &pw),
            &mut r,
            12,
        );
    }
}

/// `bias_silu` (one kernel) against `silu(x + b)` as tensor ops, in f64 and f32 and both with
/// and without the bias; its gradients against finite differences.
#[test]
fn bias_silu_matches_tensor_ops_and_fd() {
    let (adev, dev) = (Device::flex().autodiff(), Device::flex());
    let ops = |x: Tensor<3>, b: Option<Tensor<1>>| {
        let c = x.dims()[1];
        burn::tensor::activation::silu(match b {
            Some(b) => x + b.reshape([1, c, 1]),
            None => x,
        })
    };
    for (si, &[b, c, l]) in [[2, 3, 10], [1, 1, 1], [3, 5, 37], [1, 2, 70]].iter().enumerate() {
        let make = |d: &Device| {
            let mut r = rng(80 + si as u64);
            (
                rand_t(&mut r, [b, c, l], -6.0, 6.0, d),
                rand_t(&mut r, [c], -1.0, 1.0, d),
                rand_t(&mut r, [b, c, l], -1.0, 1.0, d),
            )
        };
        let (px, pb, pw) = make(&dev);
        for bias in [Some(pb.clone()), None] {
            assert_close(
                &format!("shape {si} f64"),
                &bias_silu(px.clone(), bias.clone()),
                &ops(px.clone(), bias.clone()),
                1e-12,
            );
            let (x32, b32) = (f32(px.clone()), bias.map(|t| t.cast(DType::F32)));
            let (got, want) = (bias_silu(x32.clone(), b32.clone()), ops(x32, b32));
            assert_close(&format!("shape {si} f32"), &got.cast(DType::F64), &want.cast(DType::F64), 1e-6);
        }
        let (x, bb, w) = make(&adev);
        let (x, bb) = (x.require_grad(), bb.require_grad());
        let grads = (bias_silu(x.clone(), Some(bb.clone())) * w).sum().backward();
        let mut r = rng(4);
        let f = |t: Tensor<3>, bias: Tensor<1>| dot(bias_silu(t, Some(bias)), &pw);
        check_fd(&format!("shape {si} x"), &px, &x.grad(&grads).unwrap(), &|t| f(t, pb.clone()), &mut r, 12);
        check_fd(&format!("shape {si} bias"), &pb, &bb.grad(&grads).unwrap(), &|t| f(px.clone(), t), &mut r, 12);
    }
}

fn check_s4d(file: &str, f64: bool) {
    if f64 && !ssm_core::fixtures::test_device_has_f64() {
        eprintln!("SKIP: {file}: the test device has no f64");
        return;
    }
    let Some(path) = fixture_or_skip(&format!("ops/{file}")) else { return };
    let sf = SafeFile::open(&path).unwrap();
    let dev = ssm_core::fixtures::test_device().autodiff();
    let t2 = |n: &str| sf.tensor::<2>(n, &dev, f64).unwrap().require_grad();
    let (a_re, a_im, c_re, c_im) = (t2("A_re"), t2("A_im"), t2("C_re"), t2("C_im"));
    let log_dt = sf.tensor::<1>("log_dt", &dev, f64).unwrap().require_grad();
    let dv = sf.tensor::<1>("Dv", &dev, f64).unwrap().require_grad();
    let u = sf.tensor::<3>("u", &dev, f64).unwrap().require_grad();
    let dy = sf.tensor::<3>("dy", &dev, f64).unwrap();
    let l = u.dims()[2];
    let tol = if f64 { 1e-9 } else { 1e-4 };
    let k = s4d_kernel(
        log_dt.clone(),
        ComplexTensor::new(a_re.clone(), a_im.clone()),
        ComplexTensor::new(c_re.clone(), c_im.clone()),
        l,
    );
    assert_close(&format!("{file} kernel"), &k, &sf.tensor::<2>("kernel", &dev, f64).unwrap(), tol);
    let y = s4d_conv(u.clone(), k, dv.clone());
    assert_close(&format!("{file} y"), &y, &sf.tensor::<3>("y", &dev, f64).unwrap(), tol);
    let grads = (y * dy).sum().backward();
    let w = |n: &str| n.to_string();
    assert_close(
        &format!("{file} grad_u"),
        &u.grad(&grads).unwrap(),
        &sf.tensor::<3>("grad_u", &dev, f64).unwrap(),
        tol,
    );
    for (t, n) in [(&a_re, "grad_A_re"), (&a_im, "grad_A_im"), (&c_re, "grad_C_re"), (&c_im, "grad_C_im")] {
        assert_close(
            &format!("{file} {}", w(n)),
            &t.grad(&grads).unwrap(),
            &sf.tensor::<2>(n, &dev, f64).unwrap(),
            tol,
        );
    }
    for (t, n) in [(&log_dt, "grad_log_dt"), (&dv, "grad_Dv")] {
        assert_close(&format!("{file} {n}"), &t.grad(&grads).unwrap(), &sf.tensor::<1>(n, &dev, f64).unwrap(), tol);
    }
}

#[test]
fn s4d_matches_pytorch_fixture_f32() {
    check_s4d("s4d.safetensors", false);
}

#[test]
fn s4d_matches_pytorch_fixture_f64() {
    check_s4d("s4d_f64.safetensors", true);
}
