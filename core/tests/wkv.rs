//! RWKV-4's WKV kernel: against the definition summed directly, the tensor-op reference, finite
//! differences (every input, with and without an initial state), state carry and extreme keys.

mod common;
use burn::tensor::{DType, Device, Tensor, TensorData};
use common::*;
use ssm_core::kernels::{reference, wkv};

const SHAPES: &[[usize; 3]] = &[[2, 9, 5], [1, 1, 3], [3, 33, 4]];

/// wkv_t = (Σ_{i<t} e^{−(t−1−i)w+k_i} v_i + e^{u+k_t} v_t) / (same without v), by log-sum-exp.
fn direct(w: &[f64], u: &[f64], k: &[f64], v: &[f64], [b, l, c]: [usize; 3]) -> Vec<f64> {
    let mut out = vec![0.0; b * l * c];
    for bi in 0..b {
        for ci in 0..c {
            for t in 0..l {
                let at = |i: usize| (bi * l + i) * c + ci;
                let mut terms: Vec<(f64, f64)> =
                    (0..t).map(|i| (-((t - 1 - i) as f64) * w[ci] + k[at(i)], v[at(i)])).collect();
                terms.push((u[ci] + k[at(t)], v[at(t)]));
                let m = terms.iter().fold(f64::NEG_INFINITY, |m, &(e, _)| m.max(e));
                let (num, den) =
                    terms.iter().fold((0.0, 0.0), |(n, d), &(e, x)| (n + (e - m).exp() * x, d + (e - m).exp()));
                out[at(t)] = num / den;
            }
        }
    }
    out
}

type Inputs = (Tensor<1>, Tensor<1>, Tensor<3>, Tensor<3>, Tensor<3>);

fn inputs(seed: u64, [b, l, c]: [usize; 3], k_range: f64, dev: &Device) -> Inputs {
    let mut r = rng(seed);
    let w = rand_t(&mut r, [c], 0.05, 2.0, dev);
    let u = rand_t(&mut r, [c], -1.0, 1.0, dev);
    let k = rand_t(&mut r, [b, l, c], -k_range, k_range, dev);
    let v = rand_t(&mut r, [b, l, c], -1.0, 1.0, dev);
    // A state reached by running a short random history (b ≥ 1 as every real state).
    let hk = rand_t(&mut r, [b, 3, c], -1.0, 1.0, dev);
    let hv = rand_t(&mut r, [b, 3, c], -1.0, 1.0, dev);
    let (_, s0) = wkv(w.clone(), u.clone(), hk, hv, None);
    (w, u, k, v, s0)
}

#[test]
fn wkv_equals_its_definition_even_for_keys_spanning_hundreds() {
    let dev = Device::flex();
    for (i, &s) in SHAPES.iter().enumerate() {
        for k_range in [1.0, 300.0] {
            let (w, u, k, v, _) = inputs(i as u64, s, k_range, &dev);
            let want = direct(&vals(&w), &vals(&u), &vals(&k), &vals(&v), s);
            let (y, _) = wkv(w.clone(), u.clone(), k.clone(), v.clone(), None);
            let e = rel_err(&vals(&y), &want);
            assert!(e < 1e-12, "shape {s:?} k ±{k_range}: f64 error {e:e}");
            let f = |t: &Tensor<3>| t.clone().cast(DType::F32);
            let (y32, _) = wkv(w.cast(DType::F32), u.cast(DType::F32), f(&k), f(&v), None);
            let e = rel_err(&vals(&y32), &want);
            assert!(e < 1e-5, "shape {s:?} k ±{k_range}: f32 error {e:e}");
        }
    }
}

#[test]
fn wkv_kernel_matches_the_tensor_op_reference_with_a_state() {
    let dev = Device::flex();
    for (i, &s) in SHAPES.iter().enumerate() {
        let (w, u, k, v, s0) = inputs(10 + i as u64, s, 2.0, &dev);
        let l = s[1];
        let out = reference::wkv(w.clone(), u.clone(), k.clone(), v.clone(), Some(s0.clone()));
        let (y, last) = wkv(w, u, k, v, Some(s0));
        assert_close("y", &y, &out.clone().narrow(1, 0, l), 1e-12);
        // The state's scale is free (a·eᵖ): compare the sums it stands for.
        let sums = |st: Tensor<3>| st.clone().narrow(1, 0, 2) * st.narrow(1, 2, 1).exp();
        assert_close("final sums", &sums(last), &sums(out.narrow(1, l, 3)), 1e-12);
    }
}

#[test]
fn wkv_state_carries_across_chunks() {
    let dev = Device::flex();
    let (w, u, k, v, s0) = inputs(3, [2, 20, 6], 3.0, &dev);
    let (whole, _) = wkv(w.clone(), u.clone(), k.clone(), v.clone(), Some(s0.clone()));
    let (ya, sa) = wkv(w.clone(), u.clone(), k.clone().narrow(1, 0, 7), v.clone().narrow(1, 0, 7), Some(s0));
    let (yb, _) = wkv(w, u, k.narrow(1, 7, 13), v.narrow(1, 7, 13), Some(sa));
    assert_close("a‖b", &Tensor::cat(vec![ya, yb], 1), &whole, 1e-12);
}

#[test]
fn wkv_gradients_match_finite_differences() {
    let (adev, dev) = (Device::flex().autodiff(), Device::flex());
    for (i, &s) in SHAPES.iter().enumerate() {
        for with_state in [false, true] {
            let (w, u, k, v, s0) = inputs(20 + i as u64, s, 2.0, &adev);
            let mut r = rng(99);
            let weights = rand_t(&mut r, s, -1.0, 1.0, &dev);
            let (w, u, k, v, s0) =
                (w.require_grad(), u.require_grad(), k.require_grad(), v.require_grad(), s0.detach().require_grad());
            let state = with_state.then(|| s0.clone());
            let (y, _) = wkv(w.clone(), u.clone(), k.clone(), v.clone(), state);
            let wa = Tensor::<3>::from_data(weights.to_data(), (&adev, DType::F64));
            let grads = (y * wa).sum().backward();
            let (pw, pu, pk, pv, ps) = inputs(20 + i as u64, s, 2.0, &dev);
            let f = |w: Tensor<1>, u: Tensor<1>, k: Tensor<3>, v: Tensor<3>, s: Tensor<3>| {
                dot(wkv(w, u, k, v, with_state.then_some(s)).0, &weights)
            };
            let what = format!("shape {s:?} state {with_state}");
            let (pw2, pu2, pk2, pv2, ps2) = (pw.clone(), pu.clone(), pk.clone(), pv.clone(), ps.clone());
            check_fd(
                &format!("{what} w"),
                &pw,
                &w.grad(&grads).unwrap(),
                &|t| f(t, pu.clone(), pk.clone(), pv.clone(), ps.clone()),
                &mut r,
                10,
            );
            check_fd(
                &format!("{what} u"),
                &pu2,
                &u.grad(&grads).unwrap(),
                &|t| f(pw2.clone(), t, pk.clone(), pv.clone(), ps.clone()),
                &mut r,
                10,
            );
            check_fd(
                &format!("{what} k"),
                &pk2,
                &k.grad(&grads).unwrap(),
                &|t| f(pw.clone(), pu.clone(), t, pv.clone(), ps.clone()),
                &mut r,
                10,
            );
            check_fd(
                &format!("{what} v"),
                &pv2,
                &v.grad(&grads).unwrap(),
                &|t| f(pw.clone(), pu.clone(), pk.clone(), t, ps.clone()),
                &mut r,
                10,
            );
            if with_state {
                check_fd(
                    &format!("{what} s0"),
                    &ps2,
                    &s0.grad(&grads).unwrap(),
                    &|t| f(pw.clone(), pu.clone(), pk.clone(), pv.clone(), t),
                    &mut r,
                    10,
                );
            }
        }
    }
}

#[test]
fn wkv_stays_finite_in_f32_over_a_long_sequence_with_huge_keys() {
    let dev = Device::flex();
    let (b, l, c) = (1, 4096, 3);
    let k: Vec<f32> = (0..l * c).map(|i| if i % 7 == 0 { 200.0 } else { -200.0 + (i % 11) as f32 }).collect();
    let k = Tensor::<3>::from_data(TensorData::new(k, vec![b, l, c]), (&dev, DType::F32));
    let v = Tensor::<3>::ones([b, l, c], (&dev, DType::F32));
    let w = Tensor::<1>::from_data(TensorData::new(vec![0.0f32, 1e-3, 5.0], vec![c]), (&dev, DType::F32));
    let u = Tensor::<1>::zeros([c], (&dev, DType::F32));
    let (y, s) = wkv(w, u, k, v, None);
    let (y, s) = (vals(&y), vals(&s));
    assert!(y.iter().chain(&s).all(|x| x.is_finite()), "non-finite WKV output");
    assert!(y.iter().all(|x| (x - 1.0).abs() < 1e-5), "a weighted mean of ones must be one");
}
