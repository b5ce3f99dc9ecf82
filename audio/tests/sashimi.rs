//! SaShiMi: µ-law coding, and generation through `step` reproducing the parallel U-Net (which
//! also shows the pooling is causal), and the plain-Rust generator reproducing `step`.

use burn::tensor::{Device, Int, Tensor, TensorData};
use ssm_audio::models::sashimi::{LEVELS, SashimiConfig, mu_law_decode, mu_law_encode};
use ssm_audio::models::sashimi_plain::PlainSashimi;
use ssm_core::fixtures::{max_abs_diff, values_f64};

#[test]
fn mu_law_round_trips_within_one_level() {
    for i in -100..=100 {
        let x = i as f32 / 100.0;
        let q = mu_law_encode(x);
        assert!((0..LEVELS as i64).contains(&q));
        let back = mu_law_decode(q);
        // a level is narrow near 0 and wide near ±1 (µ-law's point)
        let width = (mu_law_decode((q + 1).min(255)) - mu_law_decode((q - 1).max(0))).abs();
        assert!((back - x).abs() <= width, "{x} → {q} → {back}");
    }
    assert_eq!((mu_law_encode(-1.0), mu_law_encode(1.0)), (0, 255));
}

/// Small states for the test.
fn small_options(mixer: &str) -> Vec<String> {
    match mixer {
        "mamba" => vec!["d_state=4".into()],
        _ => vec!["d_state=8".into()],
    }
}

#[test]
fn steps_reproduce_the_parallel_unet() {
    let dev = Device::flex();
    for mixer in ["s4", "s4d", "mamba"] {
        let cfg = SashimiConfig {
            mixer: mixer.into(),
            mixer_opt: small_options(mixer),
            d_model: 8,
            blocks: 2,
            pool: vec![2, 3],
            expand: 2,
            ff: 2,
        };
        let model = cfg.init(&dev).unwrap();
        let (b, l) = (2, 17); // not a multiple of the stride 6: the parallel form pads
        let tokens: Vec<i64> = (0..b * l).map(|i| ((i * 37 + 11) % LEVELS) as i64).collect();
        let t = Tensor::<2, Int>::from_data(TensorData::new(tokens.clone(), [b, l]), &dev);
        let parallel = model.forward(t);
        let mut state = model.init_state(b, &dev);
        let mut plain = PlainSashimi::new(&model, &cfg, b);
        assert_eq!(plain.is_some(), mixer != "s4d", "{mixer}: which families have a plain step");
        let (mut steps, mut plain_err): (Vec<Tensor<3>>, f64) = (Vec::new(), 0.0);
        for i in 0..l {
            let col: Vec<i64> = (0..b).map(|r| tokens[r * l + i]).collect();
            let logits = model.step(Tensor::from_data(TensorData::new(col.clone(), [b]), &dev), &mut state);
            if let Some(p) = &mut plain {
                let fast: Vec<f64> = p.step(&col).iter().map(|&v| f64::from(v)).collect();
                plain_err = plain_err.max(max_abs_diff(&fast, &values_f64(logits.clone())));
            }
            steps.push(logits.unsqueeze_dim(1));
        }
        let err = max_abs_diff(&values_f64(parallel), &values_f64(Tensor::cat(steps, 1)));
        assert!(err < 1e-4, "{mixer}: step vs forward logits differ by {err:.2e}");
        assert!(plain_err < 1e-4, "{mixer}: plain vs tensor step logits differ by {plain_err:.2e}");
    }
}
