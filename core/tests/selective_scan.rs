//! Selective scan: PyTorch fixtures, finite differences, kernel == reference, step == parallel.

mod common;
use burn::tensor::{Device, Tensor};
use common::*;
use ssm_core::fixtures::{SafeFile, fixture_or_skip};
use ssm_core::kernels::step::{ScanParams, ScanStepInput, selective_scan_step};
use ssm_core::kernels::{ScanArgs, reference, selective_scan};

fn check_fixture(file: &str, f64: bool) {
    if f64 && !ssm_core::fixtures::test_device_has_f64() {
        eprintln!("SKIP: {file}: the test device has no f64");
        return;
    }
    let Some(path) = fixture_or_skip(&format!("ops/{file}")) else { return };
    let sf = SafeFile::open(&path).unwrap();
    let dev = ssm_core::fixtures::test_device().autodiff();
    let t3 = |n: &str| sf.tensor::<3>(n, &dev, f64).unwrap().require_grad();
    let t2 = |n: &str| sf.tensor::<2>(n, &dev, f64).unwrap().require_grad();
    let t1 = |n: &str| sf.tensor::<1>(n, &dev, f64).unwrap().require_grad();
    let (u, delta, a, bm, cm) = (t3("u"), t3("delta"), t2("A"), t3("Bm"), t3("Cm"));
    let (dv, z, bias) = (t1("Dv"), t3("z"), t1("delta_bias"));
    let dy = sf.tensor::<3>("dy", &dev, f64).unwrap();
    let tol = if f64 { 1e-9 } else { 1e-4 };
    for (name, use_kernel) in [("kernel", true), ("reference", false)] {
        let args = ScanArgs::new(u.clone(), delta.clone(), a.clone(), bm.clone(), cm.clone())
            .d(dv.clone())
            .z(z.clone())
            .delta_bias(bias.clone())
            .softplus(true);
        let out = if use_kernel { selective_scan(args) } else { reference::selective_scan(args) };
        let want = |n: &str| sf.tensor::<3>(n, &dev, f64).unwrap();
        assert_close(&format!("{file} {name} y"), &out.y, &want("y"), tol);
        assert_close(&format!("{file} {name} last_state"), &out.last_state, &want("last_state"), tol);
        let grads = (out.y * dy.clone()).sum().backward();
        let g3 = |t: &Tensor<3>, n: &str| {
            assert_close(&format!("{file} {name} {n}"), &t.grad(&grads).unwrap(), &want(n), tol)
        };
        g3(&u, "grad_u");
        g3(&delta, "grad_delta");
        g3(&bm, "grad_Bm");
        g3(&cm, "grad_Cm");
        g3(&z, "grad_z");
        let w2 = sf.tensor::<2>("grad_A", &dev, f64).unwrap();
        assert_close(&format!("{file} {name} grad_A"), &a.grad(&grads).unwrap(), &w2, tol);
        for (t, n) in [(&dv, "grad_Dv"), (&bias, "grad_delta_bias")] {
            let w = sf.tensor::<1>(n, &dev, f64).unwrap();
            assert_close(&format!("{file} {name} {n}"), &t.grad(&grads).unwrap(), &w, tol);
        }
    }
}

#[test]
fn matches_pytorch_fixture_f32() {
    check_fixture("selective_scan.safetensors", false);
}

#[test]
fn matches_pytorch_fixture_f64() {
    check_fixture("selective_scan_f64.safetensors", true);
}

struct Case {
    b: usize,
    d: usize,
    l: usize,
    n: usize,
    g: usize,
    optional: bool,
    softplus: bool,
}

struct Inputs {
    u: Tensor<3>,
    delta: Tensor<3>,
    a: Tensor<2>,
    bm: Tensor<4>,
    cm: Tensor<4>,
    dv: Tensor<1>,
    z: Tensor<3>,
    bias: Tensor<1>,
    h0: Tensor<3>,
}

fn inputs(c: &Case, seed: u64, dev: &Device) -> Inputs {
    inputs_t(c, seed, dev, false)
}

/// Random inputs; with `f32_nc`, f32 tensors where u and delta are non-contiguous views.
fn inputs_t(c: &Case, seed: u64, dev: &Device, f32_nc: bool) -> Inputs {
    let mut r = rng(seed);
    let lo = if c.softplus { -2.0 } else { 0.05 };
    let bdl = |r: &mut rand::rngs::StdRng, lo: f64, hi: f64| -> Tensor<3> {
        if f32_nc {
            rand_t(r, [c.b, c.l, c.d], lo, hi, dev).swap_dims(1, 2)
        } else {
            rand_t(r, [c.b, c.d, c.l], lo, hi, dev)
        }
    };
    let x = Inputs {
        u: bdl(&mut r, -1.0, 1.0),
        delta: bdl(&mut r, lo, 1.0),
        a: rand_t(&mut r, [c.d, c.n], -2.0, -0.1, dev),
        bm: rand_t(&mut r, [c.b, c.g, c.n, c.l], -1.0, 1.0, dev),
        cm: rand_t(&mut r, [c.b, c.g, c.n, c.l], -1.0, 1.0, dev),
        dv: rand_t(&mut r, [c.d], -1.0, 1.0, dev),
        z: rand_t(&mut r, [c.b, c.d, c.l], -2.0, 2.0, dev),
        bias: rand_t(&mut r, [c.d], -0.5, 0.5, dev),
        h0: rand_t(&mut r, [c.b, c.d, c.n], -1.0, 1.0, dev),
    };
    if !f32_nc {
        return x;
    }
    let f = burn::tensor::DType::F32;
    Inputs {
        u: x.u.cast(f),
        delta: x.delta.cast(f),
        a: x.a.cast(f),
        bm: x.bm.cast(f),
        cm: x.cm.cast(f),
        dv: x.dv.cast(f),
        z: x.z.cast(f),
        bias: x.bias.cast(f),
        h0: x.h0.cast(f),
    }
}

fn require_grad(x: Inputs) -> Inputs {
    Inputs {
        u: x.u.require_grad(),
        delta: x.delta.require_grad(),
        a: x.a.require_grad(),
        bm: x.bm.require_grad(),
        cm: x.cm.require_grad(),
        dv: x.dv.require_grad(),
        z: x.z.require_grad(),
        bias: x.bias.require_grad(),
        h0: x.h0.require_grad(),
    }
}

fn args(c: &Case, x: &Inputs) -> ScanArgs {
    let a =
        ScanArgs::grouped(x.u.clone(), x.delta.clone(), x.a.clone(), x.bm.clone(), x.cm.clone()).softplus(c.softplus);
    if c.optional { a.d(x.dv.clone()).z(x.z.clone()).delta_bias(x.bias.clone()).h0(x.h0.clone()) } else { a }
}

const CASES: &[Case] = &[
    Case { b: 2, d: 4, l: 7, n: 3, g: 1, optional: true, softplus: true },
    Case { b: 1, d: 3, l: 1, n: 1, g: 1, optional: true, softplus: false },
    Case { b: 2, d: 4, l: 5, n: 9, g: 2, optional: true, softplus: true },
    Case { b: 1, d: 2, l: 6, n: 16, g: 1, optional: false, softplus: false },
    Case { b: 3, d: 6, l: 33, n: 8, g: 3, optional: false, softplus: true },
    // N = 2·W and 4·W of the AVX-512 f32 kernel (its state-in-registers paths).
    Case { b: 1, d: 2, l: 4, n: 32, g: 1, optional: true, softplus: true },
    Case { b: 1, d: 1, l: 3, n: 64, g: 1, optional: false, softplus: true },
];

/// Finite-difference check of every input's gradient through the kernel (f64).
#[test]
fn gradients_match_finite_differences() {
    let adev = Device::flex().autodiff();
    let dev = Device::flex();
    for (ci, c) in CASES.iter().enumerate() {
        let x = require_grad(inputs(c, 10 + ci as u64, &adev));
        let plain = inputs(c, 10 + ci as u64, &dev);
        let weights = |d: &Device| {
            let mut r = rng(99 + ci as u64);
            (rand_t(&mut r, [c.b, c.d, c.l], -1.0, 1.0, d), rand_t(&mut r, [c.b, c.d, c.n], -1.0, 1.0, d))
        };
        let (wy_ad, ws_ad) = weights(&adev);
        let (wy, ws) = weights(&dev);
        let out = selective_scan(args(c, &x));
        let grads = ((out.y * wy_ad).sum() + (out.last_state * ws_ad).sum()).backward();
        let f = |p: &Inputs| -> f64 {
            let o = selective_scan(args(c, p));
            dot(o.y, &wy) + dot(o.last_state, &ws)
        };
        let mut rr = rng(7);
        let k = 12;
        macro_rules! fd {
            ($field:ident, $name:expr) => {{
                let g = x.$field.grad(&grads).unwrap();
                let func = |t| f(&Inputs { $field: t, ..plain_clone(&plain) });
                check_fd(&format!("case {ci} {}", $name), &plain.$field, &g, &func, &mut rr, k);
            }};
        }
        fd!(u, "u");
        fd!(delta, "delta");
        fd!(a, "A");
        fd!(bm, "B");
        fd!(cm, "C");
        if c.optional {
            fd!(dv, "D");
            fd!(z, "z");
            fd!(bias, "delta_bias");
            fd!(h0, "h0");
        }
    }
}

fn plain_clone(p: &Inputs) -> Inputs {
    Inputs {
        u: p.u.clone(),
        delta: p.delta.clone(),
        a: p.a.clone(),
        bm: p.bm.clone(),
        cm: p.cm.clone(),
        dv: p.dv.clone(),
        z: p.z.clone(),
        bias: p.bias.clone(),
        h0: p.h0.clone(),
    }
}

/// Kernel == reference (forward and all gradients) in f32, including non-contiguous inputs.
#[test]
fn kernel_matches_reference() {
    let dev = Device::flex().autodiff();
    for (ci, c) in CASES.iter().enumerate() {
        let x32 = require_grad(inputs_t(c, 40 + ci as u64, &dev, true));
        let mut r = rng(5);
        let wy = rand_t(&mut r, [c.b, c.d, c.l], -1.0, 1.0, &dev).cast(burn::tensor::DType::F32);
        let ws = rand_t(&mut r, [c.b, c.d, c.n], -1.0, 1.0, &dev).cast(burn::tensor::DType::F32);
        let run = |kernel: bool| {
            let a = args(c, &x32);
            let o = if kernel { selective_scan(a) } else { reference::selective_scan(a) };
            let grads = ((o.y.clone() * wy.clone()).sum() + (o.last_state.clone() * ws.clone()).sum()).backward();
            (o, grads)
        };
        let (ok, gk) = run(true);
        let (or, gr) = run(false);
        let tol = 2e-5;
        assert_close(&format!("case {ci} y"), &ok.y, &or.y, tol);
        assert_close(&format!("case {ci} last"), &ok.last_state, &or.last_state, tol);
        assert_close(&format!("case {ci} du"), &x32.u.grad(&gk).unwrap(), &x32.u.grad(&gr).unwrap(), tol);
        assert_close(&format!("case {ci} ddelta"), &x32.delta.grad(&gk).unwrap(), &x32.delta.grad(&gr).unwrap(), tol);
        assert_close(&format!("case {ci} dA"), &x32.a.grad(&gk).unwrap(), &x32.a.grad(&gr).unwrap(), tol);
        assert_close(&format!("case {ci} dB"), &x32.bm.grad(&gk).unwrap(), &x32.bm.grad(&gr).unwrap(), tol);
        assert_close(&format!("case {ci} dC"), &x32.cm.grad(&gk).unwrap(), &x32.cm.grad(&gr).unwrap(), tol);
        if c.optional {
            assert_close(&format!("case {ci} dz"), &x32.z.grad(&gk).unwrap(), &x32.z.grad(&gr).unwrap(), tol);
            assert_close(&format!("case {ci} dh0"), &x32.h0.grad(&gk).unwrap(), &x32.h0.grad(&gr).unwrap(), tol);
            assert_close(&format!("case {ci} dD"), &x32.dv.grad(&gk).unwrap(), &x32.dv.grad(&gr).unwrap(), tol);
            assert_close(&format!("case {ci} dbias"), &x32.bias.grad(&gk).unwrap(), &x32.bias.grad(&gr).unwrap(), tol);
        }
    }
}

/// Running the step form L times equals the parallel scan (outputs and final state).
#[test]
fn step_form_equals_parallel() {
    let dev = Device::flex();
    for (ci, c) in CASES.iter().enumerate() {
        let x = inputs(c, 70 + ci as u64, &dev);
        let par = selective_scan(args(c, &x));
        let p = ScanParams {
            a: x.a.clone(),
            d: c.optional.then(|| x.dv.clone()),
            delta_bias: c.optional.then(|| x.bias.clone()),
            delta_softplus: c.softplus,
        };
        let mut state =
            if c.optional { x.h0.clone() } else { Tensor::zeros([c.b, c.d, c.n], (&dev, burn::tensor::DType::F64)) };
        let mut ys = Vec::new();
        for t in 0..c.l {
            let at = |v: &Tensor<3>| v.clone().narrow(2, t, 1).squeeze_dim::<2>(2);
            let at4 = |v: &Tensor<4>| v.clone().narrow(3, t, 1).squeeze_dim::<3>(3);
            let inp = ScanStepInput {
                u: at(&x.u),
                delta: at(&x.delta),
                b: at4(&x.bm),
                c: at4(&x.cm),
                z: c.optional.then(|| at(&x.z)),
            };
            let (y, s) = selective_scan_step(state, inp, &p);
            state = s;
            ys.push(y.unsqueeze_dim::<3>(2));
        }
        let seq = Tensor::cat(ys, 2);
        assert_close(&format!("case {ci} step y"), &seq, &par.y, 1e-10);
        assert_close(&format!("case {ci} step state"), &state, &par.last_state, 1e-10);
    }
}

#[test]
#[should_panic(expected = "A must be [D, N]")]
fn wrong_shape_names_the_shapes() {
    let dev = Device::flex();
    let z3 = Tensor::<3>::zeros([1, 2, 3], &dev);
    let b = Tensor::<3>::zeros([1, 4, 3], &dev);
    selective_scan(ScanArgs::new(z3.clone(), z3, Tensor::zeros([3, 4], &dev), b.clone(), b));
}
