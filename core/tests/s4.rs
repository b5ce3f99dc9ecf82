//! S4's DPLR kernel (Cauchy + Woodbury at the roots of unity, then an inverse FFT) against the
//! shared dense float64 reference and against dense matrix powers of the coupled real system.

use burn::tensor::{DType, Device, Tensor, TensorData};
use nalgebra::{Complex, DMatrix, DVector};
use ssm_core::ComplexTensor;
use ssm_core::fixtures::{SafeFile, fixture_or_skip, max_abs_diff, values_f64};
use ssm_core::kernels::causal_conv;
use ssm_core::kernels::dplr::{Dplr, dplr_kernel};

fn check_fixture(file: &str, f64: bool) {
    if f64 && !ssm_core::fixtures::test_device_has_f64() {
        eprintln!("SKIP: {file}: the test device has no f64");
        return;
    }
    let Some(path) = fixture_or_skip(&format!("ops/{file}")) else { return };
    let sf = SafeFile::open(&path).unwrap();
    let dev = ssm_core::fixtures::test_device();
    let t2 = |n: &str| sf.tensor::<2>(n, &dev, f64).unwrap();
    let z = |a: &str, b: &str| ComplexTensor::new(t2(a), t2(b));
    let p3 = |n: &str| sf.tensor::<3>(n, &dev, f64).unwrap();
    let [_, h, n] = p3("p_re").dims();
    let p = ComplexTensor::new(p3("p_re").reshape([h, n]), p3("p_im").reshape([h, n]));
    let dt = sf.tensor::<1>("log_dt", &dev, f64).unwrap().exp();
    let sys = Dplr { lambda: z("lambda_re", "lambda_im"), p, dt, pairs: false };
    let u = p3("u");
    let l = u.dims()[2];
    let k = dplr_kernel(&sys, z("b_re", "b_im"), z("c_re", "c_im"), l);
    // burn-flex's FFT keeps f32 twiddle factors, so even f64 inputs agree to ~1e-7 only.
    let tol = if f64 { 1e-6 } else { 1e-4 };
    let err = max_abs_diff(&values_f64(k.clone()), &values_f64(t2("kernel")));
    println!("{file}: kernel max |error| {err:.2e}");
    assert!(err <= tol, "{file}: kernel differs from the dense reference by {err:.2e} (> {tol:.0e})");
    let dv = sf.tensor::<1>("Dv", &dev, f64).unwrap();
    let y = causal_conv(u.clone(), k) + u * dv.reshape([1, h, 1]);
    let err = max_abs_diff(&values_f64(y), &values_f64(p3("y")));
    assert!(err <= tol, "{file}: y differs by {err:.2e}");
}

#[test]
fn dplr_kernel_matches_the_dense_reference_f64() {
    check_fixture("s4_dplr_f64.safetensors", true);
}

#[test]
fn dplr_kernel_matches_the_dense_reference_f32() {
    check_fixture("s4_dplr.safetensors", false);
}

/// A seeded pseudo-random number in [−1, 1).
fn noise(i: usize, salt: u64) -> f64 {
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 29;
    (x >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

fn tensor2(v: &[f64], h: usize, n: usize, dev: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v.to_vec(), [h, n]), (dev, DType::F64))
}

/// With conjugate pairs the stored modes are half of a real system of 2N states whose rank-1
/// term couples partners: the kernel must equal Σ over all 2N modes of c Ā^l B̄ computed densely.
#[test]
fn paired_modes_are_the_coupled_real_system() {
    let (h, n, len) = (3, 4, 37);
    let dev = Device::flex();
    let draw = |salt: u64| (0..h * n).map(|i| noise(i, salt)).collect::<Vec<_>>();
    let lam_re: Vec<f64> = draw(1).iter().map(|x| -0.3 - 0.5 * x.abs()).collect();
    let (lam_im, p_re, p_im, b_re, b_im, c_re, c_im) = (draw(2), draw(3), draw(4), draw(5), draw(6), draw(7), draw(8));
    let lam_im: Vec<f64> = lam_im.iter().map(|x| 3.0 * x).collect();
    let dt = [0.1, 0.03, 0.3];
    let c = |re: &[f64], im: &[f64]| ComplexTensor::new(tensor2(re, h, n, &dev), tensor2(im, h, n, &dev));
    let sys = Dplr {
        lambda: c(&lam_re, &lam_im),
        p: c(&p_re, &p_im),
        dt: Tensor::from_data(TensorData::new(dt.to_vec(), [h]), (&dev, DType::F64)),
        pairs: true,
    };
    let k = values_f64(dplr_kernel(&sys, c(&b_re, &b_im), c(&c_re, &c_im), len));
    for hi in 0..h {
        let at = |re: &[f64], im: &[f64], i: usize| Complex::new(re[hi * n + i], im[hi * n + i]);
        let full = |re: &[f64], im: &[f64]| {
            DVector::from_fn(2 * n, |i, _| if i < n { at(re, im, i) } else { at(re, im, i - n).conj() })
        };
        let (lam, p, b, cc) = (full(&lam_re, &lam_im), full(&p_re, &p_im), full(&b_re, &b_im), full(&c_re, &c_im));
        let a = DMatrix::from_diagonal(&lam) - &p * p.adjoint();
        let eye = DMatrix::<Complex<f64>>::identity(2 * n, 2 * n);
        let half = Complex::new(dt[hi] / 2.0, 0.0);
        let inv = (&eye - &a * half).try_inverse().unwrap();
        let a_bar = &inv * (&eye + &a * half);
        let mut x = &inv * &b * Complex::new(dt[hi], 0.0);
        for l in 0..len {
            // The whole system's output is real and equals the stored half's 2 Re(·).
            let want = (cc.transpose() * &x)[(0, 0)];
            assert!(want.im.abs() < 1e-9, "the real system's kernel is real");
            let got = k[hi * len + l];
            assert!((got - want.re).abs() < 1e-9, "channel {hi}, lag {l}: {got} vs dense {}", want.re);
            x = &a_bar * x;
        }
    }
}

/// The S4 initialisation is HiPPO-LegS itself: V Λ V* − P Pᵀ over both halves of each pair.
#[test]
fn hippo_nplr_diagonalisation_rebuilds_legs() {
    let n = 8;
    let (omega, v) = ssm_core::hippo::legs_normal_eig(n);
    let (a, _) = ssm_core::hippo::transition(ssm_core::hippo::Measure::LegS, n);
    let vf = DMatrix::from_fn(n, n, |i, j| if j < n / 2 { v[(i, j)] } else { v[(i, j - n / 2)].conj() });
    let lam = DVector::from_fn(n, |j, _| Complex::new(-0.5, if j < n / 2 { omega[j] } else { -omega[j - n / 2] }));
    let p = DVector::from_fn(n, |i, _| Complex::new((i as f64 + 0.5).sqrt(), 0.0));
    let rebuilt = &vf * DMatrix::from_diagonal(&lam) * vf.adjoint() - &p * p.transpose();
    for i in 0..n {
        for k in 0..n {
            let d = (rebuilt[(i, k)] - Complex::new(a[[i, k]], 0.0)).norm();
            assert!(d < 1e-9, "A[{i},{k}]: {} vs {}", rebuilt[(i, k)], a[[i, k]]);
        }
    }
}

/// Recurrent generation equals the convolution at the default sizes (S4's N = 64 HiPPO state,
/// a length that is not a power of two), for S4 and the other families with a convolution or
/// scan form whose step must reproduce it: S5, H3 and Liquid-S4.
#[test]
fn recurrent_steps_reproduce_the_convolution_at_default_sizes() {
    use burn::tensor::Distribution;
    use ssm_core::mixers::MixerConfig;
    let dev = Device::flex();
    let (b, l, d) = (2, 300, 32);
    for name in ["s4", "s5", "h3", "liquid_s4"] {
        let m = MixerConfig::by_name(name, d).unwrap().init(&dev);
        let x = Tensor::<3>::random([b, l, d], Distribution::Normal(0.0, 1.0), &dev);
        let (y, _) = m.forward(x.clone(), None);
        let mut state = m.init_state(b, &dev);
        let mut ys: Vec<Tensor<3>> = Vec::new();
        for t in 0..l {
            let (yt, s) = m.step(x.clone().narrow(1, t, 1).reshape([b, d]), state);
            ys.push(yt.unsqueeze_dim(1));
            state = s;
        }
        let err = max_abs_diff(&values_f64(y.clone()), &values_f64(Tensor::cat(ys, 1)));
        let scale = values_f64(y).iter().fold(0f64, |m, v| m.max(v.abs()));
        println!("{name}: step vs forward over {l} tokens: max |error| {err:.2e} (outputs up to {scale:.2})");
        assert!(err <= 1e-3 * scale.max(1.0), "{name}: step vs forward differ by {err:.2e}");
    }
}
