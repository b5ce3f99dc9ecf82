//! The structured and convolutional families' building blocks: explicit-kernel convolution with
//! a history, LongConv's squash and smooth, S4D-LegS / DSS initialisation from HiPPO-LegS.

mod common;
use burn::tensor::{DType, Device, Tensor, TensorData};
use common::*;
use ssm_core::hippo::legs_nplr;
use ssm_core::kernels::{causal_conv, causal_conv_history};
use ssm_core::mixers::long_conv::squash_smooth;
use ssm_core::mixers::{DssConfig, MixerConfig, MixerSpec, S4dConfig, S5Config, s4d::S4dInit};

#[test]
fn convolution_with_a_history_equals_one_long_convolution() {
    let dev = Device::flex();
    let mut r = rng(3);
    let (b, h, lk) = (2, 3, 7);
    let k = rand_t(&mut r, [h, lk], -1.0, 1.0, &dev);
    let u = rand_t(&mut r, [b, h, 20], -1.0, 1.0, &dev);
    let whole = causal_conv(u.clone(), k.clone());
    // In pieces of 5, 1 (the single-step path) and 14, each continuing from the last history.
    let (y1, s1) = causal_conv_history(u.clone().narrow(2, 0, 5), k.clone(), None);
    let (y2, s2) = causal_conv_history(u.clone().narrow(2, 5, 1), k.clone(), Some(s1));
    let (y3, s3) = causal_conv_history(u.clone().narrow(2, 6, 14), k, Some(s2));
    assert_close("pieces", &Tensor::cat(vec![y1, y2, y3], 2), &whole, 1e-12);
    assert_close("history", &s3, &u.narrow(2, 14, 6), 0.0);
}

#[test]
fn squash_thresholds_and_smooth_averages() {
    let dev = Device::flex();
    let k =
        Tensor::<2>::from_data(TensorData::new(vec![0.5f64, -0.05, 0.2, -0.4, 0.0, 0.1], [1, 6]), (&dev, DType::F64));
    let sq = vals(&squash_smooth(k.clone(), 0.1, 1));
    let want = [0.4, 0.0, 0.1, -0.3, 0.0, 0.0];
    assert!(sq.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12), "{sq:?}");
    let sm = vals(&squash_smooth(k, 0.0, 3));
    let want = [0.45 / 3.0, 0.65 / 3.0, -0.25 / 3.0, -0.2 / 3.0, -0.3 / 3.0, 0.1 / 3.0];
    assert!(sm.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12), "{sm:?}");
}

#[test]
fn legs_initialisation_uses_the_normal_parts_eigenvalues() {
    let dev = Device::flex();
    let n = 8;
    let m = S4dConfig::new(4).with_d_state(n).with_init(S4dInit::LegS).init(&dev);
    let got = vals(&m.a_imag.val().narrow(0, 0, 1));
    let (s, _) = legs_nplr(n);
    let sm = nalgebra::DMatrix::from_fn(n, n, |i, k| s[[i, k]]);
    let mut want: Vec<f64> = sm.complex_eigenvalues().iter().map(|e| e.im).filter(|w| *w > 0.0).collect();
    want.sort_by(f64::total_cmp);
    assert_eq!(got.len(), want.len());
    assert!(got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-4), "{got:?} vs {want:?}");
    assert!(vals(&m.log_a_real.val()).iter().all(|v| (v - 0.5f64.ln()).abs() < 1e-6), "Re λ = −½");
    // DSS and S5 take it by name; their configurations round-trip.
    for name in [DssConfig::NAME, S5Config::NAME] {
        let c = MixerConfig::by_name(name, 8).unwrap();
        let back: MixerConfig = serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
        assert_eq!(back.name(), name);
    }
}
